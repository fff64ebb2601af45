//! The consumer end: read a batch of whole records, release them at once.

use super::error::{Corruption, ReadError, TryReadError};
use super::layout::{decode_header, KIND_DATA, KIND_PAD, RECORD_HEADER_LEN};
use super::{record_len, Ring};
use crate::region::{HeapRegion, PrivateRegion, Region};
use crate::sync::{Arc, Ordering};
use crate::wait::handshake::Waiter;
use crate::wait::{Deadline, WaitStrategy};
use std::cell::Cell;

/// The reading end of a byte ring. Only one exists per ring.
///
/// # Examples
///
/// ```
/// let (mut tx, mut rx) = ringlog::ring::channel(256).unwrap();
/// tx.try_push(b"one").unwrap();
/// tx.try_push(b"two").unwrap();
/// let batch = rx.try_read().unwrap();
/// assert_eq!(batch.len_bytes(), 32); // two 8-byte headers + two padded payloads
/// for record in batch.iter() {
///     println!("{:?}", record.unwrap());
/// }
/// batch.release();
/// assert!(rx.try_read().is_err());
/// ```
pub struct Consumer<R: Region = HeapRegion> {
    pub(super) ring: Arc<Ring<R>>,
    /// Our own `read_pos`: only we write the shared one.
    read_pos: u64,
    /// Last `write_pos` read from the producer's line (validated): the end of
    /// the batch being handed out.
    cached_write_pos: u64,
    /// Set once ring memory was found invalid; the ring is then dead.
    corrupt: Option<Corruption>,
    strategy: WaitStrategy,
    /// Our side of the data direction's handshake.
    waiter: Waiter,
}

impl<R: Region> std::fmt::Debug for Consumer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.ring.capacity())
            .field("read_pos", &self.read_pos)
            .finish_non_exhaustive()
    }
}

impl<R: Region> Consumer<R> {
    pub(crate) fn new(ring: Arc<Ring<R>>) -> Self {
        // Relaxed: see `Producer::new`.
        let read_pos = ring.control().consumer.pos.load(Ordering::Relaxed);
        // Episodes go on from the last one a consumer of this ring started
        // (shared memory may have had one before us).
        let waiter = Waiter::continuing(&ring.control().data_handshake);
        Self {
            ring,
            read_pos,
            cached_write_pos: read_pos,
            corrupt: None,
            strategy: WaitStrategy::DEFAULT,
            waiter,
        }
    }

