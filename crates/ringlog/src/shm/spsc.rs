//! One producer, one consumer, one byte ring in a segment.
//!
//! Seed 004's `SpscShm::create` / `connect` / `unlink` are [`create`] /
//! [`connect`] / [`unlink`]; the consumer creates the segment (it is the
//! side that outlives producers and persists what they send), producers
//! connect. A consumer that died leaves the segment [`Stale`]; [`take_over`]
//! resumes from the ring's tail, so nothing committed is lost.
//!
//! [`Stale`]: super::ShmError::Stale
//!
//! # Examples
//!
//! ```
//! use ringlog::shm::spsc;
//! # if cfg!(miri) { return; }
//! let name = format!("/ringlog-doc-spsc-{}", std::process::id());
//! let mut rx = spsc::create(&name, 1 << 16).unwrap();
//! // In another process: the same call.
//! let mut tx = spsc::connect(&name).unwrap();
//! tx.push(b"hello", None).unwrap();
//! let batch = rx.read(None).unwrap();
//! let got: Vec<&[u8]> = batch.iter().map(Result::unwrap).collect();
//! assert_eq!(got, [b"hello"]);
//! batch.release();
//! spsc::unlink(&name).unwrap();
//! ```

use super::attached::Attached;
use super::identity::{Liveness, ProcessIdentity};
use super::mapping::ShmRegion;
use super::producer::ShmProducer;
use super::segment::Segment;
use super::{SegmentKind, ShmError, ShmOptions};
use crate::ring::{self, CopiedBatch, ReadError, TryReadError};
use crate::sync::Arc;
use crate::wait::Deadline;
use std::time::{Duration, Instant};

/// Creates the named segment `name` holding one ring of `capacity_bytes`
/// (rounded up to a power of two), mode 0600, and returns its consumer.
///
/// # Errors
///
/// [`ShmError::Exists`] if the name is taken, [`ShmError::NoSpace`],
/// [`ShmError::Geometry`] for a capacity out of range, ...
pub fn create(name: &str, capacity_bytes: usize) -> Result<ShmConsumer, ShmError> {
    create_with(name, capacity_bytes, &ShmOptions::default())
}

/// [`create`] with options (permission bits, waiting, liveness checks).
///
/// # Errors
///
/// As [`create`].
pub fn create_with(
    name: &str,
    capacity_bytes: usize,
    options: &ShmOptions,
) -> Result<ShmConsumer, ShmError> {
    let geometry = super::geometry(name, SegmentKind::Spsc, capacity_bytes, 1)?;
    let segment = Segment::create(name, geometry.total_len, options.mode)?;
    ShmConsumer::create_in(&segment, geometry, options).inspect_err(|_| {
        let _ = Segment::unlink(name);
    })
}

/// Creates an anonymous (`memfd`) segment holding one ring and returns its
/// consumer and the segment, whose descriptor a child process inherits
/// (see [`Segment::set_inheritable`]) and passes to [`connect_segment`].
///
/// # Errors
///
/// As [`create`].
pub fn create_anonymous(
    capacity_bytes: usize,
    options: &ShmOptions,
) -> Result<(ShmConsumer, Segment), ShmError> {
    let geometry = super::geometry("memfd", SegmentKind::Spsc, capacity_bytes, 1)?;
    let segment = Segment::anonymous("ringlog-spsc", geometry.total_len)?;
    let consumer = ShmConsumer::create_in(&segment, geometry, options)?;
    Ok((consumer, segment))
}

/// Connects to the named segment as its producer.
///
/// # Errors
///
/// [`ShmError::NotFound`], [`ShmError::Header`] for a segment of another
/// layout, [`ShmError::KindMismatch`], [`ShmError::Stale`] if its consumer
/// died, [`ShmError::Busy`] if a live producer is connected,
/// [`ShmError::Corrupt`] if the ring's indices are invalid.
pub fn connect(name: &str) -> Result<ShmProducer, ShmError> {
    connect_with(name, &ShmOptions::default())
}

/// [`connect`] with options.
///
/// # Errors
///
/// As [`connect`].
pub fn connect_with(name: &str, options: &ShmOptions) -> Result<ShmProducer, ShmError> {
    connect_segment(&Segment::open(name)?, options)
}

