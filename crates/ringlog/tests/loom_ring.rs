//! loom models of the SPSC byte ring and the wait protocol under it.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p ringlog --release --test loom_ring`.
//! The ring's data bytes are shadowed by loom cells (8 bytes a cell), so loom
//! checks that every read of a record happens after its write and every reuse
//! of ring space happens after the read.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use ringlog::ring;
use ringlog::wait::{Event, WaitStrategy};

/// Producer pushes three 16-byte records into a 64-byte ring (24 bytes each
/// with the header): the third crosses the end, so it is preceded by padding
/// and needs the consumer to release space. Blocking on both sides.
#[test]
fn claim_commit_read_release_across_the_wrap() {
    loom::model(|| {
        let (mut tx, mut rx) = ring::channel(64).unwrap();
        tx.set_wait_strategy(WaitStrategy::SLEEP);
        rx.set_wait_strategy(WaitStrategy::SLEEP);
        let producer = thread::spawn(move || {
            for i in 0..3u8 {
                let mut g = tx.claim(16, None).unwrap();
                g.fill(i);
                g.commit(16);
            }
        });
        let mut next = 0u8;
        while let Ok(batch) = rx.read(None) {
            for r in batch.iter() {
                assert_eq!(r.unwrap(), &[next; 16]);
                next += 1;
            }
            batch.release();
        }
        assert_eq!(next, 3);
        producer.join().unwrap();
    });
}

/// A partial commit and an abandoned grant publish exactly what they should.
#[test]
fn partial_commit_is_seen_whole() {
    loom::model(|| {
        let (mut tx, mut rx) = ring::channel(64).unwrap();
        rx.set_wait_strategy(WaitStrategy::SLEEP);
        let producer = thread::spawn(move || {
            let _ = tx.try_claim(8).unwrap();
            let mut g = tx.try_claim(20).unwrap();
            g[..3].copy_from_slice(b"abc");
            g.commit(3);
        });
        let batch = rx.read(None).unwrap();
        let got: Vec<_> = batch.iter().map(|r| r.unwrap().to_vec()).collect();
        assert_eq!(got, vec![b"abc".to_vec()]);
        batch.release();
        producer.join().unwrap();
    });
}

/// No lost wake-up: a waiter that sleeps on an `Event` is always woken by a
/// notifier that publishes after the waiter checked.
#[test]
fn event_wakes_sleeper() {
    loom::model(|| {
        let ev = Arc::new(Event::new());
        let flag = Arc::new(AtomicBool::new(false));
        let t = {
            let (ev, flag) = (ev.clone(), flag.clone());
            thread::spawn(move || {
                flag.store(true, Ordering::Release);
                ev.notify();
            })
        };
        assert!(ev.wait_until(&WaitStrategy::SLEEP, None, || flag.load(Ordering::Acquire)));
        t.join().unwrap();
    });
}

/// Two waiters, two notifiers, each waiter waits for "its" flag.
#[test]
fn event_wakes_every_sleeper() {
    loom::model(|| {
        let ev = Arc::new(Event::new());
        let flags = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        let mut handles = Vec::new();
        for i in 0..2 {
            let (ev, flags) = (ev.clone(), flags.clone());
            handles.push(thread::spawn(move || {
                assert!(ev.wait_until(&WaitStrategy::SLEEP, None, || flags[i]
                    .load(Ordering::Acquire)));
            }));
        }
        flags[0].store(true, Ordering::Release);
        ev.notify();
        flags[1].store(true, Ordering::Release);
        ev.notify();
        for h in handles {
            h.join().unwrap();
        }
    });
}

/// One waiter needs two publications by two concurrent notifiers: the
/// second notifier may find the sleeper bit already cleared by the first and
/// skip its syscall, yet the waiter still sees both flags.
#[test]
fn event_concurrent_notifiers_share_one_wake() {
    loom::model(|| {
        let ev = Arc::new(Event::new());
        let flags = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let (ev, flags) = (ev.clone(), flags.clone());
                thread::spawn(move || {
                    flags[i].store(true, Ordering::Release);
                    ev.notify();
                })
            })
            .collect();
        assert!(ev.wait_until(&WaitStrategy::SLEEP, None, || {
            flags[0].load(Ordering::Acquire) && flags[1].load(Ordering::Acquire)
        }));
        for h in handles {
            h.join().unwrap();
        }
    });
}

/// The same model with the notifier's fence removed must lose a wake-up:
/// proof that loom sees the ordering the protocol depends on.
#[test]
#[should_panic(expected = "deadlock")]
fn event_without_fence_loses_a_wake_up() {
    loom::model(|| {
        let ev = Arc::new(Event::new());
        let flag = Arc::new(AtomicBool::new(false));
        let t = {
            let (ev, flag) = (ev.clone(), flag.clone());
            thread::spawn(move || {
                flag.store(true, Ordering::Release);
                ev.notify_unfenced_for_loom();
            })
        };
        ev.wait_until(&WaitStrategy::SLEEP, None, || flag.load(Ordering::Acquire));
        t.join().unwrap();
    });
}

/// The data direction's handshake across sleep episodes: the producer
/// commits two records and stays alive (its drop would notify with a fence
/// and hide a lost wake-up) while the consumer, sleeping at once, waits for
/// both. A lost wake-up is a loom deadlock. With `disarm_early` the
/// producer stops notifying as soon as it armed, so the consumer can read
/// the acknowledgement, sleep without a bound and miss the second commit:
/// loom must report that.
fn two_commits_one_live_producer(disarm_early: bool) {
    loom::model(move || {
        let (mut tx, mut rx) = ring::channel(64).unwrap();
        rx.set_wait_strategy(WaitStrategy::SLEEP);
        if disarm_early {
            tx.disarm_early_for_loom();
        }
        let producer = thread::spawn(move || {
            for i in 0..2u8 {
                let mut g = tx.claim(8, None).unwrap();
                g.fill(i);
                g.commit(8);
            }
            tx
        });
        let mut next = 0u8;
        while next < 2 {
            let batch = rx.read(None).unwrap();
            for r in batch.iter() {
                assert_eq!(r.unwrap(), &[next; 8]);
                next += 1;
            }
            batch.release();
        }
        drop(producer.join().unwrap());
    });
}

#[test]
fn every_sleep_episode_of_the_consumer_is_woken() {
    two_commits_one_live_producer(false);
}

#[test]
#[should_panic(expected = "deadlock")]
fn disarming_before_the_episode_ends_is_caught() {
    two_commits_one_live_producer(true);
}
