//! The durable watermark: a small file beside the segments, `durable.rlw`,
//! where the writer publishes how far the journal is durable after each
//! successful sync, so that a [`Follower`](super::Follower) yields only
//! records that are durable, not merely written.
//!
//! Layout (40 bytes, little endian):
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `RLDW` |
//! | 4..8 | version (1) |
//! | 8..16 | segment number |
//! | 16..24 | byte offset in that segment file: every frame ending at or before it is durable |
//! | 24..32 | journal-global position of that offset |
//! | 32..36 | CRC-32C of bytes 0..32 |
//! | 36..40 | zero |
//!
//! The writer rewrites the 40 bytes in place with one `pwrite` after each
//! `fdatasync` that made data durable (and once on open, after recovery).
//! The file itself is never synced: every value it ever holds was true
//! when written, and after a crash the journal is bounded by recovery
//! anyway, so a value lost with the page cache only makes followers wait
//! for the next sync. Like the index it is untrusted: a follower that
//! reads a bad checksum (a torn or damaged file) keeps the last good value
//! it had, and a journal without the file (written before it existed, or
//! by a writer that could not create it) is followed as written.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// File name of the durable watermark in a journal directory.
pub const DURABLE_FILE_NAME: &str = "durable.rlw";

const MAGIC: &[u8; 4] = b"RLDW";
const VERSION: u32 = 1;
const LEN: usize = 40;

/// How far a journal is durable, as its writer last published it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableMark {
    /// Segment number.
    pub segment: u64,
    /// Byte offset in the segment file up to which frames are durable.
    pub offset: u64,
    /// Journal-global position of `offset`.
    pub position: u64,
}

impl DurableMark {
    fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0..4].copy_from_slice(MAGIC);
        b[4..8].copy_from_slice(&VERSION.to_le_bytes());
        b[8..16].copy_from_slice(&self.segment.to_le_bytes());
        b[16..24].copy_from_slice(&self.offset.to_le_bytes());
        b[24..32].copy_from_slice(&self.position.to_le_bytes());
        let crc = crc32c::crc32c(&b[..32]);
        b[32..36].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes the file's bytes; `None` unless they are a whole, valid mark.
    fn decode(b: &[u8]) -> Option<Self> {
        let b: &[u8; LEN] = b.get(..LEN)?.try_into().ok()?;
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(b[32..36].try_into().expect("4 bytes"));
        if &b[0..4] != MAGIC
            || u32::from_le_bytes(b[4..8].try_into().expect("4 bytes")) != VERSION
            || crc32c::crc32c(&b[..32]) != crc
        {
            return None;
        }
        Some(Self {
            segment: u64_at(8),
            offset: u64_at(16),
            position: u64_at(24),
        })
    }

    /// Whether a frame of segment `segment` ending at byte `end` is durable.
    pub fn covers(&self, segment: u64, end: u64) -> bool {
        segment < self.segment || (segment == self.segment && end <= self.offset)
    }
}

/// The writer's side: the open watermark file.
#[derive(Debug)]
pub(crate) struct MarkWriter {
    path: PathBuf,
    file: Option<File>,
    last: Option<DurableMark>,
}

impl MarkWriter {
    /// Opens (creating) the watermark file of `dir`. Failing to is not an
    /// error of the journal: followers then read it as written.
    pub(crate) fn open(dir: &Path) -> Self {
        let path = dir.join(DURABLE_FILE_NAME);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ok();
        Self {
            path,
            file,
            last: None,
        }
    }

    /// Publishes `mark` (called after the data up to it was synced).
    /// A failed write leaves the previous value (followers wait longer);
    /// it is tried again at the next sync.
    pub(crate) fn publish(&mut self, mark: DurableMark) {
        if self.last == Some(mark) {
            return;
        }
        if self.file.is_none() {
            *self = Self::open(self.path.parent().unwrap_or(Path::new(".")));
        }
        if let Some(f) = &self.file {
            if f.write_all_at(&mark.encode(), 0).is_ok() {
                self.last = Some(mark);
            }
        }
    }
}

/// The follower's side: reads the watermark when it needs a newer one.
#[derive(Debug)]
pub(crate) struct MarkReader {
    path: PathBuf,
    file: Option<File>,
    /// The last valid value read.
    pub(crate) last: Option<DurableMark>,
    /// The file was not there when last looked for.
    pub(crate) absent: bool,
}

impl MarkReader {
    pub(crate) fn new(dir: &Path) -> Self {
        let mut r = Self {
            path: dir.join(DURABLE_FILE_NAME),
            file: None,
            last: None,
            absent: false,
        };
        r.refresh();
        r
    }

    /// Reads the file again (opening it if it was not there). A bad or
    /// short read keeps the last good value.
    pub(crate) fn refresh(&mut self) {
        if self.file.is_none() {
            match super::fs::open_regular(&self.path, false) {
                Ok(f) => {
                    self.file = Some(f);
                    self.absent = false;
                }
                Err(_) => {
                    self.absent = self.last.is_none();
                    return;
                }
            }
        }
        let Some(f) = &self.file else { return };
        let mut b = [0u8; LEN];
        if let Ok(n) = f.read_at(&mut b, 0) {
            if let Some(m) = DurableMark::decode(&b[..n]) {
                // Never backwards: an older value read back (a writer
                // reopened and publishing again) changes nothing yielded.
                if self.last.is_none_or(|l| m.position >= l.position) {
                    self.last = Some(m);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_every_damage_is_refused() {
        let m = DurableMark {
            segment: 7,
            offset: 4096,
            position: 1 << 40,
        };
        let b = m.encode();
        assert_eq!(DurableMark::decode(&b), Some(m));
        for cut in 0..LEN {
            assert_eq!(DurableMark::decode(&b[..cut]), None);
        }
        for bit in 0..36 * 8 {
            let mut d = b;
            d[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(DurableMark::decode(&d), None, "bit {bit}");
        }
        assert!(m.covers(6, u64::MAX));
        assert!(m.covers(7, 4096));
        assert!(!m.covers(7, 4097));
        assert!(!m.covers(8, 0));
    }
}
