//! Cursors: a durable, validated position in a journal, taken after a
//! record a consumer has handled, and the resumption of reading from it.
//!
//! A cursor names the segment and byte offset just after a record, the
//! segment's identity (its header's creation time and base position) and
//! the record itself (offset, producer, sequence, CRC). Resuming checks all
//! of them against the files, so a segment deleted or rewritten since the
//! cursor was taken is a [`JournalError::CursorMismatch`], never a silent
//! restart at some other place.
//!
//! The text form (one line, ASCII) carries a version and a CRC-32C of
//! itself:
//!
//! ```text
//! ringlog-cursor v1 segment=3 offset=4136 created=1764583000000000000 base=8192 header=48 record=4096:1:41:0x1a2b3c4d check=0x5e6f7a8b
//! ```

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::error::JournalError;
use super::format::{
    parse_frame, segment_file_name, SegmentHeader, FRAME_ALIGN, FRAME_HEADER_LEN,
    MAX_SEGMENT_HEADER_LEN,
};
use super::reader::{Reader, Record};
use super::segment::list_segments;

/// What tells one instance of a segment file from another that has the same
/// number: the fields of its header that a rewrite would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentStamp {
    /// The header's creation time, ns since the Unix epoch.
    pub created_unix_nanos: u64,
    /// Journal-global position of the segment's first frame.
    pub base_position: u64,
    /// The header's length: where the segment's first frame starts.
    pub header_len: u16,
}

impl SegmentStamp {
    /// The stamp of a decoded header.
    pub fn of(header: &SegmentHeader) -> Self {
        Self {
            created_unix_nanos: header.created_unix_nanos,
            base_position: header.base_position,
            header_len: header.header_len,
        }
    }
}

/// The record a cursor was taken after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LastRecord {
    /// Byte offset of its frame in the segment.
    pub offset: u64,
    /// Its producer.
    pub producer: u32,
    /// Its sequence number.
    pub seq: u64,
    /// Its frame's CRC-32C.
    pub crc: u32,
}

/// A position in a journal: just after one record (or at the start of a
/// segment), with what is needed to detect that the journal changed there.
///
/// # Examples
///
/// ```
/// use ringlog::journal::{Cursor, Journal, JournalOptions, Reader};
/// let dir = std::env::temp_dir().join(format!("ringlog-doc-cursor-{}", std::process::id()));
/// let mut journal = Journal::open(&dir, JournalOptions::default()).unwrap();
/// for seq in 0..3 {
///     journal.append(1, seq, 0, b"event").unwrap();
/// }
/// journal.sync().unwrap();
///
/// // A consumer handles record 0, then stores the cursor after it...
/// let first = Reader::open(&dir).unwrap().next().unwrap().unwrap();
/// let saved = first.cursor().to_string();
///
/// // ...and later resumes exactly after it.
/// let cursor: Cursor = saved.parse().unwrap();
/// let rest: Vec<u64> = Reader::from_cursor(&dir, &cursor).unwrap().map(|r| r.unwrap().seq).collect();
/// assert_eq!(rest, [1, 2]);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// The segment the position is in.
    pub segment: u64,
    /// Byte offset in the segment file where the next record starts.
    pub offset: u64,
    /// The segment's identity.
    pub stamp: SegmentStamp,
    /// The record the cursor was taken after; `None` for the start of the
    /// segment.
    pub last: Option<LastRecord>,
}

impl Record {
    /// The cursor just after this record: store it once the record is
    /// handled, resume with [`Reader::from_cursor`] or
    /// [`Follower::from_cursor`](super::Follower::from_cursor).
    pub fn cursor(&self) -> Cursor {
        Cursor {
            segment: self.segment,
            offset: self.offset + super::format::framed_len(self.payload.len()) as u64,
            stamp: self.stamp,
            last: Some(LastRecord {
                offset: self.offset,
                producer: self.producer,
                seq: self.seq,
                crc: self.crc,
            }),
        }
    }

