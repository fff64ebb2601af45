//! `ringlog verify`, `ringlog recover` and `ringlog cat`: the tools that
//! read a journal (and, for `recover`, repair its tail).
//!
//! Exit codes: `verify` 0 clean, 3 only a torn tail that `recover` cuts,
//! 1 damage or a runtime failure; `recover` 0 when the journal is clean
//! afterwards, 1 otherwise; `cat` 0, or 1 when the journal cannot be read
//! to its end. 2 is always a usage error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use clap::{Args, ValueEnum};
use ringlog::journal::{
    parse_segment_file_name, plan_recovery, rebuild_index, segment_file_name,
    verify as verify_journal, Damage, Journal, JournalError, JournalOptions, OwnedFrames, Reader,
    RecoveryMode, RecoveryReport, SeqFaultKind, StructureFaultKind, VerifyReport, VerifyStatus,
    MAX_REPORTED_FAULTS,
};

use crate::errors::chain;
use crate::query::{emit, QueryArgs};

/// Exit code of `verify` for a journal whose only fault is a torn tail.
pub(crate) const EXIT_TORN_TAIL: i32 = 3;

/// Fault lines `verify` prints as text at most (all are counted; `--json`
/// lists every one the report holds).
const MAX_TEXT_FAULTS: usize = 50;

/// Arguments of `ringlog verify`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 clean; 3 only a torn tail, which `ringlog recover DIR` \
                        cuts without losing an acknowledged record; 1 damage (or an I/O \
                        error); 2 invalid arguments."
)]
pub(crate) struct VerifyArgs {
    /// Journal directory.
    path: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also write the sparse index of every segment whose index is missing,
    /// damaged or stale (indexes are only hints: verify never trusts them).
    #[arg(long)]
    rebuild_index: bool,
}

/// Arguments of `ringlog recover`.
#[derive(Debug, Args)]
#[command(
    after_help = "Runs the recovery that opening a journal runs: removes leftover \
                        temporary files and the newest segments an interrupted creation left \
                        without records, and cuts the last segment's torn tail. Damage before \
                        the tail is reported and nothing is changed, unless --mode says \
                        otherwise. Do not run it on a journal a process is writing.\n\n\
                        Exit status: 0 the journal is clean afterwards (with --dry-run: would \
                        be); 1 damage remains (or an I/O error); 2 invalid arguments."
)]
pub(crate) struct RecoverArgs {
    /// Journal directory.
    path: PathBuf,
    /// Say what would be done and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// What to do with a bad record that has valid records after it in the
    /// last segment: `strict` changes nothing and fails, `skip` leaves it
    /// in place, `truncate` cuts the segment there (dropping the valid
    /// records after it).
    #[arg(long, value_enum, default_value_t = ModeArg::Strict)]
    mode: ModeArg,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    /// Corruption before the tail is an error; nothing is changed.
    Strict,
    /// Leave corrupted ranges in place and keep every valid record.
    Skip,
    /// Cut the last segment at its first bad record.
    Truncate,
}

impl ModeArg {
    fn mode(self) -> RecoveryMode {
        match self {
            Self::Strict => RecoveryMode::Strict,
            Self::Skip => RecoveryMode::Skip,
            Self::Truncate => RecoveryMode::TruncateAtFirstError,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Skip => "skip",
            Self::Truncate => "truncate",
        }
    }
}

/// Arguments of `ringlog cat`.
#[derive(Debug, Args)]
pub(crate) struct CatArgs {
    /// Journal directory.
    path: PathBuf,
    /// Print at most this many records (of those the filters select).
    #[arg(long)]
    limit: Option<u64>,
    /// Which records and how to print them.
    #[command(flatten)]
    query: QueryArgs,
}

fn status_name(s: VerifyStatus) -> &'static str {
    match s {
        VerifyStatus::Clean => "clean",
        VerifyStatus::TornTail => "torn_tail",
        VerifyStatus::Damaged => "damaged",
    }
}

