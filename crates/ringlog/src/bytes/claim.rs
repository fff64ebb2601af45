//! The writer side that the in-place designs ([`double_buffer`] and
//! [`shared_ring`]) share: the claim loop under the queue's policy, and the
//! grant (write the payload in queue memory, commit, or publish padding if
//! dropped). A design says only how it reserves, waits for room and
//! publishes, through [`Slots`].
//!
//! [`double_buffer`]: super::double_buffer
//! [`shared_ring`]: super::shared_ring

use super::arena::Arena;
use super::record::{record_len, RECORD_HEADER_LEN};
use super::stats::WriterCounters;
use super::{ClaimError, Policy, TooLarge, TryClaimError};
use crate::wait::Deadline;
use std::time::Instant;

/// One design's reservation and publication.
///
/// # Safety
///
/// An implementation promises that a slot returned by
/// [`reserve`](Self::reserve) for `total` bytes is a record of that many
/// bytes at [`record_at`](Self::record_at), inside the arena, 8-aligned,
/// initialised, and touched by nobody else until
/// [`publish`](Self::publish) hands it to the reader.
pub(super) unsafe trait Slots {
    /// A successful reservation.
    type Slot: Copy;
    /// What a failed reservation waits for.
    type Full: Copy;

    /// Largest payload accepted, in bytes.
    fn max_record_len(&self) -> usize;
    /// One reservation attempt of `total` record bytes (header included).
    fn reserve(&mut self, total: u64) -> Result<Self::Slot, Self::Full>;
    /// Whether the reader has gone.
    fn reader_gone(&self) -> bool;
    /// What a writer does when the queue is full.
    fn policy(&self) -> &Policy;
    /// This writer's counters.
    fn counters(&self) -> &WriterCounters;
    /// Waits until a reservation that failed with `full` may succeed, the
    /// reader has gone, or `deadline` passes (then false).
    fn wait_for_room(&self, full: Self::Full, deadline: Deadline) -> bool;
    /// Runs once a reservation succeeded, before the payload is written.
    fn reserved(&mut self, slot: Self::Slot) {
        let _ = slot;
    }
    /// The arena and the offset of the record header of `slot`.
    fn record_at(&self, slot: Self::Slot) -> (&Arena, usize);
    /// Publishes `slot` (`len` payload bytes claimed) as a record of `n`
    /// bytes plus padding, or as all padding when `n` is `None`, and wakes
    /// the reader.
    fn publish(&mut self, slot: Self::Slot, len: usize, n: Option<usize>);
}

/// Record bytes of a `len`-byte payload, if `w` accepts it.
fn check_len<W: Slots>(w: &W, len: usize) -> Result<u64, TooLarge> {
    let max = w.max_record_len();
    if len > max {
        return Err(TooLarge {
            requested: len,
            max,
        });
    }
    Ok(record_len(len) as u64)
}

/// `try_claim` of every in-place design.
pub(super) fn try_claim<W: Slots>(
    w: &mut W,
    len: usize,
) -> Result<SlotGrant<'_, W>, TryClaimError> {
    let total = check_len(w, len)?;
    match w.reserve(total) {
        Ok(slot) => Ok(SlotGrant::new(w, slot, len)),
        Err(_) if w.reader_gone() => Err(TryClaimError::Disconnected),
        Err(_) => Err(TryClaimError::Full),
    }
}

/// `claim` of every in-place design: reserve, and when full follow the
/// policy (drop and count, or wait for room until `deadline`, counting the
/// time blocked).
pub(super) fn claim<W: Slots>(
    w: &mut W,
    len: usize,
    deadline: Deadline,
) -> Result<SlotGrant<'_, W>, ClaimError> {
    let total = check_len(w, len)?;
    let mut since: Option<Instant> = None;
    let slot = loop {
        match w.reserve(total) {
            Ok(slot) => break slot,
            Err(_) if w.reader_gone() => return Err(ClaimError::Disconnected),
            Err(_) if *w.policy() == Policy::DropNewest => {
                w.counters().dropped.add(1);
                return Err(ClaimError::Dropped);
            }
            Err(full) => {
                let start = *since.get_or_insert_with(Instant::now);
                if !w.wait_for_room(full, deadline) {
                    w.counters().add_blocked(start.elapsed());
                    return Err(ClaimError::Timeout);
                }
            }
        }
    };
    if let Some(start) = since {
        w.counters().add_blocked(start.elapsed());
    }
    Ok(SlotGrant::new(w, slot, len))
}

