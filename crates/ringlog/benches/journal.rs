//! Journal append bandwidth against the physical limit on this machine:
//! plain sequential `File::write_all` of the same bytes in 1 MiB chunks.
//!
//! - `journal/append_frames` vs `journal/plain_write_all`: one pass writes
//!   `RINGLOG_BENCH_JOURNAL_MIB` (default 2048) MiB of pre-framed records of
//!   random 10–10,000-byte payloads, in batches of about 1 MiB, no sync.
//! - `journal_sync/*`: the cost of each sync policy on a smaller amount
//!   (`RINGLOG_BENCH_SYNC_MIB`, default 64 MiB) in 256 KiB batches; every
//!   policy but `never` ends its pass with a final `sync`.
//!
//! Before each pass the system's dirty pages are flushed (untimed, `sync`),
//! so each pass starts from the same page-cache state.
//!
//! Files go under `target/bench-journal/` and are deleted after each pass.
//! Throughput is in bytes.

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use ringlog::journal::{frame_into_vec, framed_len, Journal, JournalOptions, SyncPolicy};

const MIB: usize = 1 << 20;

fn env_mib(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Batches of pre-framed records, each just under `batch_bytes`, `pool_bytes`
/// in all; a pass cycles through them.
fn make_batches(pool_bytes: usize, batch_bytes: usize) -> Vec<Vec<u8>> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut payload = vec![0u8; 10_000];
    for b in &mut payload {
        *b = rng.next() as u8;
    }
    let mut batches = Vec::new();
    let mut total = 0;
    let mut seq = 0;
    while total < pool_bytes {
        let mut batch = Vec::with_capacity(batch_bytes + 10_100);
        loop {
            let len = 10 + (rng.next() % 9_991) as usize;
            if !batch.is_empty() && batch.len() + framed_len(len) > batch_bytes {
                break;
            }
            let start = (rng.next() % 64) as usize;
            let body = &payload[start..(start + len).min(payload.len())];
            frame_into_vec(&mut batch, (seq % 4) as u32, seq / 4, seq, body).unwrap();
            seq += 1;
        }
        total += batch.len();
        batches.push(batch);
    }
    batches
}

fn bench_dir(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/bench-journal")
        .join(name);
    let _ = std::fs::remove_dir_all(&root);
    root
}

/// Flushes the whole system's dirty pages (untimed), so every pass starts
/// from the same page-cache state instead of paying for its predecessor's
/// writeback.
fn settle() {
    let _ = std::process::Command::new("sync").status();
}

/// Appends batches until `pass_bytes` are written; returns the time taken.
fn journal_pass(dir: &Path, batches: &[Vec<u8>], pass_bytes: usize, sync: SyncPolicy) -> Duration {
    let opts = JournalOptions {
        sync,
        ..Default::default()
    };
    let mut journal = Journal::open(dir, opts).unwrap();
    settle();
    let start = Instant::now();
    let mut written = 0;
    for batch in batches.iter().cycle() {
        if written >= pass_bytes {
            break;
        }
        black_box(journal.append_frames(batch).unwrap());
        written += batch.len();
    }
    if sync != SyncPolicy::Never {
        // Every sync policy ends durable, so their costs compare.
        journal.sync().unwrap();
    }
    let elapsed = start.elapsed();
    drop(journal);
    std::fs::remove_dir_all(dir).unwrap();
    elapsed
}

/// Writes the same bytes with plain `write_all` in 1 MiB chunks.
fn plain_pass(dir: &Path, batches: &[Vec<u8>], pass_bytes: usize) -> Duration {
    std::fs::create_dir_all(dir).unwrap();
    let mut file = std::fs::File::create(dir.join("plain.bin")).unwrap();
    settle();
    let start = Instant::now();
    let mut written = 0;
    for batch in batches.iter().cycle() {
        if written >= pass_bytes {
            break;
        }
        file.write_all(batch).unwrap();
        written += batch.len();
    }
    let elapsed = start.elapsed();
    drop(file);
    std::fs::remove_dir_all(dir).unwrap();
    elapsed
}

fn pass_bytes_of(batches: &[Vec<u8>], pass_bytes: usize) -> u64 {
    let mut written = 0;
    for batch in batches.iter().cycle() {
        if written >= pass_bytes {
            break;
        }
        written += batch.len();
    }
    written as u64
}

fn append_bandwidth(c: &mut Criterion) {
    let pass = env_mib("RINGLOG_BENCH_JOURNAL_MIB", 2048) * MIB;
    let batches = make_batches(pass.min(256 * MIB), MIB);
    let mut group = c.benchmark_group("journal");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Bytes(pass_bytes_of(&batches, pass)));
    let dir = bench_dir("append");
    group.bench_function("append_frames", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| journal_pass(&dir, &batches, pass, SyncPolicy::Never))
                .sum()
        })
    });
    let dir = bench_dir("plain");
    group.bench_function("plain_write_all", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| plain_pass(&dir, &batches, pass)).sum())
    });
    group.finish();
}

fn sync_policies(c: &mut Criterion) {
    let pass = env_mib("RINGLOG_BENCH_SYNC_MIB", 64) * MIB;
    let batches = make_batches(pass.min(64 * MIB), 256 << 10);
    let mut group = c.benchmark_group("journal_sync");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(pass_bytes_of(&batches, pass)));
    for (name, policy) in [
        ("never", SyncPolicy::Never),
        ("every_1ms", SyncPolicy::EveryMillis(1)),
        ("every_10ms", SyncPolicy::EveryMillis(10)),
        ("every_batch", SyncPolicy::EveryBatch),
    ] {
        let dir = bench_dir(name);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| journal_pass(&dir, &batches, pass, policy))
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, append_bandwidth, sync_policies);
criterion_main!(benches);
