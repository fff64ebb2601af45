//! [`ShmProducer`]: the writing end of a ring in a segment, SPSC or one slot
//! of an MPSC segment.

use super::attached::Attached;
use super::doorbell::segment::{self as bell, SlotBells};
use super::identity::ProcessIdentity;
use super::mapping::ShmRegion;
use super::ShmOptions;
use crate::ring::{self, ClaimError, TryClaimError};
use crate::wait::handshake::{Notifier, WakeRef};
use crate::wait::Deadline;
use std::time::{Duration, Instant};

/// The producing end of a shared-memory ring: the byte ring's
/// [`Producer`](crate::ring::Producer) plus the slot it owns and the
/// consumer's liveness.
///
/// Seed 004's `claim(want)` / `publish(n)` are [`claim`](Self::claim) /
/// [`ShmGrant::commit`]. Blocking calls wait for the consumer to free space
/// (spin, yield, then sleep on the ring's futex) and look at the consumer's
/// liveness at least every [`ShmOptions::liveness_interval`], so a consumer
/// that was killed is reported as `Disconnected` instead of waited for.
///
/// Dropping it closes the ring's producer side and frees the slot.
///
/// # Examples
///
/// ```
/// use ringlog::shm::spsc;
/// # if cfg!(miri) { return; }
/// let name = format!("/ringlog-doc-producer-{}", std::process::id());
/// let mut rx = spsc::create(&name, 4096).unwrap();
/// let mut tx = spsc::connect(&name).unwrap();
/// let mut grant = tx.try_claim(5).unwrap();
/// grant.copy_from_slice(b"hello");
/// grant.commit(5);
/// let batch = rx.try_read().unwrap();
/// assert_eq!(batch.iter().next().unwrap().unwrap(), b"hello");
/// batch.release();
/// spsc::unlink(&name).unwrap();
/// ```
#[derive(Debug)]
pub struct ShmProducer {
    /// `Some` until drop, which must close the ring before freeing the slot.
    inner: Option<ring::Producer<ShmRegion>>,
    att: Attached,
    slot: usize,
    me: u64,
    /// Ring the doorbell after each commit (MPSC).
    doorbell: bool,
    /// Our side of the doorbell's handshake (MPSC).
    notifier: Notifier,
    liveness: Duration,
}

impl ShmProducer {
    /// Takes slot `slot` (or the first free one, or one whose owner died)
    /// and attaches to its ring.
    pub(crate) fn join(
        att: Attached,
        slot: Option<usize>,
        options: &ShmOptions,
    ) -> Result<Self, super::ShmError> {
        use super::slot::SlotTaken;
        use super::ShmError;
        att.check_not_stale()?;
        let me = ProcessIdentity::current()
            .map_err(|e| ShmError::io(att.name(), "read /proc/self/stat", e))?;
        let slots = att.geometry().slots;
        let candidates: Vec<usize> = match slot {
            Some(s) if s >= slots => {
                return Err(ShmError::NoSuchSlot {
                    name: att.name().to_owned(),
                    slot: s,
                    slots,
                })
            }
            Some(s) => vec![s],
            None => (0..slots).collect(),
        };
        let mut taken = None;
        let mut last = None;
        for &i in &candidates {
            match att.slot(i).acquire(me.pack()) {
                Ok(_) => {
                    taken = Some(i);
                    break;
                }
                Err(e) => last = Some((i, e)),
            }
        }
        let Some(i) = taken else {
            return Err(match (slot, last) {
                (Some(s), Some((_, SlotTaken::Busy(owner)))) => ShmError::Busy {
                    name: att.name().to_owned(),
                    role: format!("producer slot {s}"),
                    owner,
                },
                (Some(s), _) => ShmError::Quarantined {
                    name: att.name().to_owned(),
                    slot: s,
                },
                (None, _) => ShmError::NoFreeSlot {
                    name: att.name().to_owned(),
                    slots,
                },
            });
        };
        let ring = match att.attach_ring(i) {
            Ok(ring) => ring,
            Err(e) => {
                att.slot(i).release(me.pack());
                return Err(e);
            }
        };
        ring.reopen_producer();
        let mut inner = ring::Producer::new(crate::sync::Arc::new(ring));
        inner.set_wait_strategy(options.wait_strategy());
        Ok(Self {
            inner: Some(inner),
            doorbell: att.geometry().kind == super::SegmentKind::Mpsc,
            notifier: bell::bell_notifier(i),
            att,
            slot: i,
            me: me.pack(),
            liveness: options.liveness_interval,
        })
    }

    fn ring(&self) -> &ring::Producer<ShmRegion> {
        self.inner.as_ref().expect("producer used after drop")
    }

    /// The producer slot this handle owns (0 for SPSC).
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// Data capacity of the ring in bytes.
    pub fn capacity(&self) -> usize {
        self.ring().capacity()
    }

    /// Largest payload in bytes one record may have.
    pub fn max_record_len(&self) -> usize {
        self.ring().max_record_len()
    }

    /// Free bytes in the ring now (headers and padding count).
    pub fn free_space(&self) -> usize {
        self.ring().free_space()
    }

    /// Whether the segment's consumer is alive (false once it closed or
    /// died; a restarted consumer makes it true again).
    pub fn consumer_alive(&self) -> bool {
        !self.att.consumer_gone()
    }

