//! Whole-journal verification: the structure (segment numbers against file
//! names, consecutive numbering, positions continuing from segment to
//! segment, regular files only), every frame's CRC, per-producer sequence
//! contiguity, and the exact byte ranges that are damaged.
//!
//! [`VerifyReport::status`] tells three states apart: clean; only a torn
//! tail, i.e. exactly what [`Journal::open`](super::Journal::open)'s
//! recovery removes without losing an acknowledged record (a torn last
//! frame, newest segments an interrupted creation left without records,
//! leftover temporary files); and damage. The torn-tail part uses the
//! recovery's own test for an interrupted creation, so a process killed at
//! any moment leaves a journal that verifies clean or torn, never damaged.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::error::{FrameError, JournalError};
use super::format::{segment_file_name, HeaderError};
use super::fs::{open_regular, OpenError};
use super::recovery::is_torn_creation;
use super::segment::{list_dir, list_segments, scan, Window};

/// Byte offset of the segment number in a segment header.
const HEADER_SEGMENT_OFFSET: u64 = 16;
/// Byte offset of the base position in a segment header.
const HEADER_BASE_OFFSET: u64 = 32;

/// What made a range of a segment unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// A frame failed verification.
    Frame(FrameError),
    /// The segment header failed verification; the whole file is skipped.
    Header(HeaderError),
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Frame(e) => write!(f, "bad record: {e}"),
            Self::Header(e) => write!(f, "bad segment header: {e}"),
        }
    }
}

/// A break in the journal's structure: how segments follow one another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructureFaultKind {
    /// A file named like a segment is not a regular file; it is not read.
    NotRegularFile {
        /// What it is: `FIFO`, `directory`, ...
        file_type: &'static str,
    },
    /// The segment header names another segment than the file name does.
    NameMismatch {
        /// The segment number in the header.
        header_segment: u64,
    },
    /// Segments `first..=last` are missing before this one (the oldest
    /// segments may be gone by retention; a missing middle one is damage).
    MissingSegments {
        /// First missing segment number.
        first: u64,
        /// Last missing segment number.
        last: u64,
        /// Bytes of journal positions the missing segments held, when this
        /// segment's header is valid and names it.
        missing_bytes: Option<u64>,
    },
    /// The segment's base position is not where its predecessor ends.
    PositionMismatch {
        /// Where the previous segment's frames end.
        expected: u64,
        /// The base position in this segment's header.
        found: u64,
    },
}

impl fmt::Display for StructureFaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotRegularFile { file_type } => {
                write!(f, "not a regular file but a {file_type}; not read")
            }
            Self::NameMismatch { header_segment } => write!(
                f,
                "the header is that of segment {header_segment}, not of the segment the file name says"
            ),
            Self::MissingSegments {
                first,
                last,
                missing_bytes,
            } => {
                if first == last {
                    write!(f, "segment {first} before this one is missing")?;
                } else {
                    write!(f, "segments {first} to {last} before this one are missing")?;
                }
                match missing_bytes {
                    Some(b) => write!(f, " ({b} bytes of records)"),
                    None => Ok(()),
                }
            }
            Self::PositionMismatch { expected, found } if found > expected => write!(
                f,
                "positions jump from {expected} to {found}: {} bytes of records are missing",
                found - expected
            ),
            Self::PositionMismatch { expected, found } => write!(
                f,
                "positions go back from {expected} to {found}: {} bytes overlap the previous segment",
                expected - found
            ),
        }
    }
}

/// One break in the journal's structure, where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructureFault {
    /// The segment file.
    pub path: PathBuf,
    /// Its segment number (from the file name).
    pub segment: u64,
    /// Byte offset in the file of what is wrong (the header field).
    pub offset: u64,
    /// What is wrong.
    pub kind: StructureFaultKind,
}

/// What [`verify`] concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyStatus {
    /// No fault of any kind.
    Clean,
    /// Only what recovery removes without losing an acknowledged record:
    /// a torn tail, newest segments without records left by an interrupted
    /// creation, leftover temporary files. `ringlog recover` (or opening
    /// the journal) makes it clean.
    TornTail,
    /// Damage: corruption, broken structure or sequence faults.
    Damaged,
}