    /// Sets how blocking calls wait (spin, yield, then sleep).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// Data capacity of the ring in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.capacity() as usize
    }

    /// Committed bytes not yet released (headers and padding count).
    pub fn available(&self) -> usize {
        // Our own read_pos, not the shared copy: in shared memory a peer could
        // rewrite that one and make an empty ring look non-empty.
        let write_pos = self.ring.control().producer.pos.load(Ordering::Relaxed);
        write_pos
            .saturating_sub(self.read_pos)
            .min(self.ring.capacity()) as usize
    }

    /// Free bytes in the ring as seen now.
    pub fn free_space(&self) -> usize {
        (self.ring.capacity() - self.ring.used()) as usize
    }

    /// Whether the producer has been dropped (records it committed may still
    /// be waiting to be read).
    pub fn is_abandoned(&self) -> bool {
        // Acquire: pairs with the Release store in `Producer::drop`.
        self.ring.control().producer.closed.load(Ordering::Acquire) != 0
    }

    /// Re-reads the producer's `write_pos`, validating it.
    fn refresh(&mut self) -> Result<(), Corruption> {
        // Acquire: pairs with the Release store in `Grant::commit`, so the
        // record bytes before `write_pos` are visible.
        let write_pos = self.ring.control().producer.pos.load(Ordering::Acquire);
        if write_pos < self.read_pos
            || write_pos - self.read_pos > self.ring.capacity()
            || write_pos % 8 != 0
        {
            let e = Corruption {
                what: "producer write_pos outside [read_pos, read_pos + capacity]",
                position: self.read_pos,
                value: write_pos,
            };
            self.corrupt = Some(e);
            return Err(e);
        }
        self.cached_write_pos = write_pos;
        Ok(())
    }

    fn try_read_inner(&mut self) -> Result<u64, TryReadError> {
        if let Some(e) = self.corrupt {
            return Err(e.into());
        }
        // One Acquire load of `write_pos` per batch: a batch is everything
        // committed so far, including records committed after an earlier,
        // unreleased read.
        self.refresh()?;
        if self.cached_write_pos == self.read_pos {
            if !self.is_abandoned() {
                return Err(TryReadError::Empty);
            }
            // The producer may have committed just before closing: look again
            // now that its close (Release) is seen.
            self.refresh()?;
            if self.cached_write_pos == self.read_pos {
                return Err(TryReadError::Disconnected);
            }
        }
        Ok(self.cached_write_pos)
    }

    /// Whether a [`try_read`](Self::try_read) now would return a batch,
    /// without borrowing the consumer: lets a caller that polls several rings
    /// pick one before taking its batch.
    ///
    /// # Errors
    ///
    /// As [`try_read`](Self::try_read).
    #[cfg(not(loom))]
    pub(crate) fn poll(&mut self) -> Result<(), TryReadError> {
        self.try_read_inner().map(|_| ())
    }

    /// The batch a successful [`poll`](Self::poll) found, without reading
    /// `write_pos` again (so it cannot fail). Empty if the last poll failed.
    #[cfg(not(loom))]
    pub(crate) fn read_polled(&mut self) -> ReadBatch<'_, R> {
        let end = self.cached_write_pos;
        ReadBatch::new(self, end)
    }

    /// The corruption found in this ring, if any; the ring is dead then.
    pub fn corruption(&self) -> Option<Corruption> {
        self.corrupt
    }

    /// Returns every record committed so far, without waiting.
    ///
    /// # Errors
    ///
    /// `Empty` if nothing is committed, `Disconnected` if additionally the
    /// producer is gone, `Corrupt` if ring memory is invalid.
    pub fn try_read(&mut self) -> Result<ReadBatch<'_, R>, TryReadError> {
        let end = self.try_read_inner()?;
        Ok(ReadBatch::new(self, end))
    }

    /// Returns every record committed so far, waiting (spin, yield, then
    /// sleep) until there is at least one or `deadline` passes.
    ///
    /// # Errors
    ///
    /// `Timeout` at the deadline, `Disconnected` once the producer is gone
    /// and everything it committed has been read, `Corrupt`.
    pub fn read(&mut self, deadline: Deadline) -> Result<ReadBatch<'_, R>, ReadError> {
        let end = loop {
            match self.try_read_inner() {
                Ok(end) => break end,
                Err(TryReadError::Disconnected) => return Err(ReadError::Disconnected),
                Err(TryReadError::Corrupt(e)) => return Err(e.into()),
                Err(TryReadError::Empty) => {
                    let read_pos = self.read_pos;
                    let c = self.ring.control();
                    let ok = c.data_wake().wait_until(
                        &mut self.waiter,
                        &self.strategy,
                        deadline,
                        || {
                            // Relaxed: a hint; `refresh` re-reads with Acquire.
                            c.producer.pos.load(Ordering::Relaxed) != read_pos
                                || c.producer.closed.load(Ordering::Relaxed) != 0
                        },
                    );
                    if !ok {
                        return Err(ReadError::Timeout);
                    }
                }
            }
        };
        Ok(ReadBatch::new(self, end))
    }
}

impl<R: Region> Drop for Consumer<R> {
    fn drop(&mut self) {
        let c = self.ring.control();
        // Release: pairs with the Acquire in `Producer::is_abandoned`.
        c.consumer.closed.store(1, Ordering::Release);
        c.space_ready.notify();
    }
}

/// Every record committed when the batch was taken. Iterate with
/// [`iter`](Self::iter) (private regions) or copy it out first with
/// [`copy_into`](Self::copy_into) (any region, and the only way over shared
/// memory), then [`release`](Self::release) them all at once; dropping the
/// batch without releasing leaves the records in the ring.
pub struct ReadBatch<'a, R: Region = HeapRegion> {
    consumer: &'a mut Consumer<R>,
    /// Position one past the batch's last record.
    end: u64,
    /// Corruption an iterator found; makes `release` mark the ring dead.
    found: Cell<Option<Corruption>>,
}