    /// Journal-global byte position of the end of this record's frame.
    pub fn end_position(&self) -> u64 {
        self.cursor().position()
    }
}

impl Cursor {
    /// The cursor at the start of a segment.
    pub fn segment_start(segment: u64, stamp: SegmentStamp) -> Self {
        Self {
            segment,
            offset: u64::from(stamp.header_len),
            stamp,
            last: None,
        }
    }

    /// The journal-global byte position the cursor names (frame bytes of
    /// all earlier segments plus those before `offset` in this one).
    pub fn position(&self) -> u64 {
        self.stamp
            .base_position
            .saturating_add(self.offset.saturating_sub(u64::from(self.stamp.header_len)))
    }

    fn body(&self) -> String {
        let record = match self.last {
            Some(r) => format!("{}:{}:{}:{:#010x}", r.offset, r.producer, r.seq, r.crc),
            None => "none".to_owned(),
        };
        format!(
            "ringlog-cursor v1 segment={} offset={} created={} base={} header={} record={}",
            self.segment,
            self.offset,
            self.stamp.created_unix_nanos,
            self.stamp.base_position,
            self.stamp.header_len,
            record
        )
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = self.body();
        let check = crc32c::crc32c(body.as_bytes());
        write!(f, "{body} check={check:#010x}")
    }
}

/// Why a cursor's text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CursorParseError {
    /// Not a ringlog cursor at all.
    #[error("not a ringlog cursor")]
    NotACursor,
    /// A cursor of a version this code does not read.
    #[error("unsupported cursor version {0:?}")]
    UnsupportedVersion(String),
    /// A field is missing, misnamed or not a number.
    #[error("bad cursor field {0:?}")]
    BadField(String),
    /// The stored check does not match: the text was damaged.
    #[error("cursor checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// The check in the text.
        stored: u32,
        /// The check computed over the text.
        computed: u32,
    },
    /// The fields contradict each other.
    #[error("inconsistent cursor: {0}")]
    Inconsistent(&'static str),
}

fn field<T: FromStr>(part: Option<&str>, key: &str) -> Result<T, CursorParseError> {
    let bad = || CursorParseError::BadField(key.to_owned());
    let value = part
        .and_then(|p| p.strip_prefix(key))
        .and_then(|p| p.strip_prefix('='))
        .ok_or_else(bad)?;
    value.parse().map_err(|_| bad())
}

fn hex_u32(s: &str, key: &str) -> Result<u32, CursorParseError> {
    s.strip_prefix("0x")
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or_else(|| CursorParseError::BadField(key.to_owned()))
}

impl FromStr for Cursor {
    type Err = CursorParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim_end_matches(['\n', '\r']);
        let (body, check) = text
            .rsplit_once(" check=")
            .ok_or(CursorParseError::NotACursor)?;
        let mut parts = body.split(' ');
        if parts.next() != Some("ringlog-cursor") {
            return Err(CursorParseError::NotACursor);
        }
        match parts.next() {
            Some("v1") => {}
            Some(v) => return Err(CursorParseError::UnsupportedVersion(v.to_owned())),
            None => return Err(CursorParseError::NotACursor),
        }
        let stored = hex_u32(check, "check")?;
        let computed = crc32c::crc32c(body.as_bytes());
        if stored != computed {
            return Err(CursorParseError::Checksum { stored, computed });
        }
        let segment = field(parts.next(), "segment")?;
        let offset: u64 = field(parts.next(), "offset")?;
        let created_unix_nanos = field(parts.next(), "created")?;
        let base_position = field(parts.next(), "base")?;
        let header_len: u16 = field(parts.next(), "header")?;
        let record: String = field(parts.next(), "record")?;
        if parts.next().is_some() {
            return Err(CursorParseError::BadField("trailing".to_owned()));
        }
        let last = if record == "none" {
            None
        } else {
            let bad = || CursorParseError::BadField("record".to_owned());
            let mut r = record.split(':');
            let mut num = || r.next().ok_or_else(bad);
            let off = num()?.parse().map_err(|_| bad())?;
            let producer = num()?.parse().map_err(|_| bad())?;
            let seq = num()?.parse().map_err(|_| bad())?;
            let crc = hex_u32(num()?, "record")?;
            if r.next().is_some() {
                return Err(bad());
            }
            Some(LastRecord {
                offset: off,
                producer,
                seq,
                crc,
            })
        };
        let cursor = Cursor {
            segment,
            offset,
            stamp: SegmentStamp {
                created_unix_nanos,
                base_position,
                header_len,
            },
            last,
        };
        cursor.check_shape()?;
        Ok(cursor)
    }
}

