//! The SPSC byte ring against a `VecDeque` model under random operation
//! sequences: wrap-around, padding, full, empty, partial commits, batches read
//! and released or read and dropped.

use proptest::prelude::*;
use ringlog::ring::{self, TryClaimError, TryReadError};
use std::collections::VecDeque;

#[derive(Debug, Clone)]
enum Op {
    /// Claim `len`, commit `n <= len` bytes of fill `tag`.
    Push { len: usize, n: usize, tag: u8 },
    /// Claim `len` and drop the grant without committing.
    Abandon { len: usize },
    /// Read a batch; release it if `release`.
    Read { release: bool },
}

fn op(max: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..=max, any::<u8>(), 0.0..=1.0f64).prop_map(|(len, tag, frac)| Op::Push {
            len,
            n: (len as f64 * frac) as usize,
            tag
        }),
        1 => (0..=max).prop_map(|len| Op::Abandon { len }),
        2 => any::<bool>().prop_map(|release| Op::Read { release }),
    ]
}

/// Byte positions as the ring's documented layout rules place them: an 8-byte
/// header, payload padded to 8, a padding record when a record would cross
/// the end.
struct Space {
    cap: u64,
    head: u64,
    tail: u64,
}

impl Space {
    fn need(&self, len: usize) -> (u64, u64) {
        let total = 8 + ((len as u64 + 7) & !7);
        let to_end = self.cap - (self.head % self.cap);
        let pad = if total <= to_end { 0 } else { to_end };
        (pad, total)
    }
    fn fits(&self, len: usize) -> bool {
        let (pad, total) = self.need(len);
        self.head + pad + total - self.tail <= self.cap
    }
}

fn check(cap: usize, ops: Vec<Op>) {
    let (mut tx, mut rx) = ring::channel(cap).unwrap();
    let cap = tx.capacity();
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    let mut space = Space {
        cap: cap as u64,
        head: 0,
        tail: 0,
    };
    for op in ops {
        match op {
            Op::Push { len, n, tag } => {
                let len = len.min(tx.max_record_len());
                let n = n.min(len);
                let fits = space.fits(len);
                match tx.try_claim(len) {
                    Ok(mut g) => {
                        assert!(fits, "claim of {len} succeeded but the model says full");
                        g[..n].fill(tag);
                        g.commit(n);
                        let (pad, _) = space.need(len);
                        space.head += pad + 8 + ((n as u64 + 7) & !7);
                        model.push_back(vec![tag; n]);
                    }
                    Err(TryClaimError::Full) => {
                        assert!(!fits, "claim of {len} full but model fits")
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            Op::Abandon { len } => {
                let len = len.min(tx.max_record_len());
                let fits = space.fits(len);
                assert_eq!(tx.try_claim(len).is_ok(), fits);
            }
            Op::Read { release } => match rx.try_read() {
                Ok(batch) => {
                    let got: Vec<Vec<u8>> = batch.iter().map(|r| r.unwrap().to_vec()).collect();
                    let want: Vec<Vec<u8>> = model.iter().cloned().collect();
                    assert_eq!(got, want);
                    assert_eq!(batch.len_bytes() as u64, space.head - space.tail);
                    if release {
                        batch.release();
                        model.clear();
                        space.tail = space.head;
                    }
                }
                Err(TryReadError::Empty) => assert!(model.is_empty()),
                Err(e) => panic!("unexpected {e:?}"),
            },
        }
        assert_eq!(rx.available() as u64, space.head - space.tail);
        assert_eq!(
            tx.free_space() as u64,
            space.cap - (space.head - space.tail)
        );
    }
}

/// Longest operation sequence: shorter under Miri, which runs each
/// operation thousands of times slower (the wrap and padding paths are
/// still reached within a few dozen operations on these small rings).
const MAX_OPS: usize = if cfg!(miri) { 60 } else { 300 };

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 512 }))]

    #[test]
    fn small_ring_matches_model(ops in prop::collection::vec(op(40), 1..MAX_OPS.min(200))) {
        check(64, ops);
    }

    #[test]
    fn larger_ring_matches_model(ops in prop::collection::vec(op(300), 1..MAX_OPS)) {
        check(1024, ops);
    }
}
