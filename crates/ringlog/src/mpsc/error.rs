//! Errors of the MPSC ring's operations, one enum per operation. Those that
//! carry the caller's item give it back and print it as `..` so that payloads
//! do not flood logs.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a channel could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NewChannelError {
    /// The requested capacity is outside what the ring supports.
    #[error("ring capacity of {requested} slots is outside 1..={max}")]
    Capacity {
        /// What was asked for, in slots.
        requested: usize,
        /// Largest capacity in slots.
        max: usize,
    },
    /// The slot array could not be allocated.
    #[error("cannot allocate a ring of {requested} slots")]
    Alloc {
        /// Slots asked for (rounded up to a power of two).
        requested: usize,
        /// The allocation that failed.
        #[source]
        source: crate::region::AllocError,
    },
    /// [`Policy::SpillToDisk`](super::Policy::SpillToDisk) was given to
    /// [`channel`](super::channel), which knows no codec for the item type;
    /// use [`spill_channel`](super::spill_channel) with a `T: Spill`.
    #[error("the spill-to-disk policy needs an item codec: use mpsc::spill_channel")]
    SpillNeedsCodec,
    /// The spill file could not be opened or recovered.
    #[error("cannot open spill file {path}: {source}")]
    SpillOpen {
        /// The spill file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

/// Why [`Producer::try_push`](super::Producer::try_push) did not take the item.
#[derive(thiserror::Error)]
pub enum TryPushError<T> {
    /// The ring is full (policy `Block` or `DropNewest`).
    #[error("ring is full")]
    Full(T),
    /// The consumer is gone; nothing pushed would ever be read.
    #[error("consumer disconnected")]
    Disconnected(T),
    /// The ring was full and appending to the spill file failed.
    #[error("spill file write failed: {source}")]
    Spill {
        /// The item that was not stored.
        item: T,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

/// Why a blocking [`Producer::push`](super::Producer::push) did not take the item.
#[derive(thiserror::Error)]
pub enum PushError<T> {
    /// The ring is full and the policy is `DropNewest`: the item is handed
    /// back and counted as dropped.
    #[error("ring is full; newest item dropped")]
    Full(T),
    /// The deadline passed before there was room (policy `Block`).
    #[error("timed out waiting for ring space")]
    Timeout(T),
    /// The consumer is gone; nothing pushed would ever be read.
    #[error("consumer disconnected")]
    Disconnected(T),
    /// The ring was full and appending to the spill file failed.
    #[error("spill file write failed: {source}")]
    Spill {
        /// The item that was not stored.
        item: T,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

/// Why [`Producer::push_batch`](super::Producer::push_batch) stopped early.
/// The items it did not push are still in the caller's `Vec`, in order.
#[derive(Debug, thiserror::Error)]
pub enum PushBatchError {
    /// The ring filled up (policy `DropNewest`, or `try_push_batch` under
    /// `Block`); the items left in the `Vec` are the dropped newest ones.
    #[error("ring is full; {remaining} items not pushed")]
    Full {
        /// Items left in the caller's `Vec`.
        remaining: usize,
    },
    /// The deadline passed before there was room for the rest.
    #[error("timed out with {remaining} items not pushed")]
    Timeout {
        /// Items left in the caller's `Vec`.
        remaining: usize,
    },
    /// The consumer is gone.
    #[error("consumer disconnected")]
    Disconnected,
    /// Appending to the spill file failed.
    #[error("spill file write failed: {0}")]
    Spill(#[source] io::Error),
}

/// Why [`Consumer::try_pop`](super::Consumer::try_pop) returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryPopError {
    /// Nothing published right now (a slot reserved but not yet published
    /// also counts as empty).
    #[error("ring is empty")]
    Empty,
    /// Every producer is gone and everything they pushed has been read.
    #[error("all producers disconnected")]
    Disconnected,
}

/// Why a blocking [`Consumer::pop`](super::Consumer::pop) returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PopError {
    /// The deadline passed with nothing published.
    #[error("timed out waiting for an item")]
    Timeout,
    /// Every producer is gone and everything they pushed has been read.
    #[error("all producers disconnected")]
    Disconnected,
}

/// A spill record whose bytes do not decode into an item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spill record does not decode: {what}")]
pub struct SpillDecodeError {
    /// What was wrong.
    pub what: &'static str,
}

macro_rules! item_error_impls {
    ($ty:ident { $($unit:ident),* } $(, $spill:ident)?) => {
        impl<T> $ty<T> {
            /// Gives the item back.
            pub fn into_inner(self) -> T {
                match self {
                    $(Self::$unit(item) => item,)*
                    $(Self::$spill { item, .. } => item,)?
                }
            }
        }

        impl<T> fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $(Self::$unit(_) => f.write_str(concat!(stringify!($unit), "(..)")),)*
                    $(Self::$spill { source, .. } => f
                        .debug_struct(stringify!($spill))
                        .field("item", &format_args!(".."))
                        .field("source", source)
                        .finish(),)?
                }
            }
        }
    };
}

item_error_impls!(TryPushError { Full, Disconnected }, Spill);
item_error_impls!(
    PushError {
        Full,
        Timeout,
        Disconnected
    },
    Spill
);

impl<T> From<TryPushError<T>> for PushError<T> {
    fn from(e: TryPushError<T>) -> Self {
        match e {
            TryPushError::Full(item) => PushError::Full(item),
            TryPushError::Disconnected(item) => PushError::Disconnected(item),
            TryPushError::Spill { item, source } => PushError::Spill { item, source },
        }
    }
}
