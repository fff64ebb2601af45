//! Many producer processes, one consumer: one SPSC byte ring per producer
//! slot plus a doorbell (seed 004's MPSC).
//!
//! Producers never contend: each owns a slot's ring, taken with a CAS on the
//! slot's owner word (see `slot.rs`). After each commit a producer notifies
//! the doorbell, an [`Event`](crate::wait::Event) in the segment, through
//! its slot's handshake (`wait::handshake`): one load of its slot header's
//! line while the consumer is awake, and a fence (and for the first commit
//! a `futex` wake) only while the consumer is in a sleep episode. The
//! consumer visits the slots round-robin, one slot's whole batch at a time,
//! and sleeps on the doorbell only after re-checking every ring. Free slots
//! are marked retired at creation, and a producer retires its slot when it
//! closes, so only slots in use can keep the consumer's sleeps bounded
//! (they always are, by the liveness interval, to notice dead peers).
//!
//! Faults stay local to a slot:
//! - a stalled producer fills only its own ring;
//! - a producer that dies is noticed (pid and start time) by the consumer's
//!   sweep, at least every [`ShmOptions::liveness_interval`] while idle; its
//!   slot is freed, the records it committed are still read, and a new
//!   producer continues the ring where the dead one's last commit ended;
//! - a ring whose memory breaks the ring's invariants (a hostile or broken
//!   producer) is reported once as [`MpscReadError::Corrupt`] with what was
//!   wrong, quarantined, and the consumer goes on with the others.
//!
//! Seed 004's `MpscConsumer::create(name, n, capacity)` / `MpscProducer::
//! connect(name, id)` are [`create`] / [`connect_slot`] (or [`connect`] for
//! any free slot); `wait_for_data` + `peek(ring)` + `release(ring, n)` are
//! [`MpscConsumer::read`] and [`MpscBatch::release`].
//!
//! # Examples
//!
//! ```
//! use ringlog::shm::mpsc;
//! # if cfg!(miri) { return; }
//! let name = format!("/ringlog-doc-mpsc-{}", std::process::id());
//! let mut rx = mpsc::create(&name, 2, 4096).unwrap();
//! // Each producer is usually its own process.
//! let mut a = mpsc::connect(&name).unwrap();
//! let mut b = mpsc::connect(&name).unwrap();
//! a.push(b"from a", None).unwrap();
//! b.push(b"from b", None).unwrap();
//! let mut seen = Vec::new();
//! while seen.len() < 2 {
//!     let batch = rx.read(None).unwrap();
//!     seen.extend(batch.iter().map(|r| r.unwrap().to_vec()));
//!     batch.release();
//! }
//! seen.sort();
//! assert_eq!(seen, [b"from a".to_vec(), b"from b".to_vec()]);
//! mpsc::unlink(&name).unwrap();
//! ```

use super::attached::Attached;
use super::doorbell::segment as bell;
use super::identity::ProcessIdentity;
use super::mapping::ShmRegion;
use super::producer::ShmProducer;
use super::segment::Segment;
use super::{SegmentKind, ShmError, ShmOptions};
use crate::ring::{self, CopiedBatch, Corruption, Records, TryReadError};
use crate::sync::{Arc, Ordering};
use crate::wait::handshake::Waiter;
use crate::wait::{Deadline, WaitStrategy};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Creates the named segment `name` with `producers` slots of one ring of
/// `ring_capacity` bytes each (rounded up to a power of two), mode 0600, and
/// returns its consumer.
///
/// # Errors
///
/// [`ShmError::Exists`], [`ShmError::NoSpace`], [`ShmError::Geometry`], ...
pub fn create(
    name: &str,
    producers: usize,
    ring_capacity: usize,
) -> Result<MpscConsumer, ShmError> {
    create_with(name, producers, ring_capacity, &ShmOptions::default())
}

/// [`create`] with options.
///
/// # Errors
///
/// As [`create`].
pub fn create_with(
    name: &str,
    producers: usize,
    ring_capacity: usize,
    options: &ShmOptions,
) -> Result<MpscConsumer, ShmError> {
    let geometry = super::geometry(name, SegmentKind::Mpsc, ring_capacity, producers)?;
    let segment = Segment::create(name, geometry.total_len, options.mode)?;
    MpscConsumer::create_in(&segment, geometry, options).inspect_err(|_| {
        let _ = Segment::unlink(name);
    })
}

