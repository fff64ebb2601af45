//! The slot array and its two indices: the lock-free core.
//!
//! Positions are monotonic `usize` counters; a position's slot is
//! `pos & mask`. Each slot carries a *stamp* saying which position it is
//! ready for (Vyukov's bounded queue):
//!
//! | stamp of slot `pos & mask` | meaning |
//! |---|---|
//! | `pos` | empty, ready for the producer that reserves `pos` |
//! | `pos + 1` | holds the item of `pos`, published |
//! | `pos + capacity` | emptied again: ready for position `pos + capacity` |
//!
//! A producer reserves `pos` by CAS on `write_pos` (one CAS for a whole batch),
//! writes the slot, and publishes it by storing `pos + 1` with Release. The
//! reader of `pos` (the consumer, or under `DropOldest` an evicting producer)
//! claims it by moving `read_pos` past it, moves the item out, and frees the slot
//! by storing `pos + capacity` with Release. Invariant: `read_pos <= write_pos <=
//! read_pos + capacity`; every position in `read_pos..write_pos` is reserved, and every
//! position below `read_pos` has been claimed by exactly one reader.
//!
//! Under `DropOldest` the consumer and evicting producers race for the
//! oldest item, so `read_pos` only moves by CAS and a claim needs the slot to be
//! published first; otherwise only the consumer writes `read_pos`: under `Block`
//! with an Acquire `fetch_add`, the RMW that lets producers waiting for room
//! close their announcement on `read_pos` (see [`Event`](crate::wait::Event)'s
//! docs) so that freeing a slot needs no fence, and under the other
//! policies, where nobody waits for room, with a plain store.
//!
//! Symmetrically, a reservation is an Acquire RMW of `write_pos`, so a consumer
//! waiting for data closes its announcement with a Release RMW of `write_pos`
//! (`close_data_wait`) and producers publish without a fence.
//!
//! The top bit of `write_pos` is the spill mark (see `spill.rs`): while it is set
//! no CAS on `write_pos` can succeed, so every reservation is either below the
//! marked position or sees the mark.

use crate::sync::{AtomicUsize, Ordering, UnsafeCell};
use crossbeam_utils::CachePadded;
use std::mem::MaybeUninit;

/// The spill mark in `write_pos`.
pub(crate) const SPILL_BIT: usize = 1 << (usize::BITS - 1);

/// Largest capacity in slots.
pub const MAX_CAPACITY: usize = 1 << 40;

/// Spins of the bounded waits before a waiter yields.
const SPINS: u32 = if cfg!(loom) { 1 } else { 64 };

/// One slot: its stamp and the item storage.
pub(crate) struct Slot<T> {
    /// The position this slot is ready for (see the module table).
    stamp: AtomicUsize,
    /// Initialised exactly when `stamp == pos + 1` for some position `pos`
    /// (or when the slot has been claimed and not yet freed).
    value: UnsafeCell<MaybeUninit<T>>,
}

/// What a single reservation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reserve {
    /// Position reserved; the caller must write and publish it.
    Ok(usize),
    /// `write_pos - read_pos >= capacity`.
    Full,
    /// Not full by the indices, but the slot of this position (the write_pos
    /// seen) is still being emptied by its reader: retry after a moment.
    Busy(usize),
    /// The spill mark is set.
    Spilling,
}

/// What an eviction attempt found.
pub(crate) enum Evict<T> {
    /// The oldest item, now owned by the caller.
    Evicted(T),
    /// The ring has room: just push.
    NotFull,
    /// Another reader moved `read_pos` first: that is progress, retry at once.
    Lost,
    /// The oldest position (this one) is reserved but its producer has not
    /// published it yet: wait for [`Stall::Unpublished`] to resolve.
    Unpublished(usize),
}

/// Why a `DropOldest` producer cannot make progress by itself: another
/// thread is in the middle of a slot operation. Each is resolved by a
/// change that is followed by a notification of the `data` event (and its
/// wakers): a publication (`Producer::publish`, the batch path) or a slot
/// freed under `DropOldest` (`Consumer::freed`; an evictor always goes on
/// to publish or to find the next stall).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stall {
    /// The oldest position is reserved and not yet published.
    Unpublished(usize),
    /// The slot of the write_pos position is claimed by a reader that has not
    /// freed it yet.
    Freeing(usize),
}

