//! Two-thread stress tests of the typed SPSC ring: sequence-numbered,
//! checksummed values through every push and pop flavour, with small rings
//! so that full, empty, wrap-around and sleeping happen constantly; values
//! that count their drops; and more threads than cores.

use ringlog::spsc::{self, Consumer, PopError, Producer, PushError, TryPopError};
use ringlog::wait::{deadline_after, Deadline};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// How many values a test moves: millions in release, less unoptimised.
fn count(release: u64) -> u64 {
    if cfg!(miri) {
        200
    } else if cfg!(debug_assertions) {
        release / 10
    } else {
        release
    }
}

/// A generous bound on any single wait: a hang fails instead of blocking CI.
fn patience() -> Deadline {
    deadline_after(Some(Duration::from_secs(20)))
}

/// splitmix64: a cheap, well-mixed checksum of the sequence number.
fn mix(seq: u64) -> u64 {
    let mut z = seq.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A value that proves its own integrity: `[seq, mix(seq), !seq, seq ^ mix]`.
type Item = [u64; 4];

fn item(seq: u64) -> Item {
    let m = mix(seq);
    [seq, m, !seq, seq ^ m]
}

fn check(expected: u64, got: &Item) {
    assert_eq!(
        got,
        &item(expected),
        "value {expected} lost, duplicated or torn"
    );
}

#[test]
fn single_values_arrive_in_order_and_intact() {
    let n = count(3_000_000);
    let (mut tx, mut rx) = spsc::channel::<(u64, u64)>(1024);
    let producer = thread::spawn(move || {
        for seq in 0..n {
            if let Err(e) = tx.push((seq, mix(seq)), patience()) {
                panic!("push of {seq} failed: {e}");
            }
        }
    });
    for seq in 0..n {
        match rx.pop(patience()) {
            Ok(got) => assert_eq!(got, (seq, mix(seq)), "value {seq}"),
            Err(e) => panic!("pop of {seq} failed: {e}"),
        }
    }
    assert_eq!(rx.pop(patience()), Err(PopError::Disconnected));
    producer.join().unwrap();
    assert_eq!(rx.stats().records, n);
}

/// The producer mixes `push`, `try_push`, `push_iter`, `push_batch`,
/// `push_slice` and `push_all`; the consumer mixes `pop`, `try_pop`,
/// `take_batch`, `take_batch_wait`, `drain` and `drain_wait`. The ring is small, so both sides
/// keep filling, draining and sleeping.
fn mixed_run(mut tx: Producer<Item>, mut rx: Consumer<Item>, n: u64) {
    let producer = thread::spawn(move || {
        let mut seq = 0;
        let mut round = 0u64;
        let mut buf = Vec::new();
        while seq < n {
            round += 1;
            let len = (mix(round) % 37 + 1).min(n - seq);
            match round % 6 {
                0 => {
                    tx.push(item(seq), patience())
                        .unwrap_or_else(|e| panic!("{seq}: {e}"));
                    seq += 1;
                }
                1 => match tx.try_push(item(seq)) {
                    Ok(()) => seq += 1,
                    Err(e) => assert!(matches!(e, spsc::TryPushError::Full(_))),
                },
                2 => seq += tx.push_iter(&mut (seq..seq + len).map(item)) as u64,
                3 => {
                    buf.clear();
                    buf.extend((seq..seq + len).map(item));
                    seq += tx.push_batch(&mut buf) as u64;
                }
                4 => {
                    let vals: Vec<Item> = (seq..seq + len).map(item).collect();
                    seq += tx.push_slice(&vals) as u64;
                }
                _ => {
                    buf.clear();
                    buf.extend((seq..seq + len).map(item));
                    let pushed = tx.push_all(&mut buf, patience()) as u64;
                    assert_eq!(pushed, len, "push_all timed out at {seq}");
                    seq += pushed;
                }
            }
        }
        tx.stats()
    });
    let mut seq = 0;
    let mut round = 0u64;
    let mut out = Vec::new();
    while seq < n {
        round += 1;
        match round % 6 {
            0 => match rx.pop(patience()) {
                Ok(v) => {
                    check(seq, &v);
                    seq += 1;
                }
                Err(e) => panic!("pop at {seq}: {e}"),
            },
            1 => match rx.try_pop() {
                Ok(v) => {
                    check(seq, &v);
                    seq += 1;
                }
                Err(e) => assert_eq!(e, TryPopError::Empty),
            },
            2 => {
                out.clear();
                rx.take_batch((mix(round) % 50) as usize, &mut out);
                for v in &out {
                    check(seq, v);
                    seq += 1;
                }
            }
            4 => {
                // A drain that stops part way: the rest stays for later.
                let take = (mix(round) % 40) as usize;
                for v in rx.drain(64).take(take) {
                    check(seq, &v);
                    seq += 1;
                }
            }
            5 => match rx.drain_wait(64, patience()) {
                Ok(batch) => {
                    for v in batch {
                        check(seq, &v);
                        seq += 1;
                    }
                }
                Err(e) => panic!("drain_wait at {seq}: {e}"),
            },
            _ => {
                out.clear();
                match rx.take_batch_wait(64, &mut out, patience()) {
                    Ok(_) => {}
                    Err(e) => panic!("take_batch_wait at {seq}: {e}"),
                }
                for v in &out {
                    check(seq, v);
                    seq += 1;
                }
            }
        }
    }
    let sent = producer.join().unwrap();
    assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
    assert_eq!(sent.records, n);
    assert_eq!(rx.stats().records, n);
}

#[test]
fn every_push_and_pop_flavour_together() {
    let (tx, rx) = spsc::channel::<Item>(64);
    mixed_run(tx, rx, count(2_000_000));
}

#[test]
fn more_threads_than_cores() {
    // Three rings, six busy threads on what may be two cores: waits must
    // yield and sleep rather than spin the other side off its core.
    let runs: Vec<_> = (0..3)
        .map(|i| {
            thread::spawn(move || {
                let (tx, rx) = spsc::channel::<Item>(16 << i);
                mixed_run(tx, rx, count(300_000));
            })
        })
        .collect();
    for r in runs {
        r.join().unwrap();
    }
}

/// Counts creations and drops of itself.
struct Tracked {
    seq: u64,
    check: u64,
    drops: Arc<AtomicU64>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Relaxed);
    }
}

#[test]
fn every_value_is_dropped_exactly_once() {
    let n = count(500_000);
    let drops = Arc::new(AtomicU64::new(0));
    let (mut tx, mut rx) = spsc::channel::<Tracked>(128);
    let d = drops.clone();
    let producer = thread::spawn(move || {
        let mut made = 0u64;
        for seq in 0..n {
            let v = Tracked {
                seq,
                check: mix(seq),
                drops: d.clone(),
            };
            made += 1;
            match tx.push(v, patience()) {
                Ok(()) => {}
                // The consumer left; the value came back and is dropped here.
                Err(PushError::Disconnected(_)) => break,
                Err(e) => panic!("push of {seq}: {e}"),
            }
        }
        made
    });
    // Read about half, then walk away with values still in the ring.
    for seq in 0..n / 2 {
        let v = rx
            .pop(patience())
            .unwrap_or_else(|e| panic!("pop of {seq}: {e}"));
        assert_eq!((v.seq, v.check), (seq, mix(seq)));
    }
    drop(rx);
    let made = producer.join().unwrap();
    assert!(made > n / 2);
    assert_eq!(
        drops.load(Relaxed),
        made,
        "every value made is dropped once"
    );
}
