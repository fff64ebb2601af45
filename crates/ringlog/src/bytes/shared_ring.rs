//! The shared ring: one byte ring that every writer reserves in; a record
//! becomes visible when its header is published, and the reader never reads
//! a record before its header says it is complete.
//!
//! # Protocol
//!
//! Positions are monotonic byte counts; a position's offset is `pos & (C - 1)`
//! for a power-of-two capacity `C`.
//!
//! - **Reserve**: a writer CASes `reserve` from `r` to `r + need`, where
//!   `need` is the record's length, plus padding to the end of the ring when
//!   the record would cross it; it first checks `r + need - tail <= C` with
//!   a cached, then a freshly loaded (Acquire) `tail`.
//! - **Commit**: the writer writes the payload, then stores the header word
//!   (`len | KIND_DATA << 32`) with Release. A non-zero header means
//!   complete. A wrap padding record is published the same way, first.
//! - **Read**: the reader walks from `tail`, loading each header with
//!   Acquire, and stops at the first zero header (not yet published, or not
//!   yet reserved) or after one full ring. The batch is `[tail, stop)`: at
//!   most two slices (split at the end of the ring).
//! - **Release**: the reader zeroes the batch's bytes, then stores `tail`
//!   (Release). Zeroing *every* byte, not just the headers, is what makes a
//!   zero header mean "unpublished": record boundaries differ from lap to
//!   lap, so a header position of the next lap may hold an old payload that
//!   happens to look like a header. The memset runs over bytes the reader
//!   has just read, so they are in its cache.
//!
//! A writer preempted between reserve and commit holds up the reader at its
//! record (records behind it stay unread until it commits); the reader spins,
//! yields, then sleeps. A commit wakes it through the handshake of
//! `wait::handshake`, one notifier per writer: a plain load of the writer's
//! own handshake line, and a fence and a wake only while the reader is in a
//! sleep episode. A grant dropped without commit is published as padding.
//!
//! # Limits
//!
//! Capacity 64 B ..= 4 GiB, rounded up to a power of two; at most 64 writers;
//! largest payload `capacity / 2 - 8`, so that a record fits wherever the ring
//! wrapped. `DropOldest` is not supported (see [`Policy`]).
//!
//! # Examples
//!
//! ```
//! use ringlog::bytes::{shared_ring, ByteQueueReader, ByteQueueWriter, Config};
//!
//! let (mut writers, mut reader) = shared_ring::channel(Config::new(4096, 2)).unwrap();
//! writers[1].try_push(b"first").unwrap();
//! writers[0].try_push(b"second").unwrap();
//! let batch = reader.try_read().unwrap();
//! assert_eq!(batch.records().collect::<Vec<_>>(), [&b"first"[..], b"second"]);
//! batch.release();
//! ```

use super::arena::Arena;
use super::record::{
    decode_header, encode_header, record_len, KIND_DATA, KIND_PAD, RECORD_HEADER_LEN,
};
use super::stats::{writer_slots, ReaderCounters, WriterSlots};
use super::{
    Batch, ByteQueueReader, Config, NewQueueError, Policy, QueueLimits, QueueStats, ReadError,
    ReleaseBatch, TryReadError,
};
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::wait::handshake::{Notifier, Waiter, Wake};
use crate::wait::{Deadline, Event, WaitStrategy};
use crossbeam_utils::CachePadded;

mod reader;
mod writer;

pub use reader::Reader;
pub use writer::{Grant, Writer};

/// Smallest capacity in bytes.
pub const MIN_CAPACITY: usize = 64;
/// Largest capacity in bytes (4 GiB).
pub const MAX_CAPACITY: usize = 1 << 32;
/// Most writers one queue supports.
pub const MAX_WRITERS: usize = 64;

/// The ring's memory, with atomic access to header words.
#[derive(Debug)]
struct Data {
    mem: Arena,
    /// loom cannot treat plain memory as an atomic, so under loom each
    /// 8-byte granule's header word lives here as well as in `mem`.
    #[cfg(loom)]
    headers: Box<[AtomicU64]>,
}

