//! Recovery on open: scan the last segment, keep its valid prefix, cut a
//! torn tail, and report what was done.
//!
//! A bad frame with no valid frame after it (at any 8-aligned offset up to
//! the end of the file) is a torn tail: the writer died mid-append, and
//! nothing after it was ever acknowledged. A bad frame *followed* by a valid
//! one is corruption of data that was once complete; [`RecoveryMode`] says
//! whether that is an error, skipped, or cut off.

use std::path::{Path, PathBuf};

use super::error::{FrameError, JournalError};
use super::format::{SegmentHeader, SEGMENT_HEADER_LEN};
use super::fs::JournalFile;
use super::segment::{scan, ViaJournalFile, Window};

/// What recovery does with a bad frame that has valid frames after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Fail to open with [`JournalError::Corrupt`] naming the segment file
    /// and byte offset. A torn tail is still cut.
    #[default]
    Strict,
    /// Leave the bad bytes in place, report them in
    /// [`RecoveryReport::skipped`], and append after the last valid frame.
    /// Read such a journal with
    /// [`Reader::skip_corrupted`](super::Reader::skip_corrupted).
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
    /// The newest segment, removed because its creation was interrupted
    /// before it became durable (shorter than a header, or a zeroed header
    /// and no valid frame).
    pub removed_torn_segment: Option<PathBuf>,
    /// Journal-global byte position where appending resumes.
    pub position: u64,
}

impl RecoveryReport {
    /// Whether recovery found nothing to cut or skip.
    pub fn is_clean(&self) -> bool {
        self.truncated_bytes == 0 && self.skipped.is_empty() && self.removed_torn_segment.is_none()
    }
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