/// What the consumer found at `read_pos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peek {
    /// `n >= 1` published items from `read_pos` on.
    Ready,
    /// `read_pos == write_pos`: nothing reserved.
    Empty,
    /// `read_pos` is reserved but not published yet.
    Pending,
}

/// The ring: slots plus read_pos and write_pos on their own cache lines.
pub(crate) struct Queue<T> {
    /// Next position to read. The consumer's line; evicting producers CAS it.
    read_pos: CachePadded<AtomicUsize>,
    /// Next position to reserve, with [`SPILL_BIT`]. The producers' line.
    write_pos: CachePadded<AtomicUsize>,
    slots: Box<[Slot<T>]>,
    /// `capacity - 1`; capacity is a power of two.
    mask: usize,
    /// How the consumer moves `read_pos`.
    read_mode: ReadMode,
}

/// How `read_pos` is moved by its readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadMode {
    /// Only the consumer, with a plain store: nobody waits for room.
    Store,
    /// Only the consumer, with an Acquire RMW: producers wait for room and
    /// close their announcement with a Release RMW of `read_pos` (`Block`).
    Rmw,
    /// The consumer and evicting producers, by CAS (`DropOldest`).
    Cas,
}

// SAFETY: items move between threads (so `T: Send`), and every access to a
// slot's value is made exclusive by the stamp protocol (module docs); no `&T`
// is ever shared, so `T: Sync` is not needed.
unsafe impl<T: Send> Sync for Queue<T> {}
// SAFETY: as above; the queue owns its items.
unsafe impl<T: Send> Send for Queue<T> {}

impl<T> Queue<T> {
    /// A ring of `capacity` slots (a power of two, checked by the caller).
    ///
    /// The slot array is allocated fallibly: a capacity whose slots do not
    /// fit the address space, or that the allocator refuses, is an error,
    /// never an abort.
    pub(crate) fn try_new(
        capacity: usize,
        read_mode: ReadMode,
    ) -> Result<Self, crate::region::AllocError> {
        debug_assert!(capacity.is_power_of_two());
        let bytes = capacity.saturating_mul(std::mem::size_of::<Slot<T>>());
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(capacity)
            .map_err(|_| crate::region::AllocError { bytes })?;
        slots.extend((0..capacity).map(|i| Slot {
            stamp: AtomicUsize::new(i),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }));
        Ok(Self {
            read_pos: CachePadded::new(AtomicUsize::new(0)),
            write_pos: CachePadded::new(AtomicUsize::new(0)),
            slots: slots.into_boxed_slice(),
            mask: capacity - 1,
            read_mode,
        })
    }

