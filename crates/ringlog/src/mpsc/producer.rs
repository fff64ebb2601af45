//! The producer end: cloneable handles, one per producing thread or task.

use super::error::{PushBatchError, PushError, TryPushError};
use super::policy::PolicyKind;
use super::queue::{backoff, Evict, Reserve, Stall};
use super::spill::Append;
use super::stats::{bump, CounterCell};
use super::{MpscStats, Shared};
use crate::sync::{Arc, Ordering};
use crate::wait::{deadline_after, Deadline, WaitStrategy};
use std::time::Instant;

/// Spins on a slot that is being emptied before `try_push` calls it full.
const BUSY_SPINS: u32 = if cfg!(loom) { 1 } else { 64 };

/// Spins of a `DropOldest` push on another thread's slot operation before
/// it waits for it on the `data` event. None under loom, so that the models
/// reach the wait in few steps.
const STALL_SPINS: u32 = if cfg!(loom) { 0 } else { 64 };

/// A producing end of an MPSC ring. Clone it for each producing thread:
/// every handle counts on its own cache line, and items pushed through one
/// handle reach the consumer in the order they were pushed.
///
/// Operations take `&mut self`: one handle is one ordered stream.
///
/// # Examples
///
/// ```
/// use ringlog::mpsc::{self, Policy, PushError};
///
/// let (mut tx, mut rx) = mpsc::channel::<&str>(2, Policy::DropNewest).unwrap();
/// tx.push("a").unwrap();
/// tx.push("b").unwrap();
/// match tx.push("c") {
///     Err(PushError::Full(item)) => assert_eq!(item, "c"), // handed back, counted
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(tx.stats().dropped_newest, 1);
/// assert_eq!(rx.try_pop(), Ok("a"));
/// ```
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    counters: CounterCell,
    strategy: WaitStrategy,
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl<T> Clone for Producer<T> {
    fn clone(&self) -> Self {
        // Relaxed: the count only needs to be exact, which any RMW is; the
        // new handle's items are ordered by its own Release in `drop`.
        self.shared.producers.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
            counters: self.shared.stats.register(),
            strategy: self.strategy,
        }
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        self.shared.stats.retire(&self.counters);
        // Release: every publication of this handle happens before a
        // consumer's Acquire load that sees the count reach zero (release
        // sequence of the RMWs).
        if self.shared.producers.fetch_sub(1, Ordering::Release) == 1 {
            self.shared.notify_data();
        }
    }
}

/// What one non-blocking attempt did with the item.
pub(crate) enum Attempt<T> {
    Pushed,
    /// The ring is full and the policy makes the caller decide (Block,
    /// DropNewest); the item is handed back, not yet counted.
    Full(T),
    /// `DropOldest` only: another thread is in the middle of the slot
    /// operation this push needs (the oldest item being written, or the write_pos
    /// slot being emptied), and a short spin did not see it finish. The
    /// caller waits on the `data` event (or registers in `recv_wakers`)
    /// until the stall resolves, then tries again.
    Stalled(T, Stall),
    Err(TryPushError<T>),
}

