//! The journal writer: appends batches of framed records to the current
//! segment with one `writev` per batch, rotates segments by size, enforces
//! retention, syncs per policy, and rolls a failed append back to the last
//! good frame boundary: all of the batch or nothing
//! ([`Journal::append_frames`]), or the longest prefix of whole frames that
//! reached the file ([`Journal::append_frames_partial`], so a full disk keeps
//! what fits).
//!
//! Writeback of each segment is started every 4 MiB appended
//! (`sync_file_range`, a hint), so a sync finds most of its bytes already
//! on their way to the disk; only `fdatasync` makes data durable.
//!
//! Positions are journal-global byte counts of frame bytes (segment headers
//! excluded), monotonic across rotation and retention: each segment header
//! stores the position of its first frame.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::durable::{DurableMark, MarkWriter};
use super::error::JournalError;
use super::format::{
    frame_into_vec, segment_file_name, walk_frames, SegmentHeader, FORMAT_VERSION,
    SEGMENT_HEADER_LEN,
};
use super::fs::{JournalFile, JournalFs, StdFs};
use super::recovery::{recover_dir, RecoveryMode, RecoveryReport};

/// When the journal calls `fdatasync` by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Only when [`Journal::sync`] is called.
    #[default]
    Never,
    /// After every append.
    EveryBatch,
    /// After an append when at least this many milliseconds passed since
    /// the last sync (checked on append and by [`Journal::sync_if_due`];
    /// there is no background thread).
    EveryMillis(u64),
}

/// How much old data the journal keeps; the oldest whole segments are
/// deleted past either limit. The current segment is never deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Most bytes of segment files to keep.
    pub max_bytes: Option<u64>,
    /// Most segment files to keep.
    pub max_segments: Option<usize>,
}

/// Time-based rotation: a segment holds the records of one UTC minute, hour
/// or day. Unix time counts no leap seconds, so periods are whole multiples
/// of their length since the epoch and their boundaries fall on UTC minutes,
/// hours and midnights.
///
/// The check runs when a batch is appended: the first batch appended in a
/// later period than the one the current segment was created in starts a new
/// segment. Records are cut at batch boundaries, so a segment may end with
/// records stamped a few milliseconds past its boundary; a period with no
/// records leaves no segment; a segment with no records yet is not rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateEvery {
    /// At every UTC minute.
    Minutely,
    /// At every UTC hour.
    Hourly,
    /// At every UTC midnight.
    Daily,
}

impl RotateEvery {
    /// Length of one period in nanoseconds.
    pub fn period_nanos(self) -> u64 {
        const SECOND: u64 = 1_000_000_000;
        match self {
            Self::Minutely => 60 * SECOND,
            Self::Hourly => 3_600 * SECOND,
            Self::Daily => 86_400 * SECOND,
        }
    }

    /// Whether a segment created at `created_unix_nanos` is due for
    /// rotation at `now_unix_nanos`: `now` lies in a later period. A clock
    /// that went backwards never rotates.
    pub fn is_due(self, created_unix_nanos: u64, now_unix_nanos: u64) -> bool {
        let period = self.period_nanos();
        now_unix_nanos / period > created_unix_nanos / period
    }
}

/// How a [`Journal`] is opened and runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    /// A segment is rotated before a frame that would take it past this
    /// many bytes (header included); a segment always holds at least one
    /// frame, so a larger frame gets a segment of its own.
    pub segment_bytes: u64,
    /// When to sync.
    pub sync: SyncPolicy,
    /// Old segments to keep.
    pub retention: Retention,
    /// What recovery does with corruption before the tail.
    pub recovery: RecoveryMode,
    /// Also rotate at UTC time boundaries (`None`: by size only).
    pub rotate: Option<RotateEvery>,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            sync: SyncPolicy::Never,
            retention: Retention::default(),
            recovery: RecoveryMode::Strict,
            rotate: None,
        }
    }
}

/// Rotated-out segments with unsynced data whose files are kept open at
/// most; older ones are closed without syncing (syncing here would put a
/// whole segment's writeback on the write path) and reopened by the next
/// [`Journal::sync`] to `fdatasync` them.
const MAX_UNSYNCED_SEGMENTS: usize = 8;

/// Bytes appended to a segment between two writeback starts
/// ([`JournalFile::start_writeback`]): the disk writes the journal while the
/// next batches are copied into the page cache, instead of all of it inside
/// the next `fdatasync`, which then has little left to wait for. Durability
/// is unchanged: only `fdatasync` makes data durable.
const WRITEBACK_BYTES: u64 = 4 << 20;

