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

/// Two writers race the reader's seal/swap; 48-byte buffers hold one
/// 32-byte record, so the second reservation straddles the end, is void and
/// must wait for the switch.
#[test]
fn double_buffer_seal_races_reservation() {
    loom::model(|| {
        let (ws, mut r) = ringlog::bytes::double_buffer::channel(cfg(48, 2)).unwrap();
        let ts: Vec<_> = ws
            .into_iter()
            .map(|mut w| {
                thread::spawn(move || {
                    let rec = [
                        w.id() as u8,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                    ];
                    w.push(&rec, None).unwrap();
                })
            })
            .collect();
        let got = drain(&mut r);
        ts.into_iter().for_each(|t| t.join().unwrap());
        check_order(&got, 2, 1);
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
