//! A producer slot's header: who owns the slot's ring.
//!
//! The owner word holds a packed [`ProcessIdentity`] (0: free). A producer
//! takes a slot with one compare-and-swap, from 0 or from the identity of a
//! process that is dead (pid and start time, so a recycled pid does not
//! keep a dead owner's slot alive). Whoever wins the CAS owns the ring; the
//! ring's `head` is where the previous owner's last commit ended, so records
//! it committed stay readable and a record it claimed but never committed is
//! simply overwritten.

use super::identity::{Liveness, ProcessIdentity};
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::wait::handshake::Handshake;

/// Compare-and-swap attempts on a contended owner word before giving up.
pub(crate) const CAS_ATTEMPTS: usize = 64;

/// At the start of each slot, before the slot's ring.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct SlotHeader {
    /// Packed identity of the producer owning the ring; 0 when free.
    pub(crate) owner: AtomicU64,
    /// Non-zero once the consumer found the ring corrupt: nobody may use it
    /// until the segment is recreated.
    pub(crate) quarantined: AtomicU32,
    /// How many times the slot was taken from a dead owner.
    pub(crate) takeovers: AtomicU64,
    /// The doorbell's handshake with this slot's producer
    /// (`wait::handshake`): read by the producer after every commit,
    /// written by the consumer twice per sleep episode.
    pub(crate) bell: Handshake,
}

/// Why a slot could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotTaken {
    /// A live process owns it.
    Busy(ProcessIdentity),
    /// Out of use after corruption.
    Quarantined,
}

impl SlotHeader {
    /// Takes the slot for `me` (a packed identity) if it is free or its
    /// owner is dead. Returns the dead owner it was taken from, if any.
    ///
    /// The compare-and-swap is retried a bounded number of times: a peer
    /// that keeps rewriting the word makes the slot look busy, never makes
    /// us spin for ever.
    pub(crate) fn acquire(&self, me: u64) -> Result<Option<ProcessIdentity>, SlotTaken> {
        let mut last = None;
        for _ in 0..CAS_ATTEMPTS {
            if self.quarantined.load(Ordering::Relaxed) != 0 {
                return Err(SlotTaken::Quarantined);
            }
            let cur = self.owner.load(Ordering::Relaxed);
            let dead = match ProcessIdentity::unpack(cur) {
                None => None,
                Some(owner) if owner.liveness() == Liveness::Dead => Some(owner),
                Some(owner) => return Err(SlotTaken::Busy(owner)),
            };
            // Acquire: pairs with the Release in `release`, so the previous
            // owner's ring writes (its last head) happen before ours. A dead
            // owner released nothing; its stores reached memory before it
            // died, and the ring's indices are validated on attach anyway.
            if self
                .owner
                .compare_exchange(cur, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                if dead.is_some() {
                    self.takeovers.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(dead);
            }
            last = ProcessIdentity::unpack(self.owner.load(Ordering::Relaxed));
        }
        Err(last.map_or(SlotTaken::Quarantined, SlotTaken::Busy))
    }

    /// Gives the slot back, if `me` still owns it.
    pub(crate) fn release(&self, me: u64) {
        // Release: our ring writes happen before the next owner's Acquire CAS.
        let _ = self
            .owner
            .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed);
    }

    /// The current owner, if any.
    pub(crate) fn owner(&self) -> Option<ProcessIdentity> {
        ProcessIdentity::unpack(self.owner.load(Ordering::Relaxed))
    }

    /// Frees the slot if its owner is dead (the consumer's sweep); returns
    /// the dead owner.
    pub(crate) fn reclaim_if_dead(&self) -> Option<ProcessIdentity> {
        let cur = self.owner.load(Ordering::Relaxed);
        let owner = ProcessIdentity::unpack(cur)?;
        if owner.liveness() != Liveness::Dead {
            return None;
        }
        // Relaxed: freeing publishes nothing; the next owner validates the
        // ring when it attaches.
        self.owner
            .compare_exchange(cur, 0, Ordering::Relaxed, Ordering::Relaxed)
            .ok()
            .map(|_| owner)
    }
}
