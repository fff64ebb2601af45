//! loom models of the typed SPSC ring: every interleaving (within the
//! preemption bound) of publish/release, wrap-around, blocking and wake-up,
//! disconnection and the drop of unread values.
//!
//! These models fail (a loom deadlock or data race) if the producer's
//! publish is weakened to Relaxed, if an armed side stops notifying, or if
//! the wake-up handshake's `arm` skips its notify. The arming of the
//! handshake lasts one sleep episode: `disarming_before_the_episode_ends_is_caught`
//! shows (with a loom-only switch) that a notifier which stops notifying
//! right after arming, before the waiter's episode is over, loses a wake-up.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p ringlog
//! --release --test loom_spsc --target-dir target-loom`

#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use ringlog::spsc::{self, Consumer, PopError, Producer, TryPopError};
use ringlog::wait::WaitStrategy;

/// A ring whose blocking calls sleep at once: spinning only multiplies the
/// interleavings loom has to explore.
fn sleepy_channel<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let (mut tx, mut rx) = spsc::channel(capacity);
    tx.set_wait_strategy(WaitStrategy::SLEEP);
    rx.set_wait_strategy(WaitStrategy::SLEEP);
    (tx, rx)
}

#[test]
fn values_cross_the_wrap_in_order() {
    loom::model(|| {
        let (mut tx, mut rx) = sleepy_channel::<usize>(2);
        let producer = thread::spawn(move || {
            for i in 0..3 {
                while tx.try_push(i).is_err() {
                    thread::yield_now();
                }
            }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            match rx.try_pop() {
                Ok(v) => got.push(v),
                Err(TryPopError::Empty) => thread::yield_now(),
                Err(TryPopError::Disconnected) => panic!("disconnected early"),
            }
        }
        assert_eq!(got, [0, 1, 2]);
        producer.join().unwrap();
    });
}

#[test]
fn blocking_pop_is_woken_by_push() {
    loom::model(|| {
        let (mut tx, mut rx) = sleepy_channel::<usize>(2);
        let producer = thread::spawn(move || {
            tx.try_push(1).unwrap();
            tx.try_push(2).unwrap();
            // Keep the producer alive until both are popped, so only the
            // pushes (not the close) can wake the consumer.
            tx
        });
        assert_eq!(rx.pop(None), Ok(1));
        assert_eq!(rx.pop(None), Ok(2));
        drop(producer.join().unwrap());
        assert_eq!(rx.pop(None), Err(PopError::Disconnected));
    });
}

/// One sleep episode per pop: the producer arms for each, and disarms once
/// the consumer says it is done, so every episode needs its own arming.
#[test]
fn every_sleep_episode_is_woken() {
    loom::model(|| {
        let (mut tx, mut rx) = sleepy_channel::<usize>(4);
        let producer = thread::spawn(move || {
            for i in 1..=3 {
                tx.try_push(i).unwrap();
            }
            tx
        });
        for i in 1..=3 {
            assert_eq!(rx.pop(None), Ok(i));
        }
        drop(producer.join().unwrap());
        assert_eq!(rx.pop(None), Err(PopError::Disconnected));
    });
}

/// The same hand-over as `blocking_pop_is_woken_by_push`, with a producer
/// that disarms right after arming instead of when the consumer's sleep
/// episode ends: the consumer can read the acknowledgement, sleep without
/// a bound, and miss the second push. loom must report the deadlock.
#[test]
#[should_panic]
fn disarming_before_the_episode_ends_is_caught() {
    loom::model(|| {
        let (mut tx, mut rx) = sleepy_channel::<usize>(2);
        tx.disarm_early_for_loom();
        let producer = thread::spawn(move || {
            tx.try_push(1).unwrap();
            tx.try_push(2).unwrap();
            tx
        });
        assert_eq!(rx.pop(None), Ok(1));
        assert_eq!(rx.pop(None), Ok(2));
        drop(producer.join().unwrap());
    });
}

#[test]
fn blocking_batch_is_woken_by_push_batch() {
    loom::model(|| {
        let (mut tx, mut rx) = sleepy_channel::<usize>(2);
        let producer = thread::spawn(move || {
            assert_eq!(tx.push_slice(&[1, 2]), 2);
            tx
        });
        let mut out = Vec::new();
        while out.len() < 2 {
            rx.take_batch_wait(2, &mut out, None).unwrap();
        }
        assert_eq!(out, [1, 2]);
        drop(producer.join().unwrap());
    });
}

/// A drain releases its slots only when it is dropped: a producer blocked on
/// a full ring is woken by that release, reuses the slots, and the consumer
/// never sees a value twice or a slot before it was written.
#[test]
fn drained_slots_are_reused_after_the_drain_ends() {
    loom::model(|| {
        let (mut tx, mut rx) = sleepy_channel::<usize>(2);
        let producer = thread::spawn(move || {
            for i in 0..4 {
                tx.push(i, None).unwrap();
            }
            tx
        });
        let mut got = Vec::new();
        while got.len() < 4 {
            got.extend(rx.drain_wait(2, None).unwrap());
        }
        assert_eq!(got, [0, 1, 2, 3]);
        drop(producer.join().unwrap());
    });
}

#[test]
fn blocking_push_is_woken_by_pop() {
    loom::model(|| {
        let (mut tx, mut rx) = sleepy_channel::<usize>(1);
        let consumer = thread::spawn(move || {
            let a = rx.pop(None).unwrap();
            let b = rx.pop(None).unwrap();
            (a, b, rx)
        });
        tx.push(1, None).unwrap();
        tx.push(2, None).unwrap();
        // The ring (1 slot) was full at some point for one of these; the
        // consumer's release must have woken us.
        tx.push(3, None).unwrap();
        let (a, b, mut rx) = consumer.join().unwrap();
        assert_eq!((a, b), (1, 2));
        assert_eq!(rx.try_pop(), Ok(3));
    });
}

#[test]
fn producer_close_wakes_and_disconnects_after_drain() {
    loom::model(|| {
        let (mut tx, mut rx) = sleepy_channel::<usize>(2);
        let producer = thread::spawn(move || {
            tx.try_push(7).unwrap();
        });
        assert_eq!(rx.pop(None), Ok(7));
        assert_eq!(rx.pop(None), Err(PopError::Disconnected));
        producer.join().unwrap();
    });
}

/// Counts its drops.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn unread_values_are_dropped_exactly_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut tx, mut rx) = spsc::channel::<Tracked>(2);
        let d = drops.clone();
        let producer = thread::spawn(move || {
            for _ in 0..3 {
                // The third may find the ring full and be dropped here.
                tx.try_push_or_drop(Tracked(d.clone()));
            }
        });
        // Pop at most one, then drop the consumer while the producer may
        // still be pushing: whichever handle goes last drops the rest.
        drop(rx.try_pop());
        drop(rx);
        producer.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    });
}

/// A deliberately broken ring: the producer publishes its index with
/// Relaxed instead of Release. loom must find the data race on the slot.
mod weakened {
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    struct OneSlot {
        slot: UnsafeCell<usize>,
        head: AtomicUsize,
    }

    #[test]
    #[should_panic]
    fn relaxed_publish_is_caught() {
        loom::model(|| {
            let ring = Arc::new(OneSlot {
                slot: UnsafeCell::new(0),
                head: AtomicUsize::new(0),
            });
            let r = ring.clone();
            let producer = thread::spawn(move || {
                // SAFETY: the consumer reads the slot only after head = 1.
                r.slot.with_mut(|p| unsafe { *p = 42 });
                // BUG (on purpose): must be Release.
                r.head.store(1, Ordering::Relaxed);
            });
            if ring.head.load(Ordering::Acquire) == 1 {
                // SAFETY: head = 1 was meant to publish the slot.
                let v = ring.slot.with(|p| unsafe { *p });
                assert_eq!(v, 42);
            }
            producer.join().unwrap();
        });
    }
}
