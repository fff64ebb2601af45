//! Reading a journal back: seeking through the sparse index against a full
//! scan, follow latency, and export throughput.
//!
//! The journal is 4 GiB (256 MiB with `--quick`; `RINGLOG_BENCH_READ_BYTES`
//! sets another size, e.g. `2GiB` or a byte count) of 3 producers' ASCII
//! records of 40..=472 bytes with rising, jittered timestamps, in 64 MiB
//! segments, indexed by `rebuild_index` (its time is a row of its own).
//!
//! - seek: the first record at or after a time (and of one producer at or
//!   after a sequence number) picked at random in the last quarter of the
//!   journal, through a [`Follower`] with the index against the same
//!   follower ignoring the index (a full scan to the target); both checked
//!   to give the same record. ns per seek, page cache warm.
//! - follow: one pipeline writer appends a record every millisecond with the
//!   journal syncing every batch; the time from its `wait_durable` returning
//!   to a follower (another thread, inotify, bound by the durable
//!   watermark) holding the record. The journal publishes the watermark
//!   inside its sync, before the pipeline tells the writer, so a follower
//!   can hold a record before `wait_durable` returns: that counts as 1 ns.
//!   Then the follower's CPU time (its thread's, as getrusage counts it)
//!   per second of wall time while the journal is idle for 1 s.
//! - export: `ringlog cat --format jsonl` (the binary built beside this
//!   one) to /dev/null, against reading the segment files in 1 MiB reads
//!   and discarding them (what `cat` of them to /dev/null does), and the
//!   library's reader alone. Bytes of segment files per second.

use crate::bench::{Bench, Case, Measured, Role, Unit};
use crate::check::CheckError;
use crate::scenarios::latency::{histogram, percentiles, METRICS};
use ringlog::journal::{
    frame_into_vec, rebuild_index, FollowEvent, FollowOptions, Follower, IndexUse, Journal,
    JournalOptions, Reader, RecordFilter, SyncPolicy,
};
use ringlog::pipeline::{self, Design, PipelineConfig};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const PRODUCERS: u32 = 3;
const SEGMENT_BYTES: u64 = 64 << 20;
/// Seeks timed per run (each to a new random target).
const SEEKS: usize = 20;

