//! Reading a journal back: records across segments in order, every CRC
//! verified, optionally one producer only. Segments must follow one
//! another (consecutive numbers, each header naming its file, positions
//! continuing); a break is an error, never silently skipped. Files are
//! opened without blocking and only regular files are read.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::cursor::SegmentStamp;
use super::error::JournalError;
use super::format::{framed_len, segment_file_name, FrameHeader, ParsedFrame, FRAME_HEADER_LEN};
use super::fs::{open_regular, OpenError};
use super::segment::{list_dir, list_segments, Step, Window, AHEAD};

/// One record read from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Producer id.
    pub producer: u32,
    /// Per-producer sequence number.
    pub seq: u64,
    /// Timestamp as the producer wrote it.
    pub timestamp: u64,
    /// The payload.
    pub payload: Vec<u8>,
    /// Segment the record is in.
    pub segment: u64,
    /// Byte offset of the record's frame in the segment file.
    pub offset: u64,
    /// The frame's CRC-32C: with `segment` and `offset`, what a
    /// [`Cursor`](super::Cursor) checks to know the record is still there.
    pub crc: u32,
    /// Identity of the segment the record was read from.
    pub stamp: SegmentStamp,
}

impl Record {
    pub(crate) fn from_frame(
        p: &ParsedFrame,
        bytes: &[u8],
        segment: u64,
        offset: u64,
        stamp: SegmentStamp,
    ) -> Self {
        Self {
            producer: p.header.producer,
            seq: p.header.seq,
            timestamp: p.header.timestamp,
            payload: bytes[FRAME_HEADER_LEN..FRAME_HEADER_LEN + p.header.payload_len as usize]
                .to_vec(),
            segment,
            offset,
            crc: p.header.crc,
            stamp,
        }
    }
}

/// One record read from the journal, its payload borrowed from the
/// reader's buffer: what [`Reader::next_ref`] yields, without the copy and
/// allocation of a [`Record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Producer id.
    pub producer: u32,
    /// Per-producer sequence number.
    pub seq: u64,
    /// Timestamp as the producer wrote it.
    pub timestamp: u64,
    /// The payload.
    pub payload: &'a [u8],
    /// Segment the record is in.
    pub segment: u64,
    /// Byte offset of the record's frame in the segment file.
    pub offset: u64,
    /// The frame's CRC-32C.
    pub crc: u32,
    /// Identity of the segment the record was read from.
    pub stamp: SegmentStamp,
}

impl RecordRef<'_> {
    /// The record with its payload copied.
    pub fn to_record(&self) -> Record {
        Record {
            producer: self.producer,
            seq: self.seq,
            timestamp: self.timestamp,
            payload: self.payload.to_vec(),
            segment: self.segment,
            offset: self.offset,
            crc: self.crc,
            stamp: self.stamp,
        }
    }
}

impl Record {
    /// The record as a [`RecordRef`] borrowing its payload.
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            producer: self.producer,
            seq: self.seq,
            timestamp: self.timestamp,
            payload: &self.payload,
            segment: self.segment,
            offset: self.offset,
            crc: self.crc,
            stamp: self.stamp,
        }
    }
}

/// Consecutive records of one segment, every one verified, borrowed from
/// the reader's buffer: what [`Reader::next_frames`] yields. Iterating it
/// decodes each frame's header; the bytes are the frames as stored.
#[derive(Debug, Clone, Copy)]
pub struct Frames<'a> {
    bytes: &'a [u8],
    segment: u64,
    offset: u64,
    stamp: SegmentStamp,
    producer: Option<u32>,
}

impl<'a> Frames<'a> {
    /// The frames as stored (headers, payloads, padding), back to back.
    pub fn frame_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Segment the frames are in.
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// Byte offset of the first frame in the segment file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The records, as [`Reader::next_ref`] would have yielded them one by
    /// one (with the reader's producer filter applied).
    pub fn iter(&self) -> FramesIter<'a> {
        FramesIter {
            frames: *self,
            at: 0,
        }
    }
}

/// Consecutive records of one segment, every one verified, in a buffer of
/// their own: what [`Reader::next_frames_owned`] yields.
#[derive(Debug)]
pub struct OwnedFrames {
    buf: Vec<u8>,
    at: usize,
    len: usize,
    segment: u64,
    offset: u64,
    stamp: SegmentStamp,
    producer: Option<u32>,
}

