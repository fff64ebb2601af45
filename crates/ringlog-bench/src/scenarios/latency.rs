//! Latency: the time of single pushes (p50/p99/p99.9, `Instant` around each
//! push, recorded in an HDR histogram) with the consumer draining
//! concurrently, and the round trip of an SPSC ping-pong over two rings,
//! against rtrb, crossbeam-channel and kanal.
//! A cache-line ping-pong (two threads and one `AtomicU64`) is the limit of
//! the round trip.
//!
//! The hot path a logging user pays: `PipelineWriter::append` of 64-byte
//! records at 1 and 4 writers, into the pipeline as `ringlog run` builds it
//! (each queue design of 64 MiB, journal synced every 100 ms, in the work
//! directory), against `write_all` into an `Arc<Mutex<BufWriter<File>>>`;
//! the limit is the timer itself (two `Instant::now` around nothing), which
//! every figure of this scenario includes.
//!
//! In the first group the producer pushes as fast as it can, so the ring is
//! often full: the tail percentiles include waiting for room (or, under
//! `DropNewest`, the cost of refusing). The others push bursts of 64 with
//! 1 µs or 50 µs between them (spun, so the producer stays on its core),
//! which is what a logging thread does: with 50 µs the consumer has time
//! to go to sleep, and a push pays for waking it.

use crate::bench::{Bench, Case, Measured, Role, Unit};
use crate::check::{item, CheckError, SeqCheck};
use crate::wait::Backoff;
use hdrhistogram::Histogram;
use ringlog::journal::{self, SyncPolicy};
use ringlog::mpsc::{self, Policy, PushError};
use ringlog::pipeline::{self, Design, PipelineConfig};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const CAP: usize = 4096;
/// Pushes per burst in the cases with a gap between bursts.
const BURST: u64 = 64;
/// The percentiles every latency case reports, one row each.
pub(crate) const METRICS: [&str; 3] = ["p50", "p99", "p99.9"];