impl<R: Region> std::fmt::Debug for ReadBatch<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadBatch")
            .field("len_bytes", &self.len_bytes())
            .finish_non_exhaustive()
    }
}

impl<'a, R: Region> ReadBatch<'a, R> {
    fn new(consumer: &'a mut Consumer<R>, end: u64) -> Self {
        Self {
            consumer,
            end,
            found: Cell::new(None),
        }
    }

    /// Bytes the batch spans in the ring (headers and padding included).
    pub fn len_bytes(&self) -> usize {
        (self.end - self.consumer.read_pos) as usize
    }

    /// Copies the batch's bytes (headers and padding included) into
    /// `scratch`, private memory that is reused from batch to batch, and
    /// returns a batch whose records are parsed and validated from that
    /// copy only. Over shared memory this is how records are read: ring
    /// memory a peer may write at any time is read once, by the region's
    /// accessor (atomic word loads), never through a reference, and what the
    /// caller sees cannot change after it was validated.
    ///
    /// `scratch` grows to the batch's size (at most the ring's capacity).
    pub fn copy_into(self, scratch: &'a mut Vec<u64>) -> CopiedBatch<'a, R> {
        let read_pos = self.consumer.read_pos;
        let words = (self.end - read_pos) as usize / 8;
        scratch.clear();
        scratch.reserve_exact(words);
        let ring = &*self.consumer.ring;
        ring.track_read(read_pos, words as u64 * 8);
        // SAFETY: `read_pos..end` is the batch: committed (Acquire on `write_pos`),
        // not overwritten by the producer until we release, positions
        // multiples of 8, at most `capacity` bytes; `spare_capacity_mut`
        // has room for `words` (reserved above).
        unsafe { ring.read_words(read_pos, &mut scratch.spare_capacity_mut()[..words]) };
        // SAFETY: the first `words` elements were just written.
        unsafe { scratch.set_len(words) };
        let words: &'a [u64] = scratch;
        // SAFETY: a u64 slice is a valid u8 slice of 8 times the length.
        let bytes =
            unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 8) };
        CopiedBatch { batch: self, bytes }
    }

    /// Gives every record of the batch back to the producer and wakes it if    /// Gives every record of the batch back to the producer and wakes it if
    /// it sleeps waiting for space.
    pub fn release(self) {
        let c = self.consumer;
        if let Some(e) = self.found.get() {
            c.corrupt = Some(e);
        }
        if c.corrupt.is_some() {
            return;
        }
        let ring = &*c.ring;
        c.read_pos = self.end;
        // Release: our reads of the released bytes happen before the
        // producer reuses them; pairs with the Acquire load of read_pos in
        // `Producer::reserve`.
        ring.control()
            .consumer
            .pos
            .store(self.end, Ordering::Release);
        ring.control().space_ready.notify();
    }
}

impl<R: PrivateRegion> ReadBatch<'_, R> {
    /// The batch's records in order, as slices of the ring itself (no
    /// copy): only over a [`PrivateRegion`], which no other process can
    /// write. Padding is skipped. A record whose header is invalid yields
    /// one `Err` and ends the iteration; the ring is then marked corrupt.
    pub fn iter(&self) -> Records<'_, R> {
        Records {
            ring: &self.consumer.ring,
            copy: None,
            base: self.consumer.read_pos,
            pos: self.consumer.read_pos,
            end: self.end,
            found: &self.found,
        }
    }
}

/// A [`ReadBatch`] copied into private memory by
/// [`ReadBatch::copy_into`]: its records are read from the copy.
pub struct CopiedBatch<'a, R: Region = HeapRegion> {
    batch: ReadBatch<'a, R>,
    /// The batch's bytes from position `batch.consumer.read_pos` on.
    bytes: &'a [u8],
}

impl<R: Region> std::fmt::Debug for CopiedBatch<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopiedBatch")
            .field("len_bytes", &self.len_bytes())
            .finish_non_exhaustive()
    }
}

