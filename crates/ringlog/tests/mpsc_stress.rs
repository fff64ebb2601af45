//! Stress: 4 producers (more threads than this machine's 2 cores) push
//! sequence-numbered items under every policy while the consumer checks
//! per-producer order, and, where nothing may be lost, that nothing was.
//! Items carry a drop guard, so every item is proved dropped exactly once.
//!
//! `RINGLOG_STRESS_ITEMS` sets the items per producer (default below).
#![cfg(not(loom))]

use ringlog::mpsc::{self, Consumer, Policy, PopError, Producer, PushError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PRODUCERS: u64 = 4;
const CAPACITY: usize = 1024;

fn items_per_producer(default: u64) -> u64 {
    if cfg!(miri) {
        return 200;
    }
    std::env::var("RINGLOG_STRESS_ITEMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A sequence-numbered item that counts its drops.
struct Item {
    /// Producer in the top 16 bits, sequence number below.
    tag: u64,
    /// Check value: a function of `tag`, to catch torn moves.
    check: u64,
    drops: Arc<AtomicU64>,
}

impl Item {
    fn new(p: u64, seq: u64, drops: &Arc<AtomicU64>) -> Self {
        let tag = p << 48 | seq;
        Self {
            tag,
            check: tag.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            drops: drops.clone(),
        }
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the producers and checks what the consumer sees; returns the
/// number of items the consumer received.
fn run(policy: Policy, per: u64, batch: bool) -> (u64, ringlog::mpsc::MpscStats) {
    let drops = Arc::new(AtomicU64::new(0));
    let (tx, mut rx): (Producer<Item>, Consumer<Item>) =
        mpsc::channel(CAPACITY, policy.clone()).unwrap();
    let handles: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let mut tx = tx.clone();
            let drops = drops.clone();
            std::thread::spawn(move || {
                let mut seq = 0;
                let mut buf = Vec::new();
                while seq < per {
                    if batch && seq % 7 == 0 {
                        let n = (per - seq).min(16);
                        buf.extend((seq..seq + n).map(|s| Item::new(p, s, &drops)));
                        seq += n;
                        // Refused items stay in `buf`; they are dropped (and
                        // counted) by `clear`.
                        let _ = tx.push_batch(&mut buf);
                        buf.clear();
                    } else {
                        match tx.push(Item::new(p, seq, &drops)) {
                            Ok(()) | Err(PushError::Full(_)) => {}
                            Err(e) => panic!("producer {p}: {e:?}"),
                        }
                        seq += 1;
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let mut next = [0u64; PRODUCERS as usize];
    let mut received = 0u64;
    let mut out = Vec::with_capacity(256);
    let deadline = ringlog::wait::deadline_after(Some(Duration::from_secs(120)));
    loop {
        out.clear();
        match rx.take_batch_until(256, &mut out, deadline) {
            Ok(_) => {}
            Err(PopError::Disconnected) => break,
            Err(PopError::Timeout) => panic!("consumer stalled; next = {next:?}"),
        }
        for item in &out {
            assert_eq!(
                item.check,
                item.tag.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                "torn item"
            );
            let (p, seq) = ((item.tag >> 48) as usize, item.tag & ((1 << 48) - 1));
            assert!(seq >= next[p], "producer {p}: {seq} after {}", next[p]);
            if matches!(policy, Policy::Block { .. }) {
                assert_eq!(seq, next[p], "producer {p}: item lost");
            }
            next[p] = seq + 1;
        }
        received += out.len() as u64;
    }
    for h in handles {
        h.join().unwrap();
    }
    let stats = rx.stats();
    drop(out);
    drop(rx);
    assert_eq!(
        drops.load(Ordering::Relaxed),
        PRODUCERS * per,
        "every item dropped exactly once"
    );
    (received, stats)
}

#[test]
#[cfg_attr(miri, ignore = "large counts")]
fn stress_block() {
    let per = items_per_producer(5_000_000);
    let (received, s) = run(Policy::BLOCK, per, true);
    assert_eq!(received, PRODUCERS * per);
    assert_eq!((s.pushed, s.popped), (PRODUCERS * per, PRODUCERS * per));
}

#[test]
#[cfg_attr(miri, ignore = "large counts")]
fn stress_drop_newest() {
    let per = items_per_producer(5_000_000);
    let (received, s) = run(Policy::DropNewest, per, true);
    assert_eq!(received, s.popped);
    assert_eq!(s.popped + s.dropped_newest, PRODUCERS * per);
}

#[test]
#[cfg_attr(miri, ignore = "large counts")]
fn stress_drop_oldest() {
    let per = items_per_producer(5_000_000);
    let (received, s) = run(Policy::DropOldest, per, true);
    assert_eq!(received, s.popped);
    assert_eq!(s.popped + s.dropped_oldest, PRODUCERS * per);
}

#[test]
#[cfg_attr(miri, ignore = "file I/O and large counts")]
fn stress_spill() {
    let per = items_per_producer(200_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stress.spill");
    let (tx, mut rx) =
        mpsc::spill_channel::<u64>(CAPACITY, Policy::SpillToDisk(path.clone())).unwrap();
    let handles: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let mut tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut seq = 0;
                while seq < per {
                    if seq % 5 == 0 {
                        let n = (per - seq).min(8);
                        buf.extend((seq..seq + n).map(|s| p << 48 | s));
                        tx.push_batch(&mut buf).unwrap();
                        seq += n;
                    } else {
                        tx.push(p << 48 | seq).unwrap();
                        seq += 1;
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let mut next = [0u64; PRODUCERS as usize];
    let deadline = ringlog::wait::deadline_after(Some(Duration::from_secs(120)));
    loop {
        match rx.pop(deadline) {
            Ok(v) => {
                let (p, seq) = ((v >> 48) as usize, v & ((1 << 48) - 1));
                assert_eq!(seq, next[p], "producer {p}: lost or reordered");
                next[p] += 1;
            }
            Err(PopError::Disconnected) => break,
            Err(PopError::Timeout) => panic!("consumer stalled; next = {next:?}"),
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(next, [per; PRODUCERS as usize]);
    let s = rx.stats();
    assert_eq!(
        (s.pushed, s.popped, s.spill_lost),
        (PRODUCERS * per, PRODUCERS * per, 0)
    );
    assert!(!path.exists(), "spill file removed once drained");
    eprintln!("spilled {} of {}", s.spilled, s.pushed);
}