/// A rotated-out segment whose data is not yet durable.
#[derive(Debug)]
struct Unsynced<F> {
    number: u64,
    path: PathBuf,
    /// Journal-global position of its end.
    end: u64,
    /// `None` once closed to bound open files.
    file: Option<F>,
}

/// An open segment file.
#[derive(Debug)]
struct OpenSegment<F> {
    number: u64,
    path: PathBuf,
    file: F,
    /// Length of the file up to the last good frame boundary.
    len: u64,
    /// Journal-global position of the first frame.
    base: u64,
    /// File offset up to which writeback has been started.
    writeback_from: u64,
}

impl<F> OpenSegment<F> {
    /// Journal-global position of the end of the last good frame.
    fn end_position(&self) -> u64 {
        self.base + (self.len - SEGMENT_HEADER_LEN as u64)
    }
}

impl<F: JournalFile> OpenSegment<F> {
    /// Starts writeback of the bytes written since the last start, up to the
    /// file length `end`, once they reach [`WRITEBACK_BYTES`] or when `all`
    /// (the segment is being rotated out).
    fn start_writeback(&mut self, end: u64, all: bool) {
        // A rollback may have cut the file below the last start.
        let from = self.writeback_from.min(self.len);
        if end > from && (all || end - from >= WRITEBACK_BYTES) {
            // A hint only: an I/O error it meets is sticky on the file and
            // reported by the `fdatasync` that makes these bytes durable,
            // which is where the journal acts on it.
            let _ = self.file.start_writeback(from, end - from);
            self.writeback_from = end;
        }
    }
}

/// The durable, segmented, checksummed journal: the sink of the pipeline.
///
/// One writer per directory (the caller ensures it). Appends take batches of
/// already-framed records (see [`frame_into`](super::frame_into)) as
/// borrowed slices and write each batch with one `writev`, so ring memory
/// goes to the file without a copy.
///
/// # Examples
///
/// ```
/// use ringlog::journal::{frame_into_vec, Journal, JournalOptions, Reader, SyncPolicy};
/// let dir = std::env::temp_dir().join(format!("ringlog-doc-journal-{}", std::process::id()));
/// let options = JournalOptions { sync: SyncPolicy::EveryBatch, ..Default::default() };
/// let mut journal = Journal::open(&dir, options).unwrap();
///
/// // Producers frame records into their own buffers (or ring memory)...
/// let mut batch = Vec::new();
/// for seq in 0..3 {
///     frame_into_vec(&mut batch, 1, seq, 0, b"event").unwrap();
/// }
/// // ...and the consumer appends whole batches.
/// let end = journal.append_frames(&batch).unwrap();
/// assert_eq!(journal.durable_position(), end);
/// drop(journal);
///
/// let records: Vec<_> = Reader::open(&dir).unwrap().collect::<Result<_, _>>().unwrap();
/// assert_eq!(records.len(), 3);
/// assert_eq!(records[2].seq, 2);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct Journal<Fs: JournalFs = StdFs> {
    fs: Fs,
    dir: PathBuf,
    options: JournalOptions,
    current: OpenSegment<Fs::File>,
    /// Rotated-out segments whose data is not yet durable, oldest first.
    unsynced: VecDeque<Unsynced<Fs::File>>,
    /// Every segment before `current`: `(number, file bytes)`, oldest first.
    older: VecDeque<(u64, u64)>,
    /// Journal-global position after the last appended frame.
    position: u64,
    /// Everything before this position is durable.
    durable: u64,
    last_sync: Instant,
    /// Syncs that made something durable, whoever asked for them (the
    /// caller, or the policy inside an append).
    syncs: u64,
    /// How long the latest of them took.
    last_sync_took: Duration,
    /// The current file may hold bytes past `current.len` from a failed
    /// append whose rollback failed; cut them before the next write.
    dirty_tail: bool,
    /// A segment was created since the directory was last synced: its
    /// directory entry (and header) become durable with the next sync.
    dir_dirty: bool,
    poisoned: bool,
    scratch: Vec<u8>,
    report: RecoveryReport,
    retention_error: Option<JournalError>,
    /// Unix nanoseconds (UTC) that time rotation reads.
    clock: fn() -> u64,
    /// When the current segment was created, by `clock` (from its header
    /// after a reopen): what [`RotateEvery::is_due`] compares against.
    current_created: u64,
    /// Where each sync publishes the durable position for followers.
    mark: MarkWriter,
    /// The current segment holds bytes a `Skip` recovery left in place: the
    /// next append starts a new segment, so no appended byte lands behind
    /// them (damaged bytes can hold the start of a frame that later appends
    /// would complete, and a resyncing reader would take it).
    damaged_tail: bool,
}

