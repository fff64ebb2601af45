//! The reader loop: queue batches into the journal, sync, publish durable
//! positions, retry on disk errors without losing or duplicating a record.
//!
//! A batch is appended with [`Journal::append_frames_partial`]: when the disk
//! fills up mid-batch, the whole frames that reached the file stay in the
//! journal, and only the rest of the batch is retried. The batch is released
//! to the queue once all of it is appended, so writers feel back-pressure
//! through their policy while the sink fails. A failure that lasts longer
//! than [`PipelineConfig::sink_retry`](super::PipelineConfig::sink_retry)
//! stops the reader with [`PipelineError::SinkFailed`].

use super::stamp::TickClock;
use super::{aux_work, PipelineError, Shared};
use crate::bytes::{ByteQueueReader, QueueStats, ReadError};
use crate::error_chain;
use crate::journal::{FrameHeader, Journal, JournalError, JournalFs};
use crate::stats::{LatencyHistogram, LatencySummary, SizeHistogram};
use crate::sync::Ordering;
use crate::wait::deadline_after;
use std::io::IoSlice;
use std::time::{Duration, Instant};

/// What the reader did for one writer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriterReport {
    /// The sequence number this writer started at (its producer's next
    /// sequence in the journal when the pipeline started).
    pub first_seq: u64,
    /// Records of this writer appended to the journal by this pipeline.
    pub records: u64,
    /// Payload bytes of those records.
    pub payload_bytes: u64,
    /// Frame bytes of those records (headers and padding included).
    pub frame_bytes: u64,
    /// Every record of this writer with a sequence number below this one is
    /// durable (synced) in the journal.
    pub durable_seq: u64,
}

impl WriterReport {
    /// Records of this writer made durable by this pipeline.
    pub fn durable_records(&self) -> u64 {
        self.durable_seq.saturating_sub(self.first_seq)
    }
}

/// What the reader did, returned at shutdown (and inside
/// [`PipelineError::SinkFailed`] when the sink gave up).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReaderReport {
    /// Batches taken from the queue and appended whole.
    pub batches: u64,
    /// Records appended to the journal.
    pub records: u64,
    /// Payload bytes of the records appended.
    pub payload_bytes: u64,
    /// Frame bytes appended (headers, payloads, padding): what the journal
    /// grew by.
    pub frame_bytes: u64,
    /// Append calls made (one per batch, plus one per retry).
    pub write_calls: u64,
    /// Appends that failed (wholly or in part) and were retried.
    pub write_errors: u64,
    /// Latency of each successful append call, without the sync the
    /// journal's policy may run inside it (that one counts as a sync).
    pub write_latency: LatencySummary,
    /// Syncs made, by the reader or by the journal's policy during appends.
    pub syncs: u64,
    /// Latency of each sync.
    pub sync_latency: LatencySummary,
    /// Payload sizes of the records appended.
    pub payload_sizes: SizeHistogram,
    /// Per writer (index = writer id = producer id in the journal).
    pub writers: Vec<WriterReport>,
    /// The queue's counters at the end, per writer and for the reader.
    #[serde(skip)]
    pub queue: Option<QueueStats>,
    /// Journal position (bytes) that is durable at the end.
    pub durable_position: u64,
}

impl ReaderReport {
    /// Records made durable by this pipeline, over all writers.
    pub fn durable_records(&self) -> u64 {
        self.writers.iter().map(WriterReport::durable_records).sum()
    }
}

struct Loop<'a, Fs: JournalFs> {
    journal: Journal<Fs>,
    /// Turns the writers' ticks into wall-clock time and seals frames.
    clock: TickClock,
    shared: &'a Shared,
    /// Per writer: records appended (its next sequence number).
    appended: Vec<u64>,
    write_latency: LatencyHistogram,
    sync_latency: LatencyHistogram,
    report: ReaderReport,
    /// Durable journal position last published to the writers.
    published: u64,
    /// How long a failing sink is retried.
    retry_for: Duration,
}

/// One frame of a batch: who wrote it and how big it is.
#[derive(Debug, Clone, Copy)]
struct FrameInfo {
    producer: u32,
    seq: u64,
    payload: u32,
}

