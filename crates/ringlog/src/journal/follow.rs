//! Following a journal: records as they land, across rotation, from a
//! cursor, with gaps that retention made reported instead of skipped.
//!
//! A [`Follower`] yields only complete, CRC-valid frames. A frame the writer
//! has not finished (or a torn tail a crash left) is waited on, not reported:
//! the follower moves to the next segment only once that segment holds
//! frame bytes, which the writer writes only after the previous segment's
//! last chunk. A bad frame followed by a valid one, or a torn tail in a
//! segment the writer has moved past, is corruption and an error.
//!
//! What "lands" means: by default ([`FollowBound::Durable`]) a frame is
//! yielded once it is durable, that is once the writer's `fdatasync` of it
//! returned and the writer published the new durable position in the
//! journal's watermark file ([`DurableMark`](super::DurableMark),
//! `durable.rlw`). A journal without that file (one written before it
//! existed) is followed as written, and so is any journal with
//! [`FollowBound::Written`]: a frame is then yielded once the writer's
//! `write` of it returned, which may be before the `fdatasync`. While the
//! file is absent the follower looks for it again at most every 100 ms; a
//! file that is there but holds no valid value yet (being created, or
//! damaged until the next sync rewrites it) is waited on.
//!
//! Waiting uses inotify on the directory (any change to a file in it wakes
//! the follower), re-checking at least every 250 ms in case an event was
//! missed; where inotify is unavailable it polls every
//! [`FollowOptions::poll_interval`].
//!
//! Async: [`AsyncFollower`] runs the blocking follower on a thread of its
//! own and hands events over a bounded channel and a [`Waker`]; its
//! `poll_next` / `next` work on any executor (no runtime dependency).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::cursor::{
    list_dir, open_segment_file, read_exact_at, read_header, validate, Cursor, CursorMismatch,
    Resume, SegmentStamp,
};
use super::durable::MarkReader;
use super::error::{FrameError, JournalError};
use super::format::{parse_frame, segment_file_name, FrameHeader, ParsedFrame, FRAME_HEADER_LEN};
use super::index::{FileRef, IndexBuilder, IndexUse, SegmentIndex, DEFAULT_INTERVAL};
use super::reader::Record;
use super::segment::Window;
use super::summary::{self, Entry, JournalSummary};
use crate::sync::{Arc, AtomicBool, Ordering};

/// Which records a reader yields. Every bound is inclusive; `None` is no
/// bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordFilter {
    /// Only records with a timestamp at or after this.
    pub since: Option<u64>,
    /// Only records with a timestamp at or before this.
    pub until: Option<u64>,
    /// Only this producer's records.
    pub producer: Option<u32>,
    /// Only records with a sequence number at or above this.
    pub seq_from: Option<u64>,
    /// Only records with a sequence number at or below this.
    pub seq_to: Option<u64>,
}

impl RecordFilter {
    /// Whether a record with these fields passes.
    pub fn matches(&self, producer: u32, seq: u64, timestamp: u64) -> bool {
        self.since.is_none_or(|s| timestamp >= s)
            && self.until.is_none_or(|u| timestamp <= u)
            && self.producer.is_none_or(|p| producer == p)
            && self.seq_from.is_none_or(|f| seq >= f)
            && self.seq_to.is_none_or(|t| seq <= t)
    }

    /// Whether every record passes.
    pub fn is_all(&self) -> bool {
        *self == Self::default()
    }
}

/// Records the follower could not deliver because they were deleted
/// (retention) before it reached them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// First missing segment.
    pub first_segment: u64,
    /// Last missing segment (inclusive); the follower went on in the next.
    pub last_segment: u64,
    /// Journal-global position where the missing bytes start.
    pub from_position: u64,
    /// Journal-global position where reading resumed.
    pub to_position: u64,
    /// The cursor at the start of the segment reading resumed in.
    pub resume: Cursor,
}

/// What a [`Follower`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEvent {
    /// The next record that passes the filter.
    Record(Record),
    /// Records were deleted before the follower reached them.
    Gap(Gap),
}

/// How far a [`Follower`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FollowBound {
    /// Up to the durable position the writer published (see the module
    /// documentation); what was written without a watermark file.
    #[default]
    Durable,
    /// Every complete frame written, synced or not.
    Written,
}