/// Creates an anonymous (`memfd`) MPSC segment; see
/// [`spsc::create_anonymous`](super::spsc::create_anonymous).
///
/// # Errors
///
/// As [`create`].
pub fn create_anonymous(
    producers: usize,
    ring_capacity: usize,
    options: &ShmOptions,
) -> Result<(MpscConsumer, Segment), ShmError> {
    let geometry = super::geometry("memfd", SegmentKind::Mpsc, ring_capacity, producers)?;
    let segment = Segment::anonymous("ringlog-mpsc", geometry.total_len)?;
    let consumer = MpscConsumer::create_in(&segment, geometry, options)?;
    Ok((consumer, segment))
}

/// Connects to the named segment as a producer, in the first slot that is
/// free or whose owner died.
///
/// # Errors
///
/// [`ShmError::NoFreeSlot`], [`ShmError::Stale`], [`ShmError::NotFound`],
/// [`ShmError::Header`], [`ShmError::KindMismatch`], [`ShmError::Corrupt`].
pub fn connect(name: &str) -> Result<ShmProducer, ShmError> {
    connect_segment(&Segment::open(name)?, None, &ShmOptions::default())
}

/// Connects to the named segment as the producer of slot `slot`.
///
/// # Errors
///
/// [`ShmError::Busy`] if a live process owns it, [`ShmError::NoSuchSlot`],
/// [`ShmError::Quarantined`], and as [`connect`].
pub fn connect_slot(name: &str, slot: usize) -> Result<ShmProducer, ShmError> {
    connect_segment(&Segment::open(name)?, Some(slot), &ShmOptions::default())
}

/// Connects as producer to an open segment, in slot `slot` or any free one.
///
/// # Errors
///
/// As [`connect_slot`].
pub fn connect_segment(
    segment: &Segment,
    slot: Option<usize>,
    options: &ShmOptions,
) -> Result<ShmProducer, ShmError> {
    let att = Attached::open(segment, SegmentKind::Mpsc)?;
    ShmProducer::join(att, slot, options)
}

/// Opens the named segment as its consumer after the previous one closed
/// cleanly; each ring resumes at its tail.
///
/// # Errors
///
/// [`ShmError::Stale`] if the previous consumer died (use [`take_over`]),
/// [`ShmError::Busy`] if it lives.
pub fn open(name: &str, options: &ShmOptions) -> Result<MpscConsumer, ShmError> {
    MpscConsumer::attach(&Segment::open(name)?, options, false)
}

/// Becomes the consumer of the named segment whose consumer died; each ring
/// resumes at its tail, so no committed record is lost.
///
/// # Errors
///
/// [`ShmError::Busy`] if the consumer lives, and as [`connect`].
pub fn take_over(name: &str, options: &ShmOptions) -> Result<MpscConsumer, ShmError> {
    MpscConsumer::attach(&Segment::open(name)?, options, true)
}

/// [`take_over`] for an already open segment (e.g. an inherited `memfd`):
/// becomes its consumer if the previous one closed or died.
///
/// # Errors
///
/// As [`take_over`].
pub fn take_over_segment(
    segment: &Segment,
    options: &ShmOptions,
) -> Result<MpscConsumer, ShmError> {
    MpscConsumer::attach(segment, options, true)
}

/// Removes the segment's name; handles already connected keep working.
///
/// # Errors
///
/// [`ShmError::NotFound`], ...
pub fn unlink(name: &str) -> Result<(), ShmError> {
    Segment::unlink(name)
}

/// Something [`MpscConsumer::read`] reports instead of a batch. Only
/// `Timeout` means "nothing happened"; the others are reported once each,
/// and reading goes on with the other slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MpscReadError {
    /// The deadline passed with no record in any ring.
    #[error("timed out waiting for data")]
    Timeout,
    /// A slot's ring broke the ring's invariants; it is quarantined.
    #[error("producer slot {slot}: {error}")]
    Corrupt {
        /// The slot.
        slot: usize,
        /// What was wrong, and where.
        error: Corruption,
    },
    /// A slot's producer died; the slot is free again and what the producer
    /// committed is still read.
    #[error("producer slot {slot}: {owner} died; slot freed")]
    ProducerDied {
        /// The slot.
        slot: usize,
        /// The dead producer.
        owner: ProcessIdentity,
    },
}

#[derive(Debug)]
enum Slot {
    Live(ring::Consumer<ShmRegion>),
    Quarantined,
}