/// A damaged byte range of one segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedRange {
    /// The segment file.
    pub path: PathBuf,
    /// First bad byte.
    pub start: u64,
    /// Offset of the next valid frame, or the end of the file.
    pub end: u64,
    /// Why.
    pub damage: Damage,
}

/// A break in one producer's sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqFaultKind {
    /// Sequence numbers were skipped: `found > expected`.
    Gap,
    /// The same sequence number as the previous record.
    Duplicate,
    /// A sequence number below the previous record's (out of order, or a
    /// duplicate of an older record).
    OutOfOrder,
}

/// One sequence fault, where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqFault {
    /// The producer.
    pub producer: u32,
    /// What kind of fault.
    pub kind: SeqFaultKind,
    /// The sequence number that should have come next.
    pub expected: u64,
    /// The one that came.
    pub found: u64,
    /// Segment number of the record.
    pub segment: u64,
    /// Offset of the record's frame in its segment.
    pub offset: u64,
}

/// Per-producer totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerReport {
    /// Valid records.
    pub records: u64,
    /// Payload bytes of those records.
    pub payload_bytes: u64,
    /// Frame bytes (header and padding included).
    pub frame_bytes: u64,
    /// First sequence number seen.
    pub first_seq: u64,
    /// Last sequence number seen.
    pub last_seq: u64,
    /// Sequence numbers missing in gaps (sum over gaps).
    pub missing: u64,
    /// Records equal to their predecessor's sequence number.
    pub duplicates: u64,
    /// Records below their predecessor's sequence number.
    pub out_of_order: u64,
}

/// The result of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Segment files checked.
    pub segments: usize,
    /// Valid records.
    pub records: u64,
    /// Payload bytes of the valid records.
    pub payload_bytes: u64,
    /// Bytes of valid frames (headers and padding included).
    pub frame_bytes: u64,
    /// Totals per producer id.
    pub producers: BTreeMap<u32, ProducerReport>,
    /// Damaged ranges (not counting a torn tail).
    pub corrupted: Vec<DamagedRange>,
    /// Bad bytes at the very end of the last segment with no valid frame
    /// after them: an interrupted append that recovery would cut.
    pub torn_tail: Option<DamagedRange>,
    /// The first [`MAX_REPORTED_FAULTS`] sequence faults.
    pub seq_faults: Vec<SeqFault>,
    /// Sequence faults found (all of them, listed or not).
    pub seq_fault_count: u64,
    /// Breaks in the journal's structure (missing, misnamed, non-regular
    /// segments, positions that do not continue).
    pub structure: Vec<StructureFault>,
    /// The newest segments, newest first, that an interrupted creation left
    /// without records; recovery removes them (part of a torn tail). An
    /// empty segment (a valid header alone, continuing the positions after
    /// a complete predecessor) is not listed: it is consistent, though
    /// recovery removes it too.
    pub torn_segments: Vec<PathBuf>,
    /// Leftover temporary files of an interrupted segment creation;
    /// recovery removes them (part of a torn tail).
    pub leftover_temp_files: Vec<PathBuf>,
}

/// Most sequence faults listed in a [`VerifyReport`] (all are counted).
pub const MAX_REPORTED_FAULTS: usize = 1000;

impl VerifyReport {
    /// No damage, no torn tail, no sequence fault.
    pub fn is_clean(&self) -> bool {
        self.status() == VerifyStatus::Clean
    }

    /// Clean, only a torn tail that recovery cuts, or damaged.
    pub fn status(&self) -> VerifyStatus {
        let damaged = !self.corrupted.is_empty()
            || !self.structure.is_empty()
            || self.seq_fault_count > 0
            || self
                .producers
                .values()
                .any(|p| p.missing != 0 || p.duplicates != 0 || p.out_of_order != 0);
        if damaged {
            VerifyStatus::Damaged
        } else if self.torn_tail.is_some()
            || !self.torn_segments.is_empty()
            || !self.leftover_temp_files.is_empty()
        {
            VerifyStatus::TornTail
        } else {
            VerifyStatus::Clean
        }
    }

