//! The producer end: claim space, write in place, commit.

use super::error::{ClaimError, Corruption, TooLarge, TryClaimError};
use super::layout::{encode_header, KIND_DATA, KIND_PAD, RECORD_HEADER_LEN};
use super::{record_len, Ring};
use crate::region::{HeapRegion, PrivateRegion, Region};
use crate::sync::{Arc, Ordering};
use crate::wait::handshake::Notifier;
use crate::wait::{Deadline, WaitStrategy};
use std::ops::{Deref, DerefMut};

/// The writing end of a byte ring. Only one exists per ring; `&mut self` on
/// every operation makes the single-producer contract a type-system fact.
///
/// # Examples
///
/// ```
/// let (mut tx, mut rx) = ringlog::ring::channel(256).unwrap();
/// tx.try_push(b"abc").unwrap();
/// let mut g = tx.try_claim(100).unwrap();
/// g[..2].copy_from_slice(b"xy");
/// g.commit(2); // partial commit: the other 98 bytes are not used
/// let batch = rx.try_read().unwrap();
/// assert_eq!(batch.iter().map(Result::unwrap).collect::<Vec<_>>(), [&b"abc"[..], b"xy"]);
/// ```
pub struct Producer<R: Region = HeapRegion> {
    ring: Arc<Ring<R>>,
    /// Our own `write_pos`: only we write the shared one.
    write_pos: u64,
    /// Last `read_pos` read from the consumer's line; may be stale (too small),
    /// which only makes us re-read it.
    cached_read_pos: u64,
    strategy: WaitStrategy,
    /// Whether a commit notifies the ring's data event: not when the
    /// consumer sleeps elsewhere (the fan-in queue's doorbell).
    notify_data: bool,
    /// Our side of the data direction's handshake.
    notifier: Notifier,
}

impl<R: Region> std::fmt::Debug for Producer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.ring.capacity())
            .field("write_pos", &self.write_pos)
            .finish_non_exhaustive()
    }
}

/// Where a reservation landed: positions only, so holding one borrows
/// nothing (see [`Producer::try_reserve`]).
pub(crate) struct Reservation {
    /// Bytes of padding written before the record (0 if none).
    pad: u64,
    /// Position of the record header.
    start: u64,
}

enum ReserveError {
    Full { need: u64 },
    TooLarge(TooLarge),
    Corrupt(Corruption),
}

impl<R: Region> Producer<R> {
    pub(crate) fn new(ring: Arc<Ring<R>>) -> Self {
        let c = ring.control();
        // Relaxed: the handle is created before it is sent to its thread; the
        // spawn (or process start) orders these loads.
        let write_pos = c.producer.pos.load(Ordering::Relaxed);
        let cached_read_pos = c.consumer.pos.load(Ordering::Relaxed);
        Self {
            ring,
            write_pos,
            cached_read_pos,
            strategy: WaitStrategy::DEFAULT,
            notify_data: true,
            notifier: Notifier::new(0),
        }
    }

