//! Counters: each producer counts on its own cache line, the consumer on
//! its own; [`MpscStats`] adds them up when asked.
//!
//! A producer's counters have one writer (the handle, through `&mut self`),
//! so they are bumped with a Relaxed load and store, not an RMW: counting
//! costs no shared-cache-line write and no locked instruction. Handles
//! register their counters in a list at creation and fold them into the
//! `retired` totals when dropped, so totals never go backwards.
//!
//! Nothing is counted per item on the push fast path: `pushed` is derived
//! from the ring's write position (every reservation is published) plus the
//! items spilled, which the spill path counts.

use super::Mutex;
use crate::sync::{Arc, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::time::Duration;

/// A snapshot of a channel's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MpscStats {
    /// Items accepted by producers (into the ring or the spill file). The
    /// ring's share is its write position, a `usize`: on a 32-bit target it
    /// wraps after 2^31 items.
    pub pushed: u64,
    /// Items handed to the consumer.
    pub popped: u64,
    /// Items discarded by `DropOldest` to make room.
    pub dropped_oldest: u64,
    /// Items refused by `DropNewest` (handed back to the caller).
    pub dropped_newest: u64,
    /// Of `pushed`, items that went to the spill file.
    pub spilled: u64,
    /// Spill records that could not be replayed (torn, corrupt, or not
    /// decodable); they are counted here, never silently lost.
    pub spill_lost: u64,
    /// Time producers spent blocked waiting for room.
    pub blocked: Duration,
    /// Producer handles alive now.
    pub producers: usize,
    /// Ring capacity in slots.
    pub capacity: usize,
    /// Items in the ring now (a hint; excludes the spill file).
    pub len: usize,
}

/// One producer's counters; only that producer writes them.
#[derive(Debug)]
pub(crate) struct ProducerCounters {
    pub(crate) dropped_oldest: AtomicU64,
    pub(crate) dropped_newest: AtomicU64,
    pub(crate) spilled: AtomicU64,
    pub(crate) blocked_ns: AtomicU64,
}

impl ProducerCounters {
    fn new() -> Self {
        Self {
            dropped_oldest: AtomicU64::new(0),
            dropped_newest: AtomicU64::new(0),
            spilled: AtomicU64::new(0),
            blocked_ns: AtomicU64::new(0),
        }
    }
}

/// Adds `n` to a single-writer counter.
#[inline]
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    // Relaxed load + store: the owner is the only writer (see module docs);
    // readers only need some recent value.
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// A handle's counters: an `Arc` so the registry can read them.
pub(crate) type CounterCell = Arc<CachePadded<ProducerCounters>>;

#[derive(Debug, Default)]
struct Totals {
    dropped_oldest: u64,
    dropped_newest: u64,
    spilled: u64,
    blocked_ns: u64,
}

impl Totals {
    fn add(&mut self, c: &ProducerCounters) {
        self.dropped_oldest += c.dropped_oldest.load(Ordering::Relaxed);
        self.dropped_newest += c.dropped_newest.load(Ordering::Relaxed);
        self.spilled += c.spilled.load(Ordering::Relaxed);
        self.blocked_ns += c.blocked_ns.load(Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct RegistryInner {
    live: Vec<CounterCell>,
    retired: Totals,
}

/// Every producer's counters, plus the consumer's.
#[derive(Debug)]
pub(crate) struct Registry {
    inner: Mutex<RegistryInner>,
    /// Written only by the consumer.
    pub(crate) popped: CachePadded<AtomicU64>,
    /// Written only by the consumer.
    pub(crate) spill_lost: AtomicU64,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(RegistryInner::default()),
            popped: CachePadded::new(AtomicU64::new(0)),
            spill_lost: AtomicU64::new(0),
        }
    }

    /// Registers a new producer's counters.
    pub(crate) fn register(&self) -> CounterCell {
        let cell: CounterCell = Arc::new(CachePadded::new(ProducerCounters::new()));
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live
            .push(cell.clone());
        cell
    }

    /// Folds a dropped producer's counters into the totals.
    pub(crate) fn retire(&self, cell: &CounterCell) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = inner.live.iter().position(|c| Arc::ptr_eq(c, cell)) {
            let c = inner.live.swap_remove(i);
            inner.retired.add(&c);
        }
    }

    /// Adds everything up; `ring_pushed` is the ring's write position.
    pub(crate) fn snapshot(
        &self,
        producers: usize,
        capacity: usize,
        len: usize,
        ring_pushed: u64,
    ) -> MpscStats {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let r = &inner.retired;
        let mut t = Totals {
            dropped_oldest: r.dropped_oldest,
            dropped_newest: r.dropped_newest,
            spilled: r.spilled,
            blocked_ns: r.blocked_ns,
        };
        for c in &inner.live {
            t.add(c);
        }
        MpscStats {
            pushed: ring_pushed + t.spilled,
            popped: self.popped.load(Ordering::Relaxed),
            dropped_oldest: t.dropped_oldest,
            dropped_newest: t.dropped_newest,
            spilled: t.spilled,
            spill_lost: self.spill_lost.load(Ordering::Relaxed),
            blocked: Duration::from_nanos(t.blocked_ns),
            producers,
            capacity,
            len,
        }
    }
}
