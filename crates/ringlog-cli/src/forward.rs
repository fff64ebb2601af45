//! `ringlog forward`, `ringlog stream-check` and `ringlog import`: a
//! journal into NATS JetStream, once per record, the check that it
//! arrived, and the way back from a stream into a journal.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ringlog_forward::{
    check_stream, import_stream, Dedup, Existing, ForwardError, ForwardOptions, Forwarder,
    ImportOptions, ImportReport, Metrics, Order, StreamSpec, MAX_WINDOW,
};

use crate::errors::chain;

/// How duplicates are kept out of the stream on a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DedupArg {
    /// `Nats-Msg-Id` only: exactly once within the stream's duplicate window
    /// (relaxed order; strict order needs neither).
    MsgId,
    /// Also skip records up to the last sequence stored per producer:
    /// exactly once beyond the window for increasing sequence numbers.
    LastSubject,
}

/// Whether the stream is kept in journal order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OrderArg {
    /// Strict on a stream this forwarder created (marked with the stream
    /// metadata `ringlog-order: strict`), relaxed on any other.
    Auto,
    /// Every publish expects the record before it in journal order as the
    /// stream's last message: the stream ends in journal order. The
    /// forwarder must be the stream's only publisher.
    Strict,
    /// No expectation: a lost publish retried lands behind later records
    /// (counted as out-of-order). For streams with other publishers.
    Relaxed,
}

