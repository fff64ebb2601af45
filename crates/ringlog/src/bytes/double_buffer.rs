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
    Batch, ByteQueueReader, ByteQueueWriter, ClaimError, CommitGrant, Config, NewQueueError,
    Policy, QueueStats, ReadError, ReleaseBatch, TooLarge, TryClaimError, TryReadError,
};
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::wait::{Deadline, Event, WaitStrategy};
use crossbeam_utils::CachePadded;
use std::ops::{Deref, DerefMut};
use std::time::Instant;

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

/// Builds a double buffer for `config.writers` writers with
/// `config.buffers` buffers of `config.capacity_bytes` each.
///
/// # Errors
///
/// [`NewQueueError`] when capacity, writer count or buffer count is out of
/// range (see the module docs).
pub fn channel(config: Config) -> Result<(Vec<Writer>, Reader), NewQueueError> {
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
    let capacity = config.capacity_bytes.next_multiple_of(8) as u64;
    let buffers = (0..config.buffers)
        .map(|_| Buffer {
            mem: Arena::new(capacity as usize),
            tally: CachePadded::new(Tally {
                committed: AtomicU64::new(0),
                end: AtomicU64::new(capacity),
            }),
        })
        .collect();
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

/// A writer's handle: one per thread, `Send`, not `Clone`.
pub struct Writer {
    shared: Arc<Shared>,
    id: usize,
    /// The generation in which our last reservation failed: until `gen`
    /// changes we do not `fetch_add` again (keeps `offset` bounded).
    full_gen: Option<u64>,
    strategy: WaitStrategy,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Sets how `claim`/`push` wait under the `Block` policy.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    fn reader_gone(&self) -> bool {
        // Relaxed: a flag with no data behind it.
        self.shared.life.reader_closed.load(Ordering::Relaxed)
    }

    /// One reservation attempt; `Err(gen)` when the buffer of `gen` is full.
    fn reserve(&mut self, total: u64) -> Result<(u64, u64), u64> {
        let sh = &*self.shared;
        if let Some(g) = self.full_gen {
            // Relaxed: only to learn whether `gen` moved; the fetch_add below
            // is what synchronises.
            if gen_of(sh.active.load(Ordering::Relaxed)) == g {
                return Err(g);
            }
            self.full_gen = None;
        }
        // Acquire: pairs with the Release swap in `Reader::seal`, so the
        // reader's reset of this buffer's tally and its reads of the buffer's
        // previous contents happen before our writes.
        let w = sh.active.fetch_add(total, Ordering::Acquire);
        let (gen, off) = (gen_of(w), offset_of(w));
        let cap = sh.capacity;
        if off + total <= cap {
            return Ok((gen, off));
        }
        if off < cap {
            // We straddle the end: the bytes [off, cap) are ours and unusable.
            let t = &sh.buffer(gen).tally;
            // Relaxed: published by the Release fetch_add just below.
            t.end.store(off, Ordering::Relaxed);
            // Release: publishes `end`; pairs with the Acquire load of
            // `committed` in `Reader::poll`.
            t.committed.fetch_add(cap - off, Ordering::Release);
            sh.reader_ev.notify();
        }
        self.full_gen = Some(gen);
        Err(gen)
    }

    fn check_len(&self, len: usize) -> Result<u64, TooLarge> {
        let max = self.max_record_len();
        if len > max {
            return Err(TooLarge {
                requested: len,
                max,
            });
        }
        Ok(record_len(len) as u64)
    }

    fn grant(&mut self, (gen, off): (u64, u64), len: usize) -> Grant<'_> {
        Grant {
            writer: self,
            gen,
            off: off as usize,
            len,
            done: false,
        }
    }
}

impl ByteQueueWriter for Writer {
    type Grant<'a> = Grant<'a>;

    fn id(&self) -> usize {
        self.id
    }

