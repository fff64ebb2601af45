//! The double buffer (seeds 001/002): writers fill the active buffer, the
//! reader swaps it out and hands it to the sink as one contiguous slice.
//!
//! # Protocol
//!
//! One word, `active`, packs `gen` (24 bits, wrapping) and `offset` (40 bits).
//! The active buffer is `buffers[gen % K]` (K a power of two, so the wrap of
//! `gen` keeps the rotation).
//!
//! - **Reserve**: a writer does one `fetch_add(record_len)` on `active`. The
//!   old value names the buffer and the offset of its slot. If the slot fits
//!   (`offset + len <= capacity`) the writer owns it. Otherwise the
//!   reservation is void: the writer writes no record, and if the slot began
//!   inside the buffer (`offset < capacity`, a partial fit; at most one per
//!   buffer) it records `end = offset` and commits the unusable tail
//!   `capacity - offset` so the accounting below closes. Then it follows the
//!   policy: `Block` waits until `gen` changes, `DropNewest` gives the record
//!   back. A writer whose reservation failed does not `fetch_add` again until
//!   `gen` changes, which bounds `offset` by `capacity + writers * capacity
//!   < 2^40`.
//! - **Commit**: the writer writes header and payload in its slot, then does
//!   one `fetch_add(record_len + 1 << 34, Release)` on the buffer's `committed`
//!   word (bytes in the low 34 bits, records above).
//! - **Seal and switch**: the reader does one `swap(gen + 1, offset 0)`. The
//!   swap *is* the seal: every reservation is either before it (in the old
//!   buffer, counted in the returned offset `r`) or after it (in the next
//!   buffer), so no writer ever sees a half-sealed buffer and none has to
//!   retry. This needs the next buffer to be free at the swap, which holds
//!   because the reader holds at most one batch: the buffer it switches
//!   writers to was released before (K = 2 is therefore always enough; K > 2
//!   is accepted but buys nothing with a one-batch reader).
//! - **Drain**: the reader waits until `committed` reaches `min(r, capacity)`:
//!   every reservation made before the swap is then written. The valid bytes
//!   are `r` if `r <= capacity`, else `end` (`capacity` when a record ended
//!   exactly there). The reader spins, yields, then sleeps on an event that
//!   writers notify after each commit, so a writer preempted between reserve
//!   and commit delays the batch but costs the reader no CPU.
//!
//! A grant dropped without commit, and the slack of a partial commit, become
//! padding records, so `committed` always closes.
//!
//! # Limits
//!
//! Capacity per buffer 64 B ..= 4 GiB (rounded up to a multiple of 8); at most
//! 64 writers; largest payload `capacity - 8` (a record must fit an empty
//! buffer). `DropOldest` is not supported (see [`Policy`]).
//!
//! # Examples
//!
//! ```
//! use ringlog::bytes::{double_buffer, ByteQueueReader, ByteQueueWriter, CommitGrant, Config};
//!
//! let (mut writers, mut reader) = double_buffer::channel(Config::new(4096, 1)).unwrap();
//! let w = &mut writers[0];
//! w.try_push(b"hello").unwrap();
//! let mut g = w.try_claim(100).unwrap();
//! g[..5].copy_from_slice(b"world");
//! g.commit(5);
//! let batch = reader.try_read().unwrap();
//! assert!(batch.as_slices()[1].is_empty()); // one contiguous slice
//! assert_eq!(batch.records().collect::<Vec<_>>(), [&b"hello"[..], b"world"]);
//! batch.release();
//! ```

use super::arena::Arena;
use super::record::{encode_header, record_len, KIND_DATA, KIND_PAD, RECORD_HEADER_LEN};
use super::stats::{writer_slots, ReaderCounters, WriterSlots};
use super::{
    Batch, ByteQueueReader, Config, NewQueueError, Policy, QueueLimits, QueueStats, ReadError,
    ReleaseBatch, TryReadError,
};
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::wait::{Deadline, Event, WaitStrategy};
use crossbeam_utils::CachePadded;

mod reader;
mod writer;

pub use reader::Reader;
pub use writer::{Grant, Writer};

/// Smallest buffer capacity in bytes.
pub const MIN_CAPACITY: usize = 64;
/// Largest buffer capacity in bytes (4 GiB).
pub const MAX_CAPACITY: usize = 1 << 32;
/// Most writers one queue supports.
pub const MAX_WRITERS: usize = 64;