impl OwnedFrames {
    /// The records, as [`Reader::next_frames`] would have given them.
    pub fn frames(&self) -> Frames<'_> {
        Frames {
            bytes: &self.buf[self.at..self.at + self.len],
            segment: self.segment,
            offset: self.offset,
            stamp: self.stamp,
            producer: self.producer,
        }
    }

    /// The buffer, to pass back as the reader's next `spare`.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }
}

impl<'a> IntoIterator for Frames<'a> {
    type Item = RecordRef<'a>;
    type IntoIter = FramesIter<'a>;

    fn into_iter(self) -> FramesIter<'a> {
        self.iter()
    }
}

/// The records of a [`Frames`], in order.
#[derive(Debug, Clone)]
pub struct FramesIter<'a> {
    frames: Frames<'a>,
    at: usize,
}

impl<'a> Iterator for FramesIter<'a> {
    type Item = RecordRef<'a>;

    fn next(&mut self) -> Option<RecordRef<'a>> {
        let f = &self.frames;
        loop {
            // The reader verified every frame in `bytes`, so each decodes and
            // fits; an end that does not is the end of the run.
            let h = FrameHeader::decode(f.bytes.get(self.at..)?)?;
            let len = framed_len(h.payload_len as usize);
            let payload = f.bytes.get(
                self.at + FRAME_HEADER_LEN..self.at + FRAME_HEADER_LEN + h.payload_len as usize,
            )?;
            let offset = f.offset + self.at as u64;
            self.at += len;
            if f.producer.is_some_and(|want| want != h.producer) {
                continue;
            }
            return Some(RecordRef {
                producer: h.producer,
                seq: h.seq,
                timestamp: h.timestamp,
                payload,
                segment: f.segment,
                offset,
                crc: h.crc,
                stamp: f.stamp,
            });
        }
    }
}

/// A valid frame the reader stopped at: its segment's buffer holds it.
#[derive(Debug, Clone, Copy)]
struct Located {
    frame: ParsedFrame,
    offset: u64,
}

/// The segment being read.
#[derive(Debug)]
struct Current {
    number: u64,
    path: PathBuf,
    window: Window<File>,
    off: u64,
    stamp: SegmentStamp,
    /// Frames from `off` on already verified (by
    /// [`Window::verify_ahead`]), with their offsets.
    ahead: VecDeque<(u64, ParsedFrame)>,
}

impl Current {
    /// What lies at `off`: the next frame verified ahead, or else (after
    /// verifying the next ones the window holds) what `step` finds.
    fn step(&mut self) -> std::io::Result<Step> {
        self.window.step_ahead(self.off, &mut self.ahead)
    }
}

/// Iterates the records of a journal directory in order, verifying every
/// frame's CRC. Yields `Err` (with segment path and offset) instead of a
/// bad record and then stops, unless [`skip_corrupted`](Self::skip_corrupted)
/// is set, in which case it continues at the next valid frame.
///
/// # Examples
///
/// ```
/// use ringlog::journal::{Journal, JournalOptions, Reader};
/// let dir = std::env::temp_dir().join(format!("ringlog-doc-reader-{}", std::process::id()));
/// let mut journal = Journal::open(&dir, JournalOptions::default()).unwrap();
/// journal.append(1, 0, 10, b"from one").unwrap();
/// journal.append(2, 0, 11, b"from two").unwrap();
/// journal.sync().unwrap();
/// let two: Vec<_> = Reader::open(&dir).unwrap().producer(2).map(Result::unwrap).collect();
/// assert_eq!(two.len(), 1);
/// assert_eq!(two[0].payload, b"from two");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    segments: Vec<u64>,
    next_segment: usize,
    current: Option<Current>,
    /// The segment read before: its number and where its frames end, if
    /// its header was valid.
    prev: Option<(u64, Option<u64>)>,
    producer: Option<u32>,
    skip_corrupted: bool,
    done: bool,
}

