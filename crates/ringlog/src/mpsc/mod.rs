//! Typed MPSC ring: many producers, one consumer, fixed slots of `T`, and a
//! back-pressure [`Policy`] for when the ring is full.
//!
//! # Algorithm
//!
//! Dmitry Vyukov's bounded MPMC queue (per-slot sequence numbers, as in
//! crossbeam's `ArrayQueue`), specialised for one consumer and extended with
//! batch reservations, a contended read index for `DropOldest`, and a spill
//! mark for `SpillToDisk`. Every slot is allocated at construction; nothing
//! is allocated per item (the spill path aside). See `queue.rs` for the state
//! encoding and the claims that make each item read or evicted exactly once.
//!
//! Waiting is the crate's [`Event`]: blocked producers
//! sleep on the `space` event, a blocked consumer on the `data` event. A
//! producer preempted between reserving a slot and publishing it never makes
//! the consumer spin without bound: [`Consumer::try_pop`] gives up after a
//! short spin and reports `Empty`, and [`Consumer::pop`] sleeps until the
//! publisher notifies. Under `DropOldest` a producer that needs the oldest
//! item while its producer is still writing it (or the write_pos slot while its
//! reader is still emptying it) spins briefly, then sleeps on the `data`
//! event, which that publication (or, from the consumer, that freeing)
//! notifies; [`SendFuture`] returns `Pending` with its waker registered
//! instead of spinning.
//!
//! # Files
//!
//! | file | what |
//! |---|---|
//! | `queue.rs` | the slot array, `read_pos`/`write_pos`, reserve / publish / claim / evict |
//! | `producer.rs` | [`Producer`]: push, batches, the policies |
//! | `consumer.rs` | [`Consumer`]: pop, batches, drain, spill replay |
//! | `policy.rs` | [`Policy`] |
//! | `spill.rs` | the overflow file and the [`Spill`] codec trait |
//! | `future.rs` | executor-agnostic futures: [`SendFuture`], [`RecvFuture`], [`TakeBatchFuture`] |
//! | `compat.rs` | [`RingBuffer`], the drop-in single-threaded API |
//! | `stats.rs` | per-producer counters and [`MpscStats`] |
//! | `waker.rs` | wakers of pending futures |
//! | `error.rs` | one error type per operation |
//!
//! # Examples
//!
//! ```
//! use ringlog::mpsc::{self, Policy};
//!
//! let (tx, mut rx) = mpsc::channel::<u64>(1024, Policy::BLOCK).unwrap();
//! let workers: Vec<_> = (0..2u64)
//!     .map(|id| {
//!         let mut tx = tx.clone();
//!         std::thread::spawn(move || {
//!             for i in 0..1000 {
//!                 tx.push(id << 32 | i).unwrap();
//!             }
//!         })
//!     })
//!     .collect();
//! drop(tx);
//! let mut next = [0u64; 2];
//! while let Ok(v) = rx.pop(None) {
//!     let (id, seq) = ((v >> 32) as usize, v & 0xffff_ffff);
//!     assert_eq!(seq, next[id]); // per-producer FIFO
//!     next[id] += 1;
//! }
//! for w in workers {
//!     w.join().unwrap();
//! }
//! assert_eq!(next, [1000, 1000]);
//! ```

mod compat;
mod consumer;
mod error;
mod future;
mod policy;
mod producer;
mod queue;
mod spill;
mod stats;
mod waker;

pub use compat::RingBuffer;
pub use consumer::{Consumer, Drain};
pub use error::{
    NewChannelError, PopError, PushBatchError, PushError, SpillDecodeError, TryPopError,
    TryPushError,
};
pub use future::{RecvFuture, SendFuture, TakeBatchFuture};
pub use policy::Policy;
pub use producer::Producer;
pub use queue::MAX_CAPACITY;
pub use spill::{Spill, MAX_SPILL_RECORD};
pub use stats::MpscStats;

use crate::sync::{Arc, AtomicBool, AtomicUsize, Ordering};
use crate::wait::{Event, WaitStrategy};
use crossbeam_utils::CachePadded;
use policy::PolicyKind;
use queue::{Queue, ReadMode};
use spill::{Codec, SpillStore};
use stats::Registry;
use std::time::Duration;
use waker::WakerSet;

#[cfg(loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;

/// Creates a channel of `capacity` slots (rounded up to a power of two,
/// at least 2)
/// with the given back-pressure policy, and returns its two ends. Clone the
/// [`Producer`] for more producers.
///
/// # Errors
///
/// [`NewChannelError::Capacity`] for 0 or more than [`MAX_CAPACITY`] slots;
/// [`NewChannelError::Alloc`] when the slots cannot be allocated (never an
/// abort);
/// [`NewChannelError::SpillNeedsCodec`] for [`Policy::SpillToDisk`], which
/// needs [`spill_channel`].
pub fn channel<T>(
    capacity: usize,
    policy: Policy,
) -> Result<(Producer<T>, Consumer<T>), NewChannelError> {
    Builder::new(capacity, policy).build()
}

