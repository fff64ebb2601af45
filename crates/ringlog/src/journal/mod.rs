//! Layer 5: the durable journal — segment files of checksummed, framed
//! records; the sink that persists what the queues carry.
//!
//! The format (`docs/journal-format.md`) is designed so that a producer can
//! build a record frame directly in ring memory: a frame is self-delimiting,
//! 8-byte aligned, little endian, and its CRC-32C covers the length, every
//! other header field, the payload and the padding. The consumer then hands
//! whole ring slices to [`Journal::append_frames`] /
//! [`Journal::append_frames_vectored`], which write them with one `writev`
//! and no per-record copy or checksum.
//!
//! Files, one concept each:
//!
//! | file | what it is |
//! |---|---|
//! | `format.rs` | frame and segment header layout, [`frame_into`], [`framed_len`], [`parse_frame`] |
//! | `error.rs` | [`JournalError`], [`FrameError`] |
//! | `fs.rs` | the injectable file layer: [`JournalFs`], [`JournalFile`], [`StdFs`], [`FaultyFs`] |
//! | `crc.rs` | CRC-32C of several frames side by side, for the reader's verification |
//! | `segment.rs` | bounded positional reads, the frame scan, resynchronisation after damage |
//! | `writer.rs` | [`Journal`]: append, rotation, retention, [`SyncPolicy`], rollback of failed appends |
//! | `recovery.rs` | [`RecoveryMode`], [`RecoveryReport`], [`plan_recovery`]: removal of interrupted creations and torn-tail cut on open, and its dry run |
//! | `reader.rs` | [`Reader`], [`Record`]: verified iteration across segments, checking that they follow one another |
//! | `verify.rs` | [`verify`], [`VerifyReport`], [`VerifyStatus`]: structure, per-producer contiguity, damaged ranges, clean / torn tail / damaged |
//! | `cursor.rs` | [`Cursor`]: a validated position after a record, [`Reader::from_cursor`], cursor files |
//! | `durable.rs` | [`DurableMark`]: the durable watermark file the writer publishes after each sync and followers bound themselves by |
//! | `follow.rs` | [`Follower`], [`AsyncFollower`], [`RecordFilter`]: records as they land, gaps |
//! | `time.rs` | [`write_utc_timestamp`]: record timestamps as RFC 3339 UTC text |
//! | `index.rs` | [`SegmentIndex`], [`rebuild_index`]: the sparse `.rlx` index beside each segment |
//! | `summary.rs` | the journal summary `summary.rls` ([`SUMMARY_FILE_NAME`]): every indexed segment's ranges and file identity, so a seek skips segments without opening them |
//!
//! # Examples
//!
//! ```
//! use ringlog::journal::{verify, Journal, JournalOptions, Reader, SyncPolicy};
//! let dir = std::env::temp_dir().join(format!("ringlog-doc-mod-{}", std::process::id()));
//! let options = JournalOptions { sync: SyncPolicy::EveryBatch, ..Default::default() };
//! let mut journal = Journal::open(&dir, options).unwrap();
//! journal.append(1, 0, 0, b"hello").unwrap();
//! drop(journal);
//!
//! // Reopening recovers (nothing to do here) and appends after the last record.
//! let mut journal = Journal::open(&dir, options).unwrap();
//! assert!(journal.recovery_report().is_clean());
//! journal.append(1, 1, 0, b"again").unwrap();
//!
//! let payloads: Vec<Vec<u8>> = Reader::open(&dir).unwrap().map(|r| r.unwrap().payload).collect();
//! assert_eq!(payloads, [b"hello".to_vec(), b"again".to_vec()]);
//! assert!(verify(&dir).unwrap().is_clean());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

mod crc;
mod cursor;
mod durable;
mod error;
mod follow;
mod format;
mod fs;
mod index;
mod reader;
mod recovery;
mod segment;
mod summary;
mod time;
mod verify;
mod writer;

pub use cursor::{
    read_cursor_file, write_cursor_file, Cursor, CursorMismatch, CursorParseError, LastRecord,
    SegmentStamp,
};
pub use durable::{DurableMark, DURABLE_FILE_NAME};
pub use error::{FrameError, JournalError};
pub use follow::{
    AsyncFollower, FollowBound, FollowEvent, FollowOptions, Follower, Gap, RecordFilter,
};
pub use format::{
    frame_into, frame_into_vec, framed_len, parse_frame, parse_segment_file_name,
    segment_file_name, FrameHeader, HeaderError, ParsedFrame, SegmentHeader, FORMAT_VERSION,
    FRAME_ALIGN, FRAME_HEADER_LEN, MAX_PAYLOAD, MAX_SEGMENT_HEADER_LEN, SEGMENT_EXTENSION,
    SEGMENT_HEADER_LEN, SEGMENT_MAGIC,
};
pub use fs::{FaultyFile, FaultyFs, JournalFile, JournalFs, StdFs};
pub use index::{
    index_file_name, rebuild_index, IndexError, IndexReport, IndexUse, ProducerSummary,
    SegmentIndex, INDEX_EXTENSION,
};
pub use reader::{Frames, FramesIter, OwnedFrames, Reader, Record, RecordRef};
pub use recovery::{plan_recovery, RecoveryMode, RecoveryReport, SkippedRange};
pub use summary::SUMMARY_FILE_NAME;
pub use time::write_utc_timestamp;
pub use verify::{
    verify, Damage, DamagedRange, ProducerReport, SeqFault, SeqFaultKind, StructureFault,
    StructureFaultKind, VerifyReport, VerifyStatus, MAX_REPORTED_FAULTS,
};
pub use writer::{Journal, JournalOptions, PartialAppendError, Retention, RotateEvery, SyncPolicy};

/// Scans a segment file image held in memory, as recovery does: checks the
/// header, then every frame, resynchronising after damage. Returns the
/// number of valid frames and the offset where a torn tail starts, if any.
/// Never panics on any input; the fuzz target drives it.
///
/// # Errors
///
/// [`JournalError::BadHeader`] for a bad segment header.
pub fn scan_segment_bytes(bytes: &[u8]) -> Result<(u64, Option<u64>), JournalError> {
    let path = std::path::Path::new("<memory>");
    let io_err = |e| JournalError::io("read", path, e);
    let mut w = segment::Window::new(bytes, bytes.len() as u64);
    let header = w
        .header()
        .map_err(io_err)?
        .map_err(|error| JournalError::BadHeader {
            path: path.to_owned(),
            error,
        })?;
    let mut frames = 0;
    let bad = segment::scan(&mut w, u64::from(header.header_len), false, |_, _, _| {
        frames += 1
    })
    .map_err(io_err)?;
    Ok((frames, bad.iter().find(|b| b.is_tail).map(|b| b.start)))
}
