//! `ringlog run`: the seeds' demo as a tool. N writer threads append random
//! blocks through an MPSC byte queue; one reader persists them to a journal;
//! a progress bar while it runs and a report at the end.

use crate::units::{fmt_bytes, parse_duration, parse_size};
use clap::{Args, ValueEnum};
use crossbeam_utils::CachePadded;
use indicatif::{ProgressBar, ProgressStyle};
use ringlog::bytes::{ClaimError, Policy};
use ringlog::journal::{SyncPolicy, SEGMENT_EXTENSION};
use ringlog::pipeline::{
    self, aux_work, AppendError, Design, PipelineConfig, PipelineWriter, ReaderReport,
};
use ringlog::wait::deadline_after;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `ringlog run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Writer threads.
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Queue design: double-buffer, fan-in or shared-ring.
    #[arg(long, default_value = "double-buffer", value_parser = str::parse::<Design>)]
    design: Design,
    /// Total queue memory (e.g. 64MiB): split among the buffers
    /// (double-buffer) or the writers' rings (fan-in).
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    capacity: u64,
    /// Buffers of the double buffer.
    #[arg(long, default_value_t = 2)]
    buffers: usize,
    /// What a writer does when the queue is full.
    #[arg(long, value_enum, default_value_t = PolicyArg::Block)]
    policy: PolicyArg,
    /// Stop after this long (default 10s when no other limit is given).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many records in total.
    #[arg(long)]
    records: Option<u64>,
    /// Stop after this many payload bytes in total (e.g. 2GiB).
    #[arg(long, value_parser = parse_size)]
    bytes: Option<u64>,
    /// Smallest block in bytes.
    #[arg(long, default_value_t = 10)]
    min_size: usize,
    /// Largest block in bytes.
    #[arg(long, default_value_t = 10_000)]
    max_size: usize,
    /// Seed of the block sizes and contents.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Journal directory; a previous run's segments there are replaced.
    #[arg(long, default_value = "ringlog-data")]
    output: PathBuf,
    /// When the journal is synced: never, batch (after every batch) or an
    /// interval such as 100ms.
    #[arg(long, default_value = "100ms", value_parser = parse_sync)]
    sync: SyncPolicy,
    /// Pin writer i to core i mod cores.
    #[arg(long)]
    affinity: bool,
    /// Busy-work rounds each writer does after each record and the reader
    /// after each batch (the seeds' aux_work).
    #[arg(long, default_value_t = 0)]
    aux_work: u32,
    /// Print the final report as JSON.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum PolicyArg {
    /// Wait until there is room.
    Block,
    /// Drop the record that does not fit, and count it.
    DropNewest,
}

fn parse_sync(s: &str) -> Result<SyncPolicy, String> {
    match s {
        "never" => Ok(SyncPolicy::Never),
        "batch" | "every-batch" => Ok(SyncPolicy::EveryBatch),
        other => {
            let d = parse_duration(other).map_err(|_| {
                format!("`{s}` is not a sync policy (never, batch, or an interval such as 100ms)")
            })?;
            Ok(SyncPolicy::EveryMillis(d.as_millis().max(1) as u64))
        }
    }
}

/// Live counters of one writer, on its own cache line.
#[derive(Debug, Default)]
struct Live {
    records: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Quota {
    records: u64,
    bytes: u64,
}

fn writer_loop(
    mut w: PipelineWriter,
    pool: &[u8],
    args: &RunArgs,
    quota: Quota,
    stop: &AtomicBool,
    live: &Live,
) -> Result<(), String> {
    let mut rng = args.seed ^ (u64::from(w.id()) + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let span = (args.max_size - args.min_size + 1) as u64;
    let (mut records, mut bytes) = (0u64, 0u64);
    // Relaxed: a stop request needs no ordering with the records.
    while !stop.load(Ordering::Relaxed) && records < quota.records && bytes < quota.bytes {
        let size = args.min_size + (splitmix(&mut rng) % span) as usize;
        let from = (splitmix(&mut rng) % (pool.len() - size + 1) as u64) as usize;
        match w.append(
            &pool[from..from + size],
            deadline_after(Some(Duration::from_millis(100))),
        ) {
            Ok(_) => {
                records += 1;
                bytes += size as u64;
                // Relaxed: progress display only; one writer per counter.
                live.records.store(records, Ordering::Relaxed);
                live.bytes.store(bytes, Ordering::Relaxed);
            }
            Err(AppendError::Queue(ClaimError::Dropped)) => {
                live.dropped.fetch_add(1, Ordering::Relaxed);
                if args.records.is_some() {
                    records += 1; // a dropped record still counts towards --records
                }
            }
            Err(AppendError::Queue(ClaimError::Timeout)) => {}
            Err(e) => return Err(format!("writer {}: {e}", w.id())),
        }
        aux_work(args.aux_work);
    }
    Ok(())
}

/// The final report of a run, printed as a table or JSON.
#[derive(Debug, Serialize)]
struct RunReport {
    design: Design,
    policy: PolicyArg,
    writers: usize,
    capacity_bytes: u64,
    output: PathBuf,
    elapsed_s: f64,
    records: u64,
    payload_bytes: u64,
    dropped: u64,
    records_per_s: f64,
    payload_mib_per_s: f64,
    journal_mib_per_s: f64,
    per_writer: Vec<WriterRow>,
    reader: ReaderReport,
}

#[derive(Debug, Serialize)]
struct WriterRow {
    id: usize,
    records: u64,
    payload_bytes: u64,
    dropped: u64,
    blocked_ms: f64,
}

fn clear_previous_run(dir: &std::path::Path) -> Result<(), String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|x| x == SEGMENT_EXTENSION) {
            std::fs::remove_file(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    Ok(())
}

fn usage_error(msg: &str) -> Result<i32, String> {
    eprintln!("ringlog: error: {msg}");
    Ok(2)
}

pub(crate) fn run(args: RunArgs) -> Result<i32, String> {
    if args.writers == 0 {
        return usage_error("--writers must be at least 1");
    }
    if args.min_size == 0 || args.min_size > args.max_size {
        return usage_error("--min-size must be at least 1 and at most --max-size");
    }
    let per_queue = match args.design {
        Design::DoubleBuffer => args.capacity / args.buffers.max(1) as u64,
        Design::FanIn => args.capacity / args.writers as u64,
        Design::SharedRing => args.capacity,
    };
    clear_previous_run(&args.output)?;
    let mut config =
        PipelineConfig::new(&args.output, args.design, per_queue as usize, args.writers);
    config.queue.policy = match args.policy {
        PolicyArg::Block => Policy::Block,
        PolicyArg::DropNewest => Policy::DropNewest,
    };
    config.queue.buffers = args.buffers;
    config.journal.sync = args.sync;
    config.reader_aux_work = args.aux_work;
    let (writers, pipe) = pipeline::start(config).map_err(|e| match e {
        pipeline::PipelineError::Queue(q) => format!("invalid queue settings: {q}"),
        other => other.to_string(),
    })?;

    let duration = args
        .duration
        .or(if args.records.is_none() && args.bytes.is_none() {
            Some(Duration::from_secs(10))
        } else {
            None
        });
    let n = args.writers as u64;
    let share =
        |total: Option<u64>, i: u64| total.map_or(u64::MAX, |t| t / n + u64::from(i < t % n));

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("installing a signal handler: {e}"))?;
    }
    let mut pool = vec![0u8; (1 << 20) + args.max_size];
    let mut s = args.seed;
    for chunk in pool.chunks_mut(8) {
        let v = splitmix(&mut s).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    let pool = Arc::new(pool);
    let args = Arc::new(args);
    let live: Arc<Vec<CachePadded<Live>>> =
        Arc::new((0..n).map(|_| CachePadded::default()).collect());
    let cores = core_affinity::get_core_ids().unwrap_or_default();

    let start = Instant::now();
    let handles: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let (pool, args, stop, live) = (pool.clone(), args.clone(), stop.clone(), live.clone());
            let core = if args.affinity && !cores.is_empty() {
                Some(cores[i % cores.len()])
            } else {
                None
            };
            let quota = Quota {
                records: share(args.records, i as u64),
                bytes: share(args.bytes, i as u64),
            };
            std::thread::Builder::new()
                .name(format!("ringlog-writer-{i}"))
                .spawn(move || {
                    if let Some(c) = core {
                        core_affinity::set_for_current(c);
                    }
                    writer_loop(w, &pool, &args, quota, &stop, &live[i])
                })
                .map_err(|e| format!("spawning writer {i}: {e}"))
        })
        .collect::<Result<_, _>>()?;

    let bar = if args.quiet || args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").expect("static template"),
    );
    let mut last = (Instant::now(), 0u64);
    while !handles
        .iter()
        .all(|h: &std::thread::JoinHandle<_>| h.is_finished())
    {
        std::thread::sleep(Duration::from_millis(100));
        if duration.is_some_and(|d| start.elapsed() >= d) {
            stop.store(true, Ordering::Relaxed);
        }
        if let Some(err) = pipe.sink_error() {
            bar.println(format!("sink failing, retrying: {err}"));
        }
        let recs: u64 = live.iter().map(|l| l.records.load(Ordering::Relaxed)).sum();
        let bytes: u64 = live.iter().map(|l| l.bytes.load(Ordering::Relaxed)).sum();
        let dt = last.0.elapsed().as_secs_f64();
        let rate = (bytes - last.1) as f64 / dt.max(1e-9);
        last = (Instant::now(), bytes);
        bar.set_message(format!(
            "{recs} records, {} written, {}/s",
            fmt_bytes(bytes as f64),
            fmt_bytes(rate)
        ));
        bar.tick();
    }
    bar.finish_and_clear();
    let mut writer_error = None;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => writer_error = Some(e),
            Err(_) => writer_error = Some("a writer thread panicked".into()),
        }
    }
    let reader = pipe.shutdown().map_err(|e| e.to_string())?;
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(e) = writer_error {
        return Err(e);
    }
    let report = build_report(&args, per_queue, elapsed, reader);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print_report(&report);
    }
    Ok(0)
}

fn build_report(args: &RunArgs, _per_queue: u64, elapsed: f64, reader: ReaderReport) -> RunReport {
    let per_writer: Vec<WriterRow> = reader
        .queue
        .as_ref()
        .map(|q| {
            q.writers
                .iter()
                .enumerate()
                .map(|(id, w)| WriterRow {
                    id,
                    records: w.records,
                    payload_bytes: w.bytes,
                    dropped: w.dropped,
                    blocked_ms: w.blocked.as_secs_f64() * 1e3,
                })
                .collect()
        })
        .unwrap_or_default();
    let records = reader.records;
    // Queue bytes count frames; payload bytes are the frames less headers
    // and padding, taken from the histogram-free per-writer figures.
    let payload_bytes: u64 = per_writer.iter().map(|w| w.payload_bytes).sum();
    let dropped = per_writer.iter().map(|w| w.dropped).sum();
    RunReport {
        design: args.design,
        policy: args.policy,
        writers: args.writers,
        capacity_bytes: args.capacity,
        output: args.output.clone(),
        elapsed_s: elapsed,
        records,
        payload_bytes,
        dropped,
        records_per_s: records as f64 / elapsed,
        payload_mib_per_s: payload_bytes as f64 / elapsed / (1 << 20) as f64,
        journal_mib_per_s: reader.bytes as f64 / elapsed / (1 << 20) as f64,
        per_writer,
        reader,
    }
}

fn print_report(r: &RunReport) {
    println!(
        "ringlog run: {:?}, {} writers, {} queue, policy {:?}, journal in {}",
        r.design,
        r.writers,
        fmt_bytes(r.capacity_bytes as f64),
        r.policy,
        r.output.display()
    );
    println!();
    println!(
        "{:>7} {:>12} {:>14} {:>10} {:>12}",
        "writer", "records", "bytes", "dropped", "blocked ms"
    );
    for w in &r.per_writer {
        println!(
            "{:>7} {:>12} {:>14} {:>10} {:>12.1}",
            w.id,
            w.records,
            fmt_bytes(w.payload_bytes as f64),
            w.dropped,
            w.blocked_ms
        );
    }
    let rd = &r.reader;
    println!();
    println!(
        "reader: {} batches, {} write calls ({} failed and retried), {} syncs",
        rd.batches, rd.write_calls, rd.write_errors, rd.syncs
    );
    println!(
        "        write latency mean {:.1} us, p99 {:.1} us; sync latency mean {:.1} us, p99 {:.1} us",
        rd.write_latency.mean_ns / 1e3,
        rd.write_latency.p99_ns as f64 / 1e3,
        rd.sync_latency.mean_ns / 1e3,
        rd.sync_latency.p99_ns as f64 / 1e3
    );
    println!();
    println!("record sizes (payload bytes):");
    let total = rd.payload_sizes.total().max(1);
    for b in rd.payload_sizes.buckets() {
        let pct = b.count as f64 * 100.0 / total as f64;
        println!(
            "  {:>6} ..{:>6} {:>12} {:>5.1}% {}",
            b.min_bytes,
            b.max_bytes,
            b.count,
            pct,
            "#".repeat((pct / 2.0) as usize)
        );
    }
    println!();
    println!(
        "total: {} records, {} payload ({} dropped) in {:.2} s = {:.0} records/s, {:.1} MiB/s payload, {:.1} MiB/s to the journal",
        r.records,
        fmt_bytes(r.payload_bytes as f64),
        r.dropped,
        r.elapsed_s,
        r.records_per_s,
        r.payload_mib_per_s,
        r.journal_mib_per_s
    );
    println!(
        "durable: {} bytes synced; check with `ringlog verify {}`",
        rd.durable_position,
        r.output.display()
    );
}
