//! SPSC throughput of `u64` items, capacity 4096, consumer on its own
//! thread, like against like: ringlog's non-blocking calls with a backoff
//! (one at a time and in batches) against rtrb (one at a time and in chunks)
//! and crossbeam-queue's `ArrayQueue`; ringlog's blocking calls against
//! crossbeam-channel, flume, kanal and `std::sync::mpsc::sync_channel`. Every
//! case runs pinned and unpinned, and reports the items its consumer got per
//! call. Every consumer checks the sequence it receives.

use crate::bench::{Bench, Case, Measured, Role, Unit};
use crate::check::{item, CheckError, SeqCheck};
use crate::pin::spawn;
use crate::wait::Backoff;
use ringlog::spsc::TryPopError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

const CAP: usize = 4096;
const BATCH: usize = 256;

/// Runs the scenario.
pub fn run(b: &mut Bench) {
    b.scenario("spsc");
    let n = b.settings.size(20_000_000, 2_000_000, 1_000);
    let group = "u64, 1 producer, capacity 4096, non-blocking calls + backoff";
    let case = |name: &str, role| Case::new(group, name, role, Unit::ItemsPerSec, 2);
    b.throughput(case("ringlog spsc try_push/try_pop", Role::Ringlog), || {
        ringlog_spin_single(n)
    });
    b.throughput(
        case("ringlog spsc push_iter/drain (256)", Role::Ringlog),
        || ringlog_spin_batch(n),
    );
    b.throughput(case("rtrb push/pop", Role::Peer), || rtrb_single(n));
    b.throughput(case("rtrb chunks (256)", Role::Peer), || rtrb_chunks(n));
    b.throughput(case("crossbeam-queue ArrayQueue", Role::Peer), || {
        array_queue(n)
    });
    let group = "u64, 1 producer, capacity 4096, blocking calls";
    let case = |name: &str, role| Case::new(group, name, role, Unit::ItemsPerSec, 2);
    b.throughput(case("ringlog spsc push/pop", Role::Ringlog), || {
        ringlog_single(n)
    });
    b.throughput(
        case("ringlog spsc push_all/drain_wait (256)", Role::Ringlog),
        || ringlog_batch(n),
    );
    b.throughput(case("crossbeam-channel bounded", Role::Peer), || {
        crossbeam(n)
    });
    b.throughput(case("flume bounded", Role::Peer), || flume_run(n));
    b.throughput(case("kanal bounded", Role::Peer), || kanal_run(n));
    b.throughput(case("std sync_channel", Role::Peer), || std_run(n));
}

/// Ends a run: `calls` is how many consumer calls returned items.
fn finish(
    start: Instant,
    check: SeqCheck,
    n: u64,
    calls: u64,
    producer: thread::JoinHandle<()>,
) -> Result<Measured, CheckError> {
    let elapsed = start.elapsed();
    producer
        .join()
        .map_err(|_| CheckError::new("producer panicked"))?;
    let got = check.finish(&[n], 0)?;
    Ok(Measured::rate(got, elapsed).with_per_call(got, calls))
}

fn ringlog_spin_single(n: u64) -> Result<Measured, CheckError> {
    let (mut tx, mut rx) = ringlog::spsc::channel::<u64>(CAP);
    let start = Instant::now();
    let p = spawn(move || {
        let mut backoff = Backoff::new();
        for i in 0..n {
            let mut v = item(0, i);
            loop {
                match tx.try_push(v) {
                    Ok(()) => break,
                    Err(ringlog::spsc::TryPushError::Full(back)) => {
                        v = back;
                        backoff.snooze();
                    }
                    Err(_) => return,
                }
            }
            backoff.reset();
        }
    });
    let mut check = SeqCheck::exact(1);
    let mut backoff = Backoff::new();
    let mut calls = 0;
    loop {
        match rx.try_pop() {
            Ok(v) => {
                check.see(v);
                calls += 1;
                backoff.reset();
            }
            Err(TryPopError::Disconnected) => break,
            Err(TryPopError::Empty) => backoff.snooze(),
        }
    }
    finish(start, check, n, calls, p)
}