/// Runs the scenario.
pub fn run(b: &mut Bench) {
    b.scenario("latency");
    let n = b.settings.size(1_000_000, 200_000, 2_000);
    for (group, gap) in [
        ("push, 1 producer, capacity 4096, ns", None),
        (
            "push, bursts of 64, 1 µs apart, 1 producer, capacity 4096, ns",
            Some(Duration::from_micros(1)),
        ),
        (
            "push, bursts of 64, 50 µs apart (the consumer may sleep), 1 producer, capacity 4096, ns",
            Some(Duration::from_micros(50)),
        ),
    ] {
        // Bursts 50 µs apart take 0.8 s per million pushes: a tenth of them.
        let n = if gap.is_some_and(|g| g >= Duration::from_micros(10)) {
            (n / 10).max(1_000)
        } else {
            n
        };
        push_cases(b, group, n, gap);
    }

    idle_consumers(b);

    // About 100 MB of journal per case at the full size.
    let records = b.settings.size(1_000_000, 200_000, 2_000);
    let dir = b.settings.work_dir.join("append-latency");
    for writers in [1usize, 4] {
        let group = format!("append of 64-byte records, {writers} writer(s), ns");
        let case = |name: &str, role, threads| Case::new(&group, name, role, Unit::Nanos, threads);
        let per_writer = (records / writers as u64).max(1);
        for (design, name) in [
            (Design::FanIn, "fan-in"),
            (Design::DoubleBuffer, "double buffer"),
            (Design::SharedRing, "shared ring"),
        ] {
            b.case_metrics(
                case(
                    &format!("ringlog PipelineWriter::append ({name} 64 MiB, sync 100 ms)"),
                    Role::Ringlog,
                    writers + 1,
                ),
                &METRICS,
                |_| fresh_dir(&dir, |d| append_latency(d, design, writers, per_writer)),
            );
        }
        b.case_metrics(
            case(
                "Arc<Mutex<BufWriter<File>>> (64 KiB) write_all",
                Role::Peer,
                writers,
            ),
            &METRICS,
            |_| fresh_dir(&dir, |d| mutex_latency(d, writers, per_writer)),
        );
        b.case_metrics(
            case("timer only (Instant::now twice)", Role::Limit, writers),
            &METRICS,
            |_| timer_latency(writers, per_writer),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);

    let trips = b.settings.size(500_000, 100_000, 1_000);
    let group = "SPSC ping-pong round trip, ns";
    let case = |name: &str, role| Case::new(group, name, role, Unit::Nanos, 2);
    b.case_metrics(
        case("ringlog spsc, two rings", Role::Ringlog),
        &METRICS,
        |_| {
            let (mut a_tx, mut b_rx) = ringlog::spsc::channel::<u64>(CAP);
            let (mut b_tx, mut a_rx) = ringlog::spsc::channel::<u64>(CAP);
            let echo = thread::spawn(move || {
                while let Ok(v) = b_rx.pop(None) {
                    if b_tx.push(v + 1, None).is_err() {
                        return;
                    }
                }
            });
            let r = round_trips(trips, |v| {
                a_tx.push(v, None).ok()?;
                a_rx.pop(None).ok()
            });
            drop(a_tx);
            echo.join()
                .map_err(|_| CheckError::new("echo thread panicked"))?;
            r
        },
    );
    b.case_metrics(case("rtrb, two rings", Role::Peer), &METRICS, |_| {
        let (mut a_tx, mut b_rx) = rtrb::RingBuffer::<u64>::new(CAP);
        let (mut b_tx, mut a_rx) = rtrb::RingBuffer::<u64>::new(CAP);
        let echo = thread::spawn(move || {
            let mut backoff = Backoff::new();
            loop {
                match b_rx.pop() {
                    Ok(v) => {
                        backoff.reset();
                        if b_tx.push(v + 1).is_err() {
                            return;
                        }
                    }
                    Err(_) if b_rx.is_abandoned() => return,
                    Err(_) => backoff.snooze(),
                }
            }
        });
        let mut backoff = Backoff::new();
        let r = round_trips(trips, |v| {
            a_tx.push(v).ok()?;
            loop {
                if let Ok(v) = a_rx.pop() {
                    backoff.reset();
                    return Some(v);
                }
                if a_rx.is_abandoned() {
                    return None;
                }
                backoff.snooze();
            }
        });
        drop(a_tx);
        echo.join()
            .map_err(|_| CheckError::new("echo thread panicked"))?;
        r
    });
    b.case_metrics(
        case("crossbeam-channel, two channels", Role::Peer),
        &METRICS,
        |_| {
            let (a_tx, b_rx) = crossbeam_channel::bounded::<u64>(CAP);
            let (b_tx, a_rx) = crossbeam_channel::bounded::<u64>(CAP);
            let echo = thread::spawn(move || {
                for v in b_rx {
                    if b_tx.send(v + 1).is_err() {
                        return;
                    }
                }
            });
            let r = round_trips(trips, |v| {
                a_tx.send(v).ok()?;
                a_rx.recv().ok()
            });
            drop(a_tx);
            echo.join()
                .map_err(|_| CheckError::new("echo thread panicked"))?;
            r
        },
    );
    b.case_metrics(case("kanal, two channels", Role::Peer), &METRICS, |_| {
        let (a_tx, b_rx) = kanal::bounded::<u64>(CAP);
        let (b_tx, a_rx) = kanal::bounded::<u64>(CAP);
        let echo = thread::spawn(move || {
            while let Ok(v) = b_rx.recv() {
                if b_tx.send(v + 1).is_err() {
                    return;
                }
            }
        });
        let r = round_trips(trips, |v| {
            a_tx.send(v).ok()?;
            a_rx.recv().ok()
        });
        drop(a_tx);
        echo.join()
            .map_err(|_| CheckError::new("echo thread panicked"))?;
        r
    });
    b.case_metrics(
        case("cache line (AtomicU64 ping-pong)", Role::Limit),
        &METRICS,
        |_| {
            let line = Arc::new(AtomicU64::new(0));
            let other = line.clone();
            let echo = thread::spawn(move || {
                let mut backoff = Backoff::new();
                for i in 0..trips {
                    // Acquire/Release: each store hands the turn to the
                    // other side's load.
                    while other.load(Ordering::Acquire) != 2 * i + 1 {
                        backoff.snooze();
                    }
                    backoff.reset();
                    other.store(2 * i + 2, Ordering::Release);
                }
            });
            let mut backoff = Backoff::new();
            let r = round_trips(trips, |v| {
                line.store(2 * v + 1, Ordering::Release);
                while line.load(Ordering::Acquire) != 2 * v + 2 {
                    backoff.snooze();
                }
                backoff.reset();
                Some(v + 1)
            });
            echo.join()
                .map_err(|_| CheckError::new("echo thread panicked"))?;
            r
        },
    );
}

/// A histogram of nanoseconds, 1 ns to 60 s, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("static bounds")
}

