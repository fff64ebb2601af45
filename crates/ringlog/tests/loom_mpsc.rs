//! loom models of the MPSC ring's protocols: reserve/publish/claim with two
//! producers, `DropOldest` eviction racing the consumer, the Block path
//! (full, asleep, woken), and async wake-ups.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p ringlog
//! --release --test loom_mpsc --target-dir target-loom`
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use ringlog::mpsc::{self, Consumer, Policy, PopError, Producer, TryPopError};
use ringlog::wait::WaitStrategy;
use std::mem::ManuallyDrop;

/// A waker that records its wakes and unparks the polling thread.
struct Recorder {
    thread: thread::Thread,
    wakes: AtomicUsize,
}

impl std::task::Wake for Recorder {
    fn wake(self: std::sync::Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::Release);
        self.thread.unpark();
    }
}

/// Polls `fut` to completion, parking between polls: a lost wake-up leaves
/// the thread parked for ever, which loom reports as a deadlock. Returns the
/// output and the number of wakes seen.
fn block_on<F: std::future::Future>(fut: F) -> (F::Output, usize) {
    let rec = std::sync::Arc::new(Recorder {
        thread: thread::current(),
        wakes: AtomicUsize::new(0),
    });
    let waker = std::task::Waker::from(rec.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return (v, rec.wakes.load(Ordering::Acquire));
        }
        thread::park();
    }
}

fn chan<T>(cap: usize, policy: Policy) -> (Producer<T>, Consumer<T>) {
    let (mut tx, mut rx) = mpsc::channel::<T>(cap, policy).unwrap();
    tx.set_wait_strategy(WaitStrategy::SLEEP);
    rx.set_wait_strategy(WaitStrategy::SLEEP);
    (tx, rx)
}

/// Two producers push one item each; the consumer sleeps until both arrive.
#[test]
fn two_producers_one_consumer() {
    loom::model(|| {
        let (tx, mut rx) = chan::<u32>(2, Policy::BLOCK);
        let mut tx2 = tx.clone();
        let mut tx1 = tx;
        let a = thread::spawn(move || tx1.push(1).unwrap());
        let b = thread::spawn(move || tx2.push(2).unwrap());
        let mut got = [rx.pop(None).unwrap(), rx.pop(None).unwrap()];
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
    });
}

/// A batch reservation racing a single push: each producer's items stay in
/// order and nothing is lost.
#[test]
fn batch_and_single_push() {
    loom::model(|| {
        let (tx, mut rx) = chan::<u32>(4, Policy::BLOCK);
        let mut tx2 = tx.clone();
        let mut tx1 = tx;
        let a = thread::spawn(move || {
            let mut items = vec![10, 11];
            tx1.push_batch(&mut items).unwrap();
        });
        let b = thread::spawn(move || tx2.push(20).unwrap());
        let mut got = Vec::new();
        while got.len() < 3 {
            match rx.pop(None) {
                Ok(v) => got.push(v),
                Err(e) => panic!("{e:?} after {got:?}"),
            }
        }
        let tens: Vec<u32> = got.iter().copied().filter(|v| *v < 20).collect();
        assert_eq!(tens, [10, 11]);
        a.join().unwrap();
        b.join().unwrap();
    });
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// DropOldest: a producer evicts while the consumer pops; each item is
/// taken by exactly one of them and dropped exactly once.
#[test]
fn drop_oldest_races_pop() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut tx, mut rx) = chan::<Counted>(2, Policy::DropOldest);
        tx.push(Counted(drops.clone())).unwrap();
        tx.push(Counted(drops.clone())).unwrap();
        let d = drops.clone();
        let p = thread::spawn(move || {
            tx.push(Counted(d)).unwrap(); // full: evicts the oldest
            tx
        });
        let popped = rx.try_pop().ok();
        let tx = p.join().unwrap();
        let stats = rx.stats();
        let popped_n = usize::from(popped.is_some());
        drop(popped);
        let rest: usize = rx.drain().count();
        assert_eq!(stats.dropped_oldest as usize + popped_n + rest, 3);
        drop((tx, rx));
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    });
}

/// Block: the producer finds the ring full, sleeps, and is woken by a pop.
#[test]
fn full_blocked_woken() {
    loom::model(|| {
        let (mut tx, mut rx) = chan::<u32>(2, Policy::BLOCK);
        tx.push(0).unwrap();
        tx.push(1).unwrap();
        let p = thread::spawn(move || {
            tx.push(2).unwrap(); // may sleep until the consumer frees a slot
        });
        for want in 0..3 {
            assert_eq!(rx.pop(None), Ok(want));
        }
        p.join().unwrap();
        assert_eq!(rx.pop(None), Err(PopError::Disconnected));
    });
}