impl Reader {
    /// A reader over the segments now in `dir`.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the directory cannot be listed,
    /// [`JournalError::NoJournal`] if it holds no segment file.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, JournalError> {
        let dir = dir.as_ref().to_owned();
        let (segments, _) = list_segments(list_dir(&dir)?);
        if segments.is_empty() {
            return Err(JournalError::NoJournal { path: dir });
        }
        Ok(Self {
            dir,
            segments,
            next_segment: 0,
            current: None,
            prev: None,
            producer: None,
            skip_corrupted: false,
            done: false,
        })
    }

    /// Yields only the records of `producer`.
    pub fn producer(mut self, producer: u32) -> Self {
        self.producer = Some(producer);
        self
    }

    /// After yielding an error for a bad frame or segment header, continue
    /// with the next valid frame (or segment) instead of stopping.
    pub fn skip_corrupted(mut self, skip: bool) -> Self {
        self.skip_corrupted = skip;
        self
    }

    /// Opens the next segment. A structure error (a missing segment, a
    /// position that does not continue) is returned with the segment
    /// already open, so that skipping goes on reading it.
    fn open_next(&mut self) -> Result<bool, JournalError> {
        let Some(&number) = self.segments.get(self.next_segment) else {
            return Ok(false);
        };
        self.next_segment += 1;
        let prev = self.prev.replace((number, None));
        let path = self.dir.join(segment_file_name(number));
        let file = open_regular(&path, false).map_err(|e| match e {
            OpenError::Io(e) => JournalError::io("open", &path, e),
            OpenError::NotRegular(n) => JournalError::NotRegularFile {
                path: path.clone(),
                file_type: n.file_type,
            },
        })?;
        let len = file
            .metadata()
            .map_err(|e| JournalError::io("stat", &path, e))?
            .len();
        let mut window = Window::new(file, len);
        let header = window
            .header()
            .map_err(|e| JournalError::io("read", &path, e))?
            .map_err(|error| JournalError::BadHeader {
                path: path.clone(),
                error,
            })?;
        if header.segment != number {
            return Err(JournalError::Inconsistent {
                path,
                what: format!("header says segment {}", header.segment),
            });
        }
        let off = u64::from(header.header_len);
        let base = header.base_position;
        self.prev = Some((number, base.checked_add(len - off)));
        let broken = match prev {
            Some((p, _)) if number != p + 1 => Some(if number == p + 2 {
                format!("segment {} before it is missing", p + 1)
            } else {
                format!("segments {} to {} before it are missing", p + 1, number - 1)
            }),
            Some((_, Some(end))) if end != base => Some(format!(
                "its records start at position {base}, but the previous segment ends at {end}"
            )),
            _ => None,
        };
        self.current = Some(Current {
            number,
            path: path.clone(),
            window,
            off,
            stamp: SegmentStamp::of(&header),
            ahead: VecDeque::with_capacity(AHEAD),
        });
        match broken {
            Some(what) => Err(JournalError::Structure { path, what }),
            None => Ok(true),
        }
    }

    /// A reader that starts in segment `number` at byte `offset`, then reads
    /// the later segments now in `dir`; returns the segment's identity for
    /// the caller to compare. The caller has checked that a frame boundary
    /// (or the segment's end) is at `offset`.
    pub(crate) fn resume_at(
        dir: &Path,
        number: u64,
        offset: u64,
    ) -> Result<(Self, SegmentStamp), JournalError> {
        let mut reader = Self::open(dir)?;
        reader.segments.retain(|&n| n >= number);
        let path = dir.join(segment_file_name(number));
        if reader.segments.first() != Some(&number) || !reader.open_next()? {
            return Err(JournalError::io(
                "open",
                path,
                std::io::ErrorKind::NotFound.into(),
            ));
        }
        let cur = reader.current.as_mut().expect("open_next opened it");
        if offset < u64::from(cur.stamp.header_len) || offset > cur.window.len() {
            return Err(JournalError::Inconsistent {
                path,
                what: format!("no frame boundary at byte {offset}"),
            });
        }
        cur.off = offset;
        let stamp = cur.stamp;
        Ok((reader, stamp))
    }

    fn next_record(&mut self) -> Result<Option<Located>, JournalError> {
        loop {
            let Some(cur) = self.current.as_mut() else {
                if self.open_next()? {
                    continue;
                }
                return Ok(None);
            };
            let stepped = cur.step();
            let read_err = |e| JournalError::io("read", &cur.path, e);
            match stepped.map_err(read_err)? {
                Step::End => self.current = None,
                Step::Frame(p) => {
                    let off = cur.off;
                    cur.off += p.framed_len as u64;
                    if self.producer.is_some_and(|want| want != p.header.producer) {
                        continue;
                    }
                    return Ok(Some(Located {
                        frame: p,
                        offset: off,
                    }));
                }
                Step::Bad(error) => {
                    let err = JournalError::Corrupt {
                        path: cur.path.clone(),
                        offset: cur.off,
                        error,
                    };
                    if self.skip_corrupted {
                        match cur.window.resync(cur.off).map_err(read_err)? {
                            Some(next) => cur.off = next,
                            None => self.current = None,
                        }
                    } else {
                        self.done = true;
                    }
                    return Err(err);
                }
            }
        }
    }
}