impl Cursor {
    /// Checks what can be checked without the files.
    fn check_shape(&self) -> Result<(), CursorParseError> {
        let align = FRAME_ALIGN as u64;
        if usize::from(self.stamp.header_len) > MAX_SEGMENT_HEADER_LEN
            || (self.stamp.header_len as u64) % align != 0
        {
            return Err(CursorParseError::Inconsistent("header length"));
        }
        if self.offset < u64::from(self.stamp.header_len) || self.offset % align != 0 {
            return Err(CursorParseError::Inconsistent("offset"));
        }
        match self.last {
            None if self.offset != u64::from(self.stamp.header_len) => {
                Err(CursorParseError::Inconsistent("offset without a record"))
            }
            Some(r)
                if r.offset < u64::from(self.stamp.header_len)
                    || r.offset % align != 0
                    || r.offset.saturating_add(FRAME_HEADER_LEN as u64) > self.offset =>
            {
                Err(CursorParseError::Inconsistent("record offset"))
            }
            _ => Ok(()),
        }
    }
}

/// How a cursor no longer matches the journal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CursorMismatch {
    /// The cursor's segment is gone and the journal does not continue at
    /// the cursor's position: records after it were deleted (retention) or
    /// the journal was replaced.
    #[error(
        "segment {segment} no longer exists and the journal does not continue at position \
         {position} (oldest segment now {oldest:?}): records after the cursor are gone"
    )]
    SegmentDeleted {
        /// The cursor's segment.
        segment: u64,
        /// The cursor's journal-global position.
        position: u64,
        /// The oldest segment now in the directory.
        oldest: Option<u64>,
    },
    /// A segment of that number exists but is another file than the one
    /// the cursor was taken in.
    #[error(
        "segment {segment} was rewritten (created {found_created} at position {found_base}, \
         the cursor's was created {expected_created} at position {expected_base})"
    )]
    SegmentRewritten {
        /// The segment.
        segment: u64,
        /// Creation time the cursor holds.
        expected_created: u64,
        /// Creation time the file holds.
        found_created: u64,
        /// Base position the cursor holds.
        expected_base: u64,
        /// Base position the file holds.
        found_base: u64,
    },
    /// The segment is shorter than the cursor's offset (cut by recovery).
    #[error("segment {segment} holds {len} bytes, fewer than the cursor's offset {offset}")]
    Truncated {
        /// The segment.
        segment: u64,
        /// The cursor's offset.
        offset: u64,
        /// The file's length.
        len: u64,
    },
    /// The record the cursor was taken after is not at its offset any more.
    #[error("segment {segment} no longer holds the cursor's record at byte {offset}")]
    RecordChanged {
        /// The segment.
        segment: u64,
        /// The record's offset.
        offset: u64,
    },
    /// The segment after the cursor's starts at another position.
    #[error("segment {segment} starts at position {found}, the cursor is at {expected}")]
    PositionMismatch {
        /// The segment.
        segment: u64,
        /// The cursor's position.
        expected: u64,
        /// The segment's base position.
        found: u64,
    },
}

/// Where reading resumes after a cursor that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// In the cursor's segment, at its offset.
    At { segment: u64, offset: u64 },
    /// The cursor's segment is gone but it ended at the cursor: start of
    /// the segment after it.
    NextSegment { segment: u64, stamp: SegmentStamp },
}

