//! The journal summary (`summary.rls`): one small file with what the index
//! summary of every whole, indexed segment says (time range, producers and
//! their sequence ranges, covered length, last frame) and the identity of
//! the segment file it was taken from, so that a seek finds the first
//! segment that can hold a match without opening the segments before it.
//!
//! Like the indexes it is a hint, never the answer: it is untrusted input
//! (versioned, CRC-32C over every byte, each entry's summary carrying its
//! own CRC and validated as an index summary is). An entry is used only
//! for a segment that the directory lists, whose file has the device,
//! inode, length and modification time the entry recorded (one `stat`, no
//! open), whose length is the covered length (the entry describes the
//! whole file), and whose position continues the entry before it. The
//! reader then enters the last skipped segment through its header, checks
//! the entry against it (stamp and last frame) and goes on from its end as
//! it would after reading it. Anything else, a missing, damaged or stale
//! summary or entry, makes the reader fall back to the per-segment
//! indexes: it changes only speed.
//!
//! Layout (little endian): a 16-byte header (magic `RINGLOGS`, version,
//! zero flags, entry count), then per entry 40 bytes of file identity
//! (device, inode, length, modification time in seconds and nanoseconds,
//! the length of the summary that follows) and the segment index's summary
//! bytes (its 112-byte header and producer table, with their CRC), then
//! the CRC-32C of all that precedes it.
//!
//! [`rebuild_index`](super::rebuild_index) writes it, a
//! [`Follower`](super::Follower) with [`IndexUse::Build`](super::IndexUse)
//! adds each sealed segment it indexes, and retention removes the entries
//! of the segments it deletes.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::error::JournalError;
use super::follow::RecordFilter;
use super::index::{IndexError, SegmentIndex};

/// File name of the journal summary, in the journal directory.
pub const SUMMARY_FILE_NAME: &str = "summary.rls";

const MAGIC: [u8; 8] = *b"RINGLOGS";
const VERSION: u16 = 1;
const HEADER: usize = 16;
const FILE_ID: usize = 40;
/// Summary files larger than this are not read.
const MAX_SUMMARY_BYTES: u64 = 64 << 20;

/// What identifies a segment file's contents without reading them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_sec: i64,
    mtime_nsec: u32,
}

impl FileId {
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_sec: meta.mtime(),
            mtime_nsec: u32::try_from(meta.mtime_nsec()).unwrap_or(u32::MAX),
        }
    }
}

/// One segment as the summary describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) file: FileId,
    /// The segment index's summary (no entries).
    pub(crate) index: SegmentIndex,
}

impl Entry {
    /// An entry for a segment whose file has `meta`, if `index` covers all
    /// of it.
    pub(crate) fn new(meta: &std::fs::Metadata, index: &SegmentIndex) -> Option<Self> {
        let file = FileId::of(meta);
        (meta.file_type().is_file() && file.len == index.covered_len()).then(|| Self {
            file,
            index: index.summary_only(),
        })
    }

    /// Where the segment's records end, as a journal position.
    fn end_position(&self) -> Option<u64> {
        let stamp = self.index.stamp();
        stamp
            .base_position
            .checked_add(self.index.covered_len() - u64::from(stamp.header_len))
    }
}

/// The decoded, validated summary: entries in increasing segment order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JournalSummary {
    pub(crate) entries: Vec<Entry>,
}

