//! `ringlog verify`, `ringlog recover` and `ringlog cat`: the tools that
//! read a journal (and, for `recover`, repair its tail).
//!
//! Exit codes: `verify` 0 clean, 3 only a torn tail that `recover` cuts,
//! 1 damage or a runtime failure; `recover` 0 when the journal is clean
//! afterwards, 1 otherwise; `cat` 0, or 1 when the journal cannot be read
//! to its end. 2 is always a usage error.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use ringlog::journal::{
    parse_segment_file_name, plan_recovery, segment_file_name, verify as verify_journal, Damage,
    Journal, JournalOptions, Reader, RecoveryMode, RecoveryReport, SeqFaultKind,
    StructureFaultKind, VerifyReport, VerifyStatus, MAX_REPORTED_FAULTS,
};

use crate::errors::chain;

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
    /// Only this producer's records.
    #[arg(long)]
    producer: Option<u32>,
    /// Print at most this many records.
    #[arg(long)]
    limit: Option<u64>,
    /// How to print records.
    #[arg(long, value_enum, default_value_t = CatFormat::Text)]
    format: CatFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CatFormat {
    /// One line per record: `<UTC time> <producer> <seq> <payload>`, the
    /// payload as text with invalid UTF-8 and control bytes escaped.
    Text,
    /// One line per record: `<producer> <seq> <timestamp ns> <payload in hex>`.
    Hex,
    /// One JSON object per line; the payload as base64 (`payload_b64`) and,
    /// when it is valid UTF-8, as text (`payload`).
    Json,
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

/// `bytes` as text: valid UTF-8 as is, except control characters and
/// backslash, which are escaped (`\n`, `\t`, `\\`, `\u{7f}`, ...); bytes
/// that are not UTF-8 as `\xNN`. The result is one line.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Standard base64 (RFC 4648, with padding).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Nanoseconds since the Unix epoch as RFC 3339 UTC with nanoseconds
/// (`2024-03-01T12:00:00.000000001Z`), by the days-to-civil algorithm of
/// Howard Hinnant's `chrono`-compatible date library.
fn rfc3339_utc(unix_nanos: u64) -> String {
    let secs = unix_nanos / 1_000_000_000;
    let nanos = unix_nanos % 1_000_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, rem / 60 % 60, rem % 60);
    // Days since 0000-03-01, in 400-year eras of 146097 days.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{nanos:09}Z")
}

pub(crate) fn cat(args: CatArgs) -> Result<i32, String> {
    let mut reader = Reader::open(&args.path).map_err(|e| chain(&e))?;
    if let Some(p) = args.producer {
        reader = reader.producer(p);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (n, rec) in reader.enumerate() {
        if args.limit.is_some_and(|l| n as u64 >= l) {
            break;
        }
        let rec = match rec {
            Ok(rec) => rec,
            Err(e) => {
                // What was read so far is printed before the error.
                let _ = out.flush();
                return Err(chain(&e));
            }
        };
        let line = match args.format {
            CatFormat::Text => format!(
                "{} {} {} {}",
                rfc3339_utc(rec.timestamp),
                rec.producer,
                rec.seq,
                escape(&rec.payload)
            ),
            CatFormat::Hex => {
                let hex: String = rec.payload.iter().map(|b| format!("{b:02x}")).collect();
                format!("{} {} {} {}", rec.producer, rec.seq, rec.timestamp, hex)
            }
            CatFormat::Json => {
                let mut v = serde_json::json!({
                    "producer": rec.producer, "seq": rec.seq, "timestamp_ns": rec.timestamp,
                    "segment": rec.segment, "offset": rec.offset, "len": rec.payload.len(),
                    "payload_b64": base64(&rec.payload),
                });
                if let Ok(text) = std::str::from_utf8(&rec.payload) {
                    v["payload"] = serde_json::Value::from(text);
                }
                v.to_string()
            }
        };
        if writeln!(out, "{line}").is_err() {
            return Ok(0); // stdout closed (e.g. piped into `head`)
        }
    }
    let _ = out.flush();
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::{base64, escape, rfc3339_utc};

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(base64(&[0xff, 0x00, 0xfe]), "/wD+");
    }

    #[test]
    fn utc_dates_match_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339_utc(1), "1970-01-01T00:00:00.000000001Z");
        // 2000-02-29 (a leap day in a year divisible by 400).
        assert_eq!(
            rfc3339_utc(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        // date -u -d @1709294400.123456789
        assert_eq!(
            rfc3339_utc(1_709_294_400_123_456_789),
            "2024-03-01T12:00:00.123456789Z"
        );
        assert_eq!(rfc3339_utc(u64::MAX), "2554-07-21T23:34:33.709551615Z");
    }

    #[test]
    fn escape_keeps_text_and_escapes_the_rest() {
        assert_eq!(escape("héllo wörld".as_bytes()), "héllo wörld");
        assert_eq!(escape(b"a\nb\tc\\d"), "a\\nb\\tc\\\\d");
        assert_eq!(escape(&[b'x', 0xff, 0x00, b'y']), "x\\xff\\u{0}y");
    }
}
