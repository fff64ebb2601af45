//! The consumer end: move values out of published slots, release them.

use super::error::{PopError, TryPopError};
use super::stats::{Counters, SpscStats};
use super::Shared;
use crate::sync::{Arc, Ordering, UnsafeCell};
use crate::wait::handshake::{Notifier, Waiter};
use crate::wait::{Deadline, WaitStrategy};
use std::mem::MaybeUninit;

/// The reading end of a typed SPSC ring. Only one exists per ring.
///
/// # Examples
///
/// ```
/// use ringlog::spsc::{self, PopError, TryPopError};
/// use std::time::Duration;
///
/// let (mut tx, mut rx) = spsc::channel::<u64>(16);
/// assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
/// let soon = ringlog::wait::deadline_after(Some(Duration::from_millis(1)));
/// assert_eq!(rx.pop(soon), Err(PopError::Timeout));
/// tx.push_slice(&[1, 2, 3]);
/// assert_eq!(rx.available(), 3);
/// assert_eq!(rx.pop(None), Ok(1));
/// let mut out = Vec::new();
/// assert_eq!(rx.take_batch(8, &mut out), 2);
/// assert_eq!(out, [2, 3]);
/// assert_eq!(rx.stats().records, 3);
/// ```
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    /// Our own `read_pos`: only we write the shared one.
    read_pos: usize,
    /// Last `write_pos` loaded from the producer's line; may be stale (too
    /// small), which only makes us re-read it.
    cached_write_pos: usize,
    strategy: WaitStrategy,
    counters: Counters,
    /// Our side of the space wake-up handshake: notifying while the
    /// producer is in a sleep episode.
    space_armed: Notifier,
    /// Our side of the data wake-up handshake: our sleep episodes.
    data_acked: Waiter,
}

impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.shared.capacity())
            .field("read_pos", &self.read_pos)
            .finish_non_exhaustive()
    }
}

