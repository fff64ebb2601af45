//! Reading segment files: positional reads through a bounded window, the
//! frame-by-frame scan with resynchronisation after a bad frame, and the
//! listing of a journal directory.
//!
//! Every length read from a file is checked against the file's length
//! before anything is read at it, so no file content can make the scan
//! panic, allocate more than `MAX_PAYLOAD` plus a window, or loop.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::crc::frame_crcs;
use super::error::{FrameError, JournalError};
use super::format::{
    parse_frame, parse_segment_file_name, FrameHeader, HeaderError, ParsedFrame, SegmentHeader,
    FRAME_ALIGN, FRAME_HEADER_LEN, MAX_SEGMENT_HEADER_LEN, SEGMENT_EXTENSION,
};
use super::fs::JournalFile;

/// Bytes read at once when scanning.
const WINDOW_BYTES: usize = 1 << 20;

/// Frames [`Window::verify_ahead`] verifies at most per call.
pub(crate) const AHEAD: usize = 48;

/// Positional reads (`pread`).
pub(crate) trait ReadAt {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
}

impl ReadAt for &File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(*self, buf, offset)
    }
}

impl ReadAt for &[u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// Reads a [`JournalFile`] positionally.
#[derive(Debug)]
pub(crate) struct ViaJournalFile<'a, F>(pub(crate) &'a F);

impl<F: JournalFile> ReadAt for ViaJournalFile<'_, F> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.pread(buf, offset)
    }
}

/// A cached range `[start, start + filled)` of a source of `len` bytes.
#[derive(Debug)]
pub(crate) struct Window<R> {
    src: R,
    /// Length of the source in bytes, fixed when the window is made.
    len: u64,
    /// Source offset of `buf[0]`.
    start: u64,
    /// The cache in `buf[..filled]`; the rest is storage that reads may
    /// overwrite (kept initialised, so a swapped-in buffer is not zeroed
    /// again before every read).
    buf: Vec<u8>,
    filled: usize,
}

/// What lies at an offset of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The end of the file, exactly.
    End,
    /// A valid frame.
    Frame(ParsedFrame),
    /// Not a valid frame.
    Bad(FrameError),
}