    /// Faults of every kind: structure, damaged ranges, sequence faults
    /// (counting those not listed) and the parts of a torn tail.
    pub fn fault_count(&self) -> u64 {
        (self.structure.len()
            + self.corrupted.len()
            + usize::from(self.torn_tail.is_some())
            + self.torn_segments.len()
            + self.leftover_temp_files.len()) as u64
            + self.seq_fault_count
    }
}

impl fmt::Display for SeqFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            SeqFaultKind::Gap => "gap",
            SeqFaultKind::Duplicate => "duplicate",
            SeqFaultKind::OutOfOrder => "out of order",
        };
        write!(
            f,
            "producer {}: sequence {what}: expected {}, found {}",
            self.producer, self.expected, self.found
        )?;
        if self.kind == SeqFaultKind::Gap {
            write!(f, " ({} missing)", self.found - self.expected)?;
        }
        Ok(())
    }
}

impl ProducerReport {
    fn add(&mut self, seq: u64, payload: u64, frame: u64) -> Option<(SeqFaultKind, u64)> {
        let first = self.records == 0;
        self.records += 1;
        self.payload_bytes += payload;
        self.frame_bytes += frame;
        if first {
            self.first_seq = seq;
            self.last_seq = seq;
            return None;
        }
        let expected = self.last_seq.wrapping_add(1);
        let fault = if seq == expected {
            None
        } else if seq > expected {
            self.missing += seq - expected;
            Some(SeqFaultKind::Gap)
        } else if seq == self.last_seq {
            self.duplicates += 1;
            Some(SeqFaultKind::Duplicate)
        } else {
            self.out_of_order += 1;
            Some(SeqFaultKind::OutOfOrder)
        };
        if seq > self.last_seq || fault.is_none() {
            self.last_seq = seq;
        }
        fault.map(|k| (k, expected))
    }
}

/// One segment file as [`verify`] found it.
#[derive(Debug)]
struct Found {
    number: u64,
    path: PathBuf,
    /// `None`: not a regular file (reported, never read).
    file: Option<(File, u64)>,
}

