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
//! yields, then sleeps, woken by each commit. A grant dropped without commit
//! is published as padding.
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
    Batch, ByteQueueReader, ByteQueueWriter, ClaimError, CommitGrant, Config, NewQueueError,
    Policy, QueueStats, ReadError, ReleaseBatch, TooLarge, TryClaimError, TryReadError,
};
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::wait::{Deadline, Event, WaitStrategy};
use crossbeam_utils::CachePadded;
use std::ops::{Deref, DerefMut};
use std::time::Instant;

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
    fn new(capacity: usize) -> Self {
        Self {
            mem: Arena::new(capacity),
            #[cfg(loom)]
            headers: (0..capacity / 8).map(|_| AtomicU64::new(0)).collect(),
        }
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
    /// The reader sleeps here; writers notify after each publish.
    reader_ev: CachePadded<Event>,
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

/// Builds a shared ring of `config.capacity_bytes` (rounded up to a power
/// of two) for `config.writers` writers.
///
/// # Errors
///
/// [`NewQueueError`] when capacity or writer count is out of range.
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
    let capacity = config.capacity_bytes.next_power_of_two();
    let shared = Arc::new(Shared {
        reserve: CachePadded::new(AtomicU64::new(0)),
        tail: CachePadded::new(AtomicU64::new(0)),
        data: Data::new(capacity),
        capacity: capacity as u64,
        policy: config.policy,
        reader_ev: CachePadded::new(Event::new()),
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
        })
        .collect();
    let reader = Reader {
        shared,
        tail: 0,
        strategy: config.wait,
    };
    Ok((writers, reader))
}

/// A writer's handle: one per thread, `Send`, not `Clone`.
pub struct Writer {
    shared: Arc<Shared>,
    id: usize,
    /// Last `tail` loaded (Acquire); may be stale (too small).
    cached_tail: u64,
    strategy: WaitStrategy,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A successful reservation.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Position of the wrap padding, if any.
    pad_at: Option<u64>,
    /// Position of the record header.
    start: u64,
}

