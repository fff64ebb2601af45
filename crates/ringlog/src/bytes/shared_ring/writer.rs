//! The shared ring: the writer side (reserve, write in place, commit).

use super::*;
use crate::bytes::arena::Arena;
use crate::bytes::claim::{self, Slots};
use crate::bytes::stats::WriterCounters;

/// A writer's handle: one per thread, `Send`, not `Clone`.
pub struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) id: usize,
    /// Last `tail` loaded (Acquire); may be stale (too small).
    pub(super) cached_tail: u64,
    pub(super) strategy: WaitStrategy,
    /// Our side of the reader's wake-up handshake.
    pub(super) notifier: Notifier,
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
pub(crate) struct Slot {
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

    /// loom builds only: stop notifying right after arming, before the
    /// reader's sleep episode ends, so that a model can show that arming
    /// must last the whole episode.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn disarm_early_for_loom(&mut self) {
        self.notifier.disarm_early = true;
    }

    fn reader_closed(&self) -> bool {
        // Relaxed: a flag with no data behind it.
        self.shared.reader_closed.load(Ordering::Relaxed)
    }

    /// One reservation attempt; `Err(tail needed)` when full.
    fn reserve_once(&mut self, total: u64) -> Result<Slot, u64> {
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
}

// SAFETY: `reserve` hands out `[start, start + total)` before the end of the
// ring (a record that would cross it gets wrap padding first), 8-aligned,
// zeroed by the reader's release, and no other writer's (the CAS gives each
// its own range) nor the reader's (it stops at the first unpublished header
// and never reads past `reserve`'s room check).
unsafe impl Slots for Writer {
    type Slot = Slot;
    /// The `tail` the reservation needs.
    type Full = u64;

    /// `capacity / 2 - 8`.
    fn max_record_len(&self) -> usize {
        self.shared.capacity as usize / 2 - RECORD_HEADER_LEN
    }

    fn reserve(&mut self, total: u64) -> Result<Slot, u64> {
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

    fn wait_for_room(&self, want_tail: u64, deadline: Deadline) -> bool {
        let sh = &*self.shared;
        sh.space_ev.wait_until(&self.strategy, deadline, || {
            // Relaxed: hints; `reserve` re-loads with Acquire.
            sh.tail.load(Ordering::Relaxed) >= want_tail || sh.reader_closed.load(Ordering::Relaxed)
        })
    }

    /// Publishes the wrap padding in front of the record, if any.
    fn reserved(&mut self, slot: Slot) {
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
    }

    fn record_at(&self, slot: Slot) -> (&Arena, usize) {
        let sh = &*self.shared;
        (&sh.data.mem, (slot.start & sh.mask()) as usize)
    }

    fn publish(&mut self, slot: Slot, len: usize, n: Option<usize>) {
        let sh = &*self.shared;
        let off = slot.start & sh.mask();
        let slot = record_len(len) as u64;
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
        }
        // The handshake (`wait::handshake`): one load unless the reader is
        // in a sleep episode, and the header store above is a plain Release
        // store, which is what the handshake is for.
        self.shared.reader_wake.notify(&mut self.notifier);
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Release: our publications happen before a reader that sees the
        // count drop (pairs with the Acquire load in `Reader::writers_gone`).
        self.shared.live_writers.fetch_sub(1, Ordering::Release);
        // After the count drops: the retirement's fence covers it and our
        // last publications, and we no longer hold the reader's sleeps to
        // a bound.
        self.shared.reader_wake.retire(&mut self.notifier);
    }
}

claim::design_grant!(
    Writer,
    /// Room for one record in the shared ring, claimed by a [`Writer`].
    ///
    /// Derefs to the payload bytes in the ring (zeroed). [`commit`](crate::bytes::CommitGrant::commit)
    /// publishes the header; dropping the grant publishes padding instead, so the
    /// reader is never stuck behind it.
);
