//! The double buffer: the writer side (reserve, write in place, commit).

use super::*;
use crate::bytes::arena::Arena;
use crate::bytes::claim::{self, Slots};
use crate::bytes::stats::WriterCounters;

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

    fn reader_closed(&self) -> bool {
        // Relaxed: a flag with no data behind it.
        self.shared.life.reader_closed.load(Ordering::Relaxed)
    }

    /// One reservation attempt; `Err(gen)` when the buffer of `gen` is full.
    fn reserve_once(&mut self, total: u64) -> Result<(u64, u64), u64> {
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
        // previous contents happen before our writes; and with the Release
        // RMW of `active` that closes a reader's wait while none is sealed
        // (`Reader::wait`), so the fence-free notify after our commit sees
        // its announcement.
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
}

// SAFETY: `reserve` hands out `[off, off + total)` of generation `gen`'s
// buffer, inside it (`off + total <= capacity`), 8-aligned (record lengths
// are), zeroed when new or holding an older record, and no other writer's
// (the `fetch_add` gives each its own range) nor the reader's (it reads the
// buffer only after the commits it counts).
unsafe impl Slots for Writer {
    type Slot = (u64, u64);
    type Full = u64;

    /// `capacity - 8`: a record must fit an empty buffer.
    fn max_record_len(&self) -> usize {
        self.shared.capacity as usize - RECORD_HEADER_LEN
    }

    fn reserve(&mut self, total: u64) -> Result<(u64, u64), u64> {
        self.reserve_once(total)
    }

    fn reader_gone(&self) -> bool {
        self.reader_closed()
    }

    fn policy(&self) -> &Policy {
        &self.shared.policy
    }

    fn counters(&self) -> &WriterCounters {
        &self.shared.writer_stats[self.id]
    }

    fn wait_for_room(&self, full: u64, deadline: Deadline) -> bool {
        let sh = &*self.shared;
        sh.space_ev.wait_until(&self.strategy, deadline, || {
            // Relaxed: hints; `reserve` synchronises.
            gen_of(sh.active.load(Ordering::Relaxed)) != full
                || sh.life.reader_closed.load(Ordering::Relaxed)
        })
    }

    fn record_at(&self, (gen, off): (u64, u64)) -> (&Arena, usize) {
        (&self.shared.buffer(gen).mem, off as usize)
    }

    /// Writes the header(s) and counts the slot committed: a record of `n`
    /// payload bytes (plus padding for the slack), or all padding.
    fn publish(&mut self, (gen, off): (u64, u64), len: usize, n: Option<usize>) {
        let sh = &*self.shared;
        let buf = sh.buffer(gen);
        let off = off as usize;
        let slot = record_len(len);
        let used = n.map_or(0, record_len);
        if let Some(n) = n {
            // SAFETY: the slot [off, off + slot) is ours by the reservation,
            // 8-aligned and inside the buffer; the reader reads it only after
            // our commit below.
            unsafe { buf.mem.write_word(off, encode_header(n as u32, KIND_DATA)) };
        }
        if used < slot {
            let pad = (slot - used - RECORD_HEADER_LEN) as u32;
            // SAFETY: as above.
            unsafe { buf.mem.write_word(off + used, encode_header(pad, KIND_PAD)) };
        }
        let add = slot as u64 + if n.is_some() { 1 << RECORDS_SHIFT } else { 0 };
        // Release: publishes the header and payload; pairs with the Acquire
        // load of `committed` in `Reader::poll`. Acquire: pairs with the
        // reader's Release RMW of `committed` that closes its announcement
        // (`Reader::wait`), which is what lets the notification below skip
        // the fence. Our reservation (Acquire, of `active`) does the same for
        // a reader that waits with no buffer sealed.
        buf.tally.committed.fetch_add(add, Ordering::AcqRel);
        sh.reader_ev.notify_reserved();
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

claim::design_grant!(
    Writer,
    /// Room for one record in the active buffer, claimed by a [`Writer`].
    ///
    /// Derefs to the payload bytes in the buffer itself (they hold whatever an
    /// earlier record left there). [`commit`](crate::bytes::CommitGrant::commit) publishes;
    /// dropping the grant publishes padding instead, so the reader never waits
    /// for it.
);