impl<Fs: JournalFs> Loop<'_, Fs> {
    /// Publishes what the last sync made durable and wakes durable waiters.
    fn publish_durable(&mut self) {
        for (w, &n) in self.shared.durable.iter().zip(&self.appended) {
            // Release: pairs with the Acquire in `wait_durable` and
            // `Pipeline::durable_seqs`.
            w.store(n, Ordering::Release);
        }
        self.shared.durable_event.notify();
    }

    /// Publishes what the last batch handed to the kernel, and the
    /// segment it went to.
    fn publish_written(&self) {
        for (w, &n) in self.shared.written.iter().zip(&self.appended) {
            // Release: pairs with the Acquire in `PipelineWriter::written_seq`.
            w.store(n, Ordering::Release);
        }
        // Relaxed: a hint for writers, publishing no other memory. Stored
        // only when it changes: a writer under ringlog-tracing's
        // `BinaryLayer` reads it on every event, and storing the same value
        // would still take the line away from it after every batch. This
        // thread is its only writer, so the load is exact.
        let segment = self.journal.current_segment();
        if self.shared.segment.load(Ordering::Relaxed) != segment {
            self.shared.segment.store(segment, Ordering::Relaxed);
        }
    }

    /// Counts the syncs the journal ran since the last look (one at most:
    /// each append or sync call runs at most one), and returns how long it
    /// took.
    fn count_syncs(&mut self, before: u64) -> Duration {
        if self.journal.sync_count() == before {
            return Duration::ZERO;
        }
        let took = self.journal.last_sync_duration();
        self.sync_latency.record(took);
        self.report.syncs += self.journal.sync_count() - before;
        took
    }

    fn sync(&mut self, forced: bool) -> Result<(), JournalError> {
        let before = self.journal.sync_count();
        let pos = if forced {
            self.journal.sync()?
        } else {
            self.journal.sync_if_due()?
        };
        self.count_syncs(before);
        // Compare with what was published, not with `before`: under
        // `EveryBatch` the append itself already synced.
        if pos != self.published || forced {
            self.published = pos;
            self.publish_durable();
        }
        Ok(())
    }

    /// Records that `frame` (`len` frame bytes) is in the journal.
    fn account(&mut self, frame: Option<FrameInfo>, len: usize) {
        self.report.records += 1;
        self.report.frame_bytes += len as u64;
        let Some(f) = frame else { return };
        self.report.payload_bytes += u64::from(f.payload);
        self.report.payload_sizes.record(u64::from(f.payload));
        if let Some(w) = self.report.writers.get_mut(f.producer as usize) {
            w.records += 1;
            w.payload_bytes += u64::from(f.payload);
            w.frame_bytes += len as u64;
        }
        if let Some(a) = self.appended.get_mut(f.producer as usize) {
            *a = f.seq + 1;
        }
    }

    fn fail(&self, e: &JournalError) {
        if let Ok(mut slot) = self.shared.last_error.lock() {
            *slot = Some(error_chain(e));
        }
        // Relaxed: a counter for display; the message is behind the mutex.
        self.shared.failures.fetch_add(1, Ordering::Relaxed);
    }

    fn finish(&mut self, queue: &dyn ByteQueueReader) {
        self.report.write_latency = self.write_latency.summary();
        self.report.sync_latency = self.sync_latency.summary();
        self.report.queue = Some(queue.stats());
        self.report.durable_position = self.journal.durable_position();
        for (w, d) in self
            .report
            .writers
            .iter_mut()
            .zip(self.shared.durable.iter())
        {
            // Relaxed: this thread is the only writer of `durable`.
            w.durable_seq = d.load(Ordering::Relaxed);
        }
    }
}

/// Why the drain loop stopped early.
struct Failure {
    error: JournalError,
    retried: Duration,
}

impl From<JournalError> for Failure {
    fn from(error: JournalError) -> Self {
        Self {
            error,
            retried: Duration::ZERO,
        }
    }
}

pub(super) fn run<Fs: JournalFs>(
    mut queue: Box<dyn ByteQueueReader>,
    journal: Journal<Fs>,
    clock: TickClock,
    shared: &Shared,
    aux: u32,
    retry_for: Duration,
) -> Result<ReaderReport, PipelineError> {
    let first: Vec<u64> = shared.first_seqs.to_vec();
    let mut l = Loop {
        journal,
        clock,
        shared,
        appended: first.clone(),
        write_latency: LatencyHistogram::new(),
        sync_latency: LatencyHistogram::new(),
        report: ReaderReport {
            batches: 0,
            records: 0,
            payload_bytes: 0,
            frame_bytes: 0,
            write_calls: 0,
            write_errors: 0,
            write_latency: LatencyHistogram::new().summary(),
            syncs: 0,
            sync_latency: LatencyHistogram::new().summary(),
            payload_sizes: SizeHistogram::new(),
            writers: first
                .iter()
                .map(|&s| WriterReport {
                    first_seq: s,
                    durable_seq: s,
                    ..WriterReport::default()
                })
                .collect(),
            queue: None,
            durable_position: 0,
        },
        published: 0,
        retry_for,
    };
    l.published = l.journal.durable_position();
    let result = drain(&mut *queue, &mut l, aux).and_then(|()| Ok(l.sync(true)?));
    if let Err(f) = &result {
        l.fail(&f.error);
        // Whatever was appended and can still be synced is made durable
        // and published, so the report tells what the journal holds.
        if !matches!(f.error, JournalError::Poisoned { .. }) {
            let _ = l.sync(true);
        }
    }
    // The reader is gone: durable waits still pending can never succeed
    // (Release: after the last publish; pairs with `wait_durable`).
    shared.failed.store(true, Ordering::Release);
    shared.durable_event.notify();
    l.finish(&*queue);
    match result {
        Ok(()) => Ok(l.report),
        Err(f) => Err(PipelineError::SinkFailed {
            retried: f.retried,
            report: Box::new(l.report),
            source: f.error,
        }),
    }
}