/// How a [`Follower`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowOptions {
    /// Whether to yield only durable records (the default) or every
    /// record written.
    pub bound: FollowBound,
    /// The records to yield.
    pub filter: RecordFilter,
    /// Whether to seek through index files (and write missing ones).
    pub index: IndexUse,
    /// When the cursor's segment was deleted by retention, report a
    /// [`Gap`] and go on with the oldest later segment, instead of failing
    /// with [`CursorMismatch::SegmentDeleted`]. A rewritten segment is
    /// always an error.
    pub resume_past_deleted: bool,
    /// How often to look for new data when inotify is not available.
    pub poll_interval: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            bound: FollowBound::Durable,
            filter: RecordFilter::default(),
            index: IndexUse::Use,
            resume_past_deleted: false,
            poll_interval: Duration::from_millis(10),
        }
    }
}

/// Longest wait on inotify before looking again anyway.
const SAFETY_RECHECK: Duration = Duration::from_millis(250);
/// Bytes read at once, at most.
const READ_CHUNK: usize = 1 << 20;
/// Bytes of the first read in a segment: small, so a seek reads little;
/// each later read doubles up to [`READ_CHUNK`].
const FIRST_READ: usize = 16 << 10;

/// Wakes the follower when something in the directory changes.
#[derive(Debug)]
struct Waiter {
    inotify: Option<OwnedFd>,
    poll_interval: Duration,
}

impl Waiter {
    fn new(dir: &Path, poll_interval: Duration) -> Self {
        use rustix::fs::inotify;
        let inotify = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
            .ok()
            .filter(|fd| {
                let flags = inotify::WatchFlags::MODIFY
                    | inotify::WatchFlags::CLOSE_WRITE
                    | inotify::WatchFlags::CREATE
                    | inotify::WatchFlags::DELETE
                    | inotify::WatchFlags::MOVED_TO
                    | inotify::WatchFlags::MOVED_FROM
                    | inotify::WatchFlags::DELETE_SELF
                    | inotify::WatchFlags::MOVE_SELF;
                inotify::add_watch(fd, dir, flags).is_ok()
            });
        Self {
            inotify,
            poll_interval: poll_interval.max(Duration::from_millis(1)),
        }
    }

    /// Waits until something may have changed, at most `timeout`.
    fn wait(&self, timeout: Duration) {
        match &self.inotify {
            Some(fd) => {
                use rustix::event::{poll, PollFd, PollFlags, Timespec};
                let t = timeout.min(SAFETY_RECHECK);
                let ts = Timespec {
                    tv_sec: t.as_secs() as _,
                    tv_nsec: t.subsec_nanos() as _,
                };
                let mut fds = [PollFd::new(fd, PollFlags::IN)];
                // EINTR or any error: the caller looks again anyway.
                let _ = poll(&mut fds, Some(&ts));
                self.drain();
            }
            None => std::thread::sleep(timeout.min(self.poll_interval)),
        }
    }

    /// Reads the queued events (their content does not matter: any event
    /// means look again).
    fn drain(&self) {
        if let Some(fd) = &self.inotify {
            let mut buf = [0u8; 4096];
            while let Ok(n) = rustix::io::read(fd, &mut buf) {
                if n == 0 {
                    break;
                }
            }
        }
    }
}

/// What lies at the follower's offset.
enum At {
    Frame(ParsedFrame),
    /// Exactly the end of the bytes written so far.
    End,
    /// Part of a frame, or bytes that are not one.
    Incomplete(FrameError),
}

/// The segment being followed.
#[derive(Debug)]
struct Tail {
    number: u64,
    path: PathBuf,
    file: File,
    ino: (u64, u64),
    stamp: SegmentStamp,
    off: u64,
    buf: Vec<u8>,
    buf_start: u64,
    /// Bytes the next read asks for.
    chunk: usize,
    /// The writer is known to have moved past this segment.
    sealed: bool,
    /// The segment after this one, once seen with frames in it.
    next: Option<(u64, SegmentStamp)>,
    /// Builds the index while reading a segment from its start.
    builder: Option<IndexBuilder>,
}

impl Tail {
    fn read_err(&self, e: std::io::Error) -> JournalError {
        JournalError::io("read", &self.path, e)
    }