/// One fault of a [`VerifyReport`], ready to print.
#[derive(Debug)]
struct Fault {
    /// Machine-readable kind.
    kind: &'static str,
    /// The segment file.
    path: PathBuf,
    /// Its segment number (from the file name).
    segment: Option<u64>,
    /// Byte offset in the file.
    offset: u64,
    /// End of a damaged byte range.
    end: Option<u64>,
    /// Whether recovery removes it (part of a torn tail).
    torn: bool,
    /// What is wrong, in plain words.
    message: String,
}

fn segment_of(path: &Path) -> Option<u64> {
    parse_segment_file_name(path.file_name()?.to_str()?)
}

/// Every fault of `r`, in file and offset order.
fn faults(dir: &Path, r: &VerifyReport) -> Vec<Fault> {
    let mut out = Vec::new();
    for s in &r.structure {
        let kind = match s.kind {
            StructureFaultKind::NotRegularFile { .. } => "not_regular_file",
            StructureFaultKind::NameMismatch { .. } => "name_mismatch",
            StructureFaultKind::MissingSegments { .. } => "missing_segments",
            StructureFaultKind::PositionMismatch { .. } => "position_mismatch",
        };
        out.push(Fault {
            kind,
            path: s.path.clone(),
            segment: Some(s.segment),
            offset: s.offset,
            end: None,
            torn: false,
            message: s.kind.to_string(),
        });
    }
    for d in &r.corrupted {
        let (kind, message) = match d.damage {
            Damage::Header(_) => (
                "bad_header",
                format!(
                    "{}; the whole file ({} bytes) is unreadable",
                    d.damage, d.end
                ),
            ),
            Damage::Frame(_) => (
                "bad_record",
                format!(
                    "{}; {} bytes unreadable, up to byte {}",
                    d.damage,
                    d.end - d.start,
                    d.end
                ),
            ),
        };
        out.push(Fault {
            kind,
            path: d.path.clone(),
            segment: segment_of(&d.path),
            offset: d.start,
            end: Some(d.end),
            torn: false,
            message,
        });
    }
    for f in &r.seq_faults {
        out.push(Fault {
            kind: match f.kind {
                SeqFaultKind::Gap => "sequence_gap",
                SeqFaultKind::Duplicate => "sequence_duplicate",
                SeqFaultKind::OutOfOrder => "sequence_out_of_order",
            },
            path: dir.join(segment_file_name(f.segment)),
            segment: Some(f.segment),
            offset: f.offset,
            end: None,
            torn: false,
            message: f.to_string(),
        });
    }
    if let Some(t) = &r.torn_tail {
        out.push(Fault {
            kind: "torn_tail",
            path: t.path.clone(),
            segment: segment_of(&t.path),
            offset: t.start,
            end: Some(t.end),
            torn: true,
            message: format!(
                "torn tail: {} bytes of an interrupted write up to the end of the file ({}); \
                 recovery cuts them",
                t.end - t.start,
                t.damage
            ),
        });
    }
    for p in &r.torn_segments {
        out.push(Fault {
            kind: "torn_segment",
            path: p.clone(),
            segment: segment_of(p),
            offset: 0,
            end: None,
            torn: true,
            message: "newest segment without records, left by an interrupted creation; \
                      recovery removes it"
                .to_owned(),
        });
    }
    for p in &r.leftover_temp_files {
        out.push(Fault {
            kind: "leftover_temp_file",
            path: p.clone(),
            segment: None,
            offset: 0,
            end: None,
            torn: true,
            message: "temporary file of an interrupted segment creation; recovery removes it"
                .to_owned(),
        });
    }
    out.sort_by(|a, b| (&a.path, a.offset).cmp(&(&b.path, b.offset)));
    out
}

/// The kinds in the total line, in the order printed: (kind, singular,
/// plural).
const KIND_NAMES: &[(&str, &str, &str)] = &[
    ("not_regular_file", "non-regular file", "non-regular files"),
    (
        "missing_segments",
        "missing segment range",
        "missing segment ranges",
    ),
    ("name_mismatch", "misnamed segment", "misnamed segments"),
    ("position_mismatch", "position break", "position breaks"),
    ("bad_header", "bad segment header", "bad segment headers"),
    ("bad_record", "corrupted range", "corrupted ranges"),
    ("torn_tail", "torn tail", "torn tails"),
    (
        "torn_segment",
        "empty newest segment",
        "empty newest segments",
    ),
    (
        "leftover_temp_file",
        "leftover temporary file",
        "leftover temporary files",
    ),
];