    /// `capacity - 8`: a record must fit an empty buffer.
    fn max_record_len(&self) -> usize {
        self.shared.capacity as usize - RECORD_HEADER_LEN
    }

    fn try_claim(&mut self, len: usize) -> Result<Grant<'_>, TryClaimError> {
        let total = self.check_len(len)?;
        match self.reserve(total) {
            Ok(r) => Ok(self.grant(r, len)),
            Err(_) if self.reader_gone() => Err(TryClaimError::Disconnected),
            Err(_) => Err(TryClaimError::Full),
        }
    }

    fn claim(&mut self, len: usize, deadline: Deadline) -> Result<Grant<'_>, ClaimError> {
        let total = self.check_len(len)?;
        let mut since: Option<Instant> = None;
        let r = loop {
            match self.reserve(total) {
                Ok(r) => break r,
                Err(_) if self.reader_gone() => return Err(ClaimError::Disconnected),
                Err(_) if self.shared.policy == Policy::DropNewest => {
                    self.shared.writer_stats[self.id].dropped.add(1);
                    return Err(ClaimError::Dropped);
                }
                Err(full) => {
                    let start = *since.get_or_insert_with(Instant::now);
                    let sh = &*self.shared;
                    let ok = sh.space_ev.wait_until(&self.strategy, deadline, || {
                        // Relaxed: hints; `reserve` synchronises.
                        gen_of(sh.active.load(Ordering::Relaxed)) != full
                            || sh.life.reader_closed.load(Ordering::Relaxed)
                    });
                    if !ok {
                        sh.writer_stats[self.id].add_blocked(start.elapsed());
                        return Err(ClaimError::Timeout);
                    }
                }
            }
        };
        if let Some(start) = since {
            self.shared.writer_stats[self.id].add_blocked(start.elapsed());
        }
        Ok(self.grant(r, len))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Release: our reservations and commits happen before a reader that
        // sees the count drop (pairs with the Acquire loads in `Reader`).
        self.shared
            .life
            .live_writers
            .fetch_sub(1, Ordering::Release);
        self.shared.reader_ev.notify();
    }
}

/// Room for one record in the active buffer, claimed by a [`Writer`].
///
/// Derefs to the payload bytes in the buffer itself (they hold whatever an
/// earlier record left there). [`commit`](CommitGrant::commit) publishes;
/// dropping the grant publishes padding instead, so the reader never waits
/// for it.
pub struct Grant<'a> {
    writer: &'a mut Writer,
    gen: u64,
    off: usize,
    len: usize,
    done: bool,
}

impl std::fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Grant<'_> {
    /// The claimed payload length in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Writes the header(s) and publishes the slot: a record of `n` payload
    /// bytes (plus padding for the slack), or all padding when `n` is `None`.
    fn finish(&mut self, n: Option<usize>) {
        self.done = true;
        let sh = &*self.writer.shared;
        let buf = sh.buffer(self.gen);
        let slot = record_len(self.len);
        let used = n.map_or(0, record_len);
        if let Some(n) = n {
            // SAFETY: the slot [off, off + slot) is ours by the reservation,
            // 8-aligned and inside the buffer; the reader reads it only after
            // our commit below.
            unsafe {
                buf.mem
                    .write_word(self.off, encode_header(n as u32, KIND_DATA))
            };
        }
        if used < slot {
            let pad = (slot - used - RECORD_HEADER_LEN) as u32;
            // SAFETY: as above.
            unsafe {
                buf.mem
                    .write_word(self.off + used, encode_header(pad, KIND_PAD))
            };
        }
        let add = slot as u64 + if n.is_some() { 1 << RECORDS_SHIFT } else { 0 };
        // Release: publishes the header and payload; pairs with the Acquire
        // load of `committed` in `Reader::poll`.
        buf.tally.committed.fetch_add(add, Ordering::Release);
        sh.reader_ev.notify();
        if let Some(n) = n {
            let c = &sh.writer_stats[self.writer.id];
            c.records.add(1);
            c.bytes.add(n as u64);
        }
    }

    fn payload_ptr(&self) -> *mut u8 {
        self.writer
            .shared
            .buffer(self.gen)
            .mem
            .ptr(self.off + RECORD_HEADER_LEN)
    }
}

