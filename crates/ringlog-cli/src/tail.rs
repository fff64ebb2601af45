//! `ringlog tail`: print a journal's records, optionally following it as
//! records land, and resume where the last run stopped.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use ringlog::journal::{
    read_cursor_file, write_cursor_file, Cursor, FollowBound, FollowEvent, Follower, JournalError,
};

use crate::errors::chain;
use crate::query::{emit, gap_message, QueryArgs};

/// Records `tail` starts with by default, as tail(1) does.
const DEFAULT_LINES: u64 = 10;

/// Records printed between two cursor writes at most.
const MAX_UNCOMMITTED: usize = 4096;

/// Arguments of `ringlog tail`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Where tail starts, like tail(1): by default with the last 10 records (-n N \
for another count, -n 0 for none); with --from-start, --since or \
--seq-from at the oldest record selected; with --cursor FILE after the \
record FILE names, or at the oldest record when FILE does not exist yet \
(a consumer that keeps a cursor wants everything), unless -n is given. \
-n counts the records --producer, --since, --until and --seq-* select, \
before --grep. Records are printed in journal order, then, with --follow, \
as they land.

What lands: only complete frames whose checksum is valid, and only once \
they are durable: the journal's writer publishes how far its last \
fdatasync reached in durable.rlw, and tail prints up to there. A journal \
without that file (written by an older ringlog) is printed as written. \
--unsynced prints every complete frame written, synced or not.

With --cursor FILE, tail starts after the record named in FILE (if FILE \
exists) and, after each batch of output is written and flushed, replaces FILE \
atomically (temporary file, fsync, rename, fsync of the directory) with the \
cursor after the last record printed. A batch is at most 4096 records and \
ends whenever tail has caught up with the journal.

What a kill -9 of tail can repeat: the records printed after the last cursor \
write, at most one batch (4096 records), which the next run prints again; the \
last line printed before the kill may be incomplete. Nothing is ever skipped. \
SIGINT and SIGTERM write the cursor before exiting.

If records after the cursor were deleted by retention, tail refuses to start \
(exit 1) unless --allow-gap is given; a gap (while reading or with \
--allow-gap) is reported on stderr and, without --follow, makes the exit \
status 1.

Exit status: 0 done, 1 runtime failure or gap, 2 invalid arguments.")]
pub(crate) struct TailArgs {
    /// Journal directory.
    path: PathBuf,
    /// Keep waiting for new records (until SIGINT / SIGTERM).
    #[arg(long, short = 'f')]
    follow: bool,
    /// Resume after the cursor in FILE and keep it there (see below).
    #[arg(long, value_name = "FILE")]
    cursor: Option<PathBuf>,
    /// When the cursor's segment was deleted by retention, report the gap
    /// and go on with the oldest segment left.
    #[arg(long)]
    allow_gap: bool,
    /// Stop after printing this many records.
    #[arg(long)]
    limit: Option<u64>,
    /// Start with the last N records (default 10; see below).
    #[arg(long = "lines", short = 'n', value_name = "N")]
    lines: Option<u64>,
    /// Start at the oldest record instead of the last 10.
    #[arg(long, conflicts_with = "lines")]
    from_start: bool,
    /// Print records once written, before they are durable.
    #[arg(long)]
    unsynced: bool,
    #[command(flatten)]
    query: QueryArgs,
}

/// Output not yet written and the cursor after it.
struct Batch {
    buf: Vec<u8>,
    records: usize,
    cursor: Option<Cursor>,
    written: Option<Cursor>,
}

