//! The writer's end of a pipeline: frame a record in place, wait for
//! durability.

use super::stamp::{wall_ns, write_unsealed, Ticks, SEAL_IN_READER_MAX};
use super::Shared;
use crate::bytes::{double_buffer, fan_in, shared_ring, ByteQueueWriter, ClaimError, CommitGrant};
use crate::journal::{frame_into, framed_len, JournalError, MAX_PAYLOAD};
use crate::sync::{Arc, Ordering};
use crate::wait::{Deadline, WaitStrategy};

/// The queue writer behind a [`PipelineWriter`], one variant per design.
#[derive(Debug)]
pub(crate) enum AnyWriter {
    Double(double_buffer::Writer),
    FanIn(fan_in::Writer),
    Shared(shared_ring::Writer),
}

/// Why [`PipelineWriter::append`] did not queue a record.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The queue refused the record: full under `DropNewest` (`Dropped`),
    /// deadline passed under `Block` (`Timeout`), reader gone, or too large.
    #[error(transparent)]
    Queue(#[from] ClaimError),
    /// The payload exceeds the journal's limit.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// One writer of a pipeline: `Send`, one per thread.
#[derive(Debug)]
pub struct PipelineWriter {
    queue: AnyWriter,
    id: u32,
    next_seq: u64,
    /// What stamps a record: the reader turns it into wall-clock time.
    ticks: Ticks,
    shared: Arc<Shared>,
}

#[inline]
fn append_to<W: ByteQueueWriter>(
    w: &mut W,
    (id, seq, ticks): (u32, u64, Ticks),
    payload: &[u8],
    deadline: Deadline,
) -> Result<(), AppendError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(JournalError::PayloadTooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD,
        }
        .into());
    }
    let len = framed_len(payload.len());
    let mut grant = w.claim(len, deadline)?;
    // The record's moment is read once room is claimed (a blocked append is
    // stamped when it goes in). A small record is sealed by the reader
    // (stamp::TickClock), a larger one here (module docs of `stamp`).
    if payload.len() <= SEAL_IN_READER_MAX {
        write_unsealed(&mut grant, id, seq, ticks.now(), payload);
    } else {
        // The grant is exactly `framed_len` bytes and the payload is within
        // MAX_PAYLOAD, which are frame_into's only failure conditions.
        frame_into(&mut grant, id, seq, wall_ns(), payload)?;
    }
    grant.commit(len);
    Ok(())
}

impl PipelineWriter {
    pub(crate) fn new(
        queue: AnyWriter,
        id: u32,
        first_seq: u64,
        ticks: Ticks,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            queue,
            id,
            next_seq: first_seq,
            ticks,
            shared,
        }
    }

    /// This writer's producer id in the journal.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The sequence number the next appended record gets. Sequence numbers
    /// are per writer, without gaps (a dropped record consumes none), and
    /// continue the producer's sequence in the journal: a new journal starts
    /// at 0.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Frames `payload` (header, CRC-32C) directly in queue memory and
    /// queues it, following the queue's policy when it is full. Returns the
    /// record's sequence number.
    ///
    /// # Errors
    ///
    /// [`AppendError::Queue`] with `Dropped` (DropNewest, queue full),
    /// `Timeout`, `Disconnected` or `TooLarge`; [`AppendError::Journal`] for
    /// a payload over the journal's maximum.
    pub fn append(&mut self, payload: &[u8], deadline: Deadline) -> Result<u64, AppendError> {
        let seq = self.next_seq;
        let stamp = (self.id, seq, self.ticks);
        match &mut self.queue {
            AnyWriter::Double(w) => append_to(w, stamp, payload, deadline)?,
            AnyWriter::FanIn(w) => append_to(w, stamp, payload, deadline)?,
            AnyWriter::Shared(w) => append_to(w, stamp, payload, deadline)?,
        }
        self.next_seq += 1;
        Ok(seq)
    }

    /// Every record of this writer with a lower sequence number has been
    /// written to the journal's files (handed to the kernel with
    /// `write(2)`), though not necessarily synced: what survives the
    /// process dying, not the machine. Starts at the first sequence number.
    pub fn written_seq(&self) -> u64 {
        // Acquire: pairs with the reader's Release store after each batch.
        self.shared.written[self.id as usize].load(Ordering::Acquire)
    }

    /// The journal segment the reader appended its latest batch to: a hint
    /// that lags a rotation by up to one batch.
    pub fn current_segment(&self) -> u64 {
        // Relaxed: a hint; no memory is read through it.
        self.shared.segment.load(Ordering::Relaxed)
    }

    /// Waits until the record with sequence number `seq` (and every earlier
    /// one of this writer) is synced to disk. Returns `false` if the
    /// deadline passed, the sink failed, or the pipeline shut down first.
    pub fn wait_durable(&self, seq: u64, deadline: Deadline) -> bool {
        let sh = &*self.shared;
        let word = &sh.durable[self.id as usize];
        let strategy = WaitStrategy {
            yields: 2,
            ..WaitStrategy::SLEEP
        };
        // Acquire (both loads): pair with the reader's Release stores after
        // a sync, so "durable" is observed only after it is true.
        sh.durable_event.wait_until(&strategy, deadline, || {
            word.load(Ordering::Acquire) > seq || sh.failed.load(Ordering::Acquire)
        }) && word.load(Ordering::Acquire) > seq
    }
}
