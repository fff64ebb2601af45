//! Persisting records: 4 writers of random 10..=10,000-byte records, about
//! 2 GiB in all (256 MiB with `--quick`), written to a directory on the
//! current directory's filesystem and deleted afterwards.
//!
//! - ringlog: the pipeline with each queue design, journal sync policy
//!   `Never`, and the final sync of `shutdown` inside the timed region; the
//!   journal is then verified (every CRC, per-writer contiguity, record and
//!   payload byte totals).
//! - limit: one thread writing the same number of bytes sequentially in
//!   1 MiB writes, then `fdatasync` (the disk / page-cache limit).
//! - peers: `Arc<Mutex<BufWriter<File>>>` shared by the writers, and the
//!   tracing-appender pattern (`Vec<u8>` records over a crossbeam-channel to
//!   one thread with a `BufWriter`), each ending with flush + `fdatasync`;
//!   the file length is checked.
//!
//! - `ringlog run`'s pipeline (4 writers, double buffer of 64 MiB, journal
//!   synced every 100 ms, 64 MiB segments) persisting 1 GiB (128 MiB with
//!   `--quick`), against one thread writing the same number of bytes (the
//!   journal's frame bytes) sequentially in 1 MiB writes and `fdatasync`:
//!   run in the same rounds, so both see the same load and disk. The ratio
//!   to that limit is how close the main job runs to the disk.
//!
//! The peers write bare payloads; the journal writes each record behind a
//! frame header (producer, sequence, timestamp, CRC), so it writes more
//! bytes than it is credited for. Figures are payload bytes per second.

use crate::bench::RoundRun;
use crate::bench::{Bench, Case, Measured, Role, Unit};
use crate::check::{file_len, CheckError};
use crate::records::{scratch, stamp, Plan};
use ringlog::journal::{self, framed_len, SyncPolicy};
use ringlog::pipeline::{self, Design, PipelineConfig};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

const WRITERS: usize = 4;
/// Queue memory of the pipeline, as the CLI's default.
const QUEUE_BYTES: usize = 64 << 20;
/// Buffer of the peers' `BufWriter`s.
const BUF_BYTES: usize = 64 << 10;

/// Runs the scenario.
pub fn run(b: &mut Bench) {
    b.scenario("persist");
    let total = b.settings.size(2 << 30, 256 << 20, 256 << 10);
    let plan = Arc::new(Plan::new(WRITERS, total, 0xD15C));
    let dir = b.settings.work_dir.join("persist");
    let group = "4 writers, 10..=10,000-byte records, final sync";
    let case = |name: &str, role, threads| Case::new(group, name, role, Unit::BytesPerSec, threads);
    for (design, label) in [
        (Design::DoubleBuffer, "double-buffer"),
        (Design::FanIn, "fan-in"),
        (Design::SharedRing, "shared-ring"),
    ] {
        let name = format!("ringlog pipeline {label} (64 MiB), journal");
        b.case(case(&name, Role::Ringlog, WRITERS + 1), || {
            fresh(&dir, |d| pipeline_run(d, design, &plan))
        });
    }
    b.case(
        case("plain write, 1 thread, 1 MiB writes", Role::Limit, 1),
        || fresh(&dir, |d| plain_run(d, plan.bytes())),
    );
    b.case(
        case("Arc<Mutex<BufWriter<File>>> (64 KiB)", Role::Peer, WRITERS),
        || fresh(&dir, |d| mutex_run(d, &plan)),
    );
    b.case(
        case(
            "crossbeam-channel of Vec<u8> -> BufWriter thread",
            Role::Peer,
            WRITERS + 1,
        ),
        || fresh(&dir, |d| channel_run(d, &plan)),
    );

    let total = b.settings.size(1 << 30, 128 << 20, 256 << 10);
    let plan = Arc::new(Plan::new(WRITERS, total, 0x1618));
    let frame_bytes: u64 = plan
        .sizes
        .iter()
        .flatten()
        .map(|&n| framed_len(n as usize) as u64)
        .sum();
    let group = format!(
        "ringlog run's pipeline, {} MiB, vs write + fdatasync, same rounds",
        total >> 20
    );
    let case =
        |name: &str, role, threads| Case::new(&group, name, role, Unit::BytesPerSec, threads);
    let runs: Vec<(Case, RoundRun<'_>)> = vec![
        (
            case(
                "ringlog pipeline double-buffer (64 MiB), sync 100 ms",
                Role::Ringlog,
                WRITERS + 1,
            ),
            Box::new(|| {
                fresh(&dir, |d| {
                    pipeline_run_with(d, &plan, |c| {
                        c.journal.sync = SyncPolicy::EveryMillis(100);
                    })
                })
            }),
        ),
        (
            case(
                "write the journal's bytes, 1 thread, 1 MiB writes, fdatasync",
                Role::Limit,
                1,
            ),
            Box::new(|| {
                fresh(&dir, |d| {
                    let m = plain_run(d, frame_bytes)?;
                    // Credited, like the pipeline, with the payload bytes.
                    Ok(Measured {
                        value: m.value * plan.bytes() as f64 / frame_bytes as f64,
                        ..m
                    })
                })
            }),
        ),
    ];
    b.rounds(runs);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `f` in an empty `dir`, removed afterwards whatever happened.
fn fresh(
    dir: &Path,
    f: impl FnOnce(&Path) -> Result<Measured, CheckError>,
) -> Result<Measured, CheckError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let r = f(dir);
    let _ = std::fs::remove_dir_all(dir);
    r
}

