//! SPSC byte ring throughput for 64-byte and 4 KiB records against plain
//! `memcpy` of the same bytes, in one run.
//!
//! - `ring`: a producer thread copies each record into a claimed grant and
//!   commits; the consumer reads batches and touches every cache line of every
//!   record (one 8-byte load per 64 bytes), then releases.
//! - `memcpy`: one thread copies the same records into a buffer the size of
//!   the ring, wrapping: the bandwidth a hand-off cannot beat.
//!
//! `cargo bench -p ringlog --bench ring`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringlog::ring;
use std::hint::black_box;
use std::time::{Duration, Instant};

const RING: usize = 1 << 20;
const BYTES_PER_ITER: usize = 64 << 20;

fn ring_transfer(record: usize, iters: u64) -> Duration {
    let count = BYTES_PER_ITER / record;
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (mut tx, mut rx) = ring::channel(RING).unwrap();
        let src = vec![0xA5u8; record];
        let start = Instant::now();
        let producer = std::thread::spawn(move || {
            for _ in 0..count {
                let mut g = tx.claim(record, None).unwrap();
                g.copy_from_slice(&src);
                g.commit(record);
            }
        });
        let mut seen = 0usize;
        let mut sum = 0u64;
        while let Ok(batch) = rx.read(None) {
            for r in batch.iter() {
                let r = r.unwrap();
                for line in r.chunks(64) {
                    sum = sum.wrapping_add(u64::from(line[0]));
                }
                seen += 1;
            }
            batch.release();
        }
        producer.join().unwrap();
        total += start.elapsed();
        assert_eq!(seen, count);
        black_box(sum);
    }
    total
}

fn memcpy(record: usize, iters: u64) -> Duration {
    let count = BYTES_PER_ITER / record;
    let src = vec![0xA5u8; record];
    let mut dst = vec![0u8; RING];
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let mut off = 0;
        for _ in 0..count {
            if off + record > RING {
                off = 0;
            }
            dst[off..off + record].copy_from_slice(black_box(&src));
            off += record;
        }
        black_box(&mut dst);
        total += start.elapsed();
    }
    total
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("byte_ring");
    g.throughput(Throughput::Bytes(BYTES_PER_ITER as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    for record in [64usize, 4096] {
        g.bench_with_input(BenchmarkId::new("ring", record), &record, |b, &r| {
            b.iter_custom(|iters| ring_transfer(r, iters))
        });
        g.bench_with_input(BenchmarkId::new("memcpy", record), &record, |b, &r| {
            b.iter_custom(|iters| memcpy(r, iters))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