impl<T> Producer<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>) -> Self {
        let counters = shared.stats.register();
        Self {
            shared,
            counters,
            strategy: WaitStrategy::DEFAULT,
        }
    }

    /// Sets how this handle waits under `Block` (spin, yield, then sleep);
    /// clones inherit it.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// Ring capacity in slots.
    pub fn capacity(&self) -> usize {
        self.shared.queue.capacity()
    }

    /// Items in the ring now (a hint; the spill file is not counted).
    pub fn len(&self) -> usize {
        self.shared.queue.len()
    }

    /// Whether the ring looks empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the consumer has been dropped.
    pub fn is_disconnected(&self) -> bool {
        self.shared.is_closed()
    }

    /// A snapshot of the channel's counters.
    pub fn stats(&self) -> MpscStats {
        self.shared.stats()
    }

    #[inline]
    fn publish(&mut self, pos: usize, item: T) {
        // SAFETY: the caller reserved `pos` with `try_reserve` (which saw its
        // slot free) and writes it once.
        unsafe { self.shared.queue.write_free(pos, item) };
        self.shared.notify_published();
    }

    /// One attempt under the policy, never waiting for the consumer.
    #[inline]
    pub(crate) fn attempt(&mut self, mut item: T) -> Attempt<T> {
        if self.shared.is_closed() {
            return Attempt::Err(TryPushError::Disconnected(item));
        }
        let mut busy = 0u32;
        loop {
            match self.shared.queue.try_reserve() {
                Reserve::Ok(pos) => {
                    self.publish(pos, item);
                    return Attempt::Pushed;
                }
                Reserve::Busy(pos) if self.shared.policy == PolicyKind::DropOldest => {
                    if busy < STALL_SPINS {
                        backoff(&mut busy);
                    } else {
                        return Attempt::Stalled(item, Stall::Freeing(pos));
                    }
                }
                Reserve::Busy(_) if busy < BUSY_SPINS => backoff(&mut busy),
                Reserve::Full | Reserve::Busy(_) => match self.shared.policy {
                    PolicyKind::Block | PolicyKind::DropNewest => return Attempt::Full(item),
                    PolicyKind::DropOldest => match self.shared.queue.evict_oldest() {
                        Evict::Evicted(old) => {
                            drop(old);
                            bump(&self.counters.dropped_oldest, 1);
                        }
                        // Somebody else made progress: look again at once.
                        Evict::NotFull | Evict::Lost => crate::sync::spin_hint(),
                        Evict::Unpublished(_) if busy < STALL_SPINS => backoff(&mut busy),
                        Evict::Unpublished(pos) => {
                            return Attempt::Stalled(item, Stall::Unpublished(pos));
                        }
                    },
                    PolicyKind::Spill => match self.spill(item, true) {
                        Ok(None) => return Attempt::Pushed,
                        Ok(Some(back)) => item = back,
                        Err(e) => return Attempt::Err(e),
                    },
                },
                Reserve::Spilling => match self.spill(item, false) {
                    Ok(None) => return Attempt::Pushed,
                    Ok(Some(back)) => item = back,
                    Err(e) => return Attempt::Err(e),
                },
            }
        }
    }

    /// [`attempt`](Self::attempt), sleeping through `DropOldest` stalls:
    /// never returns `Stalled`.
    fn attempt_through_stalls(&mut self, mut item: T) -> Attempt<T> {
        loop {
            match self.attempt(item) {
                Attempt::Stalled(back, stall) => {
                    item = back;
                    self.wait_for_stall(stall);
                }
                other => return other,
            }
        }
    }

    /// Sleeps (after the strategy's spins and yields) until `stall` resolves
    /// or the consumer is gone. The thread it waits for is inside a slot
    /// operation of this process, which ends with a publication or a freed
    /// slot and a `data` notification, so no deadline is needed. Counts the
    /// time blocked.
    fn wait_for_stall(&mut self, stall: Stall) {
        let start = Instant::now();
        let shared = &*self.shared;
        // The condition's loads are Relaxed hints; the Dekker fences of
        // `Event` (its `wait_until` and the `notify` in `notify_data`) order
        // them after the change that resolves the stall.
        shared.data.wait_until(&self.strategy, None, || {
            shared.queue.stall_resolved(stall) || shared.is_closed()
        });
        bump(&self.counters.blocked_ns, start.elapsed().as_nanos() as u64);
    }

    /// Appends to the spill file; `Ok(Some(item))` means the spill drained
    /// meanwhile and the ring takes the item again.
    fn spill(&mut self, item: T, activate: bool) -> Result<Option<T>, TryPushError<T>> {
        let store = self
            .shared
            .spill
            .as_ref()
            .expect("the spill mark is only set with a spill store");
        match store.append(&self.shared.queue, item, activate) {
            Append::Stored => {
                bump(&self.counters.spilled, 1);
                self.shared.notify_data();
                Ok(None)
            }
            Append::Resume(item) => Ok(Some(item)),
            Append::Failed(item, source) => Err(TryPushError::Spill { item, source }),
        }
    }

    /// Pushes without waiting. Under `Block` a full ring gives the item back
    /// as `Full`; under the other policies this is [`push`](Self::push).
    /// (Under `DropOldest`, "without waiting" means for the consumer: a push
    /// that must evict an item another producer is still writing waits for
    /// that write, spinning briefly and then sleeping.)
    ///
    /// # Errors
    ///
    /// `Full` (ring full under `Block` or `DropNewest`; counted as dropped
    /// under `DropNewest`), `Disconnected` (consumer gone), `Spill` (spill
    /// write failed).
    pub fn try_push(&mut self, item: T) -> Result<(), TryPushError<T>> {
        match self.attempt_through_stalls(item) {
            Attempt::Pushed => Ok(()),
            Attempt::Stalled(..) => unreachable!("attempt_through_stalls waits out stalls"),
            Attempt::Full(item) => {
                if self.shared.policy == PolicyKind::DropNewest {
                    bump(&self.counters.dropped_newest, 1);
                }
                Err(TryPushError::Full(item))
            }
            Attempt::Err(e) => Err(e),
        }
    }

    /// Pushes under the channel's policy: `Block` waits for room (up to the
    /// policy's timeout), `DropNewest` hands the item back when full,
    /// `DropOldest` evicts the oldest unread item, `SpillToDisk` appends to
    /// the spill file.
    ///
    /// A `Block` timeout counts from the moment the ring was found full: a
    /// push that finds room reads no clock.
    ///
    /// # Errors
    ///
    /// `Timeout` (`Block` with a timeout), `Full` (`DropNewest`),
    /// `Disconnected`, `Spill`.
    #[inline]
    pub fn push(&mut self, item: T) -> Result<(), PushError<T>> {
        match self.attempt_through_stalls(item) {
            Attempt::Pushed => Ok(()),
            Attempt::Stalled(..) => unreachable!("attempt_through_stalls waits out stalls"),
            Attempt::Err(e) => Err(e.into()),
            Attempt::Full(back) => self.push_when_full(back),
        }
    }

    /// The rest of [`push`](Self::push) once the ring was found full: what
    /// [`push_until`](Self::push_until) does there, with the policy's
    /// timeout starting now.
    #[cold]
    fn push_when_full(&mut self, item: T) -> Result<(), PushError<T>> {
        if self.shared.policy == PolicyKind::DropNewest {
            bump(&self.counters.dropped_newest, 1);
            return Err(PushError::Full(item));
        }
        let deadline = deadline_after(self.shared.timeout);
        if !self.wait_for_space(deadline) {
            return Err(PushError::Timeout(item));
        }
        self.push_until(item, deadline)
    }

    /// Like [`push`](Self::push), with an explicit deadline for `Block`
    /// (`None`: wait for ever) instead of the policy's timeout.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    pub fn push_until(&mut self, mut item: T, deadline: Deadline) -> Result<(), PushError<T>> {
        loop {
            match self.attempt_through_stalls(item) {
                Attempt::Pushed => return Ok(()),
                Attempt::Stalled(..) => unreachable!("attempt_through_stalls waits out stalls"),
                Attempt::Err(e) => return Err(e.into()),
                Attempt::Full(back) => {
                    if self.shared.policy == PolicyKind::DropNewest {
                        bump(&self.counters.dropped_newest, 1);
                        return Err(PushError::Full(back));
                    }
                    item = back;
                    if !self.wait_for_space(deadline) {
                        return Err(PushError::Timeout(item));
                    }
                }
            }
        }
    }

    /// Sleeps until there may be room or the consumer left; false at the
    /// deadline. Counts the time blocked.
    fn wait_for_space(&mut self, deadline: Deadline) -> bool {
        let start = Instant::now();
        let shared = &*self.shared;
        // Closing on `read_pos` lets the consumer free slots without a fence
        // (`Shared::notify_freed`); the fenced `notify_space` of a consumer
        // that leaves pairs with the fence of the wait.
        let ok = shared.space.wait_until_closed(
            &self.strategy,
            deadline,
            || shared.space_or_closed(),
            || {
                #[cfg(loom)]
                if shared.unclosed_waits_for_loom() {
                    return false;
                }
                shared.queue.close_space_wait();
                false
            },
        );
        bump(&self.counters.blocked_ns, start.elapsed().as_nanos() as u64);
        ok
    }

    /// Pushes every item of `items` in order, reserving as many slots as
    /// fit with one CAS each time, then writing and publishing each slot.
    /// Pushed items are removed from the front of `items`; on error the
    /// ones not pushed are still there, in order.
    ///
    /// Policies apply as in [`push`](Self::push): `Block` waits (up to the
    /// policy's timeout), `DropNewest` stops at the first full ring (the
    /// items left are counted as dropped), `DropOldest` evicts, `SpillToDisk`
    /// spills the rest.
    ///
    /// # Errors
    ///
    /// [`PushBatchError`]; the items not pushed stay in `items`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlog::mpsc::{self, Policy};
    ///
    /// let (mut tx, mut rx) = mpsc::channel::<u32>(8, Policy::BLOCK).unwrap();
    /// let mut items: Vec<u32> = (0..5).collect();
    /// tx.push_batch(&mut items).unwrap();
    /// assert!(items.is_empty());
    /// let mut out = Vec::new();
    /// assert_eq!(rx.take_batch(10, &mut out), Ok(5));
    /// assert_eq!(out, [0, 1, 2, 3, 4]);
    /// ```
    pub fn push_batch(&mut self, items: &mut Vec<T>) -> Result<(), PushBatchError> {
        let deadline = deadline_after(self.shared.timeout);
        self.push_batch_inner(items, Some(deadline))
    }

    /// Like [`push_batch`](Self::push_batch), but never waits for the
    /// consumer: under `Block` a full ring ends it with `Full`. (Under
    /// `DropOldest` it may wait for another producer's write in progress,
    /// as [`try_push`](Self::try_push) does.)
    ///
    /// # Errors
    ///
    /// [`PushBatchError`]; the items not pushed stay in `items`.
    pub fn try_push_batch(&mut self, items: &mut Vec<T>) -> Result<(), PushBatchError> {
        self.push_batch_inner(items, None)
    }

    /// `wait`: `Some(deadline)` to block under `Block`, `None` never to.
    fn push_batch_inner(
        &mut self,
        items: &mut Vec<T>,
        wait: Option<Deadline>,
    ) -> Result<(), PushBatchError> {
        let mut spins = 0u32;
        while !items.is_empty() {
            if self.shared.is_closed() {
                if self.shared.policy == PolicyKind::DropOldest {
                    // An eviction of ours may have freed a slot that another
                    // producer waits for (`Stall::Freeing`); without our
                    // publication that would normally follow, wake it here.
                    self.shared.notify_data();
                }
                return Err(PushBatchError::Disconnected);
            }
            match self.shared.queue.try_reserve_many(items.len()) {
                Ok((pos, n)) => {
                    for (i, item) in items.drain(..n).enumerate() {
                        // SAFETY: `pos..pos + n` is ours, each written once.
                        unsafe { self.shared.queue.write(pos.wrapping_add(i), item) };
                    }
                    self.shared.notify_published();
                }
                Err(Reserve::Spilling) => self.spill_all(items, false)?,
                Err(_) => match self.shared.policy {
                    PolicyKind::Block => {
                        let remaining = items.len();
                        match wait {
                            None => return Err(PushBatchError::Full { remaining }),
                            Some(deadline) => {
                                if !self.wait_for_space(deadline) {
                                    return Err(PushBatchError::Timeout { remaining });
                                }
                            }
                        }
                    }
                    PolicyKind::DropNewest => {
                        let remaining = items.len();
                        bump(&self.counters.dropped_newest, remaining as u64);
                        return Err(PushBatchError::Full { remaining });
                    }
                    PolicyKind::DropOldest => match self.shared.queue.evict_oldest() {
                        Evict::Evicted(old) => {
                            drop(old);
                            bump(&self.counters.dropped_oldest, 1);
                        }
                        Evict::NotFull | Evict::Lost => crate::sync::spin_hint(),
                        Evict::Unpublished(_) if spins < STALL_SPINS => backoff(&mut spins),
                        Evict::Unpublished(pos) => {
                            spins = 0;
                            self.wait_for_stall(Stall::Unpublished(pos));
                        }
                    },
                    PolicyKind::Spill => self.spill_all(items, true)?,
                },
            }
        }
        Ok(())
    }

    /// Spills every item of `items` with one write, or, if the spill drained
    /// meanwhile, leaves them for the ring.
    fn spill_all(&mut self, items: &mut Vec<T>, activate: bool) -> Result<(), PushBatchError> {
        let store = self
            .shared
            .spill
            .as_ref()
            .expect("the spill mark is only set with a spill store");
        let n = items.len() as u64;
        match store.append_all(&self.shared.queue, items, activate) {
            Ok(true) => {
                bump(&self.counters.spilled, n);
                self.shared.notify_data();
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(e) => Err(PushBatchError::Spill(e)),
        }
    }

    pub(crate) fn shared(&self) -> &Shared<T> {
        &self.shared
    }
}