/// The consumer of an MPSC segment.
///
/// See the [module docs](self) for an example.
#[derive(Debug)]
pub struct MpscConsumer {
    slots: Vec<Slot>,
    /// Private copy of the batch being read (one batch at a time, whatever
    /// the slot); grows to the largest batch.
    scratch: Vec<u64>,
    att: Attached,
    me: u64,
    next: usize,
    strategy: WaitStrategy,
    /// Our side of the doorbell's handshakes.
    waiter: Waiter,
    liveness: Duration,
    last_sweep: Instant,
    /// Calls of `read`, to pace the sweep while busy.
    reads: u64,
    pending: VecDeque<MpscReadError>,
}

impl MpscConsumer {
    fn create_in(
        segment: &Segment,
        geometry: super::Geometry,
        options: &ShmOptions,
    ) -> Result<Self, ShmError> {
        let me = super::me(segment.name())?;
        let (att, rings) = Attached::create(segment, geometry, me)?;
        let mut this = Self::new(att, me, options);
        this.slots = rings.into_iter().map(|r| this.live(r)).collect();
        Ok(this)
    }

    fn attach(segment: &Segment, options: &ShmOptions, take_over: bool) -> Result<Self, ShmError> {
        let att = Attached::open(segment, SegmentKind::Mpsc)?;
        let me = super::me(segment.name())?;
        att.claim_consumer(me, take_over)?;
        let mut this = Self::new(att, me, options);
        for i in 0..this.att.geometry().slots {
            let slot = if this.att.slot(i).quarantined.load(Ordering::Relaxed) != 0 {
                Slot::Quarantined
            } else {
                match this.att.attach_ring(i) {
                    Ok(ring) => {
                        ring.reopen_consumer();
                        this.live(ring)
                    }
                    Err(ShmError::Corrupt { source, .. }) => {
                        this.att.slot(i).quarantined.store(1, Ordering::Relaxed);
                        this.pending.push_back(MpscReadError::Corrupt {
                            slot: i,
                            error: source,
                        });
                        Slot::Quarantined
                    }
                    Err(e) => return Err(e),
                }
            };
            this.slots.push(slot);
        }
        Ok(this)
    }

    fn new(att: Attached, me: ProcessIdentity, options: &ShmOptions) -> Self {
        let waiter = bell::bell_waiter(&att);
        Self {
            slots: Vec::new(),
            scratch: Vec::new(),
            att,
            me: me.pack(),
            next: 0,
            strategy: options.wait_strategy(),
            waiter,
            liveness: options.liveness_interval,
            last_sweep: Instant::now(),
            reads: 0,
            pending: VecDeque::new(),
        }
    }

    fn live(&self, ring: ring::Ring<ShmRegion>) -> Slot {
        let mut c = ring::Consumer::new(Arc::new(ring));
        c.set_wait_strategy(self.strategy);
        Slot::Live(c)
    }

    /// Producer slots in the segment.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Data capacity of each ring in bytes.
    pub fn ring_capacity(&self) -> usize {
        self.att.geometry().ring_capacity
    }

    /// The producer owning slot `slot` now, if any.
    ///
    /// # Panics
    ///
    /// If `slot >= self.slots()`.
    pub fn producer(&self, slot: usize) -> Option<ProcessIdentity> {
        self.att.slot(slot).owner()
    }

    /// Slots with an owner (alive or not yet found dead).
    pub fn connected_producers(&self) -> usize {
        (0..self.slots.len())
            .filter(|&i| self.att.slot(i).owner().is_some())
            .count()
    }

    /// Whether slot `slot` is out of use after corruption.
    pub fn is_quarantined(&self, slot: usize) -> bool {
        matches!(self.slots.get(slot), Some(Slot::Quarantined))
    }

    /// Committed bytes not yet released, over all live rings.
    pub fn available(&self) -> usize {
        self.slots
            .iter()
            .map(|s| match s {
                Slot::Live(c) => c.available(),
                Slot::Quarantined => 0,
            })
            .sum()
    }

    fn quarantine(&mut self, i: usize, error: Corruption) {
        self.slots[i] = Slot::Quarantined;
        self.att.slot(i).quarantined.store(1, Ordering::Relaxed);
        self.pending
            .push_back(MpscReadError::Corrupt { slot: i, error });
    }

