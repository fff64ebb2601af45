//! The on-disk layout: the segment header, the record frame, and the pure
//! (I/O-free) encoders and decoders for both. `docs/journal-format.md` is
//! the normative description; this file implements it.
//!
//! Frame layout (little endian, 8-byte aligned, [`FRAME_HEADER_LEN`] = 32):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | CRC-32C of bytes `4..framed_len` (everything after itself) |
//! | 4 | 4 | payload length in bytes |
//! | 8 | 4 | producer id |
//! | 12 | 4 | flags, zero in format version 1 |
//! | 16 | 8 | per-producer sequence number |
//! | 24 | 8 | timestamp (producer-defined, e.g. ns since the Unix epoch) |
//! | 32 | len | payload |
//! | 32 + len | 0..7 | zero padding to a multiple of 8 |

use super::error::{FrameError, JournalError};

/// Length of a record frame's header in bytes.
pub const FRAME_HEADER_LEN: usize = 32;

/// Every frame starts and ends on a multiple of this many bytes.
pub const FRAME_ALIGN: usize = 8;

/// Largest payload of one record in bytes (64 MiB).
pub const MAX_PAYLOAD: usize = 1 << 26;

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"RINGLOGJ";

/// The format version this code writes and the only one it reads.
pub const FORMAT_VERSION: u16 = 1;

/// Length of the segment header this code writes, in bytes.
pub const SEGMENT_HEADER_LEN: usize = 48;

/// Largest segment header length a reader accepts (later minor revisions may
/// append fields, always keeping the CRC in the header's last 4 bytes).
pub const MAX_SEGMENT_HEADER_LEN: usize = 4096;

/// File-name extension of segment files.
pub const SEGMENT_EXTENSION: &str = "rlj";

/// Bytes a frame carrying `payload_len` payload bytes occupies, padding
/// included: `32 + payload_len` rounded up to a multiple of 8.
///
/// Does not check [`MAX_PAYLOAD`]; [`frame_into`] does.
///
/// # Examples
///
/// ```
/// use ringlog::journal::framed_len;
/// assert_eq!(framed_len(0), 32);
/// assert_eq!(framed_len(1), 40);
/// assert_eq!(framed_len(8), 40);
/// ```
#[inline]
pub const fn framed_len(payload_len: usize) -> usize {
    (FRAME_HEADER_LEN + payload_len + FRAME_ALIGN - 1) & !(FRAME_ALIGN - 1)
}

/// Writes one complete frame (header, payload, zero padding, CRC) at the
/// start of `buf` and returns its length, [`framed_len`]`(payload.len())`.
///
/// Producers call this directly on ring memory or on their own buffers, so
/// framing and checksumming happen in parallel on the producers' cores and
/// the journal writer only writes bytes.
///
/// # Errors
///
/// [`JournalError::PayloadTooLarge`] if the payload exceeds [`MAX_PAYLOAD`];
/// [`JournalError::BufferTooSmall`] if `buf` is shorter than the frame.
///
/// # Examples
///
/// ```
/// use ringlog::journal::{frame_into, framed_len};
/// let mut buf = vec![0u8; framed_len(5)];
/// let n = frame_into(&mut buf, 7, 1, 1_000, b"hello").unwrap();
/// assert_eq!(n, 40);
/// ```
pub fn frame_into(
    buf: &mut [u8],
    producer: u32,
    seq: u64,
    timestamp: u64,
    payload: &[u8],
) -> Result<usize, JournalError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(JournalError::PayloadTooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD,
        });
    }
    let n = framed_len(payload.len());
    let Some(frame) = buf.get_mut(..n) else {
        return Err(JournalError::BufferTooSmall {
            needed: n,
            available: buf.len(),
        });
    };
    // The length fits in u32 because MAX_PAYLOAD < 2^32.
    frame[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    frame[8..12].copy_from_slice(&producer.to_le_bytes());
    frame[12..16].copy_from_slice(&0u32.to_le_bytes());
    frame[16..24].copy_from_slice(&seq.to_le_bytes());
    frame[24..32].copy_from_slice(&timestamp.to_le_bytes());
    let end = FRAME_HEADER_LEN + payload.len();
    frame[FRAME_HEADER_LEN..end].copy_from_slice(payload);
    frame[end..].fill(0);
    let crc = crc32c::crc32c(&frame[4..]);
    frame[0..4].copy_from_slice(&crc.to_le_bytes());
    Ok(n)
}

/// Appends one frame to `buf` (see [`frame_into`]) and returns its length.
///
/// # Errors
///
/// [`JournalError::PayloadTooLarge`] if the payload exceeds [`MAX_PAYLOAD`].
pub fn frame_into_vec(
    buf: &mut Vec<u8>,
    producer: u32,
    seq: u64,
    timestamp: u64,
    payload: &[u8],
) -> Result<usize, JournalError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(JournalError::PayloadTooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD,
        });
    }
    let start = buf.len();
    buf.resize(start + framed_len(payload.len()), 0);
    frame_into(&mut buf[start..], producer, seq, timestamp, payload)
}

