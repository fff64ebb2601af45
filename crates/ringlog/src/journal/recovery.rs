//! Recovery on open: remove what an interrupted segment creation left,
//! scan the last segment, keep its valid prefix, cut a torn tail, and
//! report what was done. [`Journal::open`](super::Journal::open) and
//! [`plan_recovery`] (the dry run behind `ringlog recover --dry-run`) run
//! the same code, [`recover_dir`]; only the dry run skips its last step,
//! changing the files.
//!
//! A bad frame with no valid frame after it (at any 8-aligned offset up to
//! the end of the file) is a torn tail: the writer died mid-append, and
//! nothing after it was ever acknowledged. A bad frame *followed* by a valid
//! one is corruption of data that was once complete; [`RecoveryMode`] says
//! whether that is an error, skipped, or cut off.

use std::path::{Path, PathBuf};

use super::error::{FrameError, JournalError};
use super::format::{segment_file_name, SegmentHeader, SEGMENT_HEADER_LEN};
use super::fs::{JournalFile, JournalFs, NotRegular, StdFs};
use super::segment::{list_segments, scan, ViaJournalFile, Window};

/// What recovery does with a bad frame that has valid frames after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Fail to open with [`JournalError::Corrupt`] naming the segment file
    /// and byte offset. A torn tail is still cut.
    #[default]
    Strict,
    /// Leave the bad bytes in place, report them in
    /// [`RecoveryReport::skipped`], and append in a new segment. Read such a
    /// journal with [`Reader::skip_corrupted`](super::Reader::skip_corrupted).
    ///
    /// A reader resynchronises through the bad bytes by looking for the next
    /// frame whose checksum holds. Bytes left in place can, with crafted
    /// input or a CRC-32C collision, hold the start of a frame that bytes
    /// appended after them would complete; so the first append after such a
    /// recovery starts a new segment, and what is appended reads back
    /// exactly. What the damaged segment itself holds is a best effort:
    /// when it must read back exactly, recover with
    /// [`TruncateAtFirstError`](Self::TruncateAtFirstError) (or
    /// `ringlog recover`) instead.
    Skip,
    /// Point-in-time recovery: cut the segment at the first bad frame,
    /// discarding the valid frames after it (counted in
    /// [`RecoveryReport::truncated_bytes`]).
    TruncateAtFirstError,
}

/// A range of a segment that recovery skipped in [`RecoveryMode::Skip`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRange {
    /// The segment file.
    pub path: PathBuf,
    /// Offset of the first bad byte.
    pub start: u64,
    /// Offset of the next valid frame.
    pub end: u64,
    /// Why the frame at `start` was rejected.
    pub error: FrameError,
}

/// What [`Journal::open`](super::Journal::open) found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files found (0 for a new journal).
    pub segments: usize,
    /// The segment that was scanned, if any.
    pub last_segment: Option<PathBuf>,
    /// Valid records found in the last segment.
    pub records_scanned: u64,
    /// Offset in the last segment where bytes were cut, if any.
    pub truncated_at: Option<u64>,
    /// Bytes cut from the end of the last segment.
    pub truncated_bytes: u64,
    /// Corrupted ranges skipped in [`RecoveryMode::Skip`].
    pub skipped: Vec<SkippedRange>,
    /// Leftover temporary files of an interrupted segment creation that
    /// were removed.
    pub removed_temp_files: usize,
    /// Their paths.
    pub removed_temp_paths: Vec<PathBuf>,
    /// The oldest of the newest segments removed because their creation was
    /// interrupted before it became durable (shorter than a header, or a
    /// zeroed header and no valid frame; see
    /// [`removed_torn_segments`](Self::removed_torn_segments)).
    pub removed_torn_segment: Option<PathBuf>,
    /// Every segment removed as an interrupted creation, newest first.
    pub removed_torn_segments: Vec<PathBuf>,
    /// Journal-global byte position where appending resumes.
    pub position: u64,
}

impl RecoveryReport {
    /// Whether recovery found nothing to cut or skip.
    pub fn is_clean(&self) -> bool {
        self.truncated_bytes == 0 && self.skipped.is_empty() && self.removed_torn_segment.is_none()
    }
}

/// What [`recover_dir`] found: the report and what the journal resumes
/// from.
#[derive(Debug)]
pub(crate) struct Recovery<F> {
    /// What was (or, in a dry run, would be) done.
    pub(crate) report: RecoveryReport,
    /// The segments before the last one that remain, oldest first.
    pub(crate) older: Vec<u64>,
    /// The last remaining segment, its file (open for writing unless dry
    /// run) cut to its valid prefix, or `None` when no segment remains.
    pub(crate) last: Option<LastSegment<F>>,
    /// The number a new first segment gets when none remains.
    pub(crate) first_number: u64,
}

