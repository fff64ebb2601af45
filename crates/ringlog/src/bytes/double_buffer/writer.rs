//! The double buffer: the writer side (reserve, write in place, commit).

use super::*;

/// A writer's handle: one per thread, `Send`, not `Clone`.
pub struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) id: usize,
    /// The generation in which our last reservation failed: until `gen`
    /// changes we do not `fetch_add` again (keeps `offset` bounded).
    pub(super) full_gen: Option<u64>,
    pub(super) strategy: WaitStrategy,
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
