//! Layer 3: the typed SPSC ring — fixed slots of `T`, one producer, one
//! consumer, no allocation after construction.
//!
//! The algorithm is Lamport's single-producer single-consumer ring with
//! monotonic indices, in the form rtrb and the Linux kernel's `kfifo` use:
//!
//! - `write_pos` — values ever published by the producer; only the producer
//!   writes it.
//! - `read_pos` — values ever released by the consumer; only the consumer
//!   writes it.
//! - invariant: `read_pos <= write_pos <= read_pos + capacity` (in wrapping arithmetic);
//!   the value at position `pos` lives in slot `pos & (capacity - 1)`.
//!   Slots in `read_pos..write_pos` are initialised; all others are not.
//!
//! The capacity is a power of two, so the mask stays correct when the
//! indices wrap around `usize::MAX`, and a slot index costs an `and`, not a
//! division: indexing with `%` by the run-time capacity (what an exact
//! capacity needs), the `u64` benchmark
//! (`benches/spsc.rs`) ran at about 15 instead of 37 Melem/s single and 91
//! instead of 150 Melem/s batched (one noisy 2-core run).
//!
//! The producer writes a slot, then publishes `write_pos` with a Release store;
//! the consumer loads `write_pos` with Acquire before reading the slot. Releasing
//! mirrors it: the consumer moves the value out, then stores `read_pos` with
//! Release; the producer loads it with Acquire before reusing the slot. Each
//! side keeps a private copy of the other's index and re-reads the shared one
//! only when its copy says "full" (producer) or "empty" (consumer), so in
//! steady state each side touches the other's cache line once per batch, not
//! once per value. `write_pos`, `read_pos`, the two wait events and the close flags
//! each live on their own cache line.
//!
//! Blocking uses two [`Event`](crate::wait::Event)s: the consumer waits on
//! `data_ready`, which the producer notifies after every publish; the producer
//! waits on `space_ready`, which the consumer notifies after every release.
//! A notify costs a `SeqCst` fence, so each event sits behind a handshake
//! (`wait::handshake`): a side notifies only while the other side is in a sleep
//! episode (from its request, made after its spins and yields, until it is
//! done sleeping); the rest of the time a publish costs one load of a line
//! nobody writes. Until the notifier has acknowledged an episode, the
//! sleeping side sleeps only briefly and re-checks. A ring whose consumer
//! only polls (`try_pop`, `take_batch`) never pays for the fence, and one
//! whose sides slept once pays it only for that episode.
//!
//! Dropping a handle sets its close flag (Release) and notifies the other
//! side. The consumer reports `Disconnected` only after it has drained every
//! value published before the close. Values never popped are dropped exactly
//! once, by whichever handle is dropped last.
//!
//! Files:
//! - `producer.rs` — [`Producer`]: `try_push`, `push`, the batch pushes and
//!   the counting drop path.
//! - `consumer.rs` — [`Consumer`]: `try_pop`, `pop`, `take_batch`,
//!   `take_batch_wait`, and [`Drain`], the batch read in place.
//! - `error.rs` — one error enum per operation.
//! - `stats.rs` — [`SpscStats`], counted in each handle, off the shared lines.
//! - `wait::handshake` — the wake-up events and the handshake that keeps their fence
//!   off the fast path except while a side sleeps.
//! - `tests.rs` — unit tests (also run under Miri).
//!
//! # Examples
//!
//! ```
//! let (mut tx, mut rx) = ringlog::spsc::channel::<u64>(1024);
//! let producer = std::thread::spawn(move || {
//!     for i in 0..10_000u64 {
//!         tx.push(i, None).unwrap();
//!     }
//! });
//! let mut expected = 0;
//! let mut batch = Vec::new();
//! while let Ok(n) = rx.take_batch_wait(256, &mut batch, None) {
//!     assert!(n > 0);
//!     for v in batch.drain(..) {
//!         assert_eq!(v, expected);
//!         expected += 1;
//!     }
//! }
//! producer.join().unwrap();
//! assert_eq!(expected, 10_000);
//! ```

mod consumer;
mod error;
mod producer;
mod stats;

pub use consumer::{Consumer, Drain};
pub use error::{CapacityError, PopError, PushError, TryPopError, TryPushError};
pub use producer::Producer;
pub use stats::SpscStats;

use crate::sync::{Arc, AtomicBool, AtomicUsize, Ordering, UnsafeCell};
use crate::wait::handshake::Wake;
use crossbeam_utils::CachePadded;
use std::mem::MaybeUninit;
use std::ops::Range;

