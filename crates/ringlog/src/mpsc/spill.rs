//! `SpillToDisk`: the overflow file and the item codec.
//!
//! # The ordering rule
//!
//! A producer that finds the ring full takes the spill lock and sets the
//! spill mark in `write_pos` (one `fetch_or`), freezing the ring at position `B`.
//! From then on every push, from every producer, goes to the spill file:
//! a CAS on `write_pos` cannot succeed while the mark is set, so each reservation
//! is either below `B` or sees the mark. The consumer reads the ring up to
//! `B`, then the spill file to its end, and, holding the spill lock with the
//! file drained, removes the file and clears the mark; the ring then takes
//! pushes again from `B`. So for every producer, everything it put in the
//! ring before spilling is read before its spilled items, and its spilled
//! items before anything it pushes after the drain: per-producer FIFO holds.
//!
//! # The file
//!
//! A sequence of frames `[len: u32 LE][crc32c(payload): u32 LE][payload]`,
//! each appended by one `write` under the lock, so a process crash leaves at
//! worst a torn last frame (nothing is `fsync`ed: it survives a process
//! crash, not a power loss). A file left behind is replayed, before any new
//! item, by the next channel opened on the same path; it is untrusted: on
//! open it is scanned and cut after the last valid frame, and the cut bytes
//! are counted in [`MpscStats::spill_lost`](super::MpscStats::spill_lost).
//! Items are delivered at least once: a crash after the consumer read some
//! spilled items but before the file was drained replays them again.

use super::error::SpillDecodeError;
use super::queue::Queue;
use super::Mutex;
#[cfg(loom)]
use loom::sync::MutexGuard;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
#[cfg(not(loom))]
use std::sync::MutexGuard;

/// How an item is written to and read back from the spill file.
///
/// # Examples
///
/// ```
/// use ringlog::mpsc::{Spill, SpillDecodeError};
///
/// struct Event { id: u32, level: u8 }
///
/// impl Spill for Event {
///     fn encode(&self, out: &mut Vec<u8>) {
///         out.extend_from_slice(&self.id.to_le_bytes());
///         out.push(self.level);
///     }
///     fn decode(bytes: &[u8]) -> Result<Self, SpillDecodeError> {
///         match bytes {
///             [a, b, c, d, level] => Ok(Event { id: u32::from_le_bytes([*a, *b, *c, *d]), level: *level }),
///             _ => Err(SpillDecodeError { what: "event record is not 5 bytes" }),
///         }
///     }
/// }
///
/// let mut buf = Vec::new();
/// Event { id: 7, level: 2 }.encode(&mut buf);
/// let back = Event::decode(&buf).unwrap();
/// assert_eq!((back.id, back.level), (7, 2));
/// ```
pub trait Spill: Sized {
    /// Appends the item's bytes to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Rebuilds an item from bytes `encode` wrote. The bytes come from a file
    /// and may be garbage: return an error, never panic.
    ///
    /// # Errors
    ///
    /// [`SpillDecodeError`] when the bytes are not a valid item.
    fn decode(bytes: &[u8]) -> Result<Self, SpillDecodeError>;
}

impl Spill for Vec<u8> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> Result<Self, SpillDecodeError> {
        Ok(bytes.to_vec())
    }
}

impl Spill for Box<[u8]> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> Result<Self, SpillDecodeError> {
        Ok(bytes.into())
    }
}

impl Spill for String {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(bytes: &[u8]) -> Result<Self, SpillDecodeError> {
        String::from_utf8(bytes.to_vec()).map_err(|_| SpillDecodeError {
            what: "string record is not UTF-8",
        })
    }
}

macro_rules! spill_int {
    ($($t:ty),*) => {$(
        impl Spill for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn decode(bytes: &[u8]) -> Result<Self, SpillDecodeError> {
                bytes.try_into().map(<$t>::from_le_bytes).map_err(|_| SpillDecodeError {
                    what: concat!("record length is not the size of ", stringify!($t)),
                })
            }
        }
    )*};
}
spill_int!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

/// Bytes of frame header: length and CRC.
const FRAME_HEADER: usize = 8;
/// Largest payload a frame may claim; longer means corruption.
pub const MAX_SPILL_RECORD: usize = 1 << 30;
/// How many bytes the consumer reads from the file at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Encoder and decoder of one item type, as plain functions so that the
/// channel itself needs no `T: Spill` bound.
pub(crate) struct Codec<T> {
    encode: fn(&T, &mut Vec<u8>),
    decode: fn(&[u8]) -> Result<T, SpillDecodeError>,
}

