//! The state a writer, its guard and the panic hook share: one slot per
//! pipeline writer, the counters, the pipeline itself.

use ringlog::bytes::ClaimError;
use ringlog::pipeline::{AppendError, Pipeline, PipelineWriter};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

/// One pipeline writer. A slot below `Inner::shared_slot` is leased to one
/// thread at a time; the last slot is shared by every thread that found no
/// free one. The mutex is uncontended for a leased slot: only its thread
/// appends through it, and `sync` takes it for an instant to read positions.
#[derive(Debug)]
pub(crate) struct Slot {
    /// `None` once the guard has shut the pipeline down.
    writer: Mutex<Option<PipelineWriter>>,
}

/// What the writer side counts; read by the guard.
///
/// Every access is `Relaxed`: these are tallies for reports, and no other
/// memory is published or read through them.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Events dropped because the queue was full (lossy mode).
    pub(crate) dropped: AtomicU64,
    /// Events refused because they exceed the largest record.
    pub(crate) rejected: AtomicU64,
    /// Appends and syncs that failed with an error, and failed appends of
    /// the journal reported by the reader at shutdown.
    pub(crate) io_errors: AtomicU64,
}

/// Shared by [`RingWriter`](crate::RingWriter), [`Guard`](crate::Guard) and
/// the panic hook.
#[derive(Debug)]
pub(crate) struct Inner {
    slots: Box<[Slot]>,
    /// Indices of free leased slots (capacity for all of them, so returning
    /// one never allocates).
    free: Mutex<Vec<usize>>,
    /// Set when the guard starts shutting down: no new leases. `Relaxed`:
    /// it is only a shortcut. What stops appends is `close` taking each
    /// slot's writer out under the slot's mutex; a thread that misses the
    /// flag finds its slot empty once it holds that mutex.
    closed: AtomicBool,
    pub(crate) counters: Counters,
    /// The latest error, as text (the sink's current one is asked from the
    /// pipeline).
    last_error: Mutex<Option<String>>,
    /// `None` after shutdown.
    pub(crate) pipeline: Mutex<Option<Pipeline>>,
    /// Longest partial line held per thread before it is cut into a record.
    pub(crate) max_pending: usize,
}

/// A mutex guard, whoever panicked while holding it: every critical section
/// here leaves the state valid at each step.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Like [`lock`], polling until `deadline`: used where the caller may
/// already hold the lock (a panic hook) or must not wait for ever.
fn lock_until<T>(m: &Mutex<T>, deadline: Option<Instant>) -> Option<MutexGuard<'_, T>> {
    loop {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return None;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}

pub(crate) fn closed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "ringlog-tracing: the journal writer was shut down (its guard was dropped)",
    )
}

/// What [`Inner::wait_for`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    /// Synced to disk.
    Durable,
    /// Written to the journal's files, not necessarily synced.
    Written,
}

/// Why [`Inner::wait_durable`] or [`Inner::wait_written`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitFailure {
    /// The deadline passed first.
    Timeout,
    /// The pipeline stopped (its sink failed, or it was shut down) before
    /// the events were durable.
    Stopped,
    /// A slot stayed locked until the deadline.
    Busy,
}

impl Inner {
    pub(crate) fn new(
        writers: Vec<PipelineWriter>,
        pipeline: Pipeline,
        max_pending: usize,
    ) -> Self {
        let leased = writers.len() - 1;
        Self {
            slots: writers
                .into_iter()
                .map(|w| Slot {
                    writer: Mutex::new(Some(w)),
                })
                .collect(),
            // Popped from the end: the lowest slot is leased first.
            free: Mutex::new((0..leased).rev().collect()),
            closed: AtomicBool::new(false),
            counters: Counters::default(),
            last_error: Mutex::new(None),
            pipeline: Mutex::new(Some(pipeline)),
            max_pending,
        }
    }

    /// The slot every thread without a lease of its own appends through.
    pub(crate) fn shared_slot(&self) -> usize {
        self.slots.len() - 1
    }

    /// Takes a free leased slot, or the shared one if none is left.
    pub(crate) fn lease(&self) -> usize {
        if self.closed.load(Ordering::Relaxed) {
            return self.shared_slot();
        }
        lock(&self.free).pop().unwrap_or(self.shared_slot())
    }