/// Like [`channel`], for item types that can be written to the spill file;
/// accepts every policy, including [`Policy::SpillToDisk`].
///
/// A spill file left at the path by an earlier run is replayed first.
///
/// # Errors
///
/// As [`channel`], plus [`NewChannelError::SpillOpen`] when the spill file
/// cannot be opened or recovered.
///
/// # Examples
///
/// ```
/// use ringlog::mpsc::{self, Policy};
///
/// let dir = std::env::temp_dir().join(format!("ringlog-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("overflow.spill");
/// let (mut tx, mut rx) = mpsc::spill_channel::<u32>(2, Policy::SpillToDisk(path.clone())).unwrap();
/// for i in 0..5 {
///     tx.push(i).unwrap(); // 0 and 1 fit; 2, 3, 4 go to the file
/// }
/// assert_eq!(rx.stats().spilled, 3);
/// let got: Vec<u32> = rx.drain().collect();
/// assert_eq!(got, [0, 1, 2, 3, 4]);
/// assert!(!path.exists()); // removed once drained
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn spill_channel<T: Spill>(
    capacity: usize,
    policy: Policy,
) -> Result<(Producer<T>, Consumer<T>), NewChannelError> {
    Builder::new(capacity, policy).codec(Codec::of()).build()
}

/// loom builds only: a channel whose waiters skip the RMW that closes their
/// announcement (`Event::wait_until_closed`), so that a model can show the
/// RMW is what prevents a lost wake-up now that publishers have no fence.
#[cfg(loom)]
#[doc(hidden)]
pub fn channel_unclosed_for_loom<T>(
    capacity: usize,
    policy: Policy,
) -> Result<(Producer<T>, Consumer<T>), NewChannelError> {
    let mut b = Builder::new(capacity, policy);
    b.unclosed = true;
    b.build()
}

/// Construction options beyond capacity and policy.
pub(crate) struct Builder<T> {
    capacity: usize,
    policy: Policy,
    strategy: WaitStrategy,
    codec: Option<Codec<T>>,
    #[cfg(loom)]
    unclosed: bool,
}

impl<T> Builder<T> {
    pub(crate) fn new(capacity: usize, policy: Policy) -> Self {
        Self {
            capacity,
            policy,
            strategy: WaitStrategy::DEFAULT,
            codec: None,
            #[cfg(loom)]
            unclosed: false,
        }
    }

    fn codec(mut self, codec: Codec<T>) -> Self {
        self.codec = Some(codec);
        self
    }

    pub(crate) fn build(self) -> Result<(Producer<T>, Consumer<T>), NewChannelError> {
        if !(1..=MAX_CAPACITY).contains(&self.capacity) {
            return Err(NewChannelError::Capacity {
                requested: self.capacity,
                max: MAX_CAPACITY,
            });
        }
        // At least 2: with one slot, "holds position p" (stamp p + 1) would
        // read as "free for position p + 1".
        let capacity = self.capacity.next_power_of_two().max(2);
        let kind = self.policy.kind();
        let read_mode = match kind {
            PolicyKind::DropOldest => ReadMode::Cas,
            PolicyKind::Block => ReadMode::Rmw,
            PolicyKind::DropNewest | PolicyKind::Spill => ReadMode::Store,
        };
        let queue =
            Queue::try_new(capacity, read_mode).map_err(|source| NewChannelError::Alloc {
                requested: capacity,
                source,
            })?;
        let registry = Registry::new();
        let spill = match (&self.policy, self.codec) {
            (Policy::SpillToDisk(_), None) => return Err(NewChannelError::SpillNeedsCodec),
            (Policy::SpillToDisk(path), Some(codec)) => {
                let (store, replay, cut) =
                    SpillStore::open(path.clone(), codec).map_err(|source| {
                        NewChannelError::SpillOpen {
                            path: path.clone(),
                            source,
                        }
                    })?;
                if replay {
                    queue.set_spill_mark();
                }
                if cut > 0 {
                    stats::bump(&registry.spill_lost, 1);
                }
                Some(store)
            }
            _ => None,
        };
        let timeout = match self.policy {
            Policy::Block { timeout } => timeout,
            _ => None,
        };
        let shared = Arc::new(Shared {
            queue,
            data: CachePadded::new(Event::new()),
            space: CachePadded::new(Event::new()),
            recv_wakers: WakerSet::new(),
            send_wakers: WakerSet::new(),
            producers: AtomicUsize::new(1),
            consumer_closed: AtomicBool::new(false),
            policy: kind,
            timeout,
            spill,
            stats: registry,
            #[cfg(loom)]
            unclosed: self.unclosed,
        });
        let mut tx = Producer::new(shared.clone());
        let mut rx = Consumer::new(shared);
        tx.set_wait_strategy(self.strategy);
        rx.set_wait_strategy(self.strategy);
        Ok((tx, rx))
    }
}