impl Writer {
    /// Sets how `claim`/`push` wait under the `Block` policy.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    fn reader_gone(&self) -> bool {
        // Relaxed: a flag with no data behind it.
        self.shared.reader_closed.load(Ordering::Relaxed)
    }

    /// One reservation attempt; `Err(tail needed)` when full.
    fn reserve(&mut self, total: u64) -> Result<Slot, u64> {
        let sh = &*self.shared;
        let cap = sh.capacity;
        // Relaxed: the CAS below decides; no data is passed between writers
        // through `reserve`.
        let mut r = sh.reserve.load(Ordering::Relaxed);
        loop {
            let to_end = cap - (r & sh.mask());
            let pad = if total <= to_end { 0 } else { to_end };
            let need = pad + total;
            let want_tail = (r + need).saturating_sub(cap);
            if r + need > self.cached_tail + cap {
                // Acquire: pairs with the Release store in `release_batch`:
                // the reader's reads and zeroing of the bytes we are about to
                // write happen before our writes.
                self.cached_tail = sh.tail.load(Ordering::Acquire);
                if r + need > self.cached_tail + cap {
                    return Err(want_tail);
                }
            }
            match sh.reserve.compare_exchange_weak(
                r,
                r + need,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Ok(Slot {
                        pad_at: (pad > 0).then_some(r),
                        start: r + pad,
                    })
                }
                Err(now) => r = now,
            }
        }
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

    fn grant(&mut self, slot: Slot, len: usize) -> Grant<'_> {
        let sh = &*self.shared;
        if let Some(p) = slot.pad_at {
            let off = p & sh.mask();
            let word = encode_header(
                (sh.capacity - off) as u32 - RECORD_HEADER_LEN as u32,
                KIND_PAD,
            );
            // Release: the padding carries no record, but the reader's batch
            // slices read its header word as plain memory, which must happen
            // after this store; pairs with the Acquire load in `walk`.
            sh.data.publish(off, word, Ordering::Release);
        }
        Grant {
            writer: self,
            start: slot.start,
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

    /// `capacity / 2 - 8`.
    fn max_record_len(&self) -> usize {
        self.shared.capacity as usize / 2 - RECORD_HEADER_LEN
    }

    fn try_claim(&mut self, len: usize) -> Result<Grant<'_>, TryClaimError> {
        let total = self.check_len(len)?;
        match self.reserve(total) {
            Ok(s) => Ok(self.grant(s, len)),
            Err(_) if self.reader_gone() => Err(TryClaimError::Disconnected),
            Err(_) => Err(TryClaimError::Full),
        }
    }

    fn claim(&mut self, len: usize, deadline: Deadline) -> Result<Grant<'_>, ClaimError> {
        let total = self.check_len(len)?;
        let mut since: Option<Instant> = None;
        let slot = loop {
            match self.reserve(total) {
                Ok(s) => break s,
                Err(_) if self.reader_gone() => return Err(ClaimError::Disconnected),
                Err(_) if self.shared.policy == Policy::DropNewest => {
                    self.shared.writer_stats[self.id].dropped.add(1);
                    return Err(ClaimError::Dropped);
                }
                Err(want_tail) => {
                    let start = *since.get_or_insert_with(Instant::now);
                    let sh = &*self.shared;
                    let ok = sh.space_ev.wait_until(&self.strategy, deadline, || {
                        // Relaxed: hints; `reserve` re-loads with Acquire.
                        sh.tail.load(Ordering::Relaxed) >= want_tail
                            || sh.reader_closed.load(Ordering::Relaxed)
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
        Ok(self.grant(slot, len))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Release: our publications happen before a reader that sees the
        // count drop (pairs with the Acquire load in `Reader::writers_gone`).
        self.shared.live_writers.fetch_sub(1, Ordering::Release);
        self.shared.reader_ev.notify();
    }
}

/// Room for one record in the shared ring, claimed by a [`Writer`].
///
/// Derefs to the payload bytes in the ring (zeroed). [`commit`](CommitGrant::commit)
/// publishes the header; dropping the grant publishes padding instead, so the
/// reader is never stuck behind it.
pub struct Grant<'a> {
    writer: &'a mut Writer,
    start: u64,
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

    fn finish(&mut self, n: Option<usize>) {
        self.done = true;
        let sh = &*self.writer.shared;
        let off = self.start & sh.mask();
        let slot = record_len(self.len) as u64;
        let used = n.map_or(0, |n| record_len(n) as u64);
        if used < slot {
            let word = encode_header((slot - used) as u32 - RECORD_HEADER_LEN as u32, KIND_PAD);
            // With a record: Relaxed, the Release store of the record header
            // below publishes it. Without (an abandoned grant, all padding):
            // Release, because the reader's slices cover whatever we wrote
            // into the payload; pairs with the Acquire load in `walk`.
            let order = if n.is_some() {
                Ordering::Relaxed
            } else {
                Ordering::Release
            };
            sh.data.publish(off + used, word, order);
        }
        if let Some(n) = n {
            // Release: publishes the payload (and the slack padding); pairs
            // with the Acquire header load in `Reader::walk`.
            sh.data
                .publish(off, encode_header(n as u32, KIND_DATA), Ordering::Release);
            let c = &sh.writer_stats[self.writer.id];
            c.records.add(1);
            c.bytes.add(n as u64);
        }
        sh.reader_ev.notify();
    }

    fn payload_ptr(&self) -> *mut u8 {
        let sh = &*self.writer.shared;
        sh.data
            .mem
            .ptr(((self.start & sh.mask()) as usize) + RECORD_HEADER_LEN)
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
        // SAFETY: the payload lies inside our reservation (placed before the
        // end of the ring by `reserve`); it is initialised (zeroed on
        // release) and nobody else touches it until we publish.
        unsafe { std::slice::from_raw_parts(self.payload_ptr(), self.len) }
    }
}

impl DerefMut for Grant<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let sh = &*self.writer.shared;
        sh.data.mem.track_write(
            ((self.start & sh.mask()) as usize) + RECORD_HEADER_LEN,
            self.len,
        );
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.payload_ptr(), self.len) }
    }
}

/// The reader's handle; see [`ByteQueueReader`].
pub struct Reader {
    shared: Arc<Shared>,
    /// Our own `tail`: only we store the shared one.
    tail: u64,
    strategy: WaitStrategy,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("capacity", &self.shared.capacity)
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Sets how `read` waits.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    fn writers_gone(&self) -> bool {
        // Acquire: pairs with the Release fetch_sub in `Writer::drop`.
        self.shared.live_writers.load(Ordering::Acquire) == 0
    }

