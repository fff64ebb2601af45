//! The original single-threaded ring buffer API, backed by the MPSC ring.

use super::{channel, Consumer, MpscStats, Policy, Producer, MAX_CAPACITY};

/// Drop-in replacement for the original `RingBuffer`: keeps the newest
/// `capacity` items, discarding the oldest when full.
///
/// # Examples
///
/// ```
/// use ringlog::mpsc::RingBuffer;
///
/// let mut ring = RingBuffer::new(4);
/// for i in 0..6 {
///     ring.push(i);
/// }
/// assert_eq!(ring.take_snapshot(), [2, 3, 4, 5]);
/// assert!(ring.take_snapshot().is_empty());
/// ```
#[derive(Debug)]
pub struct RingBuffer<T> {
    tx: Producer<T>,
    rx: Consumer<T>,
}

impl<T> RingBuffer<T> {
    /// A ring keeping the newest `capacity` items (rounded up to a power of
    /// two, at least 2; very large values are taken as
    /// [`MAX_CAPACITY`](super::MAX_CAPACITY), so this never fails).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        let (tx, rx) = channel(capacity, Policy::DropOldest).expect("capacity is in range");
        Self { tx, rx }
    }

    /// Appends `item`, discarding the oldest item if the ring is full.
    pub fn push(&mut self, item: T) {
        // Under DropOldest a push fails only if the consumer is gone, and we
        // hold the consumer.
        let _ = self.tx.push(item);
    }

    /// Takes every item out, oldest first.
    pub fn take_snapshot(&mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.rx.len());
        while self.rx.take_batch(usize::MAX, &mut out).is_ok() {}
        out
    }

    /// Items held now.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Capacity in items.
    pub fn capacity(&self) -> usize {
        self.rx.capacity()
    }

    /// Counters, including how many items were discarded.
    pub fn stats(&self) -> MpscStats {
        self.rx.stats()
    }
}