    fn len(&self) -> Result<u64, JournalError> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| JournalError::io("stat", &self.path, e))
    }

    /// Whether bytes `[off, off + n)` are in the buffer, reading them if
    /// the file holds them.
    fn fill(&mut self, off: u64, n: usize) -> Result<bool, JournalError> {
        let end = off + n as u64;
        if off >= self.buf_start && end <= self.buf_start + self.buf.len() as u64 {
            return Ok(true);
        }
        let len = self.len()?;
        if end > len {
            return Ok(false);
        }
        let want = (n.max(self.chunk) as u64).min(len - off) as usize;
        self.chunk = (self.chunk * 2).min(READ_CHUNK);
        self.buf.resize(want, 0);
        match read_exact_at(&self.file, &mut self.buf, off) {
            Ok(()) => {
                self.buf_start = off;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                self.buf.clear();
                Ok(false)
            }
            Err(e) => {
                self.buf.clear();
                Err(self.read_err(e))
            }
        }
    }

    fn bytes(&self, off: u64, n: usize) -> &[u8] {
        let at = (off - self.buf_start) as usize;
        &self.buf[at..at + n]
    }

    fn at(&mut self) -> Result<At, JournalError> {
        let off = self.off;
        if !self.fill(off, FRAME_HEADER_LEN)? {
            let len = self.len()?;
            return Ok(if len == off {
                At::End
            } else {
                At::Incomplete(FrameError::Truncated {
                    needed: FRAME_HEADER_LEN,
                    available: len.saturating_sub(off) as usize,
                })
            });
        }
        let header =
            FrameHeader::decode(self.bytes(off, FRAME_HEADER_LEN)).expect("32 bytes are there");
        let n = match header.check_len(usize::MAX) {
            Ok(n) => n,
            Err(e) => return Ok(At::Incomplete(e)),
        };
        if !self.fill(off, n)? {
            let available = self.len()?.saturating_sub(off) as usize;
            return Ok(At::Incomplete(FrameError::Truncated {
                needed: n,
                available,
            }));
        }
        Ok(match parse_frame(self.bytes(off, n)) {
            Ok(p) => At::Frame(p),
            Err(e) => At::Incomplete(e),
        })
    }

    /// Whether the frame at `off` is valid when read afresh from the file,
    /// dropping what the buffer holds.
    fn reread_is_frame(&mut self) -> Result<bool, JournalError> {
        self.buf.clear();
        Ok(matches!(self.at()?, At::Frame(_)))
    }

    /// Whether a valid frame starts after the bad bytes at `off`: then they
    /// are damage, not a frame being written.
    fn valid_frame_after(&self) -> Result<bool, JournalError> {
        let len = self.len()?;
        let mut w = Window::new(FileRef(&self.file), len);
        w.resync(self.off)
            .map(|o| o.is_some())
            .map_err(|e| self.read_err(e))
    }

    fn end_position(&self) -> u64 {
        self.stamp
            .base_position
            .saturating_add(self.off - u64::from(self.stamp.header_len))
    }
}

fn dev_ino(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

#[derive(Debug)]
enum State {
    /// Not in a segment yet: start with the oldest one there is.
    Start,
    /// Resume in this segment at this offset (a validated cursor).
    ResumeAt {
        segment: u64,
        offset: u64,
        stamp: SegmentStamp,
    },
    In(Box<Tail>),
    Failed,
}

/// Follows a journal directory: yields its records in order as they land,
/// across rotation, waiting (without spinning) when it has caught up.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use ringlog::journal::{FollowEvent, Follower, FollowOptions, Journal, JournalOptions};
/// let dir = std::env::temp_dir().join(format!("ringlog-doc-follow-{}", std::process::id()));
/// let mut journal = Journal::open(&dir, JournalOptions::default()).unwrap();
/// let mut follower = Follower::open(&dir, FollowOptions::default()).unwrap();
///
/// journal.append(1, 0, 0, b"landed").unwrap();
/// // Yielded once durable: after the sync.
/// journal.sync().unwrap();
/// let deadline = Instant::now() + Duration::from_secs(10);
/// match follower.next_before(Some(deadline)).unwrap() {
///     Some(FollowEvent::Record(r)) => assert_eq!(r.payload, b"landed"),
///     other => panic!("{other:?}"),
/// }
/// // Caught up: waits until the deadline, then says so.
/// let soon = Instant::now() + Duration::from_millis(20);
/// assert!(follower.next_before(Some(soon)).unwrap().is_none());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    options: FollowOptions,
    /// Made the first time the follower has to wait: a follower that never
    /// waits (a seek, a catch-up) never sets up and tears down a watch,
    /// whose close waits for the kernel's grace period.
    waiter: Option<Waiter>,
    state: State,
    cursor: Option<Cursor>,
    pending_gap: Option<Gap>,
    /// The watermark, with [`FollowBound::Durable`].
    mark: Option<MarkReader>,
    /// When an absent watermark file was last looked for.
    mark_looked: Instant,
    /// The journal summary's entry for the first segment to enter, which
    /// holds no match.
    skip_hint: Option<SegmentIndex>,
}

