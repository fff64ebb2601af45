//! The sparse index beside each segment (`<segment number>.rlx`): where to
//! start scanning for a time or a (producer, sequence) without reading the
//! segment from its start.
//!
//! An index is a hint, never the answer: it is untrusted input (versioned,
//! CRC-32C over every byte, every field validated, checked against the
//! segment's header and the last frame it covers), and the reader verifies a
//! frame boundary where it lands. Any mismatch makes the reader ignore the
//! index and scan, so a missing, stale or damaged index changes only speed.
//! Timestamps need not be monotonic: every entry stores the *largest*
//! timestamp (sequence) of all frames before it, so skipping to an entry
//! never skips a match.
//!
//! Layout (little endian): a 104-byte header (magic `RINGLOGX`, version,
//! the segment's number and stamp, the covered length, record count, the
//! last covered frame's offset and CRC, time range, table sizes), the
//! producer table (32 bytes per producer: id, min and max sequence, count),
//! the time entries (16 bytes: frame offset, largest timestamp before it),
//! the sequence entries (24 bytes: producer, flags, frame offset, largest
//! sequence of that producer before it), then the CRC-32C of all of it.
//!
//! The writer does not maintain indexes: [`rebuild_index`] writes them for
//! a whole journal, and a [`Follower`](super::Follower) with
//! [`IndexUse::Build`] writes the index of each sealed segment it read
//! whole. An index of a segment still being written covers a prefix; the
//! rest is scanned.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use super::cursor::{list_dir, open_segment_file, read_exact_at, read_header, SegmentStamp};
use super::error::JournalError;
use super::follow::RecordFilter;
use super::format::{
    parse_frame, segment_file_name, FRAME_ALIGN, FRAME_HEADER_LEN, MAX_SEGMENT_HEADER_LEN,
};
use super::segment::{scan, ReadAt, Window};
use super::summary::{Entry, JournalSummary, SUMMARY_FILE_NAME};

/// File-name extension of index files.
pub const INDEX_EXTENSION: &str = "rlx";

const INDEX_MAGIC: [u8; 8] = *b"RINGLOGX";
const INDEX_VERSION: u16 = 1;
/// Header bytes: the fields, then the CRC-32C of the summary (the fields
/// and the producer table) and 4 zero bytes.
const HEADER: usize = 112;
/// Where the summary's CRC is.
const SUMMARY_CRC_AT: usize = 104;
const PRODUCER_ENTRY: usize = 32;
const TIME_ENTRY: usize = 16;
const SEQ_ENTRY: usize = 24;
/// Index files larger than this are not read.
const MAX_INDEX_BYTES: u64 = 256 << 20;
/// Bytes of segment between index entries.
pub(crate) const DEFAULT_INTERVAL: u32 = 4096;

/// The file name of segment `number`'s index.
pub fn index_file_name(number: u64) -> String {
    format!("{number:020}.{INDEX_EXTENSION}")
}

/// Whether and how a reader uses the index files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexUse {
    /// Never read them: always scan.
    Ignore,
    /// Read them to seek, when they are valid.
    #[default]
    Use,
    /// As `Use`, and write the index of every sealed segment read whole
    /// whose index was missing or stale (failures to write are ignored: the
    /// index is only a hint).
    Build,
}

/// What the index knows of one producer in the covered part of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerSummary {
    /// Producer id.
    pub producer: u32,
    /// Smallest sequence number.
    pub min_seq: u64,
    /// Largest sequence number.
    pub max_seq: u64,
    /// Records.
    pub count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimeEntry {
    offset: u64,
    max_ts_before: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SeqEntry {
    producer: u32,
    /// Whether a frame of `producer` precedes `offset` in the segment.
    has_before: bool,
    offset: u64,
    max_seq_before: u64,
}

/// The validated sparse index of one segment's first `covered_len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentIndex {
    segment: u64,
    stamp: SegmentStamp,
    interval: u32,
    covered_len: u64,
    records: u64,
    last_frame: Option<(u64, u32)>,
    min_ts: u64,
    max_ts: u64,
    producers: Vec<ProducerSummary>,
    time: Vec<TimeEntry>,
    seq: Vec<SeqEntry>,
}

