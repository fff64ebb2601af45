//! Layer 3: MPSC byte queues — variable-size byte records from N writer
//! threads to one reader that hands whole batches to a sink.
//!
//! Three designs sit behind one consumer-facing trait, [`ByteQueueReader`],
//! so a pipeline or a benchmark can switch between them:
//!
//! | file | design | writers contend on | max record (payload bytes) |
//! |---|---|---|---|
//! | `double_buffer.rs`, `double_buffer/{writer,reader}.rs` | [`double_buffer`]: K buffers; one `fetch_add` reserves, the reader swaps buffers and hands one out whole | one reservation word and the buffer's commit counter | buffer capacity − 8 |
//! | `fan_in.rs` | [`fan_in`]: one SPSC [`ring`](crate::ring) per writer plus a doorbell | nothing (the doorbell is read-mostly) | ring capacity / 2 − 8 |
//! | `shared_ring.rs`, `shared_ring/{writer,reader}.rs` | [`shared_ring`]: one ring; reserve by CAS, commit by publishing the header last | the reserve index | ring capacity / 2 − 8 |
//!
//! [`Design`] and [`channel`] (`any.rs`) pick a design at run time.
//!
//! The other files: `record.rs` (the 8-byte record header every design uses,
//! and the [`Records`] iterator), `policy.rs` ([`Policy`]), `stats.rs`
//! (per-writer and reader counters, [`QueueStats`]), `error.rs` (one error
//! enum per operation), `arena.rs` (queue memory with loom bookkeeping),
//! `claim.rs` (the claim loop and the grant that `double_buffer` and
//! `shared_ring` share; each says only how it reserves and publishes).
//!
//! # What every design guarantees
//!
//! - A reader gets a [`Batch`]: at most two contiguous `&[u8]` slices of queue
//!   memory holding the records back to back, each behind its 8-byte header
//!   ([`record`] module docs), so a sink can `write`/`writev` them as they are;
//!   or the records one by one with [`Batch::records`]. Nothing is copied.
//! - A writer can write in place (`claim(len)`, fill the grant, `commit(n)`)
//!   or copy (`push`). A grant dropped without `commit` publishes nothing (it
//!   becomes padding).
//! - Per-writer FIFO order under every [`Policy`]; records of different
//!   writers interleave arbitrarily.
//! - The number of writers is fixed when the queue is built: each gets one
//!   handle (`Send`, one per thread) and one counter block on its own cache
//!   line.
//!
//! # Example
//!
//! ```
//! use ringlog::bytes::{double_buffer, ByteQueueReader, ByteQueueWriter, Config};
//!
//! let (writers, mut reader) = double_buffer::channel(Config::new(1 << 16, 2)).unwrap();
//! let threads: Vec<_> = writers
//!     .into_iter()
//!     .map(|mut w| {
//!         std::thread::spawn(move || {
//!             for i in 0..100u32 {
//!                 let rec = format!("writer {} record {i}", w.id());
//!                 w.push(rec.as_bytes(), None).unwrap();
//!             }
//!         })
//!     })
//!     .collect();
//! let mut seen = 0;
//! while let Ok(batch) = reader.read(None) {
//!     seen += batch.records().count();
//!     batch.release();
//! }
//! threads.into_iter().for_each(|t| t.join().unwrap());
//! assert_eq!(seen, 200);
//! ```

mod any;
mod arena;
mod claim;
pub mod double_buffer;
mod error;
pub mod fan_in;
mod policy;
pub mod record;
pub mod shared_ring;
mod stats;

pub use any::{channel, limits, AnyGrant, AnyWriter, Design};
pub use error::{
    ClaimError, NewQueueError, PushError, ReadError, TooLarge, TryClaimError, TryPushError,
    TryReadError,
};
pub use policy::Policy;
pub use record::{Records, RecordsMut, RECORD_HEADER_LEN};
pub use stats::{QueueStats, ReaderStats, WriterStats};

use crate::wait::{Deadline, WaitStrategy};
use stats::ReaderCounters;
use std::ops::DerefMut;

/// How to build a byte queue. `capacity_bytes` means, per design: the size of
/// each buffer (double buffer), of each writer's ring (fan-in), of the one
/// ring (shared ring).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Queue memory in bytes, as above.
    pub capacity_bytes: usize,
    /// Number of writer handles to create.
    pub writers: usize,
    /// What a full queue does to `push` and `claim`.
    pub policy: Policy,
    /// How blocking calls on either side wait.
    pub wait: WaitStrategy,
    /// Number of buffers of the double buffer (a power of two, 2..=16);
    /// ignored by the other designs.
    pub buffers: usize,
    /// loom only: the shared ring publishes record headers with Relaxed
    /// instead of Release, so that a loom model can show the checker catches
    /// a weakened ordering.
    #[cfg(loom)]
    #[doc(hidden)]
    pub weaken_commit_for_loom: bool,
}

