//! Errors of the byte ring's operations, one enum per operation.

/// Something read from the ring's memory broke the ring's invariants.
///
/// In-process rings never produce it; a ring in shared memory does when a
/// crashed or hostile peer wrote nonsense. The ring is unusable afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ring corrupted at byte position {position}: {what} (value {value})")]
pub struct Corruption {
    /// What was wrong.
    pub what: &'static str,
    /// The monotonic byte position where it was found.
    pub position: u64,
    /// The offending value.
    pub value: u64,
}

/// A record larger than the ring can ever hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("record of {requested} bytes exceeds the ring's maximum record of {max} bytes")]
pub struct TooLarge {
    /// Requested payload length in bytes.
    pub requested: usize,
    /// Largest payload length in bytes this ring accepts.
    pub max: usize,
}

/// Why [`Producer::try_claim`](super::Producer::try_claim) gave no grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryClaimError {
    /// Not enough free space right now.
    #[error("ring is full")]
    Full,
    /// The consumer is gone; nothing written would ever be read.
    #[error("consumer disconnected")]
    Disconnected,
    /// The record can never fit.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// The consumer's index in ring memory is invalid.
    #[error(transparent)]
    Corrupt(#[from] Corruption),
}

/// Why a blocking [`Producer::claim`](super::Producer::claim) gave no grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// The deadline passed before enough space was freed.
    #[error("timed out waiting for ring space")]
    Timeout,
    /// The consumer is gone; nothing written would ever be read.
    #[error("consumer disconnected")]
    Disconnected,
    /// The record can never fit.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// The consumer's index in ring memory is invalid.
    #[error(transparent)]
    Corrupt(#[from] Corruption),
}

/// Why [`Consumer::try_read`](super::Consumer::try_read) returned no batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryReadError {
    /// Nothing committed yet.
    #[error("ring is empty")]
    Empty,
    /// The producer is gone and everything it committed has been read.
    #[error("producer disconnected")]
    Disconnected,
    /// Ring memory is invalid; the ring is unusable.
    #[error(transparent)]
    Corrupt(#[from] Corruption),
}

/// Why a blocking [`Consumer::read`](super::Consumer::read) returned no batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The deadline passed with nothing committed.
    #[error("timed out waiting for ring data")]
    Timeout,
    /// The producer is gone and everything it committed has been read.
    #[error("producer disconnected")]
    Disconnected,
    /// Ring memory is invalid; the ring is unusable.
    #[error(transparent)]
    Corrupt(#[from] Corruption),
}

/// Why a ring could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NewRingError {
    /// The ring's memory could not be allocated.
    #[error("cannot allocate a ring of {requested} bytes")]
    Alloc {
        /// What was asked for (the data capacity, rounded up to a power of
        /// two), in bytes.
        requested: usize,
        /// The allocation that failed.
        #[source]
        source: crate::region::AllocError,
    },
    /// The requested capacity is outside what the ring supports.
    #[error("ring capacity of {requested} bytes is outside {min}..={max}")]
    Capacity {
        /// What was asked for.
        requested: usize,
        /// Smallest capacity.
        min: usize,
        /// Largest capacity.
        max: usize,
    },
}