/// The push-latency cases of one group: pushes back to back (`gap` None)
/// or in bursts of [`BURST`] with `gap` between them.
fn push_cases(b: &mut Bench, group: &str, n: u64, gap: Option<Duration>) {
    let case = |name: &str, role| Case::new(group, name, role, Unit::Nanos, 2);
    b.case_metrics(case("ringlog spsc push", Role::Ringlog), &METRICS, |_| {
        push_latency(n, false, gap, |sink| {
            let (mut tx, mut rx) = ringlog::spsc::channel::<u64>(CAP);
            let consumer = thread::spawn(move || {
                let mut c = SeqCheck::exact(1);
                let mut out = Vec::with_capacity(1024);
                while rx.take_batch_wait(1024, &mut out, None).is_ok() {
                    out.drain(..).for_each(|v| c.see(v));
                }
                c
            });
            sink(&mut |v| tx.push(v, None).is_ok());
            drop(tx);
            consumer
        })
    });
    for (label, policy, lossy) in [
        ("ringlog mpsc Block push", Policy::BLOCK, false),
        ("ringlog mpsc DropNewest push", Policy::DropNewest, true),
    ] {
        b.case_metrics(case(label, Role::Ringlog), &METRICS, |_| {
            push_latency(n, lossy, gap, |sink| {
                let (mut tx, mut rx) = mpsc::channel::<u64>(CAP, policy.clone()).expect("valid");
                let consumer = thread::spawn(move || {
                    let mut c = if lossy {
                        SeqCheck::lossy(1)
                    } else {
                        SeqCheck::exact(1)
                    };
                    let mut out = Vec::with_capacity(1024);
                    while rx.take_batch_until(1024, &mut out, None).is_ok() {
                        out.drain(..).for_each(|v| c.see(v));
                    }
                    c
                });
                sink(&mut |v| match tx.push(v) {
                    Ok(()) => true,
                    Err(PushError::Full(_)) => false,
                    Err(_) => panic!("consumer gone during the run"),
                });
                drop(tx);
                consumer
            })
        });
    }
    b.case_metrics(
        case("crossbeam-channel bounded send", Role::Peer),
        &METRICS,
        |_| {
            push_latency(n, false, gap, |sink| {
                let (tx, rx) = crossbeam_channel::bounded::<u64>(CAP);
                let consumer = thread::spawn(move || {
                    let mut c = SeqCheck::exact(1);
                    rx.iter().for_each(|v| c.see(v));
                    c
                });
                sink(&mut |v| tx.send(v).is_ok());
                drop(tx);
                consumer
            })
        },
    );
    b.case_metrics(case("kanal bounded send", Role::Peer), &METRICS, |_| {
        push_latency(n, false, gap, |sink| {
            let (tx, rx) = kanal::bounded::<u64>(CAP);
            let consumer = thread::spawn(move || {
                let mut c = SeqCheck::exact(1);
                while let Ok(v) = rx.recv() {
                    c.see(v);
                }
                c
            });
            sink(&mut |v| tx.send(v).is_ok());
            drop(tx);
            consumer
        })
    });
    b.case_metrics(case("rtrb push", Role::Peer), &METRICS, |_| {
        push_latency(n, false, gap, |sink| {
            let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
            let consumer = thread::spawn(move || {
                let mut c = SeqCheck::exact(1);
                let mut backoff = Backoff::new();
                loop {
                    match rx.pop() {
                        Ok(v) => {
                            c.see(v);
                            backoff.reset();
                        }
                        Err(_) if rx.is_abandoned() => {
                            while let Ok(v) = rx.pop() {
                                c.see(v);
                            }
                            return c;
                        }
                        Err(_) => backoff.snooze(),
                    }
                }
            });
            sink(&mut |mut v| {
                let mut backoff = Backoff::new();
                while let Err(rtrb::PushError::Full(back)) = tx.push(v) {
                    v = back;
                    backoff.snooze();
                }
                true
            });
            drop(tx);
            consumer
        })
    });
}