const OFFSET_BITS: u32 = 40;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;
const GEN_MASK: u64 = (1 << 24) - 1;
const RECORDS_SHIFT: u32 = 34;
const BYTES_MASK: u64 = (1 << RECORDS_SHIFT) - 1;

#[inline]
fn word(gen: u64, offset: u64) -> u64 {
    (gen << OFFSET_BITS) | offset
}
#[inline]
fn gen_of(w: u64) -> u64 {
    w >> OFFSET_BITS
}
#[inline]
fn offset_of(w: u64) -> u64 {
    w & OFFSET_MASK
}

/// One buffer and its drain accounting.
#[derive(Debug)]
struct Buffer {
    mem: Arena,
    tally: CachePadded<Tally>,
}

#[derive(Debug)]
struct Tally {
    /// `records << 34 | bytes` committed since the buffer became active
    /// (bytes include void tails and padding). Reset by the reader before the
    /// buffer becomes active.
    committed: AtomicU64,
    /// Where the valid bytes end if a reservation straddled the end;
    /// `capacity` otherwise. Written by the straddling writer before its
    /// Release commit.
    end: AtomicU64,
}

#[derive(Debug)]
struct Lifecycle {
    live_writers: AtomicUsize,
    reader_closed: AtomicBool,
}

#[derive(Debug)]
struct Shared {
    /// `gen << 40 | offset`: the active buffer and its next free byte.
    active: CachePadded<AtomicU64>,
    buffers: Box<[Buffer]>,
    /// Bytes per buffer, a multiple of 8.
    capacity: u64,
    policy: Policy,
    /// The reader sleeps here for data and for commits; writers notify.
    reader_ev: CachePadded<Event>,
    /// Blocked writers sleep here for a buffer switch; the reader notifies.
    space_ev: CachePadded<Event>,
    life: CachePadded<Lifecycle>,
    writer_stats: WriterSlots,
    reader_stats: CachePadded<ReaderCounters>,
}

impl Shared {
    fn buffer(&self, gen: u64) -> &Buffer {
        &self.buffers[(gen as usize) & (self.buffers.len() - 1)]
    }
}

/// What [`channel`] would build from `config`, checked and computed without
/// allocating: the largest record and the memory of all buffers.
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
    if !(2..=16).contains(&config.buffers) || !config.buffers.is_power_of_two() {
        return Err(NewQueueError::Buffers {
            requested: config.buffers,
        });
    }
    let capacity = config.capacity_bytes.next_multiple_of(8);
    Ok(QueueLimits {
        max_record_len: capacity - RECORD_HEADER_LEN,
        memory_bytes: capacity
            .checked_mul(config.buffers)
            .ok_or(NewQueueError::OutOfMemory { bytes: usize::MAX })?,
    })
}

/// Builds a double buffer for `config.writers` writers with
/// `config.buffers` buffers of `config.capacity_bytes` each.
///
/// # Errors
///
/// [`NewQueueError`] when capacity, writer count or buffer count is out of
/// range (see the module docs), or the memory cannot be allocated.
pub fn channel(config: Config) -> Result<(Vec<Writer>, Reader), NewQueueError> {
    let limits = limits(&config)?;
    let capacity = config.capacity_bytes.next_multiple_of(8) as u64;
    let buffers = (0..config.buffers)
        .map(|_| {
            Ok(Buffer {
                mem: Arena::try_new(capacity as usize).ok_or(NewQueueError::OutOfMemory {
                    bytes: limits.memory_bytes,
                })?,
                tally: CachePadded::new(Tally {
                    committed: AtomicU64::new(0),
                    end: AtomicU64::new(capacity),
                }),
            })
        })
        .collect::<Result<_, NewQueueError>>()?;
    let shared = Arc::new(Shared {
        active: CachePadded::new(AtomicU64::new(word(0, 0))),
        buffers,
        capacity,
        policy: config.policy,
        reader_ev: CachePadded::new(Event::new()),
        space_ev: CachePadded::new(Event::new()),
        life: CachePadded::new(Lifecycle {
            live_writers: AtomicUsize::new(config.writers),
            reader_closed: AtomicBool::new(false),
        }),
        writer_stats: writer_slots(config.writers),
        reader_stats: CachePadded::new(ReaderCounters::new()),
    });
    let writers = (0..config.writers)
        .map(|id| Writer {
            shared: shared.clone(),
            id,
            full_gen: None,
            strategy: config.wait,
        })
        .collect();
    let reader = Reader {
        shared,
        gen: 0,
        sealed: None,
        strategy: config.wait,
    };
    Ok((writers, reader))
}

#[cfg(all(test, not(loom)))]
mod tests;