/// Why index bytes were rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// Too short or its tables do not add up to its length.
    #[error("index has a bad length")]
    Length,
    /// Not an index file.
    #[error("bad index magic")]
    Magic,
    /// Another version.
    #[error("unsupported index version {0}")]
    Version(u16),
    /// The CRC does not match.
    #[error("index checksum mismatch")]
    Checksum,
    /// A field is out of range or the entries are out of order.
    #[error("invalid index field: {0}")]
    Field(&'static str),
    /// Valid, but for another segment or another instance of it.
    #[error("index does not match its segment: {0}")]
    Stale(&'static str),
}

/// Builds an index from the frames of a segment, in order.
#[derive(Debug)]
pub(crate) struct IndexBuilder {
    index: SegmentIndex,
    last_time_entry: u64,
    state: HashMap<u32, (usize, u64)>,
}

impl IndexBuilder {
    pub(crate) fn new(segment: u64, stamp: SegmentStamp, interval: u32) -> Self {
        let hl = u64::from(stamp.header_len);
        Self {
            index: SegmentIndex {
                segment,
                stamp,
                interval,
                covered_len: hl,
                records: 0,
                last_frame: None,
                min_ts: u64::MAX,
                max_ts: 0,
                producers: Vec::new(),
                time: Vec::new(),
                seq: Vec::new(),
            },
            last_time_entry: hl,
            state: HashMap::new(),
        }
    }

    /// The frame at `offset` (which must be where the last one ended).
    pub(crate) fn push(
        &mut self,
        offset: u64,
        framed_len: u64,
        producer: u32,
        seq: u64,
        timestamp: u64,
        crc: u32,
    ) {
        let ix = &mut self.index;
        debug_assert_eq!(offset, ix.covered_len);
        let interval = u64::from(ix.interval.max(FRAME_ALIGN as u32));
        if ix.records > 0 && offset - self.last_time_entry >= interval {
            ix.time.push(TimeEntry {
                offset,
                max_ts_before: ix.max_ts,
            });
            self.last_time_entry = offset;
        }
        let nproducers = ix.producers.len().max(1) as u64;
        match self.state.get_mut(&producer) {
            None => {
                self.state.insert(producer, (ix.producers.len(), offset));
                ix.producers.push(ProducerSummary {
                    producer,
                    min_seq: seq,
                    max_seq: seq,
                    count: 1,
                });
                ix.seq.push(SeqEntry {
                    producer,
                    has_before: false,
                    offset,
                    max_seq_before: 0,
                });
            }
            Some((slot, last_entry)) => {
                let summary = &mut ix.producers[*slot];
                // Per producer, entries are spaced by the interval times the
                // number of producers, which bounds the table's size.
                if offset - *last_entry >= interval.saturating_mul(nproducers) {
                    ix.seq.push(SeqEntry {
                        producer,
                        has_before: true,
                        offset,
                        max_seq_before: summary.max_seq,
                    });
                    *last_entry = offset;
                }
                summary.min_seq = summary.min_seq.min(seq);
                summary.max_seq = summary.max_seq.max(seq);
                summary.count += 1;
            }
        }
        ix.min_ts = ix.min_ts.min(timestamp);
        ix.max_ts = ix.max_ts.max(timestamp);
        ix.records += 1;
        ix.last_frame = Some((offset, crc));
        ix.covered_len = offset + framed_len;
    }

    /// Bytes of the segment covered so far.
    pub(crate) fn covered_len(&self) -> u64 {
        self.index.covered_len
    }

    pub(crate) fn finish(self) -> SegmentIndex {
        let mut ix = self.index;
        if ix.records == 0 {
            ix.min_ts = 0;
        }
        ix.producers.sort_unstable_by_key(|p| p.producer);
        // Stable: keeps each producer's entries in offset order.
        ix.seq.sort_by_key(|e| e.producer);
        ix
    }
}

/// `&File` as a positional source.
#[derive(Debug)]
pub(crate) struct FileRef<'a>(pub(crate) &'a File);

impl ReadAt for FileRef<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self.0, buf, offset)
    }
}

