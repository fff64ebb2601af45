//! Fan-in (seed 004): one SPSC byte [`ring`](crate::ring::channel) per writer, plus a
//! doorbell the reader sleeps on.
//!
//! Writers never contend: each owns its ring. After each commit a writer
//! rings the doorbell, a [`Wake`](crate::wait) handshake with one notifier
//! per writer: one load of a line nobody writes while the reader is busy,
//! and a fence (and a system call only if the reader is asleep) only while
//! the reader is in a sleep episode (`wait/handshake.rs` gives the
//! argument that no wake-up is lost). The reader visits the rings round-robin and takes one ring's
//! committed records per batch: at most two slices (the second when the
//! batch wraps the ring's end; the first then ends with the ring's padding
//! record, which [`Batch::records`] skips).
//!
//! Full and empty are per ring: a writer blocks (or drops, under
//! `DropNewest`) only when *its* ring is full, whatever the others do.
//!
//! # Limits
//!
//! Capacity per ring 64 B ..= 1 TiB, rounded up to a power of two; at most
//! 256 writers; largest payload `capacity / 2 - 8` (the ring's limit: a
//! record must fit wherever the ring wrapped). `DropOldest` is not supported
//! (see [`Policy`]).
//!
//! # Examples
//!
//! ```
//! use ringlog::bytes::{fan_in, ByteQueueReader, ByteQueueWriter, Config};
//!
//! let (mut writers, mut reader) = fan_in::channel(Config::new(4096, 2)).unwrap();
//! writers[0].try_push(b"from 0").unwrap();
//! writers[1].try_push(b"from 1").unwrap();
//! let mut seen = Vec::new();
//! while let Ok(batch) = reader.try_read() {
//!     seen.extend(batch.records().map(<[u8]>::to_vec));
//!     batch.release();
//! }
//! seen.sort();
//! assert_eq!(seen, [b"from 0".to_vec(), b"from 1".to_vec()]);
//! ```

use super::record::RECORD_HEADER_LEN;
use super::stats::{writer_slots, ReaderCounters, WriterSlots};
use super::{
    Batch, ByteQueueReader, ByteQueueWriter, ClaimError, CommitGrant, Config, NewQueueError,
    Policy, QueueLimits, QueueStats, ReadError, Records, TooLarge, TryClaimError, TryReadError,
};
use crate::region::HeapRegion;
use crate::ring::{self, Consumer, Producer, Ring};
use crate::sync::{Arc, Ordering};
use crate::wait::handshake::{Notifier, Waiter, Wake};
use crate::wait::{Deadline, WaitStrategy};
use crossbeam_utils::CachePadded;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::time::Instant;

/// Most writers one queue supports.
pub const MAX_WRITERS: usize = 256;

#[derive(Debug)]
struct Shared {
    /// The reader sleeps here when every ring is empty; writer `i` notifies
    /// as notifier `i`.
    doorbell: Wake,
    policy: Policy,
    writer_stats: WriterSlots,
    reader_stats: CachePadded<ReaderCounters>,
}