    /// Claims room for a record of `len` payload bytes without waiting.
    ///
    /// # Errors
    ///
    /// As [`ring::Producer::try_claim`].
    pub fn try_claim(&mut self, len: usize) -> Result<ShmGrant<'_>, TryClaimError> {
        let doorbell = if self.doorbell {
            Some((bell::bells(&self.att), &mut self.notifier))
        } else {
            None
        };
        let inner = self.inner.as_mut().expect("producer used after drop");
        Ok(ShmGrant {
            inner: inner.try_claim(len)?,
            doorbell,
        })
    }

    /// Waits until a record of `len` payload bytes fits (seed 004's
    /// `wait_for_space`). Any release by the consumer wakes the wait, which
    /// then re-checks how much is free.
    ///
    /// # Errors
    ///
    /// `Timeout` at the deadline; `Disconnected` when the consumer closed,
    /// or died (seen at the next liveness check); `TooLarge`; `Corrupt`.
    pub fn wait_for_space(&mut self, len: usize, deadline: Deadline) -> Result<(), ClaimError> {
        let inner = self.inner.as_mut().expect("producer used after drop");
        // Fast path, no clock read: the claim fits now (the grant is dropped
        // uncommitted, which publishes nothing).
        match inner.try_claim(len) {
            Ok(_) => return Ok(()),
            Err(TryClaimError::Full) => {}
            Err(TryClaimError::Disconnected) => return Err(ClaimError::Disconnected),
            Err(TryClaimError::TooLarge(e)) => return Err(e.into()),
            Err(TryClaimError::Corrupt(e)) => return Err(e.into()),
        }
        loop {
            let chunk = Instant::now() + self.liveness;
            let until = deadline.map_or(chunk, |d| d.min(chunk));
            let inner = self.inner.as_mut().expect("producer used after drop");
            match inner.claim(len, Some(until)) {
                // The grant is dropped uncommitted: it published nothing.
                Ok(_) => return Ok(()),
                Err(ClaimError::Timeout) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(ClaimError::Timeout);
                    }
                    if self.att.consumer_gone() {
                        return Err(ClaimError::Disconnected);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Claims room for a record of `len` payload bytes, waiting as
    /// [`wait_for_space`](Self::wait_for_space) does.
    ///
    /// # Errors
    ///
    /// As [`wait_for_space`](Self::wait_for_space).
    pub fn claim(&mut self, len: usize, deadline: Deadline) -> Result<ShmGrant<'_>, ClaimError> {
        self.wait_for_space(len, deadline)?;
        self.try_claim(len).map_err(|e| match e {
            // Space only grows for the producer, so this is the consumer
            // closing in between, or corruption.
            TryClaimError::Full | TryClaimError::Disconnected => ClaimError::Disconnected,
            TryClaimError::TooLarge(e) => e.into(),
            TryClaimError::Corrupt(e) => e.into(),
        })
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

impl Drop for ShmProducer {
    fn drop(&mut self) {
        // Closes the ring's producer side (Release) and wakes its consumer.
        drop(self.inner.take());
        if self.doorbell {
            // After the close: the retirement's fence covers it and our
            // last commits, and our slot no longer holds the consumer's
            // sleeps to a bound.
            bell::bells(&self.att).retire(&mut self.notifier);
        }
        self.att.slot(self.slot).release(self.me);
    }
}

/// Writable room for one record in a shared ring. Nothing is visible to the
/// consumer until [`commit`](Self::commit) (seed 004's `publish`).
///
/// The payload bytes live in the segment, which another process may write
/// at any time, so the grant hands out no `&mut [u8]` to them: write with
/// [`copy_from_slice`](Self::copy_from_slice) or [`write_at`](Self::write_at),
/// which copy from private memory with atomic stores.
#[derive(Debug)]
pub struct ShmGrant<'a> {
    inner: ring::Grant<'a, ShmRegion>,
    /// The doorbell and our side of its handshake (MPSC).
    doorbell: Option<(WakeRef<'a, SlotBells<'a>>, &'a mut Notifier)>,
}

impl ShmGrant<'_> {
    /// Publishes the first `n` bytes as one record and wakes the consumer
    /// if it sleeps (on the ring, or on the MPSC doorbell).
    ///
    /// # Panics
    ///
    /// If `n` exceeds the claimed length.
    pub fn commit(self, n: usize) {
        self.inner.commit(n);
        if let Some((bells, notifier)) = self.doorbell {
            // One load unless the consumer is in a sleep episode.
            bells.notify(notifier);
        }
    }

    /// The claimed payload length in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Copies `bytes` into the payload at byte `offset`.
    ///
    /// # Panics
    ///
    /// If `offset + bytes.len()` exceeds [`len`](Self::len).
    pub fn write_at(&mut self, offset: usize, bytes: &[u8]) {
        self.inner.write_at(offset, bytes);
    }

    /// Copies `bytes` into the payload; its length must be the grant's.
    ///
    /// # Panics
    ///
    /// If `bytes.len()` differs from [`len`](Self::len).
    pub fn copy_from_slice(&mut self, bytes: &[u8]) {
        self.inner.copy_from_slice(bytes);
    }
}
