//! Errors of the byte queues' operations, one enum per operation. Push errors
//! give the record back.

use std::fmt;

/// A record larger than the queue can ever hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("record of {requested} bytes exceeds the queue's maximum record of {max} bytes")]
pub struct TooLarge {
    /// Requested payload length in bytes.
    pub requested: usize,
    /// Largest payload length in bytes this queue accepts.
    pub max: usize,
}

/// Why a non-blocking `try_claim` gave no grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryClaimError {
    /// No room right now.
    #[error("queue is full")]
    Full,
    /// The reader is gone; nothing written would ever be read.
    #[error("reader disconnected")]
    Disconnected,
    /// The record can never fit.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
}

/// Why a `claim` (which follows the queue's [`Policy`](super::Policy)) gave
/// no grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// The queue was full and the policy is `DropNewest`: the record is
    /// dropped (and counted as such).
    #[error("queue is full; record dropped")]
    Dropped,
    /// The policy is `Block` and the deadline passed first.
    #[error("timed out waiting for queue space")]
    Timeout,
    /// The reader is gone; nothing written would ever be read.
    #[error("reader disconnected")]
    Disconnected,
    /// The record can never fit.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
}

macro_rules! record_error {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $msg:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
        pub enum $name<'a> {
            $($(#[$vm])* #[error($msg)] $variant(&'a [u8]),)*
            /// The record can never fit; it is given back with the limit.
            #[error("record of {len} bytes exceeds the queue's maximum record of {max} bytes", len = .0.len(), max = .1)]
            TooLarge(&'a [u8], usize),
        }

        impl<'a> $name<'a> {
            /// The record that was not queued.
            pub fn into_inner(self) -> &'a [u8] {
                match self {
                    $(Self::$variant(r))|* | Self::TooLarge(r, _) => r,
                }
            }
        }

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `Full(..)`: the payload would flood logs.
                match self {
                    $(Self::$variant(_) => f.write_str(concat!(stringify!($variant), "(..)")),)*
                    Self::TooLarge(r, max) => write!(f, "TooLarge({} bytes, max {max})", r.len()),
                }
            }
        }
    };
}

record_error! {
    /// Why `try_push` did not queue a record.
    TryPushError {
        /// No room right now.
        Full => "queue is full",
        /// The reader is gone.
        Disconnected => "reader disconnected",
    }
}

record_error! {
    /// Why `push` (which follows the queue's [`Policy`](super::Policy)) did not
    /// queue a record.
    PushError {
        /// The queue was full and the policy is `DropNewest`: the record is
        /// dropped (and counted as such).
        Dropped => "queue is full; record dropped",
        /// The policy is `Block` and the deadline passed first.
        Timeout => "timed out waiting for queue space",
        /// The reader is gone.
        Disconnected => "reader disconnected",
    }
}

impl<'a> TryPushError<'a> {
    pub(crate) fn from_claim(e: TryClaimError, record: &'a [u8]) -> Self {
        match e {
            TryClaimError::Full => Self::Full(record),
            TryClaimError::Disconnected => Self::Disconnected(record),
            TryClaimError::TooLarge(t) => Self::TooLarge(record, t.max),
        }
    }
}

impl<'a> PushError<'a> {
    pub(crate) fn from_claim(e: ClaimError, record: &'a [u8]) -> Self {
        match e {
            ClaimError::Dropped => Self::Dropped(record),
            ClaimError::Timeout => Self::Timeout(record),
            ClaimError::Disconnected => Self::Disconnected(record),
            ClaimError::TooLarge(t) => Self::TooLarge(record, t.max),
        }
    }
}

/// Why `try_read` returned no batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryReadError {
    /// Nothing complete to read yet.
    #[error("queue is empty")]
    Empty,
    /// Every writer is gone and everything they committed has been read.
    #[error("all writers disconnected")]
    Disconnected,
}

/// Why a blocking `read` returned no batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The deadline passed with nothing complete to read.
    #[error("timed out waiting for queue data")]
    Timeout,
    /// Every writer is gone and everything they committed has been read.
    #[error("all writers disconnected")]
    Disconnected,
}

/// Why a queue could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NewQueueError {
    /// The capacity is outside what the design supports.
    #[error("capacity of {requested} bytes is outside {min}..={max}")]
    Capacity {
        /// What was asked for.
        requested: usize,
        /// Smallest capacity in bytes.
        min: usize,
        /// Largest capacity in bytes.
        max: usize,
    },
    /// The writer count is outside what the design supports.
    #[error("{requested} writers is outside 1..={max}")]
    Writers {
        /// What was asked for.
        requested: usize,
        /// Most writers.
        max: usize,
    },
    /// The queue's memory cannot be allocated (or its size overflows).
    #[error("cannot allocate {bytes} bytes of queue memory")]
    OutOfMemory {
        /// Bytes the queue needs in all (`usize::MAX` if that overflows).
        bytes: usize,
    },
    /// The double buffer's buffer count is not a power of two in 2..=16.
    #[error("{requested} buffers: must be a power of two in 2..=16")]
    Buffers {
        /// What was asked for.
        requested: usize,
    },
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn push_errors_give_the_record_back_and_debug_is_short() {
        let rec = [7u8; 1000];
        let e = PushError::from_claim(ClaimError::Dropped, &rec);
        assert_eq!(format!("{e:?}"), "Dropped(..)");
        assert_eq!(e.into_inner().len(), 1000);
        let e = TryPushError::from_claim(
            TooLarge {
                requested: 1000,
                max: 10,
            }
            .into(),
            &rec,
        );
        assert_eq!(format!("{e:?}"), "TooLarge(1000 bytes, max 10)");
        assert!(e.to_string().contains("maximum record of 10"));
        assert_eq!(e.into_inner().len(), 1000);
    }
}
