//! MPSC throughput and push latency: ringlog (Block, DropNewest) against
//! crossbeam-channel, flume and `std::sync::mpsc::sync_channel`, all bounded
//! to 4096 `u64` slots, at 1, 2 and 4 producers, consumer draining
//! concurrently. Run: `cargo bench -p ringlog --bench mpsc`.
//!
//! Before the criterion groups it prints the hot-path push latency
//! distribution (p50/p99/p99.9 of the mean over 32-push batches timed with
//! `Instant`) and the memory overhead of a 1M-slot ring.

use criterion::{BenchmarkId, Criterion, Throughput};
use ringlog::mpsc::{self, Policy};
use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

const CAP: usize = 4096;
/// Messages per measured iteration, split between producers.
const MESSAGES: u64 = 200_000;

/// One measured transfer of `MESSAGES` items with `p` producers; returns
/// the elapsed time.
fn ringlog_run(p: u64, policy: Policy) -> Duration {
    let (tx, mut rx) = mpsc::channel::<u64>(CAP, policy).unwrap();
    let start = Instant::now();
    let hs: Vec<_> = (0..p)
        .map(|_| {
            let mut tx = tx.clone();
            thread::spawn(move || {
                for i in 0..MESSAGES / p {
                    // DropNewest hands a refused item back: count it as done.
                    let _ = tx.push(i);
                }
            })
        })
        .collect();
    drop(tx);
    let mut out = Vec::with_capacity(1024);
    while rx.take_batch_until(1024, &mut out, None).is_ok() {
        black_box(&out);
        out.clear();
    }
    for h in hs {
        h.join().unwrap();
    }
    start.elapsed()
}

fn crossbeam_run(p: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAP);
    let start = Instant::now();
    let hs: Vec<_> = (0..p)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..MESSAGES / p {
                    tx.send(i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for v in rx.iter() {
        black_box(v);
    }
    for h in hs {
        h.join().unwrap();
    }
    start.elapsed()
}

fn flume_run(p: u64) -> Duration {
    let (tx, rx) = flume::bounded::<u64>(CAP);
    let start = Instant::now();
    let hs: Vec<_> = (0..p)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..MESSAGES / p {
                    tx.send(i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for v in rx.iter() {
        black_box(v);
    }
    for h in hs {
        h.join().unwrap();
    }
    start.elapsed()
}

fn std_run(p: u64) -> Duration {
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(CAP);
    let start = Instant::now();
    let hs: Vec<_> = (0..p)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..MESSAGES / p {
                    tx.send(i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for v in rx.iter() {
        black_box(v);
    }
    for h in hs {
        h.join().unwrap();
    }
    start.elapsed()
}

/// One measured transfer.
type Run = Box<dyn Fn() -> Duration>;

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("mpsc_u64_cap4096");
    g.throughput(Throughput::Elements(MESSAGES));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(2));
    for p in [1u64, 2, 4] {
        let cases: [(&str, Run); 5] = [
            (
                "ringlog_block",
                Box::new(move || ringlog_run(p, Policy::BLOCK)),
            ),
            (
                "ringlog_drop_newest",
                Box::new(move || ringlog_run(p, Policy::DropNewest)),
            ),
            ("crossbeam_channel", Box::new(move || crossbeam_run(p))),
            ("flume", Box::new(move || flume_run(p))),
            ("std_sync_channel", Box::new(move || std_run(p))),
        ];
        for (name, run) in &cases {
            g.bench_function(BenchmarkId::new(*name, p), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| run()).sum())
            });
        }
    }
    g.finish();
}

/// p50/p99/p99.9 of the per-push time over 32-push batches, one producer,
/// consumer draining on another thread.
fn push_latency(policy: Policy) -> [f64; 3] {
    const BATCH: u64 = 32;
    const SAMPLES: usize = 100_000;
    let (mut tx, mut rx) = mpsc::channel::<u64>(CAP, policy).unwrap();
    let consumer = thread::spawn(move || {
        let mut out = Vec::with_capacity(1024);
        while rx.take_batch_until(1024, &mut out, None).is_ok() {
            out.clear();
        }
    });
    let mut ns = Vec::with_capacity(SAMPLES);
    for s in 0..SAMPLES as u64 {
        let t = Instant::now();
        for i in 0..BATCH {
            let _ = tx.push(black_box(s * BATCH + i));
        }
        ns.push(t.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    drop(tx);
    consumer.join().unwrap();
    ns.sort_by(f64::total_cmp);
    let at = |q: f64| ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)];
    [at(0.50), at(0.99), at(0.999)]
}

fn reports() {
    for (name, policy) in [("Block", Policy::BLOCK), ("DropNewest", Policy::DropNewest)] {
        let [p50, p99, p999] = push_latency(policy);
        println!("push latency, {name}, ns per push (mean of 32-push batches): p50 {p50:.1}  p99 {p99:.1}  p99.9 {p999:.1}");
    }
    let (_tx, rx) = mpsc::channel::<u64>(1 << 20, Policy::BLOCK).unwrap();
    let total = rx.footprint_bytes();
    let payload = (1usize << 20) * std::mem::size_of::<u64>();
    println!(
        "1M-slot u64 ring: {} bytes total, {} bytes of items, overhead {} bytes ({:.2} MiB)",
        total,
        payload,
        total - payload,
        (total - payload) as f64 / (1 << 20) as f64
    );
}

fn main() {
    reports();
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c);
    c.final_summary();
}