/// The journal the scenario reads, and what it holds.
struct Built {
    dir: PathBuf,
    bytes: u64,
    records: u64,
    first_ts: u64,
    last_ts: u64,
    /// Records per producer.
    per_producer: u64,
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn size_from_env() -> Option<u64> {
    let s = std::env::var("RINGLOG_BENCH_READ_BYTES").ok()?;
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = t.strip_suffix("gib") {
        (n, 1u64 << 30)
    } else if let Some(n) = t.strip_suffix("mib") {
        (n, 1 << 20)
    } else {
        (t.as_str(), 1)
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .map(|n| n.saturating_mul(mult))
}

fn build(dir: &Path, target: u64) -> Result<Built, CheckError> {
    let err = |e: ringlog::journal::JournalError| CheckError::new(format!("journal: {e}"));
    let options = JournalOptions {
        segment_bytes: SEGMENT_BYTES,
        sync: SyncPolicy::Never,
        ..Default::default()
    };
    let mut journal = Journal::open(dir, options).map_err(err)?;
    let line: Vec<u8> = (0..512u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut batch = Vec::with_capacity(2 << 20);
    let mut x = 0x5eed_u64;
    let mut seq = [0u64; PRODUCERS as usize];
    let first_ts = 1_700_000_000_000_000_000u64;
    let mut ts = first_ts;
    let mut records = 0u64;
    while journal.position() < target {
        batch.clear();
        while batch.len() < 1 << 20 {
            let r = xorshift(&mut x);
            let p = (records % u64::from(PRODUCERS)) as usize;
            let len = 40 + (r % 433) as usize;
            ts += 1_000 + (r >> 50) % 1_000;
            // Jitter: a record may carry a time a little before the last.
            let stamp = ts - (r >> 40) % 3_000;
            frame_into_vec(&mut batch, p as u32, seq[p], stamp, &line[..len]).map_err(err)?;
            seq[p] += 1;
            records += 1;
        }
        journal.append_frames(&batch).map_err(err)?;
    }
    journal.sync().map_err(err)?;
    let bytes = segment_bytes(dir)?;
    Ok(Built {
        dir: dir.to_owned(),
        bytes,
        records,
        first_ts,
        last_ts: ts,
        per_producer: seq[PRODUCERS as usize - 1],
    })
}

/// Runs `ringlog cat --format jsonl` over the journal, its output piped
/// here, and checks that it exits 0 with a line per record.
fn export_lines(cli: &Path, built: &Built) -> Result<(), CheckError> {
    let fail = |e: std::io::Error| CheckError::new(format!("{}: {e}", cli.display()));
    let mut child = std::process::Command::new(cli)
        .args(["cat", "--format", "jsonl"])
        .arg(&built.dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(fail)?;
    let mut lines = 0u64;
    let mut read = Ok(());
    if let Some(mut out) = child.stdout.take() {
        let mut chunk = vec![0u8; 1 << 20];
        read = loop {
            match out.read(&mut chunk) {
                Ok(0) => break Ok(()),
                Ok(n) => lines += chunk[..n].iter().filter(|&&c| c == b'\n').count() as u64,
                Err(e) => break Err(e),
            }
        };
    }
    // Waited for on every path, the pipe closed first.
    let status = child.wait().map_err(fail)?;
    read.map_err(fail)?;
    if !status.success() || lines != built.records {
        return Err(CheckError::new(format!(
            "ringlog cat: {status}, {lines} lines for {} records",
            built.records
        )));
    }
    Ok(())
}

fn segment_bytes(dir: &Path) -> Result<u64, CheckError> {
    let mut total = 0;
    for e in std::fs::read_dir(dir).map_err(|e| CheckError::new(format!("list: {e}")))? {
        let e = e.map_err(|e| CheckError::new(format!("list: {e}")))?;
        if e.file_name().to_string_lossy().ends_with(".rlj") {
            total += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    Ok(total)
}

/// The first record passing `filter`, as (segment, offset).
fn first(dir: &Path, filter: RecordFilter, index: IndexUse) -> Result<(u64, u64), CheckError> {
    let options = FollowOptions {
        filter,
        index,
        ..Default::default()
    };
    let mut f =
        Follower::open(dir, options).map_err(|e| CheckError::new(format!("follower: {e}")))?;
    match f.try_next() {
        Ok(Some(FollowEvent::Record(r))) => Ok((r.segment, r.offset)),
        other => Err(CheckError::new(format!("seek found no record: {other:?}"))),
    }
}

/// Runs the scenario.
pub fn run(b: &mut Bench) {
    b.scenario("read");
    let target = size_from_env().unwrap_or_else(|| b.settings.size(4 << 30, 256 << 20, 4 << 20));
    let dir = b.settings.work_dir.join("read");
    let _ = std::fs::remove_dir_all(&dir);
    let journal_dir = dir.join("journal");
    let built = match build(&journal_dir, target) {
        Ok(x) => x,
        Err(e) => {
            b.failed(
                Case::new(
                    "setup",
                    "write the journal",
                    Role::Ringlog,
                    Unit::BytesPerSec,
                    1,
                ),
                e.to_string(),
            );
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
    };
    let gib = built.bytes as f64 / f64::from(1u32 << 30);
    b.case(
        Case::new(
            format!("index build, {gib:.1} GiB journal"),
            "rebuild_index (scan + write every segment's index)",
            Role::Ringlog,
            Unit::BytesPerSec,
            1,
        ),
        || {
            // Remove the indexes so each run builds them all.
            for e in std::fs::read_dir(&built.dir)
                .into_iter()
                .flatten()
                .flatten()
            {
                if e.file_name().to_string_lossy().ends_with(".rlx") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            let t = Instant::now();
            let r = rebuild_index(&built.dir).map_err(|e| CheckError::new(e.to_string()))?;
            if r.written != r.segments {
                return Err(CheckError::new(format!("{r:?}")));
            }
            Ok(Measured::rate(built.bytes, t.elapsed()))
        },
    );

    let mut rng = 0xfeed_u64;
    let span = built.last_ts - built.first_ts;
    let group = format!("seek to a time, {gib:.1} GiB journal, ns");
    let filters: Vec<RecordFilter> = (0..SEEKS)
        .map(|_| RecordFilter {
            since: Some(built.first_ts + span * 3 / 4 + xorshift(&mut rng) % (span / 4).max(1)),
            ..Default::default()
        })
        .collect();
    seek_cases(b, &built.dir, &group, filters);

    let group = format!("seek to (producer, sequence), {gib:.1} GiB journal, ns");
    let filters: Vec<RecordFilter> = (0..SEEKS)
        .map(|_| RecordFilter {
            producer: Some(1),
            seq_from: Some(
                built.per_producer * 3 / 4 + xorshift(&mut rng) % (built.per_producer / 4).max(1),
            ),
            ..Default::default()
        })
        .collect();
    seek_cases(b, &built.dir, &group, filters);

    let group = format!("export, {gib:.1} GiB journal, bytes/s of segment files");
    b.case(
        Case::new(
            &group,
            "read the segment files, 1 MiB reads (cat > /dev/null)",
            Role::Limit,
            Unit::BytesPerSec,
            1,
        ),
        || {
            let t = Instant::now();
            let n = cat_files(&built.dir)?;
            Ok(Measured::rate(n, t.elapsed()))
        },
    );
    b.case(
        Case::new(
            &group,
            "Reader, every record (no output)",
            Role::Ringlog,
            Unit::BytesPerSec,
            1,
        ),
        || {
            let t = Instant::now();
            let mut n = 0u64;
            for r in Reader::open(&built.dir).map_err(|e| CheckError::new(e.to_string()))? {
                r.map_err(|e| CheckError::new(e.to_string()))?;
                n += 1;
            }
            if n != built.records {
                return Err(CheckError::new(format!(
                    "{n} records, wrote {}",
                    built.records
                )));
            }
            Ok(Measured::rate(built.bytes, t.elapsed()))
        },
    );
    b.case(
        Case::new(
            &group,
            "Reader::next_frames, every record (no output)",
            Role::Ringlog,
            Unit::BytesPerSec,
            1,
        ),
        || {
            let t = Instant::now();
            let mut n = 0u64;
            let mut reader =
                Reader::open(&built.dir).map_err(|e| CheckError::new(e.to_string()))?;
            while let Some(frames) = reader.next_frames() {
                n += frames
                    .map_err(|e| CheckError::new(e.to_string()))?
                    .iter()
                    .count() as u64;
            }
            if n != built.records {
                return Err(CheckError::new(format!(
                    "{n} records, wrote {}",
                    built.records
                )));
            }
            Ok(Measured::rate(built.bytes, t.elapsed()))
        },
    );
    let cli = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.join("ringlog")))
        .filter(|p| p.exists());
    let export = Case::new(
        &group,
        "ringlog cat --format jsonl > /dev/null",
        Role::Ringlog,
        Unit::BytesPerSec,
        1,
    );
    match cli {
        Some(cli) => {
            // Once, untimed: the output holds a line per record.
            let checked = export_lines(&cli, &built);
            b.case(export, || {
                checked.clone()?;
                let devnull = std::fs::File::create("/dev/null")
                    .map_err(|e| CheckError::new(format!("/dev/null: {e}")))?;
                let t = Instant::now();
                let status = std::process::Command::new(&cli)
                    .args(["cat", "--format", "jsonl"])
                    .arg(&built.dir)
                    .stdout(devnull)
                    .status()
                    .map_err(|e| CheckError::new(format!("{}: {e}", cli.display())))?;
                let took = t.elapsed();
                if !status.success() {
                    return Err(CheckError::new(format!("ringlog cat: {status}")));
                }
                Ok(Measured::rate(built.bytes, took))
            })
        }
        // Not a failure of what is measured: say so and go on.
        None => eprintln!(
            "read: export through the CLI skipped: the ringlog binary is not beside \
             ringlog-bench (cargo build --release -p ringlog-cli)"
        ),
    }

    let n = b.settings.size(3_000, 1_000, 100);
    b.case_metrics(
        Case::new(
            "follow: writer's wait_durable returning -> follower holds the record, 1 record/ms, ns",
            "Follower (inotify)",
            Role::Ringlog,
            Unit::Nanos,
            3,
        ),
        &METRICS,
        |_| follow_latency(&dir.join("follow"), n),
    );
    b.case(
        Case::new(
            "idle follower CPU time per second of wall time, ns",
            "Follower (inotify)",
            Role::Ringlog,
            Unit::Nanos,
            1,
        ),
        || idle_cpu(&built.dir, built.last_ts),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// One seek group: every filter's first record through the index (the mean
/// per seek), against a full scan for one filter at a time, which must find
/// the same record.
fn seek_cases(b: &mut Bench, dir: &Path, group: &str, mut filters: Vec<RecordFilter>) {
    b.case(
        Case::new(
            group,
            "Follower through the index",
            Role::Ringlog,
            Unit::Nanos,
            1,
        ),
        || {
            let t = Instant::now();
            for &f in &filters {
                first(dir, f, IndexUse::Use)?;
            }
            Ok(Measured::nanos(
                t.elapsed().as_nanos() as f64 / filters.len() as f64,
            ))
        },
    );
    b.case(
        Case::new(
            group,
            "full scan (index ignored)",
            Role::Peer,
            Unit::Nanos,
            1,
        ),
        || {
            let f = filters[0];
            let t = Instant::now();
            let scanned = first(dir, f, IndexUse::Ignore)?;
            let took = t.elapsed();
            let indexed = first(dir, f, IndexUse::Use)?;
            if scanned != indexed {
                return Err(CheckError::new(format!(
                    "index gave {indexed:?}, scan {scanned:?}"
                )));
            }
            filters.rotate_left(1);
            Ok(Measured::nanos(took.as_nanos() as f64))
        },
    );
}
fn cat_files(dir: &Path) -> Result<u64, CheckError> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| CheckError::new(e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rlj"))
        .collect();
    names.sort();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    for p in names {
        let mut f = std::fs::File::open(&p).map_err(|e| CheckError::new(e.to_string()))?;
        loop {
            let k = f
                .read(&mut buf)
                .map_err(|e| CheckError::new(e.to_string()))?;
            if k == 0 {
                break;
            }
            total += k as u64;
        }
    }
    Ok(total)
}

/// User and system CPU time of the calling thread (getrusage).
fn thread_cpu_ns() -> u64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `u` is a valid, writable rusage; RUSAGE_THREAD reports on
    // the calling thread only.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, u.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: getrusage succeeded and filled it (it was zeroed anyway).
    let u = unsafe { u.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn idle_cpu(dir: &Path, last_ts: u64) -> Result<Measured, CheckError> {
    let dir = dir.to_owned();
    let worker = thread::spawn(move || -> Result<f64, String> {
        // Catch up cheaply: seek near the end through the index, read the rest.
        let options = FollowOptions {
            filter: RecordFilter {
                since: Some(last_ts.saturating_sub(1_000_000)),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut f = Follower::open(&dir, options).map_err(|e| e.to_string())?;
        while f.try_next().map_err(|e| e.to_string())?.is_some() {}
        let cpu0 = thread_cpu_ns();
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs(1);
        while Instant::now() < until {
            if let Some(e) = f.next_before(Some(until)).map_err(|e| e.to_string())? {
                return Err(format!("idle journal yielded {e:?}"));
            }
        }
        let cpu = thread_cpu_ns() - cpu0;
        Ok(cpu as f64 / t0.elapsed().as_secs_f64())
    });
    match worker.join() {
        Ok(Ok(ns)) => Ok(Measured::nanos(ns)),
        Ok(Err(e)) => Err(CheckError::new(e)),
        Err(_) => Err(CheckError::new("idle follower panicked")),
    }
}

fn follow_latency(dir: &Path, n: u64) -> Result<Vec<Measured>, CheckError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| CheckError::new(e.to_string()))?;
    let journal_dir = dir.join("journal");
    let mut config = PipelineConfig::new(&journal_dir, Design::DoubleBuffer, 1 << 20, 1);
    config.journal.sync = SyncPolicy::EveryBatch;
    let (mut writers, pipe) =
        pipeline::start(config).map_err(|e| CheckError::new(format!("pipeline: {e}")))?;
    let mut w = writers.pop().ok_or_else(|| CheckError::new("no writer"))?;
    let base = Instant::now();
    // Per record: ns after `base` when wait_durable returned (0: not yet).
    let durable_at: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let received_at: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let follower = {
        let (received_at, done, jd) = (received_at.clone(), done.clone(), journal_dir.clone());
        thread::spawn(move || -> Result<(), String> {
            let mut f = Follower::open(&jd, FollowOptions::default()).map_err(|e| e.to_string())?;
            let mut got = 0u64;
            // When the writer was seen done with records still to come: every
            // one is durable by then, so they are owed within a grace period
            // however loaded the machine is, not within one 100 ms wait.
            let mut done_seen: Option<Instant> = None;
            while got < n {
                let deadline = Instant::now() + Duration::from_millis(100);
                match f.next_before(Some(deadline)).map_err(|e| e.to_string())? {
                    Some(FollowEvent::Record(r)) => {
                        let at = base.elapsed().as_nanos() as u64;
                        let slot = received_at.get(r.seq as usize).ok_or("unexpected seq")?;
                        // Relaxed: read after join.
                        slot.store(at.max(1), Ordering::Relaxed);
                        got += 1;
                    }
                    Some(other) => return Err(format!("{other:?}")),
                    None if done.load(Ordering::Relaxed) => {
                        let since = *done_seen.get_or_insert_with(Instant::now);
                        if since.elapsed() > Duration::from_secs(10) {
                            return Err(format!(
                                "follower got {got} of {n} records, all durable 10 s before"
                            ));
                        }
                    }
                    None => {}
                }
            }
            Ok(())
        })
    };
    let payload = [b'l'; 100];
    let mut failure = None;
    for i in 0..n {
        let seq = match w.append(&payload, None) {
            Ok(s) => s,
            Err(e) => {
                failure = Some(format!("append: {e}"));
                break;
            }
        };
        if !w.wait_durable(seq, Some(Instant::now() + Duration::from_secs(10))) {
            failure = Some(format!("record {seq} not durable in 10 s"));
            break;
        }
        durable_at[i as usize].store(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(1));
    }
    done.store(true, Ordering::Relaxed);
    drop(w);
    let followed = follower.join();
    let _ = pipe.shutdown();
    let _ = std::fs::remove_dir_all(dir);
    if let Some(f) = failure {
        return Err(CheckError::new(f));
    }
    match followed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(CheckError::new(e)),
        Err(_) => return Err(CheckError::new("follower panicked")),
    }
    let mut h = histogram();
    for i in 0..n as usize {
        let d = durable_at[i].load(Ordering::Relaxed);
        let r = received_at[i].load(Ordering::Relaxed);
        h.record(r.saturating_sub(d).max(1))
            .map_err(|e| CheckError::new(e.to_string()))?;
    }
    Ok(percentiles(&h))
}
