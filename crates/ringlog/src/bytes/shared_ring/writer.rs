//! The shared ring: the writer side (reserve, write in place, commit).

use super::*;

/// A writer's handle: one per thread, `Send`, not `Clone`.
pub struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) id: usize,
    /// Last `tail` loaded (Acquire); may be stale (too small).
    pub(super) cached_tail: u64,
    pub(super) strategy: WaitStrategy,
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
            #[cfg(not(loom))]
            let order = Ordering::Release;
            #[cfg(loom)]
            let order = if sh.weaken_publish {
                Ordering::Relaxed
            } else {
                Ordering::Release
            };
            // Release: publishes the payload (and the slack padding); pairs
            // with the Acquire header load in `Reader::walk`.
            sh.data
                .publish(off, encode_header(n as u32, KIND_DATA), order);
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
