//! Errors of the typed SPSC ring, one enum per operation. Those of the
//! producer give the rejected value back.

use std::fmt;

/// Why [`Producer::try_push`](super::Producer::try_push) did not take a value.
///
/// `Debug` prints `Full(..)`, so payloads do not flood logs.
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryPushError<T> {
    /// Every slot holds an unread value right now.
    #[error("ring is full")]
    Full(T),
    /// The consumer is gone (reported once the ring is full): nothing pushed
    /// would ever be read.
    #[error("consumer disconnected")]
    Disconnected(T),
}

impl<T> TryPushError<T> {
    /// The value that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(v) | Self::Disconnected(v) => v,
        }
    }
}

impl<T> fmt::Debug for TryPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

/// Why a blocking [`Producer::push`](super::Producer::push) did not take a
/// value.
///
/// `Debug` prints `Timeout(..)`, so payloads do not flood logs.
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError<T> {
    /// The deadline passed before a slot was freed.
    #[error("timed out waiting for a free slot")]
    Timeout(T),
    /// The consumer is gone while the ring is full: nothing pushed would ever
    /// be read.
    #[error("consumer disconnected")]
    Disconnected(T),
}

impl<T> PushError<T> {
    /// The value that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            Self::Timeout(v) | Self::Disconnected(v) => v,
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => f.write_str("Timeout(..)"),
            Self::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

/// Why [`Consumer::try_pop`](super::Consumer::try_pop) returned no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryPopError {
    /// Nothing is published right now.
    #[error("ring is empty")]
    Empty,
    /// The producer is gone and every value it pushed has been popped.
    #[error("producer disconnected")]
    Disconnected,
}

/// Why a blocking [`Consumer::pop`](super::Consumer::pop) (or
/// [`take_batch_wait`](super::Consumer::take_batch_wait)) returned no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PopError {
    /// The deadline passed with nothing published.
    #[error("timed out waiting for a value")]
    Timeout,
    /// The producer is gone and every value it pushed has been popped.
    #[error("producer disconnected")]
    Disconnected,
}

/// Why [`try_channel`](super::try_channel) could not build a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    /// The slots would exceed `isize::MAX` bytes.
    #[error("ring of {requested} slots of {slot_bytes} bytes exceeds the largest of {max} slots")]
    TooLarge {
        /// Slots asked for.
        requested: usize,
        /// Size of one slot (`size_of::<T>()`) in bytes.
        slot_bytes: usize,
        /// Most slots a ring of this `T` can have.
        max: usize,
    },
    /// The allocator refused the slots.
    #[error("cannot allocate a ring of {requested} slots of {slot_bytes} bytes")]
    Alloc {
        /// Slots asked for (rounded up to a power of two).
        requested: usize,
        /// Size of one slot (`size_of::<T>()`) in bytes.
        slot_bytes: usize,
        /// The allocation that failed.
        #[source]
        source: crate::region::AllocError,
    },
}
