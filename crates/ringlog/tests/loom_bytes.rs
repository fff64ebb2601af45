//! loom models of the MPSC byte queues' protocols.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p ringlog --release --test loom_bytes --target-dir target-loom`.
#![cfg(loom)]

use loom::thread;
use ringlog::bytes::{ByteQueueReader, ByteQueueWriter, Config, Policy, PushError, ReadError};
use ringlog::wait::WaitStrategy;

/// Sleep at once: spinning only multiplies loom's interleavings.
fn cfg(cap: usize, writers: usize) -> Config {
    Config::new(cap, writers).with_wait_strategy(WaitStrategy::SLEEP)
}

/// Reads until every writer is gone; returns (writer, seq) pairs in order.
fn drain(r: &mut dyn ByteQueueReader) -> Vec<(u8, u8)> {
    let mut got = Vec::new();
    loop {
        match r.read(None) {
            Ok(b) => {
                got.extend(b.records().map(|rec| (rec[0], rec[1])));
                b.release();
            }
            Err(ReadError::Disconnected) => return got,
            Err(ReadError::Timeout) => unreachable!("no deadline"),
        }
    }
}

fn check_order(got: &[(u8, u8)], writers: u8, per_writer: u8) {
    for w in 0..writers {
        let seqs: Vec<u8> = got.iter().filter(|r| r.0 == w).map(|r| r.1).collect();
        assert_eq!(
            seqs,
            (0..per_writer).collect::<Vec<_>>(),
            "writer {w} in {got:?}"
        );
    }
}

/// Two writers race the reader's seal/swap; 64-byte buffers hold one
/// 40-byte slot, so the second reservation straddles the end, is void and
/// must wait for the switch.
#[test]
fn double_buffer_seal_races_reservation() {
    loom::model(|| {
        let (ws, mut r) = ringlog::bytes::double_buffer::channel(cfg(64, 2)).unwrap();
        writers_then_drain(ws, &mut r, 1, 32);
    });
}