/// The figures of [`METRICS`] from `h`.
pub(crate) fn percentiles(h: &Histogram<u64>) -> Vec<Measured> {
    [50.0, 99.0, 99.9]
        .iter()
        .map(|&q| Measured::nanos(h.value_at_percentile(q) as f64))
        .collect()
}

/// Pushes `n` items through the channel `setup` builds, timing each push.
/// `setup` gets a function to call with its push closure (true: accepted,
/// false: refused by policy) and returns the consumer thread, whose check
/// is then finished against what was sent and refused.
fn push_latency(
    n: u64,
    lossy: bool,
    gap: Option<Duration>,
    setup: impl FnOnce(&mut dyn FnMut(&mut dyn FnMut(u64) -> bool)) -> thread::JoinHandle<SeqCheck>,
) -> Result<Vec<Measured>, CheckError> {
    let mut h = histogram();
    let mut refused = 0u64;
    let consumer = setup(&mut |push| {
        for s in 0..n {
            if let Some(gap) = gap.filter(|_| s % BURST == 0 && s > 0) {
                // Spun, not slept: a sleep of 1 µs takes tens.
                let until = Instant::now() + gap;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            let v = item(0, s);
            let t = Instant::now();
            let ok = push(v);
            let ns = t.elapsed().as_nanos() as u64;
            h.saturating_record(ns.max(1));
            refused += u64::from(!ok);
        }
    });
    let check = consumer
        .join()
        .map_err(|_| CheckError::new("consumer panicked"))?;
    if !lossy && refused > 0 {
        return Err(CheckError::new(format!("{refused} pushes failed")));
    }
    check.finish(&[n], refused)?;
    let mut m = percentiles(&h);
    if lossy {
        m[0] = m[0].with_dropped(refused);
    }
    Ok(m)
}

/// `trips` round trips through `trip`, which sends a value and returns the
/// answer (`value + 1`), each timed.
fn round_trips(
    trips: u64,
    mut trip: impl FnMut(u64) -> Option<u64>,
) -> Result<Vec<Measured>, CheckError> {
    let mut h = histogram();
    for i in 0..trips {
        let t = Instant::now();
        let got = trip(i);
        h.saturating_record((t.elapsed().as_nanos() as u64).max(1));
        if got != Some(i + 1) {
            return Err(CheckError::new(format!(
                "round trip {i}: answer {got:?}, expected {}",
                i + 1
            )));
        }
    }
    Ok(percentiles(&h))
}

/// Bytes of each record of the append-latency cases.
const RECORD: usize = 64;

/// Runs `f` in an empty `dir`, removed afterwards whatever happened.
fn fresh_dir(
    dir: &Path,
    f: impl FnOnce(&Path) -> Result<Vec<Measured>, CheckError>,
) -> Result<Vec<Measured>, CheckError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let r = f(dir);
    let _ = std::fs::remove_dir_all(dir);
    r
}

