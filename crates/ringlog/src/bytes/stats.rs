//! Counters: per writer on the writer's own cache line, per reader on the
//! reader's, and the snapshot types they are read into.
//!
//! Each counter has exactly one writing thread, so an increment is a Relaxed
//! load and store (no read-modify-write, no shared cache line on the hot
//! path); snapshots read them Relaxed and may be a moment stale.

use crate::sync::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::time::Duration;

/// One single-writer counter.
#[derive(Debug)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Adds `n`; only the owning thread calls this.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        // Relaxed: single writer; readers only want an eventually-seen value.
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A writer's counters, written only by that writer.
#[derive(Debug)]
pub(crate) struct WriterCounters {
    pub(crate) records: Counter,
    pub(crate) bytes: Counter,
    pub(crate) dropped: Counter,
    pub(crate) blocked_ns: Counter,
}

impl WriterCounters {
    pub(crate) fn new() -> Self {
        Self {
            records: Counter::new(),
            bytes: Counter::new(),
            dropped: Counter::new(),
            blocked_ns: Counter::new(),
        }
    }

    pub(crate) fn add_blocked(&self, d: Duration) {
        self.blocked_ns
            .add(d.as_nanos().min(u128::from(u64::MAX)) as u64);
    }

    pub(crate) fn snapshot(&self) -> WriterStats {
        WriterStats {
            records: self.records.get(),
            bytes: self.bytes.get(),
            dropped: self.dropped.get(),
            blocked: Duration::from_nanos(self.blocked_ns.get()),
        }
    }
}

/// The reader's counters, written only by the reader.
#[derive(Debug)]
pub(crate) struct ReaderCounters {
    pub(crate) batches: Counter,
    pub(crate) records: Counter,
    pub(crate) bytes: Counter,
    pub(crate) wasted: Counter,
}

impl ReaderCounters {
    pub(crate) fn new() -> Self {
        Self {
            batches: Counter::new(),
            records: Counter::new(),
            bytes: Counter::new(),
            wasted: Counter::new(),
        }
    }

    pub(crate) fn snapshot(&self) -> ReaderStats {
        ReaderStats {
            batches: self.batches.get(),
            records: self.records.get(),
            bytes: self.bytes.get(),
            wasted_bytes: self.wasted.get(),
        }
    }
}

/// One counter block per writer, each on its own cache line pair.
pub(crate) type WriterSlots = Box<[CachePadded<WriterCounters>]>;

pub(crate) fn writer_slots(n: usize) -> WriterSlots {
    (0..n)
        .map(|_| CachePadded::new(WriterCounters::new()))
        .collect()
}

/// What one writer did, as counted by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Records queued.
    pub records: u64,
    /// Payload bytes queued (headers and padding not counted).
    pub bytes: u64,
    /// Records the `DropNewest` policy dropped.
    pub dropped: u64,
    /// Time spent waiting for room under the `Block` policy.
    pub blocked: Duration,
}

/// What the reader did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReaderStats {
    /// Batches released.
    pub batches: u64,
    /// Records in them.
    pub records: u64,
    /// Bytes in them as handed out by `Batch::as_slices` (headers and padding
    /// included).
    pub bytes: u64,
    /// Queue bytes that carried nothing (the double buffer's unusable tail
    /// after a record that did not fit).
    pub wasted_bytes: u64,
}

/// A snapshot of a queue's counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// One entry per writer, by writer id.
    pub writers: Vec<WriterStats>,
    /// The reader's counters.
    pub reader: ReaderStats,
}

impl QueueStats {
    pub(crate) fn collect(
        writers: &[CachePadded<WriterCounters>],
        reader: &ReaderCounters,
    ) -> Self {
        Self {
            writers: writers.iter().map(|w| w.snapshot()).collect(),
            reader: reader.snapshot(),
        }
    }

    /// Sum of every writer's counters.
    pub fn writers_total(&self) -> WriterStats {
        self.writers
            .iter()
            .fold(WriterStats::default(), |a, w| WriterStats {
                records: a.records + w.records,
                bytes: a.bytes + w.bytes,
                dropped: a.dropped + w.dropped,
                blocked: a.blocked + w.blocked,
            })
    }
}
