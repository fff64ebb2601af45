//! loom model of the MPSC doorbell (`ringlog::shm::Doorbell`): several
//! producers, each with its own byte ring, commit and ring the doorbell; the
//! consumer sleeps on it whenever every ring looks empty. A lost wake-up is
//! a deadlock, which loom reports.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p ringlog --release --test loom_shm`.
//! The rings are the heap flavour of the same ring code the segments use;
//! the doorbell is the type the shared segment holds.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use ringlog::ring;
use ringlog::shm::Doorbell;
use ringlog::wait::WaitStrategy;

/// `producers` threads push `per` one-byte records each, ringing after each
/// commit; the consumer reads round-robin and sleeps on the doorbell
/// (without a deadline: only a wake-up can end the sleep).
fn doorbell_model(producers: usize, per: u8) {
    loom::model(move || {
        let bell = Arc::new(Doorbell::new());
        let mut consumers = Vec::new();
        let mut handles = Vec::new();
        for p in 0..producers {
            let (mut tx, rx) = ring::channel(64).unwrap();
            consumers.push(rx);
            let bell = bell.clone();
            handles.push(thread::spawn(move || {
                for i in 0..per {
                    tx.try_push(&[p as u8 * 16 + i]).unwrap();
                    bell.ring();
                }
                // Keep the ring open until the consumer is done: it must be
                // woken by the commits, not by a close.
                tx
            }));
        }
        let mut next = vec![0u8; producers];
        let total = producers * per as usize;
        let mut got = 0;
        while got < total {
            let mut any = false;
            for (p, rx) in consumers.iter_mut().enumerate() {
                if let Ok(batch) = rx.try_read() {
                    for r in batch.iter() {
                        assert_eq!(r.unwrap(), &[p as u8 * 16 + next[p]]);
                        next[p] += 1;
                        got += 1;
                    }
                    batch.release();
                    any = true;
                }
            }
            if !any {
                bell.wait_any(&WaitStrategy::SLEEP, None, consumers.iter());
            }
        }
        let producers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        drop(producers);
    });
}

#[test]
fn doorbell_two_producers_no_lost_wake_up() {
    doorbell_model(2, 1);
}

#[test]
fn doorbell_two_producers_two_records_each() {
    doorbell_model(2, 2);
}

#[test]
fn doorbell_three_producers() {
    doorbell_model(3, 1);
}