/// Reads every segment in `dir` and reports what is in it and what is
/// damaged. Never stops at damage: it resynchronises at the next valid
/// frame, so every valid record is counted. Opens files without blocking
/// and reads only regular files.
///
/// # Errors
///
/// [`JournalError::NoJournal`] for a directory without segment files; I/O
/// errors (listing, opening or reading a file) with the path and the OS
/// error.
///
/// # Examples
///
/// ```
/// use ringlog::journal::{verify, Journal, JournalOptions, VerifyStatus};
/// let dir = std::env::temp_dir().join(format!("ringlog-doc-verify-{}", std::process::id()));
/// let mut journal = Journal::open(&dir, JournalOptions::default()).unwrap();
/// for seq in 0..5 {
///     journal.append(7, seq, 0, b"x").unwrap();
/// }
/// journal.sync().unwrap();
/// let report = verify(&dir).unwrap();
/// assert_eq!(report.status(), VerifyStatus::Clean);
/// assert_eq!(report.producers[&7].records, 5);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport, JournalError> {
    let dir = dir.as_ref();
    let (numbers, leftovers) = list_segments(list_dir(dir)?);
    if numbers.is_empty() && leftovers.is_empty() {
        return Err(JournalError::NoJournal {
            path: dir.to_owned(),
        });
    }
    let mut report = VerifyReport {
        segments: numbers.len(),
        leftover_temp_files: leftovers.iter().map(|n| dir.join(n)).collect(),
        ..Default::default()
    };
    let mut found = Vec::with_capacity(numbers.len());
    for &number in &numbers {
        let path = dir.join(segment_file_name(number));
        let file = match open_regular(&path, false) {
            Ok(file) => {
                let len = file
                    .metadata()
                    .map_err(|e| JournalError::io("stat", &path, e))?
                    .len();
                Some((file, len))
            }
            Err(OpenError::NotRegular(n)) => {
                report.structure.push(StructureFault {
                    path: path.clone(),
                    segment: number,
                    offset: 0,
                    kind: StructureFaultKind::NotRegularFile {
                        file_type: n.file_type,
                    },
                });
                None
            }
            Err(OpenError::Io(e)) => return Err(JournalError::io("open", &path, e)),
        };
        found.push(Found { number, path, file });
    }
    // The newest segments an interrupted creation left without records, as
    // recovery decides it; the segments before them are read below.
    let mut kept = found.len();
    while kept > 0 {
        let Some((file, _)) = &found[kept - 1].file else {
            break;
        };
        let path = &found[kept - 1].path;
        if !is_torn_creation(file, kept > 1).map_err(|e| JournalError::io("read", path, e))? {
            break;
        }
        kept -= 1;
    }
    // The previous kept segment: its number and, if its header is valid,
    // the position where its frames end.
    let mut prev: Option<(u64, Option<u64>)> = None;
    for (i, seg) in found[..kept].iter().enumerate() {
        let number = seg.number;
        let path = &seg.path;
        let gap = prev.and_then(|(p, _)| (number != p + 1).then_some(p + 1));
        let prev_end = prev.and_then(|(_, end)| end);
        prev = Some((number, None));
        let Some((file, len)) = &seg.file else {
            if let Some(first) = gap {
                report.structure.push(missing(path, number, first, None));
            }
            continue;
        };
        let io_err = |e| JournalError::io("read", path, e);
        let mut w = Window::new(file, *len);
        let header = match w.header().map_err(io_err)? {
            Ok(h) => h,
            Err(e) => {
                if let Some(first) = gap {
                    report.structure.push(missing(path, number, first, None));
                }
                report.corrupted.push(DamagedRange {
                    path: path.clone(),
                    start: 0,
                    end: *len,
                    damage: Damage::Header(e),
                });
                continue;
            }
        };
        let base = header.base_position;
        let named_right = header.segment == number;
        let mut position_checked = false;
        if let Some(first) = gap {
            // The missing positions, when this header can be trusted.
            let bytes = match prev_end {
                Some(end) if named_right && base >= end => {
                    position_checked = true;
                    Some(base - end)
                }
                _ => None,
            };
            report.structure.push(missing(path, number, first, bytes));
        }
        if !named_right {
            report.structure.push(StructureFault {
                path: path.clone(),
                segment: number,
                offset: HEADER_SEGMENT_OFFSET,
                kind: StructureFaultKind::NameMismatch {
                    header_segment: header.segment,
                },
            });
        }
        if let Some(end) = prev_end {
            if !position_checked && base != end {
                report.structure.push(StructureFault {
                    path: path.clone(),
                    segment: number,
                    offset: HEADER_BASE_OFFSET,
                    kind: StructureFaultKind::PositionMismatch {
                        expected: end,
                        found: base,
                    },
                });
            }
        }
        let header_len = u64::from(header.header_len);
        prev = Some((number, base.checked_add(len - header_len)));
        let mut faults = std::mem::take(&mut report.seq_faults);
        let mut fault_count = 0u64;
        let bad = scan(&mut w, header_len, false, |off, p, _| {
            report.records += 1;
            report.payload_bytes += u64::from(p.header.payload_len);
            report.frame_bytes += p.framed_len as u64;
            let h = p.header;
            let stats = report.producers.entry(h.producer).or_default();
            if let Some((kind, expected)) =
                stats.add(h.seq, u64::from(h.payload_len), p.framed_len as u64)
            {
                fault_count += 1;
                if faults.len() < MAX_REPORTED_FAULTS {
                    faults.push(SeqFault {
                        producer: h.producer,
                        kind,
                        expected,
                        found: h.seq,
                        segment: number,
                        offset: off,
                    });
                }
            }
        })
        .map_err(io_err)?;
        report.seq_faults = faults;
        report.seq_fault_count += fault_count;
        let last = i + 1 == kept;
        for b in bad {
            let range = DamagedRange {
                path: path.clone(),
                start: b.start,
                end: b.end,
                damage: Damage::Frame(b.error),
            };
            if b.is_tail && last {
                report.torn_tail = Some(range);
            } else {
                report.corrupted.push(range);
            }
        }
    }
    // After a complete last segment, a segment that is exactly a valid
    // header of its own number continuing the positions is an empty
    // segment (a rotation that wrote nothing yet, an append rolled back):
    // consistent, and no fault. Anything else recovery removes is part of
    // a torn tail.
    let mut next = prev.and_then(|(n, end)| Some((n.checked_add(1)?, end?)));
    if report.torn_tail.is_some() {
        next = None;
    }
    for seg in &found[kept..] {
        next = next.filter(|&(number, end)| {
            seg.number == number && is_empty_segment(seg, end).unwrap_or(false)
        });
        if next.is_none() {
            report.torn_segments.push(seg.path.clone());
        }
        next = next.map(|(n, end)| (n + 1, end));
    }
    report.torn_segments.reverse();
    Ok(report)
}