    /// Gives a leased slot back (when its thread exits).
    pub(crate) fn release(&self, slot: usize) {
        if slot != self.shared_slot() {
            // Never allocates: `free` has room for every leased slot.
            lock(&self.free).push(slot);
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    pub(crate) fn note_error(&self, what: &str, e: &dyn std::error::Error) {
        self.counters.io_errors.fetch_add(1, Ordering::Relaxed);
        let mut text = format!("{what}: {e}");
        let mut source = e.source();
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        *lock(&self.last_error) = Some(text);
    }

    /// The latest error: the sink's, while it is failing, else the last
    /// one noted.
    pub(crate) fn last_error(&self) -> Option<String> {
        let sink = lock(&self.pipeline).as_ref().and_then(Pipeline::sink_error);
        sink.or_else(|| lock(&self.last_error).clone())
    }

    /// Appends one record through `slot`: blocking until there is room, or
    /// counting a drop in lossy mode.
    pub(crate) fn append(&self, slot: usize, payload: &[u8]) -> io::Result<()> {
        self.with_writer(slot, |w| self.append_to(w, payload))?
            .map(drop)
    }

    /// Runs `f` on `slot`'s pipeline writer, holding the slot; `BrokenPipe`
    /// once the guard has shut the pipeline down.
    pub(crate) fn with_writer<R>(
        &self,
        slot: usize,
        f: impl FnOnce(&mut PipelineWriter) -> R,
    ) -> io::Result<R> {
        let mut guard = lock(&self.slots[slot].writer);
        match guard.as_mut() {
            Some(w) => Ok(f(w)),
            None => Err(closed_error()),
        }
    }

    /// Appends one record through `w` (a slot's writer, held): `Ok(true)`
    /// if it was queued, `Ok(false)` if lossy mode dropped it (counted).
    #[inline]
    pub(crate) fn append_to(&self, w: &mut PipelineWriter, payload: &[u8]) -> io::Result<bool> {
        match w.append(payload, None) {
            Ok(_) => Ok(true),
            Err(e) => self.append_failed(e),
        }
    }

    /// What [`Inner::append_to`] answers for a record not queued.
    #[cold]
    fn append_failed(&self, e: AppendError) -> io::Result<bool> {
        match e {
            AppendError::Queue(ClaimError::Dropped) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                Ok(false)
            }
            e @ (AppendError::Queue(ClaimError::TooLarge(_)) | AppendError::Journal(_)) => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                Err(io::Error::new(io::ErrorKind::InvalidInput, e))
            }
            e => {
                self.note_error("append", &e);
                Err(io::Error::other(e))
            }
        }
    }

    /// Waits until every record appended (by any thread) before the call is
    /// durable, or `deadline` passes.
    pub(crate) fn wait_durable(&self, deadline: Option<Instant>) -> Result<(), WaitFailure> {
        self.wait_for(Reached::Durable, deadline)
    }

    /// Waits until every record appended (by any thread) before the call is
    /// written to the journal's files (handed to the kernel), or `deadline`
    /// passes.
    pub(crate) fn wait_written(&self, deadline: Option<Instant>) -> Result<(), WaitFailure> {
        self.wait_for(Reached::Written, deadline)
    }

    fn wait_for(&self, reached: Reached, deadline: Option<Instant>) -> Result<(), WaitFailure> {
        // Positions first: the last record of each slot now.
        let mut targets = Vec::with_capacity(self.slots.len());
        for (i, slot) in self.slots.iter().enumerate() {
            let g = lock_until(&slot.writer, deadline).ok_or(WaitFailure::Busy)?;
            match g.as_ref() {
                Some(w) if w.next_seq() > 0 => targets.push((i, w.next_seq() - 1)),
                Some(_) => {}
                None => return Err(WaitFailure::Stopped),
            }
        }
        // Then poll each slot's position; the check needs the writer, so
        // the slot is held only for one check at a time.
        for (i, seq) in targets {
            let mut pause = Duration::from_micros(50);
            loop {
                let g = lock_until(&self.slots[i].writer, deadline).ok_or(WaitFailure::Busy)?;
                let Some(w) = g.as_ref() else {
                    return Err(WaitFailure::Stopped);
                };
                let done = match reached {
                    Reached::Durable => w.wait_durable(seq, Some(Instant::now())),
                    Reached::Written => w.written_seq() > seq,
                };
                if done {
                    break;
                }
                drop(g);
                if self.pipeline_stopped() {
                    return Err(WaitFailure::Stopped);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(WaitFailure::Timeout);
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(1));
            }
        }
        Ok(())
    }

    fn pipeline_stopped(&self) -> bool {
        match self.pipeline.try_lock() {
            Ok(p) => p.as_ref().is_none_or(Pipeline::is_finished),
            Err(TryLockError::Poisoned(p)) => {
                p.into_inner().as_ref().is_none_or(Pipeline::is_finished)
            }
            Err(TryLockError::WouldBlock) => false,
        }
    }

    /// Stops new appends and takes every writer out of its slot, so that
    /// the reader sees them gone, drains the queue and finishes. Returns
    /// `false` if a slot stayed locked (an append blocked on a full queue)
    /// until `deadline`.
    pub(crate) fn close(&self, deadline: Option<Instant>) -> bool {
        self.closed.store(true, Ordering::Relaxed);
        let mut all = true;
        for slot in self.slots.iter() {
            match lock_until(&slot.writer, deadline) {
                Some(mut g) => drop(g.take()),
                None => all = false,
            }
        }
        all
    }
}