    /// loom builds only: stop notifying right after arming, before the
    /// consumer's sleep episode ends, so that a model can show that arming
    /// must last the whole episode.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn disarm_early_for_loom(&mut self) {
        self.notifier.disarm_early = true;
    }

    /// Sets how blocking calls wait (spin, yield, then sleep).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// Commits stop notifying the ring's data event: for a consumer that
    /// never waits on it but on an event of its own, which the caller
    /// notifies after each commit. Closing still notifies.
    pub(crate) fn skip_data_notify(&mut self) {
        self.notify_data = false;
    }

    /// Data capacity of the ring in bytes (headers and padding included).
    pub fn capacity(&self) -> usize {
        self.ring.capacity() as usize
    }

    /// Largest payload, in bytes, that [`try_claim`](Self::try_claim) accepts:
    /// half the capacity less a header, so that any record fits once the
    /// consumer has released everything, wherever the ring wrapped; and never
    /// more than the record header's 32-bit length field holds
    /// ([`MAX_RECORD_LEN`](super::MAX_RECORD_LEN)), which rings over 8 GiB
    /// reach.
    pub fn max_record_len(&self) -> usize {
        max_record_len(self.ring.capacity())
    }

    /// Free bytes in the ring as seen now (headers and padding count).
    pub fn free_space(&self) -> usize {
        (self.ring.capacity() - self.ring.used()) as usize
    }

    /// Committed bytes not yet released by the consumer, as seen now.
    pub fn available(&self) -> usize {
        self.ring.used() as usize
    }

    /// Whether the consumer has been dropped.
    pub fn is_abandoned(&self) -> bool {
        // Acquire: pairs with the Release store in `Consumer::drop`.
        self.ring.control().consumer.closed.load(Ordering::Acquire) != 0
    }

    fn reserve(&mut self, len: usize) -> Result<Reservation, ReserveError> {
        let cap = self.ring.capacity();
        let max = self.max_record_len();
        if len > max {
            return Err(ReserveError::TooLarge(TooLarge {
                requested: len,
                max,
            }));
        }
        let total = record_len(len as u64);
        let offset = self.write_pos & self.ring.mask();
        let to_end = cap - offset;
        let pad = if total <= to_end { 0 } else { to_end };
        let need = pad + total;
        if self.write_pos + need - self.cached_read_pos > cap {
            // Acquire: pairs with the Release store in `ReadBatch::release`,
            // so the consumer's reads of the bytes we are about to overwrite
            // happen before our writes.
            let read_pos = self.ring.control().consumer.pos.load(Ordering::Acquire);
            if read_pos > self.write_pos || self.write_pos - read_pos > cap || read_pos % 8 != 0 {
                return Err(ReserveError::Corrupt(Corruption {
                    what: "consumer read_pos outside [write_pos - capacity, write_pos]",
                    position: self.write_pos,
                    value: read_pos,
                }));
            }
            self.cached_read_pos = read_pos;
            if self.write_pos + need - read_pos > cap {
                return Err(ReserveError::Full { need });
            }
        }
        Ok(Reservation {
            pad,
            start: self.write_pos + pad,
        })
    }

    fn grant(&mut self, r: Reservation, len: usize) -> Grant<'_, R> {
        Grant {
            pad: r.pad,
            start: r.start,
            len,
            producer: self,
        }
    }

    /// [`try_claim`](Self::try_claim) in two steps, for a caller that must
    /// decide what to do when the ring is full before it holds a grant (a
    /// grant borrows the producer): the room, then
    /// [`grant_reserved`](Self::grant_reserved) for it, with no other call
    /// on this producer in between.
    pub(crate) fn try_reserve(&mut self, len: usize) -> Result<Reservation, TryClaimError> {
        match self.reserve(len) {
            Ok(r) => Ok(r),
            Err(ReserveError::Full { .. }) if self.is_abandoned() => {
                Err(TryClaimError::Disconnected)
            }
            Err(ReserveError::Full { .. }) => Err(TryClaimError::Full),
            Err(ReserveError::TooLarge(e)) => Err(e.into()),
            Err(ReserveError::Corrupt(e)) => Err(e.into()),
        }
    }

    /// The grant of a reservation [`try_reserve`](Self::try_reserve) just
    /// made.
    pub(crate) fn grant_reserved(&mut self, r: Reservation, len: usize) -> Grant<'_, R> {
        self.grant(r, len)
    }

    /// Claims room for a record of `len` payload bytes without waiting.
    ///
    /// Write the payload through the returned [`Grant`] and
    /// [`commit`](Grant::commit) it; dropping the grant publishes nothing.
    ///
    /// # Errors
    ///
    /// `Full` if the consumer has not freed enough space (the consumer being
    /// gone is reported as `Disconnected` then), `TooLarge` if `len` exceeds
    /// [`max_record_len`](Self::max_record_len).
    pub fn try_claim(&mut self, len: usize) -> Result<Grant<'_, R>, TryClaimError> {
        let r = self.try_reserve(len)?;
        Ok(self.grant(r, len))
    }

    /// Claims room for a record of `len` payload bytes, waiting (spin, yield,
    /// then sleep) until the consumer frees enough or `deadline` passes.
    ///
    /// # Errors
    ///
    /// `Timeout` at the deadline, `Disconnected` if the consumer is gone while
    /// the ring is full, `TooLarge` if `len` can never fit.
    pub fn claim(&mut self, len: usize, deadline: Deadline) -> Result<Grant<'_, R>, ClaimError> {
        let r = loop {
            match self.reserve(len) {
                Ok(r) => break r,
                Err(ReserveError::TooLarge(e)) => return Err(e.into()),
                Err(ReserveError::Corrupt(e)) => return Err(e.into()),
                Err(ReserveError::Full { need }) => {
                    if self.is_abandoned() {
                        return Err(ClaimError::Disconnected);
                    }
                    let ring = &*self.ring;
                    let c = ring.control();
                    let want_read_pos = self.write_pos + need - ring.capacity();
                    let ok = c.space_ready.wait_until(&self.strategy, deadline, || {
                        // Relaxed: only a hint to stop waiting; `reserve`
                        // re-reads read_pos with Acquire.
                        c.consumer.pos.load(Ordering::Relaxed) >= want_read_pos
                            || c.consumer.closed.load(Ordering::Relaxed) != 0
                    });
                    if !ok {
                        return Err(ClaimError::Timeout);
                    }
                }
            }
        };
        Ok(self.grant(r, len))
    }

    /// Copies `bytes` into the ring as one record, without waiting.
    ///
    /// # Errors
    ///
    /// As [`try_claim`](Self::try_claim).
    pub fn try_push(&mut self, bytes: &[u8]) -> Result<(), TryClaimError> {
        let mut g = self.try_claim(bytes.len())?;
        g.copy_from_slice(bytes);
        g.commit(bytes.len());
        Ok(())
    }

    /// Copies `bytes` into the ring as one record, waiting for space.
    ///
    /// # Errors
    ///
    /// As [`claim`](Self::claim).
    pub fn push(&mut self, bytes: &[u8], deadline: Deadline) -> Result<(), ClaimError> {
        let mut g = self.claim(bytes.len(), deadline)?;
        g.copy_from_slice(bytes);
        g.commit(bytes.len());
        Ok(())
    }
}