/// The last remaining segment after recovery.
#[derive(Debug)]
pub(crate) struct LastSegment<F> {
    pub(crate) number: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: F,
    pub(crate) found: Recovered,
}

/// Maps an error opening a segment: one that is not a regular file gets its
/// own variant.
pub(crate) fn open_error(path: &Path, e: std::io::Error) -> JournalError {
    if let Some(n) = e.get_ref().and_then(|r| r.downcast_ref::<NotRegular>()) {
        return JournalError::NotRegularFile {
            path: path.to_owned(),
            file_type: n.file_type,
        };
    }
    JournalError::io("open", path, e)
}

/// Recovers the journal in `dir` (which must exist): decides everything
/// first, reading only, and then, if `apply`, changes the files — removes
/// leftover temporary files, removes the newest segments an interrupted
/// creation left without records (newest first, syncing the directory
/// after each), and cuts the last segment's torn tail (and syncs it).
/// An error (corruption before the tail in [`RecoveryMode::Strict`], a bad
/// or inconsistent last header) is returned before anything is changed.
///
/// With `apply == false` nothing on disk changes and the report says what
/// would be done.
pub(crate) fn recover_dir<Fs: JournalFs>(
    fs: &Fs,
    dir: &Path,
    mode: RecoveryMode,
    apply: bool,
) -> Result<Recovery<Fs::File>, JournalError> {
    let names = fs
        .list_dir(dir)
        .map_err(|e| JournalError::io("list directory", dir, e))?;
    let (mut numbers, leftovers) = list_segments(names);
    let mut report = RecoveryReport {
        segments: numbers.len(),
        removed_temp_files: leftovers.len(),
        removed_temp_paths: leftovers.iter().map(|n| dir.join(n)).collect(),
        ..Default::default()
    };
    let mut first_number = 1;
    // A rotation whose creation never became durable, or a crash while a
    // batch was written into the segment before a freshly created one,
    // leaves the newest segments without records (see `is_torn_creation`):
    // they are removed, newest first, so the last segment with records is
    // the one whose tail is recovered.
    while let Some(&last) = numbers.last() {
        let path = dir.join(segment_file_name(last));
        let file = fs.open_read(&path).map_err(|e| open_error(&path, e))?;
        if !is_torn_creation(&file, numbers.len() > 1)
            .map_err(|e| JournalError::io("read", &path, e))?
        {
            break;
        }
        report.removed_torn_segments.push(path);
        numbers.pop();
        first_number = last;
    }
    report.removed_torn_segment = report.removed_torn_segments.last().cloned();
    let last = match numbers.last() {
        Some(&number) => {
            let path = dir.join(segment_file_name(number));
            let file = if apply {
                fs.open_rw(&path)
            } else {
                fs.open_read(&path)
            }
            .map_err(|e| open_error(&path, e))?;
            let found = scan_last(&file, &path, mode)?;
            if found.header.segment != number {
                return Err(JournalError::Inconsistent {
                    path,
                    what: format!("header says segment {}", found.header.segment),
                });
            }
            if usize::from(found.header.header_len) != SEGMENT_HEADER_LEN {
                // A longer header is a later minor revision: read, not append.
                return Err(JournalError::Inconsistent {
                    path,
                    what: format!(
                        "header of {} bytes; this version appends after 48",
                        found.header.header_len
                    ),
                });
            }
            if found.valid_len < found.file_len {
                report.truncated_at = Some(found.valid_len);
                report.truncated_bytes = found.file_len - found.valid_len;
            }
            report.records_scanned = found.records;
            report.skipped.clone_from(&found.skipped);
            report.last_segment = Some(path.clone());
            report.position =
                found.header.base_position + (found.valid_len - u64::from(found.header.header_len));
            Some(LastSegment {
                number,
                path,
                file,
                found,
            })
        }
        None => None,
    };
    let older = numbers[..numbers.len().saturating_sub(1)].to_vec();
    let mut recovery = Recovery {
        report,
        older,
        last,
        first_number,
    };
    if apply {
        apply_recovery(fs, dir, &mut recovery)?;
    }
    Ok(recovery)
}

/// The changing half of [`recover_dir`].
fn apply_recovery<Fs: JournalFs>(
    fs: &Fs,
    dir: &Path,
    recovery: &mut Recovery<Fs::File>,
) -> Result<(), JournalError> {
    for path in &recovery.report.removed_temp_paths {
        fs.remove_file(path)
            .map_err(|e| JournalError::io("remove", path, e))?;
    }
    for path in &recovery.report.removed_torn_segments {
        fs.remove_file(path)
            .map_err(|e| JournalError::io("remove", path, e))?;
        fs.sync_dir(dir)
            .map_err(|e| JournalError::io("sync directory", dir, e))?;
    }
    if let Some(last) = recovery.last.as_mut() {
        // Cut the torn tail (or nothing) and put the cursor at the end.
        last.file
            .truncate_to(last.found.valid_len)
            .map_err(|e| JournalError::io("truncate", &last.path, e))?;
        last.file
            .fdatasync()
            .map_err(|e| JournalError::io("fdatasync", &last.path, e))?;
    }
    Ok(())
}

