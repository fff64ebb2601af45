//! The reader loop: queue batches into the journal, sync, publish durable
//! positions, retry on disk errors without losing or duplicating a record.

use super::{aux_work, PipelineError, Shared};
use crate::bytes::{ByteQueueReader, QueueStats, ReadError};
use crate::journal::{FrameHeader, Journal, JournalFs};
use crate::stats::{LatencyHistogram, LatencySummary, SizeHistogram};
use crate::sync::Ordering;
use crate::wait::deadline_after;
use std::io::IoSlice;
use std::time::{Duration, Instant};

/// What the reader did, returned at shutdown.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReaderReport {
    /// Batches taken from the queue and appended.
    pub batches: u64,
    /// Records appended to the journal.
    pub records: u64,
    /// Bytes appended (frames: headers, payloads, padding).
    pub bytes: u64,
    /// Vectored append calls made (one per batch; retries included).
    pub write_calls: u64,
    /// Appends that failed and were retried.
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
    /// The queue's counters at the end, per writer and for the reader.
    #[serde(skip)]
    pub queue: Option<QueueStats>,
    /// Journal position (bytes) that is durable at the end.
    pub durable_position: u64,
}

struct Loop<'a, Fs: JournalFs> {
    journal: Journal<Fs>,
    shared: &'a Shared,
    /// Per writer: records appended (its next sequence number).
    appended: Vec<u64>,
    write_latency: LatencyHistogram,
    sync_latency: LatencyHistogram,
    report: ReaderReport,
    /// Durable journal position last published to the writers.
    published: u64,
}

impl<Fs: JournalFs> Loop<'_, Fs> {
    /// Publishes what the last sync made durable and wakes durable waiters.
    fn publish_durable(&mut self) {
        for (w, &n) in self.shared.durable.iter().zip(&self.appended) {
            // Release: pairs with the Acquire in `wait_durable`.
            w.store(n, Ordering::Release);
        }
        self.shared.durable_event.notify();
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

    fn sync(&mut self, forced: bool) -> Result<(), PipelineError> {
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

    fn fail(&self, e: &PipelineError) {
        if let Ok(mut slot) = self.shared.last_error.lock() {
            *slot = Some(e.to_string());
        }
    }
}

pub(super) fn run<Fs: JournalFs>(
    mut queue: Box<dyn ByteQueueReader>,
    journal: Journal<Fs>,
    shared: &Shared,
    aux: u32,
) -> Result<ReaderReport, PipelineError> {
    let writers = shared.durable.len();
    let mut l = Loop {
        journal,
        shared,
        appended: vec![0; writers],
        write_latency: LatencyHistogram::new(),
        sync_latency: LatencyHistogram::new(),
        report: ReaderReport {
            batches: 0,
            records: 0,
            bytes: 0,
            write_calls: 0,
            write_errors: 0,
            write_latency: LatencyHistogram::new().summary(),
            syncs: 0,
            sync_latency: LatencyHistogram::new().summary(),
            payload_sizes: SizeHistogram::new(),
            queue: None,
            durable_position: 0,
        },
        published: 0,
    };
    let result = drain(&mut *queue, &mut l, aux).and_then(|()| l.sync(true));
    if let Err(e) = &result {
        l.fail(e);
    }
    // The reader is gone: durable waits still pending can never succeed
    // (Release: after the last publish; pairs with `wait_durable`).
    shared.failed.store(true, Ordering::Release);
    shared.durable_event.notify();
    result?;
    l.report.write_latency = l.write_latency.summary();
    l.report.sync_latency = l.sync_latency.summary();
    l.report.queue = Some(queue.stats());
    l.report.durable_position = l.journal.durable_position();
    Ok(l.report)
}

fn drain<Fs: JournalFs>(
    queue: &mut dyn ByteQueueReader,
    l: &mut Loop<'_, Fs>,
    aux: u32,
) -> Result<(), PipelineError> {
    let mut backoff = Duration::from_millis(10);
    loop {
        // Acquire: pairs with the Release store in `Pipeline::shutdown`.
        let stopping = l.shared.stop.load(Ordering::Acquire);
        let batch = match queue.read(deadline_after(Some(Duration::from_millis(20)))) {
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
        let mut iov = Vec::new();
        let mut last_seq: Vec<Option<u64>> = vec![None; l.appended.len()];
        for frame in batch.records() {
            if let Some(h) = FrameHeader::decode(frame) {
                if let Some(s) = last_seq.get_mut(h.producer as usize) {
                    *s = Some(h.seq);
                }
                l.report.payload_sizes.record(u64::from(h.payload_len));
            }
            iov.push(IoSlice::new(frame));
        }
        let bytes: usize = iov.iter().map(|s| s.len()).sum();
        let syncs_before = l.journal.sync_count();
        let start = Instant::now();
        l.report.write_calls += 1;
        let appended = l.journal.append_frames_vectored(&iov);
        let took = start.elapsed();
        // A sync the policy ran inside the append is a sync, not a write.
        let synced = l.count_syncs(syncs_before);
        match appended {
            Ok(_) => {
                l.write_latency.record(took.saturating_sub(synced));
                l.report.records += iov.len() as u64;
                drop(iov);
                batch.release();
                l.report.batches += 1;
                l.report.bytes += bytes as u64;
                for (a, s) in l.appended.iter_mut().zip(last_seq) {
                    if let Some(s) = s {
                        *a = s + 1;
                    }
                }
                backoff = Duration::from_millis(10);
                if let Ok(mut e) = l.shared.last_error.lock() {
                    e.take();
                }
            }
            Err(e) => {
                // The append was rolled back and the batch stays in the
                // queue: writers feel back-pressure through their policy.
                // Retry until space returns, or give up on shutdown.
                l.report.write_errors += 1;
                let e = PipelineError::from(e);
                if stopping
                    || matches!(
                        e,
                        PipelineError::Journal(crate::journal::JournalError::Poisoned { .. })
                    )
                {
                    return Err(e);
                }
                l.fail(&e);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        }
        aux_work(aux);
        l.sync(false)?;
    }
}