/// What [`channel`] would build from `config`, checked and computed without
/// allocating: the largest record and the memory of all rings.
///
/// # Errors
///
/// As [`channel`], except allocation failure.
pub fn limits(config: &Config) -> Result<QueueLimits, NewQueueError> {
    if !(ring::MIN_CAPACITY..=ring::MAX_CAPACITY).contains(&config.capacity_bytes) {
        return Err(NewQueueError::Capacity {
            requested: config.capacity_bytes,
            min: ring::MIN_CAPACITY,
            max: ring::MAX_CAPACITY,
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
        memory_bytes: Ring::<HeapRegion>::region_len(capacity)
            .checked_mul(config.writers)
            .ok_or(NewQueueError::OutOfMemory { bytes: usize::MAX })?,
    })
}

/// Builds a fan-in queue: `config.writers` rings of `config.capacity_bytes`
/// each (rounded up to a power of two).
///
/// # Errors
///
/// [`NewQueueError`] when capacity or writer count is out of range, or the
/// memory cannot be allocated.
pub fn channel(config: Config) -> Result<(Vec<Writer>, Reader), NewQueueError> {
    let limits = limits(&config)?;
    let capacity = config.capacity_bytes.next_power_of_two();
    let shared = Arc::new(Shared {
        doorbell: Wake::with_notifiers(config.writers),
        policy: config.policy,
        writer_stats: writer_slots(config.writers),
        reader_stats: CachePadded::new(ReaderCounters::new()),
    });
    let mut writers = Vec::with_capacity(config.writers);
    let mut lanes = Vec::with_capacity(config.writers);
    for id in 0..config.writers {
        // The ring is built by hand rather than with `ring::channel` so that
        // the reader keeps a handle on ring memory: `ring::ReadBatch` yields
        // records one by one but does not expose the batch's raw bytes.
        let region =
            HeapRegion::try_new(Ring::<HeapRegion>::region_len(capacity)).map_err(|_| {
                NewQueueError::OutOfMemory {
                    bytes: limits.memory_bytes,
                }
            })?;
        // SAFETY: the region is fresh, so nobody else uses it; capacity is a
        // power of two and the region has room for it.
        let ring = Arc::new(unsafe { Ring::init(region, capacity) });
        let mut producer = Producer::new(ring.clone());
        producer.set_wait_strategy(config.wait);
        // The reader sleeps on the doorbell, never on the ring's own event.
        producer.skip_data_notify();
        let mut consumer = Consumer::new(ring.clone());
        consumer.set_wait_strategy(config.wait);
        writers.push(Writer {
            producer: ManuallyDrop::new(producer),
            shared: shared.clone(),
            notifier: Notifier::new(id),
            id,
        });
        lanes.push(Lane { ring, consumer });
    }
    let reader = Reader {
        lanes,
        next: 0,
        shared,
        strategy: config.wait,
        waiter: Waiter::default(),
    };
    Ok((writers, reader))
}

/// A writer's handle: owns its ring's producer end. `Send`, not `Clone`.
pub struct Writer {
    /// Dropped by hand in `Drop`, before the doorbell rings.
    producer: ManuallyDrop<Producer>,
    shared: Arc<Shared>,
    /// Our side of the doorbell's handshake.
    notifier: Notifier,
    id: usize,
}

// SAFETY: only under loom, where the ring's shadow cells (loom bookkeeping,
// no data) make `ring::Producer`/`Consumer` neither `Send` nor `Sync`; the
// ring is shared between threads exactly as without loom.
#[cfg(loom)]
unsafe impl Send for Writer {}
// SAFETY: as for `Writer`.
#[cfg(loom)]
unsafe impl Send for Reader {}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn try_claim_error(e: ring::TryClaimError) -> TryClaimError {
    match e {
        ring::TryClaimError::Full => TryClaimError::Full,
        ring::TryClaimError::TooLarge(t) => TooLarge {
            requested: t.requested,
            max: t.max,
        }
        .into(),
        // Corruption cannot happen in private memory; treat the ring as gone.
        ring::TryClaimError::Disconnected | ring::TryClaimError::Corrupt(_) => {
            TryClaimError::Disconnected
        }
    }
}

impl Writer {
    /// Our grant for the room `r` that `try_reserve` just found.
    fn grant_reserved(&mut self, r: ring::Reservation, len: usize) -> Grant<'_> {
        let Self {
            producer,
            shared,
            notifier,
            id,
        } = self;
        Grant {
            inner: producer.grant_reserved(r, len),
            shared,
            notifier,
            id: *id,
        }
    }

    /// Sets how `claim`/`push` wait under the `Block` policy.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.producer.set_wait_strategy(strategy);
    }

    /// loom builds only: stop ringing the doorbell right after arming for
    /// the reader's sleep episode instead of when the episode ends, so that
    /// a model can show that arming must last the whole episode.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn disarm_early_for_loom(&mut self) {
        self.notifier.disarm_early = true;
    }
}

impl ByteQueueWriter for Writer {
    type Grant<'a> = Grant<'a>;

    fn id(&self) -> usize {
        self.id
    }