    /// Walks published records from `tail`: returns the end of the last one
    /// and the number of data records.
    fn walk(&self) -> (u64, usize) {
        let sh = &*self.shared;
        let (mut pos, mut records) = (self.tail, 0);
        while pos < self.tail + sh.capacity {
            let off = pos & sh.mask();
            // Acquire: pairs with the Release publish in `Grant::finish`: the
            // payload is written.
            let (len, kind) = decode_header(sh.data.load(off, Ordering::Acquire));
            let total = match kind {
                KIND_DATA => {
                    records += 1;
                    record_len(len as usize) as u64
                }
                KIND_PAD => RECORD_HEADER_LEN as u64 + u64::from(len),
                // Zero: not yet published.
                _ => break,
            };
            debug_assert!(
                off + total <= sh.capacity,
                "record crosses the end of the ring"
            );
            pos += total;
        }
        (pos, records)
    }

    fn poll(&mut self) -> Result<(u64, usize), TryReadError> {
        let (end, records) = self.walk();
        if end != self.tail {
            return Ok((end, records));
        }
        if self.writers_gone() {
            // Every writer's publications are visible now: look again.
            let (end, records) = self.walk();
            if end != self.tail {
                return Ok((end, records));
            }
            return Err(TryReadError::Disconnected);
        }
        Err(TryReadError::Empty)
    }

    fn batch(&mut self, end: u64, records: usize) -> Batch<'_> {
        let sh = &*self.shared;
        let start = self.tail & sh.mask();
        let len = end - self.tail;
        let first = len.min(sh.capacity - start);
        sh.data.mem.track_read(start as usize, first as usize);
        sh.data.mem.track_read(0, (len - first) as usize);
        let m = &sh.data.mem;
        let parts = [
            (m.ptr(start as usize).cast_const(), first as usize),
            (m.ptr(0).cast_const(), (len - first) as usize),
        ];
        // SAFETY: [tail, end) holds published records (Acquire in `walk`);
        // writers cannot reserve them again until `release_batch` moves
        // `tail`, which needs `&mut self` and so comes after the batch.
        // `first` stops at the end of the ring; the rest starts at offset 0.
        unsafe { Batch::from_queue(parts, records, self) }
    }
}

impl ReleaseBatch for Reader {
    fn release_batch(&mut self, records: usize, bytes: usize) {
        let sh = &*self.shared;
        let start = self.tail & sh.mask();
        let len = bytes as u64;
        let first = len.min(sh.capacity - start);
        sh.data.zero(start, first);
        sh.data.zero(0, len - first);
        self.tail += len;
        // Release: our reads and zeroing of the released bytes happen before
        // a writer reuses them; pairs with the Acquire load in `reserve`.
        sh.tail.store(self.tail, Ordering::Release);
        sh.space_ev.notify();
        let c = &sh.reader_stats;
        c.batches.add(1);
        c.records.add(records as u64);
        c.bytes.add(len);
    }
}

impl ByteQueueReader for Reader {
    fn try_read(&mut self) -> Result<Batch<'_>, TryReadError> {
        let (end, records) = self.poll()?;
        Ok(self.batch(end, records))
    }

    fn read(&mut self, deadline: Deadline) -> Result<Batch<'_>, ReadError> {
        let (end, records) = loop {
            match self.poll() {
                Ok(r) => break r,
                Err(TryReadError::Disconnected) => return Err(ReadError::Disconnected),
                Err(TryReadError::Empty) => {
                    let sh = &*self.shared;
                    let off = self.tail & sh.mask();
                    let ok = sh.reader_ev.wait_until(&self.strategy, deadline, || {
                        // Relaxed: hints; `walk` re-loads with Acquire.
                        sh.data.load(off, Ordering::Relaxed) != 0
                            || sh.live_writers.load(Ordering::Relaxed) == 0
                    });
                    if !ok {
                        return Err(ReadError::Timeout);
                    }
                }
            }
        };
        Ok(self.batch(end, records))
    }

    fn is_disconnected(&self) -> bool {
        self.writers_gone() && self.walk().0 == self.tail
    }

    fn stats(&self) -> QueueStats {
        QueueStats::collect(&self.shared.writer_stats, &self.shared.reader_stats)
    }

    fn max_record_len(&self) -> usize {
        self.shared.capacity as usize / 2 - RECORD_HEADER_LEN
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // Relaxed: a flag with no data behind it.
        self.shared.reader_closed.store(true, Ordering::Relaxed);
        self.shared.space_ev.notify();
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