fn get_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn get_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl JournalSummary {
    /// The summary's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER + 4 + self.entries.len() * (FILE_ID + 256));
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            let ix = e.index.summary_bytes();
            b.extend_from_slice(&e.file.dev.to_le_bytes());
            b.extend_from_slice(&e.file.ino.to_le_bytes());
            b.extend_from_slice(&e.file.len.to_le_bytes());
            b.extend_from_slice(&e.file.mtime_sec.to_le_bytes());
            b.extend_from_slice(&e.file.mtime_nsec.to_le_bytes());
            b.extend_from_slice(&(ix.len() as u32).to_le_bytes());
            b.extend_from_slice(&ix);
        }
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and validates summary bytes on their own (not yet against
    /// the segments). Never panics on any input.
    ///
    /// # Errors
    ///
    /// The first [`IndexError`] found.
    pub(crate) fn decode(b: &[u8]) -> Result<Self, IndexError> {
        if b.len() < HEADER + 4 {
            return Err(IndexError::Length);
        }
        if b[..8] != MAGIC {
            return Err(IndexError::Magic);
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != VERSION {
            return Err(IndexError::Version(version));
        }
        let body = b.len() - 4;
        if get_u32(b, body) != Some(crc32c::crc32c(&b[..body])) {
            return Err(IndexError::Checksum);
        }
        if b[10..12] != [0, 0] {
            return Err(IndexError::Field("summary flags"));
        }
        let count = get_u32(b, 12).ok_or(IndexError::Length)? as usize;
        let mut at = HEADER;
        // Each entry takes at least its identity and a summary header.
        if count > body / FILE_ID {
            return Err(IndexError::Length);
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(count);
        for _ in 0..count {
            let id = |k: usize| get_u64(b, at + 8 * k).ok_or(IndexError::Length);
            let mtime_nsec = get_u32(b, at + 32).ok_or(IndexError::Length)?;
            let n = get_u32(b, at + 36).ok_or(IndexError::Length)? as usize;
            let file = FileId {
                dev: id(0)?,
                ino: id(1)?,
                len: id(2)?,
                mtime_sec: id(3)? as i64,
                mtime_nsec,
            };
            let start = at + FILE_ID;
            let end = start
                .checked_add(n)
                .filter(|&e| e <= body)
                .ok_or(IndexError::Length)?;
            let index = SegmentIndex::decode_summary(&b[start..end])?;
            if index.summary_len() != n {
                return Err(IndexError::Length);
            }
            if mtime_nsec >= 1_000_000_000 || file.len != index.covered_len() {
                return Err(IndexError::Field("summary entry"));
            }
            if entries
                .last()
                .is_some_and(|p| p.index.segment() >= index.segment())
            {
                return Err(IndexError::Field("summary entry order"));
            }
            entries.push(Entry { file, index });
            at = end;
        }
        if at != body {
            return Err(IndexError::Length);
        }
        Ok(Self { entries })
    }

    /// The entry of segment `number`.
    pub(crate) fn entry(&self, number: u64) -> Option<&Entry> {
        self.entries
            .binary_search_by_key(&number, |e| e.index.segment())
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Adds or replaces the entry of its segment.
    pub(crate) fn insert(&mut self, entry: Entry) {
        match self
            .entries
            .binary_search_by_key(&entry.index.segment(), |e| e.index.segment())
        {
            Ok(i) => self.entries[i] = entry,
            Err(i) => self.entries.insert(i, entry),
        }
    }

    /// Reads and decodes the summary in `dir`; `None` if there is none
    /// usable (missing, not a regular file, too large, damaged).
    pub(crate) fn load(dir: &Path) -> Option<Self> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(dir.join(SUMMARY_FILE_NAME))
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.file_type().is_file() || meta.len() > MAX_SUMMARY_BYTES {
            return None;
        }
        let mut bytes = Vec::new();
        file.take(MAX_SUMMARY_BYTES).read_to_end(&mut bytes).ok()?;
        Self::decode(&bytes).ok()
    }

    /// Writes the summary into `dir`, atomically (temporary file, `rename`).
    /// No `fsync`: after a crash the file may be empty or old, which a
    /// reader detects, and the summary is only a hint.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] naming the file.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), JournalError> {
        let path = dir.join(SUMMARY_FILE_NAME);
        let tmp = dir.join(format!("{SUMMARY_FILE_NAME}.tmp"));
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
            std::fs::rename(&tmp, &path).map_err(|e| JournalError::io("rename", &tmp, e))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// The segment to enter to seek for `filter`, and the entry to check
    /// it against: the last of the leading run of `segments` (the
    /// directory's listing, in order) whose entries are valid for their
    /// files, follow one another and hold no record that can match. `None`
    /// if that run is empty.
    pub(crate) fn skip_to(
        &self,
        dir: &Path,
        segments: &[u64],
        filter: &RecordFilter,
    ) -> Option<(u64, &Entry)> {
        let mut last: Option<&Entry> = None;
        for (i, &number) in segments.iter().enumerate() {
            let Some(e) = self.entry(number) else { break };
            if e.index.start_offset(filter) != e.index.covered_len() {
                break;
            }
            if let Some(prev) = last {
                if segments[i - 1] + 1 != number
                    || prev.end_position() != Some(e.index.stamp().base_position)
                {
                    break;
                }
            }
            let path = dir.join(super::format::segment_file_name(number));
            match std::fs::metadata(&path) {
                Ok(m) if m.file_type().is_file() && FileId::of(&m) == e.file => {}
                _ => break,
            }
            last = Some(e);
        }
        last.map(|e| (e.index.segment(), e))
    }
}

/// Drops the entries of segments `..=number` from the summary in `dir`,
/// if there is one: what retention calls after deleting a segment. Best
/// effort: an entry left behind describes a file that is gone, which no
/// reader uses.
pub(crate) fn forget_through(dir: &Path, number: u64) {
    if let Some(mut s) = JournalSummary::load(dir) {
        let before = s.entries.len();
        s.entries.retain(|e| e.index.segment() > number);
        if s.entries.len() != before {
            let _ = s.write(dir);
        }
    }
}

/// Adds the entry of a segment just indexed to the summary in `dir` (a
/// new summary if there is none usable), dropping the entries of segments
/// no longer listed. Best effort.
pub(crate) fn record(dir: &Path, entry: Entry, listed: &[u64]) {
    let mut s = JournalSummary::load(dir).unwrap_or_default();
    s.entries
        .retain(|e| listed.binary_search(&e.index.segment()).is_ok());
    s.insert(entry);
    let _ = s.write(dir);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{
        index_file_name, rebuild_index, segment_file_name, FollowEvent, FollowOptions, Follower,
        IndexUse, Journal, JournalOptions, Reader, Record, Retention, SyncPolicy,
    };
    use proptest::prelude::*;

    fn options(segment_bytes: u64) -> JournalOptions {
        JournalOptions {
            segment_bytes,
            sync: SyncPolicy::Never,
            ..Default::default()
        }
    }

    /// Appends `records` records of `producers` producers with jittered,
    /// rising timestamps after what `dir` holds.
    fn append(dir: &Path, from: u64, records: u64, producers: u32, seed: u64) {
        let mut journal = Journal::open(dir, options(8 << 10)).unwrap();
        let mut x = seed | 1;
        for i in from..from + records {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let p = (i % u64::from(producers)) as u32;
            let ts = i * 10 + (x >> 40) % 50;
            journal
                .append(
                    p,
                    i / u64::from(producers),
                    ts,
                    &vec![p as u8; (x % 120) as usize],
                )
                .unwrap();
        }
        journal.sync().unwrap();
    }

    fn all(dir: &Path) -> Vec<Record> {
        Reader::open(dir).unwrap().map(Result::unwrap).collect()
    }

    fn query(dir: &Path, filter: RecordFilter) -> Vec<(u64, u64)> {
        let opts = FollowOptions {
            filter,
            index: IndexUse::Use,
            ..Default::default()
        };
        let mut f = Follower::open(dir, opts).unwrap();
        let mut out = Vec::new();
        while let Some(e) = f.try_next().unwrap() {
            match e {
                FollowEvent::Record(r) => out.push((r.segment, r.offset)),
                FollowEvent::Gap(g) => panic!("{g:?}"),
            }
        }
        out
    }

    fn scan(records: &[Record], filter: &RecordFilter) -> Vec<(u64, u64)> {
        records
            .iter()
            .filter(|r| filter.matches(r.producer, r.seq, r.timestamp))
            .map(|r| (r.segment, r.offset))
            .collect()
    }

    fn remove_indexes(dir: &Path) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().ends_with(".rlx") {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
    }

    fn filters(records: &[Record]) -> Vec<RecordFilter> {
        let late = &records[records.len() * 3 / 4];
        vec![
            RecordFilter {
                since: Some(late.timestamp),
                ..Default::default()
            },
            RecordFilter {
                producer: Some(1),
                seq_from: Some(late.seq),
                ..Default::default()
            },
            RecordFilter {
                producer: Some(0),
                since: Some(records[records.len() / 2].timestamp),
                seq_to: Some(late.seq),
                ..Default::default()
            },
            RecordFilter {
                until: Some(records[10].timestamp),
                ..Default::default()
            },
        ]
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn rebuild_writes_a_summary_that_lets_a_seek_skip_segments() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), 0, 2000, 3, 5);
        let report = rebuild_index(dir.path()).unwrap();
        assert!(report.segments > 8, "{report:?}");
        assert_eq!(report.summarized, report.segments);
        let s = JournalSummary::load(dir.path()).expect("a valid summary");
        assert_eq!(s.entries.len(), report.segments);
        let records = all(dir.path());
        let late = RecordFilter {
            since: Some(records[records.len() - 5].timestamp),
            ..Default::default()
        };
        let segments = crate::journal::cursor::list_dir(dir.path()).unwrap();
        let (skip, _) = s.skip_to(dir.path(), &segments, &late).expect("skips");
        let target = records[records.len() - 5].segment;
        assert!(skip + 1 >= target && skip < target, "{skip} for {target}");
        // Nothing to skip for a filter the first segment matches.
        let early = RecordFilter {
            until: Some(records[0].timestamp),
            ..Default::default()
        };
        assert!(s.skip_to(dir.path(), &segments, &early).is_none());
        // Through the summary alone (no per-segment index) the answers
        // are a full scan's.
        remove_indexes(dir.path());
        for f in filters(&records) {
            assert_eq!(query(dir.path(), f), scan(&records, &f), "{f:?}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn summary_damage_never_changes_an_answer() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), 0, 600, 2, 9);
        rebuild_index(dir.path()).unwrap();
        let records = all(dir.path());
        let fs = filters(&records);
        let expected: Vec<_> = fs.iter().map(|f| scan(&records, f)).collect();
        let path = dir.path().join(SUMMARY_FILE_NAME);
        let good = std::fs::read(&path).unwrap();
        assert!(JournalSummary::decode(&good).is_ok());
        let check = |what: &str| {
            for (f, want) in fs.iter().zip(&expected) {
                assert_eq!(&query(dir.path(), *f), want, "{what}: {f:?}");
            }
        };
        check("intact");
        for bit in 0..good.len() * 8 {
            let mut b = good.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                JournalSummary::decode(&b).is_err(),
                "bit {bit} flip accepted"
            );
            // Answers through the damaged file: every 64th flip (each is
            // rejected before use, as the assertion above shows).
            if bit % 64 == 0 {
                std::fs::write(&path, &b).unwrap();
                check(&format!("bit {bit}"));
            }
        }
        for len in [
            0,
            1,
            15,
            16,
            19,
            20,
            60,
            good.len() / 2,
            good.len() - 4,
            good.len() - 1,
        ] {
            assert!(JournalSummary::decode(&good[..len]).is_err(), "{len}");
            std::fs::write(&path, &good[..len]).unwrap();
            check(&format!("truncated to {len}"));
        }
        std::fs::remove_file(&path).unwrap();
        check("deleted");
        // A directory where the file should be is not read.
        std::fs::create_dir(&path).unwrap();
        check("a directory");
        std::fs::remove_dir(&path).unwrap();
        // Nor a FIFO (opening it must not block), at the file's name or at
        // the temporary name a write goes through.
        let fifo = |p: &Path| {
            let made = std::process::Command::new("mkfifo").arg(p).status();
            assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", p.display());
        };
        fifo(&path);
        check("a FIFO");
        std::fs::remove_file(&path).unwrap();
        let tmp = dir.path().join(format!("{SUMMARY_FILE_NAME}.tmp"));
        fifo(&tmp);
        let report = rebuild_index(dir.path()).unwrap();
        assert_eq!(report.summarized, report.segments);
        assert!(!tmp.exists());
        assert_eq!(std::fs::read(&path).unwrap(), good);
        // Without the per-segment indexes as well.
        std::fs::write(&path, &good).unwrap();
        remove_indexes(dir.path());
        check("summary only");
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn a_stale_summary_never_changes_an_answer() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), 0, 1000, 3, 1);
        rebuild_index(dir.path()).unwrap();
        let good = std::fs::read(dir.path().join(SUMMARY_FILE_NAME)).unwrap();
        // More appends: the last segment grows and new ones follow.
        append(dir.path(), 1000, 700, 3, 2);
        let records = all(dir.path());
        for f in filters(&records) {
            assert_eq!(query(dir.path(), f), scan(&records, &f), "{f:?}");
        }
        remove_indexes(dir.path());
        for f in filters(&records) {
            assert_eq!(query(dir.path(), f), scan(&records, &f), "{f:?}");
        }
        // A segment cut short (as recovery cuts a torn tail) under an
        // intact summary and index: its entry no longer fits the file.
        rebuild_index(dir.path()).unwrap();
        let cut = records[records.len() / 3].clone();
        let seg = dir.path().join(segment_file_name(cut.segment));
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(cut.offset).unwrap();
        drop(f);
        // Only the records before the cut can be read in order.
        let shorter: Vec<Record> = records
            .iter()
            .take_while(|r| (r.segment, r.offset) < (cut.segment, cut.offset))
            .cloned()
            .collect();
        for filter in filters(&records) {
            let want = scan(&shorter, &filter);
            let opts = FollowOptions {
                filter,
                ..Default::default()
            };
            let mut fo = Follower::open(dir.path(), opts).unwrap();
            let mut got = Vec::new();
            while let Ok(Some(FollowEvent::Record(r))) = fo.try_next() {
                got.push((r.segment, r.offset));
            }
            // Past the cut the follower stops (the positions no longer
            // continue); before it, it yields what a scan yields.
            let before: Vec<_> = got
                .iter()
                .copied()
                .filter(|&p| p < (cut.segment, cut.offset))
                .collect();
            assert_eq!(before, want, "{filter:?}");
        }
        // An old summary put back over a rewritten journal is ignored.
        std::fs::write(dir.path().join(SUMMARY_FILE_NAME), &good).unwrap();
        remove_indexes(dir.path());
        let d2 = tempfile::tempdir().unwrap();
        append(d2.path(), 0, 1000, 3, 77);
        std::fs::write(d2.path().join(SUMMARY_FILE_NAME), &good).unwrap();
        let records = all(d2.path());
        for f in filters(&records) {
            assert_eq!(query(d2.path(), f), scan(&records, &f), "{f:?}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn retention_drops_the_entries_of_deleted_segments() {
        let dir = tempfile::tempdir().unwrap();
        let opts = JournalOptions {
            retention: Retention {
                max_segments: Some(4),
                max_bytes: None,
            },
            ..options(4096)
        };
        let mut j = Journal::open(dir.path(), opts).unwrap();
        for seq in 0..40 {
            j.append(0, seq, seq, &[7u8; 500]).unwrap();
        }
        j.sync().unwrap();
        rebuild_index(dir.path()).unwrap();
        let before = JournalSummary::load(dir.path()).unwrap();
        let first = before.entries[0].index.segment();
        for seq in 40..80 {
            j.append(0, seq, seq, &[7u8; 500]).unwrap();
        }
        j.sync().unwrap();
        let oldest = crate::journal::cursor::list_dir(dir.path()).unwrap()[0];
        assert!(oldest > first);
        let after = JournalSummary::load(dir.path()).unwrap();
        assert!(
            after.entries.iter().all(|e| e.index.segment() >= oldest),
            "{:?}",
            after
                .entries
                .iter()
                .map(|e| e.index.segment())
                .collect::<Vec<_>>()
        );
        assert!(!dir.path().join(index_file_name(first)).exists());
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn a_building_follower_records_sealed_segments() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), 0, 800, 2, 4);
        let opts = FollowOptions {
            index: IndexUse::Build,
            ..Default::default()
        };
        let mut f = Follower::open(dir.path(), opts).unwrap();
        while f.try_next().unwrap().is_some() {}
        let s = JournalSummary::load(dir.path()).expect("written by the follower");
        let segments = crate::journal::cursor::list_dir(dir.path()).unwrap();
        // Every segment but the last (not sealed) has its entry.
        let have: Vec<u64> = s.entries.iter().map(|e| e.index.segment()).collect();
        assert_eq!(have, segments[..segments.len() - 1]);
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn every_seek_through_the_summary_equals_a_full_scan() {
        // Exhaustive over a small journal: every record's time as a
        // start, and every (producer, sequence) as a start.
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), 0, 300, 2, 21);
        rebuild_index(dir.path()).unwrap();
        remove_indexes(dir.path());
        let records = all(dir.path());
        let first = |f: &RecordFilter| -> Option<(u64, u64)> {
            let opts = FollowOptions {
                filter: *f,
                ..Default::default()
            };
            let mut fo = Follower::open(dir.path(), opts).unwrap();
            match fo.try_next().unwrap() {
                Some(FollowEvent::Record(r)) => Some((r.segment, r.offset)),
                Some(FollowEvent::Gap(g)) => panic!("{g:?}"),
                None => None,
            }
        };
        for r in &records {
            for f in [
                RecordFilter {
                    since: Some(r.timestamp),
                    ..Default::default()
                },
                RecordFilter {
                    producer: Some(r.producer),
                    seq_from: Some(r.seq),
                    ..Default::default()
                },
            ] {
                assert_eq!(first(&f), scan(&records, &f).first().copied(), "{f:?}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// Random queries through the summary (with or without the
        /// per-segment indexes, before or after more appends) return
        /// what a full scan returns.
        #[test]
        #[cfg_attr(miri, ignore = "file I/O")]
        fn summary_queries_equal_full_scans(
            seed in 1u64..1000,
            more in 0u64..400,
            keep_indexes: bool,
            since in proptest::option::of(0u64..20_000),
            until in proptest::option::of(0u64..20_000),
            producer in proptest::option::of(0u32..4),
            seq_from in proptest::option::of(0u64..700),
            seq_to in proptest::option::of(0u64..700),
        ) {
            let dir = tempfile::tempdir().unwrap();
            append(dir.path(), 0, 1500, 3, seed);
            rebuild_index(dir.path()).unwrap();
            if !keep_indexes {
                remove_indexes(dir.path());
            }
            append(dir.path(), 1500, more, 3, seed + 1);
            let records = all(dir.path());
            let filter = RecordFilter { since, until, producer, seq_from, seq_to };
            prop_assert_eq!(query(dir.path(), filter), scan(&records, &filter));
        }
    }
}