impl<R: Region> CopiedBatch<'_, R> {
    /// Bytes the batch spans in the ring (headers and padding included).
    pub fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The batch's records in order, as slices of the private copy. Padding
    /// is skipped. A record whose header is invalid yields one `Err` and
    /// ends the iteration; the ring is then marked corrupt (at `release`).
    pub fn iter(&self) -> Records<'_, R> {
        Records {
            ring: &self.batch.consumer.ring,
            copy: Some(self.bytes),
            base: self.batch.consumer.read_pos,
            pos: self.batch.consumer.read_pos,
            end: self.batch.end,
            found: &self.batch.found,
        }
    }

    /// Gives every record of the batch back to the producer: see
    /// [`ReadBatch::release`].
    pub fn release(self) {
        self.batch.release();
    }
}

/// Iterator over the records of a [`ReadBatch`] or a [`CopiedBatch`].
pub struct Records<'a, R: Region = HeapRegion> {
    ring: &'a Ring<R>,
    /// `Some`: read from this private copy of the batch, which starts at
    /// the batch's first position; `None`: read the ring itself (only built
    /// for a `PrivateRegion`).
    copy: Option<&'a [u8]>,
    /// First position of the batch (where `copy` starts).
    base: u64,
    pos: u64,
    end: u64,
    found: &'a Cell<Option<Corruption>>,
}

impl<R: Region> std::fmt::Debug for Records<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("pos", &self.pos)
            .field("end", &self.end)
            .finish()
    }
}

impl<'a, R: Region> Records<'a, R> {
    fn corrupt(&mut self, what: &'static str, value: u64) -> Option<Result<&'a [u8], Corruption>> {
        let e = Corruption {
            what,
            position: self.pos,
            value,
        };
        self.found.set(Some(e));
        self.pos = self.end;
        Some(Err(e))
    }
}

impl<'a, R: Region> Iterator for Records<'a, R> {
    type Item = Result<&'a [u8], Corruption>;

    fn next(&mut self) -> Option<Self::Item> {
        let ring = self.ring;
        let cap = ring.capacity();
        loop {
            if self.pos >= self.end {
                return None;
            }
            let left = self.end - self.pos;
            if left < RECORD_HEADER_LEN as u64 {
                return self.corrupt("batch ends inside a record header", left);
            }
            let offset = self.pos & ring.mask();
            // Index of the header in the private copy: `pos - base < end -
            // base = copy.len()`, and `left >= 8` bytes remain.
            let at = (self.pos - self.base) as usize;
            let word = match self.copy {
                Some(copy) => {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(&copy[at..at + RECORD_HEADER_LEN]);
                    u64::from_ne_bytes(w)
                }
                None => {
                    ring.track_read(self.pos, RECORD_HEADER_LEN as u64);
                    // SAFETY: `offset` is 8-aligned (positions are validated
                    // to be multiples of 8) and at most capacity - 8, so the
                    // header is in bounds; the producer published it before
                    // `end` (Acquire); the region is private (`iter` is only
                    // built for a `PrivateRegion`).
                    unsafe { ring.data(offset).cast::<u64>().read() }
                }
            };
            let (len, kind) = decode_header(word);
            let len = u64::from(len);
            match kind {
                KIND_PAD => {
                    if RECORD_HEADER_LEN as u64 + len != cap - offset {
                        return self.corrupt("padding does not reach the end of the ring", len);
                    }
                    if cap - offset > left {
                        return self.corrupt("padding runs past the committed end", len);
                    }
                    self.pos += cap - offset;
                }
                KIND_DATA => {
                    let total = record_len(len);
                    if total > cap - offset || total > left {
                        return self.corrupt("record length runs past the ring or the batch", len);
                    }
                    self.pos += total;
                    let start = at + RECORD_HEADER_LEN;
                    let payload = match self.copy {
                        // In bounds: `total <= left`, the bytes to the end
                        // of the copy.
                        Some(copy) => &copy[start..start + len as usize],
                        None => {
                            ring.track_read(self.pos - total, total);
                            // SAFETY: the payload lies inside the data area
                            // (checked above) and was published before `end`;
                            // the producer does not overwrite it until we
                            // release, and the region is private, so nobody
                            // else writes it while the slice lives.
                            unsafe {
                                std::slice::from_raw_parts(
                                    ring.data(offset + RECORD_HEADER_LEN as u64),
                                    len as usize,
                                )
                            }
                        }
                    };
                    return Some(Ok(payload));
                }
                other => return self.corrupt("unknown record kind", u64::from(other)),
            }
        }
    }
}