pub(crate) fn tail(args: TailArgs) -> Result<i32, String> {
    let mut query = match args.query.build() {
        Ok(q) => q,
        Err(e) => {
            eprintln!("ringlog: error: {e}");
            return Ok(2);
        }
    };
    if let Some(c) = &args.cursor {
        if c.is_dir() {
            eprintln!(
                "ringlog: error: --cursor {}: is a directory, not a file",
                c.display()
            );
            return Ok(2);
        }
    }
    if !args.path.is_dir() {
        // Let the library say why (missing, not a directory) with the OS error.
        if let Err(e) = std::fs::read_dir(&args.path) {
            return Err(format!(
                "cannot read journal directory {}: {}",
                args.path.display(),
                chain(&e)
            ));
        }
    }
    let journal_err = |e: JournalError| chain(&e);
    let start = match &args.cursor {
        Some(path) => read_cursor_file(path).map_err(journal_err)?,
        None => None,
    };
    let mut options = query.follow_options();
    options.resume_past_deleted = args.allow_gap;
    if args.unsynced {
        options.bound = FollowBound::Written;
    }
    let from_selection = args.query.since.is_some() || args.query.seq_from.is_some();
    let last = match (args.lines, &args.cursor) {
        _ if args.from_start => None,
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) if from_selection => None,
        (None, None) => Some(DEFAULT_LINES),
    };
    let mut follower = match &start {
        Some(c) => Follower::from_cursor(&args.path, c, options).map_err(|e| {
            let mut m = chain(&e);
            if matches!(e, JournalError::CursorMismatch { .. }) && !args.allow_gap {
                m.push_str(" (--allow-gap goes on after a gap that retention made)");
            }
            m
        })?,
        None => match last {
            Some(n) => Follower::open_last(&args.path, n, options).map_err(journal_err)?,
            None => Follower::open(&args.path, options).map_err(journal_err)?,
        },
    };

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signal {sig}: {}", chain(&e)))?;
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut batch = Batch {
        buf: Vec::with_capacity(1 << 16),
        records: 0,
        cursor: start,
        written: start,
    };
    query.write_prologue(&mut batch.buf);
    let commit = |batch: &mut Batch, out: &mut std::io::StdoutLock<'_>| -> Result<bool, String> {
        if !batch.buf.is_empty() {
            match emit(out, &mut batch.buf) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => return Err(format!("cannot write output: {}", chain(&e))),
            }
        }
        batch.records = 0;
        if let (Some(path), Some(c)) = (&args.cursor, batch.cursor) {
            if batch.written != Some(c) {
                write_cursor_file(path, &c).map_err(journal_err)?;
                batch.written = Some(c);
            }
        }
        Ok(true)
    };

    let mut printed = 0u64;
    let mut gaps = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) || args.limit.is_some_and(|l| printed >= l) {
            break;
        }
        let event = if args.follow {
            follower.next_before(Some(Instant::now() + Duration::from_millis(200)))
        } else {
            follower.try_next()
        };
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                // What was printed stays committed.
                commit(&mut batch, &mut out)?;
                return Err(chain(&e));
            }
        };
        match event {
            Some(FollowEvent::Record(r)) => {
                let view = r.as_ref();
                if query.accepts(&view) {
                    if query.write_record(&mut batch.buf, &view) {
                        printed += 1;
                    }
                } else {
                    query.observe(&view);
                }
                batch.cursor = Some(r.cursor());
                batch.records += 1;
                let full = batch.records >= MAX_UNCOMMITTED || batch.buf.len() >= 1 << 20;
                // Committed only when full; a closed stdout ends quietly.
                if full && !commit(&mut batch, &mut out)? {
                    return Ok(0);
                }
            }
            Some(FollowEvent::Gap(g)) => {
                if !commit(&mut batch, &mut out)? {
                    return Ok(0);
                }
                eprintln!("{}", gap_message(&g));
                gaps += 1;
                batch.cursor = Some(g.resume);
            }
            None => {
                if !commit(&mut batch, &mut out)? {
                    return Ok(0);
                }
                if !args.follow {
                    break;
                }
            }
        }
    }
    if !commit(&mut batch, &mut out)? {
        return Ok(0);
    }
    let _ = out.flush();
    Ok(if gaps > 0 && !args.follow { 1 } else { 0 })
}
