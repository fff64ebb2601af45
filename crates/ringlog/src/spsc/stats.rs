//! Counters each handle keeps for itself, and their snapshot.
//!
//! The single-value paths (`try_push`, `try_pop` and the blocking calls built
//! on them) count nothing: the record count is derived from the handle's own
//! index, which it advances anyway (`index - start`, wrapping), so a push or a
//! pop pays no store beyond the ones the ring needs. Only the batch operations
//! count, a plain add on the handle's own memory: no atomic, no shared cache
//! line, nothing the other side ever reads. A snapshot is taken through the
//! handle (`Producer::stats`, `Consumer::stats`).

/// A snapshot of one handle's counters.
///
/// On the [`Producer`](super::Producer) the counts are of values pushed and
/// dropped; on the [`Consumer`](super::Consumer) of values popped (its
/// `dropped_*` fields stay zero).
///
/// `records` is derived from the handle's index; where `usize` is 32 bits
/// it wraps every 2³² values (so do `bytes` and `total_batches`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpscStats {
    /// Values moved through the ring by this handle.
    pub records: u64,
    /// Bytes those values occupy: `records * size_of::<T>()`.
    pub bytes: u64,
    /// Successful operations: a single-value push or pop counts as a batch of
    /// one, a batch operation that moved at least one value counts once.
    /// Single-value operations are not counted as they happen but derived:
    /// every value not moved by a batch operation was moved by one of them.
    pub total_batches: u64,
    /// Producer only: batches a `try_push*_or_drop` call discarded because
    /// the ring had no room for them (or the consumer was gone).
    pub dropped_batches: u64,
    /// Producer only: values in those discarded batches.
    pub dropped_records: u64,
}

/// The live counters inside a handle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counters {
    /// The handle's index when it was made: `index - start` values moved.
    start: usize,
    /// Batch operations that moved at least one value.
    batches: u64,
    /// Values those batch operations moved (wrapping like the index).
    batch_records: usize,
    dropped_batches: u64,
    dropped_records: u64,
}

impl Counters {
    /// Counters for a handle whose index starts at `start`.
    pub(crate) fn new(start: usize) -> Self {
        Self {
            start,
            batches: 0,
            batch_records: 0,
            dropped_batches: 0,
            dropped_records: 0,
        }
    }

    /// Counts one batch operation that moved `n > 0` values (the index
    /// counts the values themselves).
    #[inline]
    pub(crate) fn batch(&mut self, n: usize) {
        self.batch_records = self.batch_records.wrapping_add(n);
        self.batches += 1;
    }

    /// Counts one discarded batch of `n` values.
    #[inline]
    pub(crate) fn dropped(&mut self, n: usize) {
        self.dropped_records += n as u64;
        self.dropped_batches += 1;
    }

    /// The snapshot for a handle whose index is now `index`.
    pub(crate) fn snapshot(&self, index: usize, slot_bytes: usize) -> SpscStats {
        let records = index.wrapping_sub(self.start);
        // Every value a batch did not move was moved one at a time.
        let singles = records.wrapping_sub(self.batch_records);
        let records = records as u64;
        SpscStats {
            records,
            bytes: records.saturating_mul(slot_bytes as u64),
            total_batches: self.batches.wrapping_add(singles as u64),
            dropped_batches: self.dropped_batches,
            dropped_records: self.dropped_records,
        }
    }
}