fn ringlog_spin_batch(n: u64) -> Result<Measured, CheckError> {
    let (mut tx, mut rx) = ringlog::spsc::channel::<u64>(CAP);
    let start = Instant::now();
    // Like rtrb's chunks below: the producer writes each batch of 256 straight
    // into the slots from an iterator, the consumer reads everything published
    // (up to the capacity) in place.
    let p = spawn(move || {
        let mut backoff = Backoff::new();
        let mut i = 0;
        while i < n {
            let end = (i + BATCH as u64).min(n);
            let k = tx.push_iter(&mut (i..end).map(|s| item(0, s)));
            if k == 0 {
                if tx.is_abandoned() {
                    return;
                }
                backoff.snooze();
            } else {
                backoff.reset();
                i += k as u64;
            }
        }
    });
    let mut check = SeqCheck::exact(1);
    let mut backoff = Backoff::new();
    let mut calls = 0;
    loop {
        let batch = rx.drain(CAP);
        if batch.len() == 0 {
            drop(batch);
            if rx.is_abandoned() {
                // Closed: whatever it published before is visible now.
                if rx.available() == 0 {
                    break;
                }
            } else {
                backoff.snooze();
            }
            continue;
        }
        calls += 1;
        backoff.reset();
        for v in batch {
            check.see(v);
        }
    }
    finish(start, check, n, calls, p)
}

fn ringlog_single(n: u64) -> Result<Measured, CheckError> {
    let (mut tx, mut rx) = ringlog::spsc::channel::<u64>(CAP);
    let start = Instant::now();
    let p = spawn(move || {
        for i in 0..n {
            if tx.push(item(0, i), None).is_err() {
                return;
            }
        }
    });
    let mut check = SeqCheck::exact(1);
    let mut calls = 0u64;
    while let Ok(v) = rx.pop(None) {
        check.see(v);
        calls += 1;
    }
    finish(start, check, n, calls, p)
}

fn ringlog_batch(n: u64) -> Result<Measured, CheckError> {
    let (mut tx, mut rx) = ringlog::spsc::channel::<u64>(CAP);
    let start = Instant::now();
    let p = spawn(move || {
        let mut buf = Vec::with_capacity(BATCH);
        let mut i = 0;
        while i < n {
            let end = (i + BATCH as u64).min(n);
            buf.extend((i..end).map(|s| item(0, s)));
            if tx.push_all(&mut buf, None) < (end - i) as usize {
                return;
            }
            i = end;
        }
    });
    let mut check = SeqCheck::exact(1);
    // Like rtrb's reader above: everything published, up to the capacity.
    let mut calls = 0;
    while let Ok(batch) = rx.drain_wait(CAP, None) {
        calls += 1;
        for v in batch {
            check.see(v);
        }
    }
    finish(start, check, n, calls, p)
}

fn rtrb_single(n: u64) -> Result<Measured, CheckError> {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
    let start = Instant::now();
    let p = spawn(move || {
        let mut backoff = Backoff::new();
        for i in 0..n {
            let mut v = item(0, i);
            while let Err(rtrb::PushError::Full(back)) = tx.push(v) {
                v = back;
                backoff.snooze();
            }
            backoff.reset();
        }
    });
    let mut check = SeqCheck::exact(1);
    let mut calls = 0u64;
    let mut backoff = Backoff::new();
    loop {
        match rx.pop() {
            Ok(v) => {
                check.see(v);
                calls += 1;
                backoff.reset();
            }
            Err(_) if rx.is_abandoned() => {
                while let Ok(v) = rx.pop() {
                    check.see(v);
                    calls += 1;
                }
                break;
            }
            Err(_) => backoff.snooze(),
        }
    }
    finish(start, check, n, calls, p)
}