/// Async: a pending `recv` is woken by a push on another thread
/// (`block_on` parks on loom, so a lost wake-up is a deadlock).
#[test]
fn async_recv_is_woken() {
    loom::model(|| {
        let (mut tx, mut rx) = chan::<u32>(2, Policy::BLOCK);
        let p = thread::spawn(move || tx.push(7).unwrap());
        assert_eq!(block_on(rx.recv()).0, Some(7));
        p.join().unwrap();
    });
}

/// Async: a pending `send` on a full ring is woken by a pop.
#[test]
fn async_send_is_woken() {
    loom::model(|| {
        let (mut tx, mut rx) = chan::<u32>(2, Policy::BLOCK);
        tx.push(0).unwrap();
        tx.push(1).unwrap();
        let p = thread::spawn(move || {
            block_on(tx.send(2)).0.unwrap();
        });
        for want in 0..3 {
            assert_eq!(rx.pop(None), Ok(want));
        }
        p.join().unwrap();
    });
}

/// The tools see the orderings: the slot publication protocol of
/// `queue.rs`, replicated with the publishing stamp store weakened from
/// Release to Relaxed, must be reported by loom as a data race on the slot.
#[test]
#[should_panic]
fn weakened_publication_is_caught() {
    use loom::cell::UnsafeCell;
    loom::model(|| {
        let slot = Arc::new((AtomicUsize::new(0), UnsafeCell::new(0u64)));
        let s = slot.clone();
        let p = thread::spawn(move || {
            // SAFETY: only this thread writes the cell (loom checks the reads).
            s.1.with_mut(|v| unsafe { *v = 42 });
            s.0.store(1, Ordering::Relaxed); // the library uses Release here
        });
        if slot.0.load(Ordering::Acquire) == 1 {
            // SAFETY: a plain read; loom reports it racing the write.
            assert_eq!(slot.1.with(|v| unsafe { *v }), 42);
        }
        p.join().unwrap();
    });
}

/// DropOldest: the oldest item's producer may be mid-write when another
/// push must evict it. The evicting push sleeps on the `data` event
/// (strategy SLEEP: no spinning at all) and the publication wakes it; a
/// lost wake-up is a loom deadlock. Every item is pushed, kept or evicted
/// exactly once, and b's last push is kept.
#[test]
fn drop_oldest_waits_for_a_mid_write_oldest() {
    loom::model(|| {
        let (tx, mut rx) = chan::<u32>(2, Policy::DropOldest);
        let mut a = tx.clone();
        let mut b = tx;
        let p = thread::spawn(move || {
            a.push(10).unwrap();
            a
        });
        b.push(1).unwrap();
        b.push(2).unwrap();
        let a = p.join().unwrap();
        let dropped = a.stats().dropped_oldest as usize;
        drop((a, b));
        let got: Vec<u32> = rx.drain().collect();
        assert_eq!(got.len() + dropped, 3, "{got:?}");
        // Only one push (a's) can follow 2, so 2 is never evicted.
        let mine: Vec<u32> = got.iter().copied().filter(|v| *v < 10).collect();
        assert!(mine == [1, 2] || mine == [2], "{got:?}");
    });
}

/// The async form of the model above: `send` returns `Pending` with its
/// waker registered while the oldest is mid-write (`block_on` parks, so a
/// lost wake-up is a deadlock).
#[test]
fn drop_oldest_async_send_waits_for_a_mid_write_oldest() {
    loom::model(|| {
        let (tx, mut rx) = chan::<u32>(2, Policy::DropOldest);
        let mut a = tx.clone();
        let mut b = tx;
        let p = thread::spawn(move || {
            a.push(10).unwrap();
            a
        });
        b.push(1).unwrap();
        block_on(b.send(2)).0.unwrap();
        let a = p.join().unwrap();
        let dropped = a.stats().dropped_oldest as usize;
        drop((a, b));
        let got: Vec<u32> = rx.drain().collect();
        assert_eq!(got.len() + dropped, 3, "{got:?}");
        assert!(got.contains(&2), "{got:?}");
    });
}