/// Connects as producer to an already open segment (e.g. an inherited
/// `memfd`).
///
/// # Errors
///
/// As [`connect`].
pub fn connect_segment(segment: &Segment, options: &ShmOptions) -> Result<ShmProducer, ShmError> {
    let att = Attached::open(segment, SegmentKind::Spsc)?;
    ShmProducer::join(att, Some(0), options)
}

/// Opens the named segment as its consumer after the previous one closed
/// cleanly; reading resumes at the ring's tail.
///
/// # Errors
///
/// [`ShmError::Stale`] if the previous consumer died (use [`take_over`]),
/// [`ShmError::Busy`] if it is alive, and as [`connect`].
pub fn open(name: &str, options: &ShmOptions) -> Result<ShmConsumer, ShmError> {
    ShmConsumer::attach(&Segment::open(name)?, options, false)
}

/// Becomes the consumer of the named segment whose consumer died (or
/// closed); reading resumes at the ring's tail, so every committed record
/// not yet released is read.
///
/// # Errors
///
/// [`ShmError::Busy`] if the consumer is alive, and as [`connect`].
pub fn take_over(name: &str, options: &ShmOptions) -> Result<ShmConsumer, ShmError> {
    ShmConsumer::attach(&Segment::open(name)?, options, true)
}

/// [`take_over`] for an already open segment (e.g. an inherited `memfd`):
/// becomes its consumer if the previous one closed or died.
///
/// # Errors
///
/// As [`take_over`].
pub fn take_over_segment(segment: &Segment, options: &ShmOptions) -> Result<ShmConsumer, ShmError> {
    ShmConsumer::attach(segment, options, true)
}

/// Removes the segment's name (seed 004's `unlink`); handles already
/// connected keep working.
///
/// # Errors
///
/// [`ShmError::NotFound`], ...
pub fn unlink(name: &str) -> Result<(), ShmError> {
    Segment::unlink(name)
}

/// The consuming end of a shared-memory SPSC ring: the byte ring's
/// [`Consumer`](crate::ring::Consumer) plus the producer's liveness.
///
/// Seed 004's `peek` / `release` are [`try_read`](Self::try_read) /
/// [`ShmBatch::release`]: a batch holds every committed record, padding
/// hidden, and is released at once. The batch's bytes are copied out of the
/// segment into private memory (a buffer the consumer reuses) before any is
/// looked at, so the records handed out are slices of that copy, which no
/// peer can change; every index and record header is validated; a
/// violation is [`ReadError::Corrupt`] and the ring is then dead.
///
/// # Examples
///
/// A consumer that restarts resumes at the ring's tail: what it read but
/// did not release is read again.
///
/// ```
/// use ringlog::shm::{spsc, ShmOptions};
/// # if cfg!(miri) { return; }
/// let name = format!("/ringlog-doc-consumer-{}", std::process::id());
/// let mut rx = spsc::create(&name, 4096).unwrap();
/// let mut tx = spsc::connect(&name).unwrap();
/// tx.push(b"once", None).unwrap();
/// assert_eq!(rx.read(None).unwrap().iter().count(), 1); // not released
/// drop(rx);
/// let mut rx = spsc::open(&name, &ShmOptions::default()).unwrap();
/// let batch = rx.try_read().unwrap();
/// assert_eq!(batch.iter().next().unwrap().unwrap(), b"once");
/// batch.release();
/// spsc::unlink(&name).unwrap();
/// ```
#[derive(Debug)]
pub struct ShmConsumer {
    inner: ring::Consumer<ShmRegion>,
    /// Private copy of the batch being read; grows to the largest batch.
    scratch: Vec<u64>,
    att: Attached,
    me: u64,
    liveness: Duration,
}

impl ShmConsumer {
    fn create_in(
        segment: &Segment,
        geometry: super::Geometry,
        options: &ShmOptions,
    ) -> Result<Self, ShmError> {
        let me = super::me(segment.name())?;
        let (att, mut rings) = Attached::create(segment, geometry, me)?;
        let ring = rings.pop().expect("one ring");
        Ok(Self::new(att, ring, me, options))
    }

