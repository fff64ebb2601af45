//! The consumer end: the one handle that reads.

use super::error::{PopError, TryPopError};
use super::policy::PolicyKind;
use super::queue::{Peek, SPILL_BIT};
use super::spill::Refill;
use super::stats::bump;
use super::{MpscStats, Shared};
use crate::sync::{Arc, Ordering};
use crate::wait::{Deadline, WaitStrategy};
use std::collections::VecDeque;

/// A blocking batch call that took fewer items than this (and fewer than
/// it asked for) drained the ring up to the producers' frontier.
const LINGER_BELOW: usize = 512;

/// Spin-loop hints the next blocking batch call spends, at most, waiting
/// for the slot `LINGER_BELOW - 1` past `read_pos` to be published before it
/// looks at `read_pos` (none under loom, whose models need few steps).
const LINGER_SPINS: u32 = if cfg!(loom) { 0 } else { 512 };

/// Spin-loop hints between two looks at that slot while lingering.
const LINGER_STEP: u32 = 64;

/// The consuming end of an MPSC ring. There is exactly one; its operations
/// take `&mut self`.
///
/// # Examples
///
/// ```
/// use ringlog::mpsc::{self, Policy, TryPopError};
///
/// let (mut tx, mut rx) = mpsc::channel::<String>(16, Policy::BLOCK).unwrap();
/// tx.push("hello".to_string()).unwrap();
/// assert_eq!(rx.try_pop().as_deref(), Ok("hello"));
/// assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
/// ```
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    /// Items decoded from the spill file, delivered before anything else.
    spilled: VecDeque<T>,
    strategy: WaitStrategy,
    /// The last blocking batch call drained the ring up to the frontier
    /// (see [`linger`](Self::linger)).
    pub(super) at_frontier: bool,
    /// loom only: wake `DropOldest` stalls without the notifier's fence, so
    /// a model can show that the fence is what prevents a lost wake-up.
    #[cfg(loom)]
    unfenced_freed_wake: bool,
}

impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Release: not needed for data (producers only stop pushing), but
        // orders our last reads before producers observe the close.
        self.shared.consumer_closed.store(true, Ordering::Release);
        self.shared.notify_space();
    }
}

