//! Model tests: the MPSC ring against a `VecDeque` model, one thread driving
//! two producer handles and the consumer with random operations, for every
//! policy, batches included.
#![cfg(not(loom))]

use proptest::prelude::*;
use ringlog::mpsc::{self, Policy, PushBatchError, PushError, TryPopError, TryPushError};
use std::collections::VecDeque;

#[derive(Debug, Clone)]
enum Op {
    /// Push one item through producer `p`.
    Push(usize),
    /// Non-blocking push through producer `p`.
    TryPush(usize),
    /// Push `n` items as one batch through producer `p`.
    PushBatch(usize, usize),
    Pop,
    TakeBatch(usize),
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize).prop_map(Op::Push),
        2 => (0..2usize).prop_map(Op::TryPush),
        2 => (0..2usize, 0..12usize).prop_map(|(p, n)| Op::PushBatch(p, n)),
        3 => Just(Op::Pop),
        2 => (0..10usize).prop_map(Op::TakeBatch),
        1 => Just(Op::Drain),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Block,
    DropNewest,
    DropOldest,
    Spill,
}

/// The model: what the consumer should see next, with the same policy.
struct Model {
    kind: Kind,
    cap: usize,
    ring: VecDeque<u64>,
    /// Spilled items (Spill policy): read after the ring.
    spill: VecDeque<u64>,
    dropped_oldest: u64,
    dropped_newest: u64,
}

impl Model {
    /// Returns whether the item was accepted.
    fn push(&mut self, v: u64, may_block: bool) -> bool {
        if self.kind == Kind::Spill && !self.spill.is_empty() {
            self.spill.push_back(v);
            return true;
        }
        if self.ring.len() < self.cap {
            self.ring.push_back(v);
            return true;
        }
        match self.kind {
            Kind::Block => {
                let _ = may_block;
                false
            }
            Kind::DropNewest => {
                self.dropped_newest += 1;
                false
            }
            Kind::DropOldest => {
                self.ring.pop_front();
                self.dropped_oldest += 1;
                self.ring.push_back(v);
                true
            }
            Kind::Spill => {
                self.spill.push_back(v);
                true
            }
        }
    }

    fn pop(&mut self) -> Option<u64> {
        if let Some(v) = self.ring.pop_front() {
            return Some(v);
        }
        self.spill.pop_front()
    }
}

fn run(kind: Kind, cap: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let policy = match kind {
        Kind::Block => Policy::BLOCK,
        Kind::DropNewest => Policy::DropNewest,
        Kind::DropOldest => Policy::DropOldest,
        Kind::Spill => Policy::SpillToDisk(dir.path().join("model.spill")),
    };
    let (tx, mut rx) = mpsc::spill_channel::<u64>(cap, policy).unwrap();
    let cap = tx.capacity();
    let mut txs = [tx.clone(), tx];
    let mut model = Model {
        kind,
        cap,
        ring: VecDeque::new(),
        spill: VecDeque::new(),
        dropped_oldest: 0,
        dropped_newest: 0,
    };
    let mut next = 0u64;
    let mut pushed = 0u64;
    for op in ops {
        match op {
            Op::Push(p) | Op::TryPush(p) => {
                let v = next;
                next += 1;
                let accepted = model.push(v, false);
                // Under Block a full ring would wait for ever in `push`
                // (one thread): use try_push there.
                let r = if matches!(op, Op::TryPush(_)) || kind == Kind::Block {
                    txs[p].try_push(v).map_err(|e| match e {
                        TryPushError::Full(v) => PushError::Full(v),
                        e => PushError::from(e),
                    })
                } else {
                    txs[p].push(v)
                };
                match r {
                    Ok(()) => prop_assert!(accepted, "ring took {v}, model was full"),
                    Err(PushError::Full(back)) => {
                        prop_assert!(!accepted, "ring refused {v}, model took it");
                        prop_assert_eq!(back, v);
                    }
                    Err(e) => prop_assert!(false, "unexpected {e:?}"),
                }
                pushed += u64::from(accepted);
            }
            Op::PushBatch(p, n) => {
                let mut items: Vec<u64> = (next..next + n as u64).collect();
                next += n as u64;
                let mut expect_left = Vec::new();
                for &v in &items {
                    // A batch stops at the first refusal (Block: try_push_batch).
                    if !expect_left.is_empty() {
                        expect_left.push(v);
                        if kind == Kind::DropNewest {
                            model.dropped_newest += 1;
                        }
                    } else if model.push(v, false) {
                        pushed += 1;
                    } else {
                        expect_left.push(v);
                    }
                }
                let r = if kind == Kind::Block {
                    txs[p].try_push_batch(&mut items)
                } else {
                    txs[p].push_batch(&mut items)
                };
                match r {
                    Ok(()) => prop_assert!(expect_left.is_empty()),
                    Err(PushBatchError::Full { remaining }) => {
                        prop_assert_eq!(remaining, expect_left.len())
                    }
                    Err(e) => prop_assert!(false, "unexpected {e:?}"),
                }
                prop_assert_eq!(items, expect_left);
            }
            Op::Pop => match rx.try_pop() {
                Ok(v) => prop_assert_eq!(Some(v), model.pop()),
                Err(TryPopError::Empty) => prop_assert_eq!(None, model.pop()),
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            },
            Op::TakeBatch(max) => {
                let mut out = Vec::new();
                let r = rx.take_batch(max, &mut out);
                let mut want = Vec::new();
                while want.len() < max {
                    match model.pop() {
                        Some(v) => want.push(v),
                        None => break,
                    }
                }
                match r {
                    Ok(n) => prop_assert_eq!(n, out.len()),
                    Err(TryPopError::Empty) => prop_assert!(out.is_empty()),
                    Err(e) => prop_assert!(false, "unexpected {e:?}"),
                }
                prop_assert_eq!(out, want);
            }
            Op::Drain => {
                let got: Vec<u64> = rx.drain().collect();
                let want: Vec<u64> = std::iter::from_fn(|| model.pop()).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
    let s = rx.stats();
    prop_assert_eq!(s.pushed, pushed);
    prop_assert_eq!(s.dropped_oldest, model.dropped_oldest);
    prop_assert_eq!(s.dropped_newest, model.dropped_newest);
    drop(txs);
    let got: Vec<u64> = rx.drain().collect();
    let want: Vec<u64> = std::iter::from_fn(|| model.pop()).collect();
    prop_assert_eq!(got, want);
    prop_assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

    #[test]
    fn block_matches_model(cap in 1..9usize, ops in prop::collection::vec(op(), 0..200)) {
        run(Kind::Block, cap, ops)?;
    }

    #[test]
    fn drop_newest_matches_model(cap in 1..9usize, ops in prop::collection::vec(op(), 0..200)) {
        run(Kind::DropNewest, cap, ops)?;
    }

    #[test]
    fn drop_oldest_matches_model(cap in 1..9usize, ops in prop::collection::vec(op(), 0..200)) {
        run(Kind::DropOldest, cap, ops)?;
    }

    #[test]
    fn spill_matches_model(cap in 1..9usize, ops in prop::collection::vec(op(), 0..200)) {
        run(Kind::Spill, cap, ops)?;
    }
}
