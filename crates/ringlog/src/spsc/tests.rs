//! Unit tests of the typed SPSC ring; small enough for Miri.

use super::*;
use crate::sync::Arc as StdArc;
use crate::sync::{AtomicUsize as Counter, Ordering::Relaxed};
use std::time::Duration;

/// Counts its drops in a shared counter.
#[derive(Debug)]
struct Tracked {
    id: usize,
    drops: StdArc<Counter>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Relaxed);
    }
}

fn tracked(drops: &StdArc<Counter>, id: usize) -> Tracked {
    Tracked {
        id,
        drops: drops.clone(),
    }
}

#[test]
fn capacity_rounds_up_to_a_power_of_two() {
    assert_eq!(channel::<u8>(0).0.capacity(), 1);
    assert_eq!(channel::<u8>(1).0.capacity(), 1);
    assert_eq!(channel::<u8>(5).0.capacity(), 8);
    assert_eq!(channel::<u8>(64).1.capacity(), 64);
}

#[test]
fn impossible_capacity_is_an_error() {
    let e = try_channel::<[u8; 1024]>(usize::MAX / 2).unwrap_err();
    let CapacityError::TooLarge {
        slot_bytes, max, ..
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!(slot_bytes, 1024);
    assert!(max < usize::MAX / 2);
    assert!(try_channel::<u64>(usize::MAX).is_err());
}

/// 2^40 slots of 8 bytes fit the address space but no machine's memory:
/// the allocator's refusal is an error, not an abort.
#[test]
#[cfg_attr(miri, ignore = "Miri reports a huge allocation as resource exhaustion")]
fn unallocatable_capacity_is_an_error() {
    let e = try_channel::<u64>(1 << 40).unwrap_err();
    assert!(
        matches!(e, CapacityError::Alloc { requested, slot_bytes: 8, .. } if requested == 1 << 40),
        "{e:?}"
    );
    assert!(e.to_string().contains("1099511627776 slots"), "{e}");
}

#[test]
fn empty_then_full_then_empty() {
    let (mut tx, mut rx) = channel::<u32>(4);
    assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
    assert_eq!(tx.free_slots(), 4);
    for i in 0..4 {
        tx.try_push(i).unwrap();
    }
    assert_eq!(tx.free_slots(), 0);
    assert_eq!(rx.available(), 4);
    let e = tx.try_push(99).unwrap_err();
    assert!(matches!(e, TryPushError::Full(99)));
    assert_eq!(format!("{e:?}"), "Full(..)");
    assert_eq!(e.to_string(), "ring is full");
    assert_eq!(e.into_inner(), 99);
    for i in 0..4 {
        assert_eq!(rx.try_pop(), Ok(i));
    }
    assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
    assert_eq!(tx.free_slots(), 4);
}

#[test]
fn wraps_around_many_times() {
    let (mut tx, mut rx) = channel::<usize>(4);
    let mut next_out = 0;
    for i in 0..100 {
        tx.try_push(i).unwrap();
        if i % 3 == 2 {
            tx.try_push_or_drop(usize::MAX); // may or may not fit
        }
        // Keep the ring partly full so indices cross the end mid-batch.
        while rx.available() > 2 {
            let v = rx.try_pop().unwrap();
            if v != usize::MAX {
                assert_eq!(v, next_out);
                next_out += 1;
            }
        }
    }
    let mut rest = Vec::new();
    rx.take_batch(usize::MAX, &mut rest);
    rest.retain(|&v| v != usize::MAX);
    assert_eq!(rest, (next_out..100).collect::<Vec<_>>());
}

#[test]
fn indices_wrap_around_usize_max() {
    // Start both sides just below the wrap of the monotonic indices.
    let start = usize::MAX - 5;
    let (mut tx, mut rx) = channel_starting_at::<u16>(4, start);
    let mut out = Vec::new();
    for round in 0..5u16 {
        assert_eq!(tx.push_slice(&[round, round + 100, round + 200]), 3);
        assert_eq!(rx.try_pop(), Ok(round));
        out.clear();
        assert_eq!(rx.take_batch(10, &mut out), 2);
        assert_eq!(out, [round + 100, round + 200]);
    }
    assert_eq!(tx.free_slots(), 4);
    assert_eq!(tx.stats().records, 15, "the indices crossed usize::MAX");
}

#[test]
fn batches_take_what_fits() {
    let (mut tx, mut rx) = channel::<u8>(8);
    assert_eq!(tx.push_slice(&[1, 2, 3]), 3);
    let mut v = vec![4, 5, 6, 7, 8, 9, 10];
    assert_eq!(tx.push_batch(&mut v), 5);
    assert_eq!(v, [9, 10]);
    assert_eq!(tx.push_batch(&mut v), 0);
    assert_eq!(tx.push_slice(&[0]), 0);
    let mut out = Vec::new();
    assert_eq!(rx.take_batch(0, &mut out), 0);
    assert_eq!(rx.take_batch(6, &mut out), 6);
    assert_eq!(out, [1, 2, 3, 4, 5, 6]);
    let mut it = 20..30;
    assert_eq!(tx.push_iter(&mut it), 6);
    assert_eq!(it.next(), Some(26), "nothing pulled beyond the free slots");
    out.clear();
    assert_eq!(rx.take_batch(100, &mut out), 8);
    assert_eq!(out, [7, 8, 20, 21, 22, 23, 24, 25]);
    assert_eq!(rx.take_batch(100, &mut out), 0);

    let tx_stats = tx.stats();
    assert_eq!(tx_stats.records, 14);
    assert_eq!(tx_stats.total_batches, 3);
    let rx_stats = rx.stats();
    assert_eq!(rx_stats.records, 14);
    assert_eq!(rx_stats.bytes, 14);
    assert_eq!(rx_stats.total_batches, 2);
}

#[test]
fn stats_derived_from_indices_count_singles_and_batches() {
    // Singles are derived from the index, batches counted: mix both, across
    // the wrap of the indices, with blocking and non-blocking calls.
    let (mut tx, mut rx) = channel_starting_at::<u32>(8, usize::MAX - 3);
    assert_eq!(
        tx.stats(),
        SpscStats::default(),
        "a fresh handle counts nothing"
    );
    tx.try_push(1).unwrap();
    tx.push(2, None).unwrap();
    assert_eq!(tx.push_slice(&[3, 4, 5]), 3);
    assert!(tx.try_push_or_drop(6));
    assert_eq!(tx.push_slice(&[]), 0, "an empty batch is not counted");
    assert_eq!(rx.try_pop(), Ok(1));
    let mut out = Vec::new();
    assert_eq!(rx.take_batch(3, &mut out), 3);
    assert_eq!(rx.pop(None), Ok(5));
    assert_eq!(rx.take_batch(8, &mut out), 1);
    assert_eq!(
        rx.take_batch(8, &mut out),
        0,
        "an empty take is not counted"
    );
    assert_eq!(out, [2, 3, 4, 6]);
    let s = tx.stats();
    // 3 single pushes + 1 slice of 3.
    assert_eq!((s.records, s.bytes, s.total_batches), (6, 24, 4));
    let r = rx.stats();
    // 2 single pops + 2 batches of 3 and 1.
    assert_eq!((r.records, r.bytes, r.total_batches), (6, 24, 4));

    // Across threads, with every call blocking.
    let n: u32 = if cfg!(miri) { 200 } else { 10_000 };
    let t = std::thread::spawn(move || {
        for i in 0..n {
            tx.push(i, None).unwrap();
        }
        tx.stats()
    });
    let mut got = 0u32;
    while let Ok(v) = rx.pop(None) {
        assert_eq!(v, got);
        got += 1;
    }
    let s = t.join().unwrap();
    assert_eq!(got, n);
    assert_eq!((s.records, s.total_batches), (6 + n as u64, 4 + n as u64));
    let r = rx.stats();
    assert_eq!((r.records, r.total_batches), (6 + n as u64, 4 + n as u64));
}

#[test]
fn drop_path_counts_batches() {
    let (mut tx, mut rx) = channel::<u64>(4);
    assert!(tx.try_push_batch_or_drop([1, 2, 3]));
    assert!(!tx.try_push_batch_or_drop([4, 5]), "only one slot left");
    assert!(tx.try_push_or_drop(6));
    assert!(!tx.try_push_or_drop(7));
    assert!(tx.try_push_batch_or_drop(std::iter::empty()));
    let s = tx.stats();
    assert_eq!((s.records, s.bytes, s.total_batches), (4, 32, 2));
    assert_eq!((s.dropped_batches, s.dropped_records), (2, 3));
    let mut out = Vec::new();
    rx.take_batch(10, &mut out);
    assert_eq!(out, [1, 2, 3, 6]);
    assert_eq!(rx.stats().dropped_batches, 0);
}

#[test]
fn producer_drop_disconnects_after_drain() {
    let (mut tx, mut rx) = channel::<u32>(4);
    tx.try_push(1).unwrap();
    tx.try_push(2).unwrap();
    assert!(!rx.is_abandoned());
    drop(tx);
    assert!(rx.is_abandoned());
    assert_eq!(rx.try_pop(), Ok(1));
    assert_eq!(rx.pop(None), Ok(2));
    assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
    assert_eq!(rx.pop(None), Err(PopError::Disconnected));
    let mut out = Vec::new();
    assert_eq!(rx.take_batch(4, &mut out), 0);
    assert_eq!(
        rx.take_batch_wait(4, &mut out, None),
        Err(PopError::Disconnected)
    );
}

#[test]
fn consumer_drop_disconnects_when_full() {
    let (mut tx, rx) = channel::<String>(2);
    assert!(!tx.is_abandoned());
    drop(rx);
    assert!(tx.is_abandoned());
    tx.try_push("a".into()).unwrap();
    tx.try_push("b".into()).unwrap();
    let e = tx.try_push("c".into()).unwrap_err();
    assert_eq!(format!("{e:?}"), "Disconnected(..)");
    assert_eq!(e.into_inner(), "c");
    let e = tx.push("d".into(), None).unwrap_err();
    assert!(matches!(e, PushError::Disconnected(ref s) if s == "d"));
    let mut rest = vec!["e".to_string()];
    assert_eq!(tx.push_all(&mut rest, None), 0);
    assert_eq!(rest, ["e"]);
}

#[test]
fn timeouts_give_the_value_back() {
    let (mut tx, mut rx) = channel::<u8>(1);
    let soon = || crate::wait::deadline_after(Some(Duration::from_millis(1)));
    assert_eq!(rx.pop(soon()), Err(PopError::Timeout));
    let mut out = Vec::new();
    assert_eq!(
        rx.take_batch_wait(1, &mut out, soon()),
        Err(PopError::Timeout)
    );
    assert_eq!(rx.take_batch_wait(0, &mut out, soon()), Ok(0));
    tx.try_push(1).unwrap();
    let e = tx.push(2, soon()).unwrap_err();
    assert_eq!(format!("{e:?}"), "Timeout(..)");
    assert!(matches!(e, PushError::Timeout(2)));
    let mut more = vec![3, 4];
    assert_eq!(tx.push_all(&mut more, soon()), 0);
    assert_eq!(rx.take_batch_wait(5, &mut out, soon()), Ok(1));
    assert_eq!(out, [1]);
}

#[test]
fn unread_items_are_dropped_exactly_once() {
    let drops = StdArc::new(Counter::new(0));
    {
        let (mut tx, mut rx) = channel::<Tracked>(4);
        for round in 0..3 {
            for i in 0..3 {
                tx.try_push(tracked(&drops, round * 10 + i)).unwrap();
            }
            let v = rx.try_pop().unwrap();
            assert_eq!(v.id, round * 10);
            drop(v);
            let mut out = Vec::new();
            if round < 2 {
                rx.take_batch(2, &mut out);
            }
        }
        // Two values of the last round are unread; two more join them.
        let mut v = vec![tracked(&drops, 100), tracked(&drops, 101)];
        assert_eq!(tx.push_batch(&mut v), 2);
        assert!(!tx.try_push_or_drop(tracked(&drops, 102)));
        assert_eq!(drops.load(Relaxed), 8, "popped (7) and dropped-on-full (1)");
        drop(rx);
        assert_eq!(drops.load(Relaxed), 8, "the producer still holds the ring");
        drop(tx);
    }
    assert_eq!(drops.load(Relaxed), 12);
}

#[test]
fn unread_items_dropped_when_producer_goes_last() {
    let drops = StdArc::new(Counter::new(0));
    let (mut tx, rx) = channel::<Tracked>(2);
    tx.try_push(tracked(&drops, 1)).unwrap();
    drop(rx);
    let e = tx.try_push(tracked(&drops, 2));
    assert!(e.is_ok());
    let e = tx.try_push(tracked(&drops, 3)).unwrap_err();
    drop(e);
    assert_eq!(drops.load(Relaxed), 1);
    drop(tx);
    assert_eq!(drops.load(Relaxed), 3);
}

#[test]
fn zero_sized_values() {
    let (mut tx, mut rx) = channel::<()>(2);
    tx.try_push(()).unwrap();
    tx.try_push(()).unwrap();
    assert!(tx.try_push(()).is_err());
    assert_eq!(rx.try_pop(), Ok(()));
    assert_eq!(rx.stats().bytes, 0);
}

#[test]
fn two_threads_hand_over_in_order() {
    let n: u64 = if cfg!(miri) { 300 } else { 100_000 };
    let (mut tx, mut rx) = channel::<u64>(8);
    let producer = std::thread::spawn(move || {
        let mut i = 0;
        while i < n {
            if i % 7 == 0 {
                let end = (i + 5).min(n);
                let chunk: Vec<u64> = (i..end).collect();
                let mut chunk = chunk;
                i += tx.push_all(&mut chunk, None) as u64;
            } else {
                tx.push(i, None).unwrap();
                i += 1;
            }
        }
    });
    let mut expected = 0;
    let mut out = Vec::new();
    while expected < n {
        if expected % 2 == 0 {
            assert_eq!(rx.pop(None), Ok(expected));
            expected += 1;
        } else {
            out.clear();
            rx.take_batch_wait(3, &mut out, None).unwrap();
            for &v in &out {
                assert_eq!(v, expected);
                expected += 1;
            }
        }
    }
    producer.join().unwrap();
    assert_eq!(rx.pop(None), Err(PopError::Disconnected));
}

/// Also runs under Miri, which emulates the futex (with a provenance
/// warning from rustix's libc backend).
#[test]
fn sleeping_sides_are_woken() {
    let (mut tx, mut rx) = channel::<u32>(1);
    rx.set_wait_strategy(crate::wait::WaitStrategy::SLEEP);
    tx.set_wait_strategy(crate::wait::WaitStrategy::SLEEP);
    let consumer = std::thread::spawn(move || {
        let first = rx.pop(None);
        std::thread::sleep(Duration::from_millis(20));
        let second = rx.pop(None);
        (first, second)
    });
    std::thread::sleep(Duration::from_millis(20));
    tx.try_push(1).unwrap(); // wakes the sleeping consumer
    tx.push(2, None).unwrap(); // sleeps until the consumer frees the slot
    tx.push(3, None).unwrap();
    let (first, second) = consumer.join().unwrap();
    assert_eq!((first, second), (Ok(1), Ok(2)));
    assert!(tx.is_abandoned());
}

#[test]
fn drain_releases_what_it_yielded_and_leaves_the_rest() {
    let (mut tx, mut rx) = channel::<u32>(8);
    assert_eq!(rx.drain(8).len(), 0);
    assert_eq!(tx.push_slice(&[1, 2, 3, 4, 5, 6, 7, 8]), 8);
    assert_eq!(tx.free_slots(), 0);
    {
        let mut d = rx.drain(5);
        assert_eq!(d.len(), 5);
        assert_eq!(d.next(), Some(1));
        assert_eq!(d.next(), Some(2));
        assert_eq!(d.len(), 3);
        // Not yet released: the producer sees no space until the drop.
        assert_eq!(tx.free_slots(), 0);
    }
    assert_eq!(tx.free_slots(), 2);
    assert_eq!(rx.drain(usize::MAX).collect::<Vec<_>>(), [3, 4, 5, 6, 7, 8]);
    assert_eq!(tx.free_slots(), 8);
    let stats = rx.stats();
    assert_eq!((stats.records, stats.total_batches), (8, 2));
    drop(tx);
    assert_eq!(rx.drain(8).next(), None);
    assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
}

#[test]
fn drain_wraps_around_usize_max() {
    let (mut tx, mut rx) = channel_starting_at::<u64>(4, usize::MAX - 2);
    for round in 0..4u64 {
        let mut it = round * 10..round * 10 + 4;
        assert_eq!(tx.push_iter(&mut it), 4);
        let got: Vec<u64> = rx.drain(4).collect();
        assert_eq!(got, (round * 10..round * 10 + 4).collect::<Vec<_>>());
    }
}

/// Counts its drops in a static counter, so that leaking one leaks no
/// allocation.
struct Counted(&'static Counter);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Relaxed);
    }
}