fn put_u16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn get_u32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl SegmentIndex {
    /// The segment this index is for.
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// Bytes of the segment file the index covers (header included).
    pub fn covered_len(&self) -> u64 {
        self.covered_len
    }

    /// Records in the covered part.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The producers of the covered part.
    pub fn producers(&self) -> &[ProducerSummary] {
        &self.producers
    }

    /// Smallest and largest timestamp of the covered part, if any record.
    pub fn time_range(&self) -> Option<(u64, u64)> {
        (self.records > 0).then_some((self.min_ts, self.max_ts))
    }

    /// Entries in the index (time and sequence).
    pub fn entries(&self) -> usize {
        self.time.len() + self.seq.len()
    }

    /// The identity of the segment the index was built from.
    pub(crate) fn stamp(&self) -> SegmentStamp {
        self.stamp
    }

    /// This index without its entries: what [`decode_summary`](Self::decode_summary) gives.
    pub(crate) fn summary_only(&self) -> Self {
        Self {
            time: Vec::new(),
            seq: Vec::new(),
            producers: self.producers.clone(),
            ..*self
        }
    }

    /// Bytes of the summary: the header and the producer table.
    pub(crate) fn summary_len(&self) -> usize {
        HEADER + self.producers.len() * PRODUCER_ENTRY
    }

    /// The header and producer table as [`encode`](Self::encode) writes
    /// them (with no entries), which [`decode_summary`](Self::decode_summary) reads.
    pub(crate) fn summary_bytes(&self) -> Vec<u8> {
        let mut b = self.summary_only().encode();
        b.truncate(self.summary_len());
        b
    }

    /// The index's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(
            HEADER
                + 4
                + self.producers.len() * PRODUCER_ENTRY
                + self.time.len() * TIME_ENTRY
                + self.seq.len() * SEQ_ENTRY,
        );
        b.extend_from_slice(&INDEX_MAGIC);
        put_u16(&mut b, INDEX_VERSION);
        put_u16(&mut b, 0);
        put_u32(&mut b, self.interval);
        put_u64(&mut b, self.segment);
        put_u64(&mut b, self.stamp.created_unix_nanos);
        put_u64(&mut b, self.stamp.base_position);
        put_u16(&mut b, self.stamp.header_len);
        b.extend_from_slice(&[0u8; 6]);
        put_u64(&mut b, self.covered_len);
        put_u64(&mut b, self.records);
        let (lo, lc) = self.last_frame.unwrap_or((0, 0));
        put_u64(&mut b, lo);
        put_u32(&mut b, lc);
        put_u32(&mut b, self.producers.len() as u32);
        put_u64(&mut b, self.min_ts);
        put_u64(&mut b, self.max_ts);
        put_u32(&mut b, self.time.len() as u32);
        put_u32(&mut b, self.seq.len() as u32);
        b.extend_from_slice(&[0u8; 8]);
        debug_assert_eq!(b.len(), HEADER);
        for p in &self.producers {
            put_u32(&mut b, p.producer);
            put_u32(&mut b, 0);
            put_u64(&mut b, p.min_seq);
            put_u64(&mut b, p.max_seq);
            put_u64(&mut b, p.count);
        }
        let summary = crc32c::crc32c_append(crc32c::crc32c(&b[..SUMMARY_CRC_AT]), &b[HEADER..]);
        b[SUMMARY_CRC_AT..SUMMARY_CRC_AT + 4].copy_from_slice(&summary.to_le_bytes());
        for t in &self.time {
            put_u64(&mut b, t.offset);
            put_u64(&mut b, t.max_ts_before);
        }
        for s in &self.seq {
            put_u32(&mut b, s.producer);
            put_u32(&mut b, u32::from(s.has_before));
            put_u64(&mut b, s.offset);
            put_u64(&mut b, s.max_seq_before);
        }
        let crc = crc32c::crc32c(&b);
        put_u32(&mut b, crc);
        b
    }

    /// Decodes and validates index bytes on their own (not yet against the
    /// segment: see [`SegmentIndex::load`]). Never panics on any input.
    ///
    /// # Errors
    ///
    /// The first [`IndexError`] found.
    pub fn decode(b: &[u8]) -> Result<Self, IndexError> {
        if b.len() < HEADER + 4 {
            return Err(IndexError::Length);
        }
        let n_producers = get_u32(b, 76) as usize;
        let n_time = get_u32(b, 96) as usize;
        let n_seq = get_u32(b, 100) as usize;
        let sizes = [
            n_producers.checked_mul(PRODUCER_ENTRY),
            n_time.checked_mul(TIME_ENTRY),
            n_seq.checked_mul(SEQ_ENTRY),
            Some(HEADER + 4),
        ];
        let expected = sizes
            .into_iter()
            .try_fold(0usize, |acc, n| acc.checked_add(n?));
        if expected != Some(b.len()) {
            return Err(IndexError::Length);
        }
        let body = b.len() - 4;
        if crc32c::crc32c(&b[..body]) != get_u32(b, body) {
            return Err(IndexError::Checksum);
        }
        let mut ix = Self::decode_summary(b)?;
        let field = |ok: bool, what| {
            if ok {
                Ok(())
            } else {
                Err(IndexError::Field(what))
            }
        };
        let hl = u64::from(ix.stamp.header_len);
        let (covered_len, min_ts, max_ts) = (ix.covered_len, ix.min_ts, ix.max_ts);
        let aligned = |o: u64| o % FRAME_ALIGN as u64 == 0;
        let in_range = |o: u64| o >= hl && o < covered_len && aligned(o);
        let producers = std::mem::take(&mut ix.producers);
        let mut at = HEADER + n_producers * PRODUCER_ENTRY;
        let mut time = Vec::with_capacity(n_time);
        for _ in 0..n_time {
            let t = TimeEntry {
                offset: get_u64(b, at),
                max_ts_before: get_u64(b, at + 8),
            };
            field(in_range(t.offset) && t.offset > hl, "time entry offset")?;
            field(
                t.max_ts_before >= min_ts && t.max_ts_before <= max_ts,
                "time entry",
            )?;
            if let Some(prev) = time.last() {
                let prev: &TimeEntry = prev;
                field(
                    prev.offset < t.offset && prev.max_ts_before <= t.max_ts_before,
                    "time entry order",
                )?;
            }
            time.push(t);
            at += TIME_ENTRY;
        }
        let mut seq: Vec<SeqEntry> = Vec::with_capacity(n_seq);
        for _ in 0..n_seq {
            let flags = get_u32(b, at + 4);
            field(flags <= 1, "sequence entry flags")?;
            let e = SeqEntry {
                producer: get_u32(b, at),
                has_before: flags == 1,
                offset: get_u64(b, at + 8),
                max_seq_before: get_u64(b, at + 16),
            };
            field(in_range(e.offset), "sequence entry offset")?;
            let summary = producers
                .binary_search_by_key(&e.producer, |p| p.producer)
                .map(|i| producers[i])
                .map_err(|_| IndexError::Field("sequence entry producer"))?;
            match seq.last() {
                Some(prev) if prev.producer == e.producer => field(
                    e.has_before
                        && prev.offset < e.offset
                        && (!prev.has_before || prev.max_seq_before <= e.max_seq_before),
                    "sequence entry order",
                )?,
                Some(prev) => field(
                    prev.producer < e.producer && !e.has_before,
                    "sequence entry order",
                )?,
                None => field(!e.has_before, "sequence entry order")?,
            }
            field(
                !e.has_before
                    || (e.max_seq_before >= summary.min_seq && e.max_seq_before <= summary.max_seq),
                "sequence entry",
            )?;
            seq.push(e);
            at += SEQ_ENTRY;
        }
        ix.producers = producers;
        ix.time = time;
        ix.seq = seq;
        Ok(ix)
    }

    /// Decodes and validates the header and producer table alone (they
    /// have a CRC of their own), which is enough to tell that nothing in a
    /// segment matches; the entries are left empty. `b` may hold more than
    /// the summary. Never panics on any input.
    ///
    /// # Errors
    ///
    /// The first [`IndexError`] found.
    pub fn decode_summary(b: &[u8]) -> Result<Self, IndexError> {
        if b.len() < HEADER {
            return Err(IndexError::Length);
        }
        if b[..8] != INDEX_MAGIC {
            return Err(IndexError::Magic);
        }
        let version = get_u16(b, 8);
        if version != INDEX_VERSION {
            return Err(IndexError::Version(version));
        }
        let n_producers = get_u32(b, 76) as usize;
        let n_time = get_u32(b, 96) as usize;
        let n_seq = get_u32(b, 100) as usize;
        let end = n_producers
            .checked_mul(PRODUCER_ENTRY)
            .and_then(|n| n.checked_add(HEADER))
            .filter(|&end| end <= b.len())
            .ok_or(IndexError::Length)?;
        let summary = crc32c::crc32c_append(crc32c::crc32c(&b[..SUMMARY_CRC_AT]), &b[HEADER..end]);
        if summary != get_u32(b, SUMMARY_CRC_AT) {
            return Err(IndexError::Checksum);
        }
        let field = |ok: bool, what| {
            if ok {
                Ok(())
            } else {
                Err(IndexError::Field(what))
            }
        };
        field(get_u32(b, SUMMARY_CRC_AT + 4) == 0, "padding")?;
        field(get_u16(b, 10) == 0, "flags")?;
        field(b[42..48].iter().all(|&x| x == 0), "padding")?;
        let header_len = get_u16(b, 40);
        let hl = u64::from(header_len);
        field(
            (header_len as usize) <= MAX_SEGMENT_HEADER_LEN && hl % FRAME_ALIGN as u64 == 0,
            "header length",
        )?;
        let covered_len = get_u64(b, 48);
        let records = get_u64(b, 56);
        let last_off = get_u64(b, 64);
        let last_crc = get_u32(b, 72);
        let aligned = |o: u64| o % FRAME_ALIGN as u64 == 0;
        field(covered_len >= hl && aligned(covered_len), "covered length")?;
        let last_frame = if records == 0 {
            field(
                covered_len == hl && last_off == 0 && last_crc == 0,
                "empty index",
            )?;
            field(n_producers == 0 && n_time == 0 && n_seq == 0, "empty index")?;
            None
        } else {
            field(
                last_off >= hl
                    && aligned(last_off)
                    && last_off.saturating_add(FRAME_HEADER_LEN as u64) <= covered_len,
                "last frame",
            )?;
            Some((last_off, last_crc))
        };
        let min_ts = get_u64(b, 80);
        let max_ts = get_u64(b, 88);
        field(records == 0 || min_ts <= max_ts, "time range")?;
        let mut at = HEADER;
        let mut producers = Vec::with_capacity(n_producers);
        let mut total = 0u64;
        for _ in 0..n_producers {
            let p = ProducerSummary {
                producer: get_u32(b, at),
                min_seq: get_u64(b, at + 8),
                max_seq: get_u64(b, at + 16),
                count: get_u64(b, at + 24),
            };
            field(get_u32(b, at + 4) == 0, "producer padding")?;
            field(p.min_seq <= p.max_seq && p.count >= 1, "producer summary")?;
            field(
                producers
                    .last()
                    .is_none_or(|q: &ProducerSummary| q.producer < p.producer),
                "producer order",
            )?;
            total = total.saturating_add(p.count);
            producers.push(p);
            at += PRODUCER_ENTRY;
        }
        field(total == records, "producer counts")?;
        Ok(Self {
            segment: get_u64(b, 16),
            stamp: SegmentStamp {
                created_unix_nanos: get_u64(b, 24),
                base_position: get_u64(b, 32),
                header_len,
            },
            interval: get_u32(b, 12),
            covered_len,
            records,
            last_frame,
            min_ts,
            max_ts,
            producers,
            time: Vec::new(),
            seq: Vec::new(),
        })
    }

    /// Checks this index against the open segment file: same number and
    /// stamp, the file at least as long as the covered part, and the last
    /// covered frame still there with its CRC, ending at the covered length.
    pub(crate) fn matches_segment(
        &self,
        number: u64,
        stamp: SegmentStamp,
        file: &File,
        len: u64,
    ) -> Result<(), IndexError> {
        if self.segment != number {
            return Err(IndexError::Stale("segment number"));
        }
        if self.stamp != stamp {
            return Err(IndexError::Stale("segment header"));
        }
        if self.covered_len > len {
            return Err(IndexError::Stale("segment shorter than the index"));
        }
        if let Some((off, crc)) = self.last_frame {
            let n = (self.covered_len - off) as usize;
            if n > super::format::framed_len(super::format::MAX_PAYLOAD) {
                return Err(IndexError::Stale("last frame"));
            }
            let mut frame = vec![0u8; n];
            read_exact_at(file, &mut frame, off).map_err(|_| IndexError::Stale("last frame"))?;
            match parse_frame(&frame) {
                Ok(p) if p.framed_len == n && p.header.crc == crc => {}
                _ => return Err(IndexError::Stale("last frame")),
            }
        }
        Ok(())
    }

    /// Reads and validates the index of segment `number` in `dir` against
    /// the open segment `file` of `len` bytes with header `stamp`. `None`
    /// when there is no usable index (missing, unreadable, damaged, stale):
    /// the caller scans.
    pub(crate) fn load_for(
        dir: &Path,
        number: u64,
        stamp: SegmentStamp,
        file: &File,
        len: u64,
    ) -> Option<Self> {
        let bytes = read_index_bytes(&dir.join(index_file_name(number)))?;
        let ix = Self::decode(&bytes).ok()?;
        ix.matches_segment(number, stamp, file, len).ok()?;
        Some(ix)
    }

    /// As [`load_for`](Self::load_for), reading and checking only the
    /// summary (header and producer table): no entries.
    pub(crate) fn load_summary_for(
        dir: &Path,
        number: u64,
        stamp: SegmentStamp,
        file: &File,
        len: u64,
    ) -> Option<Self> {
        let index = open_index(&dir.join(index_file_name(number)))?;
        let mut head = vec![0u8; HEADER];
        read_exact_at(&index, &mut head, 0).ok()?;
        let n = (get_u32(&head, 76) as u64).checked_mul(PRODUCER_ENTRY as u64)?;
        if n > MAX_INDEX_BYTES {
            return None;
        }
        head.resize(HEADER + n as usize, 0);
        read_exact_at(&index, &mut head[HEADER..], HEADER as u64).ok()?;
        let ix = Self::decode_summary(&head).ok()?;
        ix.matches_segment(number, stamp, file, len).ok()?;
        Some(ix)
    }

    /// Reads the index of segment `number` in `dir` and validates it, on
    /// its own and against the segment. `Ok(None)` when there is no usable
    /// index.
    ///
    /// # Errors
    ///
    /// I/O and header errors of the segment itself.
    pub fn load(dir: impl AsRef<Path>, number: u64) -> Result<Option<Self>, JournalError> {
        let dir = dir.as_ref();
        let path = dir.join(segment_file_name(number));
        let file = open_segment_file(&path)?;
        let (header, len) = read_header(&file, &path, number)?;
        Ok(Self::load_for(
            dir,
            number,
            SegmentStamp::of(&header),
            &file,
            len,
        ))
    }

    /// Builds the index of segment `number` by scanning it up to its end or
    /// its first bad frame.
    ///
    /// # Errors
    ///
    /// I/O and header errors of the segment.
    pub fn build(dir: impl AsRef<Path>, number: u64) -> Result<Self, JournalError> {
        let dir = dir.as_ref();
        let path = dir.join(segment_file_name(number));
        let file = open_segment_file(&path)?;
        let (header, len) = read_header(&file, &path, number)?;
        let stamp = SegmentStamp::of(&header);
        let mut builder = IndexBuilder::new(number, stamp, DEFAULT_INTERVAL);
        let mut w = Window::new(FileRef(&file), len);
        scan(&mut w, u64::from(header.header_len), true, |off, p, _| {
            builder.push(
                off,
                p.framed_len as u64,
                p.header.producer,
                p.header.seq,
                p.header.timestamp,
                p.header.crc,
            );
        })
        .map_err(|e| JournalError::io("read", &path, e))?;
        Ok(builder.finish())
    }

    /// Writes the index beside its segment in `dir`, atomically (temporary
    /// file, `fsync`, `rename`). The temporary name ends in `.rlx.tmp`,
    /// which the journal's own cleanup leaves alone.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] (or `NoSpace`, `DeviceIo`) naming the file.
    pub fn write(&self, dir: impl AsRef<Path>) -> Result<(), JournalError> {
        let dir = dir.as_ref();
        let path = dir.join(index_file_name(self.segment));
        let tmp = dir.join(format!("{}.tmp", index_file_name(self.segment)));
        let result = (|| {
            // A fresh file: whatever was at the temporary name (a leftover,
            // or a FIFO that would block an open for writing) is not opened.
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| JournalError::io("create", &tmp, e))?;
            f.write_all(&self.encode())
                .map_err(|e| JournalError::io("write", &tmp, e))?;
            f.sync_data()
                .map_err(|e| JournalError::io("fdatasync", &tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| JournalError::io("rename", &tmp, e))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// The smallest offset at which a frame matching `filter` can be in the
    /// covered part; `covered_len` if none can. The caller checks that a
    /// frame starts there.
    pub fn start_offset(&self, filter: &RecordFilter) -> u64 {
        let hl = u64::from(self.stamp.header_len);
        if self.records == 0 {
            return self.covered_len;
        }
        let none = filter.since.is_some_and(|s| s > self.max_ts)
            || filter.until.is_some_and(|u| u < self.min_ts)
            || {
                let seq_ok = |p: &ProducerSummary| {
                    filter.seq_from.is_none_or(|f| f <= p.max_seq)
                        && filter.seq_to.is_none_or(|t| t >= p.min_seq)
                };
                match filter.producer {
                    Some(want) => !self
                        .producers
                        .binary_search_by_key(&want, |p| p.producer)
                        .is_ok_and(|i| seq_ok(&self.producers[i])),
                    None => !self.producers.iter().any(seq_ok),
                }
            };
        if none {
            return self.covered_len;
        }
        let mut start = hl;
        if let Some(since) = filter.since {
            let k = self.time.partition_point(|t| t.max_ts_before < since);
            if k > 0 {
                start = start.max(self.time[k - 1].offset);
            }
        }
        if let Some(want) = filter.producer {
            let lo = self.seq.partition_point(|e| e.producer < want);
            let hi = self.seq.partition_point(|e| e.producer <= want);
            let entries = &self.seq[lo..hi];
            let from = filter.seq_from;
            let k = entries
                .partition_point(|e| !e.has_before || from.is_some_and(|f| e.max_seq_before < f));
            if k > 0 {
                start = start.max(entries[k - 1].offset);
            }
        }
        start
    }
}

/// Opens an index file without blocking on a FIFO; regular files only.
fn open_index(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    (meta.file_type().is_file() && meta.len() <= MAX_INDEX_BYTES).then_some(file)
}

fn read_index_bytes(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let file = open_index(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_INDEX_BYTES).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// What [`rebuild_index`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexReport {
    /// Segments in the journal.
    pub segments: usize,
    /// Indexes that were valid and complete, left as they were.
    pub kept: usize,
    /// Indexes written (missing, damaged, stale or incomplete before).
    pub written: usize,
    /// Index files of segments that no longer exist, and leftover temporary
    /// index and summary files, removed.
    pub removed: usize,
    /// Segments the journal summary written (`summary.rls`) describes: those
    /// whose index covers the whole file.
    pub summarized: usize,
}

/// Makes every segment's index in `dir` valid and complete: keeps the
/// indexes that are, writes the others, removes index files whose
/// segment is gone, and writes the journal summary (`summary.rls`) of the
/// segments as they are now. Touches no segment file.
///
/// # Errors
///
/// I/O and header errors of the segments, and failures to write an index.
pub fn rebuild_index(dir: impl AsRef<Path>) -> Result<IndexReport, JournalError> {
    let dir = dir.as_ref();
    let segments = list_dir(dir)?;
    let mut report = IndexReport {
        segments: segments.len(),
        ..Default::default()
    };
    let mut summary = Vec::with_capacity(segments.len());
    for &number in &segments {
        let path = dir.join(segment_file_name(number));
        let file = open_segment_file(&path)?;
        let (header, len) = read_header(&file, &path, number)?;
        let stamp = SegmentStamp::of(&header);
        let kept = SegmentIndex::load_for(dir, number, stamp, &file, len)
            .filter(|ix| ix.covered_len == len);
        let ix = match kept {
            Some(ix) => {
                report.kept += 1;
                ix
            }
            None => {
                let ix = SegmentIndex::build(dir, number)?;
                ix.write(dir)?;
                report.written += 1;
                ix
            }
        };
        let meta = file
            .metadata()
            .map_err(|e| JournalError::io("stat", &path, e))?;
        summary.extend(Entry::new(&meta, &ix));
    }
    report.summarized = summary.len();
    JournalSummary { entries: summary }.write(dir)?;
    let entries = std::fs::read_dir(dir).map_err(|e| JournalError::io("list directory", dir, e))?;
    let index_suffix = format!(".{INDEX_EXTENSION}");
    let tmp_suffix = format!(".{INDEX_EXTENSION}.tmp");
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io("list directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let orphan = name
            .strip_suffix(&index_suffix)
            .filter(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u64>().ok())
            .is_some_and(|n| segments.binary_search(&n).is_err());
        let tmp = name.ends_with(&tmp_suffix) || name == format!("{SUMMARY_FILE_NAME}.tmp");
        if orphan || tmp {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| JournalError::io("remove", &path, e))?;
            report.removed += 1;
        }
    }
    Ok(report)
}