impl<T: Spill> Codec<T> {
    pub(crate) fn of() -> Self {
        Self {
            encode: T::encode,
            decode: T::decode,
        }
    }
}

/// The file and what is known about it; behind the spill lock.
#[derive(Debug)]
struct FileState {
    file: Option<File>,
    /// Bytes of whole frames in the file.
    len: u64,
    /// Bytes the consumer has read (and decoded into `ready`).
    read: u64,
    /// Reusable frame buffer.
    frame: Vec<u8>,
}

/// The spill file of one channel.
pub(crate) struct SpillStore<T> {
    path: PathBuf,
    codec: Codec<T>,
    state: Mutex<FileState>,
}

impl<T> std::fmt::Debug for SpillStore<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What appending found.
pub(crate) enum Append<T> {
    /// Stored in the file.
    Stored,
    /// The mark was cleared meanwhile (the file drained): use the ring.
    Resume(T),
    /// The write failed.
    Failed(T, io::Error),
}

/// What a refill gave the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refill {
    /// Some items were decoded into the consumer's buffer.
    Items,
    /// The file is drained; it was removed and the mark cleared.
    Drained,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
}

fn frame_ok(header: &[u8], avail: u64) -> Option<usize> {
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    if len > MAX_SPILL_RECORD || (FRAME_HEADER + len) as u64 > avail {
        return None;
    }
    Some(len)
}

