//! MPSC throughput of `u64` items, capacity 4096, at 1, 2 and 4 producers:
//! ringlog's typed MPSC under every policy (blocking calls) against the
//! blocking channels crossbeam-channel, flume, kanal and
//! `std::sync::mpsc::sync_channel`, each pinned and unpinned, with the items
//! the consumer got per call. Under the drop policies the figure
//! is completed pushes per second (delivered or dropped: the rate a producer
//! gets through its stream) and the row carries the drop count; delivered +
//! dropped must equal sent, and each producer's sequence must stay in order.

use crate::bench::{Bench, Case, Measured, Role, Unit};
use crate::check::{item, CheckError, SeqCheck};
use crate::pin::spawn;
use ringlog::mpsc::{self, Policy, PushError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const CAP: usize = 4096;

/// Runs the scenario.
pub fn run(b: &mut Bench) {
    b.scenario("mpsc");
    let total = b.settings.size(8_000_000, 800_000, 1_000);
    let dir = b.settings.work_dir.clone();
    for p in [1usize, 2, 4] {
        let n = total / p as u64;
        let group = format!("u64, {p} producer{}", if p == 1 { "" } else { "s" });
        let case = |name: &str, role| Case::new(&group, name, role, Unit::ItemsPerSec, p + 1);
        b.throughput(case("ringlog mpsc Block", Role::Ringlog), || {
            ringlog_run(p, n, Policy::BLOCK)
        });
        b.throughput(case("ringlog mpsc DropNewest", Role::Ringlog), || {
            ringlog_run(p, n, Policy::DropNewest)
        });
        b.throughput(case("ringlog mpsc DropOldest", Role::Ringlog), || {
            ringlog_run(p, n, Policy::DropOldest)
        });
        let mut k = 0;
        b.throughput(case("ringlog mpsc SpillToDisk", Role::Ringlog), || {
            k += 1;
            let path = dir.join(format!("mpsc-{p}-{k}.spill"));
            let r = ringlog_run(p, n, Policy::SpillToDisk(path.clone()));
            let _ = std::fs::remove_file(&path);
            r
        });
        b.throughput(case("crossbeam-channel bounded", Role::Peer), || {
            peer_run(p, n, || {
                let (tx, rx) = crossbeam_channel::bounded::<u64>(CAP);
                (move |v| tx.send(v).is_ok(), rx.into_iter())
            })
        });
        b.throughput(case("flume bounded", Role::Peer), || {
            peer_run(p, n, || {
                let (tx, rx) = flume::bounded::<u64>(CAP);
                (move |v| tx.send(v).is_ok(), rx.into_iter())
            })
        });
        b.throughput(case("kanal bounded", Role::Peer), || {
            peer_run(p, n, || {
                let (tx, rx) = kanal::bounded::<u64>(CAP);
                (
                    move |v| tx.send(v).is_ok(),
                    std::iter::from_fn(move || rx.recv().ok()),
                )
            })
        });
        b.throughput(case("std sync_channel", Role::Peer), || {
            peer_run(p, n, || {
                let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(CAP);
                (move |v| tx.send(v).is_ok(), rx.into_iter())
            })
        });
    }
}

fn ringlog_run(p: usize, n: u64, policy: Policy) -> Result<Measured, CheckError> {
    let lossy = matches!(policy, Policy::DropNewest | Policy::DropOldest);
    let (tx, mut rx) = mpsc::spill_channel::<u64>(CAP, policy)
        .map_err(|e| CheckError::new(format!("channel: {e}")))?;
    let refused = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let producers: Vec<_> = (0..p)
        .map(|id| {
            let mut tx = tx.clone();
            let (refused, failed) = (refused.clone(), failed.clone());
            spawn(move || {
                let mut dropped = 0;
                for s in 0..n {
                    match tx.push(item(id, s)) {
                        Ok(()) => {}
                        Err(PushError::Full(_)) => dropped += 1,
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
                refused.fetch_add(dropped, Ordering::Relaxed);
            })
        })
        .collect();
    drop(tx);
    let mut check = if lossy {
        SeqCheck::lossy(p)
    } else {
        SeqCheck::exact(p)
    };
    let mut out = Vec::with_capacity(1024);
    let mut calls = 0;
    while rx.take_batch_until(1024, &mut out, None).is_ok() {
        calls += 1;
        for v in out.drain(..) {
            check.see(v);
        }
    }
    let elapsed = start.elapsed();
    for h in producers {
        h.join().map_err(|_| CheckError::new("producer panicked"))?;
    }
    if failed.load(Ordering::Relaxed) > 0 {
        return Err(CheckError::new(
            "a push failed (disconnected or spill error)",
        ));
    }
    let stats = rx.stats();
    if stats.spill_lost > 0 {
        return Err(CheckError::new(format!(
            "{} spilled items could not be replayed",
            stats.spill_lost
        )));
    }
    let refused = refused.load(Ordering::Relaxed);
    if refused != stats.dropped_newest {
        return Err(CheckError::new(format!(
            "producers saw {refused} refusals, the channel counted {}",
            stats.dropped_newest
        )));
    }
    let dropped = stats.dropped_newest + stats.dropped_oldest;
    let delivered = check.finish(&vec![n; p], dropped)?;
    Ok(if lossy {
        // A dropping producer never waits, so it finishes long before the
        // consumer could have read its stream: count what every push did.
        Measured::rate(delivered + dropped, elapsed).with_dropped(dropped)
    } else {
        Measured::rate(delivered, elapsed)
    }
    .with_per_call(delivered, calls))
}

/// A peer channel: `make` builds it and returns a cloneable send function
/// (false once the receiver is gone) and the receiving iterator, which ends
/// when every sender is dropped. Their receivers take one item per call.
fn peer_run<S, R>(p: usize, n: u64, make: impl FnOnce() -> (S, R)) -> Result<Measured, CheckError>
where
    S: Fn(u64) -> bool + Clone + Send + 'static,
    R: Iterator<Item = u64>,
{
    let (send, rx) = make();
    let start = Instant::now();
    let producers: Vec<_> = (0..p)
        .map(|id| {
            let send = send.clone();
            spawn(move || {
                for s in 0..n {
                    if !send(item(id, s)) {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(send);
    let mut check = SeqCheck::exact(p);
    for v in rx {
        check.see(v);
    }
    let elapsed = start.elapsed();
    for h in producers {
        h.join().map_err(|_| CheckError::new("producer panicked"))?;
    }
    let delivered = check.finish(&vec![n; p], 0)?;
    Ok(Measured::rate(delivered, elapsed).with_per_call(delivered, delivered))
}
