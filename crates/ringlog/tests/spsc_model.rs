//! The typed SPSC ring against a `VecDeque` model: random sequences of every
//! producer and consumer operation on one thread, through full, empty and
//! wrap-around, checking every result, the counts and the final drain.

use proptest::prelude::*;
use ringlog::spsc::{self, PopError, PushError, TryPopError, TryPushError};
use ringlog::wait::{deadline_after, Deadline, WaitStrategy};
use std::collections::VecDeque;
use std::time::Duration;

#[derive(Debug, Clone)]
enum Op {
    TryPush(u32),
    Push(u32),
    TryPushOrDrop(u32),
    PushBatch(Vec<u32>),
    PushSlice(Vec<u32>),
    PushIter(Vec<u32>),
    TryPushBatchOrDrop(Vec<u32>),
    TryPop,
    Pop,
    TakeBatch(usize),
    TakeBatchWait(usize),
    /// Drain up to `.0`, stopping after `.1` values.
    Drain(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let values = || prop::collection::vec(any::<u32>(), 0..12);
    prop_oneof![
        4 => any::<u32>().prop_map(Op::TryPush),
        1 => any::<u32>().prop_map(Op::Push),
        1 => any::<u32>().prop_map(Op::TryPushOrDrop),
        2 => values().prop_map(Op::PushBatch),
        2 => values().prop_map(Op::PushSlice),
        1 => values().prop_map(Op::PushIter),
        1 => values().prop_map(Op::TryPushBatchOrDrop),
        4 => Just(Op::TryPop),
        1 => Just(Op::Pop),
        2 => (0usize..12).prop_map(Op::TakeBatch),
        1 => (0usize..12).prop_map(Op::TakeBatchWait),
        2 => (0usize..12, 0usize..12).prop_map(|(max, stop)| Op::Drain(max, stop)),
    ]
}

/// A deadline that has already passed: blocking calls give up at once.
fn now() -> Deadline {
    deadline_after(Some(Duration::ZERO))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 256 }))]

    #[test]
    fn ring_matches_vecdeque(capacity in 0usize..10, ops in prop::collection::vec(op(), 1..120)) {
        let (mut tx, mut rx) = spsc::channel::<u32>(capacity);
        tx.set_wait_strategy(WaitStrategy::SLEEP);
        rx.set_wait_strategy(WaitStrategy::SLEEP);
        let cap = tx.capacity();
        prop_assert!(cap.is_power_of_two() && cap >= capacity.max(1));
        let mut model: VecDeque<u32> = VecDeque::new();
        let (mut pushed, mut popped, mut dropped, mut dropped_batches) = (0u64, 0u64, 0u64, 0u64);
        let mut out = Vec::new();
        for op in ops {
            let free = cap - model.len();
            match op {
                Op::TryPush(v) => match tx.try_push(v) {
                    Ok(()) => { prop_assert!(free > 0); model.push_back(v); pushed += 1; }
                    Err(TryPushError::Full(back)) => { prop_assert_eq!(free, 0); prop_assert_eq!(back, v); }
                    Err(e) => prop_assert!(false, "unexpected {e:?}"),
                },
                Op::Push(v) => match tx.push(v, now()) {
                    Ok(()) => { prop_assert!(free > 0); model.push_back(v); pushed += 1; }
                    Err(PushError::Timeout(back)) => { prop_assert_eq!(free, 0); prop_assert_eq!(back, v); }
                    Err(e) => prop_assert!(false, "unexpected {e:?}"),
                },
                Op::TryPushOrDrop(v) => {
                    let ok = tx.try_push_or_drop(v);
                    prop_assert_eq!(ok, free > 0);
                    if ok { model.push_back(v); pushed += 1; } else { dropped += 1; dropped_batches += 1; }
                }
                Op::PushBatch(mut vs) => {
                    let all = vs.clone();
                    let n = tx.push_batch(&mut vs);
                    prop_assert_eq!(n, free.min(all.len()));
                    prop_assert_eq!(&vs[..], &all[n..]);
                    model.extend(&all[..n]);
                    pushed += n as u64;
                }
                Op::PushSlice(vs) => {
                    let n = tx.push_slice(&vs);
                    prop_assert_eq!(n, free.min(vs.len()));
                    model.extend(&vs[..n]);
                    pushed += n as u64;
                }
                Op::PushIter(vs) => {
                    let mut it = vs.iter().copied();
                    let n = tx.push_iter(&mut it);
                    prop_assert_eq!(n, free.min(vs.len()));
                    prop_assert_eq!(it.len(), vs.len() - n, "pulled only what fit");
                    model.extend(&vs[..n]);
                    pushed += n as u64;
                }
                Op::TryPushBatchOrDrop(vs) => {
                    let ok = tx.try_push_batch_or_drop(vs.clone());
                    prop_assert_eq!(ok, vs.len() <= free);
                    if ok {
                        model.extend(&vs);
                        pushed += vs.len() as u64;
                    } else {
                        dropped += vs.len() as u64;
                        dropped_batches += 1;
                    }
                }
                Op::TryPop => match rx.try_pop() {
                    Ok(v) => { prop_assert_eq!(Some(v), model.pop_front()); popped += 1; }
                    Err(TryPopError::Empty) => prop_assert!(model.is_empty()),
                    Err(e) => prop_assert!(false, "unexpected {e:?}"),
                },
                Op::Pop => match rx.pop(now()) {
                    Ok(v) => { prop_assert_eq!(Some(v), model.pop_front()); popped += 1; }
                    Err(PopError::Timeout) => prop_assert!(model.is_empty()),
                    Err(e) => prop_assert!(false, "unexpected {e:?}"),
                },
                Op::TakeBatch(max) => {
                    out.clear();
                    let n = rx.take_batch(max, &mut out);
                    prop_assert_eq!(n, max.min(model.len()));
                    let expected: Vec<u32> = model.drain(..n).collect();
                    prop_assert_eq!(&out, &expected);
                    popped += n as u64;
                }
                Op::TakeBatchWait(max) => {
                    out.clear();
                    match rx.take_batch_wait(max, &mut out, now()) {
                        Ok(n) => {
                            prop_assert_eq!(n, max.min(model.len()));
                            let expected: Vec<u32> = model.drain(..n).collect();
                            prop_assert_eq!(&out, &expected);
                            popped += n as u64;
                        }
                        Err(PopError::Timeout) => prop_assert!(model.is_empty() && max > 0),
                        Err(e) => prop_assert!(false, "unexpected {e:?}"),
                    }
                }
                Op::Drain(max, stop) => {
                    let n = stop.min(max).min(model.len());
                    let mut d = rx.drain(max);
                    prop_assert_eq!(d.len(), max.min(model.len()));
                    let got: Vec<u32> = d.by_ref().take(stop).collect();
                    drop(d);
                    let expected: Vec<u32> = model.drain(..n).collect();
                    prop_assert_eq!(&got, &expected);
                    popped += got.len() as u64;
                }
            }
            prop_assert_eq!(tx.free_slots(), cap - model.len());
            prop_assert_eq!(rx.available(), model.len());
        }
        let ts = tx.stats();
        prop_assert_eq!(ts.records, pushed);
        prop_assert_eq!(ts.bytes, pushed * 4);
        prop_assert_eq!(ts.dropped_records, dropped);
        prop_assert_eq!(ts.dropped_batches, dropped_batches);
        prop_assert_eq!(rx.stats().records, popped);

        drop(tx);
        out.clear();
        let n = rx.take_batch(usize::MAX, &mut out);
        prop_assert_eq!(n, model.len());
        prop_assert!(out.iter().eq(model.iter()));
        prop_assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
    }
}
