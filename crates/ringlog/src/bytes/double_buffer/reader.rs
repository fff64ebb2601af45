//! The double buffer: the reader side (seal or walk, batch, release).

use super::*;

/// A buffer the reader has swapped out.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sealed {
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
    pub(super) shared: Arc<Shared>,
    /// Generation of the active buffer (only the reader changes it).
    pub(super) gen: u64,
    /// The buffer swapped out and not yet released.
    pub(super) sealed: Option<Sealed>,
    pub(super) strategy: WaitStrategy,
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
        // As written: the reader may finish records in place (`Batch::records_mut`).
        buf.mem.track_write(0, valid);
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
        // Writers wake us with the fence-free `notify_reserved` after a
        // commit (`Writer::publish`), so the announcement is closed with a
        // Release RMW of the word each of them RMWs with Acquire before it
        // notifies (`Event` module docs): while a batch drains, the sealed
        // buffer's `committed` (their commit itself is that RMW); while
        // none is sealed, `active` (their reservation). A commit or a
        // reservation ordered before our RMW is seen by `cond`, which
        // reads the same word after it; one ordered after sees our
        // announcement. So no RMW leaves a publication in flight unseen.
        let close = || {
            match sealed {
                Some(s) => {
                    sh.buffer(s.gen)
                        .tally
                        .committed
                        .fetch_add(0, Ordering::Release);
                }
                None => {
                    sh.active.fetch_add(0, Ordering::Release);
                }
            }
            false
        };
        sh.reader_ev.wait_until_closed(
            &self.strategy,
            deadline,
            || match sealed {
                // Relaxed: hints; `poll` re-reads with Acquire.
                Some(s) => {
                    sh.buffer(s.gen).tally.committed.load(Ordering::Relaxed) & BYTES_MASK
                        == s.target
                }
                None => {
                    offset_of(sh.active.load(Ordering::Relaxed)) != 0
                        || sh.life.live_writers.load(Ordering::Relaxed) == 0
                }
            },
            close,
        )
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