impl Reader {
    /// The next record, as [`next`](Iterator::next) gives it, but with its
    /// payload borrowed from the reader's buffer (valid until the next
    /// call): no copy and no allocation per record.
    pub fn next_ref(&mut self) -> Option<Result<RecordRef<'_>, JournalError>> {
        let at = match self.advance()? {
            Ok(at) => at,
            Err(e) => return Some(Err(e)),
        };
        let cur = self.current.as_mut()?;
        let p = at.frame;
        // The step that found the frame left it in the buffer.
        let bytes = match cur.window.get(at.offset, p.framed_len) {
            Ok(b) => b,
            Err(e) => return Some(Err(JournalError::io("read", &cur.path, e))),
        };
        Some(Ok(RecordRef {
            producer: p.header.producer,
            seq: p.header.seq,
            timestamp: p.header.timestamp,
            payload: &bytes[FRAME_HEADER_LEN..FRAME_HEADER_LEN + p.header.payload_len as usize],
            segment: cur.number,
            offset: at.offset,
            crc: p.header.crc,
            stamp: cur.stamp,
        }))
    }

    /// The next records in bulk: the next record, as
    /// [`next_ref`](Self::next_ref) gives it, with the records after it in
    /// the same segment that the reader has already read and verified
    /// (up to about a megabyte), borrowed from its buffer (valid until the
    /// next call). The same records and errors as `next_ref`, in the same
    /// order, for less work per record.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlog::journal::{Journal, JournalOptions, Reader};
    /// let dir = std::env::temp_dir().join(format!("ringlog-doc-frames-{}", std::process::id()));
    /// let mut journal = Journal::open(&dir, JournalOptions::default()).unwrap();
    /// for i in 0..100u64 {
    ///     journal.append(1, i, i, format!("record {i}").as_bytes()).unwrap();
    /// }
    /// journal.sync().unwrap();
    /// let mut reader = Reader::open(&dir).unwrap();
    /// let mut seen = 0;
    /// while let Some(frames) = reader.next_frames() {
    ///     for r in frames.unwrap() {
    ///         assert_eq!(r.payload, format!("record {seen}").as_bytes());
    ///         seen += 1;
    ///     }
    /// }
    /// assert_eq!(seen, 100);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn next_frames(&mut self) -> Option<Result<Frames<'_>, JournalError>> {
        let (offset, len) = match self.gather()? {
            Ok(run) => run,
            Err(e) => return Some(Err(e)),
        };
        let producer = self.producer;
        let cur = self.current.as_mut()?;
        let bytes = match cur.window.get(offset, len) {
            Ok(b) => b,
            Err(e) => return Some(Err(JournalError::io("read", &cur.path, e))),
        };
        Some(Ok(Frames {
            bytes,
            segment: cur.number,
            offset,
            stamp: cur.stamp,
            producer,
        }))
    }

    /// The next records in bulk, as [`next_frames`](Self::next_frames)
    /// gives them, in a buffer of their own instead of borrowed: the
    /// reader hands over the buffer it read them into (up to about a
    /// megabyte) and takes `spare` to read the next ones into. Nothing is
    /// copied, and the records can go to another thread while this one
    /// reads on; pass the buffer of an [`OwnedFrames`] done with
    /// ([`into_buffer`](OwnedFrames::into_buffer)) as the next `spare`, and
    /// neither side allocates once the buffers have grown. `spare` is
    /// dropped when there is nothing more or an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlog::journal::{Journal, JournalOptions, Reader};
    /// let dir = std::env::temp_dir().join(format!("ringlog-doc-owned-{}", std::process::id()));
    /// let mut journal = Journal::open(&dir, JournalOptions::default()).unwrap();
    /// for i in 0..100u64 {
    ///     journal.append(1, i, i, format!("record {i}").as_bytes()).unwrap();
    /// }
    /// journal.sync().unwrap();
    /// let mut reader = Reader::open(&dir).unwrap();
    /// let (tx, rx) = std::sync::mpsc::sync_channel(2);
    /// std::thread::spawn(move || {
    ///     let mut spare = Vec::new();
    ///     while let Some(frames) = reader.next_frames_owned(spare) {
    ///         let frames = frames.unwrap();
    ///         spare = Vec::new(); // or a buffer the receiver sent back
    ///         tx.send(frames).unwrap();
    ///     }
    /// });
    /// let mut seen = 0;
    /// for frames in rx {
    ///     for r in frames.frames() {
    ///         assert_eq!(r.payload, format!("record {seen}").as_bytes());
    ///         seen += 1;
    ///     }
    /// }
    /// assert_eq!(seen, 100);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn next_frames_owned(
        &mut self,
        spare: Vec<u8>,
    ) -> Option<Result<OwnedFrames, JournalError>> {
        let (offset, len) = match self.gather()? {
            Ok(run) => run,
            Err(e) => return Some(Err(e)),
        };
        let producer = self.producer;
        let cur = self.current.as_mut()?;
        // `get` leaves the run in the buffer (reading it again only in the
        // case `gather` fell back to the first frame, as `next_frames`).
        if let Err(e) = cur.window.get(offset, len) {
            return Some(Err(JournalError::io("read", &cur.path, e)));
        }
        let (buf, start, filled) = cur.window.take_buffer(spare);
        // The verified frames `cur.ahead` may still hold lie in the buffer
        // just handed over: they must be verified again from the next one.
        cur.ahead.clear();
        let at = (offset - start) as usize;
        debug_assert!(at + len <= filled);
        Some(Ok(OwnedFrames {
            buf,
            at,
            len,
            segment: cur.number,
            offset,
            stamp: cur.stamp,
            producer,
        }))
    }

    /// Where the next run of verified frames lies: the next record's frame
    /// and those after it already read and verified, or the first frame
    /// alone if the run is not all in the buffer. Leaves `off` after it.
    fn gather(&mut self) -> Option<Result<(u64, usize), JournalError>> {
        let at = match self.advance()? {
            Ok(at) => at,
            Err(e) => return Some(Err(e)),
        };
        let cur = self.current.as_mut()?;
        // `next_record` moved `off` past the first frame. The frames
        // verified ahead follow it in the buffer, which nothing re-reads
        // until they are used up: take them, and verify more of what the
        // buffer holds, until one is not valid or not wholly buffered.
        loop {
            match cur.ahead.front() {
                Some(&(o, p)) if o == cur.off => {
                    cur.ahead.pop_front();
                    cur.off += p.framed_len as u64;
                }
                // Not at `off`: `step` clears it.
                Some(_) => break,
                None => {
                    cur.window.verify_ahead(cur.off, &mut cur.ahead);
                    if cur.ahead.is_empty() {
                        break;
                    }
                }
            }
        }
        let mut len = (cur.off - at.offset) as usize;
        if cur.window.buffered(at.offset, len).is_none() {
            // Not expected (every frame taken is in the buffer, unread since
            // it was verified); if it were, the first frame alone, as
            // `next_ref` gives it, and the others verified again next call:
            // bytes read again are never handed out as verified.
            cur.ahead.clear();
            cur.off = at.offset + at.frame.framed_len as u64;
            len = at.frame.framed_len;
        }
        Some(Ok((at.offset, len)))
    }

    fn advance(&mut self) -> Option<Result<Located, JournalError>> {
        if self.done {
            return None;
        }
        match self.next_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                // A bad header or an I/O error ends the segment; whether
                // reading goes on is up to `skip_corrupted`.
                // A structure error leaves its segment open to be read.
                let recoverable = matches!(
                    e,
                    JournalError::Corrupt { .. }
                        | JournalError::BadHeader { .. }
                        | JournalError::Inconsistent { .. }
                        | JournalError::NotRegularFile { .. }
                        | JournalError::Structure { .. }
                );
                if !(self.skip_corrupted && recoverable) {
                    self.done = true;
                } else if !matches!(
                    e,
                    JournalError::Corrupt { .. } | JournalError::Structure { .. }
                ) {
                    self.current = None;
                }
                Some(Err(e))
            }
        }
    }
}

impl Iterator for Reader {
    type Item = Result<Record, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_ref().map(|r| r.map(|r| r.to_record()))
    }
}