impl Data {
    fn try_new(capacity: usize) -> Option<Self> {
        Some(Self {
            mem: Arena::try_new(capacity)?,
            #[cfg(loom)]
            headers: (0..capacity / 8).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// The header word at 8-aligned `offset`.
    #[cfg(not(loom))]
    fn header(&self, offset: u64) -> &AtomicU64 {
        debug_assert!(offset % 8 == 0);
        // SAFETY: the word is inside the arena (offset <= C - 8), 8-aligned,
        // and lives as long as `self`. Header words are accessed atomically
        // while a writer may publish them; the non-atomic accesses (slice
        // reads, zeroing) happen-before or after every atomic one through the
        // Acquire/Release pairs on the header and on `tail`.
        unsafe { AtomicU64::from_ptr(self.mem.ptr(offset as usize).cast::<u64>()) }
    }

    /// Publishes a header word.
    fn publish(&self, offset: u64, word: u64, order: Ordering) {
        #[cfg(loom)]
        {
            // SAFETY: the header granule is inside the writer's reservation.
            unsafe { self.mem.write_word(offset as usize, word) };
            self.headers[(offset / 8) as usize].store(word, order);
        }
        #[cfg(not(loom))]
        self.header(offset).store(word, order);
    }

    fn load(&self, offset: u64, order: Ordering) -> u64 {
        #[cfg(loom)]
        return self.headers[(offset / 8) as usize].load(order);
        #[cfg(not(loom))]
        self.header(offset).load(order)
    }

    /// Zeroes `[offset, offset + len)`.
    fn zero(&self, offset: u64, len: u64) {
        self.mem.track_write(offset as usize, len as usize);
        #[cfg(loom)]
        for g in (offset / 8)..(offset + len) / 8 {
            // Relaxed: published to writers by the Release store of `tail`.
            self.headers[g as usize].store(0, Ordering::Relaxed);
        }
        // SAFETY: the range is inside the arena and belongs to the reader:
        // released by no one yet, so no writer touches it.
        unsafe { std::ptr::write_bytes(self.mem.ptr(offset as usize), 0, len as usize) };
    }
}

#[derive(Debug)]
struct Shared {
    /// Next position to reserve; writers CAS it.
    reserve: CachePadded<AtomicU64>,
    /// Position up to which the reader has released; only the reader stores.
    tail: CachePadded<AtomicU64>,
    data: Data,
    capacity: u64,
    policy: Policy,
    #[cfg(loom)]
    weaken_publish: bool,
    /// The reader sleeps here; writer `i` notifies after each publish as
    /// notifier `i` of the handshake, which costs it one load of a line
    /// nobody writes unless the reader is in a sleep episode.
    reader_wake: Wake,
    /// Writers sleep here for room; the reader notifies after each release.
    space_ev: CachePadded<Event>,
    live_writers: CachePadded<AtomicUsize>,
    reader_closed: AtomicBool,
    writer_stats: WriterSlots,
    reader_stats: CachePadded<ReaderCounters>,
}

impl Shared {
    fn mask(&self) -> u64 {
        self.capacity - 1
    }
}

/// What [`channel`] would build from `config`, checked and computed without
/// allocating: the largest record and the ring's memory.
///
/// # Errors
///
/// As [`channel`], except allocation failure.
pub fn limits(config: &Config) -> Result<QueueLimits, NewQueueError> {
    if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&config.capacity_bytes) {
        return Err(NewQueueError::Capacity {
            requested: config.capacity_bytes,
            min: MIN_CAPACITY,
            max: MAX_CAPACITY,
        });
    }
    if !(1..=MAX_WRITERS).contains(&config.writers) {
        return Err(NewQueueError::Writers {
            requested: config.writers,
            max: MAX_WRITERS,
        });
    }
    let capacity = config.capacity_bytes.next_power_of_two();
    Ok(QueueLimits {
        max_record_len: capacity / 2 - RECORD_HEADER_LEN,
        memory_bytes: capacity,
    })
}

/// Builds a shared ring of `config.capacity_bytes` (rounded up to a power
/// of two) for `config.writers` writers.
///
/// # Errors
///
/// [`NewQueueError`] when capacity or writer count is out of range, or the
/// memory cannot be allocated.
pub fn channel(config: Config) -> Result<(Vec<Writer>, Reader), NewQueueError> {
    limits(&config)?;
    let capacity = config.capacity_bytes.next_power_of_two();
    let data = Data::try_new(capacity).ok_or(NewQueueError::OutOfMemory { bytes: capacity })?;
    let shared = Arc::new(Shared {
        reserve: CachePadded::new(AtomicU64::new(0)),
        tail: CachePadded::new(AtomicU64::new(0)),
        data,
        capacity: capacity as u64,
        policy: config.policy,
        #[cfg(loom)]
        weaken_publish: config.weaken_commit_for_loom,
        reader_wake: Wake::with_notifiers(config.writers),
        space_ev: CachePadded::new(Event::new()),
        live_writers: CachePadded::new(AtomicUsize::new(config.writers)),
        reader_closed: AtomicBool::new(false),
        writer_stats: writer_slots(config.writers),
        reader_stats: CachePadded::new(ReaderCounters::new()),
    });
    let writers = (0..config.writers)
        .map(|id| Writer {
            shared: shared.clone(),
            id,
            cached_tail: 0,
            strategy: config.wait,
            notifier: Notifier::new(id),
        })
        .collect();
    let reader = Reader {
        shared,
        tail: 0,
        strategy: config.wait,
        waiter: Waiter::default(),
    };
    Ok((writers, reader))
}

#[cfg(all(test, not(loom)))]
mod tests;