    /// The next slot (round-robin) with committed records; quarantines the
    /// corrupt ones met on the way.
    fn poll_any(&mut self) -> Option<usize> {
        let n = self.slots.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            let Slot::Live(c) = &mut self.slots[i] else {
                continue;
            };
            match c.poll() {
                Ok(()) => return Some(i),
                Err(TryReadError::Empty | TryReadError::Disconnected) => {}
                Err(TryReadError::Corrupt(e)) => self.quarantine(i, e),
            }
        }
        None
    }

    /// Frees the slots of dead producers.
    fn sweep(&mut self) {
        self.last_sweep = Instant::now();
        for i in 0..self.slots.len() {
            if matches!(self.slots[i], Slot::Quarantined) {
                continue;
            }
            if let Some(owner) = self.att.slot(i).reclaim_if_dead() {
                self.pending
                    .push_back(MpscReadError::ProducerDied { slot: i, owner });
            }
        }
    }

    /// Sweeps for dead producers now (reading does it by itself while idle)
    /// and returns what it found.
    pub fn check_producers(&mut self) -> Vec<MpscReadError> {
        self.sweep();
        self.pending.drain(..).collect()
    }

    /// The next slot's committed records, without waiting.
    ///
    /// # Errors
    ///
    /// `Timeout` when every ring is empty; a pending `Corrupt` or
    /// `ProducerDied` report.
    pub fn try_read(&mut self) -> Result<MpscBatch<'_>, MpscReadError> {
        self.read(Some(Instant::now()))
    }

    /// The next slot's committed records (round-robin over slots), waiting
    /// on the doorbell until a producer commits or `deadline` passes.
    ///
    /// # Errors
    ///
    /// `Timeout` at the deadline; `Corrupt` and `ProducerDied` reports, one
    /// per event: call again to go on reading.
    pub fn read(&mut self, deadline: Deadline) -> Result<MpscBatch<'_>, MpscReadError> {
        // A busy consumer never reaches the idle sweep below; look at the
        // clock every so many reads so dead producers are still reported.
        self.reads = self.reads.wrapping_add(1);
        if self.reads % 256 == 0 && self.last_sweep.elapsed() >= self.liveness {
            self.sweep();
        }
        let i = loop {
            if let Some(e) = self.pending.pop_front() {
                return Err(e);
            }
            if let Some(i) = self.poll_any() {
                break i;
            }
            if !self.pending.is_empty() {
                continue;
            }
            let now = Instant::now();
            if now.duration_since(self.last_sweep) >= self.liveness {
                self.sweep();
                if !self.pending.is_empty() {
                    continue;
                }
            }
            if deadline.is_some_and(|d| now >= d) {
                return Err(MpscReadError::Timeout);
            }
            let chunk = now + self.liveness;
            let until = deadline.map_or(chunk, |d| d.min(chunk));
            let live = self.slots.iter().filter_map(|s| match s {
                Slot::Live(c) => Some(c),
                Slot::Quarantined => None,
            });
            bell::wait_any_bell(
                &self.att,
                &mut self.waiter,
                &self.strategy,
                Some(until),
                live,
            );
        };
        self.next = (i + 1) % self.slots.len();
        let Slot::Live(c) = &mut self.slots[i] else {
            return Err(MpscReadError::Timeout);
        };
        Ok(MpscBatch {
            slot: i,
            batch: c.read_polled().copy_into(&mut self.scratch),
        })
    }
}

impl Drop for MpscConsumer {
    fn drop(&mut self) {
        // Close every ring (wakes producers waiting for space), then give
        // the consumer role back.
        self.slots.clear();
        self.att.release_consumer(self.me);
    }
}

/// One slot's committed records, as taken by [`MpscConsumer::read`],
/// copied out of the segment into private memory before any is looked at.
#[derive(Debug)]
pub struct MpscBatch<'a> {
    slot: usize,
    batch: CopiedBatch<'a, ShmRegion>,
}

impl MpscBatch<'_> {
    /// The producer slot the records came from.
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// Bytes the batch spans in the ring.
    pub fn len_bytes(&self) -> usize {
        self.batch.len_bytes()
    }

    /// The records in order, as slices of the private copy. An invalid
    /// record header yields one `Err` and ends the iteration; the slot is
    /// then quarantined (reported by the next [`MpscConsumer::read`]).
    pub fn iter(&self) -> Records<'_, ShmRegion> {
        self.batch.iter()
    }

    /// Gives the records back to the producer and wakes it if it waits.
    pub fn release(self) {
        self.batch.release();
    }
}