/// "3 faults: 1 missing segment range, 2 sequence faults".
fn total_line(r: &VerifyReport, faults: &[Fault]) -> String {
    let total = r.fault_count();
    let mut parts = Vec::new();
    for &(kind, one, many) in KIND_NAMES {
        let n = faults.iter().filter(|f| f.kind == kind).count();
        if n > 0 {
            parts.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    }
    if r.seq_fault_count > 0 {
        let n = r.seq_fault_count;
        parts.push(format!(
            "{n} sequence fault{}",
            if n == 1 { "" } else { "s" }
        ));
    }
    format!(
        "{total} fault{}: {}",
        if total == 1 { "" } else { "s" },
        parts.join(", ")
    )
}

fn producers_json(r: &VerifyReport) -> serde_json::Map<String, serde_json::Value> {
    r.producers
        .iter()
        .map(|(id, p)| {
            (
                id.to_string(),
                serde_json::json!({
                    "records": p.records, "payload_bytes": p.payload_bytes,
                    "frame_bytes": p.frame_bytes,
                    "first_seq": p.first_seq, "last_seq": p.last_seq,
                    "missing": p.missing, "duplicates": p.duplicates,
                    "out_of_order": p.out_of_order,
                }),
            )
        })
        .collect()
}

fn fault_json(f: &Fault) -> serde_json::Value {
    serde_json::json!({
        "kind": f.kind, "file": f.path, "segment": f.segment, "offset": f.offset,
        "end": f.end, "torn": f.torn, "message": f.message,
    })
}

fn print_summary(dir: &Path, r: &VerifyReport) {
    println!(
        "{}: {} segments, {} records, {} payload bytes ({} bytes of frames)",
        dir.display(),
        r.segments,
        r.records,
        r.payload_bytes,
        r.frame_bytes
    );
    if !r.producers.is_empty() {
        println!(
            "{:>10} {:>12} {:>14} {:>12} {:>12}",
            "producer", "records", "payload bytes", "first seq", "last seq"
        );
        for (id, p) in &r.producers {
            println!(
                "{:>10} {:>12} {:>14} {:>12} {:>12}",
                id, p.records, p.payload_bytes, p.first_seq, p.last_seq
            );
        }
    }
}

fn print_faults(r: &VerifyReport, faults: &[Fault]) {
    for f in faults.iter().take(MAX_TEXT_FAULTS) {
        println!(
            "fault: {} at byte {}: {}",
            f.path.display(),
            f.offset,
            f.message
        );
    }
    let unlisted = r
        .fault_count()
        .saturating_sub(MAX_TEXT_FAULTS.min(faults.len()) as u64);
    if unlisted > 0 {
        println!(
            "... and {unlisted} more faults (--json lists every fault but sequence faults past \
             the first {MAX_REPORTED_FAULTS})"
        );
    }
    if r.fault_count() > 0 {
        println!("{}", total_line(r, faults));
    }
}

pub(crate) fn verify(args: VerifyArgs) -> Result<i32, String> {
    let r = verify_journal(&args.path).map_err(|e| chain(&e))?;
    if args.rebuild_index {
        let ix = rebuild_index(&args.path).map_err(|e| chain(&e))?;
        eprintln!(
            "ringlog: indexes: {} kept, {} written, {} stale files removed; \
             the journal summary describes {} of {} segments",
            ix.kept, ix.written, ix.removed, ix.summarized, ix.segments
        );
    }
    let status = r.status();
    let faults = faults(&args.path, &r);
    if args.json {
        let v = serde_json::json!({
            "path": args.path, "status": status_name(status),
            "clean": status == VerifyStatus::Clean, "segments": r.segments,
            "records": r.records, "payload_bytes": r.payload_bytes,
            "frame_bytes": r.frame_bytes, "producers": producers_json(&r),
            "fault_count": r.fault_count(),
            "faults": faults.iter().map(fault_json).collect::<Vec<_>>(),
            "corrupted_ranges": r.corrupted.len(), "torn_tail": r.torn_tail.is_some(),
            "sequence_faults": r.seq_fault_count,
        });
        println!("{v:#}");
    } else {
        print_summary(&args.path, &r);
        print_faults(&r, &faults);
        match status {
            VerifyStatus::Clean => println!("OK: journal is clean"),
            VerifyStatus::TornTail => println!(
                "TORN TAIL: an interrupted write left bytes no acknowledged record needs; \
                 `ringlog recover {}` cuts them",
                args.path.display()
            ),
            VerifyStatus::Damaged => {
                println!("DAMAGED: records are lost or broken; see the faults above")
            }
        }
    }
    Ok(match status {
        VerifyStatus::Clean => 0,
        VerifyStatus::TornTail => EXIT_TORN_TAIL,
        VerifyStatus::Damaged => 1,
    })
}

/// Records and last sequence number per producer.
type Kept = BTreeMap<u32, (u64, u64, u64)>;

/// What the records kept by a dry run would be: every valid record except
/// those at or after the cut in the last segment.
fn kept_by_plan(dir: &Path, plan: &RecoveryReport) -> Result<(u64, Kept), String> {
    let reader = Reader::open(dir)
        .map_err(|e| chain(&e))?
        .skip_corrupted(true);
    let last = plan.last_segment.as_deref().and_then(segment_of);
    let mut total = 0;
    let mut kept = Kept::new();
    for rec in reader.flatten() {
        if let (Some(last), Some(cut)) = (last, plan.truncated_at) {
            if rec.segment == last && rec.offset >= cut {
                continue;
            }
        }
        total += 1;
        let e = kept.entry(rec.producer).or_insert((0, rec.seq, rec.seq));
        e.0 += 1;
        e.1 = e.1.min(rec.seq);
        e.2 = e.2.max(rec.seq);
    }
    Ok((total, kept))
}

fn kept_by_report(r: &VerifyReport) -> Kept {
    r.producers
        .iter()
        .map(|(&id, p)| (id, (p.records, p.first_seq, p.last_seq)))
        .collect()
}

/// The status after the recovery `plan` would run: clean when every fault
/// is part of the torn tail or lies at or after the cut in the last
/// segment (which point-in-time recovery removes with the records there).
fn predicted_status(dir: &Path, before: &VerifyReport, plan: &RecoveryReport) -> VerifyStatus {
    if before.status() != VerifyStatus::Damaged {
        return VerifyStatus::Clean;
    }
    let listed = faults(dir, before);
    let all_listed = listed.len() as u64 == before.fault_count();
    let cut = plan.truncated_at.zip(plan.last_segment.as_deref());
    let removed =
        |f: &Fault| f.torn || cut.is_some_and(|(at, last)| f.path == last && f.offset >= at);
    if all_listed && plan.skipped.is_empty() && listed.iter().all(removed) {
        VerifyStatus::Clean
    } else {
        VerifyStatus::Damaged
    }
}

pub(crate) fn recover(args: RecoverArgs) -> Result<i32, String> {
    let dir = &args.path;
    let before = verify_journal(dir).map_err(|e| chain(&e))?;
    let before_status = before.status();
    let mode = args.mode.mode();
    if before_status == VerifyStatus::Damaged && args.mode == ModeArg::Strict {
        let faults = faults(dir, &before);
        if args.json {
            let v = serde_json::json!({
                "path": dir, "dry_run": args.dry_run, "mode": args.mode.name(),
                "changed": false, "status_before": status_name(before_status),
                "status_after": status_name(before_status),
                "fault_count": before.fault_count(),
                "faults": faults.iter().map(fault_json).collect::<Vec<_>>(),
            });
            println!("{v:#}");
        } else {
            print_summary(dir, &before);
            print_faults(&before, &faults);
            println!(
                "NOT RECOVERED: the journal is damaged before its tail, which recovery does not \
                 repair; nothing was changed (--mode truncate cuts the last segment at its first \
                 bad record, --mode skip keeps it and appends after it)"
            );
        }
        return Ok(1);
    }
    let mut index = None;
    let (report, records, kept, after_status) = if args.dry_run {
        let plan = plan_recovery(dir, mode).map_err(|e| chain(&e))?;
        let (records, kept) = kept_by_plan(dir, &plan)?;
        let after = predicted_status(dir, &before, &plan);
        (plan, records, kept, after)
    } else {
        let options = JournalOptions {
            recovery: mode,
            ..Default::default()
        };
        let journal = Journal::open(dir, options).map_err(|e| chain(&e))?;
        let report = journal.recovery_report().clone();
        drop(journal);
        // The sparse indexes are hints; after a cut they may describe
        // bytes that are gone, so make them match the segments again.
        index = Some(rebuild_index(dir).map_err(|e| chain(&e))?);
        let after = verify_journal(dir).map_err(|e| chain(&e))?;
        (
            report,
            after.records,
            kept_by_report(&after),
            after.status(),
        )
    };
    let verb = |done: &'static str, would: &'static str| if args.dry_run { would } else { done };
    let mut actions = Vec::new();
    if let Some(ix) = index.as_ref().filter(|ix| ix.written + ix.removed > 0) {
        actions.push((
            "rebuild_index",
            dir.to_path_buf(),
            None,
            format!(
                "rebuilt {} segment indexes and removed {} stale index files",
                ix.written, ix.removed
            ),
        ));
    }
    for p in &report.removed_temp_paths {
        actions.push((
            "remove_temp_file",
            p.clone(),
            None,
            format!(
                "{} leftover temporary file {}",
                verb("removed", "would remove"),
                p.display()
            ),
        ));
    }
    for p in &report.removed_torn_segments {
        actions.push((
            "remove_segment",
            p.clone(),
            None,
            format!(
                "{} {}: newest segment without records, left by an interrupted creation",
                verb("removed", "would remove"),
                p.display()
            ),
        ));
    }
    if let (Some(at), Some(p)) = (report.truncated_at, &report.last_segment) {
        actions.push((
            "cut",
            p.clone(),
            Some(at),
            format!(
                "{} {} bytes at byte {} of {}",
                verb("cut", "would cut"),
                report.truncated_bytes,
                at,
                p.display()
            ),
        ));
    }
    for s in &report.skipped {
        actions.push((
            "skip",
            s.path.clone(),
            Some(s.start),
            format!(
                "{} bytes {}..{} of {} in place ({})",
                verb("left", "would leave"),
                s.start,
                s.end,
                s.path.display(),
                s.error
            ),
        ));
    }
    if args.json {
        let producers: serde_json::Map<String, serde_json::Value> = kept
            .iter()
            .map(|(id, &(n, first, last))| {
                (
                    id.to_string(),
                    serde_json::json!({"records": n, "first_seq": first, "last_seq": last}),
                )
            })
            .collect();
        let v = serde_json::json!({
            "path": dir, "dry_run": args.dry_run, "mode": args.mode.name(),
            "changed": !args.dry_run && !actions.is_empty(),
            "actions": actions.iter().map(|(kind, path, offset, message)| serde_json::json!({
                "kind": kind, "file": path, "offset": offset, "message": message,
            })).collect::<Vec<_>>(),
            "removed_temp_files": report.removed_temp_paths,
            "removed_segments": report.removed_torn_segments,
            "truncated_at": report.truncated_at, "truncated_bytes": report.truncated_bytes,
            "truncated_file": report.truncated_at.and(report.last_segment.as_ref()),
            "records_kept": records, "position": report.position,
            "producers": producers,
            "status_before": status_name(before_status),
            "status_after": status_name(after_status),
        });
        println!("{v:#}");
    } else {
        println!(
            "{}{}",
            dir.display(),
            if args.dry_run {
                " (dry run: nothing is changed)"
            } else {
                ""
            }
        );
        if actions.is_empty() {
            println!("nothing to recover");
        }
        for (_, _, _, message) in &actions {
            println!("{message}");
        }
        println!("records kept: {records}");
        for (id, (n, _, last)) in &kept {
            println!("producer {id}: {n} records, last durable sequence {last}");
        }
        match after_status {
            VerifyStatus::Clean => println!("OK: journal is clean"),
            _ => println!(
                "DAMAGED: damage remains that recovery does not repair; `ringlog verify {}` \
                 lists it",
                dir.display()
            ),
        }
    }
    Ok(if after_status == VerifyStatus::Clean {
        0
    } else {
        1
    })
}

/// Bytes of output `cat` gathers before writing them.
const OUTPUT_CHUNK: usize = 1 << 16;

/// Buffers in flight between the two threads of `cat` (the reader holds
/// one more, which it reads into): one queued, one being encoded, one
/// on its way back.
const BUFFERS: usize = 3;

/// The reading thread of `cat`: reads and verifies runs of records, each
/// in the buffer the reader read it into, and hands them over until the
/// journal's end or an error, or until the encoding side hangs up. Each
/// next read goes into a buffer the encoding side gave back.
fn read_runs(
    mut reader: Reader,
    full: SyncSender<Result<OwnedFrames, JournalError>>,
    empty: Receiver<Vec<u8>>,
) {
    loop {
        let Ok(spare) = empty.recv() else { return };
        let Some(run) = reader.next_frames_owned(spare) else {
            return;
        };
        let stop = run.is_err();
        if full.send(run).is_err() || stop {
            return;
        }
    }
}

pub(crate) fn cat(args: CatArgs) -> Result<i32, String> {
    // Every option is checked before the journal is opened.
    let mut query = match args.query.build() {
        Ok(q) => q,
        Err(msg) => {
            eprintln!("ringlog: error: {msg}");
            return Ok(2);
        }
    };
    // `cat` reads the whole journal through the `Reader`, which checks
    // that the segments follow one another, so a missing or foreign
    // segment is an error rather than a silent hole; `tail` seeks through
    // the index instead.
    let mut reader = Reader::open(&args.path).map_err(|e| chain(&e))?;
    if let Some(p) = query.filter.producer {
        reader = reader.producer(p);
    }
    let stdout = std::io::stdout();
    // Records are encoded into `buf`, which goes out in one write once it
    // holds `OUTPUT_CHUNK` bytes: no other buffering, no flush per line.
    let mut out = stdout.lock();
    let mut buf = Vec::with_capacity(OUTPUT_CHUNK + (1 << 16));
    query.write_prologue(&mut buf);
    let mut printed = 0u64;
    // Two threads: this one encodes and writes while the other reads and
    // verifies the next records (the copy out of the page cache and the
    // CRC cost about as much as the encoding). The records cross in the
    // buffers the reader read them into, which come back to be read into
    // again: nothing is copied between the threads.
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = sync_channel::<Result<OwnedFrames, JournalError>>(BUFFERS);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(BUFFERS);
        for _ in 0..BUFFERS {
            // The channel holds BUFFERS: never full here.
            let _ = empty_tx.send(Vec::new());
        }
        scope.spawn(move || read_runs(reader, full_tx, empty_rx));
        // Dropping `full_rx` and `empty_tx` on return stops the reading
        // thread wherever it waits.
        for run in full_rx {
            let run = match run {
                Ok(run) => run,
                Err(e) => {
                    if args.limit.is_some_and(|l| printed >= l) {
                        break;
                    }
                    // What was read so far is printed before the error.
                    let _ = emit(&mut out, &mut buf);
                    return Err(chain(&e));
                }
            };
            for rec in run.frames() {
                if args.limit.is_some_and(|l| printed >= l) {
                    let _ = emit(&mut out, &mut buf);
                    return Ok(0);
                }
                if !query.filter.matches(rec.producer, rec.seq, rec.timestamp)
                    || !query.accepts(&rec)
                {
                    query.observe(&rec);
                    continue;
                }
                if query.write_record(&mut buf, &rec) {
                    printed += 1;
                }
                if buf.len() >= OUTPUT_CHUNK {
                    match emit(&mut out, &mut buf) {
                        Ok(true) => {}
                        Ok(false) => return Ok(0), // stdout closed (e.g. piped into `head`)
                        Err(e) => return Err(format!("writing to standard output: {e}")),
                    }
                }
            }
            // The reading thread hangs up after its last run; the runs
            // still queued are printed all the same.
            let _ = empty_tx.send(run.into_buffer());
        }
        match emit(&mut out, &mut buf) {
            Ok(_) => Ok(0),
            Err(e) => Err(format!("writing to standard output: {e}")),
        }
    })
}