/// Creates a ring of at least `capacity` slots (rounded up to a power of two,
/// at least 1) and returns its two ends.
///
/// All memory is allocated here; no operation allocates afterwards.
///
/// # Panics
///
/// With the [`CapacityError`] message if the slots would exceed `isize::MAX`
/// bytes or cannot be allocated (a panic, never an allocator abort).
/// [`try_channel`] reports both as an error instead.
///
/// # Examples
///
/// ```
/// use ringlog::spsc::{self, TryPopError, TryPushError};
///
/// let (mut tx, mut rx) = spsc::channel::<String>(3);
/// assert_eq!(tx.capacity(), 4); // rounded up to a power of two
/// for word in ["a", "b", "c", "d"] {
///     tx.try_push(word.to_string()).unwrap();
/// }
/// let e = tx.try_push("e".to_string()).unwrap_err();
/// assert!(matches!(e, TryPushError::Full(_)));
/// assert_eq!(e.into_inner(), "e");
///
/// assert_eq!(rx.try_pop().unwrap(), "a");
/// let mut out = Vec::new();
/// assert_eq!(rx.take_batch(10, &mut out), 3);
/// assert_eq!(out, ["b", "c", "d"]);
/// drop(tx);
/// assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
/// ```
pub fn channel<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    match try_channel(capacity) {
        Ok(ends) => ends,
        Err(e) => panic!("{e}"),
    }
}

/// Like [`channel`], but reports a capacity that cannot be allocated as an
/// error instead of panicking.
///
/// # Errors
///
/// [`CapacityError::TooLarge`] when `capacity` rounded up to a power of two,
/// times `size_of::<T>()`, exceeds `isize::MAX` bytes;
/// [`CapacityError::Alloc`] when the allocator refuses the slots.
pub fn try_channel<T>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), CapacityError> {
    let slot_bytes = std::mem::size_of::<T>();
    let max = max_capacity(slot_bytes);
    let rounded = capacity.max(1).checked_next_power_of_two();
    let capacity = match rounded {
        Some(c) if c <= max => c,
        _ => {
            return Err(CapacityError::TooLarge {
                requested: capacity,
                slot_bytes,
                max,
            })
        }
    };
    let shared = Shared::try_new(capacity, 0).map_err(|source| CapacityError::Alloc {
        requested: capacity,
        slot_bytes,
        source,
    })?;
    Ok(ends(shared))
}

fn ends<T>(shared: Shared<T>) -> (Producer<T>, Consumer<T>) {
    let shared = Arc::new(shared);
    (Producer::new(shared.clone()), Consumer::new(shared))
}

/// A ring whose indices start at `start` instead of 0, to test the wrap of
/// the monotonic indices around `usize::MAX`.
#[cfg(test)]
fn channel_starting_at<T>(capacity: usize, start: usize) -> (Producer<T>, Consumer<T>) {
    ends(Shared::try_new(capacity.next_power_of_two(), start).expect("test capacity"))
}

/// Largest power-of-two slot count whose slots fit in `isize::MAX` bytes.
fn max_capacity(slot_bytes: usize) -> usize {
    let limit = isize::MAX as usize / slot_bytes.max(1);
    // The largest power of two <= limit (limit >= 1 for any real type).
    1usize << (usize::BITS - 1 - limit.leading_zeros())
}

/// What both ends share.
pub(crate) struct Shared<T> {
    /// Monotonic count of values ever published; slot = `write_pos & mask`.
    /// Written only by the producer.
    write_pos: CachePadded<AtomicUsize>,
    /// Monotonic count of values ever released; `read_pos <= write_pos <= read_pos +
    /// capacity`. Written only by the consumer.
    read_pos: CachePadded<AtomicUsize>,
    /// The close flags, each written once; read by the other side only when
    /// its ring looks empty (consumer) or full (producer).
    closed: CachePadded<Closed>,
    /// The consumer waits here for data; the producer notifies.
    data_ready: Wake,
    /// The producer waits here for space; the consumer notifies.
    space_ready: Wake,
    /// `capacity - 1`; capacity is a power of two.
    mask: usize,
    /// The slots; those in `read_pos..write_pos` (masked) hold initialised values.
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

/// The two close flags, on one rarely written line.
#[derive(Debug)]
struct Closed {
    /// Set once the producer is dropped.
    producer: AtomicBool,
    /// Set once the consumer is dropped.
    consumer: AtomicBool,
}

// SAFETY: the slots are handed from the producer to the consumer, so `T` must
// be `Send`; the index protocol makes every slot accessed by one side at a
// time (the producer in `write_pos..read_pos + capacity`, the consumer in
// `read_pos..write_pos`), so sharing `Shared` needs no `T: Sync`.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl<T> Shared<T> {
    /// A ring of `capacity` (a power of two) empty slots whose indices
    /// start at `start`; the slots are allocated fallibly.
    fn try_new(capacity: usize, start: usize) -> Result<Self, crate::region::AllocError> {
        debug_assert!(capacity.is_power_of_two());
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(capacity)
            .map_err(|_| crate::region::AllocError {
                bytes: capacity.saturating_mul(std::mem::size_of::<T>()),
            })?;
        slots.extend((0..capacity).map(|_| UnsafeCell::new(MaybeUninit::uninit())));
        Ok(Self {
            write_pos: CachePadded::new(AtomicUsize::new(start)),
            read_pos: CachePadded::new(AtomicUsize::new(start)),
            closed: CachePadded::new(Closed {
                producer: AtomicBool::new(false),
                consumer: AtomicBool::new(false),
            }),
            data_ready: Wake::new(),
            space_ready: Wake::new(),
            mask: capacity - 1,
            slots: slots.into_boxed_slice(),
        })
    }