/// Largest payload a ring of `capacity` data bytes accepts: see
/// [`Producer::max_record_len`]. Pure arithmetic, so the limit of rings too
/// large to allocate in a test can still be checked.
pub(crate) const fn max_record_len(capacity: u64) -> usize {
    let half = capacity / 2 - RECORD_HEADER_LEN as u64;
    let max = if half < super::MAX_RECORD_LEN as u64 {
        half
    } else {
        super::MAX_RECORD_LEN as u64
    };
    max as usize
}

impl<R: Region> Drop for Producer<R> {
    fn drop(&mut self) {
        let c = self.ring.control();
        // Release: everything committed before is visible to a consumer that
        // sees the flag (pairs with the Acquire in `Consumer::refresh`).
        c.producer.closed.store(1, Ordering::Release);
        // After the flag: the retirement's fence covers it and our last
        // commits.
        c.data_wake().retire(&mut self.notifier);
    }
}

/// Writable room for one record, claimed from a [`Producer`].
///
/// Write the payload with [`copy_from_slice`](Self::copy_from_slice) or
/// [`write_at`](Self::write_at), which copy through the region's accessor
/// (atomic word copies in shared memory). Over a private region (the heap
/// ring of [`channel`](super::channel)) the grant also derefs to the payload
/// bytes, which live in the ring itself: no intermediate copy. The bytes
/// hold whatever an earlier record left there. Nothing is visible to the
/// consumer until [`commit`](Self::commit).
pub struct Grant<'a, R: Region = HeapRegion> {
    producer: &'a mut Producer<R>,
    pad: u64,
    start: u64,
    len: usize,
}

