//! The producer end: move values into free slots, publish `write_pos`.

use super::error::{PushError, TryPushError};
use super::stats::{Counters, SpscStats};
use super::Shared;
use crate::sync::{Arc, Ordering};
use crate::wait::handshake::{Notifier, Waiter};
use crate::wait::{Deadline, WaitStrategy};

/// The writing end of a typed SPSC ring. Only one exists per ring; `&mut
/// self` on every operation makes the single-producer contract a type-system
/// fact.
///
/// # Examples
///
/// ```
/// let (mut tx, mut rx) = ringlog::spsc::channel::<u32>(8);
/// tx.try_push(1).unwrap();
/// assert_eq!(tx.push_slice(&[2, 3, 4]), 3); // one publish for all three
/// let mut more = vec![5, 6, 7, 8, 9, 10];
/// assert_eq!(tx.push_batch(&mut more), 4); // only four slots were left
/// assert_eq!(more, [9, 10]);
/// assert!(!tx.try_push_or_drop(11)); // full: dropped and counted
/// assert_eq!(tx.stats().dropped_batches, 1);
/// let mut out = Vec::new();
/// rx.take_batch(usize::MAX, &mut out);
/// assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8]);
/// ```
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    /// Our own `write_pos`: only we write the shared one.
    write_pos: usize,
    /// Last `read_pos` loaded from the consumer's line; may be stale (too
    /// small), which only makes us re-read it.
    cached_read_pos: usize,
    strategy: WaitStrategy,
    counters: Counters,
    /// Our side of the data wake-up handshake: notifying while the
    /// consumer is in a sleep episode.
    data_armed: Notifier,
    /// Our side of the space wake-up handshake: our sleep episodes.
    space_acked: Waiter,
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.shared.capacity())
            .field("write_pos", &self.write_pos)
            .finish_non_exhaustive()
    }
}