    /// `capacity / 2 - 8`, the ring's limit.
    fn max_record_len(&self) -> usize {
        self.producer.max_record_len()
    }

    fn try_claim(&mut self, len: usize) -> Result<Grant<'_>, TryClaimError> {
        let r = self.producer.try_reserve(len).map_err(try_claim_error)?;
        Ok(self.grant_reserved(r, len))
    }

    fn claim(&mut self, len: usize, deadline: Deadline) -> Result<Grant<'_>, ClaimError> {
        // One reservation on the fast path, and no clock read.
        match self.producer.try_reserve(len) {
            Ok(r) => return Ok(self.grant_reserved(r, len)),
            Err(ring::TryClaimError::Full) => {}
            Err(e) => {
                return Err(match try_claim_error(e) {
                    TryClaimError::TooLarge(t) => ClaimError::TooLarge(t),
                    _ => ClaimError::Disconnected,
                })
            }
        }
        if self.shared.policy == Policy::DropNewest {
            self.shared.writer_stats[self.id].dropped.add(1);
            return Err(ClaimError::Dropped);
        }
        let start = Instant::now();
        let r = self.producer.claim(len, deadline);
        self.shared.writer_stats[self.id].add_blocked(start.elapsed());
        match r {
            Ok(g) => {
                let Self {
                    shared,
                    notifier,
                    id,
                    ..
                } = self;
                Ok(Grant {
                    inner: g,
                    shared,
                    notifier,
                    id: *id,
                })
            }
            Err(ring::ClaimError::Timeout) => Err(ClaimError::Timeout),
            Err(ring::ClaimError::TooLarge(t)) => Err(TooLarge {
                requested: t.requested,
                max: t.max,
            }
            .into()),
            Err(ring::ClaimError::Disconnected | ring::ClaimError::Corrupt(_)) => {
                Err(ClaimError::Disconnected)
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // SAFETY: dropped exactly once, here, and never used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.producer) };
        // The producer's drop published `closed` (Release); retire after it,
        // which rings with a fence, so a sleeping reader re-checks and sees
        // it, and no longer waits for us to ack its sleep episodes.
        self.shared.doorbell.retire(&mut self.notifier);
    }
}

/// Room for one record in the writer's ring; see [`ring::Grant`].
pub struct Grant<'a> {
    inner: ring::Grant<'a>,
    shared: &'a Shared,
    notifier: &'a mut Notifier,
    id: usize,
}

impl std::fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("len", &self.inner.len())
            .finish_non_exhaustive()
    }
}

impl CommitGrant for Grant<'_> {
    /// Publishes the first `n` payload bytes as one record and rings the
    /// doorbell. The rest of the grant goes back to the ring.
    ///
    /// # Panics
    ///
    /// If `n` exceeds the claimed length.
    #[inline]
    fn commit(self, n: usize) {
        self.inner.commit(n);
        // The ring's commit stored `write_pos` with Release before this.
        self.shared.doorbell.notify(self.notifier);
        let c = &self.shared.writer_stats[self.id];
        c.records.add(1);
        c.bytes.add(n as u64);
    }
}

impl Deref for Grant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.inner
    }
}

impl DerefMut for Grant<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.inner
    }
}

/// One writer's ring, seen from the reader.
struct Lane {
    /// The same ring the consumer reads, kept to slice its memory.
    ring: Arc<Ring<HeapRegion>>,
    consumer: Consumer,
}

/// The reader's handle; see [`ByteQueueReader`].
pub struct Reader {
    lanes: Vec<Lane>,
    /// Ring to look at first next time (round-robin fairness).
    next: usize,
    shared: Arc<Shared>,
    strategy: WaitStrategy,
    /// Our side of the doorbell's handshake.
    waiter: Waiter,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("rings", &self.lanes.len())
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Sets how `read` waits.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// The first ring, from `next` on, with committed records.
    fn ready_lane(lanes: &[Lane], next: usize) -> Option<usize> {
        let n = lanes.len();
        (0..n)
            .map(|k| (next + k) % n)
            .find(|&i| lanes[i].consumer.available() > 0)
    }

