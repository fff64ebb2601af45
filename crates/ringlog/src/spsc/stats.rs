//! Counters each handle keeps for itself, and their snapshot.
//!
//! Counting is a plain add on the handle's own memory: no atomic, no shared
//! cache line, nothing the other side ever reads. A snapshot is taken through
//! the handle (`Producer::stats`, `Consumer::stats`).

/// A snapshot of one handle's counters.
///
/// On the [`Producer`](super::Producer) the counts are of values pushed and
/// dropped; on the [`Consumer`](super::Consumer) of values popped (its
/// `dropped_*` fields stay zero).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpscStats {
    /// Values moved through the ring by this handle.
    pub records: u64,
    /// Bytes those values occupy: `records * size_of::<T>()`.
    pub bytes: u64,
    /// Successful operations: a single-value push or pop counts as a batch of
    /// one, a batch operation that moved at least one value counts once.
    pub total_batches: u64,
    /// Producer only: batches a `try_push*_or_drop` call discarded because
    /// the ring had no room for them (or the consumer was gone).
    pub dropped_batches: u64,
    /// Producer only: values in those discarded batches.
    pub dropped_records: u64,
}

/// The live counters inside a handle.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub(crate) records: u64,
    pub(crate) batches: u64,
    pub(crate) dropped_batches: u64,
    pub(crate) dropped_records: u64,
}

impl Counters {
    /// Counts one successful operation that moved `n > 0` values.
    #[inline]
    pub(crate) fn moved(&mut self, n: usize) {
        self.records += n as u64;
        self.batches += 1;
    }

    /// Counts one discarded batch of `n` values.
    #[inline]
    pub(crate) fn dropped(&mut self, n: usize) {
        self.dropped_records += n as u64;
        self.dropped_batches += 1;
    }

    pub(crate) fn snapshot(&self, slot_bytes: usize) -> SpscStats {
        SpscStats {
            records: self.records,
            bytes: self.records.saturating_mul(slot_bytes as u64),
            total_batches: self.batches,
            dropped_batches: self.dropped_batches,
            dropped_records: self.dropped_records,
        }
    }
}