impl<T> SpillStore<T> {
    /// Opens the spill at `path`. A file left behind is validated, cut after
    /// its last whole, checksummed frame, and returned as "replay first";
    /// the second value is the number of bytes cut.
    pub(crate) fn open(path: PathBuf, codec: Codec<T>) -> io::Result<(Self, bool, u64)> {
        let mut state = FileState {
            file: None,
            len: 0,
            read: 0,
            frame: Vec::new(),
        };
        let mut cut = 0;
        match fs::metadata(&path) {
            Ok(meta) => {
                let file = open_append(&path)?;
                let total = meta.len();
                let valid = scan_valid(&file, total)?;
                if valid < total {
                    file.set_len(valid)?;
                    cut = total - valid;
                }
                if valid == 0 {
                    drop(file);
                    fs::remove_file(&path)?;
                } else {
                    state.len = valid;
                    state.file = Some(file);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let replay = state.len > 0;
        let store = Self {
            path,
            codec,
            state: Mutex::new(state),
        };
        Ok((store, replay, cut))
    }

    /// Takes the spill lock; `activate`: the caller found the ring full and
    /// sets the mark itself; otherwise it saw the mark and `None` means the
    /// mark was cleared meanwhile (the file drained): use the ring.
    fn lock_marked(&self, queue: &Queue<T>, activate: bool) -> Option<MutexGuard<'_, FileState>> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if activate {
            queue.set_spill_mark();
        } else if queue.write_word() & super::queue::SPILL_BIT == 0 {
            // The mark is only cleared under this lock, which we hold, so
            // the Relaxed value read is current.
            return None;
        }
        Some(st)
    }

    /// Frames `items` and appends them with one `write`.
    fn write_frames<'a>(
        &self,
        st: &mut FileState,
        items: impl Iterator<Item = &'a T>,
    ) -> io::Result<()>
    where
        T: 'a,
    {
        st.frame.clear();
        for item in items {
            let at = st.frame.len();
            st.frame.extend_from_slice(&[0; FRAME_HEADER]);
            (self.codec.encode)(item, &mut st.frame);
            let payload = st.frame.len() - at - FRAME_HEADER;
            if payload > MAX_SPILL_RECORD {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "spill record larger than 1 GiB",
                ));
            }
            let crc = crc32c::crc32c(&st.frame[at + FRAME_HEADER..]);
            st.frame[at..at + 4].copy_from_slice(&(payload as u32).to_le_bytes());
            st.frame[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        }
        if st.file.is_none() {
            st.file = Some(open_append(&self.path)?);
        }
        let file = st.file.as_mut().expect("opened above");
        if let Err(e) = file.write_all(&st.frame) {
            // A partial frame may be on disk; cut it so later frames stay
            // readable. If even that fails the reader treats the rest as torn.
            let _ = file.set_len(st.len);
            return Err(e);
        }
        st.len += st.frame.len() as u64;
        Ok(())
    }

    /// Appends `item` (see `lock_marked` for `activate`).
    pub(crate) fn append(&self, queue: &Queue<T>, item: T, activate: bool) -> Append<T> {
        let Some(mut st) = self.lock_marked(queue, activate) else {
            return Append::Resume(item);
        };
        match self.write_frames(&mut st, std::iter::once(&item)) {
            Ok(()) => Append::Stored,
            Err(e) => Append::Failed(item, e),
        }
    }

    /// Appends every item of `items`, in order, with one `write`, and
    /// empties `items`. `Ok(false)`: the mark was cleared meanwhile; nothing
    /// was taken. On error nothing was taken either.
    pub(crate) fn append_all(
        &self,
        queue: &Queue<T>,
        items: &mut Vec<T>,
        activate: bool,
    ) -> io::Result<bool> {
        let Some(mut st) = self.lock_marked(queue, activate) else {
            return Ok(false);
        };
        self.write_frames(&mut st, items.iter())?;
        items.clear();
        Ok(true)
    }

    /// Reads the next chunk of frames into `out`, or, if the file is
    /// drained, removes it and clears the mark. Returns how many records were
    /// lost to corruption alongside.
    pub(crate) fn refill(&self, queue: &Queue<T>, out: &mut VecDeque<T>) -> (Refill, u64) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut lost = 0;
        if st.read >= st.len {
            if let Some(file) = st.file.take() {
                drop(file);
                // A failed remove leaves a file of already-read frames; the
                // next open replays them (at-least-once).
                let _ = fs::remove_file(&self.path);
            }
            st.len = 0;
            st.read = 0;
            queue.clear_spill_mark();
            return (Refill::Drained, 0);
        }
        let avail = st.len - st.read;
        let want = avail.min(READ_CHUNK.max(FRAME_HEADER) as u64) as usize;
        let mut buf = vec![0u8; want];
        let file = st.file.as_ref().expect("len > 0 means the file is open");
        if file.read_exact_at(&mut buf, st.read).is_err() {
            // Unreadable: count the rest as lost rather than spin on it.
            st.read = st.len;
            return (Refill::Items, 1);
        }
        let mut off = 0usize;
        while off + FRAME_HEADER <= buf.len() {
            let Some(len) = frame_ok(&buf[off..], avail - off as u64) else {
                // Cannot resynchronise after a bad length: drop the rest.
                lost += 1;
                st.read = st.len;
                return (Refill::Items, lost);
            };
            if off + FRAME_HEADER + len > buf.len() {
                if off == 0 {
                    // One frame larger than the chunk: read it whole.
                    let mut big = vec![0u8; FRAME_HEADER + len];
                    if file.read_exact_at(&mut big, st.read).is_err() {
                        st.read = st.len;
                        return (Refill::Items, lost + 1);
                    }
                    lost += self.decode_frame(&big, len, out);
                    off = big.len();
                }
                break;
            }
            lost += self.decode_frame(&buf[off..], len, out);
            off += FRAME_HEADER + len;
        }
        st.read += off as u64;
        (Refill::Items, lost)
    }

    /// Decodes one frame at the start of `bytes`; returns 1 if it was lost.
    fn decode_frame(&self, bytes: &[u8], len: usize, out: &mut VecDeque<T>) -> u64 {
        let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("8-byte header"));
        let payload = &bytes[FRAME_HEADER..FRAME_HEADER + len];
        if crc32c::crc32c(payload) != crc {
            return 1;
        }
        match (self.codec.decode)(payload) {
            Ok(item) => {
                out.push_back(item);
                0
            }
            Err(_) => 1,
        }
    }
}

/// Length of the valid prefix of a spill file: whole frames with good CRCs.
fn scan_valid(file: &File, total: u64) -> io::Result<u64> {
    let mut pos = 0u64;
    let mut header = [0u8; FRAME_HEADER];
    let mut payload = Vec::new();
    while pos + FRAME_HEADER as u64 <= total {
        file.read_exact_at(&mut header, pos)?;
        let Some(len) = frame_ok(&header, total - pos) else {
            break;
        };
        payload.resize(len, 0);
        file.read_exact_at(&mut payload, pos + FRAME_HEADER as u64)?;
        let crc = u32::from_le_bytes(header[4..8].try_into().expect("8 bytes"));
        if crc32c::crc32c(&payload) != crc {
            break;
        }
        pos += (FRAME_HEADER + len) as u64;
    }
    Ok(pos)
}