impl<R: ReadAt> Window<R> {
    pub(crate) fn new(src: R, len: u64) -> Self {
        Self {
            src,
            len,
            start: 0,
            buf: Vec::new(),
            filled: 0,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The bytes `[off, off + n)`; the caller ensures `off + n <= len`.
    pub(crate) fn get(&mut self, off: u64, n: usize) -> io::Result<&[u8]> {
        let end = off + n as u64;
        debug_assert!(end <= self.len);
        if off < self.start || end > self.start + self.filled as u64 {
            // Bounded: n <= framed_len(MAX_PAYLOAD) or the header maximum.
            let want = (n.max(WINDOW_BYTES) as u64).min(self.len - off) as usize;
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
            // Nothing is cached while the reads below overwrite it.
            self.filled = 0;
            let mut filled = 0;
            while filled < want {
                match self
                    .src
                    .read_at(&mut self.buf[filled..want], off + filled as u64)
                {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "file shrank while being read",
                        ))
                    }
                    Ok(k) => filled += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.start = off;
            self.filled = want;
        }
        let at = (off - self.start) as usize;
        Ok(&self.buf[at..at + n])
    }

    /// The cached bytes.
    fn cached(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// Hands over the buffer, with where its cache starts in the source
    /// and how long it is, and takes `spare` as the storage for the next
    /// reads: nothing is cached afterwards.
    pub(crate) fn take_buffer(&mut self, spare: Vec<u8>) -> (Vec<u8>, u64, usize) {
        let filled = std::mem::replace(&mut self.filled, 0);
        (std::mem::replace(&mut self.buf, spare), self.start, filled)
    }

    /// The bytes `[off, off + n)` if the buffer holds them; reads nothing.
    pub(crate) fn buffered(&self, off: u64, n: usize) -> Option<&[u8]> {
        let at = usize::try_from(off.checked_sub(self.start)?).ok()?;
        self.cached().get(at..at.checked_add(n)?)
    }

    /// Reads and checks the segment header at offset 0.
    pub(crate) fn header(&mut self) -> io::Result<Result<SegmentHeader, HeaderError>> {
        let n = self.len.min(MAX_SEGMENT_HEADER_LEN as u64) as usize;
        Ok(SegmentHeader::decode(self.get(0, n)?))
    }

    /// Classifies the bytes at `off` (`off <= len`).
    pub(crate) fn step(&mut self, off: u64) -> io::Result<Step> {
        let remaining = self.len - off;
        if remaining == 0 {
            return Ok(Step::End);
        }
        let available = usize::try_from(remaining).unwrap_or(usize::MAX);
        if available < FRAME_HEADER_LEN {
            return Ok(Step::Bad(FrameError::Truncated {
                needed: FRAME_HEADER_LEN,
                available,
            }));
        }
        let header_bytes = self.get(off, FRAME_HEADER_LEN)?;
        let Some(h) = FrameHeader::decode(header_bytes) else {
            let available = header_bytes.len();
            return Ok(Step::Bad(FrameError::Truncated {
                needed: FRAME_HEADER_LEN,
                available,
            }));
        };
        let n = match h.check_len(available) {
            Ok(n) => n,
            Err(e) => return Ok(Step::Bad(e)),
        };
        Ok(match parse_frame(self.get(off, n)?) {
            Ok(p) => Step::Frame(p),
            Err(e) => Step::Bad(e),
        })
    }

    /// Verifies the frames from `off` on that the buffer already holds
    /// whole, up to [`AHEAD`] of them, checksumming several side by side,
    /// and appends each valid one to `out` with its offset, in order. Stops
    /// before the first frame that is not valid or not wholly buffered,
    /// for [`step`](Self::step) to classify (and read): a frame appended
    /// here is one `step` would have found valid, with the same checks.
    /// Reads nothing.
    pub(crate) fn verify_ahead(&self, mut off: u64, out: &mut VecDeque<(u64, ParsedFrame)>) {
        if off < self.start {
            return;
        }
        // Every candidate goes into `out` as its header checks pass; those
        // from the first CRC mismatch on are taken out again below.
        let first = out.len();
        let mut frames: [&[u8]; AHEAD] = [&[]; AHEAD];
        let mut n = 0;
        while n < AHEAD {
            // off >= start, and off <= start + filled (it only moves
            // past frames within the buffer), so this fits.
            let i = (off - self.start) as usize;
            let Some(header) = self.cached().get(i..).and_then(FrameHeader::decode) else {
                break;
            };
            // As in `step`: the length against what the file holds, then
            // (in `parse_frame`) the flags.
            let remaining = usize::try_from(self.len - off).unwrap_or(usize::MAX);
            let Ok(len) = header.check_len(remaining) else {
                break;
            };
            if header.flags != 0 {
                break;
            }
            let Some(frame) = self.cached().get(i..i + len) else {
                break;
            };
            out.push_back((
                off,
                ParsedFrame {
                    header,
                    framed_len: len,
                },
            ));
            frames[n] = frame;
            off += len as u64;
            n += 1;
        }
        let mut crcs = [0u32; AHEAD];
        frame_crcs(&frames[..n], &mut crcs[..n]);
        if let Some(bad) = (0..n).find(|&k| crcs[k] != out[first + k].1.header.crc) {
            out.truncate(first + bad);
        }
    }

    /// What [`step`](Self::step) finds at `off`, taken from `ahead` when
    /// [`verify_ahead`](Self::verify_ahead) has already verified it, after
    /// refilling `ahead` from the buffer when it is empty. `ahead` holds
    /// the verified frames that follow, for the next calls; a frame not at
    /// `off` (the caller moved elsewhere) empties it.
    pub(crate) fn step_ahead(
        &mut self,
        off: u64,
        ahead: &mut VecDeque<(u64, ParsedFrame)>,
    ) -> io::Result<Step> {
        match ahead.pop_front() {
            Some((at, p)) if at == off => return Ok(Step::Frame(p)),
            Some(_) => ahead.clear(),
            None => {}
        }
        self.verify_ahead(off, ahead);
        match ahead.pop_front() {
            Some((at, p)) if at == off => Ok(Step::Frame(p)),
            _ => {
                ahead.clear();
                self.step(off)
            }
        }
    }

    /// The first 8-aligned offset after `bad` where a valid frame starts,
    /// if any: tells a torn tail (none) from corruption in the middle.
    pub(crate) fn resync(&mut self, bad: u64) -> io::Result<Option<u64>> {
        let mut off = (bad + FRAME_ALIGN as u64) & !(FRAME_ALIGN as u64 - 1);
        while off + FRAME_HEADER_LEN as u64 <= self.len {
            if let Step::Frame(_) = self.step(off)? {
                return Ok(Some(off));
            }
            off += FRAME_ALIGN as u64;
        }
        Ok(None)
    }
}

/// A run of bad bytes found by [`scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadRange {
    /// Offset of the first bad byte.
    pub(crate) start: u64,
    /// Offset of the next valid frame, or the file's end for a torn tail.
    pub(crate) end: u64,
    /// Why the frame at `start` was rejected.
    pub(crate) error: FrameError,
    /// No valid frame follows: a torn tail.
    pub(crate) is_tail: bool,
}

/// Scans frames from `start`, calling `on_frame(offset, frame, bytes)` for
/// every valid one. On a bad frame it resynchronises; with `stop_at_bad`
/// it stops after the first bad range. Returns the bad ranges.
pub(crate) fn scan<R: ReadAt>(
    w: &mut Window<R>,
    start: u64,
    stop_at_bad: bool,
    mut on_frame: impl FnMut(u64, &ParsedFrame, &[u8]),
) -> io::Result<Vec<BadRange>> {
    let mut bad = Vec::new();
    let mut off = start;
    let mut ahead = VecDeque::with_capacity(AHEAD);
    loop {
        match w.step_ahead(off, &mut ahead)? {
            Step::End => return Ok(bad),
            Step::Frame(p) => {
                on_frame(off, &p, w.get(off, p.framed_len)?);
                off += p.framed_len as u64;
            }
            Step::Bad(error) => {
                let next = w.resync(off)?;
                bad.push(BadRange {
                    start: off,
                    end: next.unwrap_or(w.len()),
                    error,
                    is_tail: next.is_none(),
                });
                match next {
                    Some(next) if !stop_at_bad => off = next,
                    _ => return Ok(bad),
                }
            }
        }
    }
}

/// The names of the entries of `dir` on the real file system.
pub(crate) fn list_dir(dir: &std::path::Path) -> Result<Vec<OsString>, JournalError> {
    std::fs::read_dir(dir)
        .and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect())
        .map_err(|e| JournalError::io("list directory", dir, e))
}