/// Everything the handles share.
pub(crate) struct Shared<T> {
    pub(crate) queue: Queue<T>,
    /// The consumer sleeps here; producers notify after publishing. Under
    /// `DropOldest`, producers stalled on another thread's slot operation
    /// sleep here too, and the consumer also notifies after freeing slots.
    pub(crate) data: CachePadded<Event>,
    /// Blocked producers sleep here; the consumer notifies after freeing
    /// slots (only under `Block`, the one policy whose producers wait).
    pub(crate) space: CachePadded<Event>,
    /// Futures woken with the `data` event: the pending
    /// `recv`/`take_batch_async` future, and `DropOldest` `send` futures
    /// waiting out a stall.
    pub(crate) recv_wakers: WakerSet,
    /// Pending `send` futures.
    pub(crate) send_wakers: WakerSet,
    /// Live producer handles.
    pub(crate) producers: AtomicUsize,
    /// Set once when the consumer is dropped.
    pub(crate) consumer_closed: AtomicBool,
    pub(crate) policy: PolicyKind,
    /// `Block`'s timeout per push.
    pub(crate) timeout: Option<Duration>,
    pub(crate) spill: Option<SpillStore<T>>,
    pub(crate) stats: Registry,
    /// loom only: see [`channel_unclosed_for_loom`].
    #[cfg(loom)]
    unclosed: bool,
}

impl<T> Shared<T> {
    /// Wakes the consumer (and stalled `DropOldest` producers) after a
    /// change made with plain stores (a handle dropped, a spill append, a
    /// `DropOldest` publication or freed slot): the fenced notify.
    #[inline]
    pub(crate) fn notify_data(&self) {
        self.data.notify();
        self.recv_wakers.wake_all();
    }

    /// Wakes the consumer after publishing positions this producer reserved
    /// in the ring. Under `Block` and `DropNewest` the only waiter for a
    /// publication is the consumer, which closes its announcement with an
    /// RMW of `write_pos` (`close_data_wait`), and the reservation was an Acquire
    /// CAS of `write_pos`: no fence (see `Event::notify_reserved`). Under the other
    /// policies producers wait on `data` too, with the fenced protocol.
    #[inline]
    pub(crate) fn notify_published(&self) {
        match self.policy {
            PolicyKind::Block | PolicyKind::DropNewest => {
                self.data.notify_reserved();
                // Relaxed inside: ordered like `notify_reserved` (futures
                // close their registration the same way).
                self.recv_wakers.wake_all();
            }
            PolicyKind::DropOldest | PolicyKind::Spill => self.notify_data(),
        }
    }

    /// Wakes blocked producers when the consumer leaves: the fenced notify.
    #[inline]
    pub(crate) fn notify_space(&self) {
        self.space.notify();
        self.send_wakers.wake_all();
    }

    /// Wakes blocked producers after the consumer freed slots it claimed
    /// with the Acquire RMW of `read_pos` (`Block` only): no fence, because they
    /// close their announcement with an RMW of `read_pos` (`close_space_wait`).
    #[inline]
    pub(crate) fn notify_freed(&self) {
        self.space.notify_reserved();
        self.send_wakers.wake_all();
    }

    /// Registers the consumer's future for data and closes the registration
    /// like a futex wait (`close_data_wait`); true if a reservation is in
    /// flight, so the future must poll again rather than wait to be woken.
    pub(crate) fn register_recv(&self, key: &mut Option<u64>, waker: &std::task::Waker) -> bool {
        self.recv_wakers.register(key, waker);
        #[cfg(loom)]
        if self.unclosed {
            return false;
        }
        self.close_data_wait()
    }

    /// loom only: whether waiters skip their closing RMW.
    #[cfg(loom)]
    pub(crate) fn unclosed_waits_for_loom(&self) -> bool {
        self.unclosed
    }

    /// The consumer, after announcing itself (futex waiter or registered
    /// waker): closes the announcement against fence-free publishers. True
    /// if a reservation is in flight, so it must not sleep.
    #[inline]
    pub(crate) fn close_data_wait(&self) -> bool {
        self.queue.close_data_wait(self.queue.read_pos())
    }

    /// Whether the consumer is gone.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        // Relaxed: a hint checked on every push; items pushed after the
        // consumer left are dropped with the ring, never leaked.
        self.consumer_closed.load(Ordering::Relaxed)
    }

    /// Whether a blocked producer should retry: room, or the consumer gone.
    #[inline]
    pub(crate) fn space_or_closed(&self) -> bool {
        self.queue.len() < self.queue.capacity() || self.is_closed()
    }

    pub(crate) fn stats(&self) -> MpscStats {
        self.stats.snapshot(
            // Relaxed: a snapshot figure.
            self.producers.load(Ordering::Relaxed),
            self.queue.capacity(),
            self.queue.len(),
            (self.queue.write_word() & !queue::SPILL_BIT) as u64,
        )
    }
}

impl<T> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("queue", &self.queue)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