fn pipeline_run(dir: &Path, design: Design, plan: &Arc<Plan>) -> Result<Measured, CheckError> {
    pipeline_run_design(dir, design, plan, |c| c.journal.sync = SyncPolicy::Never)
}

/// The pipeline as `ringlog run` builds it by default (double buffer of
/// 64 MiB, two buffers, 64 MiB segments), changed by `tune`.
fn pipeline_run_with(
    dir: &Path,
    plan: &Arc<Plan>,
    tune: impl FnOnce(&mut PipelineConfig),
) -> Result<Measured, CheckError> {
    pipeline_run_design(dir, Design::DoubleBuffer, plan, tune)
}

fn pipeline_run_design(
    dir: &Path,
    design: Design,
    plan: &Arc<Plan>,
    tune: impl FnOnce(&mut PipelineConfig),
) -> Result<Measured, CheckError> {
    let journal_dir = dir.join("journal");
    let mut config = PipelineConfig::new(&journal_dir, design, QUEUE_BYTES, WRITERS);
    tune(&mut config);
    let start = Instant::now();
    let (writers, pipe) =
        pipeline::start(config).map_err(|e| CheckError::new(format!("pipeline: {e}")))?;
    let threads: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(p, mut w)| {
            let plan = plan.clone();
            thread::spawn(move || -> Result<(), String> {
                let mut rec = scratch();
                for (seq, &n) in plan.sizes[p].iter().enumerate() {
                    let r = &mut rec[..n as usize];
                    stamp(r, p, seq as u64);
                    let got = w.append(r, None).map_err(|e| format!("append: {e}"))?;
                    if got != seq as u64 {
                        return Err(format!("writer {p}: append gave seq {got}, expected {seq}"));
                    }
                }
                Ok(())
            })
        })
        .collect();
    let mut failure = None;
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some("writer panicked".into()),
        }
    }
    let report = pipe
        .shutdown()
        .map_err(|e| CheckError::new(format!("pipeline: {e}")))?;
    let elapsed = start.elapsed();
    if let Some(e) = failure {
        return Err(CheckError::new(e));
    }
    check_journal(&journal_dir, plan, report.records)?;
    Ok(Measured::rate(plan.bytes(), elapsed))
}