impl<T> Consumer<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>) -> Self {
        // Relaxed: see `Producer::new`.
        let read_pos = shared.read_pos.load(Ordering::Relaxed);
        Self {
            shared,
            read_pos,
            cached_write_pos: read_pos,
            strategy: WaitStrategy::DEFAULT,
            counters: Counters::new(read_pos),
            space_armed: Notifier::default(),
            data_acked: Waiter::default(),
        }
    }

    /// Sets how blocking calls wait (spin, yield, then sleep).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// Number of slots (a power of two).
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// Values published and not yet popped, as seen now (re-reads the
    /// producer's index).
    pub fn available(&mut self) -> usize {
        self.refresh()
    }

    /// Whether the producer has been dropped (values it pushed may still be
    /// waiting to be popped).
    pub fn is_abandoned(&self) -> bool {
        // Acquire: pairs with the Release store in `Producer::drop`.
        self.shared.closed.producer.load(Ordering::Acquire)
    }

    /// A snapshot of this handle's counters (values popped, batches).
    pub fn stats(&self) -> SpscStats {
        self.counters
            .snapshot(self.read_pos, std::mem::size_of::<T>())
    }

    /// Re-reads the producer's `write_pos` and returns the published values.
    #[inline]
    fn refresh(&mut self) -> usize {
        // Acquire: pairs with the Release store of write_pos in the producer's
        // `publish`, so the slot writes before it are visible.
        self.cached_write_pos = self.shared.write_pos.load(Ordering::Acquire);
        self.cached_write_pos.wrapping_sub(self.read_pos)
    }

    /// Published values, re-reading `write_pos` only when the cache shows fewer
    /// than `want`. `Err` means empty, telling whether the producer is gone.
    #[inline]
    fn ready(&mut self, want: usize) -> Result<usize, TryPopError> {
        let n = self.cached_write_pos.wrapping_sub(self.read_pos);
        if n >= want {
            return Ok(n);
        }
        let n = self.refresh();
        if n > 0 {
            return Ok(n);
        }
        if !self.is_abandoned() {
            return Err(TryPopError::Empty);
        }
        // The producer may have published just before closing: look again
        // now that its close (Release, seen with Acquire) orders that.
        match self.refresh() {
            0 => Err(TryPopError::Disconnected),
            n => Ok(n),
        }
    }

    /// Gives `n > 0` popped slots back to the producer and wakes it if it
    /// sleeps. Counts nothing: `read_pos` itself is the record count.
    #[inline]
    fn release(&mut self, n: usize) {
        release(&self.shared, &mut self.read_pos, &mut self.space_armed, n);
    }

    /// Pops the oldest value without waiting.
    ///
    /// # Errors
    ///
    /// `Empty` if nothing is published; `Disconnected` if additionally the
    /// producer is gone.
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, TryPopError> {
        self.ready(1)?;
        // SAFETY: we are the consumer, `read_pos < write_pos` for a write_pos loaded with
        // Acquire, and `release` moves read_pos past the slot right after.
        let value = unsafe { self.shared.read(self.read_pos) };
        self.release(1);
        Ok(value)
    }

    /// Pops the oldest value, waiting (spin, yield, then sleep) until one is
    /// published or `deadline` passes (`None`: for ever).
    ///
    /// # Errors
    ///
    /// `Timeout` at the deadline; `Disconnected` once the producer is gone
    /// and every value it pushed has been popped.
    pub fn pop(&mut self, deadline: Deadline) -> Result<T, PopError> {
        loop {
            match self.try_pop() {
                Ok(v) => return Ok(v),
                Err(TryPopError::Disconnected) => return Err(PopError::Disconnected),
                Err(TryPopError::Empty) => {}
            }
            if !self.wait_for_data(deadline) {
                // One last look: data may have come with the deadline.
                return self.try_pop().map_err(|e| match e {
                    TryPopError::Empty => PopError::Timeout,
                    TryPopError::Disconnected => PopError::Disconnected,
                });
            }
        }
    }

    /// Waits until a value is published or the producer is gone; `false` at
    /// the deadline.
    fn wait_for_data(&mut self, deadline: Deadline) -> bool {
        let shared = &*self.shared;
        let read_pos = self.read_pos;
        shared
            .data_ready
            .wait_until(&mut self.data_acked, &self.strategy, deadline, || {
                // Relaxed: only a hint to stop waiting; `refresh` re-reads write_pos
                // with Acquire and `is_abandoned` the flag.
                shared.write_pos.load(Ordering::Relaxed) != read_pos
                    || shared.closed.producer.load(Ordering::Relaxed)
            })
    }

    /// Moves up to `max` published values, oldest first, onto the end of
    /// `out`, releasing them with one store and one notify. Returns how many
    /// were moved (0 when empty; see [`is_abandoned`](Self::is_abandoned)).
    ///
    /// `out` grows if it lacks room; reuse one `Vec` to avoid allocating.
    pub fn take_batch(&mut self, max: usize, out: &mut Vec<T>) -> usize {
        let n = match self.ready(max) {
            Ok(n) => n.min(max),
            Err(_) => return 0,
        };
        if n == 0 {
            return 0;
        }
        out.reserve(n);
        // SAFETY: we are the consumer, read_pos + n <= write_pos (Acquire), and
        // `release` moves read_pos past all n slots.
        unsafe { self.shared.read_into(self.read_pos, n, out) };
        self.release(n);
        self.counters.batch(n);
        n
    }

    /// Moves up to `max` published values out of the ring in place, oldest
    /// first, without copying them into a buffer: the returned iterator
    /// reads each value from its slot as it is asked for it. When the
    /// iterator is dropped, the slots of the values it yielded go back to the
    /// producer with one store and one notify; values it did not yield stay
    /// in the ring, to be popped later. Empty when nothing is published (see
    /// [`is_abandoned`](Self::is_abandoned)).
    ///
    /// This is the consumer's one-pass batch: [`take_batch`](Self::take_batch)
    /// writes the values into a `Vec` that is then read again.
    ///
    /// Forgetting the iterator (`mem::forget`) is sound: it leaks the values
    /// it did not yield, and no value is ever read twice.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, mut rx) = ringlog::spsc::channel::<String>(8);
    /// for w in ["a", "b", "c"] {
    ///     tx.try_push(w.to_string()).unwrap();
    /// }
    /// let mut batch = rx.drain(8);
    /// assert_eq!(batch.len(), 3);
    /// assert_eq!(batch.next().as_deref(), Some("a"));
    /// assert_eq!(batch.next().as_deref(), Some("b"));
    /// drop(batch); // "a" and "b" are released, "c" stays
    /// assert_eq!(rx.try_pop().as_deref(), Ok("c"));
    /// ```
    #[inline]
    pub fn drain(&mut self, max: usize) -> Drain<'_, T> {
        let n = match self.ready(max) {
            Ok(n) => n.min(max),
            Err(_) => 0,
        };
        let start = self.read_pos;
        let end = start.wrapping_add(n);
        // Claimed up front, as `Vec::drain` shortens the vector first: if
        // the drain is forgotten, the values it did not yield are leaked,
        // never read twice. Its drop moves read_pos back to what it yielded.
        self.read_pos = end;
        let Consumer {
            shared,
            read_pos,
            counters,
            space_armed,
            ..
        } = self;
        let shared: &Shared<T> = shared;
        Drain {
            slots: shared.slots(),
            mask: shared.capacity() - 1,
            pos: start,
            start,
            end,
            shared,
            read_pos,
            counters,
            space_armed,
        }
    }

    /// Like [`take_batch`](Self::take_batch), but waits (spin, yield, then
    /// sleep) until at least one value is published.
    ///
    /// # Errors
    ///
    /// `Timeout` at the deadline with nothing published; `Disconnected` once
    /// the producer is gone and every value it pushed has been popped.
    pub fn take_batch_wait(
        &mut self,
        max: usize,
        out: &mut Vec<T>,
        deadline: Deadline,
    ) -> Result<usize, PopError> {
        if max == 0 {
            return Ok(0);
        }
        self.wait_ready(deadline)?;
        Ok(self.take_batch(max, out))
    }

    /// Like [`drain`](Self::drain), but waits (spin, yield, then sleep) until
    /// at least one value is published.
    ///
    /// # Errors
    ///
    /// `Timeout` at the deadline with nothing published; `Disconnected` once
    /// the producer is gone and every value it pushed has been popped.
    pub fn drain_wait(&mut self, max: usize, deadline: Deadline) -> Result<Drain<'_, T>, PopError> {
        if max == 0 {
            return Ok(self.drain(0));
        }
        self.wait_ready(deadline)?;
        Ok(self.drain(max))
    }

    /// Waits (spin, yield, then sleep) until at least one value is published.
    ///
    /// # Errors
    ///
    /// `Timeout` at the deadline with nothing published; `Disconnected` once
    /// the producer is gone and every value it pushed has been popped.
    fn wait_ready(&mut self, deadline: Deadline) -> Result<(), PopError> {
        loop {
            match self.ready(1) {
                Ok(_) => return Ok(()),
                Err(TryPopError::Disconnected) => return Err(PopError::Disconnected),
                Err(TryPopError::Empty) => {}
            }
            if !self.wait_for_data(deadline) {
                // One last look: data may have come with the deadline.
                return match self.ready(1) {
                    Ok(_) => Ok(()),
                    Err(TryPopError::Disconnected) => Err(PopError::Disconnected),
                    Err(TryPopError::Empty) => Err(PopError::Timeout),
                };
            }
        }
    }
}

