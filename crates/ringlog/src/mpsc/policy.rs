//! What a producer does when the ring is full.

use std::path::PathBuf;
use std::time::Duration;

/// Back-pressure policy, chosen when the channel is built.
///
/// Per-producer FIFO order holds under every policy; only the items a policy
/// drops are missing from the sequence the consumer sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Wait (spin, yield, then sleep) until there is room. With a `timeout`,
    /// [`Producer::push`](super::Producer::push) gives the item back as
    /// [`PushError::Timeout`](super::PushError::Timeout) when it passes.
    Block {
        /// Longest wait per push; `None` waits for ever.
        timeout: Option<Duration>,
    },
    /// Hand the new item back as
    /// [`PushError::Full`](super::PushError::Full) and count it.
    DropNewest,
    /// Discard the oldest unread item to make room, and count it. The
    /// discard is one CAS on the read index, so exactly one of the consumer
    /// and the evicting producer takes any item.
    DropOldest,
    /// Append the item to an overflow file at this path; the consumer reads
    /// the file after the ring items that are older, then the ring again.
    /// Needs a `T: Spill` (see [`spill_channel`](super::spill_channel)).
    SpillToDisk(PathBuf),
}

impl Policy {
    /// `Block` without a timeout.
    pub const BLOCK: Self = Self::Block { timeout: None };

    pub(crate) fn kind(&self) -> PolicyKind {
        match self {
            Self::Block { .. } => PolicyKind::Block,
            Self::DropNewest => PolicyKind::DropNewest,
            Self::DropOldest => PolicyKind::DropOldest,
            Self::SpillToDisk(_) => PolicyKind::Spill,
        }
    }
}

/// The policy without its data, for cheap dispatch on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PolicyKind {
    Block,
    DropNewest,
    DropOldest,
    Spill,
}