    /// Bytes of the slot array.
    pub(crate) fn slots_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }

    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    #[inline]
    fn slot(&self, pos: usize) -> &Slot<T> {
        let i = pos & self.mask;
        // The compiler cannot see that `slots.len() == mask + 1` (a field
        // set in `try_new`), so indexing would keep a bounds check and its
        // panic branch on every slot access; the mask already bounds `i`.
        debug_assert!(i < self.slots.len());
        // SAFETY: `slots` has exactly `capacity = mask + 1` elements (built
        // so in `try_new`, never resized), and `pos & mask <= mask`.
        unsafe { self.slots.get_unchecked(i) }
    }

    /// Items reserved and not yet claimed, as seen now (a hint).
    pub(crate) fn len(&self) -> usize {
        let write_pos = self.write_pos.load(Ordering::Relaxed) & !SPILL_BIT;
        let read_pos = self.read_pos.load(Ordering::Relaxed);
        (write_pos.wrapping_sub(read_pos) as isize).clamp(0, self.capacity() as isize) as usize
    }

    /// The write_pos word, spill mark included.
    #[inline]
    pub(crate) fn write_word(&self) -> usize {
        self.write_pos.load(Ordering::Relaxed)
    }

    /// Sets the spill mark; returns the write_pos position it froze.
    pub(crate) fn set_spill_mark(&self) -> usize {
        // Relaxed: the RMW's place in `write_pos`'s modification order is what
        // splits reservations into "below the mark" and "saw the mark"; the
        // spill contents are published through the spill mutex.
        self.write_pos.fetch_or(SPILL_BIT, Ordering::Relaxed) & !SPILL_BIT
    }

    /// Clears the spill mark: the ring takes pushes again.
    pub(crate) fn clear_spill_mark(&self) {
        // Relaxed: as in `set_spill_mark`.
        self.write_pos.fetch_and(!SPILL_BIT, Ordering::Relaxed);
    }

    /// Reserves one position if its slot is free (Vyukov's push).
    #[inline]
    pub(crate) fn try_reserve(&self) -> Reserve {
        let mut write_pos = self.write_pos.load(Ordering::Relaxed);
        loop {
            if write_pos & SPILL_BIT != 0 {
                return Reserve::Spilling;
            }
            // Acquire: pairs with the Release store in `take`/`free`, so the
            // previous item's move-out happens before our write to the slot.
            let stamp = self.slot(write_pos).stamp.load(Ordering::Acquire);
            let diff = stamp.wrapping_sub(write_pos) as isize;
            if diff == 0 {
                // Acquire on success: reads a waiting consumer's Release RMW
                // in `close_data_wait` (or a later RMW of its release
                // sequence), so its announcement happens before our
                // fence-free notify (module docs). Exclusivity comes from the
                // RMW itself; the slot's memory is ordered by the stamp load.
                match self.write_pos.compare_exchange_weak(
                    write_pos,
                    write_pos + 1,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Reserve::Ok(write_pos),
                    Err(now) => write_pos = now,
                }
            } else if diff < 0 {
                // The slot still holds (or is being emptied of) the item of
                // `write_pos - capacity`.
                let read_pos = self.read_pos.load(Ordering::Relaxed);
                return if write_pos.wrapping_sub(read_pos) >= self.capacity() {
                    Reserve::Full
                } else {
                    Reserve::Busy(write_pos)
                };
            } else {
                // Another producer reserved `write_pos` already.
                crate::sync::spin_hint();
                write_pos = self.write_pos.load(Ordering::Relaxed);
            }
        }
    }

    /// Reserves up to `want` consecutive positions with one CAS on `write_pos`;
    /// returns the first position and the count (`Ok((_, 0))` never happens:
    /// a full ring is `Err(Reserve::Full)`).
    pub(crate) fn try_reserve_many(&self, want: usize) -> Result<(usize, usize), Reserve> {
        debug_assert!(want > 0);
        let cap = self.capacity();
        let mut write_pos = self.write_pos.load(Ordering::Relaxed);
        loop {
            if write_pos & SPILL_BIT != 0 {
                return Err(Reserve::Spilling);
            }
            // Relaxed: only sizes the request; a stale (smaller) read_pos makes it
            // smaller, and each slot is still awaited by stamp in `write`.
            let read_pos = self.read_pos.load(Ordering::Relaxed);
            let used = write_pos.wrapping_sub(read_pos) as isize;
            if used < 0 {
                // `write_pos` was read before a reservation that `read_pos` has since
                // passed: our view is stale.
                crate::sync::spin_hint();
                write_pos = self.write_pos.load(Ordering::Relaxed);
                continue;
            }
            let free = cap.saturating_sub(used as usize);
            let n = want.min(free);
            if n == 0 {
                return Err(Reserve::Full);
            }
            // Acquire on success: as in `try_reserve`.
            match self.write_pos.compare_exchange_weak(
                write_pos,
                write_pos + n,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok((write_pos, n)),
                Err(now) => write_pos = now,
            }
        }
    }

    /// Writes `item` into reserved position `pos` and publishes it.
    ///
    /// # Safety
    ///
    /// The caller reserved `pos` (by `try_reserve` or `try_reserve_many`) and
    /// has not written it yet.
    #[inline]
    pub(crate) unsafe fn write(&self, pos: usize, item: T) {
        let slot = self.slot(pos);
        // A batch reservation does not look at stamps: wait until the reader
        // of `pos - capacity` (already past `read_pos`) has moved its item out.
        // Acquire: pairs with the Release store in `take`.
        let mut spins = 0u32;
        while slot.stamp.load(Ordering::Acquire) != pos {
            backoff(&mut spins);
        }
        // SAFETY: the caller reserved `pos`, and its slot is free (stamp ==
        // pos, seen above with Acquire).
        unsafe { self.write_free(pos, item) }
    }

    /// [`write`](Self::write) for a position reserved by `try_reserve`, which
    /// saw the slot free (its Acquire stamp load) before its CAS: the stamp
    /// stays `pos` until we publish, so it is not read again. Reading it
    /// again would fetch back a line the polling consumer may just have
    /// taken (17% of a single push's samples).
    ///
    /// # Safety
    ///
    /// The caller reserved `pos` with `try_reserve` (which checked the stamp
    /// with Acquire) and has not written it yet.
    #[inline]
    pub(crate) unsafe fn write_free(&self, pos: usize, item: T) {
        let slot = self.slot(pos);
        // SAFETY: we reserved `pos` and its slot is free (stamp == pos), so
        // no other thread touches the slot until we publish it.
        slot.value.with_mut(|p| unsafe { (*p).write(item) });
        // Release: publishes the item; pairs with the Acquire stamp loads in
        // `peek`, `count_ready` and `evict_oldest`.
        slot.stamp.store(pos.wrapping_add(1), Ordering::Release);
    }

    /// Whether position `pos` is published.
    #[inline]
    pub(crate) fn is_published(&self, pos: usize) -> bool {
        // Acquire: pairs with the Release publication in `write`, so the
        // item's bytes are visible to whoever then reads them.
        self.slot(pos).stamp.load(Ordering::Acquire) == pos.wrapping_add(1)
    }

    /// The consumer's current `read_pos`.
    #[inline]
    pub(crate) fn read_pos(&self) -> usize {
        // Relaxed: the consumer reads its own index; evictors' moves are
        // re-validated by CAS in `claim`.
        self.read_pos.load(Ordering::Relaxed)
    }

    /// What the consumer finds at `read_pos`.
    #[inline]
    pub(crate) fn peek(&self, read_pos: usize) -> Peek {
        if self.is_published(read_pos) {
            return Peek::Ready;
        }
        let write_pos = self.write_pos.load(Ordering::Relaxed) & !SPILL_BIT;
        if write_pos.wrapping_sub(read_pos) as isize <= 0 {
            Peek::Empty
        } else {
            Peek::Pending
        }
    }

    /// How many published positions follow `read_pos` contiguously, up to `max`.
    #[inline]
    pub(crate) fn count_ready(&self, read_pos: usize, max: usize) -> usize {
        let mut n = 0;
        while n < max && n < self.capacity() && self.is_published(read_pos.wrapping_add(n)) {
            n += 1;
        }
        n
    }

    /// Claims `n` published positions from `read_pos` for the consumer. Fails
    /// only under `DropOldest`, when an evicting producer moved `read_pos` first.
    #[inline]
    pub(crate) fn claim(&self, read_pos: usize, n: usize) -> bool {
        match self.read_mode {
            // Relaxed: exclusivity comes from the RMW; the items were made
            // visible by the Acquire stamp loads in `count_ready`.
            ReadMode::Cas => self
                .read_pos
                .compare_exchange(
                    read_pos,
                    read_pos.wrapping_add(n),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok(),
            ReadMode::Rmw => {
                // Acquire: reads a blocked producer's Release RMW in
                // `close_space_wait` (or a later one), so its announcement
                // happens before the fence-free notify after the slots are
                // freed (module docs).
                self.read_pos.fetch_add(n, Ordering::Acquire);
                true
            }
            ReadMode::Store => {
                // Relaxed: producers read `read_pos` only to size requests; slot
                // reuse is ordered by the stamp store in `take`.
                self.read_pos
                    .store(read_pos.wrapping_add(n), Ordering::Relaxed);
                true
            }
        }
    }

    /// A consumer about to sleep for data: closes its announcement with a
    /// Release RMW of `write_pos`, which the next reservation's Acquire CAS reads
    /// (module docs). True if a reservation at `read_pos` was seen, whose item
    /// may not be published yet: then the consumer must not sleep.
    pub(crate) fn close_data_wait(&self, read_pos: usize) -> bool {
        // Release: pairs with the Acquire reservation CAS in `try_reserve` and
        // `try_reserve_many`.
        let write_pos = self.write_pos.fetch_add(0, Ordering::Release);
        write_pos & !SPILL_BIT != read_pos
    }

    /// A producer about to sleep for room (`Block`): closes its announcement
    /// with a Release RMW of `read_pos`, which the consumer's next claim reads
    /// (module docs). The room it may reveal is seen by the caller's
    /// condition, which reads `read_pos` after this RMW.
    pub(crate) fn close_space_wait(&self) {
        debug_assert_eq!(self.read_mode, ReadMode::Rmw);
        // Release: pairs with the Acquire `fetch_add` in `claim`.
        self.read_pos.fetch_add(0, Ordering::Release);
    }

    /// Moves the item of `pos` out and frees its slot for `pos + capacity`.
    ///
    /// # Safety
    ///
    /// The caller claimed `pos` (by `claim` or `evict_oldest`) after seeing
    /// it published, and takes it only once.
    #[inline]
    pub(crate) unsafe fn take(&self, pos: usize) -> T {
        let slot = self.slot(pos);
        // SAFETY: `pos` is published (its item initialised) and claimed by
        // us alone, so reading it out is sound and happens once.
        let item = slot.value.with(|p| unsafe { (*p).assume_init_read() });
        // Release: frees the slot after the move-out; pairs with the Acquire
        // stamp loads in `try_reserve` and `write`.
        slot.stamp
            .store(pos.wrapping_add(self.capacity()), Ordering::Release);
        item
    }

    /// Under `DropOldest`: claims the oldest item if the ring is full.
    pub(crate) fn evict_oldest(&self) -> Evict<T> {
        debug_assert_eq!(self.read_mode, ReadMode::Cas);
        let read_pos = self.read_pos.load(Ordering::Relaxed);
        let write_pos = self.write_pos.load(Ordering::Relaxed) & !SPILL_BIT;
        if (write_pos.wrapping_sub(read_pos) as isize) < self.capacity() as isize {
            return Evict::NotFull;
        }
        if !self.is_published(read_pos) {
            return Evict::Unpublished(read_pos);
        }
        // Relaxed: as in `claim`; the one CAS decides between us, the
        // consumer and other evictors.
        if self
            .read_pos
            .compare_exchange(
                read_pos,
                read_pos.wrapping_add(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return Evict::Lost;
        }
        // SAFETY: we saw `read_pos` published and moved `read_pos` past it by CAS.
        Evict::Evicted(unsafe { self.take(read_pos) })
    }
}

impl<T> Queue<T> {
    /// Whether `stall` no longer holds: the oldest position was published or
    /// `read_pos` moved on; the write_pos slot was freed or `write_pos` moved on. A hint
    /// for a waiter's condition: the retry re-reads everything with the
    /// orderings of the real operation.
    pub(crate) fn stall_resolved(&self, stall: Stall) -> bool {
        match stall {
            Stall::Unpublished(pos) => {
                // Relaxed (both): a hint, see above.
                self.read_pos.load(Ordering::Relaxed) != pos
                    || self.slot(pos).stamp.load(Ordering::Relaxed) == pos.wrapping_add(1)
            }
            Stall::Freeing(pos) => {
                // Relaxed (both): a hint, see above.
                self.write_pos.load(Ordering::Relaxed) & !SPILL_BIT != pos
                    || self
                        .slot(pos)
                        .stamp
                        .load(Ordering::Relaxed)
                        .wrapping_sub(pos) as isize
                        >= 0
            }
        }
    }
}

/// Bounded spin, then yield.
#[inline]
pub(crate) fn backoff(spins: &mut u32) {
    if *spins < SPINS {
        *spins += 1;
        crate::sync::spin_hint();
    } else {
        crate::sync::yield_now();
    }
}

impl<T> Drop for Queue<T> {
    fn drop(&mut self) {
        // Every handle is gone, so nothing is in flight: every position in
        // read_pos..write_pos is published (reservations are written in the same call).
        let write_pos = self.write_pos.load(Ordering::Relaxed) & !SPILL_BIT;
        let mut pos = self.read_pos.load(Ordering::Relaxed);
        while pos != write_pos {
            if self.is_published(pos) {
                // SAFETY: published, unclaimed, and we are the last owner.
                drop(unsafe { self.take(pos) });
            }
            pos = pos.wrapping_add(1);
        }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("capacity", &self.capacity())
            .field("read_pos", &self.read_pos.load(Ordering::Relaxed))
            .field("write_pos", &self.write_pos.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