#[test]
fn forgotten_drain_leaks_what_it_did_not_yield_and_nothing_is_dropped_twice() {
    static DROPS: Counter = Counter::new(0);
    let (mut tx, mut rx) = channel::<Counted>(4);
    for _ in 0..4 {
        assert!(tx.try_push(Counted(&DROPS)).is_ok());
    }
    let mut d = rx.drain(3);
    let first = d.next().unwrap();
    std::mem::forget(d);
    drop(first);
    assert_eq!(DROPS.load(Relaxed), 1);
    // The two values the drain did not yield are leaked; the fourth is next.
    assert!(rx.try_pop().is_ok());
    assert_eq!(DROPS.load(Relaxed), 2);
    assert!(tx.try_push(Counted(&DROPS)).is_ok());
    // Dropping both ends drops the one value left, and nothing else.
    drop(rx);
    drop(tx);
    assert_eq!(DROPS.load(Relaxed), 3);
}

#[test]
fn consumer_dropped_after_a_forgotten_drain_drops_nothing_twice() {
    static DROPS: Counter = Counter::new(0);
    let (mut tx, mut rx) = channel::<Counted>(4);
    for _ in 0..2 {
        assert!(tx.try_push(Counted(&DROPS)).is_ok());
    }
    let mut d = rx.drain(2);
    drop(d.next());
    drop(d.next());
    std::mem::forget(d);
    drop(tx);
    drop(rx);
    assert_eq!(DROPS.load(Relaxed), 2);
}

#[test]
fn drain_wait_times_out_then_disconnects() {
    let (mut tx, mut rx) = channel::<u8>(4);
    let soon = crate::wait::deadline_after(Some(Duration::from_millis(1)));
    assert_eq!(rx.drain_wait(4, soon).err(), Some(PopError::Timeout));
    assert_eq!(rx.drain_wait(0, None).map(|d| d.len()).ok(), Some(0));
    tx.push_slice(&[7, 8]);
    drop(tx);
    let got: Vec<u8> = rx.drain_wait(4, None).unwrap().collect();
    assert_eq!(got, [7, 8]);
    assert_eq!(rx.drain_wait(4, None).err(), Some(PopError::Disconnected));
}