impl Journal<StdFs> {
    /// Opens (creating if needed) the journal in `dir` on the real file
    /// system, recovering the last segment (see
    /// [`recovery_report`](Self::recovery_report)).
    ///
    /// # Errors
    ///
    /// I/O errors with the path; [`JournalError::Corrupt`] for corruption
    /// before the tail in [`RecoveryMode::Strict`];
    /// [`JournalError::BadHeader`] for a last segment with a bad header.
    pub fn open(dir: impl AsRef<Path>, options: JournalOptions) -> Result<Self, JournalError> {
        Self::open_with(StdFs, dir, options)
    }
}

fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Most slices handed to one `writev` (Linux `IOV_MAX`).
const MAX_IOVECS: usize = 1024;

/// Writes all of `pieces` with as few `writev` calls as the kernel allows,
/// looping over short writes. On error, also says how many bytes reached
/// the file before it (a short write followed by `ENOSPC` keeps a prefix).
fn write_all_pieces<F: JournalFile>(
    file: &mut F,
    pieces: &[&[u8]],
) -> Result<(), (u64, std::io::Error)> {
    let mut rest: Vec<&[u8]> = pieces.iter().copied().filter(|p| !p.is_empty()).collect();
    let mut first = 0;
    let mut written = 0u64;
    let mut iov = Vec::with_capacity(rest.len().min(MAX_IOVECS));
    while first < rest.len() {
        iov.clear();
        iov.extend(
            rest[first..]
                .iter()
                .take(MAX_IOVECS)
                .map(|p| IoSlice::new(p)),
        );
        match file.writev(&iov) {
            Ok(0) => return Err((written, std::io::ErrorKind::WriteZero.into())),
            Ok(mut n) => {
                written += n as u64;
                while first < rest.len() && n >= rest[first].len() {
                    n -= rest[first].len();
                    first += 1;
                }
                if n > 0 {
                    rest[first] = &rest[first][n..];
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((written, e)),
        }
    }
    Ok(())
}

/// Bytes of the whole frames of `pieces` (each a sequence of whole frames)
/// that lie within their first `written` bytes.
fn whole_frames_within(pieces: &[&[u8]], written: u64) -> u64 {
    let mut kept = 0u64;
    let mut base = 0u64;
    for piece in pieces {
        let mut stop = false;
        // The pieces were walked by `plan`, so they are whole frames.
        let _ = walk_frames(piece, |off, n| {
            let end = base + (off + n) as u64;
            if !stop && end <= written {
                kept = end;
            } else {
                stop = true;
            }
        });
        base += piece.len() as u64;
        if base > written {
            break;
        }
    }
    kept
}

/// Why [`Journal::append_frames_partial`] stopped, and how much of the
/// batch it kept.
#[derive(Debug, thiserror::Error)]
#[error("append stopped after {appended} bytes of whole frames of the batch")]
pub struct PartialAppendError {
    /// Bytes at the start of the batch, always whole frames, that are now
    /// in the journal (appended, not yet necessarily durable). The caller
    /// appends the rest of the batch, from this offset, later.
    pub appended: usize,
    /// What stopped the append.
    #[source]
    pub error: JournalError,
}

impl PartialAppendError {
    /// The journal error that stopped the append.
    pub fn into_error(self) -> JournalError {
        self.error
    }
}

/// The part of a batch that goes to one segment.
#[derive(Debug, Default)]
struct Chunk<'a> {
    pieces: Vec<&'a [u8]>,
    bytes: u64,
}

impl<Fs: JournalFs> Journal<Fs> {
    /// Opens (creating if needed) the journal in `dir` through the file
    /// layer `fs` (a [`FaultyFs`](super::FaultyFs) in tests).
    ///
    /// # Errors
    ///
    /// As [`Journal::open`].
    pub fn open_with(
        fs: Fs,
        dir: impl AsRef<Path>,
        options: JournalOptions,
    ) -> Result<Self, JournalError> {
        let dir = dir.as_ref().to_owned();
        fs.create_dir_all(&dir)
            .map_err(|e| JournalError::io("create directory", &dir, e))?;
        let recovery = recover_dir(&fs, &dir, options.recovery, true)?;
        let mut report = recovery.report;
        let mut older = VecDeque::new();
        let mut current_created = now_unix_nanos();
        let current = if let Some(last) = recovery.last {
            for &n in &recovery.older {
                let path = dir.join(segment_file_name(n));
                let mut f = fs
                    .open_rw(&path)
                    .map_err(|e| JournalError::io("open", &path, e))?;
                let len = f
                    .file_len()
                    .map_err(|e| JournalError::io("stat", &path, e))?;
                f.fdatasync()
                    .map_err(|e| JournalError::io("fdatasync", &path, e))?;
                older.push_back((n, len));
            }
            current_created = last.found.header.created_unix_nanos;
            OpenSegment {
                number: last.number,
                path: last.path,
                file: last.file,
                len: last.found.valid_len,
                base: last.found.header.base_position,
                writeback_from: last.found.valid_len,
            }
        } else {
            create_segment(&fs, &dir, recovery.first_number, 0, true)?
        };
        let position = current.end_position();
        report.position = position;
        let damaged_tail = report.skipped.iter().any(|r| r.path == current.path);
        // Recovery left what is there durable: publish it.
        let mut mark = MarkWriter::open(&dir);
        mark.publish(DurableMark {
            segment: current.number,
            offset: current.len,
            position,
        });
        Ok(Self {
            fs,
            dir,
            options,
            current,
            unsynced: VecDeque::new(),
            older,
            position,
            durable: position,
            last_sync: Instant::now(),
            syncs: 0,
            last_sync_took: Duration::ZERO,
            dirty_tail: false,
            dir_dirty: false,
            poisoned: false,
            scratch: Vec::new(),
            report,
            retention_error: None,
            clock: now_unix_nanos,
            current_created,
            mark,
            damaged_tail,
        })
    }

    /// Whether an earlier failure (a failed sync, or a failed rollback that
    /// could not be repaired) made the journal unusable: every later call
    /// returns [`JournalError::Poisoned`]; reopen it to recover.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Replaces the clock that [`RotateEvery`] rotation reads (Unix
    /// nanoseconds, UTC; the system clock by default), so that tests and
    /// simulations can move time. Segments rotated from then on count as
    /// created at `clock()`.
    pub fn set_clock(&mut self, clock: fn() -> u64) {
        self.clock = clock;
    }

    /// What recovery found and did when this journal was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Journal-global byte position after the last appended frame.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Everything before this journal-global byte position is durable.
    pub fn durable_position(&self) -> u64 {
        self.durable
    }

    /// How many syncs made data durable so far, including those the
    /// [`SyncPolicy`] ran inside an append. With
    /// [`last_sync_duration`](Self::last_sync_duration) a caller can time
    /// its appends and syncs apart.
    pub fn sync_count(&self) -> u64 {
        self.syncs
    }

    /// How long the latest counted sync took (zero before the first).
    pub fn last_sync_duration(&self) -> Duration {
        self.last_sync_took
    }

    /// Number of the segment being appended to.
    pub fn current_segment(&self) -> u64 {
        self.current.number
    }

    /// The last failure to delete a segment for retention, if any (the
    /// append that triggered it succeeded; deletion is retried on the next
    /// rotation).
    pub fn take_retention_error(&mut self) -> Option<JournalError> {
        self.retention_error.take()
    }

    /// Frames one record into an internal buffer and appends it.
    ///
    /// # Errors
    ///
    /// As [`append_frames`](Self::append_frames), and
    /// [`JournalError::PayloadTooLarge`].
    pub fn append(
        &mut self,
        producer: u32,
        seq: u64,
        timestamp: u64,
        payload: &[u8],
    ) -> Result<u64, JournalError> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let result = frame_into_vec(&mut scratch, producer, seq, timestamp, payload)
            .and_then(|_| self.append_pieces(&[&scratch]));
        self.scratch = scratch;
        result
    }

    /// Appends a batch of whole frames (as made by
    /// [`frame_into`](super::frame_into)) with one `write`, splitting it at
    /// frame boundaries if it crosses a segment rotation. Returns the
    /// journal-global position after the batch.
    ///
    /// The frame headers are walked (cheap) to find frame boundaries; the
    /// CRCs are checked only in debug builds.
    ///
    /// All or nothing: on error nothing of the batch is in the journal
    /// (the files are cut back to the last good frame boundary) and the
    /// same batch can be appended again, e.g. after
    /// [`JournalError::NoSpace`] once space is freed. The one exception is
    /// a sync the policy runs after a successful write: its failure is
    /// returned although the batch was written (and poisons the journal);
    /// [`durable_position`](Self::durable_position) tells what is safe.
    ///
    /// # Errors
    ///
    /// [`JournalError::InvalidBatch`] if `frames` is not a sequence of
    /// whole frames; [`JournalError::NoSpace`], [`JournalError::DeviceIo`],
    /// [`JournalError::Io`] with the path; [`JournalError::Poisoned`] after
    /// a failed sync.
    pub fn append_frames(&mut self, frames: &[u8]) -> Result<u64, JournalError> {
        self.append_pieces(&[frames])
    }

    /// [`append_frames`](Self::append_frames) for a batch in several slices
    /// (e.g. the two halves of a wrapped ring), written with one `writev`.
    /// Each slice holds whole frames.
    ///
    /// # Errors
    ///
    /// As [`append_frames`](Self::append_frames).
    pub fn append_frames_vectored(&mut self, slices: &[IoSlice<'_>]) -> Result<u64, JournalError> {
        let pieces: Vec<&[u8]> = slices.iter().map(|s| &**s).collect();
        self.append_pieces(&pieces)
    }

    /// [`append_frames_vectored`](Self::append_frames_vectored) that keeps
    /// what fits: on a failed write (a full disk) the longest prefix of
    /// whole frames that reached the files stays in the journal, cut back to
    /// a frame boundary, and the error says how many bytes of the batch that
    /// is. The caller appends the rest, from that offset, once the error is
    /// gone; nothing is written twice and no torn frame is left behind.
    ///
    /// The kept prefix is appended, not yet durable: it becomes durable with
    /// the next [`sync`](Self::sync), like any append. Invalid batches are
    /// refused whole (`appended` 0), and a failed sync poisons the journal
    /// as in [`append_frames`](Self::append_frames) (the batch was written).
    ///
    /// # Errors
    ///
    /// [`PartialAppendError`] with the bytes kept and the cause, as
    /// [`append_frames`](Self::append_frames).
    pub fn append_frames_partial(
        &mut self,
        slices: &[IoSlice<'_>],
    ) -> Result<u64, PartialAppendError> {
        let pieces: Vec<&[u8]> = slices.iter().map(|s| &**s).collect();
        self.append_pieces_with(&pieces, true)
    }

    fn check_usable(&mut self) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned {
                durable: self.durable,
            });
        }
        if self.dirty_tail {
            let seg = &mut self.current;
            seg.file
                .truncate_to(seg.len)
                .map_err(|e| JournalError::io("truncate", &seg.path, e))?;
            self.dirty_tail = false;
        }
        Ok(())
    }

    /// Splits the batch into per-segment chunks at frame boundaries.
    fn plan<'a>(&self, pieces: &[&'a [u8]]) -> Result<Vec<Chunk<'a>>, JournalError> {
        let limit = self.options.segment_bytes;
        let empty_len = SEGMENT_HEADER_LEN as u64;
        let mut chunks = vec![Chunk::default()];
        let mut seg_len = self.current.len;
        // Time rotation cuts before the batch's first frame.
        let mut rotate_now = self.damaged_tail
            || self
                .options
                .rotate
                .is_some_and(|every| every.is_due(self.current_created, (self.clock)()));
        let mut batch_off = 0usize;
        for &piece in pieces {
            // Start of the not-yet-assigned part of `piece`.
            let mut from = 0usize;
            let mut cut_points = Vec::new();
            walk_frames(piece, |off, n| {
                let due = std::mem::take(&mut rotate_now);
                if seg_len > empty_len && (seg_len + n as u64 > limit || due) {
                    cut_points.push(off);
                    seg_len = empty_len;
                }
                seg_len += n as u64;
            })
            .map_err(|(off, error)| JournalError::InvalidBatch {
                offset: batch_off + off,
                error,
            })?;
            for cut in cut_points {
                let chunk = chunks.last_mut().expect("chunks is never empty");
                chunk.pieces.push(&piece[from..cut]);
                chunk.bytes += (cut - from) as u64;
                chunks.push(Chunk::default());
                from = cut;
            }
            let chunk = chunks.last_mut().expect("chunks is never empty");
            chunk.pieces.push(&piece[from..]);
            chunk.bytes += (piece.len() - from) as u64;
            batch_off += piece.len();
        }
        Ok(chunks)
    }

    fn append_pieces(&mut self, pieces: &[&[u8]]) -> Result<u64, JournalError> {
        self.append_pieces_with(pieces, false)
            .map_err(PartialAppendError::into_error)
    }

    /// Appends `pieces`. All or nothing unless `partial`: then a failure
    /// keeps the longest prefix of whole frames that reached the files
    /// (and the segments it needs), cut back to a frame boundary.
    fn append_pieces_with(
        &mut self,
        pieces: &[&[u8]],
        partial: bool,
    ) -> Result<u64, PartialAppendError> {
        let nothing = |error| PartialAppendError { appended: 0, error };
        self.check_usable().map_err(nothing)?;
        let chunks = self.plan(pieces).map_err(nothing)?;
        let total: u64 = chunks.iter().map(|c| c.bytes).sum();
        if total == 0 {
            return Ok(self.position);
        }
        // Create the segments this batch rotates into before writing, so a
        // failure leaves nothing half done. In partial mode a failure to
        // create one still lets the chunks before it be written.
        let mut fresh: Vec<OpenSegment<Fs::File>> = Vec::new();
        let mut failure: Option<JournalError> = None;
        let mut base = self.position + chunks[0].bytes;
        for (i, chunk) in chunks.iter().enumerate().skip(1) {
            let number = self.current.number + i as u64;
            match create_segment(&self.fs, &self.dir, number, base, false) {
                Ok(seg) => fresh.push(seg),
                Err(e) => {
                    if !partial {
                        self.discard_fresh(fresh);
                        return Err(nothing(e));
                    }
                    failure = Some(e);
                    break;
                }
            }
            base += chunk.bytes;
        }
        // Write the chunks; `kept[i]` is what chunk i leaves in its segment.
        let usable = 1 + fresh.len();
        let mut kept: Vec<u64> = Vec::with_capacity(usable);
        for (i, chunk) in chunks.iter().enumerate().take(usable) {
            let seg = if i == 0 {
                &mut self.current
            } else {
                &mut fresh[i - 1]
            };
            match write_all_pieces(&mut seg.file, &chunk.pieces) {
                Ok(()) => {
                    // Every chunk but the last fills a segment that this
                    // batch rotates out.
                    seg.start_writeback(seg.len + chunk.bytes, i + 1 < chunks.len());
                    kept.push(chunk.bytes);
                }
                Err((written, e)) => {
                    failure = Some(JournalError::io("write", &seg.path, e));
                    kept.push(if partial {
                        whole_frames_within(&chunk.pieces, written)
                    } else {
                        0
                    });
                    break;
                }
            }
        }
        if let Some(err) = failure {
            if !partial {
                // Roll back to the last good frame boundary.
                let seg = &mut self.current;
                if seg.file.truncate_to(seg.len).is_err() {
                    self.dirty_tail = true;
                }
                self.discard_fresh(fresh);
                return Err(nothing(err));
            }
            // Keep the whole frames that reached the files; a fresh segment
            // that got none of them is removed.
            while kept.len() > 1 && kept.last() == Some(&0) {
                kept.pop();
            }
            let keep_segments = kept.len() - 1;
            let dropped = fresh.split_off(keep_segments);
            self.discard_fresh(dropped);
            let appended = self.commit(fresh, &kept);
            // Cut whatever of a frame got past the kept prefix.
            let seg = &mut self.current;
            if seg.file.truncate_to(seg.len).is_err() {
                self.dirty_tail = true;
            }
            if keep_segments > 0 {
                if let Err(error) = self.after_rotation() {
                    return Err(PartialAppendError {
                        appended: appended as usize,
                        error,
                    });
                }
            }
            return Err(PartialAppendError {
                appended: appended as usize,
                error: err,
            });
        }
        let appended = self.commit(fresh, &kept);
        let done = |error| PartialAppendError {
            appended: appended as usize,
            error,
        };
        if chunks.len() > 1 {
            self.after_rotation().map_err(done)?;
        }
        match self.options.sync {
            SyncPolicy::Never => {}
            SyncPolicy::EveryBatch => {
                self.sync().map_err(done)?;
            }
            SyncPolicy::EveryMillis(_) => {
                self.sync_if_due().map_err(done)?;
            }
        }
        Ok(self.position)
    }

    /// Adopts what was written: `kept[0]` bytes in the current segment,
    /// `kept[i]` in `fresh[i - 1]` (which become current in turn). Returns
    /// the bytes appended.
    fn commit(&mut self, fresh: Vec<OpenSegment<Fs::File>>, kept: &[u64]) -> u64 {
        self.current.len += kept[0];
        self.dir_dirty |= !fresh.is_empty();
        for (mut seg, &bytes) in fresh.into_iter().zip(&kept[1..]) {
            seg.len += bytes;
            let old = std::mem::replace(&mut self.current, seg);
            self.older.push_back((old.number, old.len));
            if old.end_position() > self.durable {
                self.unsynced.push_back(Unsynced {
                    number: old.number,
                    end: old.end_position(),
                    path: old.path,
                    file: Some(old.file),
                });
            }
        }
        let appended: u64 = kept.iter().sum();
        self.position += appended;
        appended
    }

    /// Removes segments created for a batch that failed. A segment that
    /// cannot be removed may hold frames of the failed batch: poison.
    fn discard_fresh(&mut self, fresh: Vec<OpenSegment<Fs::File>>) {
        for seg in fresh {
            let path = seg.path.clone();
            drop(seg);
            if self.fs.remove_file(&path).is_err() {
                self.poisoned = true;
            }
        }
    }

    /// Bounds the open unsynced segments and applies retention.
    fn after_rotation(&mut self) -> Result<(), JournalError> {
        self.current_created = (self.clock)();
        self.damaged_tail = false;
        let open = self.unsynced.iter().filter(|u| u.file.is_some()).count();
        for u in self
            .unsynced
            .iter_mut()
            .take(open.saturating_sub(MAX_UNSYNCED_SEGMENTS))
        {
            u.file = None;
        }
        let keep = self.options.retention;
        let mut bytes: u64 = self.older.iter().map(|s| s.1).sum::<u64>() + self.current.len;
        while let Some(&(number, len)) = self.older.front() {
            let too_many = keep.max_segments.is_some_and(|m| self.older.len() + 1 > m);
            let too_big = keep.max_bytes.is_some_and(|m| bytes > m);
            if !(too_many || too_big) {
                break;
            }
            let path = self.dir.join(segment_file_name(number));
            if let Err(e) = self.fs.remove_file(&path) {
                self.retention_error = Some(JournalError::io("remove", &path, e));
                break;
            }
            // Its sparse index goes with it. An index that is left behind
            // (this removal failed, or a crash came first) is only a
            // stale hint, which readers ignore and `rebuild_index` removes.
            let _ = self
                .fs
                .remove_file(&self.dir.join(super::index::index_file_name(number)));
            // And its entry in the journal summary (a hint as well).
            super::summary::forget_through(&self.dir, number);
            self.unsynced.retain(|s| s.number != number);
            self.older.pop_front();
            bytes -= len;
        }
        Ok(())
    }

    fn sync_oldest_unsynced(&mut self) -> Result<(), JournalError> {
        if let Some(seg) = self.unsynced.front_mut() {
            let synced = match seg.file.as_mut() {
                Some(file) => file.fdatasync(),
                // Closed earlier: fsync works on the file, not the handle.
                None => self.fs.open_rw(&seg.path).and_then(|mut f| f.fdatasync()),
            };
            if let Err(e) = synced {
                self.poisoned = true;
                return Err(JournalError::io("fdatasync", &seg.path, e));
            }
            let seg_end = seg.end;
            self.sync_dir_if_dirty()?;
            self.durable = self.durable.max(seg_end);
            self.unsynced.pop_front();
        }
        Ok(())
    }

    /// Makes everything appended so far durable (`fdatasync` of every
    /// segment with unsynced data, oldest first) and returns the durable
    /// journal-global position, which never decreases.
    ///
    /// # Errors
    ///
    /// A failed `fdatasync` ([`JournalError::DeviceIo`] for `EIO`) poisons
    /// the journal: the kernel may have dropped the unsynced pages, so the
    /// data past [`durable_position`](Self::durable_position) is in doubt.
    /// Later calls return [`JournalError::Poisoned`]; reopen the journal to
    /// recover and re-append what the caller still holds.
    pub fn sync(&mut self) -> Result<u64, JournalError> {
        self.check_usable()?;
        if self.durable == self.position {
            return Ok(self.durable);
        }
        let start = Instant::now();
        while !self.unsynced.is_empty() {
            self.sync_oldest_unsynced()?;
        }
        let seg = &mut self.current;
        if let Err(e) = seg.file.fdatasync() {
            self.poisoned = true;
            return Err(JournalError::io("fdatasync", &seg.path, e));
        }
        self.sync_dir_if_dirty()?;
        self.durable = self.position;
        self.mark.publish(DurableMark {
            segment: self.current.number,
            offset: self.current.len,
            position: self.position,
        });
        self.last_sync = Instant::now();
        self.syncs += 1;
        self.last_sync_took = self.last_sync - start;
        Ok(self.durable)
    }

    /// Makes the directory entries of segments created since the last
    /// sync durable.
    fn sync_dir_if_dirty(&mut self) -> Result<(), JournalError> {
        if self.dir_dirty {
            if let Err(e) = self.fs.sync_dir(&self.dir) {
                self.poisoned = true;
                return Err(JournalError::io("sync directory", &self.dir, e));
            }
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// Syncs if the policy is [`SyncPolicy::EveryMillis`] and the interval
    /// has passed; returns the durable position. Call it when idle.
    ///
    /// # Errors
    ///
    /// As [`sync`](Self::sync).
    pub fn sync_if_due(&mut self) -> Result<u64, JournalError> {
        if let SyncPolicy::EveryMillis(ms) = self.options.sync {
            if self.last_sync.elapsed() >= Duration::from_millis(ms) {
                return self.sync();
            }
        }
        Ok(self.durable)
    }
}

/// Creates segment `number`: header written under a temporary name, then
/// renamed into place. With `sync_now` the header is synced before the
/// rename and the directory after it; otherwise both wait for the next
/// [`Journal::sync`] (so rotation costs no `fsync` on the write path), and
/// a crash before it can leave an empty or zeroed newest segment, which
/// recovery removes. Cleans up on error.
fn create_segment<Fs: JournalFs>(
    fs: &Fs,
    dir: &Path,
    number: u64,
    base_position: u64,
    sync_now: bool,
) -> Result<OpenSegment<Fs::File>, JournalError> {
    let path = dir.join(segment_file_name(number));
    let tmp = dir.join(format!("{}.tmp", segment_file_name(number)));
    let header = SegmentHeader {
        version: FORMAT_VERSION,
        header_len: SEGMENT_HEADER_LEN as u16,
        flags: 0,
        segment: number,
        created_unix_nanos: now_unix_nanos(),
        base_position,
    }
    .encode();
    let mut file = fs
        .create_new(&tmp)
        .map_err(|e| JournalError::io("create", &tmp, e))?;
    let result = write_all_pieces(&mut file, &[&header])
        .map_err(|(_, e)| JournalError::io("write", &tmp, e))
        .and_then(|()| {
            if sync_now {
                file.fdatasync()
                    .map_err(|e| JournalError::io("fdatasync", &tmp, e))
            } else {
                Ok(())
            }
        })
        .and_then(|()| {
            fs.rename(&tmp, &path)
                .map_err(|e| JournalError::io("rename", &tmp, e))
        });
    if let Err(e) = result {
        drop(file);
        let _ = fs.remove_file(&tmp);
        return Err(e);
    }
    if sync_now {
        if let Err(e) = fs.sync_dir(dir) {
            drop(file);
            let _ = fs.remove_file(&path);
            return Err(JournalError::io("sync directory", dir, e));
        }
    }
    Ok(OpenSegment {
        number,
        path,
        file,
        len: SEGMENT_HEADER_LEN as u64,
        base: base_position,
        writeback_from: 0,
    })
}

#[cfg(all(test, not(loom)))]
mod rotate_tests {
    use super::*;
    use crate::sync::{AtomicU64, Ordering};

    const MIN: u64 = 60_000_000_000;
    /// 2026-12-01T10:00:00Z.
    const T0: u64 = 1_796_119_200_000_000_000;

    #[test]
    fn rotation_is_due_only_in_a_later_utc_period() {
        let every = RotateEvery::Minutely;
        assert!(!every.is_due(T0, T0));
        assert!(!every.is_due(T0, T0 + MIN - 1));
        assert!(every.is_due(T0, T0 + MIN));
        // Created late in a minute: the next minute's start is due.
        assert!(every.is_due(T0 + MIN - 1, T0 + MIN));
        assert!(!every.is_due(T0 + MIN, T0 + MIN + 59 * 1_000_000_000));
        // A clock that went backwards never rotates.
        assert!(!every.is_due(T0 + 5 * MIN, T0));
        assert!(!RotateEvery::Hourly.is_due(T0, T0 + 59 * MIN));
        assert!(RotateEvery::Hourly.is_due(T0 + 59 * MIN, T0 + 60 * MIN));
        // T0 is 10:00 UTC: the day ends 14 hours later, at midnight UTC.
        assert!(!RotateEvery::Daily.is_due(T0, T0 + 14 * 60 * MIN - 1));
        assert!(RotateEvery::Daily.is_due(T0, T0 + 14 * 60 * MIN));
    }

    static NOW: AtomicU64 = AtomicU64::new(T0);

    fn test_clock() -> u64 {
        NOW.load(Ordering::Relaxed)
    }

    #[test]
    #[cfg_attr(miri, ignore = "file I/O")]
    fn a_batch_in_a_later_minute_starts_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        let options = JournalOptions {
            rotate: Some(RotateEvery::Minutely),
            ..Default::default()
        };
        let mut j = Journal::open(dir.path(), options).unwrap();
        j.set_clock(test_clock);
        // The segment was created by the system clock: say it was at T0.
        j.current_created = T0;
        let base = j.current_segment();
        NOW.store(T0, Ordering::Relaxed);
        j.append(0, 0, 0, b"a").unwrap();
        NOW.store(T0 + MIN - 1, Ordering::Relaxed);
        j.append(0, 1, 0, b"b").unwrap();
        assert_eq!(j.current_segment(), base, "same minute, same segment");
        NOW.store(T0 + MIN, Ordering::Relaxed);
        j.append(0, 2, 0, b"c").unwrap();
        assert_eq!(j.current_segment(), base + 1, "next minute, next segment");
        j.append(0, 3, 0, b"d").unwrap();
        assert_eq!(j.current_segment(), base + 1);
        NOW.store(T0 + 3 * MIN + 7, Ordering::Relaxed);
        j.append(0, 4, 0, b"e").unwrap();
        assert_eq!(j.current_segment(), base + 2);
        drop(j);
        let records: Vec<_> = crate::journal::Reader::open(dir.path())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (0..5).collect::<Vec<_>>());
        assert!(crate::journal::verify(dir.path()).unwrap().is_clean());
    }
}