pub(crate) fn list_dir(dir: &Path) -> Result<Vec<u64>, JournalError> {
    let names = std::fs::read_dir(dir)
        .and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect())
        .map_err(|e| JournalError::io("list directory", dir, e))?;
    Ok(list_segments(names).0)
}

/// Opens a segment file for reading without blocking on a FIFO or device,
/// and refuses anything but a regular file.
pub(crate) fn open_segment_file(path: &Path) -> Result<File, JournalError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| JournalError::io("open", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| JournalError::io("stat", path, e))?;
    if !meta.file_type().is_file() {
        return Err(JournalError::Inconsistent {
            path: path.to_owned(),
            what: "not a regular file".to_owned(),
        });
    }
    Ok(file)
}

/// Reads and checks a segment's header; returns it and the file's length.
pub(crate) fn read_header(
    file: &File,
    path: &Path,
    number: u64,
) -> Result<(SegmentHeader, u64), JournalError> {
    let len = file
        .metadata()
        .map_err(|e| JournalError::io("stat", path, e))?
        .len();
    let mut buf = vec![0u8; len.min(MAX_SEGMENT_HEADER_LEN as u64) as usize];
    read_exact_at(file, &mut buf, 0).map_err(|e| JournalError::io("read", path, e))?;
    let header = SegmentHeader::decode(&buf).map_err(|error| JournalError::BadHeader {
        path: path.to_owned(),
        error,
    })?;
    if header.segment != number {
        return Err(JournalError::Inconsistent {
            path: path.to_owned(),
            what: format!("header says segment {}", header.segment),
        });
    }
    Ok((header, len))
}

pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    file.read_exact_at(buf, offset)
}

/// Checks `cursor` against the files of `dir` and says where to resume.
pub(crate) fn validate(dir: &Path, cursor: &Cursor) -> Result<Resume, JournalError> {
    let mismatch = |reason| JournalError::CursorMismatch {
        dir: dir.to_owned(),
        reason,
    };
    let segments = list_dir(dir)?;
    if !segments.contains(&cursor.segment) {
        // Gone. Fine only if the next segment continues exactly at the
        // cursor, i.e. the cursor was at the end of its segment.
        if let Some(&next) = segments.iter().find(|&&n| n > cursor.segment) {
            let path = dir.join(segment_file_name(next));
            let file = open_segment_file(&path)?;
            let (header, _) = read_header(&file, &path, next)?;
            if next == cursor.segment + 1 && header.base_position == cursor.position() {
                return Ok(Resume::NextSegment {
                    segment: next,
                    stamp: SegmentStamp::of(&header),
                });
            }
        }
        return Err(mismatch(CursorMismatch::SegmentDeleted {
            segment: cursor.segment,
            position: cursor.position(),
            oldest: segments.first().copied(),
        }));
    }
    let path = dir.join(segment_file_name(cursor.segment));
    let file = open_segment_file(&path)?;
    let (header, len) = read_header(&file, &path, cursor.segment)?;
    let found = SegmentStamp::of(&header);
    if found != cursor.stamp {
        return Err(mismatch(CursorMismatch::SegmentRewritten {
            segment: cursor.segment,
            expected_created: cursor.stamp.created_unix_nanos,
            found_created: found.created_unix_nanos,
            expected_base: cursor.stamp.base_position,
            found_base: found.base_position,
        }));
    }
    if cursor.offset > len {
        return Err(mismatch(CursorMismatch::Truncated {
            segment: cursor.segment,
            offset: cursor.offset,
            len,
        }));
    }
    if let Some(last) = cursor.last {
        let changed = || {
            mismatch(CursorMismatch::RecordChanged {
                segment: cursor.segment,
                offset: last.offset,
            })
        };
        // check_shape (or the caller's construction) keeps
        // last.offset + FRAME_HEADER_LEN <= offset <= len.
        let n = cursor
            .offset
            .checked_sub(last.offset)
            .filter(|&n| n >= FRAME_HEADER_LEN as u64 && last.offset < len)
            .ok_or_else(changed)?;
        let mut frame = vec![0u8; n as usize];
        read_exact_at(&file, &mut frame, last.offset)
            .map_err(|e| JournalError::io("read", &path, e))?;
        let p = parse_frame(&frame).map_err(|_| changed())?;
        if p.framed_len as u64 != n
            || p.header.crc != last.crc
            || p.header.producer != last.producer
            || p.header.seq != last.seq
        {
            return Err(changed());
        }
    }
    Ok(Resume::At {
        segment: cursor.segment,
        offset: cursor.offset,
    })
}