impl<T> Producer<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>) -> Self {
        // Relaxed: the ring is fresh and the handle is sent to its thread
        // afterwards; the send orders these loads.
        let write_pos = shared.write_pos.load(Ordering::Relaxed);
        let cached_read_pos = shared.read_pos.load(Ordering::Relaxed);
        Self {
            shared,
            write_pos,
            cached_read_pos,
            strategy: WaitStrategy::DEFAULT,
            counters: Counters::new(write_pos),
            data_armed: Notifier::default(),
            space_acked: Waiter::default(),
        }
    }

    /// Sets how blocking calls wait (spin, yield, then sleep).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// loom builds only: stop notifying the consumer right after arming for
    /// its sleep episode instead of when the episode ends, so that a model
    /// can show that arming must last the whole episode.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn disarm_early_for_loom(&mut self) {
        self.data_armed.disarm_early = true;
    }

    /// Number of slots (a power of two).
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// Free slots as seen now (re-reads the consumer's index).
    pub fn free_slots(&mut self) -> usize {
        self.refresh()
    }

    /// Whether the consumer has been dropped.
    pub fn is_abandoned(&self) -> bool {
        // Acquire: pairs with the Release store in `Consumer::drop`.
        self.shared.closed.consumer.load(Ordering::Acquire)
    }

    /// A snapshot of this handle's counters (values pushed, batches,
    /// drops).
    pub fn stats(&self) -> SpscStats {
        self.counters
            .snapshot(self.write_pos, std::mem::size_of::<T>())
    }

    /// Free slots according to the cached `read_pos`: a lower bound.
    #[inline]
    fn cached_free(&self) -> usize {
        self.shared.capacity() - self.write_pos.wrapping_sub(self.cached_read_pos)
    }

    /// Re-reads the consumer's `read_pos` and returns the free slots.
    #[inline]
    fn refresh(&mut self) -> usize {
        // Acquire: pairs with the Release store of read_pos in the consumer's
        // `release`, so its moves out of the slots we are about to reuse
        // happen before our writes.
        self.cached_read_pos = self.shared.read_pos.load(Ordering::Acquire);
        self.cached_free()
    }

    /// Free slots, re-reading `read_pos` only if the cache shows fewer than
    /// `want`.
    #[inline]
    fn free_for(&mut self, want: usize) -> usize {
        let free = self.cached_free();
        if free >= want {
            free
        } else {
            self.refresh()
        }
    }

    /// Publishes `n > 0` values written after `write_pos`, and wakes the consumer
    /// if it sleeps. Counts nothing: `write_pos` itself is the record count.
    #[inline]
    fn publish(&mut self, n: usize) {
        self.write_pos = self.write_pos.wrapping_add(n);
        // Release: publishes the slot writes; pairs with the Acquire load of
        // write_pos in the consumer's `refresh`.
        self.shared
            .write_pos
            .store(self.write_pos, Ordering::Release);
        self.shared.data_ready.notify(&mut self.data_armed);
    }

    /// [`publish`](Self::publish) for a batch operation, which counts once.
    #[inline]
    fn publish_batch(&mut self, n: usize) {
        self.publish(n);
        self.counters.batch(n);
    }

    /// Pushes `value` without waiting.
    ///
    /// # Errors
    ///
    /// `Full(value)` if every slot is taken; `Disconnected(value)` instead if
    /// additionally the consumer is gone.
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), TryPushError<T>> {
        if self.free_for(1) == 0 {
            if self.is_abandoned() {
                return Err(TryPushError::Disconnected(value));
            }
            return Err(TryPushError::Full(value));
        }
        // SAFETY: we are the producer and free_for saw a free slot at write_pos
        // after an Acquire load of read_pos.
        unsafe { self.shared.write(self.write_pos, value) };
        self.publish(1);
        Ok(())
    }

    /// Pushes `value`, waiting (spin, yield, then sleep) for a free slot
    /// until `deadline` (`None`: for ever).
    ///
    /// # Errors
    ///
    /// `Timeout(value)` at the deadline; `Disconnected(value)` if the
    /// consumer is gone while the ring is full.
    pub fn push(&mut self, value: T, deadline: Deadline) -> Result<(), PushError<T>> {
        let mut value = value;
        loop {
            match self.try_push(value) {
                Ok(()) => return Ok(()),
                Err(TryPushError::Disconnected(v)) => return Err(PushError::Disconnected(v)),
                Err(TryPushError::Full(v)) => value = v,
            }
            if !self.wait_for_space(deadline) {
                // One last look: space may have come with the deadline.
                return self.try_push(value).map_err(|e| match e {
                    TryPushError::Full(v) => PushError::Timeout(v),
                    TryPushError::Disconnected(v) => PushError::Disconnected(v),
                });
            }
        }
    }

    /// Waits until a slot is free or the consumer is gone; `false` at the
    /// deadline.
    fn wait_for_space(&mut self, deadline: Deadline) -> bool {
        let shared = &*self.shared;
        let full_at = self.write_pos.wrapping_sub(shared.capacity());
        shared
            .space_ready
            .wait_until(&mut self.space_acked, &self.strategy, deadline, || {
                // Relaxed: only a hint to stop waiting; `refresh` re-reads read_pos
                // with Acquire and `is_abandoned` the flag.
                shared.read_pos.load(Ordering::Relaxed) != full_at
                    || shared.closed.consumer.load(Ordering::Relaxed)
            })
    }

    /// Pushes `value` if a slot is free, otherwise drops it and counts it in
    /// [`SpscStats::dropped_batches`] (also when the consumer is gone).
    /// Returns whether it was pushed.
    #[inline]
    pub fn try_push_or_drop(&mut self, value: T) -> bool {
        match self.try_push(value) {
            Ok(()) => true,
            Err(e) => {
                self.counters.dropped(1);
                drop(e.into_inner());
                false
            }
        }
    }

    /// Moves values from `iter` into the ring while slots are free, with one
    /// publish and one notify for all of them. Stops pulling from `iter` when
    /// the ring is full, so no value is lost. Returns how many were taken.
    ///
    /// If `iter` panics, the values it already yielded are leaked (never
    /// published, never dropped); the ring stays sound.
    pub fn push_iter<I: Iterator<Item = T>>(&mut self, iter: &mut I) -> usize {
        let free = self.free_for(self.capacity());
        // SAFETY: we are the producer and `free` slots after write_pos are free
        // (read_pos loaded with Acquire).
        let n = unsafe { self.shared.write_from(self.write_pos, free, iter) };
        if n > 0 {
            self.publish_batch(n);
        }
        n
    }

    /// Moves as many values as fit from the front of `items` into the ring,
    /// with one publish and one notify. The rest stay in `items`, in order.
    /// Returns how many were taken.
    pub fn push_batch(&mut self, items: &mut Vec<T>) -> usize {
        let n = self.free_for(items.len()).min(items.len());
        if n == 0 {
            return 0;
        }
        // SAFETY: we are the producer and n <= free slots after write_pos.
        let written = unsafe {
            self.shared
                .write_from(self.write_pos, n, &mut items.drain(..n))
        };
        debug_assert_eq!(written, n);
        self.publish_batch(n);
        n
    }

    /// Copies as many values as fit from the front of `items` into the ring,
    /// with one publish and one notify. Returns how many were copied.
    pub fn push_slice(&mut self, items: &[T]) -> usize
    where
        T: Copy,
    {
        let n = self.free_for(items.len()).min(items.len());
        if n == 0 {
            return 0;
        }
        // SAFETY: we are the producer and n <= free slots after write_pos.
        let written = unsafe {
            self.shared
                .write_from(self.write_pos, n, &mut items.iter().copied())
        };
        debug_assert_eq!(written, n);
        self.publish_batch(n);
        n
    }

    /// Pushes every value of `items` with one publish if they all fit,
    /// otherwise drops the whole batch and counts it in
    /// [`SpscStats::dropped_batches`] and
    /// [`dropped_records`](SpscStats::dropped_records). Returns whether it
    /// was pushed. All or nothing, so a batch is never split by a drop.
    ///
    /// An iterator whose `len()` is wrong is handled: at most `len()` values
    /// are pulled, and the batch is what it actually yielded.
    pub fn try_push_batch_or_drop<I>(&mut self, items: I) -> bool
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        let iter = items.into_iter();
        let len = iter.len();
        if len == 0 {
            return true;
        }
        if self.free_for(len) < len {
            self.counters.dropped(len);
            return false;
        }
        self.push_iter(&mut iter.take(len));
        true
    }

    /// Pushes every value of `items` (waiting for space as [`push`] does),
    /// publishing as soon as a part fits. Returns how many were pushed:
    /// fewer than `items.len()` only at the deadline or when the consumer is
    /// gone; the rest stay in `items`.
    ///
    /// [`push`]: Self::push
    pub fn push_all(&mut self, items: &mut Vec<T>, deadline: Deadline) -> usize {
        let mut total = 0;
        while !items.is_empty() {
            let n = self.push_batch(items);
            total += n;
            if n == 0 && (self.is_abandoned() || !self.wait_for_space(deadline)) {
                // One last look: space may have come with the deadline.
                total += self.push_batch(items);
                break;
            }
        }
        total
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        // Release: everything published before is visible to a consumer
        // that sees the flag; pairs with the Acquire loads in
        // `Consumer::is_abandoned` and the consumer's empty check.
        self.shared.closed.producer.store(true, Ordering::Release);
        self.shared.data_ready.notify_always();
    }
}