/// DropOldest: a push racing a pop may find the tail slot claimed by the
/// consumer but not yet freed; it sleeps until the consumer's `freed`
/// notifies. Here that notification is made without its fence: loom must
/// find the lost wake-up (a deadlock), which shows the fence pair (the
/// consumer's `notify` and the producer's `wait_until`) is what the
/// protocol rests on. `drop_oldest_races_pop` is the same model with the
/// fence, and passes.
#[test]
#[should_panic(expected = "deadlock")]
fn drop_oldest_unfenced_freed_wake_is_caught() {
    loom::model(|| {
        let (tx, rx) = chan::<u32>(2, Policy::DropOldest);
        // Neither end is dropped while loom unwinds both threads from the
        // deadlock: their drops would run model operations in the panic.
        let (mut tx, mut rx) = (ManuallyDrop::new(tx), ManuallyDrop::new(rx));
        rx.unfence_freed_wake_for_loom();
        tx.push(0).unwrap();
        tx.push(1).unwrap();
        let p = thread::spawn(move || {
            tx.push(2).unwrap();
            ManuallyDrop::into_inner(tx)
        });
        let _ = rx.try_pop();
        drop(p.join().unwrap());
        drop(ManuallyDrop::into_inner(rx));
    });
}

/// A `Block` channel of two slots whose ends sleep at once (and, with
/// `unclosed`, skip the closing RMW). The ends are never dropped by a model
/// that loom unwinds from a deadlock: their drops would run model
/// operations in the panic.
fn block_chan(unclosed: bool) -> (ManuallyDrop<Producer<u32>>, ManuallyDrop<Consumer<u32>>) {
    let (mut tx, mut rx) = if unclosed {
        mpsc::channel_unclosed_for_loom::<u32>(2, Policy::BLOCK).unwrap()
    } else {
        mpsc::channel::<u32>(2, Policy::BLOCK).unwrap()
    };
    tx.set_wait_strategy(WaitStrategy::SLEEP);
    rx.set_wait_strategy(WaitStrategy::SLEEP);
    (ManuallyDrop::new(tx), ManuallyDrop::new(rx))
}

/// A `Block` channel's hot paths have no fence: a producer publishes after
/// its Acquire reservation CAS and notifies with a plain load; the sleeping
/// consumer closed its announcement with a Release RMW of `tail`. The
/// producer handle stays alive until the consumer has its item, so no
/// fenced notify of a dropped handle can hide a lost wake-up.
fn consumer_sleeps_for_a_fence_free_push(unclosed: bool) {
    let (mut tx, mut rx) = block_chan(unclosed);
    let p = thread::spawn(move || {
        tx.push(7).unwrap();
        tx
    });
    assert_eq!(rx.pop(None), Ok(7));
    let tx = p.join().unwrap();
    drop(ManuallyDrop::into_inner(tx));
    drop(ManuallyDrop::into_inner(rx));
}

#[test]
fn consumer_woken_by_fence_free_push() {
    loom::model(|| consumer_sleeps_for_a_fence_free_push(false));
}

/// The same model with the consumer's closing RMW skipped: loom must find
/// the lost wake-up, which shows the RMW pair replaces the fence.
#[test]
#[should_panic(expected = "deadlock")]
fn unclosed_consumer_wait_is_caught() {
    loom::model(|| consumer_sleeps_for_a_fence_free_push(true));
}

/// `Block`, the other direction: a producer sleeps on a full ring after
/// closing its announcement with a Release RMW of `head`; the consumer
/// claims with an Acquire RMW of `head`, frees the slot and notifies with a
/// plain load. The consumer stays alive until the push is done.
fn producer_sleeps_for_a_fence_free_pop(unclosed: bool) {
    let (mut tx, mut rx) = block_chan(unclosed);
    tx.push(0).unwrap();
    tx.push(1).unwrap();
    let c = thread::spawn(move || {
        assert_eq!(rx.try_pop(), Ok(0));
        rx
    });
    tx.push(2).unwrap(); // full until the consumer frees a slot
    let mut rx = c.join().unwrap();
    assert_eq!(rx.try_pop(), Ok(1));
    assert_eq!(rx.try_pop(), Ok(2));
    drop(ManuallyDrop::into_inner(tx));
    drop(ManuallyDrop::into_inner(rx));
}

#[test]
fn producer_woken_by_fence_free_pop() {
    loom::model(|| producer_sleeps_for_a_fence_free_pop(false));
}

/// The same model with the producer's closing RMW skipped: loom must find
/// the lost wake-up.
#[test]
#[should_panic(expected = "deadlock")]
fn unclosed_producer_wait_is_caught() {
    loom::model(|| producer_sleeps_for_a_fence_free_pop(true));
}