/// Two writers of two records each under DropNewest: order kept, and what
/// was received plus what was dropped is what was sent.
#[test]
fn double_buffer_drop_newest_accounts_every_record() {
    loom::model(|| {
        let (ws, mut r) =
            ringlog::bytes::double_buffer::channel(cfg(64, 2).with_policy(Policy::DropNewest))
                .unwrap();
        let ts: Vec<_> = ws
            .into_iter()
            .map(|mut w| {
                thread::spawn(move || {
                    let mut dropped = Vec::new();
                    for seq in 0..2u8 {
                        match w.push(
                            &[w.id() as u8, seq, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                            None,
                        ) {
                            Ok(()) => {}
                            Err(PushError::Dropped(_)) => dropped.push(seq),
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                    dropped
                })
            })
            .collect();
        let got = drain(&mut r);
        let dropped: Vec<Vec<u8>> = ts.into_iter().map(|t| t.join().unwrap()).collect();
        for (w, d) in dropped.iter().enumerate() {
            let seqs: Vec<u8> = got
                .iter()
                .filter(|r| usize::from(r.0) == w)
                .map(|r| r.1)
                .collect();
            assert!(seqs.windows(2).all(|p| p[0] < p[1]), "order {got:?}");
            assert_eq!(seqs.len() + d.len(), 2, "{got:?} dropped {d:?}");
            assert!(seqs.iter().all(|s| !d.contains(s)));
        }
        assert_eq!(
            r.stats().writers_total().dropped as usize,
            dropped.iter().map(Vec::len).sum::<usize>()
        );
    });
}

/// Writers of `per_writer` records of `len` bytes each (first two bytes:
/// writer id, sequence), drained by the reader on the model's main thread.
fn writers_then_drain<W>(ws: Vec<W>, r: &mut dyn ByteQueueReader, per_writer: u8, len: usize)
where
    W: ByteQueueWriter + 'static,
{
    let n = ws.len() as u8;
    let ts: Vec<_> = ws
        .into_iter()
        .map(|mut w| {
            thread::spawn(move || {
                for seq in 0..per_writer {
                    let mut rec = vec![0u8; len];
                    rec[0] = w.id() as u8;
                    rec[1] = seq;
                    w.push(&rec, None).unwrap();
                }
            })
        })
        .collect();
    let got = drain(r);
    ts.into_iter().for_each(|t| t.join().unwrap());
    check_order(&got, n, per_writer);
}

/// `w` commits two records on its own thread and is handed back undropped
/// (its drop would notify with a fence and hide a lost wake-up) while `r`
/// waits for both: a lost wake-up is a loom deadlock.
fn two_commits_one_live_writer<W>(mut w: W, r: &mut dyn ByteQueueReader)
where
    W: ByteQueueWriter + 'static,
{
    let t = thread::spawn(move || {
        w.push(&[0, 0], None).unwrap();
        w.push(&[0, 1], None).unwrap();
        w
    });
    let mut got = Vec::new();
    while got.len() < 2 {
        let b = r.read(None).unwrap();
        got.extend(b.records().map(|rec| rec[1]));
        b.release();
    }
    drop(t.join().unwrap());
    assert_eq!(got, [0, 1]);
}

/// Fan-in's doorbell: the reader sleeps when every ring is empty; two
/// writers commit and ring. A lost wake-up is a loom deadlock.
#[test]
fn fan_in_doorbell_loses_no_wake_up() {
    loom::model(|| {
        let (ws, mut r) = ringlog::bytes::fan_in::channel(cfg(64, 2)).unwrap();
        writers_then_drain(ws, &mut r, 1, 8);
    });
}

/// Fan-in's doorbell handshake across sleep episodes
/// ([`two_commits_one_live_writer`]).
fn fan_in_two_commits_one_live_writer(disarm_early: bool) {
    loom::model(move || {
        let (mut ws, mut r) = ringlog::bytes::fan_in::channel(cfg(64, 1)).unwrap();
        let mut w = ws.pop().unwrap();
        if disarm_early {
            w.disarm_early_for_loom();
        }
        two_commits_one_live_writer(w, &mut r);
    });
}

#[test]
fn fan_in_every_sleep_episode_is_woken() {
    fan_in_two_commits_one_live_writer(false);
}

/// The same with a writer that disarms as soon as it armed: the reader can
/// read the acknowledgement, sleep without a bound, and miss the second
/// commit. loom must report the deadlock.
#[test]
#[should_panic(expected = "deadlock")]
fn fan_in_disarming_before_the_episode_ends_is_caught() {
    fan_in_two_commits_one_live_writer(true);
}

/// The shared ring's reserve/commit: two writers race for the reserve index
/// and publish out of order; the reader must stop at an unpublished header
/// and never read a record before it is complete.
#[test]
fn shared_ring_reserve_commit() {
    loom::model(|| {
        let (ws, mut r) = ringlog::bytes::shared_ring::channel(cfg(64, 2)).unwrap();
        writers_then_drain(ws, &mut r, 1, 16);
    });
}

/// The shared ring when full and wrapping: three 24-byte slots do not fit a
/// 64-byte ring, so the last writer waits for a release and then pads to
/// the end.
#[test]
fn shared_ring_full_and_wrap() {
    loom::model(|| {
        let (ws, mut r) = ringlog::bytes::shared_ring::channel(cfg(64, 2)).unwrap();
        let mut ws = ws.into_iter();
        let (mut w0, mut w1) = (ws.next().unwrap(), ws.next().unwrap());
        w0.push(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], None)
            .unwrap();
        let t = thread::spawn(move || {
            for seq in 0..2u8 {
                w1.push(&[1, seq, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], None)
                    .unwrap();
            }
        });
        drop(w0);
        let got = drain(&mut r);
        t.join().unwrap();
        assert_eq!(got, [(0, 0), (1, 0), (1, 1)]);
    });
}

/// Proves loom sees the orderings: with the shared ring's header publish
/// weakened to Relaxed, the reader's read of the payload races the writer's
/// write and loom must report it. (Weakening the double buffer's commit is
/// not caught: the reader's buffer switch notifies an `Event`, whose
/// `SeqCst` fence loom models more strongly than C++ does.)
#[test]
#[should_panic(expected = "Causality violation")]
fn shared_ring_weakened_publish_is_caught() {
    loom::model(|| {
        let mut config = cfg(64, 1);
        config.weaken_commit_for_loom = true;
        let (ws, mut r) = ringlog::bytes::shared_ring::channel(config).unwrap();
        writers_then_drain(ws, &mut r, 1, 16);
    });
}

/// The shared ring's handshake across sleep episodes
/// ([`two_commits_one_live_writer`]): its commit is a plain Release store of
/// the header, so a reader that sleeps through it is woken only if the
/// writer is armed for that episode.
fn shared_ring_two_commits_one_live_writer(disarm_early: bool) {
    loom::model(move || {
        let (mut ws, mut r) = ringlog::bytes::shared_ring::channel(cfg(64, 1)).unwrap();
        let mut w = ws.pop().unwrap();
        if disarm_early {
            w.disarm_early_for_loom();
        }
        two_commits_one_live_writer(w, &mut r);
    });
}

#[test]
fn shared_ring_every_sleep_episode_is_woken() {
    shared_ring_two_commits_one_live_writer(false);
}

/// The same with a writer that disarms as soon as it armed: loom must
/// report the reader that sleeps through the second commit.
#[test]
#[should_panic(expected = "deadlock")]
fn shared_ring_disarming_before_the_episode_ends_is_caught() {
    shared_ring_two_commits_one_live_writer(true);
}

/// The double buffer's wake-up without the writer's fence
/// ([`two_commits_one_live_writer`]), with the reader sealed on the first
/// record or not.
#[test]
fn double_buffer_commits_wake_the_reader_without_a_fence() {
    loom::model(|| {
        let (mut ws, mut r) = ringlog::bytes::double_buffer::channel(cfg(64, 1)).unwrap();
        two_commits_one_live_writer(ws.pop().unwrap(), &mut r);
    });
}