fn drain<Fs: JournalFs>(
    queue: &mut dyn ByteQueueReader,
    l: &mut Loop<'_, Fs>,
    aux: u32,
) -> Result<(), Failure> {
    let mut frames: Vec<Option<FrameInfo>> = Vec::new();
    loop {
        // Acquire: pairs with the Release store in `Pipeline::shutdown`.
        let stopping = l.shared.stop.load(Ordering::Acquire);
        let mut batch = match queue.read(deadline_after(Some(Duration::from_millis(20)))) {
            Ok(b) => b,
            Err(ReadError::Timeout) => {
                if stopping {
                    // Nothing arrived for a whole wait after the stop
                    // request: every queued record has been appended.
                    return Ok(());
                }
                l.sync(false)?;
                continue;
            }
            Err(ReadError::Disconnected) => return Ok(()),
        };
        frames.clear();
        // Every record of the batch was stamped before this anchor.
        l.clock.refresh();
        for frame in batch.records_mut() {
            l.clock.seal(frame);
            frames.push(FrameHeader::decode(frame).map(|h| FrameInfo {
                producer: h.producer,
                seq: h.seq,
                payload: h.payload_len,
            }));
        }
        let mut iov = Vec::with_capacity(batch.len_records());
        iov.extend(batch.records().map(IoSlice::new));
        append_batch(l, &iov, &frames)?;
        l.publish_written();
        drop(iov);
        batch.release();
        l.report.batches += 1;
        aux_work(aux);
        l.sync(false)?;
    }
}

/// Appends every frame of one batch, retrying the part that is not yet in
/// the journal with backoff while the sink fails, for at most
/// `l.retry_for` without progress.
fn append_batch<Fs: JournalFs>(
    l: &mut Loop<'_, Fs>,
    iov: &[IoSlice<'_>],
    frames: &[Option<FrameInfo>],
) -> Result<(), Failure> {
    let mut done = 0usize;
    let mut backoff = Duration::from_millis(10);
    let mut failing_since: Option<Instant> = None;
    while done < iov.len() {
        let syncs_before = l.journal.sync_count();
        let start = Instant::now();
        l.report.write_calls += 1;
        let result = l.journal.append_frames_partial(&iov[done..]);
        let took = start.elapsed();
        // A sync the policy ran inside the append is a sync, not a write.
        let synced = l.count_syncs(syncs_before);
        let (appended, error) = match result {
            Ok(_) => (usize::MAX, None),
            Err(e) => (e.appended, Some(e.error)),
        };
        // Account for the whole frames now in the journal.
        let mut bytes = 0usize;
        while done < iov.len() && bytes + iov[done].len() <= appended {
            bytes += iov[done].len();
            l.account(frames[done], iov[done].len());
            done += 1;
        }
        let Some(e) = error else {
            l.write_latency.record(took.saturating_sub(synced));
            if let Ok(mut slot) = l.shared.last_error.lock() {
                slot.take();
            }
            continue;
        };
        l.report.write_errors += 1;
        if l.journal.is_poisoned() {
            return Err(e.into());
        }
        // Progress (some frames fitted) restarts the clock: the sink is
        // failing for as long as nothing at all goes in.
        if bytes > 0 {
            failing_since = None;
        }
        let since = *failing_since.get_or_insert_with(Instant::now);
        l.fail(&e);
        // Frames that did fit become durable as soon as a sync can run.
        if bytes > 0 {
            l.sync(false)?;
        }
        if since.elapsed() >= l.retry_for {
            return Err(Failure {
                error: e,
                retried: since.elapsed(),
            });
        }
        std::thread::sleep(backoff.min(l.retry_for.saturating_sub(since.elapsed())));
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
    Ok(())
}