/// Reads the journal back: clean, every writer's records contiguous from 0,
/// and the record and payload byte totals of the plan.
fn check_journal(dir: &Path, plan: &Plan, reader_records: u64) -> Result<(), CheckError> {
    let v = journal::verify(dir).map_err(|e| CheckError::new(format!("verify: {e}")))?;
    if !v.is_clean() {
        return Err(CheckError::new(format!(
            "journal not clean: {} damaged ranges, torn tail {}, {} sequence faults",
            v.corrupted.len(),
            v.torn_tail.is_some(),
            v.seq_faults.len()
        )));
    }
    let want: u64 = plan.records().iter().sum();
    if v.records != want || reader_records != want {
        return Err(CheckError::new(format!(
            "journal holds {} records (reader reported {reader_records}), {want} appended",
            v.records
        )));
    }
    for (p, sizes) in plan.sizes.iter().enumerate() {
        let got = v.producers.get(&(p as u32)).cloned().unwrap_or_default();
        let bytes: u64 = sizes.iter().map(|&n| u64::from(n)).sum();
        if got.records != sizes.len() as u64 || got.payload_bytes != bytes || got.first_seq != 0 {
            return Err(CheckError::new(format!(
                "writer {p}: journal has {} records / {} bytes from seq {}, appended {} / {bytes}",
                got.records,
                got.payload_bytes,
                got.first_seq,
                sizes.len()
            )));
        }
    }
    Ok(())
}

fn out_file(dir: &Path) -> PathBuf {
    dir.join("out.bin")
}

fn plain_run(dir: &Path, total: u64) -> Result<Measured, CheckError> {
    let path = out_file(dir);
    let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 + 7) as u8).collect();
    let start = Instant::now();
    let mut f = File::create(&path)?;
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    f.sync_data()?;
    let elapsed = start.elapsed();
    drop(f);
    file_len(&path, total)?;
    Ok(Measured::rate(total, elapsed))
}

fn mutex_run(dir: &Path, plan: &Arc<Plan>) -> Result<Measured, CheckError> {
    let path = out_file(dir);
    let start = Instant::now();
    let out = Arc::new(Mutex::new(BufWriter::with_capacity(
        BUF_BYTES,
        File::create(&path)?,
    )));
    let threads: Vec<_> = (0..WRITERS)
        .map(|p| {
            let (out, plan) = (out.clone(), plan.clone());
            thread::spawn(move || -> std::io::Result<()> {
                let mut rec = scratch();
                for (seq, &n) in plan.sizes[p].iter().enumerate() {
                    let r = &mut rec[..n as usize];
                    stamp(r, p, seq as u64);
                    out.lock().expect("no writer panics").write_all(r)?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| CheckError::new("writer panicked"))??;
    }
    let out = Arc::into_inner(out).expect("every writer joined");
    let f = out
        .into_inner()
        .expect("no writer panics")
        .into_inner()
        .map_err(|e| e.into_error())?;
    f.sync_data()?;
    let elapsed = start.elapsed();
    drop(f);
    file_len(&path, plan.bytes())?;
    Ok(Measured::rate(plan.bytes(), elapsed))
}

fn channel_run(dir: &Path, plan: &Arc<Plan>) -> Result<Measured, CheckError> {
    let path = out_file(dir);
    let start = Instant::now();
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(256);
    let file = File::create(&path)?;
    let sink = thread::spawn(move || -> std::io::Result<()> {
        let mut out = BufWriter::with_capacity(BUF_BYTES, file);
        for rec in rx {
            out.write_all(&rec)?;
        }
        let f = out.into_inner().map_err(|e| e.into_error())?;
        f.sync_data()
    });
    let threads: Vec<_> = (0..WRITERS)
        .map(|p| {
            let (tx, plan) = (tx.clone(), plan.clone());
            thread::spawn(move || {
                let mut rec = scratch();
                for (seq, &n) in plan.sizes[p].iter().enumerate() {
                    let r = &mut rec[..n as usize];
                    stamp(r, p, seq as u64);
                    if tx.send(r.to_vec()).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(tx);
    for t in threads {
        t.join().map_err(|_| CheckError::new("writer panicked"))?;
    }
    sink.join()
        .map_err(|_| CheckError::new("sink thread panicked"))??;
    let elapsed = start.elapsed();
    file_len(&path, plan.bytes())?;
    Ok(Measured::rate(plan.bytes(), elapsed))
}