/// The fixed fields of a frame header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Stored CRC-32C of everything after the CRC field.
    pub crc: u32,
    /// Payload length in bytes.
    pub payload_len: u32,
    /// Producer id.
    pub producer: u32,
    /// Flags (zero in format version 1).
    pub flags: u32,
    /// Per-producer sequence number.
    pub seq: u64,
    /// Timestamp.
    pub timestamp: u64,
}

#[inline]
fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

#[inline]
fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl FrameHeader {
    /// Decodes the first [`FRAME_HEADER_LEN`] bytes of `bytes`, or `None`
    /// if there are fewer. Checks nothing.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let b = bytes.get(..FRAME_HEADER_LEN)?;
        Some(Self {
            crc: le_u32(b, 0),
            payload_len: le_u32(b, 4),
            producer: le_u32(b, 8),
            flags: le_u32(b, 12),
            seq: le_u64(b, 16),
            timestamp: le_u64(b, 24),
        })
    }

    /// Checks the length field alone: within [`MAX_PAYLOAD`] and, with
    /// padding, within `available` bytes. Returns the framed length.
    ///
    /// # Errors
    ///
    /// [`FrameError::LengthTooLarge`] or [`FrameError::Truncated`].
    pub fn check_len(&self, available: usize) -> Result<usize, FrameError> {
        let len = self.payload_len as usize;
        if len > MAX_PAYLOAD {
            return Err(FrameError::LengthTooLarge {
                len: self.payload_len,
            });
        }
        let n = framed_len(len);
        if n > available {
            return Err(FrameError::Truncated {
                needed: n,
                available,
            });
        }
        Ok(n)
    }
}

/// A frame found valid by [`parse_frame`]: its header and where its payload
/// lies in the parsed slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedFrame {
    /// The decoded header.
    pub header: FrameHeader,
    /// Total bytes of the frame, padding included.
    pub framed_len: usize,
}

impl ParsedFrame {
    /// The payload, given the slice the frame was parsed from.
    pub fn payload<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        &bytes[FRAME_HEADER_LEN..FRAME_HEADER_LEN + self.header.payload_len as usize]
    }
}

/// Parses and fully verifies the frame at the start of `bytes` (length,
/// flags and CRC). Never panics, whatever `bytes` holds.
///
/// # Errors
///
/// The first [`FrameError`] found.
pub fn parse_frame(bytes: &[u8]) -> Result<ParsedFrame, FrameError> {
    let header = FrameHeader::decode(bytes).ok_or(FrameError::Truncated {
        needed: FRAME_HEADER_LEN,
        available: bytes.len(),
    })?;
    let n = header.check_len(bytes.len())?;
    let computed = crc32c::crc32c(&bytes[4..n]);
    if computed != header.crc {
        return Err(FrameError::Checksum {
            stored: header.crc,
            computed,
        });
    }
    if header.flags != 0 {
        return Err(FrameError::UnknownFlags {
            flags: header.flags,
        });
    }
    Ok(ParsedFrame {
        header,
        framed_len: n,
    })
}

/// Walks the frame headers of `bytes` without checksumming and returns the
/// offsets where each frame ends. Used to check and split batches cheaply.
///
/// # Errors
///
/// `(offset, error)` of the first frame whose length does not fit.
pub(crate) fn walk_frames(
    bytes: &[u8],
    mut each: impl FnMut(usize, usize),
) -> Result<(), (usize, FrameError)> {
    let mut off = 0;
    while off < bytes.len() {
        let rest = &bytes[off..];
        let Some(h) = FrameHeader::decode(rest) else {
            return Err((
                off,
                FrameError::Truncated {
                    needed: FRAME_HEADER_LEN,
                    available: rest.len(),
                },
            ));
        };
        let n = h.check_len(rest.len()).map_err(|e| (off, e))?;
        if cfg!(debug_assertions) {
            parse_frame(rest).map_err(|e| (off, e))?;
        }
        each(off, n);
        off += n;
    }
    Ok(())
}

/// The header at the start of every segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Format version.
    pub version: u16,
    /// Header length in bytes; frames start here.
    pub header_len: u16,
    /// Segment flags, zero in format version 1.
    pub flags: u32,
    /// Segment number; also the file name.
    pub segment: u64,
    /// When the segment was created, ns since the Unix epoch.
    pub created_unix_nanos: u64,
    /// Journal-global byte position of the segment's first frame.
    pub base_position: u64,
}