fn rtrb_chunks(n: u64) -> Result<Measured, CheckError> {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
    let start = Instant::now();
    let p = spawn(move || {
        let mut backoff = Backoff::new();
        let mut i = 0;
        while i < n {
            let want = ((n - i) as usize).min(BATCH);
            let k = tx.slots().min(want);
            if k == 0 {
                backoff.snooze();
                continue;
            }
            backoff.reset();
            let chunk = tx.write_chunk_uninit(k).expect("slots() said so");
            let written = chunk.fill_from_iter((i..i + k as u64).map(|s| item(0, s)));
            i += written as u64;
        }
    });
    let mut check = SeqCheck::exact(1);
    let mut calls = 0;
    let mut backoff = Backoff::new();
    loop {
        let k = rx.slots();
        if k == 0 {
            if rx.is_abandoned() && rx.slots() == 0 {
                break;
            }
            backoff.snooze();
            continue;
        }
        backoff.reset();
        calls += 1;
        let chunk = rx.read_chunk(k).expect("slots() said so");
        for v in chunk.into_iter() {
            check.see(v);
        }
    }
    finish(start, check, n, calls, p)
}

fn array_queue(n: u64) -> Result<Measured, CheckError> {
    let q = Arc::new(crossbeam_queue::ArrayQueue::<u64>::new(CAP));
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let (pq, pdone) = (q.clone(), done.clone());
    let p = spawn(move || {
        let mut backoff = Backoff::new();
        for i in 0..n {
            let mut v = item(0, i);
            while let Err(back) = pq.push(v) {
                v = back;
                backoff.snooze();
            }
            backoff.reset();
        }
        // Release: every push above happens before the consumer sees `done`.
        pdone.store(true, Ordering::Release);
    });
    let mut check = SeqCheck::exact(1);
    let mut calls = 0u64;
    let mut backoff = Backoff::new();
    loop {
        match q.pop() {
            Some(v) => {
                check.see(v);
                calls += 1;
                backoff.reset();
            }
            // Acquire: pairs with the producer's Release store of `done`.
            None if done.load(Ordering::Acquire) => {
                while let Some(v) = q.pop() {
                    check.see(v);
                    calls += 1;
                }
                break;
            }
            None => backoff.snooze(),
        }
    }
    finish(start, check, n, calls, p)
}

fn crossbeam(n: u64) -> Result<Measured, CheckError> {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAP);
    let start = Instant::now();
    let p = spawn(move || {
        for i in 0..n {
            if tx.send(item(0, i)).is_err() {
                return;
            }
        }
    });
    let mut check = SeqCheck::exact(1);
    let mut calls = 0u64;
    for v in rx.iter() {
        check.see(v);
        calls += 1;
    }
    finish(start, check, n, calls, p)
}

fn flume_run(n: u64) -> Result<Measured, CheckError> {
    let (tx, rx) = flume::bounded::<u64>(CAP);
    let start = Instant::now();
    let p = spawn(move || {
        for i in 0..n {
            if tx.send(item(0, i)).is_err() {
                return;
            }
        }
    });
    let mut check = SeqCheck::exact(1);
    let mut calls = 0u64;
    for v in rx.iter() {
        check.see(v);
        calls += 1;
    }
    finish(start, check, n, calls, p)
}

fn kanal_run(n: u64) -> Result<Measured, CheckError> {
    let (tx, rx) = kanal::bounded::<u64>(CAP);
    let start = Instant::now();
    let p = spawn(move || {
        for i in 0..n {
            if tx.send(item(0, i)).is_err() {
                return;
            }
        }
    });
    let mut check = SeqCheck::exact(1);
    let mut calls = 0u64;
    while let Ok(v) = rx.recv() {
        check.see(v);
        calls += 1;
    }
    finish(start, check, n, calls, p)
}

fn std_run(n: u64) -> Result<Measured, CheckError> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(CAP);
    let start = Instant::now();
    let p = spawn(move || {
        for i in 0..n {
            if tx.send(item(0, i)).is_err() {
                return;
            }
        }
    });
    let mut check = SeqCheck::exact(1);
    let mut calls = 0u64;
    for v in rx.iter() {
        check.see(v);
        calls += 1;
    }
    finish(start, check, n, calls, p)
}