impl Reader {
    /// A reader that yields the records after the one `cursor` was taken
    /// after, in order, to the journal's current end.
    ///
    /// # Errors
    ///
    /// [`JournalError::CursorMismatch`] if the cursor's segment was deleted
    /// (unless the journal continues exactly at the cursor's position in the
    /// next segment) or rewritten, is shorter than the cursor's offset, or no
    /// longer holds the cursor's record; I/O and header errors as
    /// [`Reader::open`] and the reading of segments.
    pub fn from_cursor(dir: impl AsRef<Path>, cursor: &Cursor) -> Result<Self, JournalError> {
        let dir = dir.as_ref();
        if cursor.check_shape().is_err() {
            return Err(JournalError::CursorMismatch {
                dir: dir.to_owned(),
                reason: CursorMismatch::RecordChanged {
                    segment: cursor.segment,
                    offset: cursor.offset,
                },
            });
        }
        let (segment, offset, expect) = match validate(dir, cursor)? {
            Resume::At { segment, offset } => (segment, offset, cursor.stamp),
            Resume::NextSegment { segment, stamp } => (segment, u64::from(stamp.header_len), stamp),
        };
        let (reader, stamp) = Reader::resume_at(dir, segment, offset)?;
        if stamp != expect {
            // Replaced between the check and the open.
            return Err(JournalError::CursorMismatch {
                dir: dir.to_owned(),
                reason: CursorMismatch::SegmentRewritten {
                    segment,
                    expected_created: expect.created_unix_nanos,
                    found_created: stamp.created_unix_nanos,
                    expected_base: expect.base_position,
                    found_base: stamp.base_position,
                },
            });
        }
        Ok(reader)
    }
}