/// Why a segment header was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer bytes than a header.
    #[error("segment header truncated ({available} bytes)")]
    Truncated {
        /// Bytes available.
        available: usize,
    },
    /// The magic bytes are wrong: not a journal segment.
    #[error("bad magic")]
    BadMagic,
    /// Written by an incompatible format version.
    #[error("unsupported format version {version}")]
    UnsupportedVersion {
        /// The version found.
        version: u16,
    },
    /// The header length field is out of range.
    #[error("bad header length {len}")]
    BadLength {
        /// The length found.
        len: u16,
    },
    /// The header's CRC does not match.
    #[error("header checksum mismatch")]
    Checksum,
    /// Flags this version does not know.
    #[error("unknown segment flags {flags:#x}")]
    UnknownFlags {
        /// The flags found.
        flags: u32,
    },
}

impl SegmentHeader {
    /// Encodes a version-1 header.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&(SEGMENT_HEADER_LEN as u16).to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.segment.to_le_bytes());
        b[24..32].copy_from_slice(&self.created_unix_nanos.to_le_bytes());
        b[32..40].copy_from_slice(&self.base_position.to_le_bytes());
        let crc = crc32c::crc32c(&b[..SEGMENT_HEADER_LEN - 4]);
        b[SEGMENT_HEADER_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header at the start of `bytes`. Never panics.
    ///
    /// # Errors
    ///
    /// The first [`HeaderError`] found.
    pub fn decode(bytes: &[u8]) -> Result<Self, HeaderError> {
        let truncated = HeaderError::Truncated {
            available: bytes.len(),
        };
        let fixed = bytes.get(..SEGMENT_HEADER_LEN).ok_or(truncated)?;
        if fixed[0..8] != SEGMENT_MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let version = u16::from_le_bytes([fixed[8], fixed[9]]);
        if version != FORMAT_VERSION {
            return Err(HeaderError::UnsupportedVersion { version });
        }
        let header_len = u16::from_le_bytes([fixed[10], fixed[11]]);
        let len = usize::from(header_len);
        if !(SEGMENT_HEADER_LEN..=MAX_SEGMENT_HEADER_LEN).contains(&len) || len % FRAME_ALIGN != 0 {
            return Err(HeaderError::BadLength { len: header_len });
        }
        let all = bytes.get(..len).ok_or(truncated)?;
        if crc32c::crc32c(&all[..len - 4]) != le_u32(all, len - 4) {
            return Err(HeaderError::Checksum);
        }
        let flags = le_u32(all, 12);
        if flags != 0 {
            return Err(HeaderError::UnknownFlags { flags });
        }
        Ok(Self {
            version,
            header_len,
            flags,
            segment: le_u64(all, 16),
            created_unix_nanos: le_u64(all, 24),
            base_position: le_u64(all, 32),
        })
    }
}

/// The file name of segment `number`: 20 decimal digits, so lexical order
/// is segment order (`00000000000000000001.rlj`).
pub fn segment_file_name(number: u64) -> String {
    format!("{number:020}.{SEGMENT_EXTENSION}")
}

/// The segment number a file name denotes, or `None` if it is not a
/// segment file name.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_EXTENSION)?.strip_suffix('.')?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trips_and_every_bit_flip_is_caught() {
        let mut buf = Vec::new();
        frame_into_vec(&mut buf, 3, 9, 77, b"abcde").unwrap();
        let p = parse_frame(&buf).unwrap();
        assert_eq!(
            (p.header.producer, p.header.seq, p.header.timestamp),
            (3, 9, 77)
        );
        assert_eq!(p.payload(&buf), b"abcde");
        for bit in 0..buf.len() * 8 {
            let mut b = buf.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(parse_frame(&b).is_err(), "bit {bit} flip not caught");
        }
    }

    #[test]
    fn header_round_trips() {
        let h = SegmentHeader {
            version: 1,
            header_len: SEGMENT_HEADER_LEN as u16,
            flags: 0,
            segment: 42,
            created_unix_nanos: 5,
            base_position: 1 << 40,
        };
        assert_eq!(SegmentHeader::decode(&h.encode()), Ok(h));
        let mut b = h.encode();
        b[20] ^= 1;
        assert_eq!(SegmentHeader::decode(&b), Err(HeaderError::Checksum));
    }

    #[test]
    fn names_sort_like_numbers() {
        assert_eq!(segment_file_name(1), "00000000000000000001.rlj");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_segment_file_name("1.rlj"), None);
        assert!(segment_file_name(9) < segment_file_name(10));
    }

    #[test]
    fn oversized_and_short_buffers_are_errors() {
        assert!(frame_into(&mut [0u8; 39], 0, 0, 0, b"x").is_err());
        assert!(parse_frame(&[0u8; 31]).is_err());
        assert!(parse_frame(&[0u8; 64]).is_err());
    }
}