/// How often a missing watermark file is looked for again.
const MARK_RECHECK: Duration = Duration::from_millis(100);

impl Follower {
    /// A follower from the oldest record now in `dir` (which must exist;
    /// it may hold no segment yet).
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the directory cannot be listed.
    pub fn open(dir: impl AsRef<Path>, options: FollowOptions) -> Result<Self, JournalError> {
        let dir = dir.as_ref().to_owned();
        list_dir(&dir)?;
        let mark = (options.bound == FollowBound::Durable).then(|| MarkReader::new(&dir));
        Ok(Self {
            dir,
            options,
            waiter: None,
            state: State::Start,
            cursor: None,
            pending_gap: None,
            mark,
            mark_looked: Instant::now(),
            skip_hint: None,
        })
    }

    /// Whether the frame of segment `segment` ending at byte `end` may be
    /// yielded under the follower's bound.
    fn may_yield(&mut self, segment: u64, end: u64) -> bool {
        let Some(mark) = self.mark.as_mut() else {
            return true;
        };
        if mark.last.is_some_and(|m| m.covers(segment, end)) {
            return true;
        }
        if mark.absent && self.mark_looked.elapsed() < MARK_RECHECK {
            return true;
        }
        mark.refresh();
        if mark.absent {
            self.mark_looked = Instant::now();
            return true;
        }
        mark.last.is_some_and(|m| m.covers(segment, end))
    }

    /// A follower that starts with the last `n` records now in `dir` that
    /// pass the filter (fewer if there are fewer), then yields what lands
    /// after them, like `tail -n N -f`. `n == 0` starts at the end.
    ///
    /// Segments are scanned from the newest back until `n` records are
    /// found, so the cost is that of the segments holding them. Under
    /// [`FollowBound::Durable`] only durable records count (and the end is
    /// the durable end).
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the directory or a segment cannot be read;
    /// a bad segment header.
    pub fn open_last(
        dir: impl AsRef<Path>,
        n: u64,
        options: FollowOptions,
    ) -> Result<Self, JournalError> {
        let mut f = Self::open(dir, options)?;
        let segments = list_dir(&f.dir)?;
        // `None`: no bound; `Some(None)`: a watermark file without a valid
        // value, so nothing is durable yet.
        let bound = f.mark.as_ref().filter(|m| !m.absent).map(|m| m.last);
        let durable = |segment: u64, end: u64| match bound {
            None => true,
            Some(m) => m.is_some_and(|m| m.covers(segment, end)),
        };
        let mut wanted = n;
        for &number in segments.iter().rev() {
            let path = f.dir.join(segment_file_name(number));
            let file = open_segment_file(&path)?;
            let (header, len) = read_header(&file, &path, number)?;
            let hl = u64::from(header.header_len);
            let mut starts = Vec::new();
            let mut end = hl;
            let mut w = Window::new(FileRef(&file), len);
            super::segment::scan(&mut w, hl, true, |off, p, _| {
                let h = p.header;
                let frame_end = off + p.framed_len as u64;
                if !durable(number, frame_end) {
                    return;
                }
                if options.filter.matches(h.producer, h.seq, h.timestamp) {
                    starts.push(off);
                }
                end = frame_end;
            })
            .map_err(|e| JournalError::io("read", &path, e))?;
            let stamp = SegmentStamp::of(&header);
            let found = starts.len() as u64;
            if wanted == 0 || found >= wanted {
                let offset = if wanted == 0 {
                    end
                } else {
                    starts[(found - wanted) as usize]
                };
                f.state = State::ResumeAt {
                    segment: number,
                    offset,
                    stamp,
                };
                return Ok(f);
            }
            wanted -= found;
        }
        // Fewer than `n` in the whole journal: all of them.
        Ok(f)
    }