    #[inline]
    fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// The slots, `capacity()` of them.
    #[inline]
    fn slots(&self) -> &[UnsafeCell<MaybeUninit<T>>] {
        &self.slots
    }

    #[inline]
    fn slot(&self, pos: usize) -> &UnsafeCell<MaybeUninit<T>> {
        debug_assert_eq!(self.slots.len(), self.mask + 1);
        // SAFETY: `pos & mask <= mask < slots.len()` (`new` makes exactly
        // `mask + 1` slots); the compiler cannot see that, and the bounds
        // check showed up in the single-value loop.
        unsafe { self.slots.get_unchecked(pos & self.mask) }
    }

    /// The slot index ranges that hold positions `pos..pos + n` (`n <=
    /// capacity`): the part up to the end of the slots, then the part
    /// wrapped to the start.
    #[inline]
    fn segments(&self, pos: usize, n: usize) -> (Range<usize>, Range<usize>) {
        let start = pos & self.mask;
        let first = n.min(self.capacity() - start);
        (start..start + first, 0..n - first)
    }

    /// Moves `value` into the slot of `pos`.
    ///
    /// # Safety
    ///
    /// The caller is the producer and `pos` is in `write_pos..read_pos + capacity` for
    /// a `read_pos` it loaded with Acquire: the slot is free and nobody else
    /// touches it.
    #[inline]
    unsafe fn write(&self, pos: usize, value: T) {
        self.slot(pos).with_mut(|p| {
            // SAFETY: the caller owns the free slot; writing a MaybeUninit
            // needs no initialised old value.
            unsafe { (*p).write(value) };
        });
    }

    /// Moves values from `values` into the slots of `pos..pos + n`, stopping
    /// early if `values` ends; returns how many were written.
    ///
    /// # Safety
    ///
    /// As [`write`](Self::write) for every position in `pos..pos + n`.
    #[inline]
    unsafe fn write_from(
        &self,
        pos: usize,
        n: usize,
        values: &mut impl Iterator<Item = T>,
    ) -> usize {
        let (a, b) = self.segments(pos, n);
        let mut written = 0;
        // Two plain loops, not a chained iterator, so each compiles to a
        // tight (for `Copy` values, vectorised) copy.
        for range in [a, b] {
            for slot in &self.slots[range] {
                let Some(value) = values.next() else {
                    return written;
                };
                slot.with_mut(|p| {
                    // SAFETY: the caller owns these free slots.
                    unsafe { (*p).write(value) };
                });
                written += 1;
            }
        }
        written
    }

    /// Moves the values out of the slots of `pos..pos + n` onto the end of
    /// `out`, which has room for `n` more.
    ///
    /// # Safety
    ///
    /// As [`read`](Self::read) for every position in `pos..pos + n`.
    #[inline]
    unsafe fn read_into(&self, pos: usize, n: usize, out: &mut Vec<T>) {
        debug_assert!(out.capacity() - out.len() >= n);
        let (a, b) = self.segments(pos, n);
        let spare = &mut out.spare_capacity_mut()[..n];
        let (spare_a, spare_b) = spare.split_at_mut(a.len());
        for (dsts, range) in [(spare_a, a), (spare_b, b)] {
            for (dst, slot) in dsts.iter_mut().zip(&self.slots[range]) {
                slot.with(|p| {
                    // SAFETY: the slot is initialised and its value moves to
                    // `out`; the caller releases it without reading it again.
                    dst.write(unsafe { (*p).assume_init_read() });
                });
            }
        }
        let len = out.len();
        // SAFETY: the first n spare elements were just initialised.
        unsafe { out.set_len(len + n) };
    }

    /// Moves the value out of the slot of `pos`.
    ///
    /// # Safety
    ///
    /// The caller is the consumer and `pos` is in `read_pos..write_pos` for a `write_pos`
    /// it loaded with Acquire: the slot holds an initialised value that
    /// nobody else touches, and the caller will release it (advance `read_pos`
    /// past it) without reading it again.
    #[inline]
    unsafe fn read(&self, pos: usize) -> T {
        self.slot(pos).with(|p| {
            // SAFETY: the slot is initialised (published before the Acquire
            // load of write_pos) and ownership of the value moves to the caller.
            unsafe { (*p).assume_init_read() }
        })
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        if !std::mem::needs_drop::<T>() {
            return;
        }
        // Relaxed: we are the last owner; `Arc`'s drop already ordered every
        // access of the other handle before this point.
        let write_pos = self.write_pos.load(Ordering::Relaxed);
        let mut pos = self.read_pos.load(Ordering::Relaxed);
        while pos != write_pos {
            self.slot(pos).with_mut(|p| {
                // SAFETY: slots in read_pos..write_pos are initialised and unread, and
                // nobody else exists to read them; each is dropped once.
                unsafe { (*p).assume_init_drop() };
            });
            pos = pos.wrapping_add(1);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