    fn attach(segment: &Segment, options: &ShmOptions, take_over: bool) -> Result<Self, ShmError> {
        let att = Attached::open(segment, SegmentKind::Spsc)?;
        let me = super::me(segment.name())?;
        att.claim_consumer(me, take_over)?;
        match att.attach_ring(0) {
            Ok(ring) => {
                ring.reopen_consumer();
                Ok(Self::new(att, ring, me, options))
            }
            Err(e) => {
                att.release_consumer(me.pack());
                Err(e)
            }
        }
    }

    fn new(
        att: Attached,
        ring: ring::Ring<ShmRegion>,
        me: ProcessIdentity,
        options: &ShmOptions,
    ) -> Self {
        let mut inner = ring::Consumer::new(Arc::new(ring));
        inner.set_wait_strategy(options.wait_strategy());
        Self {
            inner,
            scratch: Vec::new(),
            att,
            me: me.pack(),
            liveness: options.liveness_interval,
        }
    }

    /// Data capacity of the ring in bytes.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Committed bytes not yet released.
    pub fn available(&self) -> usize {
        self.inner.available()
    }

    /// The producer connected now, if any (it may be dead: see
    /// [`producer_alive`](Self::producer_alive)).
    pub fn producer(&self) -> Option<ProcessIdentity> {
        self.att.slot(0).owner()
    }

    /// Whether a producer is connected and alive.
    pub fn producer_alive(&self) -> bool {
        self.producer()
            .is_some_and(|p| p.liveness() == Liveness::Alive)
    }

    /// Every record committed so far, copied into private memory, without
    /// waiting.
    ///
    /// # Errors
    ///
    /// As [`ring::Consumer::try_read`].
    pub fn try_read(&mut self) -> Result<ShmBatch<'_>, TryReadError> {
        Ok(self.inner.try_read()?.copy_into(&mut self.scratch))
    }

    /// Waits until at least one record is committed (seed 004's
    /// `wait_for_data`): spin, yield, then sleep on the ring's futex,
    /// looking at the producer's liveness at least every
    /// [`ShmOptions::liveness_interval`].
    ///
    /// # Errors
    ///
    /// `Timeout` at the deadline, `Disconnected` once the producer closed or
    /// died and everything it committed was read, `Corrupt`.
    pub fn wait_for_data(&mut self, deadline: Deadline) -> Result<(), ReadError> {
        // Fast path, no clock read: something is committed already.
        match self.inner.poll() {
            Ok(()) => return Ok(()),
            Err(TryReadError::Empty) => {}
            Err(TryReadError::Disconnected) => return Err(ReadError::Disconnected),
            Err(TryReadError::Corrupt(e)) => return Err(e.into()),
        }
        loop {
            let chunk = Instant::now() + self.liveness;
            let until = deadline.map_or(chunk, |d| d.min(chunk));
            match self.inner.read(Some(until)) {
                Ok(_) => return Ok(()),
                Err(ReadError::Timeout) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(ReadError::Timeout);
                    }
                    let dead = self
                        .producer()
                        .is_some_and(|p| p.liveness() == Liveness::Dead);
                    if dead && self.inner.available() == 0 {
                        return Err(ReadError::Disconnected);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Every record committed so far, waiting as
    /// [`wait_for_data`](Self::wait_for_data) does for at least one.
    ///
    /// # Errors
    ///
    /// As [`wait_for_data`](Self::wait_for_data).
    pub fn read(&mut self, deadline: Deadline) -> Result<ShmBatch<'_>, ReadError> {
        self.wait_for_data(deadline)?;
        // Poll again (one load of `head`, validated) and hand out exactly
        // what that poll found.
        self.inner.poll().map_err(|e| match e {
            TryReadError::Empty => ReadError::Timeout,
            TryReadError::Disconnected => ReadError::Disconnected,
            TryReadError::Corrupt(c) => ReadError::Corrupt(c),
        })?;
        Ok(self.inner.read_polled().copy_into(&mut self.scratch))
    }
}

/// Records taken by [`ShmConsumer::read`], copied out of the segment: iterate
/// with [`iter`](CopiedBatch::iter) (slices of the private copy), then
/// [`release`](CopiedBatch::release) them at once.
pub type ShmBatch<'a> = CopiedBatch<'a, ShmRegion>;

impl Drop for ShmConsumer {
    fn drop(&mut self) {
        self.att.release_consumer(self.me);
    }
}