impl<R: Region> std::fmt::Debug for Grant<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<R: Region> Grant<'_, R> {
    /// Publishes the first `n` payload bytes as one record, and wakes the
    /// consumer if it sleeps. The rest of the grant is returned to the ring.
    ///
    /// # Panics
    ///
    /// If `n` exceeds the claimed length.
    #[inline]
    pub fn commit(self, n: usize) {
        assert!(
            n <= self.len,
            "commit of {n} bytes exceeds the grant of {}",
            self.len
        );
        let p = self.producer;
        let ring = &*p.ring;
        let mask = ring.mask();
        if self.pad > 0 {
            // pad < record_len(len) <= 8 + 2^32, and pad is a multiple of 8,
            // so pad - 8 < u32::MAX.
            let word = encode_header((self.pad - RECORD_HEADER_LEN as u64) as u32, KIND_PAD);
            // SAFETY: the pad starts at an 8-aligned offset inside the data
            // area with >= 8 bytes to its end, and the space is ours (claimed
            // in `reserve`; the consumer does not read past `write_pos`).
            unsafe { ring.write_word(p.write_pos & mask, word) };
            ring.track_write(p.write_pos, RECORD_HEADER_LEN as u64);
        }
        // `n <= len <= max_record_len <= u32::MAX` (checked in `reserve`),
        // so the length field holds it exactly.
        let n32 = u32::try_from(n).expect("record length checked against MAX_RECORD_LEN");
        // SAFETY: as above for the record header at `start`.
        unsafe { ring.write_word(self.start & mask, encode_header(n32, KIND_DATA)) };
        let total = record_len(n as u64);
        ring.track_write(self.start, total);
        let write_pos = self.start + total;
        p.write_pos = write_pos;
        // Release: publishes the header and payload; pairs with the Acquire
        // load of write_pos in `Consumer::refresh`.
        ring.control()
            .producer
            .pos
            .store(write_pos, Ordering::Release);
        if p.notify_data {
            // One load of the handshake's line unless the consumer is in a
            // sleep episode (`wait::handshake`): the publication above is a
            // plain Release store.
            ring.control().data_wake().notify(&mut p.notifier);
        }
    }

    /// The claimed payload length in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Copies `bytes` into the payload at byte `offset`, without making a
    /// reference to ring memory (so it is sound over shared memory that a
    /// peer may write concurrently).
    ///
    /// # Panics
    ///
    /// If `offset + bytes.len()` exceeds [`len`](Self::len).
    pub fn write_at(&mut self, offset: usize, bytes: &[u8]) {
        assert!(
            offset <= self.len && bytes.len() <= self.len - offset,
            "write of {} bytes at {offset} exceeds the grant of {}",
            bytes.len(),
            self.len
        );
        let ring = &*self.producer.ring;
        let off = (self.start + RECORD_HEADER_LEN as u64) & ring.mask();
        // SAFETY: `reserve` placed the whole record before the end of the
        // data area, the range is inside the grant (checked above), and the
        // consumer does not read it until we publish.
        unsafe { ring.write_bytes(off + offset as u64, bytes) };
    }

    /// Copies `bytes` into the payload, as `<[u8]>::copy_from_slice` does:
    /// see [`write_at`](Self::write_at).
    ///
    /// # Panics
    ///
    /// If `bytes.len()` differs from [`len`](Self::len).
    pub fn copy_from_slice(&mut self, bytes: &[u8]) {
        assert_eq!(
            bytes.len(),
            self.len,
            "source slice length does not match the grant"
        );
        self.write_at(0, bytes);
    }
}

/// Only over a [`PrivateRegion`]: memory that no other process can write.
impl<R: PrivateRegion> Deref for Grant<'_, R> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let ring = &*self.producer.ring;
        let off = (self.start + RECORD_HEADER_LEN as u64) & ring.mask();
        // SAFETY: `reserve` placed the whole record before the end of the
        // data area, the bytes are initialised (the region is zeroed when
        // new), the consumer does not touch them until we publish, and the
        // region is private (`PrivateRegion`), so nobody outside the ring's
        // protocol writes them while the reference lives.
        unsafe { std::slice::from_raw_parts(ring.data(off), self.len) }
    }
}

impl<R: PrivateRegion> DerefMut for Grant<'_, R> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let ring = &*self.producer.ring;
        let off = (self.start + RECORD_HEADER_LEN as u64) & ring.mask();
        // SAFETY: as in `deref`; `&mut self` on the grant (which borrows the
        // only producer mutably) makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(ring.data(off), self.len) }
    }
}