/// Writes `cursor` to `path` atomically and durably: a temporary file in the
/// same directory, `fsync`, `rename` over `path`, `fsync` of the directory.
/// After a crash `path` holds either the old cursor or the new one.
///
/// # Errors
///
/// [`JournalError::Io`] (or `NoSpace`, `DeviceIo`) naming the file.
pub fn write_cursor_file(path: &Path, cursor: &Cursor) -> Result<(), JournalError> {
    use std::io::Write;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = path
        .file_name()
        .ok_or_else(|| {
            JournalError::io(
                "write cursor",
                path,
                std::io::ErrorKind::InvalidInput.into(),
            )
        })?
        .to_owned();
    tmp_name.push(".tmp");
    let tmp = parent.join(tmp_name);
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| JournalError::io("create", &tmp, e))?;
        writeln!(f, "{cursor}").map_err(|e| JournalError::io("write", &tmp, e))?;
        f.sync_all()
            .map_err(|e| JournalError::io("fsync", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| JournalError::io("rename", &tmp, e))?;
        File::open(&parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| JournalError::io("sync directory", &parent, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Reads a cursor file written by [`write_cursor_file`]; `Ok(None)` if it
/// does not exist.
///
/// # Errors
///
/// [`JournalError::Io`] if it cannot be read; [`JournalError::Inconsistent`]
/// (naming the file and the [`CursorParseError`]) if it is not a valid cursor.
pub fn read_cursor_file(path: &Path) -> Result<Option<Cursor>, JournalError> {
    use std::io::Read;
    let file = match std::fs::OpenOptions::new().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(JournalError::io("open", path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| JournalError::io("stat", path, e))?;
    if !meta.file_type().is_file() || meta.len() > 4096 {
        return Err(JournalError::Inconsistent {
            path: path.to_owned(),
            what: "not a cursor file (not a small regular file)".to_owned(),
        });
    }
    let mut text = String::new();
    file.take(4096)
        .read_to_string(&mut text)
        .map_err(|e| JournalError::io("read", path, e))?;
    text.parse()
        .map(Some)
        .map_err(|e: CursorParseError| JournalError::Inconsistent {
            path: path.to_owned(),
            what: format!("bad cursor: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Journal, JournalOptions, Retention, SyncPolicy};

    fn journal(dir: &Path, segment_bytes: u64) -> Journal {
        let options = JournalOptions {
            segment_bytes,
            sync: SyncPolicy::Never,
            ..Default::default()
        };
        Journal::open(dir, options).unwrap()
    }

    fn all(dir: &Path) -> Vec<Record> {
        Reader::open(dir).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn text_round_trips_and_damage_is_caught() {
        let c = Cursor {
            segment: 7,
            offset: 4136,
            stamp: SegmentStamp {
                created_unix_nanos: 17,
                base_position: 1 << 33,
                header_len: 48,
            },
            last: Some(LastRecord {
                offset: 4096,
                producer: 3,
                seq: u64::MAX,
                crc: 0xdead_beef,
            }),
        };
        let text = c.to_string();
        assert_eq!(text.parse::<Cursor>(), Ok(c));
        let start = Cursor::segment_start(1, c.stamp);
        assert_eq!(start.to_string().parse::<Cursor>(), Ok(start));
        for i in 0..text.len() {
            let mut b = text.clone().into_bytes();
            b[i] ^= 0x01;
            let damaged = String::from_utf8_lossy(&b).into_owned();
            assert!(damaged.parse::<Cursor>().is_err(), "flip at {i}: {damaged}");
        }
        assert_eq!("".parse::<Cursor>(), Err(CursorParseError::NotACursor));
        let v2 = text.replace(" v1 ", " v2 ");
        assert!(matches!(
            v2.parse::<Cursor>(),
            Err(CursorParseError::UnsupportedVersion(_))
        ));
    }

    /// From the cursor after every record, a reader yields exactly the
    /// records after it: no record twice, none skipped, across rotation.
    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn from_cursor_resumes_exactly_after_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(dir.path(), 600);
        for seq in 0..60u64 {
            j.append(
                (seq % 3) as u32,
                seq,
                seq,
                &vec![seq as u8; (seq % 50) as usize],
            )
            .unwrap();
        }
        j.sync().unwrap();
        let records = all(dir.path());
        assert_eq!(records.len(), 60);
        assert!(records.last().unwrap().segment > 3, "rotation happened");
        for (i, r) in records.iter().enumerate() {
            let c: Cursor = r.cursor().to_string().parse().unwrap();
            let rest: Vec<Record> = Reader::from_cursor(dir.path(), &c)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(rest, records[i + 1..], "after record {i}");
        }
        // Positions are continuous: a record's cursor position is the next
        // record's start.
        for w in records.windows(2) {
            let next_start = Cursor {
                segment: w[1].segment,
                offset: w[1].offset,
                stamp: w[1].stamp,
                last: None,
            };
            assert_eq!(w[0].end_position(), next_start.position());
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn cursor_into_deleted_or_rewritten_segment_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(dir.path(), 400);
        for seq in 0..40u64 {
            j.append(1, seq, 0, &[7u8; 40]).unwrap();
        }
        j.sync().unwrap();
        drop(j);
        let records = all(dir.path());
        let in_first = records.iter().find(|r| r.segment == 1).unwrap().cursor();
        let last_of_first = records.iter().rfind(|r| r.segment == 1).unwrap().cursor();
        let in_second = records.iter().find(|r| r.segment == 2).unwrap().cursor();

        // Segment 1 deleted: a cursor inside it is refused; one at its very
        // end resumes at the start of segment 2.
        std::fs::remove_file(dir.path().join(segment_file_name(1))).unwrap();
        let err = Reader::from_cursor(dir.path(), &in_first).unwrap_err();
        assert!(
            matches!(
                &err,
                JournalError::CursorMismatch {
                    reason: CursorMismatch::SegmentDeleted { segment: 1, .. },
                    ..
                }
            ),
            "{err}"
        );
        let resumed: Vec<u64> = Reader::from_cursor(dir.path(), &last_of_first)
            .unwrap()
            .map(|r| r.unwrap().seq)
            .collect();
        let expected: Vec<u64> = records
            .iter()
            .filter(|r| r.segment >= 2)
            .map(|r| r.seq)
            .collect();
        assert_eq!(resumed, expected);

        // Segment 2 rewritten: same number, another header.
        let p2 = dir.path().join(segment_file_name(2));
        let mut bytes = std::fs::read(&p2).unwrap();
        let mut h = SegmentHeader::decode(&bytes).unwrap();
        h.created_unix_nanos += 1;
        bytes[..h.header_len as usize].copy_from_slice(&h.encode());
        std::fs::write(&p2, &bytes).unwrap();
        let err = Reader::from_cursor(dir.path(), &in_second).unwrap_err();
        assert!(
            matches!(
                &err,
                JournalError::CursorMismatch {
                    reason: CursorMismatch::SegmentRewritten { segment: 2, .. },
                    ..
                }
            ),
            "{err}"
        );

        // Same header, other record at the offset.
        let p3 = dir.path().join(segment_file_name(3));
        let in_third = records.iter().find(|r| r.segment == 3).unwrap();
        let mut bytes = std::fs::read(&p3).unwrap();
        let at = in_third.offset as usize;
        crate::journal::frame_into(&mut bytes[at..], 1, in_third.seq, 0, &[8u8; 40]).unwrap();
        std::fs::write(&p3, &bytes).unwrap();
        let err = Reader::from_cursor(dir.path(), &in_third.cursor()).unwrap_err();
        assert!(
            matches!(
                &err,
                JournalError::CursorMismatch {
                    reason: CursorMismatch::RecordChanged { segment: 3, .. },
                    ..
                }
            ),
            "{err}"
        );

        // Cut shorter than the cursor.
        let last = records.last().unwrap();
        let pl = dir.path().join(segment_file_name(last.segment));
        let f = std::fs::OpenOptions::new().write(true).open(&pl).unwrap();
        f.set_len(last.offset).unwrap();
        let err = Reader::from_cursor(dir.path(), &last.cursor()).unwrap_err();
        assert!(
            matches!(
                &err,
                JournalError::CursorMismatch {
                    reason: CursorMismatch::Truncated { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn retention_past_the_cursor_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let options = JournalOptions {
            segment_bytes: 300,
            retention: Retention {
                max_segments: Some(2),
                max_bytes: None,
            },
            ..Default::default()
        };
        let mut j = Journal::open(dir.path(), options).unwrap();
        j.append(1, 0, 0, &[1u8; 40]).unwrap();
        j.sync().unwrap();
        let first = all(dir.path())[0].cursor();
        for seq in 1..40u64 {
            j.append(1, seq, 0, &[1u8; 40]).unwrap();
        }
        j.sync().unwrap();
        let err = Reader::from_cursor(dir.path(), &first).unwrap_err();
        assert!(
            matches!(
                &err,
                JournalError::CursorMismatch {
                    reason: CursorMismatch::SegmentDeleted { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert!(err
            .to_string()
            .contains("records after the cursor are gone"));
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn cursor_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor");
        assert_eq!(read_cursor_file(&path).unwrap(), None);
        let c = Cursor::segment_start(
            1,
            SegmentStamp {
                created_unix_nanos: 1,
                base_position: 0,
                header_len: 48,
            },
        );
        write_cursor_file(&path, &c).unwrap();
        assert_eq!(read_cursor_file(&path).unwrap(), Some(c));
        std::fs::write(&path, "garbage").unwrap();
        assert!(read_cursor_file(&path).is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }
}