/// Whether `seg` is a valid header of its own number whose frames start at
/// `position`, and nothing after it.
fn is_empty_segment(seg: &Found, position: u64) -> std::io::Result<bool> {
    let Some((file, len)) = &seg.file else {
        return Ok(false);
    };
    let mut w = Window::new(file, *len);
    Ok(match w.header()? {
        Ok(h) => {
            h.segment == seg.number
                && h.base_position == position
                && u64::from(h.header_len) == *len
        }
        Err(_) => false,
    })
}

fn missing(path: &Path, number: u64, first: u64, missing_bytes: Option<u64>) -> StructureFault {
    StructureFault {
        path: path.to_owned(),
        segment: number,
        offset: 0,
        kind: StructureFaultKind::MissingSegments {
            first,
            last: number - 1,
            missing_bytes,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Journal, JournalOptions, SEGMENT_HEADER_LEN};

    /// A journal of five segments of four 50-byte records each, producer 1,
    /// sequence 0..20.
    fn five_segments() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let opts = JournalOptions {
            segment_bytes: 400,
            ..Default::default()
        };
        let mut j = Journal::open(dir.path(), opts).unwrap();
        for seq in 0..20 {
            j.append(1, seq, 0, &[7; 50]).unwrap();
        }
        j.sync().unwrap();
        assert_eq!(j.current_segment(), 5);
        dir
    }

    fn seg(dir: &Path, n: u64) -> PathBuf {
        dir.join(segment_file_name(n))
    }

    fn frame_bytes(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len() - SEGMENT_HEADER_LEN as u64
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn a_clean_multi_segment_journal_is_clean() {
        let dir = five_segments();
        let r = verify(dir.path()).unwrap();
        assert_eq!(r.status(), VerifyStatus::Clean, "{r:?}");
        assert_eq!((r.segments, r.records, r.payload_bytes), (5, 20, 1000));
        assert_eq!(r.fault_count(), 0);
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn a_deleted_middle_segment_is_named_with_its_bytes() {
        let dir = five_segments();
        let gone = frame_bytes(&seg(dir.path(), 3));
        std::fs::remove_file(seg(dir.path(), 3)).unwrap();
        let r = verify(dir.path()).unwrap();
        assert_eq!(r.status(), VerifyStatus::Damaged);
        assert_eq!(
            r.structure,
            [StructureFault {
                path: seg(dir.path(), 4),
                segment: 4,
                offset: 0,
                kind: StructureFaultKind::MissingSegments {
                    first: 3,
                    last: 3,
                    missing_bytes: Some(gone),
                },
            }]
        );
        assert_eq!(r.producers[&1].missing, 4);
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn a_segment_moved_over_the_next_one_breaks_name_and_positions() {
        // The issue's reproduction: `mv 3 4`.
        let dir = five_segments();
        let lost = frame_bytes(&seg(dir.path(), 4));
        let end3 = {
            let b = std::fs::read(seg(dir.path(), 3)).unwrap();
            crate::journal::SegmentHeader::decode(&b)
                .unwrap()
                .base_position
                + (b.len() - SEGMENT_HEADER_LEN) as u64
        };
        std::fs::rename(seg(dir.path(), 3), seg(dir.path(), 4)).unwrap();
        let r = verify(dir.path()).unwrap();
        assert_eq!(r.status(), VerifyStatus::Damaged);
        let kinds: Vec<_> = r
            .structure
            .iter()
            .map(|s| (s.segment, s.offset, s.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                (
                    4,
                    0,
                    StructureFaultKind::MissingSegments {
                        first: 3,
                        last: 3,
                        missing_bytes: None
                    }
                ),
                (
                    4,
                    16,
                    StructureFaultKind::NameMismatch { header_segment: 3 }
                ),
                (
                    5,
                    32,
                    StructureFaultKind::PositionMismatch {
                        expected: end3,
                        found: end3 + lost
                    }
                ),
            ]
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn a_copied_header_and_a_numbering_gap_are_damage() {
        let dir = five_segments();
        std::fs::copy(seg(dir.path(), 2), seg(dir.path(), 3)).unwrap();
        let r = verify(dir.path()).unwrap();
        assert_eq!(r.status(), VerifyStatus::Damaged);
        assert!(r
            .structure
            .iter()
            .any(|s| s.segment == 3
                && s.kind == StructureFaultKind::NameMismatch { header_segment: 2 }));
        assert!(r.structure.iter().any(|s| s.segment == 3
            && matches!(s.kind, StructureFaultKind::PositionMismatch { expected, found } if found < expected)));
        assert!(r.producers[&1].duplicates + r.producers[&1].out_of_order > 0);

        let dir = five_segments();
        std::fs::rename(seg(dir.path(), 5), seg(dir.path(), 7)).unwrap();
        let r = verify(dir.path()).unwrap();
        assert!(r.structure.iter().any(|s| s.segment == 7
            && s.kind
                == StructureFaultKind::MissingSegments {
                    first: 5,
                    last: 6,
                    missing_bytes: None
                }));
        assert!(r
            .structure
            .iter()
            .any(|s| s.kind == StructureFaultKind::NameMismatch { header_segment: 5 }));
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn retention_removing_the_oldest_segments_is_not_damage() {
        let dir = five_segments();
        std::fs::remove_file(seg(dir.path(), 1)).unwrap();
        std::fs::remove_file(seg(dir.path(), 2)).unwrap();
        let r = verify(dir.path()).unwrap();
        assert_eq!(r.status(), VerifyStatus::Clean, "{r:?}");
        assert_eq!(r.producers[&1].first_seq, 8);
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn no_segment_files_is_no_journal() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        assert!(matches!(
            verify(dir.path()),
            Err(JournalError::NoJournal { path }) if path == dir.path()
        ));
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn a_fifo_named_like_a_segment_is_reported_not_read() {
        let dir = five_segments();
        let fifo = seg(dir.path(), 6);
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path for the call's duration.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let r = verify(dir.path()).unwrap();
        assert_eq!(r.status(), VerifyStatus::Damaged);
        assert_eq!(
            r.structure,
            [StructureFault {
                path: fifo,
                segment: 6,
                offset: 0,
                kind: StructureFaultKind::NotRegularFile { file_type: "FIFO" },
            }]
        );
        assert_eq!(r.records, 20);
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn what_a_crash_leaves_is_a_torn_tail_not_damage() {
        // A zero-length newest segment (a rotation never synced).
        let dir = five_segments();
        std::fs::write(seg(dir.path(), 6), b"").unwrap();
        let r = verify(dir.path()).unwrap();
        assert_eq!(r.status(), VerifyStatus::TornTail, "{r:?}");
        assert_eq!(r.torn_segments, [seg(dir.path(), 6)]);

        // A leftover temporary file.
        let dir = five_segments();
        std::fs::write(dir.path().join("00000000000000000006.rlj.tmp"), b"").unwrap();
        assert_eq!(verify(dir.path()).unwrap().status(), VerifyStatus::TornTail);

        // A torn last frame.
        let dir = five_segments();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(seg(dir.path(), 5))
            .unwrap();
        std::io::Write::write_all(&mut f, &[1, 2, 3, 4, 5]).unwrap();
        let r = verify(dir.path()).unwrap();
        assert_eq!(r.status(), VerifyStatus::TornTail);
        assert_eq!(r.torn_tail.unwrap().path, seg(dir.path(), 5));
    }
}