/// Room for one record, claimed by a writer of design `W`: derefs to the
/// payload bytes in queue memory; [`commit`](Self::commit) publishes them,
/// dropping publishes padding instead, so the reader never waits for it.
pub(super) struct SlotGrant<'a, W: Slots> {
    writer: &'a mut W,
    slot: W::Slot,
    len: usize,
    done: bool,
}

impl<'a, W: Slots> SlotGrant<'a, W> {
    fn new(writer: &'a mut W, slot: W::Slot, len: usize) -> Self {
        writer.reserved(slot);
        Self {
            writer,
            slot,
            len,
            done: false,
        }
    }

    /// The claimed payload length in bytes.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Publishes the first `n` payload bytes as one record; the rest of the
    /// slot becomes padding.
    ///
    /// # Panics
    ///
    /// If `n` exceeds the claimed length.
    pub(super) fn commit(mut self, n: usize) {
        assert!(
            n <= self.len,
            "commit of {n} bytes exceeds the grant of {}",
            self.len
        );
        self.finish(Some(n));
    }

    fn finish(&mut self, n: Option<usize>) {
        self.done = true;
        self.writer.publish(self.slot, self.len, n);
        if let Some(n) = n {
            let c = self.writer.counters();
            c.records.add(1);
            c.bytes.add(n as u64);
        }
    }

    fn payload_ptr(&self) -> *mut u8 {
        let (arena, at) = self.writer.record_at(self.slot);
        arena.ptr(at + RECORD_HEADER_LEN)
    }

    /// The payload bytes (whatever queue memory held there).
    pub(super) fn payload(&self) -> &[u8] {
        // SAFETY: by the `Slots` contract the reserved record lies inside
        // the arena, initialised and ours alone until published; the
        // payload is its `len` bytes after the header.
        unsafe { std::slice::from_raw_parts(self.payload_ptr(), self.len) }
    }

    /// The payload bytes, to write.
    pub(super) fn payload_mut(&mut self) -> &mut [u8] {
        let (arena, at) = self.writer.record_at(self.slot);
        arena.track_write(at + RECORD_HEADER_LEN, self.len);
        // SAFETY: as in `payload`; `&mut self` makes this the only
        // reference.
        unsafe { std::slice::from_raw_parts_mut(self.payload_ptr(), self.len) }
    }
}

impl<W: Slots> Drop for SlotGrant<'_, W> {
    fn drop(&mut self) {
        if !self.done {
            self.finish(None);
        }
    }
}

/// The public grant of a design: a newtype over [`SlotGrant`] with the
/// grant's traits, documented as `$doc`; and the design writer's
/// [`ByteQueueWriter`](crate::bytes::ByteQueueWriter) impl over
/// [`try_claim`] and [`claim`] (the writer has an `id` field).
macro_rules! design_grant {
    ($writer:ty, $(#[$doc:meta])*) => {
        impl $crate::bytes::ByteQueueWriter for $writer {
            type Grant<'a> = Grant<'a>;

            fn id(&self) -> usize {
                self.id
            }

            fn max_record_len(&self) -> usize {
                $crate::bytes::claim::Slots::max_record_len(self)
            }

            fn try_claim(
                &mut self,
                len: usize,
            ) -> Result<Grant<'_>, $crate::bytes::TryClaimError> {
                $crate::bytes::claim::try_claim(self, len).map(Grant)
            }

            fn claim(
                &mut self,
                len: usize,
                deadline: $crate::wait::Deadline,
            ) -> Result<Grant<'_>, $crate::bytes::ClaimError> {
                $crate::bytes::claim::claim(self, len, deadline).map(Grant)
            }
        }

        $(#[$doc])*
        pub struct Grant<'a>(pub(super) $crate::bytes::claim::SlotGrant<'a, $writer>);

        impl std::fmt::Debug for Grant<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("Grant")
                    .field("len", &self.0.len())
                    .finish_non_exhaustive()
            }
        }

        impl Grant<'_> {
            /// The claimed payload length in bytes.
            #[allow(clippy::len_without_is_empty)]
            pub fn len(&self) -> usize {
                self.0.len()
            }
        }

        impl $crate::bytes::CommitGrant for Grant<'_> {
            /// Publishes the first `n` payload bytes as one record; the rest
            /// of the slot becomes padding.
            ///
            /// # Panics
            ///
            /// If `n` exceeds the claimed length.
            fn commit(self, n: usize) {
                self.0.commit(n);
            }
        }

        impl std::ops::Deref for Grant<'_> {
            type Target = [u8];
            fn deref(&self) -> &[u8] {
                self.0.payload()
            }
        }

        impl std::ops::DerefMut for Grant<'_> {
            fn deref_mut(&mut self) -> &mut [u8] {
                self.0.payload_mut()
            }
        }
    };
}
pub(super) use design_grant;
