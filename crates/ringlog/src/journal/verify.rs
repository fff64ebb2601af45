//! Whole-journal verification: every frame's CRC, per-producer sequence
//! contiguity, and the exact byte ranges that are damaged.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::error::{FrameError, JournalError};
use super::format::{segment_file_name, HeaderError};
use super::segment::{list_segments, scan, Window};

/// What made a range of a segment unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// A frame failed verification.
    Frame(FrameError),
    /// The segment header failed verification; the whole file is skipped.
    Header(HeaderError),
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
    /// Bytes of valid frames.
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
}

/// Most sequence faults listed in a [`VerifyReport`] (all are counted).
pub const MAX_REPORTED_FAULTS: usize = 1000;

impl VerifyReport {
    /// No damage, no torn tail, no sequence fault.
    pub fn is_clean(&self) -> bool {
        self.corrupted.is_empty()
            && self.torn_tail.is_none()
            && self
                .producers
                .values()
                .all(|p| p.missing == 0 && p.duplicates == 0 && p.out_of_order == 0)
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

/// Reads every segment in `dir` and reports what is in it and what is
/// damaged. Never stops at damage: it resynchronises at the next valid
/// frame, so every valid record is counted.
///
/// # Errors
///
/// Only I/O errors (listing, opening or reading a file).
///
/// # Examples
///
/// ```
/// use ringlog::journal::{verify, Journal, JournalOptions};
/// let dir = std::env::temp_dir().join(format!("ringlog-doc-verify-{}", std::process::id()));
/// let mut journal = Journal::open(&dir, JournalOptions::default()).unwrap();
/// for seq in 0..5 {
///     journal.append(7, seq, 0, b"x").unwrap();
/// }
/// journal.sync().unwrap();
/// let report = verify(&dir).unwrap();
/// assert!(report.is_clean());
/// assert_eq!(report.producers[&7].records, 5);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport, JournalError> {
    let dir = dir.as_ref();
    let names = std::fs::read_dir(dir)
        .and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect())
        .map_err(|e| JournalError::io("list directory", dir, e))?;
    let (segments, _) = list_segments(names);
    let mut report = VerifyReport {
        segments: segments.len(),
        ..Default::default()
    };
    for (i, &number) in segments.iter().enumerate() {
        let path = dir.join(segment_file_name(number));
        let io_err = |e| JournalError::io("read", &path, e);
        let file = File::open(&path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        let mut w = Window::new(file, len);
        let header = match w.header().map_err(io_err)? {
            Ok(h) => h,
            Err(e) => {
                report.corrupted.push(DamagedRange {
                    path: path.clone(),
                    start: 0,
                    end: len,
                    damage: Damage::Header(e),
                });
                continue;
            }
        };
        let mut faults = std::mem::take(&mut report.seq_faults);
        let bad = scan(&mut w, u64::from(header.header_len), false, |off, p, _| {
            report.records += 1;
            report.frame_bytes += p.framed_len as u64;
            let h = p.header;
            let stats = report.producers.entry(h.producer).or_default();
            if let Some((kind, expected)) =
                stats.add(h.seq, u64::from(h.payload_len), p.framed_len as u64)
            {
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
        let last = i + 1 == segments.len();
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
    Ok(report)
}