/// What [`Journal::open`](super::Journal::open) with `mode` would do to the
/// journal in `dir`, without changing anything: the same code as the open,
/// stopped before it touches a file. Files are opened read-only.
///
/// # Errors
///
/// As [`Journal::open`](super::Journal::open) (which would fail the same
/// way), except that a missing directory is an error here, not created.
///
/// # Examples
///
/// ```
/// use ringlog::journal::{plan_recovery, Journal, JournalOptions, RecoveryMode};
/// let dir = std::env::temp_dir().join(format!("ringlog-doc-plan-{}", std::process::id()));
/// let mut journal = Journal::open(&dir, JournalOptions::default()).unwrap();
/// journal.append(1, 0, 0, b"kept").unwrap();
/// journal.sync().unwrap();
/// drop(journal);
/// assert!(plan_recovery(&dir, RecoveryMode::Strict).unwrap().is_clean());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn plan_recovery(
    dir: impl AsRef<Path>,
    mode: RecoveryMode,
) -> Result<RecoveryReport, JournalError> {
    Ok(recover_dir(&StdFs, dir.as_ref(), mode, false)?.report)
}

/// The scan of the last segment.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) header: SegmentHeader,
    /// Length to keep.
    pub(crate) valid_len: u64,
    pub(crate) file_len: u64,
    pub(crate) records: u64,
    pub(crate) skipped: Vec<SkippedRange>,
}

/// Whether the newest segment `file` holds no record and can be removed:
/// shorter than a header, or a header of zeros with no valid frame after
/// it, or (when `has_older`: an older segment exists) a valid header with no
/// valid frame after it. The only segment of a new journal is a valid
/// header alone, and is kept.
///
/// Such a file never held acknowledged data. It is left by a rotation whose
/// creation never became durable (a sync makes header and directory entry
/// durable before it reports anything durable), and by a batch that crosses
/// into a new segment: the writer creates the new segment before writing the
/// batch's first part into the old one, so a crash during that write leaves
/// a torn tail in the old segment behind an empty new one. Removing the
/// empty one makes the old segment the last again, so its tail is recovered.
pub(crate) fn is_torn_creation<F: JournalFile>(file: &F, has_older: bool) -> std::io::Result<bool> {
    let len = file.file_len()?;
    if len < SEGMENT_HEADER_LEN as u64 {
        return Ok(true);
    }
    let mut w = Window::new(ViaJournalFile(file), len);
    let start = if w.get(0, SEGMENT_HEADER_LEN)?.iter().all(|&b| b == 0) {
        SEGMENT_HEADER_LEN as u64
    } else {
        match w.header()? {
            Ok(header) if has_older => u64::from(header.header_len),
            Ok(_) => return Ok(false),
            // A damaged header is corruption for `scan_last` to report.
            Err(_) => return Ok(false),
        }
    };
    let mut frames = 0u64;
    scan(&mut w, start, false, |_, _, _| frames += 1)?;
    Ok(frames == 0)
}

/// Scans the last segment `file` (at `path`) per `mode`. Changes nothing.
pub(crate) fn scan_last<F: JournalFile>(
    file: &F,
    path: &Path,
    mode: RecoveryMode,
) -> Result<Recovered, JournalError> {
    let read_err = |e| JournalError::io("read", path, e);
    let file_len = file.file_len().map_err(read_err)?;
    let mut w = Window::new(ViaJournalFile(file), file_len);
    let header = w
        .header()
        .map_err(read_err)?
        .map_err(|error| JournalError::BadHeader {
            path: path.to_owned(),
            error,
        })?;
    let mut records = 0u64;
    let bad = scan(
        &mut w,
        u64::from(header.header_len),
        mode != RecoveryMode::Skip,
        |_, _, _| records += 1,
    )
    .map_err(read_err)?;
    let mut valid_len = file_len;
    let mut skipped = Vec::new();
    for b in bad {
        if b.is_tail || mode == RecoveryMode::TruncateAtFirstError {
            valid_len = b.start;
        } else if mode == RecoveryMode::Strict {
            return Err(JournalError::Corrupt {
                path: path.to_owned(),
                offset: b.start,
                error: b.error,
            });
        } else {
            skipped.push(SkippedRange {
                path: path.to_owned(),
                start: b.start,
                end: b.end,
                error: b.error,
            });
        }
    }
    Ok(Recovered {
        header,
        valid_len,
        file_len,
        records,
        skipped,
    })
}