/// Runs `writers` threads that each time `per_writer` calls of `op(writer,
/// seq, record)`, and merges their histograms.
fn timed_writers<S: Send + 'static>(
    states: Vec<S>,
    per_writer: u64,
    op: fn(&mut S, usize, u64, &mut [u8]) -> Result<(), String>,
) -> Result<(Vec<S>, Histogram<u64>), CheckError> {
    let threads: Vec<_> = states
        .into_iter()
        .enumerate()
        .map(|(p, mut st)| {
            thread::spawn(move || -> Result<(S, Histogram<u64>), String> {
                let mut h = histogram();
                let mut rec = [0u8; RECORD];
                for seq in 0..per_writer {
                    rec[..8].copy_from_slice(&item(p, seq).to_le_bytes());
                    let t = Instant::now();
                    op(&mut st, p, seq, &mut rec)?;
                    h.saturating_record((t.elapsed().as_nanos() as u64).max(1));
                }
                Ok((st, h))
            })
        })
        .collect();
    let mut all = histogram();
    let mut states = Vec::new();
    let mut failure = None;
    for t in threads {
        match t.join() {
            Ok(Ok((st, h))) => {
                states.push(st);
                all.add(&h)
                    .map_err(|e| CheckError::new(format!("histogram: {e}")))?;
            }
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some("writer panicked".into()),
        }
    }
    match failure {
        Some(e) => Err(CheckError::new(e)),
        None => Ok((states, all)),
    }
}

/// `per_writer` timed appends of 64-byte records from each of `writers`
/// threads into the pipeline `ringlog run` builds over `design`; the journal is verified
/// afterwards (clean, every record there).
fn append_latency(
    dir: &Path,
    design: Design,
    writers: usize,
    per_writer: u64,
) -> Result<Vec<Measured>, CheckError> {
    let journal_dir = dir.join("journal");
    let mut config = PipelineConfig::new(&journal_dir, design, 64 << 20, writers);
    config.journal.sync = SyncPolicy::EveryMillis(100);
    let (ws, pipe) =
        pipeline::start(config).map_err(|e| CheckError::new(format!("pipeline: {e}")))?;
    let timed = timed_writers(ws, per_writer, |w, p, seq, rec| {
        let got = w.append(rec, None).map_err(|e| format!("append: {e}"))?;
        if got != seq {
            return Err(format!("writer {p}: append gave seq {got}, expected {seq}"));
        }
        Ok(())
    });
    let report = pipe
        .shutdown()
        .map_err(|e| CheckError::new(format!("pipeline: {e}")))?;
    let (_, h) = timed?;
    let v = journal::verify(&journal_dir).map_err(|e| CheckError::new(format!("verify: {e}")))?;
    let want = per_writer * writers as u64;
    if !v.is_clean() || v.records != want || report.records != want {
        return Err(CheckError::new(format!(
            "journal: clean {}, {} records (reader {}), {want} appended",
            v.is_clean(),
            v.records,
            report.records
        )));
    }
    Ok(percentiles(&h))
}

/// The same records through one `BufWriter` behind a mutex, then flush and
/// `fdatasync`; the file length is checked.
fn mutex_latency(dir: &Path, writers: usize, per_writer: u64) -> Result<Vec<Measured>, CheckError> {
    let path = dir.join("out.bin");
    let out = Arc::new(Mutex::new(BufWriter::with_capacity(
        64 << 10,
        File::create(&path)?,
    )));
    let states = (0..writers).map(|_| out.clone()).collect();
    drop(out);
    let (states, h) = timed_writers(states, per_writer, |out, _, _, rec| {
        out.lock()
            .map_err(|_| "a writer panicked".to_string())?
            .write_all(rec)
            .map_err(|e| format!("write: {e}"))
    })?;
    let out = states.into_iter().next().expect("at least one writer");
    let out = Arc::into_inner(out).ok_or_else(|| CheckError::new("a writer kept the file"))?;
    let f = out
        .into_inner()
        .map_err(|_| CheckError::new("a writer panicked"))?
        .into_inner()
        .map_err(|e| e.into_error())?;
    f.sync_data()?;
    drop(f);
    crate::check::file_len(&path, per_writer * writers as u64 * RECORD as u64)?;
    Ok(percentiles(&h))
}