/// Where the stream is and what it must look like.
#[derive(Debug, Args)]
pub(crate) struct StreamArgs {
    /// The journal directory.
    dir: PathBuf,
    /// NATS server URLs, comma-separated.
    #[arg(long, value_name = "URL[,URL…]")]
    server: String,
    /// The JetStream stream.
    #[arg(long, value_name = "S")]
    stream: String,
    /// Records go to `P.<producer>`; the stream must take `P.>`.
    #[arg(long, value_name = "P", default_value = "ringlog")]
    subject_prefix: String,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// `ringlog forward`.
///
/// Publishes every record of the journal to the stream, the payload as the
/// message, with the header `Ringlog-Record: <producer> <seq> <timestamp>
/// 0x<crc>`. Only records made durable locally are published (the forwarder
/// syncs the segment itself). The cursor file is written only over
/// acknowledged records, so a kill -9 repeats at most the unacknowledged
/// window, and none of it is stored twice. Records deleted by retention
/// before they were forwarded stop it with a gap error (exit 1).
///
/// Order: with `--order strict` (the default on a stream the forwarder
/// creates) every publish carries `Nats-Expected-Last-Sequence`, the stream
/// sequence of the record before it in journal order, so a lost publish
/// makes the server refuse the ones after it, and a stored record published
/// again is refused too; the forwarder reads the stream's last message,
/// publishes the rest again in order, and the stream ends in journal order
/// with each record once. This needs the forwarder to be the stream's only
/// publisher: at the start the stream must be empty or end with a record of
/// this journal (those up to it are skipped), otherwise it stops with an
/// error (exit 1). `--order relaxed` sets no expectation and sends
/// `Nats-Msg-Id: <producer>-<seq>` instead: the server drops repeats within
/// its duplicate window (reported as duplicates, or skipped with `--dedup
/// last-subject`), and a retried lost publish is stored behind later records
/// and counted as out-of-order.
///
/// In strict order, on a stream that allows it (`allow_batched`, set on a
/// stream the forwarder creates in strict order; JetStream 2.14 or later),
/// records go in fast-ingest batches: the server acknowledges every few
/// hundred messages rather than each one, which costs it less per record.
/// `--no-batch` has every publish acknowledged on its own.
#[derive(Debug, Args)]
pub(crate) struct ForwardArgs {
    #[command(flatten)]
    target: StreamArgs,
    /// Resume from (and keep) this cursor file.
    #[arg(long, value_name = "FILE")]
    cursor: Option<PathBuf>,
    /// Keep following the journal (until SIGINT / SIGTERM); otherwise stop
    /// once caught up.
    #[arg(long)]
    follow: bool,
    /// Most unacknowledged publishes.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    window: usize,
    /// Stream replicas (on creation; checked on an existing stream).
    #[arg(long, value_name = "N")]
    replicas: Option<usize>,
    /// Stream duplicate window in seconds (on creation; checked when given).
    #[arg(long, value_name = "SECS")]
    duplicate_window: Option<u64>,
    /// Fail when the stream does not exist instead of creating it.
    #[arg(long)]
    no_create: bool,
    /// How replays are kept out of the stream in relaxed order (in strict
    /// order the stream's last message says which records it holds).
    #[arg(long, value_enum, default_value = "last-subject")]
    dedup: DedupArg,
    /// Keep the stream in journal order (strict: this forwarder must be the
    /// stream's only publisher).
    #[arg(long, value_enum, default_value = "auto")]
    order: OrderArg,
    /// Acknowledge every publish on its own, even where the stream allows
    /// fast-ingest batches.
    #[arg(long)]
    no_batch: bool,
    /// Wait this long for an acknowledgement before publishing again (in
    /// batches: give a batch up after this long without one).
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    ack_timeout_ms: u64,
    /// Start from the oldest record even when older ones were deleted
    /// before a cursor existed (otherwise a gap error).
    #[arg(long)]
    allow_initial_gap: bool,
    /// No progress lines (errors are always printed).
    #[arg(long)]
    quiet: bool,
}

fn metrics_line(m: &Metrics) -> String {
    format!(
        "forwarded {} acknowledged {} retried {} duplicates {} already-in-stream {} out-of-order {} order-refusals {} batches {} lag {} records {} bytes",
        m.forwarded, m.acknowledged, m.retried, m.duplicates, m.already_in_stream, m.out_of_order, m.order_refusals, m.batches, m.lag_records, m.lag_bytes
    )
}

fn fail(e: ForwardError) -> Result<i32, String> {
    match e {
        ForwardError::InvalidOption(_) => {
            eprintln!("ringlog: error: {}", chain(&e));
            Ok(2)
        }
        ForwardError::JournalExists { .. } => {
            eprintln!("ringlog: error: {} (--resume or --overwrite)", chain(&e));
            Ok(2)
        }
        e => Err(chain(&e)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("start the async runtime: {}", chain(&e)))
}

pub(crate) fn forward(args: ForwardArgs) -> Result<i32, String> {
    if args.window == 0 || args.window > MAX_WINDOW {
        eprintln!("ringlog: error: --window must be 1 to {MAX_WINDOW}");
        return Ok(2);
    }
    if args.ack_timeout_ms == 0 {
        eprintln!("ringlog: error: --ack-timeout-ms must be above 0");
        return Ok(2);
    }
    let t = &args.target;
    let spec = StreamSpec {
        name: t.stream.clone(),
        subject_prefix: t.subject_prefix.clone(),
        replicas: args.replicas,
        duplicate_window: args.duplicate_window.map(Duration::from_secs),
        create: !args.no_create,
    };
    let mut options = ForwardOptions::new(t.dir.clone(), t.server.clone(), spec);
    options.cursor_file = args.cursor.clone();
    options.follow = args.follow;
    options.window = args.window;
    options.ack_timeout = Duration::from_millis(args.ack_timeout_ms);
    options.allow_initial_gap = args.allow_initial_gap;
    options.dedup = match args.dedup {
        DedupArg::MsgId => Dedup::MsgId,
        DedupArg::LastSubject => Dedup::LastSubject,
    };
    options.order = match args.order {
        OrderArg::Auto => Order::Auto,
        OrderArg::Strict => Order::Strict,
        OrderArg::Relaxed => Order::Relaxed,
    };
    options.batch = !args.no_batch;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("install a signal handler: {}", chain(&e)))?;
    }
    options.stop = Some(stop);
    if !args.quiet {
        options.progress = Some(Box::new(|m: &Metrics| {
            eprintln!("ringlog: forward: {}", metrics_line(m));
        }));
    }
    let rt = runtime()?;
    match rt.block_on(Forwarder::new(options).run()) {
        Ok(report) => {
            if t.json {
                println!(
                    "{}",
                    serde_json::to_string(&report).map_err(|e| e.to_string())?
                );
            } else {
                println!("{}", metrics_line(&report.metrics));
                if let Some(c) = &report.metrics.cursor {
                    println!("cursor {c}");
                }
            }
            let m = &report.metrics;
            if m.incomplete_producers > 0 {
                eprintln!(
                    "ringlog: forward: {} producers with sequence numbers missing from the stream below their last one: none of their records was skipped ({})",
                    m.incomplete_producers,
                    m.last_error.as_deref().unwrap_or("no detail")
                );
            }
            if m.out_of_order > 0 {
                eprintln!(
                    "ringlog: error: forward: {} records stored out of order for their producer ({})",
                    m.out_of_order,
                    m.last_error.as_deref().unwrap_or("no detail")
                );
                return Ok(1);
            }
            Ok(0)
        }
        Err(e) => fail(e),
    }
}

/// `ringlog stream-check`: reads the stream back and compares it with the
/// journal: every (producer, sequence) once, in order per producer, CRCs
/// matching. Exit 1 when it is not clean.
#[derive(Debug, Args)]
pub(crate) struct StreamCheckArgs {
    #[command(flatten)]
    target: StreamArgs,
}