impl CommitGrant for Grant<'_> {
    /// Publishes the first `n` payload bytes as one record; the rest of the
    /// slot becomes padding.
    ///
    /// # Panics
    ///
    /// If `n` exceeds the claimed length.
    fn commit(mut self, n: usize) {
        assert!(
            n <= self.len,
            "commit of {n} bytes exceeds the grant of {}",
            self.len
        );
        self.finish(Some(n));
    }
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.finish(None);
        }
    }
}

impl Deref for Grant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the payload lies inside our reserved slot, initialised (the
        // arena is zeroed when new), and nobody else touches it until commit.
        unsafe { std::slice::from_raw_parts(self.payload_ptr(), self.len) }
    }
}

impl DerefMut for Grant<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let buf = self.writer.shared.buffer(self.gen);
        buf.mem.track_write(self.off + RECORD_HEADER_LEN, self.len);
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.payload_ptr(), self.len) }
    }
}

/// A buffer the reader has swapped out.
#[derive(Debug, Clone, Copy)]
struct Sealed {
    gen: u64,
    /// Offset of `active` at the swap (may exceed capacity).
    reserved: u64,
    /// `committed` bytes once every reservation is written.
    target: u64,
    /// Records in it, once complete.
    records: Option<u64>,
}

/// The reader's handle; see [`ByteQueueReader`].
pub struct Reader {
    shared: Arc<Shared>,
    /// Generation of the active buffer (only the reader changes it).
    gen: u64,
    /// The buffer swapped out and not yet released.
    sealed: Option<Sealed>,
    strategy: WaitStrategy,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("capacity", &self.shared.capacity)
            .field("buffers", &self.shared.buffers.len())
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Sets how `read` waits.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// Bytes per buffer.
    pub fn capacity(&self) -> usize {
        self.shared.capacity as usize
    }

    fn writers_gone(&self) -> bool {
        // Acquire: pairs with the Release fetch_sub in `Writer::drop`, so
        // every reservation of every writer is visible afterwards.
        self.shared.life.live_writers.load(Ordering::Acquire) == 0
    }

    /// Swaps the active buffer out and the next one in.
    fn seal(&mut self) {
        let sh = &*self.shared;
        let next = (self.gen + 1) & GEN_MASK;
        let t = &sh.buffer(next).tally;
        // Relaxed: published by the Release swap below. No writer touches
        // this tally now: its last generation was drained before we released
        // it, and void reservations do not touch a tally they did not reach.
        t.committed.store(0, Ordering::Relaxed);
        t.end.store(sh.capacity, Ordering::Relaxed);
        // Release: the resets above and our reads of the next buffer's old
        // contents happen before the writers that reserve in it (pairs with
        // the Acquire fetch_add in `Writer::reserve`).
        let old = sh.active.swap(word(next, 0), Ordering::Release);
        debug_assert_eq!(gen_of(old), self.gen);
        sh.space_ev.notify();
        let reserved = offset_of(old);
        self.sealed = Some(Sealed {
            gen: self.gen,
            reserved,
            target: reserved.min(sh.capacity),
            records: None,
        });
        self.gen = next;
    }

