//! `ringlog run`: the seeds' demo as a tool. N writer threads append random
//! blocks through an MPSC byte queue; one reader persists them to a journal;
//! a progress bar while it runs and a report at the end.

use crate::errors::chain;
use crate::units::{fmt_bytes, parse_duration, parse_size};
use clap::{Args, ValueEnum};
use crossbeam_utils::CachePadded;
use indicatif::{ProgressBar, ProgressStyle};
use ringlog::bytes::{ClaimError, Policy, QueueLimits};
use ringlog::journal::{
    framed_len, parse_segment_file_name, SyncPolicy, FRAME_ALIGN, FRAME_HEADER_LEN, MAX_PAYLOAD,
    SEGMENT_EXTENSION,
};
use ringlog::pipeline::{
    self, aux_work, AppendError, Design, PipelineConfig, PipelineWriter, ReaderReport,
};
use ringlog::wait::deadline_after;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `ringlog run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Writer threads (1 to 64; fan-in takes up to 256).
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Queue design: double-buffer, fan-in or shared-ring.
    #[arg(long, default_value = "double-buffer", value_parser = str::parse::<Design>)]
    design: Design,
    /// Total queue memory (e.g. 64MiB): split among the buffers
    /// (double-buffer) or the writers' rings (fan-in).
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    capacity: u64,
    /// Buffers of the double buffer (a power of two, 2 to 16).
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
    min_size: u64,
    /// Largest block in bytes (at most the journal's 64 MiB record payload,
    /// and what the queue can hold).
    #[arg(long, default_value_t = 10_000)]
    max_size: u64,
    /// Seed of the block sizes and contents.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Journal directory. A journal already there is continued: recovery
    /// cuts a torn tail left by a crash, then each writer carries on its
    /// sequence, so the journal verifies clean after any number of runs.
    #[arg(long, default_value = "ringlog-data")]
    output: PathBuf,
    /// Replace the journal in --output instead of continuing it: its
    /// segment files and its durable watermark (and only those) are
    /// removed once every other option has been checked.
    #[arg(long)]
    overwrite: bool,
    /// When the journal is synced: never, batch (after every batch) or an
    /// interval such as 100ms.
    #[arg(long, default_value = "100ms", value_parser = parse_sync)]
    sync: SyncPolicy,
    /// Size at which the journal starts a new segment file (e.g. 64MiB);
    /// a record larger than this gets a segment of its own.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    segment_size: u64,
    /// How long a failing disk (full, I/O errors) is retried without any
    /// progress before the run stops with exit 1. Each failure is reported
    /// on stderr meanwhile.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    sink_retry: Duration,
    /// Append one JSON line to FILE whenever the durable records change
    /// (at most every 100 ms) and at the end: elapsed time, and per writer
    /// its first sequence of this run and `durable_seq` (every record with
    /// a lower sequence number is synced to the journal).
    #[arg(long, value_name = "FILE")]
    progress_json: Option<PathBuf>,
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
    /// No progress display (errors are still printed).
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
    // Validated: 1 <= min_size <= max_size <= MAX_PAYLOAD, and the pool
    // holds at least max_size bytes.
    let (min, max) = (args.min_size as usize, args.max_size as usize);
    let span = (max - min + 1) as u64;
    let (mut records, mut bytes) = (0u64, 0u64);
    // Relaxed: a stop request needs no ordering with the records.
    while !stop.load(Ordering::Relaxed) && records < quota.records && bytes < quota.bytes {
        let size = min + (splitmix(&mut rng) % span) as usize;
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
    /// `new`, `continued` or `replaced`.
    journal: &'static str,
    /// Records in the journal before this run (from its writers' producers).
    records_before: u64,
    elapsed_s: f64,
    /// Records appended to the journal by this run.
    records: u64,
    /// Payload bytes of those records.
    payload_bytes: u64,
    /// Frame bytes of those records (headers and padding included).
    frame_bytes: u64,
    /// Records of this run that are durable (synced).
    durable_records: u64,
    dropped: u64,
    records_per_s: f64,
    payload_mib_per_s: f64,
    journal_mib_per_s: f64,
    per_writer: Vec<WriterRow>,
    /// The error that stopped the run, if any.
    error: Option<String>,
    reader: ReaderReport,
}

#[derive(Debug, Serialize)]
struct WriterRow {
    id: usize,
    /// Records of this writer appended to the journal by this run.
    records: u64,
    payload_bytes: u64,
    /// The writer's first sequence number in this run.
    first_seq: u64,
    /// Every record of this writer below this sequence number is durable.
    durable_seq: u64,
    /// Records of this run that are durable.
    durable_records: u64,
    dropped: u64,
    blocked_ms: f64,
}

fn usage_error(msg: &str) -> Result<i32, String> {
    eprintln!("ringlog: error: {msg}");
    Ok(2)
}

/// What the checked arguments come to.
struct Plan {
    /// Bytes of each buffer (double buffer) or ring (fan-in), or of the ring.
    per_queue: usize,
    /// Exists already (a journal may be in it).
    output_exists: bool,
}

fn design_name(d: Design) -> &'static str {
    match d {
        Design::DoubleBuffer => "double-buffer",
        Design::FanIn => "fan-in",
        Design::SharedRing => "shared-ring",
    }
}

/// The memory the kernel says is available, in bytes (`MemAvailable`).
pub(crate) fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The largest payload whose frame fits a queue record of `max_record` bytes.
fn largest_payload(max_record: usize) -> usize {
    (max_record & !(FRAME_ALIGN - 1)).saturating_sub(FRAME_HEADER_LEN)
}

/// Checks every setting before anything on disk is touched. Each message
/// names the option, the value and the limit with its unit.
fn check(args: &RunArgs) -> Result<Plan, String> {
    let design = design_name(args.design);
    let b = |n: u64| fmt_bytes(n as f64);
    let max_writers = match args.design {
        Design::DoubleBuffer => ringlog::bytes::double_buffer::MAX_WRITERS,
        Design::FanIn => ringlog::bytes::fan_in::MAX_WRITERS,
        Design::SharedRing => ringlog::bytes::shared_ring::MAX_WRITERS,
    };
    if !(1..=max_writers).contains(&args.writers) {
        return Err(format!(
            "--writers {}: the {design} design takes 1 to {max_writers} writers",
            args.writers
        ));
    }
    if !(2..=16).contains(&args.buffers) || !args.buffers.is_power_of_two() {
        return Err(format!(
            "--buffers {}: the double buffer needs a power of two from 2 to 16 buffers",
            args.buffers
        ));
    }
    // A segment holds its header and at least one small frame.
    let min_segment = 4096u64;
    if args.segment_size < min_segment {
        return Err(format!(
            "--segment-size {} B: a segment needs at least {min_segment} B (4 KiB)",
            args.segment_size
        ));
    }
    // How --capacity is split, and the per-part limits of the design.
    let (parts, part_name, min_part, max_part) = match args.design {
        Design::DoubleBuffer => (
            args.buffers,
            "buffer",
            ringlog::bytes::double_buffer::MIN_CAPACITY,
            ringlog::bytes::double_buffer::MAX_CAPACITY,
        ),
        Design::FanIn => (
            args.writers,
            "writer's ring",
            ringlog::ring::MIN_CAPACITY,
            ringlog::ring::MAX_CAPACITY,
        ),
        Design::SharedRing => (
            1,
            "ring",
            ringlog::bytes::shared_ring::MIN_CAPACITY,
            ringlog::bytes::shared_ring::MAX_CAPACITY,
        ),
    };
    let split = match args.design {
        Design::DoubleBuffer => format!(" with {parts} buffers"),
        Design::FanIn => format!(" of {parts} writers' rings"),
        Design::SharedRing => String::new(),
    };
    let min_total = (min_part as u64).saturating_mul(parts as u64);
    let max_total = (max_part as u64).saturating_mul(parts as u64);
    if args.capacity < min_total {
        return Err(format!(
            "--capacity {}: the {design} queue{split} needs at least {} ({} per {part_name})",
            b(args.capacity),
            b(min_total),
            b(min_part as u64)
        ));
    }
    if args.capacity > max_total {
        return Err(format!(
            "--capacity {}: the {design} queue{split} takes at most {} ({} per {part_name})",
            b(args.capacity),
            b(max_total),
            b(max_part as u64)
        ));
    }
    let per_queue = usize::try_from(args.capacity / parts as u64)
        .map_err(|_| format!("--capacity {}: too large", b(args.capacity)))?;
    let mut config = PipelineConfig::new(&args.output, args.design, per_queue, args.writers);
    config.queue.buffers = args.buffers;
    let QueueLimits {
        max_record_len,
        memory_bytes,
    } = config
        .queue_limits()
        .map_err(|e| format!("--capacity {}: {e}", b(args.capacity)))?;
    if let Some(avail) = available_memory() {
        if memory_bytes as u64 > avail {
            return Err(format!(
                "--capacity {}: the {design} queue needs {} of memory but {} is available",
                b(args.capacity),
                b(memory_bytes as u64),
                b(avail)
            ));
        }
    }
    if args.min_size == 0 {
        return Err("--min-size 0 B: a block needs at least 1 B".into());
    }
    if args.min_size > args.max_size {
        return Err(format!(
            "--min-size {} B is larger than --max-size {} B",
            args.min_size, args.max_size
        ));
    }
    if args.max_size > MAX_PAYLOAD as u64 {
        return Err(format!(
            "--max-size {} B: the journal's largest record payload is {MAX_PAYLOAD} B ({})",
            args.max_size,
            b(MAX_PAYLOAD as u64)
        ));
    }
    // Within MAX_PAYLOAD, so framed_len cannot overflow.
    let needed = framed_len(args.max_size as usize);
    if needed > max_record_len {
        // The smallest --capacity whose queue holds a frame of `needed`.
        let per_part = match args.design {
            Design::DoubleBuffer => (needed + 8).next_multiple_of(8),
            // Rounded up to a power of two, which must be twice the record.
            Design::FanIn | Design::SharedRing => (2 * (needed + 8)).next_power_of_two() / 2 + 1,
        };
        let min = (per_part as u64).saturating_mul(parts as u64);
        return Err(format!(
            "--capacity {} is too small for --max-size {} B: the {design} queue{split} then \
             holds records of at most {} B of payload; use --capacity of at least {min} B \
             ({}) or a smaller --max-size",
            b(args.capacity),
            args.max_size,
            largest_payload(max_record_len),
            b(min)
        ));
    }
    let output_exists = match std::fs::metadata(&args.output) {
        Ok(m) if m.is_dir() => true,
        Ok(_) => {
            return Err(format!(
                "--output {}: not a directory",
                args.output.display()
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(format!("--output {}: {e}", args.output.display())),
    };
    if let Some(p) = &args.progress_json {
        check_progress_path(p, &args.output)?;
    }
    Ok(Plan {
        per_queue,
        output_exists,
    })
}

/// Whether `name` is one the journal owns in its directory (a segment or
/// a segment being created, which recovery removes).
fn is_journal_file_name(name: &str) -> bool {
    parse_segment_file_name(name).is_some()
        || name.ends_with(&format!(".{SEGMENT_EXTENSION}.tmp"))
        || name.ends_with(&format!(".{SEGMENT_EXTENSION}"))
}

fn check_progress_path(p: &Path, output: &Path) -> Result<(), String> {
    let shown = p.display();
    let name = p
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("--progress-json {shown}: not a file name"))?;
    if p.is_dir() {
        return Err(format!("--progress-json {shown}: is a directory"));
    }
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(format!(
            "--progress-json {shown}: directory {} does not exist",
            parent.display()
        ));
    }
    let same_dir = match (parent.canonicalize(), output.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same_dir && is_journal_file_name(name) {
        return Err(format!(
            "--progress-json {shown}: that name belongs to the journal in {}",
            output.display()
        ));
    }
    Ok(())
}

/// `--overwrite`: removes the journal's segment files (segments being
/// created, and the durable watermark) from `dir`, nothing else. Returns how many were removed.
fn remove_journal(dir: &Path) -> Result<usize, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("list directory {}: {e}", dir.display())),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| format!("list directory {}: {e}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let journal_owned = parse_segment_file_name(name).is_some()
            || name.ends_with(&format!(".{SEGMENT_EXTENSION}.tmp"))
            || name == ringlog::journal::DURABLE_FILE_NAME;
        if journal_owned {
            let p = entry.path();
            std::fs::remove_file(&p).map_err(|e| format!("remove {}: {e}", p.display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Appends progress lines to `--progress-json`, one `write` each.
struct ProgressLog {
    file: std::fs::File,
    path: PathBuf,
    last: Option<Vec<u64>>,
}

impl ProgressLog {
    fn open(path: &Path) -> Result<Self, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            last: None,
        })
    }

    /// Writes a line if `durable` changed since the last one (or `last`).
    fn note(
        &mut self,
        elapsed: Duration,
        first: &[u64],
        durable: &[u64],
        done: bool,
    ) -> Result<(), String> {
        if !done && self.last.as_deref() == Some(durable) {
            return Ok(());
        }
        #[derive(Serialize)]
        struct Line<'a> {
            elapsed_s: f64,
            first_seq: &'a [u64],
            durable_seq: &'a [u64],
            durable_records: Vec<u64>,
            done: bool,
        }
        let line = Line {
            elapsed_s: elapsed.as_secs_f64(),
            first_seq: first,
            durable_seq: durable,
            durable_records: durable
                .iter()
                .zip(first)
                .map(|(d, f)| d.saturating_sub(*f))
                .collect(),
            done,
        };
        let mut text = serde_json::to_string(&line).map_err(|e| e.to_string())?;
        text.push('\n');
        // One write of the whole line (the file is unbuffered and opened
        // for append): after a kill, every line in it is whole.
        self.file
            .write_all(text.as_bytes())
            .map_err(|e| format!("write {}: {e}", self.path.display()))?;
        self.last = Some(durable.to_vec());
        Ok(())
    }
}

fn progress_bar(args: &RunArgs, duration: Option<Duration>) -> ProgressBar {
    if args.quiet || args.json {
        return ProgressBar::hidden();
    }
    let limited = args.records.is_some() || args.bytes.is_some() || duration.is_some();
    if limited {
        let bar = ProgressBar::new(PROGRESS_STEPS);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {percent:>3}% {elapsed_precise} ETA {eta_precise} {msg}",
            )
            .expect("static template"),
        );
        bar
    } else {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .expect("static template"),
        );
        bar
    }
}

/// Resolution of the progress bar: the fraction done of the nearest limit.
const PROGRESS_STEPS: u64 = 10_000;

pub(crate) fn run(args: RunArgs) -> Result<i32, String> {
    let plan = match check(&args) {
        Ok(p) => p,
        Err(msg) => return usage_error(&msg),
    };
    let mut progress_log = args
        .progress_json
        .as_deref()
        .map(ProgressLog::open)
        .transpose()?;
    let mut journal_state = if plan.output_exists {
        "continued"
    } else {
        "new"
    };
    if args.overwrite && plan.output_exists {
        let removed = remove_journal(&args.output)?;
        if removed > 0 && !args.quiet && !args.json {
            eprintln!(
                "ringlog: replacing the journal in {} ({removed} segment files removed)",
                args.output.display()
            );
        }
        journal_state = "replaced";
    }
    let mut config = PipelineConfig::new(&args.output, args.design, plan.per_queue, args.writers);
    config.queue.policy = match args.policy {
        PolicyArg::Block => Policy::Block,
        PolicyArg::DropNewest => Policy::DropNewest,
    };
    config.queue.buffers = args.buffers;
    config.journal.sync = args.sync;
    config.journal.segment_bytes = args.segment_size;
    config.reader_aux_work = args.aux_work;
    config.sink_retry = args.sink_retry;
    let (writers, pipe) = pipeline::start(config).map_err(|e| chain(&e))?;
    let first_seqs = pipe.first_seqs().to_vec();
    let records_before: u64 = first_seqs.iter().sum();
    if journal_state == "continued" && records_before == 0 {
        journal_state = "new";
    }

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
    // max_size <= MAX_PAYLOAD (checked), so this is at most 65 MiB.
    let mut pool = vec![0u8; (1 << 20) + args.max_size as usize];
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
    if let Some(log) = progress_log.as_mut() {
        log.note(Duration::ZERO, &first_seqs, &pipe.durable_seqs(), false)?;
    }
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

    let bar = progress_bar(&args, duration);
    let mut last = (Instant::now(), 0u64);
    let mut failures_shown = 0u64;
    let mut progress_error = None;
    while !handles
        .iter()
        .all(|h: &std::thread::JoinHandle<_>| h.is_finished())
    {
        std::thread::sleep(Duration::from_millis(100));
        if duration.is_some_and(|d| start.elapsed() >= d) {
            stop.store(true, Ordering::Relaxed);
        }
        if pipe.is_finished() {
            // The reader stopped (the sink gave up): nothing more can be
            // persisted, so the writers stop too.
            stop.store(true, Ordering::Relaxed);
        }
        // Errors are never quiet: each new failure goes to stderr, with or
        // without a terminal or --quiet.
        let failures = pipe.sink_failures();
        if failures != failures_shown {
            if let Some(err) = pipe.sink_error() {
                bar.suspend(|| {
                    eprintln!(
                        "ringlog: error: writing the journal failed ({failures} failed attempts; \
                         retrying for up to {:.0?}): {err}",
                        args.sink_retry
                    );
                });
            }
            failures_shown = failures;
        }
        let durable = pipe.durable_seqs();
        if let Some(log) = progress_log.as_mut() {
            if let Err(e) = log.note(start.elapsed(), &first_seqs, &durable, false) {
                // Reported once at the end; the run itself goes on.
                progress_error.get_or_insert(e);
            }
        }
        let recs: u64 = live.iter().map(|l| l.records.load(Ordering::Relaxed)).sum();
        let bytes: u64 = live.iter().map(|l| l.bytes.load(Ordering::Relaxed)).sum();
        let durable_recs: u64 = durable
            .iter()
            .zip(&first_seqs)
            .map(|(d, f)| d.saturating_sub(*f))
            .sum();
        let dt = last.0.elapsed().as_secs_f64();
        let rate = (bytes - last.1) as f64 / dt.max(1e-9);
        last = (Instant::now(), bytes);
        let fraction = [
            args.records.map(|t| recs as f64 / t.max(1) as f64),
            args.bytes.map(|t| bytes as f64 / t.max(1) as f64),
            duration.map(|d| start.elapsed().as_secs_f64() / d.as_secs_f64().max(1e-9)),
        ]
        .into_iter()
        .flatten()
        .fold(0.0f64, f64::max)
        .min(1.0);
        bar.set_position((fraction * PROGRESS_STEPS as f64) as u64);
        bar.set_message(format!(
            "{recs} queued, {durable_recs} durable, {} payload, {}/s",
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
    let outcome = pipe.shutdown();
    let elapsed = start.elapsed().as_secs_f64();
    let (reader, error) = match outcome {
        Ok(r) => (r, None),
        Err(e) => match e.report().cloned() {
            Some(r) => (r, Some(chain(&e))),
            None => return Err(chain(&e)),
        },
    };
    if let Some(log) = progress_log.as_mut() {
        let durable: Vec<u64> = reader.writers.iter().map(|w| w.durable_seq).collect();
        if let Err(e) = log.note(start.elapsed(), &first_seqs, &durable, true) {
            progress_error.get_or_insert(e);
        }
    }
    // A writer's "reader disconnected" is only the consequence of a sink
    // that gave up; report the cause.
    let error = error.or(writer_error);
    let report = build_report(
        &args,
        journal_state,
        records_before,
        elapsed,
        reader,
        error.clone(),
    );
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print_report(&report);
    }
    if let Some(e) = progress_error {
        eprintln!("ringlog: error: --progress-json: {e}");
    }
    match error {
        Some(e) => {
            eprintln!("ringlog: error: {e}");
            Ok(1)
        }
        None => Ok(0),
    }
}

fn build_report(
    args: &RunArgs,
    journal: &'static str,
    records_before: u64,
    elapsed: f64,
    reader: ReaderReport,
    error: Option<String>,
) -> RunReport {
    let queue = reader.queue.as_ref();
    let per_writer: Vec<WriterRow> = reader
        .writers
        .iter()
        .enumerate()
        .map(|(id, w)| {
            let q = queue.and_then(|q| q.writers.get(id));
            WriterRow {
                id,
                records: w.records,
                payload_bytes: w.payload_bytes,
                first_seq: w.first_seq,
                durable_seq: w.durable_seq,
                durable_records: w.durable_records(),
                dropped: q.map_or(0, |q| q.dropped),
                blocked_ms: q.map_or(0.0, |q| q.blocked.as_secs_f64() * 1e3),
            }
        })
        .collect();
    let dropped = per_writer.iter().map(|w| w.dropped).sum();
    RunReport {
        design: args.design,
        policy: args.policy,
        writers: args.writers,
        capacity_bytes: args.capacity,
        output: args.output.clone(),
        journal,
        records_before,
        elapsed_s: elapsed,
        records: reader.records,
        payload_bytes: reader.payload_bytes,
        frame_bytes: reader.frame_bytes,
        durable_records: reader.durable_records(),
        dropped,
        records_per_s: reader.records as f64 / elapsed,
        payload_mib_per_s: reader.payload_bytes as f64 / elapsed / (1 << 20) as f64,
        journal_mib_per_s: reader.frame_bytes as f64 / elapsed / (1 << 20) as f64,
        per_writer,
        error,
        reader,
    }
}

fn print_report(r: &RunReport) {
    let journal = match r.journal {
        "continued" => format!("continued after {} records", r.records_before),
        other => other.to_string(),
    };
    println!(
        "ringlog run: {:?}, {} writers, {} queue, policy {:?}, journal in {} ({journal})",
        r.design,
        r.writers,
        fmt_bytes(r.capacity_bytes as f64),
        r.policy,
        r.output.display()
    );
    println!();
    println!(
        "{:>7} {:>12} {:>14} {:>12} {:>10} {:>12}",
        "writer", "records", "payload", "durable", "dropped", "blocked ms"
    );
    for w in &r.per_writer {
        println!(
            "{:>7} {:>12} {:>14} {:>12} {:>10} {:>12.1}",
            w.id,
            w.records,
            fmt_bytes(w.payload_bytes as f64),
            w.durable_records,
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
        "total: {} records, {} payload, {} of frames ({} dropped) in {:.2} s = {:.0} records/s, \
         {:.1} MiB/s payload, {:.1} MiB/s to the journal",
        r.records,
        fmt_bytes(r.payload_bytes as f64),
        fmt_bytes(r.frame_bytes as f64),
        r.dropped,
        r.elapsed_s,
        r.records_per_s,
        r.payload_mib_per_s,
        r.journal_mib_per_s
    );
    println!(
        "durable: {} of {} records of this run synced (journal position {}); check with \
         `ringlog verify {}`",
        r.durable_records,
        r.records,
        rd.durable_position,
        r.output.display()
    );
}
