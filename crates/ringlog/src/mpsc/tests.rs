//! Unit tests; small enough for Miri.

use super::*;
use crate::sync::{Arc, AtomicUsize, Ordering};
use std::sync::atomic::AtomicUsize as StdAtomicUsize;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// An item that counts its drops.
#[derive(Debug)]
struct Counted {
    id: u64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

fn counted(id: u64, drops: &Arc<AtomicUsize>) -> Counted {
    Counted {
        id,
        drops: drops.clone(),
    }
}

#[test]
fn capacity_is_checked_and_rounded() {
    assert!(matches!(
        channel::<u8>(0, Policy::BLOCK),
        Err(NewChannelError::Capacity { .. })
    ));
    assert!(matches!(
        channel::<u8>(MAX_CAPACITY + 1, Policy::BLOCK),
        Err(NewChannelError::Capacity { .. })
    ));
    let (tx, rx) = channel::<u8>(5, Policy::BLOCK).unwrap();
    assert_eq!((tx.capacity(), rx.capacity()), (8, 8));
    let (tx, _rx) = channel::<u8>(1, Policy::BLOCK).unwrap();
    assert_eq!(tx.capacity(), 2);
    assert!(matches!(
        channel::<u8>(4, Policy::SpillToDisk("x".into())),
        Err(NewChannelError::SpillNeedsCodec)
    ));
}

/// 2^40 slots of `u64` pass the capacity check but no machine has the
/// memory: the allocator's refusal is an error naming the capacity, never
/// an abort.
#[test]
#[cfg_attr(miri, ignore = "Miri reports a huge allocation as resource exhaustion")]
fn unallocatable_capacity_is_an_error() {
    for policy in [Policy::BLOCK, Policy::DropOldest] {
        match channel::<u64>(1 << 40, policy) {
            Err(e @ NewChannelError::Alloc { requested, .. }) => {
                assert_eq!(requested, 1 << 40);
                assert!(e.to_string().contains("1099511627776 slots"), "{e}");
                let source = std::error::Error::source(&e).expect("the allocation error");
                assert!(source.to_string().contains("bytes"), "{source}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn fifo_across_many_laps() {
    let (mut tx, mut rx) = channel::<u32>(4, Policy::BLOCK).unwrap();
    for i in 0..50 {
        tx.push(i).unwrap();
        tx.push(i + 1000).unwrap();
        assert_eq!(rx.try_pop(), Ok(i));
        assert_eq!(rx.try_pop(), Ok(i + 1000));
    }
    assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
}

#[test]
fn block_try_push_full_and_timeout_give_item_back() {
    let (mut tx, mut rx) = channel::<u32>(
        2,
        Policy::Block {
            timeout: Some(Duration::from_millis(5)),
        },
    )
    .unwrap();
    tx.push(1).unwrap();
    tx.push(2).unwrap();
    match tx.try_push(3) {
        Err(TryPushError::Full(3)) => {}
        other => panic!("{other:?}"),
    }
    match tx.push(4) {
        Err(e @ PushError::Timeout(_)) => {
            assert_eq!(format!("{e:?}"), "Timeout(..)");
            assert_eq!(e.into_inner(), 4);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(rx.try_pop(), Ok(1));
    tx.push(5).unwrap();
    assert_eq!(rx.drain().collect::<Vec<_>>(), [2, 5]);
    let s = rx.stats();
    assert_eq!((s.pushed, s.popped, s.dropped_newest), (3, 3, 0));
    assert!(s.blocked > Duration::ZERO);
}

#[test]
fn drop_newest_counts_and_returns() {
    let (mut tx, mut rx) = channel::<u32>(2, Policy::DropNewest).unwrap();
    for i in 0..5 {
        let r = tx.push(i);
        assert_eq!(r.is_ok(), i < 2);
        if let Err(e) = r {
            assert_eq!(e.into_inner(), i);
        }
    }
    assert_eq!(rx.drain().collect::<Vec<_>>(), [0, 1]);
    assert_eq!(rx.stats().dropped_newest, 3);
}

#[test]
fn drop_oldest_keeps_newest_and_drops_each_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut tx, mut rx) = channel::<Counted>(4, Policy::DropOldest).unwrap();
    for i in 0..10 {
        tx.push(counted(i, &drops)).unwrap();
    }
    assert_eq!(drops.load(Ordering::Relaxed), 6);
    let ids: Vec<u64> = rx.drain().map(|c| c.id).collect();
    assert_eq!(ids, [6, 7, 8, 9]);
    assert_eq!(drops.load(Ordering::Relaxed), 10);
    let s = rx.stats();
    assert_eq!((s.pushed, s.popped, s.dropped_oldest), (10, 4, 6));
}

#[test]
fn items_left_in_ring_are_dropped_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let (mut tx, rx) = channel::<Counted>(8, Policy::BLOCK).unwrap();
        for i in 0..5 {
            tx.push(counted(i, &drops)).unwrap();
        }
        drop(rx);
        match tx.push(counted(99, &drops)) {
            Err(PushError::Disconnected(c)) => assert_eq!(c.id, 99),
            other => panic!("{other:?}"),
        }
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }
    assert_eq!(drops.load(Ordering::Relaxed), 6);
}

#[test]
fn disconnected_only_after_everything_read() {
    let (mut tx, mut rx) = channel::<u8>(4, Policy::BLOCK).unwrap();
    let mut tx2 = tx.clone();
    tx.push(1).unwrap();
    tx2.push(2).unwrap();
    drop(tx);
    assert_eq!(rx.try_pop(), Ok(1));
    drop(tx2);
    assert_eq!(rx.try_pop(), Ok(2));
    assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
    assert_eq!(rx.pop(None), Err(PopError::Disconnected));
    assert_eq!(rx.stats().producers, 0);
}

#[test]
fn pop_times_out() {
    let (_tx, mut rx) = channel::<u8>(4, Policy::BLOCK).unwrap();
    let dl = crate::wait::deadline_after(Some(Duration::from_millis(2)));
    assert_eq!(rx.pop(dl), Err(PopError::Timeout));
}

#[test]
fn batches_round_trip_and_wrap() {
    let (mut tx, mut rx) = channel::<u32>(8, Policy::BLOCK).unwrap();
    let mut out = Vec::new();
    let mut next = 0;
    for round in 0..10 {
        let mut items: Vec<u32> = (next..next + 5 + round % 3).collect();
        next += items.len() as u32;
        tx.push_batch(&mut items).unwrap();
        assert!(items.is_empty());
        rx.take_batch(usize::MAX, &mut out).unwrap();
    }
    assert_eq!(out, (0..next).collect::<Vec<_>>());
}

#[test]
fn try_push_batch_full_keeps_rest() {
    let (mut tx, mut rx) = channel::<u32>(4, Policy::BLOCK).unwrap();
    let mut items: Vec<u32> = (0..7).collect();
    match tx.try_push_batch(&mut items) {
        Err(PushBatchError::Full { remaining: 3 }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(items, [4, 5, 6]);
    let mut out = Vec::new();
    assert_eq!(rx.take_batch(2, &mut out), Ok(2));
    tx.try_push_batch(&mut items).unwrap_err();
    assert_eq!(items, [6]);
    rx.take_batch(10, &mut out).unwrap();
    assert_eq!(out, [0, 1, 2, 3, 4, 5]);
}

#[test]
fn drop_oldest_batch_larger_than_ring() {
    let (mut tx, mut rx) = channel::<u32>(4, Policy::DropOldest).unwrap();
    let mut items: Vec<u32> = (0..11).collect();
    tx.push_batch(&mut items).unwrap();
    assert_eq!(rx.drain().collect::<Vec<_>>(), [7, 8, 9, 10]);
    assert_eq!(rx.stats().dropped_oldest, 7);
}

#[test]
fn drop_newest_batch_counts_rest() {
    let (mut tx, _rx) = channel::<u32>(4, Policy::DropNewest).unwrap();
    let mut items: Vec<u32> = (0..6).collect();
    assert!(matches!(
        tx.push_batch(&mut items),
        Err(PushBatchError::Full { remaining: 2 })
    ));
    assert_eq!(tx.stats().dropped_newest, 2);
}

#[test]
fn threads_keep_per_producer_order() {
    let per = if cfg!(miri) { 99 } else { 30_000 }; // multiples of 3
    let (tx, mut rx) = channel::<u64>(8, Policy::BLOCK).unwrap();
    let handles: Vec<_> = (0..3u64)
        .map(|p| {
            let mut tx = tx.clone();
            std::thread::spawn(move || {
                let mut batch = Vec::new();
                for i in 0..per {
                    if i % 3 == 0 {
                        batch.push(p << 32 | i);
                        batch.push(p << 32 | (i + 1));
                        tx.push_batch(&mut batch).unwrap();
                    } else if i % 3 == 2 {
                        tx.push(p << 32 | i).unwrap();
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let mut next = [0u64; 3];
    let mut out = Vec::new();
    let dl = crate::wait::deadline_after(Some(Duration::from_secs(60)));
    loop {
        out.clear();
        match rx.take_batch_until(5, &mut out, dl) {
            Ok(_) => {}
            Err(PopError::Disconnected) => break,
            Err(PopError::Timeout) => panic!("stalled at {next:?}"),
        }
        for v in &out {
            let (p, i) = ((v >> 32) as usize, v & 0xffff_ffff);
            assert_eq!(i, next[p]);
            next[p] += 1;
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(next, [per; 3]);
}

#[test]
fn drop_oldest_threads_drop_each_item_once() {
    let per = if cfg!(miri) { 60 } else { 20_000 };
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = channel::<Counted>(4, Policy::DropOldest).unwrap();
    let handles: Vec<_> = (0..2u64)
        .map(|p| {
            let mut tx = tx.clone();
            let drops = drops.clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    tx.push(counted(p << 32 | i, &drops)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut last = [None::<u64>; 2];
    let mut got = 0;
    let dl = crate::wait::deadline_after(Some(Duration::from_secs(60)));
    loop {
        match rx.pop(dl) {
            Ok(c) => {
                let (p, i) = ((c.id >> 32) as usize, c.id & 0xffff_ffff);
                assert!(last[p].is_none_or(|l| i > l), "order broken");
                last[p] = Some(i);
                got += 1;
            }
            Err(PopError::Disconnected) => break,
            Err(PopError::Timeout) => panic!("stalled"),
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    drop(rx);
    let s_total = 2 * per as usize;
    assert_eq!(drops.load(Ordering::Relaxed), s_total);
    assert!(got > 0);
}

struct CountWaker(StdAtomicUsize);

impl Wake for CountWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn async_send_and_recv_wake_and_cancel_safely() {
    let cw = std::sync::Arc::new(CountWaker(StdAtomicUsize::new(0)));
    let waker = Waker::from(cw.clone());
    let mut cx = Context::from_waker(&waker);
    let (mut tx, mut rx) = channel::<u32>(2, Policy::BLOCK).unwrap();

    // recv on empty: pending, then woken by a push.
    {
        let mut f = rx.recv();
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        tx.try_push(1).unwrap();
        assert_eq!(cw.0.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(Pin::new(&mut f).poll(&mut cx), Poll::Ready(Some(1)));
    }
    // a cancelled recv takes nothing.
    {
        let mut f = rx.recv();
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
    }
    tx.try_push(2).unwrap();
    tx.try_push(20).unwrap();
    // send on full: pending, woken by a pop, then pushed.
    {
        let mut f = tx.send(3);
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        let before = cw.0.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(rx.try_pop(), Ok(2));
        assert!(cw.0.load(std::sync::atomic::Ordering::Relaxed) > before);
        assert!(matches!(
            Pin::new(&mut f).poll(&mut cx),
            Poll::Ready(Ok(()))
        ));
    }
    // a cancelled send pushes nothing.
    {
        let mut f = tx.send(4);
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
    }
    assert_eq!(rx.drain().collect::<Vec<_>>(), [20, 3]);
    let mut out = Vec::new();
    drop(tx);
    let mut f = rx.take_batch_async(8, &mut out);
    assert_eq!(Pin::new(&mut f).poll(&mut cx), Poll::Ready(0));
}

use std::future::Future;
use std::pin::Pin;

#[test]
fn compat_ring_buffer() {
    let mut r = RingBuffer::new(0);
    assert_eq!(r.capacity(), 2);
    for s in ["a", "b", "c"] {
        r.push(s);
    }
    assert_eq!(r.take_snapshot(), ["b", "c"]);
    let mut r = RingBuffer::new(3);
    for i in 0..3 {
        r.push(i);
    }
    assert_eq!(r.len(), 3);
    assert_eq!(r.take_snapshot(), [0, 1, 2]);
    assert!(r.is_empty());
}

#[test]
fn spill_codecs_round_trip() {
    fn rt<T: Spill + PartialEq + std::fmt::Debug>(v: T) {
        let mut b = Vec::new();
        v.encode(&mut b);
        assert_eq!(T::decode(&b).unwrap(), v);
    }
    rt(vec![1u8, 2, 3]);
    rt(Box::<[u8]>::from(&b"xy"[..]));
    rt("héllo".to_string());
    rt(-5i64);
    rt(u128::MAX);
    assert!(u32::decode(&[1, 2]).is_err());
    assert!(String::decode(&[0xff]).is_err());
}

#[test]
#[cfg_attr(miri, ignore = "file I/O")]
fn spill_keeps_order_and_removes_file() {
    let dir = tempfile_dir();
    let path = dir.join("s.spill");
    let (mut tx, mut rx) = spill_channel::<u64>(4, Policy::SpillToDisk(path.clone())).unwrap();
    let mut tx2 = tx.clone();
    for i in 0..10 {
        tx.push(i).unwrap();
        tx2.push(100 + i).unwrap();
    }
    assert!(path.exists());
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(rx.try_pop().unwrap());
    }
    // the ring has room, but the spill is not drained: pushes still spill.
    tx.push(10).unwrap();
    got.extend(rx.drain());
    assert!(!path.exists());
    let a: Vec<u64> = got.iter().copied().filter(|v| *v < 100).collect();
    let b: Vec<u64> = got.iter().copied().filter(|v| *v >= 100).collect();
    assert_eq!(a, (0..11).collect::<Vec<_>>());
    assert_eq!(b, (100..110).collect::<Vec<_>>());
    // the ring is used again.
    tx.push(11).unwrap();
    assert!(!path.exists());
    assert_eq!(rx.try_pop(), Ok(11));
    let s = rx.stats();
    assert_eq!((s.pushed, s.popped), (22, 22));
    assert!(s.spilled >= 16);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "file I/O")]
fn spill_replays_after_crash_and_cuts_torn_tail() {
    let dir = tempfile_dir();
    let path = dir.join("s.spill");
    {
        let (mut tx, rx) = spill_channel::<String>(2, Policy::SpillToDisk(path.clone())).unwrap();
        for i in 0..6 {
            tx.push(format!("m{i}")).unwrap();
        }
        // "crash": leak the handles so nothing is drained.
        std::mem::forget((tx, rx));
    }
    // a torn frame at the end.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2]);
    std::fs::write(&path, &bytes).unwrap();
    let (mut tx, mut rx) = spill_channel::<String>(2, Policy::SpillToDisk(path.clone())).unwrap();
    assert_eq!(rx.stats().spill_lost, 1);
    tx.push("new".into()).unwrap();
    let got: Vec<String> = rx.drain().collect();
    assert_eq!(got, ["m2", "m3", "m4", "m5", "new"]);
    assert!(!path.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    static N: StdAtomicUsize = StdAtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "ringlog-mpsc-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A producer "preempted mid-write": reserves `pos` by hand and publishes it
/// only when the test says so.
struct HeldSlot<'a, T> {
    shared: &'a Shared<T>,
    pos: usize,
}

impl<'a, T> HeldSlot<'a, T> {
    fn reserve(shared: &'a Shared<T>) -> Self {
        match shared.queue.try_reserve() {
            queue::Reserve::Ok(pos) => Self { shared, pos },
            other => panic!("{other:?}"),
        }
    }

    fn publish(self, item: T) {
        // SAFETY: reserved in `reserve`, written once.
        unsafe { self.shared.queue.write(self.pos, item) };
        self.shared.notify_data();
    }
}

/// DropOldest, async: while the oldest slot's producer is mid-write, `send`
/// returns `Pending` (it used to spin inside `poll`), is woken by that
/// publication, then evicts it.
#[test]
fn drop_oldest_send_waits_for_the_oldest_publication() {
    let cw = std::sync::Arc::new(CountWaker(StdAtomicUsize::new(0)));
    let waker = Waker::from(cw.clone());
    let mut cx = Context::from_waker(&waker);
    let (mut tx, mut rx) = channel::<u32>(2, Policy::DropOldest).unwrap();
    let tx2 = tx.clone();
    let shared = tx2.shared();
    let held = HeldSlot::reserve(shared); // position 0
    tx.push(1).unwrap(); // position 1: the ring is full
    {
        let mut f = tx.send(2);
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        let before = cw.0.load(std::sync::atomic::Ordering::Relaxed);
        held.publish(0);
        assert!(
            cw.0.load(std::sync::atomic::Ordering::Relaxed) > before,
            "not woken"
        );
        assert!(matches!(
            Pin::new(&mut f).poll(&mut cx),
            Poll::Ready(Ok(()))
        ));
    }
    assert_eq!(tx2.stats().dropped_oldest, 1);
    drop((tx, tx2));
    assert_eq!(rx.drain().collect::<Vec<_>>(), [1, 2]);
}

/// DropOldest, async: while the write_pos slot's reader has claimed it but not
/// emptied it yet, `send` returns `Pending`, is woken when the slot is
/// freed (`Consumer::freed`), and then pushes without evicting.
#[test]
fn drop_oldest_send_waits_for_the_slot_being_freed() {
    let cw = std::sync::Arc::new(CountWaker(StdAtomicUsize::new(0)));
    let waker = Waker::from(cw.clone());
    let mut cx = Context::from_waker(&waker);
    let (mut tx, mut rx) = channel::<u32>(2, Policy::DropOldest).unwrap();
    tx.push(0).unwrap();
    tx.push(1).unwrap();
    let tx2 = tx.clone();
    let shared = tx2.shared();
    // A reader moved `read_pos` past position 0 and is preempted before it
    // frees the slot.
    assert!(shared.queue.claim(0, 1));
    {
        let mut f = tx.send(2);
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        let before = cw.0.load(std::sync::atomic::Ordering::Relaxed);
        // SAFETY: published, claimed above, taken once.
        assert_eq!(unsafe { shared.queue.take(0) }, 0);
        rx.freed();
        assert!(
            cw.0.load(std::sync::atomic::Ordering::Relaxed) > before,
            "not woken"
        );
        assert!(matches!(
            Pin::new(&mut f).poll(&mut cx),
            Poll::Ready(Ok(()))
        ));
    }
    assert_eq!(tx.stats().dropped_oldest, 0);
    drop((tx, tx2));
    assert_eq!(rx.drain().collect::<Vec<_>>(), [1, 2]);
}

/// DropOldest, blocking: the push sleeps while the oldest item is being
/// written, completes once it is published, and evicts it.
#[test]
fn drop_oldest_push_sleeps_until_the_oldest_is_published() {
    let (mut tx, mut rx) = channel::<u32>(2, Policy::DropOldest).unwrap();
    tx.set_wait_strategy(WaitStrategy::SLEEP);
    let tx2 = tx.clone();
    let shared = tx2.shared();
    let held = HeldSlot::reserve(shared);
    tx.push(1).unwrap();
    let done = Arc::new(crate::sync::AtomicBool::new(false));
    let pusher = std::thread::spawn({
        let done = done.clone();
        move || {
            tx.push(2).unwrap();
            done.store(true, Ordering::Release);
            tx
        }
    });
    std::thread::sleep(Duration::from_millis(if cfg!(miri) { 1 } else { 20 }));
    // It cannot have finished: the only way on is to evict position 0,
    // which is not published.
    assert!(!done.load(Ordering::Acquire));
    held.publish(0);
    let tx = pusher.join().unwrap();
    assert!(done.load(Ordering::Acquire));
    assert_eq!(tx.stats().dropped_oldest, 1);
    drop((tx, tx2));
    assert_eq!(rx.drain().collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn a_blocking_batch_after_a_small_one_lingers_then_takes_what_is_there() {
    let (mut tx, mut rx) = channel::<u64>(1024, Policy::BLOCK).unwrap();
    let mut out = Vec::new();
    for i in 0..3 {
        tx.push(i).unwrap();
    }
    // Fewer than asked for: the ring was drained up to the producer.
    assert_eq!(rx.take_batch_until(512, &mut out, None), Ok(3));
    assert!(rx.at_frontier);
    // The next call lingers (nothing more comes), then takes the two
    // published since, in order.
    tx.push(3).unwrap();
    tx.push(4).unwrap();
    assert_eq!(rx.take_batch_until(512, &mut out, None), Ok(2));
    assert_eq!(out, [0, 1, 2, 3, 4]);
    // Asking for nothing right after a small batch takes nothing (and
    // looks at no slot `max_items - 1` ahead).
    assert!(rx.at_frontier);
    assert_eq!(rx.take_batch_until(0, &mut out, None), Ok(0));
    // A batch capped by `max_items` is not at the frontier: no linger next.
    for i in 5..9 {
        tx.push(i).unwrap();
    }
    assert_eq!(rx.take_batch_until(2, &mut out, None), Ok(2));
    assert!(!rx.at_frontier);
    // With every producer gone the linger is skipped and the rest drains.
    drop(tx);
    assert_eq!(rx.take_batch_until(512, &mut out, None), Ok(2));
    assert_eq!(
        rx.take_batch_until(512, &mut out, None),
        Err(PopError::Disconnected)
    );
    assert_eq!(out, (0..9).collect::<Vec<_>>());
}