    /// Makes `self.sealed` a complete batch if one is to be had.
    fn poll(&mut self) -> Result<(), TryReadError> {
        if self.sealed.is_none() {
            // Relaxed: a hint; the swap in `seal` is what counts.
            if offset_of(self.shared.active.load(Ordering::Relaxed)) == 0 {
                if !self.writers_gone() {
                    return Err(TryReadError::Empty);
                }
                // Look again now that the writers' last reservations are seen.
                if offset_of(self.shared.active.load(Ordering::Relaxed)) == 0 {
                    return Err(TryReadError::Disconnected);
                }
            }
            self.seal();
        }
        let s = self.sealed.as_mut().expect("sealed above");
        if s.records.is_none() {
            // Acquire: pairs with the Release fetch_adds in `Grant::finish`
            // and `Writer::reserve`: every record counted is fully written.
            let c = self
                .shared
                .buffer(s.gen)
                .tally
                .committed
                .load(Ordering::Acquire);
            if c & BYTES_MASK != s.target {
                return Err(TryReadError::Empty);
            }
            s.records = Some(c >> RECORDS_SHIFT);
        }
        Ok(())
    }

    fn batch(&mut self) -> Batch<'_> {
        let s = self.sealed.expect("poll made a batch");
        let sh = &*self.shared;
        let buf = sh.buffer(s.gen);
        let valid = if s.reserved <= sh.capacity {
            s.reserved
        } else {
            // Relaxed: ordered by the Acquire load of `committed` in `poll`.
            buf.tally.end.load(Ordering::Relaxed)
        } as usize;
        buf.mem.track_read(0, valid);
        let parts = [
            (buf.mem.ptr(0).cast_const(), valid),
            (buf.mem.ptr(0).cast_const(), 0),
        ];
        let records = s.records.unwrap_or(0) as usize;
        // SAFETY: [0, valid) holds committed records (Acquire in `poll`);
        // writers do not touch this buffer again until `seal` hands it back
        // to them, which needs `&mut self` and so comes after the batch.
        unsafe { Batch::from_queue(parts, records, self) }
    }

    fn wait(&mut self, deadline: Deadline) -> bool {
        let sh = &*self.shared;
        let sealed = self.sealed;
        sh.reader_ev
            .wait_until(&self.strategy, deadline, || match sealed {
                // Relaxed: hints; `poll` re-reads with Acquire.
                Some(s) => {
                    sh.buffer(s.gen).tally.committed.load(Ordering::Relaxed) & BYTES_MASK
                        == s.target
                }
                None => {
                    offset_of(sh.active.load(Ordering::Relaxed)) != 0
                        || sh.life.live_writers.load(Ordering::Relaxed) == 0
                }
            })
    }
}

impl ReleaseBatch for Reader {
    fn release_batch(&mut self, records: usize, bytes: usize) {
        let s = self.sealed.take().expect("a batch is out");
        let c = &self.shared.reader_stats;
        c.batches.add(1);
        c.records.add(records as u64);
        c.bytes.add(bytes as u64);
        if s.reserved > self.shared.capacity {
            c.wasted.add(self.shared.capacity - bytes as u64);
        }
    }
}

impl ByteQueueReader for Reader {
    fn try_read(&mut self) -> Result<Batch<'_>, TryReadError> {
        self.poll()?;
        Ok(self.batch())
    }

    fn read(&mut self, deadline: Deadline) -> Result<Batch<'_>, ReadError> {
        loop {
            match self.poll() {
                Ok(()) => break,
                Err(TryReadError::Disconnected) => return Err(ReadError::Disconnected),
                Err(TryReadError::Empty) => {
                    if !self.wait(deadline) {
                        return Err(ReadError::Timeout);
                    }
                }
            }
        }
        Ok(self.batch())
    }

    fn is_disconnected(&self) -> bool {
        self.writers_gone()
            && self.sealed.is_none()
            && offset_of(self.shared.active.load(Ordering::Relaxed)) == 0
    }

    fn stats(&self) -> QueueStats {
        QueueStats::collect(&self.shared.writer_stats, &self.shared.reader_stats)
    }

    fn max_record_len(&self) -> usize {
        self.shared.capacity as usize - RECORD_HEADER_LEN
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // Relaxed: a flag with no data behind it; the notify's fence orders it
        // before the check for sleepers.
        self.shared
            .life
            .reader_closed
            .store(true, Ordering::Relaxed);
        self.shared.space_ev.notify();
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
