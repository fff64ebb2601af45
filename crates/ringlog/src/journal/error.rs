//! The journal's error types.

use std::io;
use std::path::PathBuf;

use super::format::HeaderError;

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes remain than the frame needs (a torn tail, or a length
    /// that was garbled).
    #[error("frame needs {needed} bytes but only {available} remain")]
    Truncated {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The length field exceeds `MAX_PAYLOAD`.
    #[error("payload length {len} exceeds the maximum")]
    LengthTooLarge {
        /// The length found.
        len: u32,
    },
    /// The stored CRC does not match the frame's bytes.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// CRC stored in the frame.
        stored: u32,
        /// CRC computed over the frame.
        computed: u32,
    },
    /// Flags that this format version does not define.
    #[error("unknown frame flags {flags:#x}")]
    UnknownFlags {
        /// The flags found.
        flags: u32,
    },
}

/// What went wrong in a journal operation.
///
/// I/O errors carry the path they happened on; `ENOSPC` and `EIO` have
/// their own variants so callers can tell "free some space and retry" from
/// "the device is failing".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The device is full (`ENOSPC`, or `EDQUOT`). Nothing of the failed
    /// operation was kept; once space is freed the same call can be retried.
    #[error("no space left on device: {op} {}", path.display())]
    NoSpace {
        /// File or directory the operation was on.
        path: PathBuf,
        /// The operation (`write`, `fdatasync`, ...).
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The device reported an I/O error (`EIO`).
    #[error("device I/O error: {op} {}", path.display())]
    DeviceIo {
        /// File or directory the operation was on.
        path: PathBuf,
        /// The operation.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Any other I/O error.
    #[error("I/O error: {op} {}", path.display())]
    Io {
        /// File or directory the operation was on.
        path: PathBuf,
        /// The operation.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A frame in a segment file failed verification.
    #[error("corrupted record in {} at byte {offset}: {error}", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the bad frame within the file.
        offset: u64,
        /// What was wrong.
        error: FrameError,
    },
    /// A segment file's header failed verification.
    #[error("bad segment header in {}: {error}", path.display())]
    BadHeader {
        /// The segment file.
        path: PathBuf,
        /// What was wrong.
        error: HeaderError,
    },
    /// A segment's header disagrees with its name or its predecessor.
    #[error("inconsistent segment {}: {what}", path.display())]
    Inconsistent {
        /// The segment file.
        path: PathBuf,
        /// What disagrees.
        what: String,
    },
    /// The directory holds no journal: no segment file (nor a leftover of
    /// an interrupted segment creation).
    #[error("no journal in {}: no segment files (*.rlj)", path.display())]
    NoJournal {
        /// The directory.
        path: PathBuf,
    },
    /// A file named like a segment is not a regular file (a FIFO, a
    /// directory, a device); it is never read, so nothing blocks on it.
    #[error("{} is not a regular file but a {file_type}", path.display())]
    NotRegularFile {
        /// The file.
        path: PathBuf,
        /// What it is instead: `FIFO`, `directory`, ...
        file_type: &'static str,
    },
    /// The journal's segments do not follow one another: a segment is
    /// missing, misnamed or its positions do not continue its predecessor.
    #[error("broken journal structure at {}: {what}", path.display())]
    Structure {
        /// The segment file where the break was found.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A batch handed to `append_frames` is not a sequence of whole frames.
    #[error("invalid batch at byte {offset}: {error}")]
    InvalidBatch {
        /// Offset of the bad frame in the batch (for vectored batches, in
        /// the concatenation of the slices).
        offset: usize,
        /// What was wrong.
        error: FrameError,
    },
    /// A payload larger than `MAX_PAYLOAD`.
    #[error("payload of {len} bytes exceeds the maximum record payload of {max} bytes")]
    PayloadTooLarge {
        /// The payload length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A caller's buffer is too small for the frame.
    #[error("buffer of {available} bytes cannot hold a frame of {needed} bytes")]
    BufferTooSmall {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// An earlier `fdatasync` failed, or rolling back a failed write failed:
    /// the file's state past the durable position is unknown. Everything up
    /// to [`Journal::durable_position`](super::Journal::durable_position) is
    /// safe; reopen the journal to recover.
    #[error("journal unusable after an earlier failure; reopen it (durable position {durable})")]
    Poisoned {
        /// The last durable byte position.
        durable: u64,
    },
    /// A [`Cursor`](super::Cursor) names a position the journal no longer
    /// holds as it was: never answered by silently starting elsewhere.
    #[error("cursor does not match the journal in {}: {reason}", dir.display())]
    CursorMismatch {
        /// The journal directory.
        dir: PathBuf,
        /// What no longer matches.
        reason: super::cursor::CursorMismatch,
    },
}

impl JournalError {
    /// Classifies an I/O error: `ENOSPC`/`EDQUOT` and `EIO` get their own
    /// variants.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        let code = source.raw_os_error();
        if code == Some(rustix::io::Errno::NOSPC.raw_os_error())
            || code == Some(rustix::io::Errno::DQUOT.raw_os_error())
        {
            Self::NoSpace { path, op, source }
        } else if code == Some(rustix::io::Errno::IO.raw_os_error()) {
            Self::DeviceIo { path, op, source }
        } else {
            Self::Io { path, op, source }
        }
    }

    /// Whether this is [`JournalError::NoSpace`].
    pub fn is_no_space(&self) -> bool {
        matches!(self, Self::NoSpace { .. })
    }

    /// The file the error is about, if any.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Self::NoSpace { path, .. }
            | Self::DeviceIo { path, .. }
            | Self::Io { path, .. }
            | Self::Corrupt { path, .. }
            | Self::BadHeader { path, .. }
            | Self::Inconsistent { path, .. }
            | Self::NoJournal { path }
            | Self::NotRegularFile { path, .. }
            | Self::Structure { path, .. } => Some(path),
            _ => None,
        }
    }
}