impl Config {
    /// `writers` writers, `capacity_bytes` of memory, `Block` policy, default
    /// waiting, two buffers.
    pub fn new(capacity_bytes: usize, writers: usize) -> Self {
        Self {
            capacity_bytes,
            writers,
            policy: Policy::Block,
            wait: WaitStrategy::DEFAULT,
            buffers: 2,
            #[cfg(loom)]
            weaken_commit_for_loom: false,
        }
    }

    /// Sets the policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the wait strategy of both sides.
    pub fn with_wait_strategy(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }

    /// Sets the double buffer's buffer count.
    pub fn with_buffers(mut self, buffers: usize) -> Self {
        self.buffers = buffers;
        self
    }
}

/// What a queue built from a [`Config`] would be, computed by [`limits`]
/// (or a design's own `limits`) without allocating anything, so a caller
/// can check sizes before it builds a queue or touches anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Largest payload a writer can queue, in bytes.
    pub max_record_len: usize,
    /// Queue memory the constructor allocates, in bytes (all buffers or
    /// rings together).
    pub memory_bytes: usize,
}

/// The consumer's side of every byte queue. Object safe: a pipeline can hold
/// a `Box<dyn ByteQueueReader>` and not care which design is behind it.
pub trait ByteQueueReader: Send + std::fmt::Debug {
    /// Returns the records that are complete now, without waiting.
    ///
    /// # Errors
    ///
    /// `Empty` if nothing is complete, `Disconnected` if additionally every
    /// writer is gone.
    fn try_read(&mut self) -> Result<Batch<'_>, TryReadError>;

    /// Returns complete records, waiting (spin, yield, then sleep) until there
    /// are some or `deadline` passes.
    ///
    /// # Errors
    ///
    /// `Timeout` at the deadline; `Disconnected` once every writer is gone and
    /// everything they committed has been read.
    fn read(&mut self, deadline: Deadline) -> Result<Batch<'_>, ReadError>;

    /// Whether every writer is gone and nothing is left to read.
    fn is_disconnected(&self) -> bool;

    /// A snapshot of the writers' and the reader's counters.
    fn stats(&self) -> QueueStats;

    /// Largest payload a writer of this queue accepts, in bytes.
    fn max_record_len(&self) -> usize;
}

/// The writer's side, generic over the design (the grant type differs, so
/// this trait is for generic code, not for `dyn`).
pub trait ByteQueueWriter: Send {
    /// Writable room for one record.
    type Grant<'a>: DerefMut<Target = [u8]> + CommitGrant
    where
        Self: 'a;

    /// This writer's id: its index in [`QueueStats::writers`].
    fn id(&self) -> usize;

    /// Largest payload accepted, in bytes.
    fn max_record_len(&self) -> usize;

    /// Claims room for `len` payload bytes without waiting.
    ///
    /// # Errors
    ///
    /// See [`TryClaimError`].
    fn try_claim(&mut self, len: usize) -> Result<Self::Grant<'_>, TryClaimError>;

    /// Claims room for `len` payload bytes, following the queue's policy
    /// when it is full.
    ///
    /// # Errors
    ///
    /// See [`ClaimError`].
    fn claim(&mut self, len: usize, deadline: Deadline) -> Result<Self::Grant<'_>, ClaimError>;

    /// Copies `record` into the queue without waiting.
    ///
    /// # Errors
    ///
    /// See [`TryPushError`]; the record is given back.
    fn try_push<'r>(&mut self, record: &'r [u8]) -> Result<(), TryPushError<'r>> {
        let mut g = self
            .try_claim(record.len())
            .map_err(|e| TryPushError::from_claim(e, record))?;
        g.copy_from_slice(record);
        g.commit(record.len());
        Ok(())
    }

    /// Copies `record` into the queue, following the queue's policy when it
    /// is full.
    ///
    /// # Errors
    ///
    /// See [`PushError`]; the record is given back.
    fn push<'r>(&mut self, record: &'r [u8], deadline: Deadline) -> Result<(), PushError<'r>> {
        let mut g = self
            .claim(record.len(), deadline)
            .map_err(|e| PushError::from_claim(e, record))?;
        g.copy_from_slice(record);
        g.commit(record.len());
        Ok(())
    }
}

/// Publishing a claimed record.
pub trait CommitGrant {
    /// Publishes the first `n` bytes of the grant as one record.
    ///
    /// # Panics
    ///
    /// If `n` exceeds the claimed length.
    fn commit(self, n: usize);
}

