//! MPSC byte queues against their peers: 4 writers of random 10..=10,000-byte
//! records, one reader that touches and counts the bytes, all in memory.
//!
//! Peers on the same machine in the same run: `crossbeam-channel` carrying
//! `Vec<u8>` (one allocation per record), and a single-thread `memcpy` of the
//! same records into a 1 MiB buffer (the physical limit of one core).
//!
//! `cargo bench -p ringlog --bench bytes`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringlog::bytes::{
    double_buffer, fan_in, shared_ring, ByteQueueReader, ByteQueueWriter, Config,
};
use std::hint::black_box;
use std::thread;
use std::time::Duration;

const WRITERS: usize = 4;
const RECORDS_PER_WRITER: usize = 2_000;

/// Each writer's record sizes, fixed so every variant moves the same bytes.
fn sizes() -> Vec<Vec<usize>> {
    (0..WRITERS)
        .map(|w| {
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (w as u64 + 1);
            (0..RECORDS_PER_WRITER)
                .map(|_| {
                    x ^= x >> 12;
                    x ^= x << 25;
                    x ^= x >> 27;
                    10 + (x.wrapping_mul(0x2545_f491_4f6c_dd1d) % 9_991) as usize
                })
                .collect()
        })
        .collect()
}

/// What the reader does with a record: count it and touch its ends.
#[inline]
fn touch(rec: &[u8], sum: &mut u64) {
    *sum += rec.len() as u64 + u64::from(rec[0]) + u64::from(rec[rec.len() - 1]);
}

fn run_queue<W: ByteQueueWriter + 'static>(
    ws: Vec<W>,
    mut r: impl ByteQueueReader,
    sizes: &[Vec<usize>],
) -> u64 {
    let src = vec![0xA5u8; 10_000];
    let threads: Vec<_> = ws
        .into_iter()
        .zip(sizes.iter().cloned())
        .map(|(mut w, sizes)| {
            let src = src.clone();
            thread::spawn(move || {
                for n in sizes {
                    w.push(&src[..n], None).unwrap();
                }
            })
        })
        .collect();
    let mut sum = 0;
    while let Ok(b) = r.read(None) {
        for rec in b.records() {
            touch(rec, &mut sum);
        }
        b.release();
    }
    threads.into_iter().for_each(|t| t.join().unwrap());
    sum
}

fn run_crossbeam(sizes: &[Vec<usize>]) -> u64 {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(256);
    let src = vec![0xA5u8; 10_000];
    let threads: Vec<_> = sizes
        .iter()
        .cloned()
        .map(|sizes| {
            let (tx, src) = (tx.clone(), src.clone());
            thread::spawn(move || {
                for n in sizes {
                    tx.send(src[..n].to_vec()).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut sum = 0;
    for rec in rx {
        touch(&rec, &mut sum);
    }
    threads.into_iter().for_each(|t| t.join().unwrap());
    sum
}

fn run_memcpy(sizes: &[Vec<usize>], dst: &mut [u8]) -> u64 {
    let src = vec![0xA5u8; 10_000];
    let mut at = 0;
    let mut sum = 0;
    for n in sizes.iter().flatten().copied() {
        if at + n > dst.len() {
            at = 0;
        }
        dst[at..at + n].copy_from_slice(&src[..n]);
        touch(&dst[at..at + n], &mut sum);
        at += (n + 7) & !7;
    }
    sum
}

fn bench(c: &mut Criterion) {
    let sizes = sizes();
    let bytes: usize = sizes.iter().flatten().sum();
    let mut g = c.benchmark_group("mpsc_bytes_4w");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    let cap = 1 << 20;
    g.bench_function(BenchmarkId::from_parameter("double_buffer_2x1MiB"), |b| {
        b.iter(|| {
            let (ws, r) = double_buffer::channel(Config::new(cap, WRITERS)).unwrap();
            black_box(run_queue(ws, r, &sizes))
        })
    });
    g.bench_function(BenchmarkId::from_parameter("fan_in_4x256KiB"), |b| {
        b.iter(|| {
            let (ws, r) = fan_in::channel(Config::new(cap / 4, WRITERS)).unwrap();
            black_box(run_queue(ws, r, &sizes))
        })
    });
    g.bench_function(BenchmarkId::from_parameter("shared_ring_1MiB"), |b| {
        b.iter(|| {
            let (ws, r) = shared_ring::channel(Config::new(cap, WRITERS)).unwrap();
            black_box(run_queue(ws, r, &sizes))
        })
    });
    g.bench_function(
        BenchmarkId::from_parameter("crossbeam_channel_vec_256"),
        |b| b.iter(|| black_box(run_crossbeam(&sizes))),
    );
    let mut dst = vec![0u8; cap];
    g.bench_function(BenchmarkId::from_parameter("memcpy_1thread"), |b| {
        b.iter(|| black_box(run_memcpy(&sizes, &mut dst)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