pub(crate) fn stream_check(args: StreamCheckArgs) -> Result<i32, String> {
    let t = &args.target;
    let mut spec = StreamSpec::new(t.stream.clone());
    spec.subject_prefix = t.subject_prefix.clone();
    spec.create = false;
    let rt = runtime()?;
    match rt.block_on(check_stream(&t.dir, &t.server, &spec)) {
        Ok(check) => {
            if t.json {
                println!(
                    "{}",
                    serde_json::to_string(&check).map_err(|e| e.to_string())?
                );
            } else {
                println!(
                    "journal {} records, stream {} messages: missing {} duplicates {} out-of-order {} crc-mismatches {} unknown {}",
                    check.journal_records, check.messages, check.missing, check.duplicates,
                    check.out_of_order, check.crc_mismatches, check.unknown
                );
                for p in &check.problems {
                    println!("  {p}");
                }
            }
            Ok(if check.is_clean() { 0 } else { 1 })
        }
        Err(e) => fail(e),
    }
}

/// `ringlog import`: reads every message of the stream under `P.>` into a
/// journal in OUT_DIR, each record with the producer, sequence and
/// timestamp of its headers, its payload checked against the CRC in its
/// header. Messages with missing or malformed headers, a CRC that does not
/// match, or a sequence number that repeats or goes back for their producer
/// are counted, listed and not written; skipped sequence numbers are
/// counted as gaps. Exit 0 when everything was imported, 1 when anything
/// was wrong, 2 for invalid arguments or an OUT_DIR that holds a journal
/// without --resume or --overwrite.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The output journal directory (created when missing).
    #[arg(value_name = "OUT_DIR")]
    out_dir: PathBuf,
    /// NATS server URLs, comma-separated.
    #[arg(long, value_name = "URL[,URL…]")]
    server: String,
    /// The JetStream stream.
    #[arg(long, value_name = "S")]
    stream: String,
    /// Records are under `P.<producer>`.
    #[arg(long, value_name = "P", default_value = "ringlog")]
    subject_prefix: String,
    /// Continue the journal already in OUT_DIR: each producer's records up
    /// to its last one there are skipped, the rest appended.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Replace the journal already in OUT_DIR: its segment files, indexes
    /// and durable watermark (and only those) are removed once the stream
    /// has been found.
    #[arg(long)]
    overwrite: bool,
    /// Fail when no message arrives for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    idle_timeout: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// No progress lines (errors, and the replacement of a journal by
    /// --overwrite, are always said).
    #[arg(long)]
    quiet: bool,
}

fn import_line(r: &ImportReport) -> String {
    format!(
        "read {} of {} messages: written {} already-present {} malformed {} crc-mismatches {} duplicates {} out-of-order {} gaps {}",
        r.messages, r.stream_messages, r.written, r.already_present, r.malformed,
        r.crc_mismatches, r.duplicates, r.out_of_order, r.gaps
    )
}

pub(crate) fn import(args: ImportArgs) -> Result<i32, String> {
    if args.idle_timeout == 0 {
        eprintln!("ringlog: error: --idle-timeout must be above 0");
        return Ok(2);
    }
    let mut spec = StreamSpec::new(args.stream.clone());
    spec.subject_prefix = args.subject_prefix.clone();
    spec.create = false;
    let mut options = ImportOptions::new(args.out_dir.clone(), args.server.clone(), spec);
    options.existing = if args.resume {
        Existing::Resume
    } else if args.overwrite {
        Existing::Overwrite
    } else {
        Existing::Refuse
    };
    options.idle_timeout = Duration::from_secs(args.idle_timeout);
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("install a signal handler: {}", chain(&e)))?;
    }
    options.stop = Some(stop);
    if !args.quiet {
        options.progress = Some(Box::new(|r: &ImportReport| {
            eprintln!("ringlog: import: {}", import_line(r));
        }));
    }
    let rt = runtime()?;
    match rt.block_on(import_stream(options)) {
        Ok(report) => {
            // Said even with --quiet: a journal is never replaced silently.
            if report.removed_files > 0 {
                eprintln!(
                    "ringlog: import: replaced the journal in {} ({} journal files removed)",
                    args.out_dir.display(),
                    report.removed_files
                );
            }
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string(&report).map_err(|e| e.to_string())?
                );
            } else {
                println!("{}", import_line(&report));
                for p in &report.problems {
                    println!("  {p}");
                }
            }
            if report.stopped {
                eprintln!(
                    "ringlog: error: import: stopped at stream sequence {}; --resume continues",
                    report.last_stream_sequence
                );
                return Ok(1);
            }
            if !report.is_clean() {
                eprintln!(
                    "ringlog: error: import: {} messages not imported, {} sequence numbers missing",
                    report.malformed
                        + report.crc_mismatches
                        + report.duplicates
                        + report.out_of_order,
                    report.gaps
                );
                return Ok(1);
            }
            Ok(0)
        }
        Err(e) => fail(e),
    }
}