impl<T> Consumer<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>) -> Self {
        Self {
            shared,
            spilled: VecDeque::new(),
            strategy: WaitStrategy::DEFAULT,
            at_frontier: false,
            #[cfg(loom)]
            unfenced_freed_wake: false,
        }
    }

    /// Sets how blocking calls wait (spin, yield, then sleep).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// loom builds only: wake `DropOldest` producers stalled on a slot
    /// being freed without the notifier's fence, so that a model can show
    /// the fence is needed.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn unfence_freed_wake_for_loom(&mut self) {
        self.unfenced_freed_wake = true;
    }

    /// Ring capacity in slots.
    pub fn capacity(&self) -> usize {
        self.shared.queue.capacity()
    }

    /// Items in the ring now (a hint; the spill file is not counted).
    pub fn len(&self) -> usize {
        self.shared.queue.len() + self.spilled.len()
    }

    /// Whether the ring looks empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the channel occupies: the shared block plus the slot array
    /// (each slot is a `T` plus its stamp, padded to `T`'s alignment). The
    /// overhead beyond `capacity * size_of::<T>()` is the stamps and one
    /// shared block.
    pub fn footprint_bytes(&self) -> usize {
        std::mem::size_of::<Shared<T>>() + self.shared.queue.slots_bytes()
    }

    /// A snapshot of the channel's counters.
    pub fn stats(&self) -> MpscStats {
        self.shared.stats()
    }

    #[inline]
    fn count(&mut self, n: usize) {
        bump(&self.shared.stats.popped, n as u64);
    }

    /// After freeing slots: wake producers that wait for room (`Block`), or
    /// for the slot we just freed (`DropOldest`'s `Stall::Freeing`, whose
    /// waiters sleep on the `data` event).
    #[inline]
    pub(super) fn freed(&self) {
        match self.shared.policy {
            PolicyKind::Block => self.shared.notify_freed(),
            PolicyKind::DropOldest => {
                #[cfg(loom)]
                if self.unfenced_freed_wake {
                    self.shared.data.notify_unfenced_for_loom();
                    self.shared.recv_wakers.wake_all();
                    return;
                }
                // The SeqCst fence in `notify` orders the stamp store of
                // `take` before the load of `waiters`; pairs with the fence
                // in the stalled producer's `Event::wait_until` (or in
                // `WakerSet::register`).
                self.shared.notify_data()
            }
            PolicyKind::DropNewest | PolicyKind::Spill => {}
        }
    }

    /// Takes up to `max` published items from the ring (spill buffer first)
    /// without waiting; returns how many.
    fn take_ready(&mut self, max: usize, out: &mut Vec<T>) -> usize {
        let mut taken = 0;
        while taken < max {
            if let Some(item) = self.spilled.pop_front() {
                out.push(item);
                taken += 1;
                continue;
            }
            let q = &self.shared.queue;
            let read_pos = q.read_pos();
            let n = q.count_ready(read_pos, max - taken);
            if n == 0 {
                // Only a spilling channel needs to know why nothing is ready:
                // `peek` loads the producers' `write_pos` line, and a load after
                // every drained chunk would make the next reservation CAS
                // wait for that line to come back.
                if self.shared.spill.is_some()
                    && q.peek(read_pos) == Peek::Empty
                    && self.refill_spill(read_pos)
                {
                    continue;
                }
                break;
            }
            if !q.claim(read_pos, n) {
                // An evicting producer took the oldest first.
                crate::sync::spin_hint();
                continue;
            }
            out.reserve(n);
            for i in 0..n {
                // SAFETY: `read_pos..read_pos + n` were published and we claimed them.
                out.push(unsafe { q.take(read_pos.wrapping_add(i)) });
            }
            taken += n;
            self.freed();
        }
        if taken > 0 {
            self.count(taken);
        }
        taken
    }

    /// Takes the next item without sleeping.
    ///
    /// It looks only at the slot of `read_pos` (and, for a spilling channel, at
    /// the spill mark): an item not yet published there is `Empty`, even if
    /// its producer has reserved it. The producers' `write_pos` line is not read,
    /// because each read of it makes the next reservation CAS wait for the
    /// line to come back; blocking calls wait for such an item on the event.
    ///
    /// # Errors
    ///
    /// `Empty` when nothing is published now, `Disconnected` when every
    /// producer is gone and everything has been read.
    pub fn try_pop(&mut self) -> Result<T, TryPopError> {
        loop {
            if let Some(item) = self.spilled.pop_front() {
                self.count(1);
                return Ok(item);
            }
            let q = &self.shared.queue;
            let read_pos = q.read_pos();
            if q.is_published(read_pos) {
                if q.claim(read_pos, 1) {
                    // SAFETY: published and claimed by us.
                    let item = unsafe { q.take(read_pos) };
                    self.freed();
                    self.count(1);
                    return Ok(item);
                }
                // An evicting producer took it first.
                crate::sync::spin_hint();
                continue;
            }
            if self.shared.spill.is_some() && self.refill_spill(read_pos) {
                continue;
            }
            // Acquire: pairs with the Release decrement in `Producer::drop`:
            // every item of every producer is published and visible once the
            // count reads zero, so the slot of `read_pos` tells the rest.
            if self.shared.producers.load(Ordering::Acquire) == 0 {
                let read_pos = self.shared.queue.read_pos();
                if self.shared.queue.is_published(read_pos) || self.refill_spill(read_pos) {
                    continue;
                }
                return Err(TryPopError::Disconnected);
            }
            return Err(TryPopError::Empty);
        }
    }

    /// With the ring empty up to the spill mark: reads the next items from
    /// the spill file. True if the caller should look again.
    fn refill_spill(&mut self, read_pos: usize) -> bool {
        let q = &self.shared.queue;
        let write_pos = q.write_word();
        if write_pos & SPILL_BIT == 0 || write_pos & !SPILL_BIT != read_pos {
            return false;
        }
        let Some(store) = self.shared.spill.as_ref() else {
            return false;
        };
        let (refill, lost) = store.refill(q, &mut self.spilled);
        if lost > 0 {
            bump(&self.shared.stats.spill_lost, lost);
        }
        if refill == Refill::Drained {
            // Producers may use the ring again; nobody waits for that.
        }
        true
    }

    /// Takes the next item, sleeping until one is published or `deadline`
    /// passes (`None`: wait for ever).
    ///
    /// # Errors
    ///
    /// `Timeout` at the deadline, `Disconnected` when every producer is gone
    /// and everything has been read.
    pub fn pop(&mut self, deadline: Deadline) -> Result<T, PopError> {
        loop {
            match self.try_pop() {
                Ok(item) => return Ok(item),
                Err(TryPopError::Disconnected) => return Err(PopError::Disconnected),
                Err(TryPopError::Empty) => {
                    if !self.wait_for_data(deadline) {
                        return Err(PopError::Timeout);
                    }
                }
            }
        }
    }

    /// Sleeps until something may be readable; false at the deadline.
    fn wait_for_data(&self, deadline: Deadline) -> bool {
        let shared = &*self.shared;
        // Closing on `write_pos` lets producers publish without a fence
        // (`Shared::notify_published`); fenced notifiers pair with the fence
        // of the wait.
        shared.data.wait_until_closed(
            &self.strategy,
            deadline,
            || shared.readable_hint(),
            || {
                #[cfg(loom)]
                if shared.unclosed_waits_for_loom() {
                    return false;
                }
                shared.close_data_wait()
            },
        )
    }

    /// Moves up to `max_items` items into `out` without sleeping and returns
    /// how many.
    ///
    /// # Errors
    ///
    /// As [`try_pop`](Self::try_pop), when no item at all could be taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlog::mpsc::{self, Policy};
    ///
    /// let (mut tx, mut rx) = mpsc::channel::<u8>(8, Policy::BLOCK).unwrap();
    /// for i in 0..5 {
    ///     tx.push(i).unwrap();
    /// }
    /// let mut out = Vec::new();
    /// assert_eq!(rx.take_batch(3, &mut out), Ok(3));
    /// assert_eq!(rx.take_batch(3, &mut out), Ok(2));
    /// assert_eq!(out, [0, 1, 2, 3, 4]);
    /// ```
    pub fn take_batch(&mut self, max_items: usize, out: &mut Vec<T>) -> Result<usize, TryPopError> {
        if max_items == 0 {
            return Ok(0);
        }
        let n = self.take_ready(max_items, out);
        if n > 0 {
            return Ok(n);
        }
        // Nothing ready: let `try_pop` tell Empty from Disconnected, read the
        // spill, or catch a publication that is just landing.
        let first = self.try_pop()?;
        out.push(first);
        Ok(1 + self.take_ready(max_items - 1, out))
    }

    /// Like [`take_batch`](Self::take_batch), sleeping until at least one
    /// item arrives or `deadline` passes.
    ///
    /// A call that follows one which found only a few items (it drained the
    /// ring up to what the producers are writing) first spins for about
    /// 6 µs at most, until a few hundred items are ready, so that it does
    /// not take back the cache line a producer is filling: this is what
    /// lets a consumer that keeps up take hundreds of items per call rather
    /// than a handful. A consumer set to [`WaitStrategy::SLEEP`] does not
    /// spin.
    ///
    /// # Errors
    ///
    /// As [`pop`](Self::pop).
    pub fn take_batch_until(
        &mut self,
        max_items: usize,
        out: &mut Vec<T>,
        deadline: Deadline,
    ) -> Result<usize, PopError> {
        if self.at_frontier && max_items > 0 {
            self.linger(max_items);
        }
        loop {
            match self.take_batch(max_items, out) {
                Ok(n) => {
                    self.at_frontier = n < max_items && n < LINGER_BELOW;
                    return Ok(n);
                }
                Err(TryPopError::Disconnected) => return Err(PopError::Disconnected),
                Err(TryPopError::Empty) => {
                    if !self.wait_for_data(deadline) {
                        return Err(PopError::Timeout);
                    }
                }
            }
        }
    }

    /// Before a blocking batch call that follows one which drained the ring
    /// up to the producers' frontier: spins (at most `LINGER_SPINS` hints,
    /// about 6 µs at 11 ns a hint) until the slot `LINGER_BELOW - 1` past
    /// `read_pos` is published, so that the call finds many cache lines of
    /// items instead of the one a producer is filling.
    ///
    /// A consumer that keeps up with its producers otherwise reads the slot
    /// a producer is writing on every call, takes its cache line away, and
    /// finds a handful of items each time: with one producer of `u64`s it
    /// took about 10 items per call at 20 M items/s; lingering for the slot
    /// 255 ahead (at most 256 hints), about 190 per call at 54-58 M items/s;
    /// for the slot 511 ahead (at most 512 hints), about 385 per call at
    /// 64 M items/s (2-core machine, back-to-back runs). The slot looked at
    /// is ahead of the producers, on a line this consumer freed itself, so
    /// looking costs no transfer until a producer gets there; it is looked
    /// at every `LINGER_STEP` hints, not at every one, for the same reason. What it costs is up to `LINGER_SPINS` hints
    /// of delivery latency while items trickle in. A call after an empty
    /// wait, a full batch or one of `LINGER_BELOW` items or more does not
    /// linger, nor does a consumer whose strategy does not spin
    /// ([`WaitStrategy::SLEEP`]).
    fn linger(&mut self, max_items: usize) {
        debug_assert!(max_items > 0, "the slot looked at is max_items - 1 ahead");
        self.at_frontier = false;
        if LINGER_SPINS == 0 || self.strategy.spins == 0 {
            return;
        }
        let shared = &*self.shared;
        // Relaxed: a hint; with no producer left nothing more is coming.
        if !self.spilled.is_empty() || shared.producers.load(Ordering::Relaxed) == 0 {
            return;
        }
        let q = &shared.queue;
        let ahead = q.read_pos().wrapping_add(max_items.min(LINGER_BELOW) - 1);
        let mut spent = 0;
        while spent < LINGER_SPINS && !q.is_published(ahead) {
            for _ in 0..LINGER_STEP {
                crate::sync::spin_hint();
            }
            spent += LINGER_STEP;
        }
    }

    /// An iterator that takes items until the ring is empty (or every
    /// producer is gone); it never sleeps.
    pub fn drain(&mut self) -> Drain<'_, T> {
        Drain { consumer: self }
    }

    pub(crate) fn shared(&self) -> &Shared<T> {
        &self.shared
    }
}

impl<T> Shared<T> {
    /// Whether the consumer should look again: an item published at `read_pos`,
    /// the spill boundary reached, or no producer left. A wake-up hint.
    ///
    /// It runs on every spin of a waiting consumer, so it reads the slot's
    /// stamp and not the producers' `write_pos` line (each load of that line makes
    /// the next reservation CAS wait for it); `write_pos` is read only by a
    /// spilling channel, for its spill mark.
    pub(crate) fn readable_hint(&self) -> bool {
        let q = &self.queue;
        let read_pos = q.read_pos();
        q.is_published(read_pos)
            || (self.spill.is_some() && {
                let write_pos = q.write_word();
                write_pos & SPILL_BIT != 0 && write_pos & !SPILL_BIT == read_pos
            })
            // Relaxed: a hint; `try_pop` re-reads it with Acquire.
            || self.producers.load(Ordering::Relaxed) == 0
    }
}

/// Iterator returned by [`Consumer::drain`].
#[derive(Debug)]
pub struct Drain<'a, T> {
    consumer: &'a mut Consumer<T>,
}

impl<T> Iterator for Drain<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.consumer.try_pop().ok()
    }
}