    /// A follower that yields the records after the one `cursor` was taken
    /// after.
    ///
    /// # Errors
    ///
    /// As [`Reader::from_cursor`](super::Reader::from_cursor); with
    /// [`FollowOptions::resume_past_deleted`] a deleted segment becomes a
    /// [`Gap`] (the first event) instead.
    pub fn from_cursor(
        dir: impl AsRef<Path>,
        cursor: &Cursor,
        options: FollowOptions,
    ) -> Result<Self, JournalError> {
        let mut f = Self::open(dir, options)?;
        match validate(&f.dir, cursor) {
            Ok(Resume::At { segment, offset }) => {
                f.state = State::ResumeAt {
                    segment,
                    offset,
                    stamp: cursor.stamp,
                };
            }
            Ok(Resume::NextSegment { segment, stamp }) => {
                f.state = State::ResumeAt {
                    segment,
                    offset: u64::from(stamp.header_len),
                    stamp,
                };
            }
            Err(JournalError::CursorMismatch {
                reason:
                    CursorMismatch::SegmentDeleted {
                        segment, position, ..
                    },
                ..
            }) if options.resume_past_deleted => {
                let next = list_dir(&f.dir)?.into_iter().find(|&n| n > segment);
                let Some(next) = next else {
                    return Err(JournalError::CursorMismatch {
                        dir: f.dir.clone(),
                        reason: CursorMismatch::SegmentDeleted {
                            segment,
                            position,
                            oldest: None,
                        },
                    });
                };
                let path = f.dir.join(segment_file_name(next));
                let file = open_segment_file(&path)?;
                let (header, _) = read_header(&file, &path, next)?;
                let stamp = SegmentStamp::of(&header);
                let resume = Cursor::segment_start(next, stamp);
                f.pending_gap = Some(Gap {
                    first_segment: segment,
                    last_segment: next - 1,
                    from_position: position,
                    to_position: stamp.base_position,
                    resume,
                });
                f.state = State::ResumeAt {
                    segment: next,
                    offset: u64::from(stamp.header_len),
                    stamp,
                };
            }
            Err(e) => return Err(e),
        }
        f.cursor = Some(*cursor);
        Ok(f)
    }

    /// The cursor after the last record (or gap) yielded; the starting
    /// cursor if none yet, `None` if started from the beginning.
    pub fn cursor(&self) -> Option<&Cursor> {
        self.cursor.as_ref()
    }

    /// Opens segment `number` at `offset` (`None`: at its start, seeking
    /// through the index when the filter allows).
    fn enter(
        &mut self,
        number: u64,
        offset: Option<u64>,
        expect: Option<SegmentStamp>,
    ) -> Result<(), JournalError> {
        let path = self.dir.join(segment_file_name(number));
        let file = open_segment_file(&path)?;
        let (header, len) = read_header(&file, &path, number)?;
        let stamp = SegmentStamp::of(&header);
        if let Some(expect) = expect.filter(|&e| e != stamp) {
            return Err(JournalError::CursorMismatch {
                dir: self.dir.clone(),
                reason: CursorMismatch::SegmentRewritten {
                    segment: number,
                    expected_created: expect.created_unix_nanos,
                    found_created: stamp.created_unix_nanos,
                    expected_base: expect.base_position,
                    found_base: stamp.base_position,
                },
            });
        }
        let meta = file
            .metadata()
            .map_err(|e| JournalError::io("stat", &path, e))?;
        let hl = u64::from(header.header_len);
        let mut tail = Tail {
            number,
            path,
            ino: dev_ino(&meta),
            file,
            stamp,
            off: offset.unwrap_or(hl),
            buf: Vec::new(),
            buf_start: 0,
            chunk: FIRST_READ,
            sealed: false,
            next: None,
            builder: None,
        };
        // The journal summary's entry for this segment, when it says nothing
        // here matches and the segment's header and last frame agree.
        let skip_to = self.skip_hint.take().and_then(|ix| {
            let usable = offset.is_none()
                && ix.segment() == number
                && ix.start_offset(&self.options.filter) == ix.covered_len()
                && ix.matches_segment(number, stamp, &tail.file, len).is_ok();
            usable.then(|| ix.covered_len())
        });
        if let Some(end) = skip_to {
            tail.off = end;
        } else if offset.is_none() && self.options.index != IndexUse::Ignore {
            let filter = self.options.filter;
            // The summary alone often says nothing here matches; else the
            // whole index says where to start.
            let index =
                match SegmentIndex::load_summary_for(&self.dir, number, stamp, &tail.file, len) {
                    Some(summary)
                        if !filter.is_all()
                            && summary.start_offset(&filter) == summary.covered_len() =>
                    {
                        Some(summary)
                    }
                    _ => SegmentIndex::load_for(&self.dir, number, stamp, &tail.file, len),
                };
            match index {
                Some(ix) if !self.options.filter.is_all() => {
                    let start = ix.start_offset(&self.options.filter);
                    tail.off = start;
                    // A hint only: a frame (or the covered end) must be there.
                    let ok = start == ix.covered_len() || matches!(tail.at(), Ok(At::Frame(_)));
                    if !ok {
                        tail.off = hl;
                    }
                }
                Some(_) => {}
                None if self.options.index == IndexUse::Build => {
                    tail.builder = Some(IndexBuilder::new(number, stamp, DEFAULT_INTERVAL));
                }
                None => {}
            }
        }
        self.state = State::In(Box::new(tail));
        Ok(())
    }