    fn all_gone(lanes: &[Lane]) -> bool {
        // `is_abandoned` is an Acquire load pairing with the producer's
        // Release close, so `available` afterwards sees its last commit.
        lanes
            .iter()
            .all(|l| l.consumer.is_abandoned() && l.consumer.available() == 0)
    }

    fn poll(&mut self) -> Result<usize, TryReadError> {
        match Self::ready_lane(&self.lanes, self.next) {
            Some(i) => Ok(i),
            None if Self::all_gone(&self.lanes) => Err(TryReadError::Disconnected),
            None => Err(TryReadError::Empty),
        }
    }

    fn batch(&mut self, i: usize) -> Result<Batch<'_>, TryReadError> {
        self.next = (i + 1) % self.lanes.len();
        let Lane { ring, consumer } = &mut self.lanes[i];
        let ring: &Ring<HeapRegion> = ring;
        // Relaxed: our own last store (only the consumer writes `tail`).
        let tail = ring.control().consumer.pos.load(Ordering::Relaxed);
        let b = match consumer.try_read() {
            Ok(b) => b,
            // Only we consume, and `available` said there is data.
            Err(_) => return Err(TryReadError::Empty),
        };
        let cap = ring.capacity();
        let start = tail & ring.mask();
        let len = b.len_bytes() as u64;
        let first = len.min(cap - start);
        // As written: the reader may finish records in place (`Batch::records_mut`).
        ring.track_write(tail, len);
        let parts = [
            (ring.data(start).cast_const(), first as usize),
            (ring.data(0).cast_const(), (len - first) as usize),
        ];
        // SAFETY: [tail, tail + len) is the batch the consumer just read: the
        // producer committed it (Acquire in `try_read`) and does not touch it
        // until the batch is released, which consumes `b`, held in the Batch.
        // `first` stops at the end of the data area, the rest starts at 0.
        let slices = parts.map(|(p, n)| unsafe { std::slice::from_raw_parts(p, n) });
        let records = Records::new(slices).count();
        // SAFETY: as above.
        Ok(unsafe { Batch::from_ring(parts, records, b, &self.shared.reader_stats) })
    }
}

impl ByteQueueReader for Reader {
    fn try_read(&mut self) -> Result<Batch<'_>, TryReadError> {
        let i = self.poll()?;
        self.batch(i)
    }

    fn read(&mut self, deadline: Deadline) -> Result<Batch<'_>, ReadError> {
        let i = loop {
            match self.poll() {
                Ok(i) => break i,
                Err(TryReadError::Disconnected) => return Err(ReadError::Disconnected),
                Err(TryReadError::Empty) => {
                    if !self.wait(deadline) {
                        return Err(ReadError::Timeout);
                    }
                }
            }
        };
        self.batch(i).map_err(|_| ReadError::Timeout)
    }

    fn is_disconnected(&self) -> bool {
        Self::all_gone(&self.lanes)
    }

    fn stats(&self) -> QueueStats {
        QueueStats::collect(&self.shared.writer_stats, &self.shared.reader_stats)
    }

    fn max_record_len(&self) -> usize {
        self.lanes[0].ring.capacity() as usize / 2 - RECORD_HEADER_LEN
    }
}

impl Reader {
    /// Waits until a ring has data or one more writer goes away (a gone
    /// writer's ring would keep a plain "abandoned" condition true for ever).
    /// The count of gone writers is taken before the wait announces itself,
    /// so a writer leaving after it changes the count the condition sees.
    /// Returns `false` at the deadline.
    fn wait(&mut self, deadline: Deadline) -> bool {
        let lanes = &self.lanes;
        let gone = || lanes.iter().filter(|l| l.consumer.is_abandoned()).count();
        let gone_before = gone();
        if gone_before == lanes.len() {
            // Everyone left since `poll`: poll again.
            return true;
        }
        self.shared
            .doorbell
            .wait_until(&mut self.waiter, &self.strategy, deadline, || {
                lanes.iter().any(|l| l.consumer.available() > 0) || gone() != gone_before
            })
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
