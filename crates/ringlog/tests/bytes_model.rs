//! Model tests: each design against per-writer `VecDeque` models, under
//! random single-threaded sequences of pushes, in-place claims (committed
//! short or abandoned), reads, and releases, for both policies.

use proptest::prelude::*;
use ringlog::bytes::{
    self, ByteQueueWriter, ClaimError, CommitGrant, Config, Design, Policy, TryReadError,
};
use std::collections::VecDeque;
use std::time::Instant;

#[derive(Debug, Clone)]
enum Op {
    /// `push` by writer `w` of a record of `len` bytes.
    Push { w: usize, len: usize },
    /// `claim(len)` by writer `w`; commit `keep` bytes, or abandon when `None`.
    Claim {
        w: usize,
        len: usize,
        keep: Option<usize>,
    },
    /// `try_read`, then release the batch or leave it.
    Read { release: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 4..300usize).prop_map(|(w, len)| Op::Push { w, len }),
        1 => (0..2usize, 4..300usize, proptest::option::of(0..300usize))
            .prop_map(|(w, len, keep)| Op::Claim { w, len, keep: keep.map(|k| 4 + k % (len - 3)) }),
        2 => any::<bool>().prop_map(|release| Op::Read { release }),
    ]
}

/// Record `seq` of writer `w` with `len` bytes: id, seq, then a pattern.
fn record(w: usize, seq: u16, len: usize) -> Vec<u8> {
    let mut r: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seq as u8)
        .collect();
    r[0] = w as u8;
    r[1] = 0xEE;
    r[2..4].copy_from_slice(&seq.to_le_bytes());
    r
}

fn run(design: Design, policy: Policy, ops: &[Op]) -> Result<(), TestCaseError> {
    let (mut ws, mut reader) =
        bytes::channel(design, Config::new(1024, 2).with_policy(policy)).unwrap();
    let mut model: [VecDeque<Vec<u8>>; 2] = Default::default();
    let mut seq = [0u16; 2];
    let mut dropped = [0u64; 2];
    for op in ops {
        match *op {
            Op::Push { w, len } => {
                let rec = record(w, seq[w], len);
                seq[w] += 1;
                // An expired deadline: `Block` must not wait for ever in a
                // single-threaded test; it times out instead.
                match ws[w].push(&rec, Some(Instant::now())) {
                    Ok(()) => model[w].push_back(rec),
                    Err(bytes::PushError::Timeout(_)) => prop_assert_eq!(policy, Policy::Block),
                    Err(bytes::PushError::Dropped(back)) => {
                        prop_assert_eq!(policy, Policy::DropNewest);
                        prop_assert_eq!(back, &rec[..]);
                        dropped[w] += 1;
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
                }
            }
            Op::Claim { w, len, keep } => {
                let rec = record(w, seq[w], len);
                seq[w] += 1;
                match ws[w].claim(len, Some(Instant::now())) {
                    Ok(mut g) => {
                        g.copy_from_slice(&rec);
                        if let Some(k) = keep {
                            g.commit(k);
                            model[w].push_back(rec[..k].to_vec());
                        }
                    }
                    Err(ClaimError::Timeout) => prop_assert_eq!(policy, Policy::Block),
                    Err(ClaimError::Dropped) => {
                        prop_assert_eq!(policy, Policy::DropNewest);
                        dropped[w] += 1;
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
                }
            }
            Op::Read { release } => match reader.try_read() {
                Ok(batch) => {
                    let mut taken = [0usize; 2];
                    for rec in batch.records() {
                        let w = usize::from(rec[0]);
                        let expect = model[w].get(taken[w]);
                        prop_assert_eq!(Some(rec), expect.map(Vec::as_slice), "writer {}", w);
                        taken[w] += 1;
                    }
                    prop_assert!(taken[0] + taken[1] > 0 || batch.len_bytes() > 0);
                    prop_assert_eq!(taken[0] + taken[1], batch.len_records());
                    if release {
                        batch.release();
                        for w in 0..2 {
                            model[w].drain(..taken[w]);
                        }
                    }
                }
                Err(TryReadError::Empty) => {
                    prop_assert!(
                        model.iter().all(VecDeque::is_empty),
                        "records committed but Empty"
                    );
                }
                Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
            },
        }
    }
    let stats = reader.stats();
    for (w, d) in dropped.iter().enumerate() {
        prop_assert_eq!(stats.writers[w].dropped, *d);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 2 } else { 200 }, ..ProptestConfig::default() })]

    #[test]
    #[cfg_attr(miri, ignore = "slow under Miri; the unit tests cover the unsafe code")]
    fn double_buffer_matches_model(ops in proptest::collection::vec(op(), 1..120), drop in any::<bool>()) {
        let policy = if drop { Policy::DropNewest } else { Policy::Block };
        run(Design::DoubleBuffer, policy, &ops)?;
    }

    #[test]
    #[cfg_attr(miri, ignore = "slow under Miri; the unit tests cover the unsafe code")]
    fn fan_in_matches_model(ops in proptest::collection::vec(op(), 1..120), drop in any::<bool>()) {
        let policy = if drop { Policy::DropNewest } else { Policy::Block };
        run(Design::FanIn, policy, &ops)?;
    }

    #[test]
    #[cfg_attr(miri, ignore = "slow under Miri; the unit tests cover the unsafe code")]
    fn shared_ring_matches_model(ops in proptest::collection::vec(op(), 1..120), drop in any::<bool>()) {
        let policy = if drop { Policy::DropNewest } else { Policy::Block };
        run(Design::SharedRing, policy, &ops)?;
    }
}
