//! What a writer does when the queue has no room for its record.

/// What `push` and `claim` do when the queue is full. `try_push` and
/// `try_claim` never wait and never count a drop: they report `Full` and let
/// the caller decide.
///
/// Per-writer FIFO order holds under both policies (a dropped record is simply
/// absent).
///
/// `DropOldest` (discard the oldest unread record) is not offered by the byte
/// queues: all three hand the reader *in-place* slices of queue memory, so the
/// oldest unread bytes may be under the reader's eyes (or inside a `write`
/// system call) at any moment; a writer could reclaim them only by copying or
/// by a handshake with the reader on every batch, which defeats the design.
/// In the double buffer the oldest records sit in a buffer the reader has
/// already sealed; in the fan-in and shared rings they lie between the
/// reader's tail and the batch it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Wait (spin, yield, then sleep) until there is room or the deadline
    /// passes.
    #[default]
    Block,
    /// Return the record to the caller at once and count it as dropped.
    DropNewest,
}
