//! Typed SPSC throughput: `u64` values from a producer thread to a consumer
//! thread, ringlog against rtrb and crossbeam's `ArrayQueue`, all with 4096
//! slots, in one run.
//!
//! Each iteration moves `ITEMS` values; the consumer checks their sum so
//! nothing is optimised away. Every non-blocking case waits the same way when
//! its queue is full or empty: spin briefly, then yield (crossbeam's
//! `Backoff`), because pure spinning collapses when the two threads share a
//! core with other work. Run: `cargo bench -p ringlog --bench spsc`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::Backoff;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const CAPACITY: usize = 4096;
const ITEMS: u64 = 1 << 20;
const BATCH: usize = 256;
const EXPECTED_SUM: u64 = ITEMS * (ITEMS - 1) / 2;

/// Runs `producer` on a new thread and `consumer` here; returns the time
/// from start until both are done.
fn run_pair<P, C>(producer: P, consumer: C) -> Duration
where
    P: FnOnce() + Send + 'static,
    C: FnOnce() -> u64,
{
    let start = Instant::now();
    let t = thread::spawn(producer);
    let sum = consumer();
    t.join().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(sum, EXPECTED_SUM);
    elapsed
}

/// Calls `attempt` until it returns `Some`, backing off in between.
#[inline]
fn retry<R>(backoff: &Backoff, mut attempt: impl FnMut() -> Option<R>) -> R {
    loop {
        if let Some(r) = attempt() {
            backoff.reset();
            return r;
        }
        backoff.snooze();
    }
}

fn ringlog_single() -> Duration {
    let (mut tx, mut rx) = ringlog::spsc::channel::<u64>(CAPACITY);
    run_pair(
        move || {
            let b = Backoff::new();
            for i in 0..ITEMS {
                retry(&b, || tx.try_push(i).ok());
            }
        },
        move || {
            let b = Backoff::new();
            (0..ITEMS).fold(0u64, |s, _| s.wrapping_add(retry(&b, || rx.try_pop().ok())))
        },
    )
}

fn ringlog_blocking() -> Duration {
    let (mut tx, mut rx) = ringlog::spsc::channel::<u64>(CAPACITY);
    run_pair(
        move || {
            for i in 0..ITEMS {
                tx.push(i, None).unwrap();
            }
        },
        move || (0..ITEMS).fold(0u64, |s, _| s.wrapping_add(rx.pop(None).unwrap())),
    )
}

fn ringlog_batch() -> Duration {
    let (mut tx, mut rx) = ringlog::spsc::channel::<u64>(CAPACITY);
    run_pair(
        move || {
            let b = Backoff::new();
            let mut next = 0;
            while next < ITEMS {
                let mut values = next..ITEMS.min(next + BATCH as u64);
                next += retry(&b, || match tx.push_iter(&mut values) {
                    0 => None,
                    m => Some(m as u64),
                });
            }
        },
        move || {
            let b = Backoff::new();
            let mut sum = 0u64;
            let mut n = 0u64;
            while n < ITEMS {
                // In place, like rtrb's read_chunk below.
                let batch = rx.drain(BATCH);
                if batch.len() == 0 {
                    b.snooze();
                    continue;
                }
                b.reset();
                n += batch.len() as u64;
                sum = batch.fold(sum, |s, v| s.wrapping_add(v));
            }
            sum
        },
    )
}

fn rtrb_single() -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAPACITY);
    run_pair(
        move || {
            let b = Backoff::new();
            for i in 0..ITEMS {
                retry(&b, || tx.push(i).ok());
            }
        },
        move || {
            let b = Backoff::new();
            (0..ITEMS).fold(0u64, |s, _| s.wrapping_add(retry(&b, || rx.pop().ok())))
        },
    )
}

fn rtrb_chunk() -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAPACITY);
    run_pair(
        move || {
            let b = Backoff::new();
            let mut next = 0;
            while next < ITEMS {
                let left = (ITEMS - next) as usize;
                let n = retry(&b, || match tx.slots().min(BATCH).min(left) {
                    0 => None,
                    n => Some(n),
                });
                let chunk = tx.write_chunk_uninit(n).unwrap();
                chunk.fill_from_iter(next..next + n as u64);
                next += n as u64;
            }
        },
        move || {
            let b = Backoff::new();
            let mut sum = 0u64;
            let mut n = 0u64;
            while n < ITEMS {
                let m = retry(&b, || match rx.slots().min(BATCH) {
                    0 => None,
                    m => Some(m),
                });
                let chunk = rx.read_chunk(m).unwrap();
                let (x, y) = chunk.as_slices();
                sum = x.iter().chain(y).fold(sum, |s, &v| s.wrapping_add(v));
                chunk.commit_all();
                n += m as u64;
            }
            sum
        },
    )
}

fn crossbeam_array_queue() -> Duration {
    let q = Arc::new(ArrayQueue::<u64>::new(CAPACITY));
    let qp = q.clone();
    run_pair(
        move || {
            let b = Backoff::new();
            for i in 0..ITEMS {
                retry(&b, || qp.push(i).ok());
            }
        },
        move || {
            let b = Backoff::new();
            (0..ITEMS).fold(0u64, |s, _| s.wrapping_add(retry(&b, || q.pop())))
        },
    )
}

/// One benchmark: moves `ITEMS` values and returns the elapsed time.
type Case = fn() -> Duration;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc_u64");
    g.throughput(Throughput::Elements(ITEMS));
    let cases: [(&str, Case); 6] = [
        ("ringlog/single", ringlog_single),
        ("ringlog/blocking", ringlog_blocking),
        ("ringlog/batch256", ringlog_batch),
        ("rtrb/single", rtrb_single),
        ("rtrb/chunk256", rtrb_chunk),
        ("crossbeam_array_queue/single", crossbeam_array_queue),
    ];
    for (name, run) in cases {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run()).sum())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
