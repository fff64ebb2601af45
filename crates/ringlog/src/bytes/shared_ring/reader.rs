//! The shared ring: the reader side (seal or walk, batch, release).

use super::*;

/// The reader's handle; see [`ByteQueueReader`].
pub struct Reader {
    pub(super) shared: Arc<Shared>,
    /// Our own `tail`: only we store the shared one.
    pub(super) tail: u64,
    pub(super) strategy: WaitStrategy,
    /// Our side of the writers' wake-up handshake.
    pub(super) waiter: Waiter,
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
        // As written: the reader may finish records in place (`Batch::records_mut`).
        sh.data.mem.track_write(start as usize, first as usize);
        sh.data.mem.track_write(0, (len - first) as usize);
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
                    let ok = sh.reader_wake.wait_until(
                        &mut self.waiter,
                        &self.strategy,
                        deadline,
                        || {
                            // Relaxed: hints; `walk` re-loads with Acquire.
                            sh.data.load(off, Ordering::Relaxed) != 0
                                || sh.live_writers.load(Ordering::Relaxed) == 0
                        },
                    );
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