/// Segment numbers in a directory listing, sorted, and the names of
/// leftover temporary files (`*.rlj.tmp`) from an interrupted creation.
pub(crate) fn list_segments(names: Vec<OsString>) -> (Vec<u64>, Vec<OsString>) {
    let mut segments = Vec::new();
    let mut leftovers = Vec::new();
    let tmp_suffix = format!(".{SEGMENT_EXTENSION}.tmp");
    for name in names {
        let Some(s) = name.to_str() else { continue };
        if let Some(n) = parse_segment_file_name(s) {
            segments.push(n);
        } else if s.ends_with(&tmp_suffix) {
            leftovers.push(name);
        }
    }
    segments.sort_unstable();
    (segments, leftovers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::format::frame_into_vec;

    #[test]
    fn scan_finds_frames_and_tells_tail_from_middle() {
        let mut bytes = Vec::new();
        for i in 0..4 {
            frame_into_vec(&mut bytes, 1, i, 0, &[i as u8; 13]).unwrap();
        }
        let mut seen = 0;
        let mut w = Window::new(&bytes[..], bytes.len() as u64);
        assert!(scan(&mut w, 0, false, |_, _, _| seen += 1)
            .unwrap()
            .is_empty());
        assert_eq!(seen, 4);

        // Garble frame 1 of 4: corruption followed by valid frames.
        let mut mid = bytes.clone();
        mid[48 + 40] ^= 0xff;
        let mut w = Window::new(&mid[..], mid.len() as u64);
        let bad = scan(&mut w, 0, false, |_, _, _| {}).unwrap();
        assert_eq!(bad.len(), 1);
        assert!(!bad[0].is_tail);
        assert_eq!((bad[0].start, bad[0].end), (48, 96));

        // Cut in the middle of the last frame: a torn tail.
        let torn = &bytes[..bytes.len() - 3];
        let mut w = Window::new(torn, torn.len() as u64);
        let bad = scan(&mut w, 0, false, |_, _, _| {}).unwrap();
        assert!(bad[0].is_tail);
        assert_eq!(bad[0].start, 144);
    }
}
