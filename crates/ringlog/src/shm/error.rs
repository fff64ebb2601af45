//! Errors of the shared-memory layer: segments, headers, roles.

use super::identity::ProcessIdentity;
use crate::ring::Corruption;

/// Why a segment header is not one this build can use. Produced by
/// [`parse_header`](super::parse_header) on a snapshot of the header; never a
/// panic, whatever the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Not a ringlog segment (or not yet initialised: the creator writes
    /// the magic last).
    #[error("bad magic {found:#018x} (expected {expected:#018x})")]
    BadMagic {
        /// The magic found.
        found: u64,
        /// The magic of a ringlog segment.
        expected: u64,
    },
    /// Made by a build with another layout.
    #[error("layout version {found} is not the supported version {supported}")]
    Version {
        /// The version found.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// A field holds a value this build cannot use.
    #[error("header field {field} holds {value}, expected {expected}")]
    Field {
        /// Which field.
        field: &'static str,
        /// What it holds.
        value: u64,
        /// What was expected, in words.
        expected: &'static str,
    },
    /// The header describes more bytes than the segment has.
    #[error("segment is {actual} bytes but its header describes {needed}")]
    TooSmall {
        /// Real size of the segment (fstat).
        actual: u64,
        /// Size the header describes.
        needed: u64,
    },
}

/// The kind of rings a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// One producer, one consumer.
    Spsc,
    /// Many producers, one ring each, one consumer and a doorbell.
    Mpsc,
}

impl std::fmt::Display for SegmentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Spsc => "spsc",
            Self::Mpsc => "mpsc",
        })
    }
}

/// What went wrong creating, opening or attaching to a segment. Every
/// variant names the segment.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// A system call failed.
    #[error("shm segment {name}: {op} failed: {source}")]
    Io {
        /// The segment.
        name: String,
        /// The operation, e.g. `"shm_open"`, `"fallocate"`.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The name is not usable for `shm_open`.
    #[error("shm segment name {name:?} is invalid: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// `create` found a segment of that name already.
    #[error("shm segment {name} already exists")]
    Exists {
        /// The segment.
        name: String,
    },
    /// No segment of that name.
    #[error("shm segment {name} does not exist")]
    NotFound {
        /// The segment.
        name: String,
    },
    /// The segment's permissions do not let this process map it.
    #[error("shm segment {name}: permission denied")]
    PermissionDenied {
        /// The segment.
        name: String,
    },
    /// The shared memory file system cannot hold the segment.
    #[error("shm segment {name}: no space for {bytes} bytes")]
    NoSpace {
        /// The segment.
        name: String,
        /// Bytes that could not be reserved.
        bytes: u64,
    },
    /// The segment's header is invalid or of another layout.
    #[error("shm segment {name}: {source}")]
    Header {
        /// The segment.
        name: String,
        /// What is wrong with the header.
        #[source]
        source: HeaderError,
    },
    /// The segment holds another kind of rings.
    #[error("shm segment {name} is {found}, not {expected}")]
    KindMismatch {
        /// The segment.
        name: String,
        /// What the caller asked for.
        expected: SegmentKind,
        /// What the segment holds.
        found: SegmentKind,
    },
    /// The segment's consumer died without closing it. The rings and their
    /// records are intact: a new consumer may take over with `take_over`.
    #[error("shm segment {name} is stale: its consumer {owner} is dead; take it over to resume")]
    Stale {
        /// The segment.
        name: String,
        /// The dead consumer.
        owner: ProcessIdentity,
    },
    /// The role asked for is held by a live process.
    #[error("shm segment {name}: {role} is held by live process {owner}")]
    Busy {
        /// The segment.
        name: String,
        /// The role, e.g. `"consumer"`, `"producer slot 3"`.
        role: String,
        /// Who holds it.
        owner: ProcessIdentity,
    },
    /// Every producer slot is held by a live process or quarantined.
    #[error("shm segment {name}: all {slots} producer slots are taken")]
    NoFreeSlot {
        /// The segment.
        name: String,
        /// How many slots the segment has.
        slots: usize,
    },
    /// A slot number beyond the segment's slots.
    #[error("shm segment {name}: no producer slot {slot} (it has {slots})")]
    NoSuchSlot {
        /// The segment.
        name: String,
        /// The slot asked for.
        slot: usize,
        /// How many slots there are.
        slots: usize,
    },
    /// The slot's ring was found corrupt by its consumer and is out of use.
    #[error("shm segment {name}: producer slot {slot} is quarantined as corrupt")]
    Quarantined {
        /// The segment.
        name: String,
        /// The slot.
        slot: usize,
    },
    /// A ring's control block in the segment breaks the ring's invariants.
    #[error("shm segment {name}: ring {slot}: {source}")]
    Corrupt {
        /// The segment.
        name: String,
        /// Which ring.
        slot: usize,
        /// What is wrong.
        #[source]
        source: Corruption,
    },
    /// A capacity or slot count outside what segments support.
    #[error("shm segment {name}: {what} of {requested} is outside {min}..={max}")]
    Geometry {
        /// The segment.
        name: String,
        /// `"ring capacity"` or `"producer slots"`.
        what: &'static str,
        /// What was asked for.
        requested: u64,
        /// Smallest.
        min: u64,
        /// Largest.
        max: u64,
    },
}

impl ShmError {
    pub(crate) fn io(name: &str, op: &'static str, source: impl Into<std::io::Error>) -> Self {
        let source = source.into();
        match source.raw_os_error() {
            Some(libc::EEXIST) => Self::Exists { name: name.into() },
            Some(libc::ENOENT) => Self::NotFound { name: name.into() },
            Some(libc::EACCES) | Some(libc::EPERM) => Self::PermissionDenied { name: name.into() },
            _ => Self::Io {
                name: name.into(),
                op,
                source,
            },
        }
    }
}