/// The timer around nothing: what every figure here includes.
fn timer_latency(writers: usize, per_writer: u64) -> Result<Vec<Measured>, CheckError> {
    let states = vec![(); writers];
    let (_, h) = timed_writers(states, per_writer, |_, _, _, rec| {
        std::hint::black_box(rec);
        Ok(())
    })?;
    Ok(percentiles(&h))
}

/// How long an idle case measures.
const IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// The idle cost of a blocked consumer: CPU time of the whole process per
/// second of wall time while the consumer waits and its producer is alive
/// but silent, after one item has crossed and the spin budget has passed.
/// The main thread sleeps meanwhile, so the figure is the consumer's (and
/// any thread the primitive runs).
fn idle_consumers(b: &mut Bench) {
    let group = "idle consumer, live silent producer: CPU time per second of wall time, ns";
    let case = |name: &str, role| Case::new(group, name, role, Unit::Nanos, 2);
    b.case(case("ringlog spsc pop", Role::Ringlog), || {
        let (mut tx, mut rx) = ringlog::spsc::channel::<u64>(CAP);
        idle_cpu(
            move || {
                while let Ok(v) = rx.pop(None) {
                    std::hint::black_box(v);
                }
            },
            move || {
                tx.push(1, None).map_err(|_| "push")?;
                Ok(Box::new(tx))
            },
        )
    });
    b.case(case("ringlog mpsc Block pop", Role::Ringlog), || {
        let (mut tx, mut rx) = mpsc::channel::<u64>(CAP, Policy::BLOCK).expect("valid");
        idle_cpu(
            move || {
                while let Ok(v) = rx.pop(None) {
                    std::hint::black_box(v);
                }
            },
            move || {
                tx.push(1).map_err(|_| "push")?;
                Ok(Box::new(tx))
            },
        )
    });
    for (design, name) in [
        (
            ringlog::bytes::Design::FanIn,
            "ringlog bytes fan-in read (4 writers)",
        ),
        (
            ringlog::bytes::Design::DoubleBuffer,
            "ringlog bytes double buffer read (4 writers)",
        ),
    ] {
        b.case(case(name, Role::Ringlog), || {
            use ringlog::bytes::{ByteQueueWriter, Config};
            let (mut ws, mut r) =
                ringlog::bytes::channel(design, Config::new(1 << 16, 4)).expect("valid");
            idle_cpu(
                move || {
                    while let Ok(batch) = r.read(None) {
                        batch.release();
                    }
                },
                move || {
                    ws[0].push(b"one", None).map_err(|_| "push")?;
                    Ok(Box::new(ws))
                },
            )
        });
    }
    b.case(case("crossbeam-channel bounded recv", Role::Peer), || {
        let (tx, rx) = crossbeam_channel::bounded::<u64>(CAP);
        idle_cpu(
            move || {
                while let Ok(v) = rx.recv() {
                    std::hint::black_box(v);
                }
            },
            move || {
                tx.send(1).map_err(|_| "send")?;
                Ok(Box::new(tx))
            },
        )
    });
}

/// Runs `consume` on a thread, `start` (which sends one item and returns
/// the producer side, kept alive) on this one, waits for the consumer to
/// settle, then measures the process's CPU time over [`IDLE_FOR`]; dropping
/// the producer side ends the consumer.
fn idle_cpu(
    consume: impl FnOnce() + Send + 'static,
    start: impl FnOnce() -> Result<Box<dyn std::any::Any>, &'static str>,
) -> Result<Measured, CheckError> {
    let consumer = thread::spawn(consume);
    let keep = start().map_err(CheckError::new)?;
    // Past every spin budget and the first bounded sleeps.
    thread::sleep(std::time::Duration::from_millis(100));
    let cpu0 = crate::pin::cpu_time();
    let t0 = Instant::now();
    thread::sleep(IDLE_FOR);
    let cpu = crate::pin::cpu_time().saturating_sub(cpu0);
    let wall = t0.elapsed();
    drop(keep);
    consumer
        .join()
        .map_err(|_| CheckError::new("idle consumer panicked"))?;
    Ok(Measured::nanos(cpu.as_nanos() as f64 / wall.as_secs_f64()))
}