/// The values [`Consumer::drain`] moves out of the ring, oldest first.
///
/// Dropping it releases the slots of the values it yielded; the others stay
/// in the ring. Forgetting it (`mem::forget`) leaks the values it did not
/// yield.
#[must_use = "a Drain releases nothing until it has been iterated"]
pub struct Drain<'a, T> {
    /// The ring's slots and mask, held here so that each value costs one
    /// load of its slot, not a walk through the consumer to the ring.
    slots: &'a [UnsafeCell<MaybeUninit<T>>],
    mask: usize,
    /// The next position to yield; `start..pos` have been yielded.
    pos: usize,
    /// The consumer's read_pos when the drain began.
    start: usize,
    /// One past the last published position this drain may read; the
    /// consumer's private read_pos is here until the drain drops.
    end: usize,
    shared: &'a Shared<T>,
    read_pos: &'a mut usize,
    counters: &'a mut Counters,
    space_armed: &'a mut Notifier,
}

impl<T> std::fmt::Debug for Drain<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drain")
            .field("remaining", &self.len())
            .finish_non_exhaustive()
    }
}

impl<T> Iterator for Drain<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        if self.pos == self.end {
            return None;
        }
        let pos = self.pos;
        self.pos = pos.wrapping_add(1);
        // SAFETY: `drain` took `slots` and `mask` from one ring, whose slots
        // number `mask + 1`, so `pos & mask` is in bounds.
        let slot = unsafe { self.slots.get_unchecked(pos & self.mask) };
        Some(slot.with(|p| {
            // SAFETY: `pos` is in `start..end`, and `end <= write_pos` for a
            // write_pos the consumer loaded with Acquire in `ready`, so the
            // slot holds a published value; the drain claimed these
            // positions (the consumer's read_pos is at `end`) and `pos` only
            // moves forward, so the value is moved out exactly once.
            unsafe { (*p).assume_init_read() }
        }))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.len();
        (n, Some(n))
    }
}

impl<T> ExactSizeIterator for Drain<'_, T> {
    #[inline]
    fn len(&self) -> usize {
        self.end.wrapping_sub(self.pos)
    }
}

impl<T> std::iter::FusedIterator for Drain<'_, T> {}

impl<T> Drop for Drain<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // What was not yielded stays in the ring for the next call.
        *self.read_pos = self.start;
        let n = self.pos.wrapping_sub(self.start);
        if n > 0 {
            release(self.shared, self.read_pos, self.space_armed, n);
            self.counters.batch(n);
        }
    }
}

/// Moves the consumer's `read_pos` past `n > 0` popped slots, gives them back
/// to the producer and wakes it if it sleeps.
#[inline]
fn release<T>(shared: &Shared<T>, read_pos: &mut usize, armed: &mut Notifier, n: usize) {
    *read_pos = read_pos.wrapping_add(n);
    // Release: our moves out of the slots happen before the producer reuses
    // them; pairs with the Acquire load of read_pos in the producer's
    // `refresh`.
    shared.read_pos.store(*read_pos, Ordering::Release);
    shared.space_ready.notify(armed);
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Publishes positions a forgotten `Drain` claimed (their values were
        // moved out or leaked), so that the last owner's drop does not drop
        // them again; every other release has already stored read_pos.
        // Release: as in `release`, the moves out happen before a producer
        // that loads this with Acquire reuses the slots.
        self.shared.read_pos.store(self.read_pos, Ordering::Release);
        // Release: pairs with the Acquire in `Producer::is_abandoned`.
        self.shared.closed.consumer.store(true, Ordering::Release);
        self.shared.space_ready.notify_always();
    }
}