    /// After the tail of the current segment: whether the writer moved on,
    /// and to which segment. Marks the tail sealed if so.
    fn next_segment(&mut self) -> Result<Option<(u64, SegmentStamp)>, JournalError> {
        let State::In(tail) = &mut self.state else {
            return Ok(None);
        };
        let next_path = self.dir.join(segment_file_name(tail.number + 1));
        let candidate = if next_path.exists() {
            Some(tail.number + 1)
        } else {
            // Only when the current file is gone can later ones have
            // replaced the next (retention deletes oldest first).
            match std::fs::metadata(&tail.path) {
                Ok(m) if dev_ino(&m) == tail.ino => return Ok(None),
                Ok(_) => {
                    return Err(JournalError::CursorMismatch {
                        dir: self.dir.clone(),
                        reason: CursorMismatch::SegmentRewritten {
                            segment: tail.number,
                            expected_created: tail.stamp.created_unix_nanos,
                            found_created: 0,
                            expected_base: tail.stamp.base_position,
                            found_base: 0,
                        },
                    })
                }
                Err(_) => list_dir(&self.dir)?.into_iter().find(|&n| n > tail.number),
            }
        };
        let Some(next) = candidate else {
            return Ok(None);
        };
        let path = self.dir.join(segment_file_name(next));
        let file = match open_segment_file(&path) {
            Ok(f) => f,
            // Removed between the look and the open: look again later.
            Err(JournalError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        let len = file
            .metadata()
            .map_err(|e| JournalError::io("stat", &path, e))?
            .len();
        let mut probe = [0u8; 2];
        // Not even a header yet: the writer is creating it.
        if len < 16 || read_exact_at(&file, &mut probe, 8).is_err() {
            return Ok(None);
        }
        let (header, len) = read_header(&file, &path, next)?;
        // Frame bytes in the next segment: the writer finished this one.
        if len <= u64::from(header.header_len) {
            return Ok(None);
        }
        tail.sealed = true;
        tail.next = Some((next, SegmentStamp::of(&header)));
        Ok(tail.next)
    }

    /// Finishes a segment read whole with a builder: writes its index.
    fn write_built_index(&self, tail: &mut Tail) {
        if let Some(builder) = tail.builder.take() {
            if builder.covered_len() == tail.off {
                // A hint only: failing to write it changes nothing.
                let ix = builder.finish();
                if ix.write(&self.dir).is_ok() {
                    let entry = tail.file.metadata().ok().and_then(|m| Entry::new(&m, &ix));
                    if let (Some(entry), Ok(listed)) = (entry, list_dir(&self.dir)) {
                        summary::record(&self.dir, entry, &listed);
                    }
                }
            }
        }
    }

    /// The next event if one is there now.
    ///
    /// # Errors
    ///
    /// Corruption (a bad frame followed by valid ones, or a torn tail in a
    /// segment the writer moved past), a segment that is not where it was,
    /// I/O errors. After an error the follower yields nothing more.
    pub fn try_next(&mut self) -> Result<Option<FollowEvent>, JournalError> {
        let result = self.step();
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn step(&mut self) -> Result<Option<FollowEvent>, JournalError> {
        if let Some(gap) = self.pending_gap.take() {
            self.cursor = Some(gap.resume);
            return Ok(Some(FollowEvent::Gap(gap)));
        }
        loop {
            match std::mem::replace(&mut self.state, State::Failed) {
                State::Failed => return Ok(None),
                State::Start => {
                    self.state = State::Start;
                    let segments = list_dir(&self.dir)?;
                    let Some(&first) = segments.first() else {
                        return Ok(None);
                    };
                    // The journal summary may say that the leading segments
                    // hold no match: start at the end of the last of them.
                    let skip = if self.options.index != IndexUse::Ignore
                        && !self.options.filter.is_all()
                    {
                        JournalSummary::load(&self.dir).and_then(|s| {
                            s.skip_to(&self.dir, &segments, &self.options.filter)
                                .map(|(n, e)| (n, e.index.clone()))
                        })
                    } else {
                        None
                    };
                    let start = skip.as_ref().map_or(first, |s| s.0);
                    self.skip_hint = skip.map(|s| s.1);
                    self.enter(start, None, None)?;
                }
                State::ResumeAt {
                    segment,
                    offset,
                    stamp,
                } => {
                    self.state = State::ResumeAt {
                        segment,
                        offset,
                        stamp,
                    };
                    self.enter(segment, Some(offset), Some(stamp))?;
                }
                State::In(mut tail) => match tail.at()? {
                    At::Frame(p)
                        if !self.may_yield(tail.number, tail.off + p.framed_len as u64) =>
                    {
                        // Written, not yet durable: wait for the next sync.
                        self.state = State::In(tail);
                        return Ok(None);
                    }
                    At::Frame(p) => {
                        let off = tail.off;
                        let n = p.framed_len;
                        tail.off += n as u64;
                        if let Some(b) = tail.builder.as_mut() {
                            b.push(
                                off,
                                n as u64,
                                p.header.producer,
                                p.header.seq,
                                p.header.timestamp,
                                p.header.crc,
                            );
                        }
                        let h = p.header;
                        if !self.options.filter.matches(h.producer, h.seq, h.timestamp) {
                            self.state = State::In(tail);
                            continue;
                        }
                        let bytes = tail.bytes(off, n);
                        let record = Record::from_frame(&p, bytes, tail.number, off, tail.stamp);
                        self.cursor = Some(record.cursor());
                        self.state = State::In(tail);
                        return Ok(Some(FollowEvent::Record(record)));
                    }
                    at => {
                        let bad = match at {
                            At::Incomplete(e) => Some(e),
                            _ => None,
                        };
                        if let Some(error) = bad {
                            if tail.sealed || tail.valid_frame_after()? {
                                // A read that raced the writer can see the
                                // frame half written (and the buffer keeps
                                // it), or judge it against a length older
                                // than the frames found after it: read it
                                // again before calling it damage.
                                if tail.reread_is_frame()? {
                                    self.state = State::In(tail);
                                    continue;
                                }
                                return Err(JournalError::Corrupt {
                                    path: tail.path.clone(),
                                    offset: tail.off,
                                    error,
                                });
                            }
                        }
                        if tail.sealed {
                            // The writer moved on and nothing is left here.
                            let end = tail.end_position();
                            let number = tail.number;
                            self.write_built_index(&mut tail);
                            let found = tail.next.take();
                            self.state = State::In(tail);
                            let found = match found {
                                Some(f) => Some(f),
                                None => self.next_segment()?,
                            };
                            let Some((next, stamp)) = found else {
                                return Ok(None);
                            };
                            if next != number + 1 {
                                let resume = Cursor::segment_start(next, stamp);
                                self.pending_gap = Some(Gap {
                                    first_segment: number + 1,
                                    last_segment: next - 1,
                                    from_position: end,
                                    to_position: stamp.base_position,
                                    resume,
                                });
                            } else if stamp.base_position != end {
                                return Err(JournalError::Inconsistent {
                                    path: self.dir.join(segment_file_name(next)),
                                    what: format!(
                                        "starts at position {}, the segment before ends at {end}",
                                        stamp.base_position
                                    ),
                                });
                            }
                            match self.enter(next, None, None) {
                                // Deleted since it was seen: look again.
                                Err(JournalError::Io { source, .. })
                                    if source.kind() == std::io::ErrorKind::NotFound =>
                                {
                                    self.pending_gap = None;
                                    continue;
                                }
                                other => other?,
                            }
                            if let Some(gap) = self.pending_gap.take() {
                                self.cursor = Some(gap.resume);
                                return Ok(Some(FollowEvent::Gap(gap)));
                            }
                            continue;
                        }
                        self.state = State::In(tail);
                        if self.next_segment()?.is_none() {
                            return Ok(None);
                        }
                        // Sealed now: look at this segment's end once more,
                        // its last bytes may have landed since.
                    }
                },
            }
        }
    }

    /// The next event, waiting for one until `deadline` (`None`: for
    /// ever). `Ok(None)` when the deadline passed first.
    ///
    /// # Errors
    ///
    /// As [`try_next`](Self::try_next).
    pub fn next_before(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<FollowEvent>, JournalError> {
        loop {
            if let Some(event) = self.try_next()? {
                return Ok(Some(event));
            }
            if matches!(self.state, State::Failed) {
                return Ok(None);
            }
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(w) if !w.is_zero() => w,
                    _ => return Ok(None),
                },
                None => SAFETY_RECHECK,
            };
            match &self.waiter {
                Some(waiter) => waiter.wait(wait),
                // Watch first, then look again: a change after that look
                // is an event.
                None => self.waiter = Some(Waiter::new(&self.dir, self.options.poll_interval)),
            }
        }
    }

    /// Runs this follower on a thread of its own and returns its async
    /// face. At most `capacity` events wait in between.
    pub fn into_async(self, capacity: usize) -> AsyncFollower {
        AsyncFollower::spawn(self, capacity)
    }
}

impl Iterator for Follower {
    type Item = Result<FollowEvent, JournalError>;

    /// Blocks until the next event; ends after an error.
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_before(None) {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

#[derive(Debug)]
struct Shared {
    waker: Mutex<Option<Waker>>,
    stop: AtomicBool,
}

impl Shared {
    fn wake(&self) {
        let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A [`Follower`] for async code: a thread runs the blocking follower and
/// hands events over; [`poll_next`](Self::poll_next) and
/// [`next`](Self::next) never block the executor. Dropping it stops the
/// thread (within 100 ms).
///
/// # Examples
///
/// ```
/// use ringlog::journal::{FollowEvent, Follower, FollowOptions, Journal, JournalOptions};
/// let dir = std::env::temp_dir().join(format!("ringlog-doc-async-{}", std::process::id()));
/// let mut journal = Journal::open(&dir, JournalOptions::default()).unwrap();
/// journal.append(1, 0, 0, b"async").unwrap();
/// journal.sync().unwrap();
/// let mut follower = Follower::open(&dir, FollowOptions::default()).unwrap().into_async(64);
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let event = rt.block_on(follower.next()).unwrap().unwrap();
/// assert!(matches!(event, FollowEvent::Record(r) if r.payload == b"async"));
/// # drop(follower);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct AsyncFollower {
    rx: Option<Receiver<Result<FollowEvent, JournalError>>>,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AsyncFollower {
    fn spawn(mut follower: Follower, capacity: usize) -> Self {
        let (tx, rx) = sync_channel(capacity.max(1));
        let shared = Arc::new(Shared {
            waker: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let theirs = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            // Relaxed: the flag carries no data; the channel does.
            while !theirs.stop.load(Ordering::Relaxed) {
                let deadline = Instant::now() + Duration::from_millis(100);
                let item = match follower.next_before(Some(deadline)) {
                    Ok(None) => continue,
                    Ok(Some(e)) => Ok(e),
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                if tx.send(item).is_err() {
                    break;
                }
                theirs.wake();
                if failed {
                    break;
                }
            }
            drop(tx);
            theirs.wake();
        });
        Self {
            rx: Some(rx),
            shared,
            thread: Some(thread),
        }
    }

    /// Polls for the next event: `Ready(None)` after an error was yielded.
    pub fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<FollowEvent, JournalError>>> {
        let Some(rx) = self.rx.as_ref() else {
            return Poll::Ready(None);
        };
        match rx.try_recv() {
            Ok(item) => return Poll::Ready(Some(item)),
            Err(TryRecvError::Disconnected) => return Poll::Ready(None),
            Err(TryRecvError::Empty) => {}
        }
        *self.shared.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        // Again, after registering: an event sent in between is not lost.
        match rx.try_recv() {
            Ok(item) => Poll::Ready(Some(item)),
            Err(TryRecvError::Disconnected) => Poll::Ready(None),
            Err(TryRecvError::Empty) => Poll::Pending,
        }
    }

    /// The next event.
    pub async fn next(&mut self) -> Option<Result<FollowEvent, JournalError>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

impl Drop for AsyncFollower {
    fn drop(&mut self) {
        // Relaxed: see the loop; dropping the receiver unblocks a send.
        self.shared.stop.store(true, Ordering::Relaxed);
        self.rx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