/// What a design's reader does when a batch is released.
pub(crate) trait ReleaseBatch {
    /// The reader is done with the batch it handed out (`records` records,
    /// `bytes` bytes of slices).
    fn release_batch(&mut self, records: usize, bytes: usize);
}

enum Owner<'a> {
    /// Double buffer and shared ring: the reader itself.
    Queue(&'a mut dyn ReleaseBatch),
    /// Fan-in: the ring's own batch, released through the ring.
    Ring(crate::ring::ReadBatch<'a>, &'a ReaderCounters),
}

/// Records handed to the reader: at most two contiguous slices of queue
/// memory. Use them with [`as_slices`](Self::as_slices) (to write them out
/// whole) or [`records`](Self::records), then [`release`](Self::release)
/// them. Dropping a batch without releasing keeps its records in the queue:
/// the next read returns them again.
///
/// The slices borrow the batch, not the reader: once the batch is released
/// writers may overwrite the bytes, so nothing may point at them any more.
/// (The batch keeps raw pointers rather than references for the same reason:
/// a reference held across `release` would be alive while a writer reuses
/// the memory.)
pub struct Batch<'a> {
    /// `(start, len)` of the two parts; the second is empty unless wrapped.
    parts: [(*const u8, usize); 2],
    records: usize,
    owner: Owner<'a>,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("records", &self.records)
            .field("len_bytes", &self.len_bytes())
            .finish_non_exhaustive()
    }
}

impl<'a> Batch<'a> {
    /// # Safety
    ///
    /// Each part is valid for reads and writes of its length (its pointer
    /// has write provenance), starts 8-byte aligned, and nobody else reads or
    /// writes it until the owner's release runs.
    pub(crate) unsafe fn from_queue(
        parts: [(*const u8, usize); 2],
        records: usize,
        owner: &'a mut dyn ReleaseBatch,
    ) -> Self {
        Self {
            parts,
            records,
            owner: Owner::Queue(owner),
        }
    }

    /// # Safety
    ///
    /// As [`from_queue`](Self::from_queue), with the ring batch as the owner.
    pub(crate) unsafe fn from_ring(
        parts: [(*const u8, usize); 2],
        records: usize,
        batch: crate::ring::ReadBatch<'a>,
        counters: &'a ReaderCounters,
    ) -> Self {
        Self {
            parts,
            records,
            owner: Owner::Ring(batch, counters),
        }
    }

    fn slices(&self) -> [&[u8]; 2] {
        // SAFETY: `from_queue`/`from_ring` promise the parts stay readable
        // and unwritten until release, which consumes `self`; the returned
        // slices borrow `self`, so they end before it.
        self.parts
            .map(|(p, n)| unsafe { std::slice::from_raw_parts(p, n) })
    }

    /// The batch's bytes: two slices of queue memory holding the records back
    /// to back, each behind its 8-byte header (padding records included; see
    /// [`record`]). The second slice is empty unless the batch wraps the end
    /// of a ring. Each non-empty slice starts 8-byte aligned.
    pub fn as_slices(&self) -> [&[u8]; 2] {
        self.slices()
    }

    /// The payloads of the batch's records as mutable slices, in queue order:
    /// the batch is the reader's alone until it is released, so it may
    /// finish records in place (the pipeline seals journal frames this way)
    /// before writing them out.
    pub fn records_mut(&mut self) -> RecordsMut<'_> {
        // SAFETY: `from_queue`/`from_ring` promise the parts are valid for
        // reads and writes, start 8-aligned, and are touched by nobody else
        // until release, which consumes `self`; the iterator borrows `self`
        // mutably, so no other slice of the batch exists meanwhile.
        unsafe { RecordsMut::new(self.parts.map(|(p, n)| (p.cast_mut(), n))) }
    }

    /// The payloads of the batch's records, in queue order.
    pub fn records(&self) -> Records<'_> {
        Records::new(self.slices())
    }

    /// Number of records (padding not counted).
    pub fn len_records(&self) -> usize {
        self.records
    }

    /// Bytes of the slices together.
    pub fn len_bytes(&self) -> usize {
        self.parts[0].1 + self.parts[1].1
    }

    /// Gives the records back to the queue, so writers can reuse the room.
    pub fn release(self) {
        let bytes = self.len_bytes();
        match self.owner {
            Owner::Queue(q) => q.release_batch(self.records, bytes),
            Owner::Ring(b, c) => {
                b.release();
                c.batches.add(1);
                c.records.add(self.records as u64);
                c.bytes.add(bytes as u64);
            }
        }
    }
}
