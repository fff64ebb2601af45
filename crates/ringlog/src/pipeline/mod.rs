//! Layer 7: the pipeline — writers → MPSC byte queue → reader loop → journal.
//!
//! Each [`PipelineWriter`] frames its records (header, payload) in place,
//! inside the queue's memory, on its own thread: the record is copied once.
//! A small record is stamped with one read of a tick counter and nothing
//! else; the reader thread, which takes whole batches from the queue, seals
//! it in place (ticks to wall-clock time, CRC-32C). A larger record is
//! sealed by its writer, in parallel with the reader's I/O (`stamp.rs` says
//! why). The reader hands each batch to the journal in one vectored append:
//! no per-record copy, one `writev` per batch.
//!
//! - `writer.rs`: [`PipelineWriter`]: `append`, durable acknowledgement.
//! - `stamp.rs`: the writer's tick counter, the reader's conversion to
//!   wall-clock time and the sealing of frames.
//! - `reader.rs`: the reader loop, sync policy, durable positions, retries
//!   after a disk error (the batch stays in the queue, so back-pressure
//!   reaches writers through their policy).
//!
//! Shutdown: [`Pipeline::shutdown`] (or dropping every writer) makes the
//! reader drain the queue, append, sync, and return its [`ReaderReport`].
//!
//! Restart: [`start`] opens the journal (recovery cuts a torn tail), and
//! each writer `i` continues producer `i`'s sequence after its last record
//! in the journal ([`Pipeline::first_seqs`]), so any number of runs on one
//! directory, stopped cleanly or killed, make one journal that verifies
//! clean. A journal that is damaged beyond its tail is refused
//! ([`PipelineError::Damaged`]) rather than appended to.
//!
//! # Examples
//!
//! ```
//! use ringlog::pipeline::{Design, PipelineConfig};
//! let dir = std::env::temp_dir().join(format!("ringlog-doc-pipeline-{}", std::process::id()));
//! let config = PipelineConfig::new(&dir, Design::DoubleBuffer, 1 << 20, 2);
//! let (writers, pipeline) = ringlog::pipeline::start(config).unwrap();
//! let threads: Vec<_> = writers
//!     .into_iter()
//!     .map(|mut w| std::thread::spawn(move || {
//!         let last = (0..100).map(|i| w.append(format!("event {i}").as_bytes(), None).unwrap()).last();
//!         assert!(w.wait_durable(last.unwrap(), None)); // on disk, synced
//!     }))
//!     .collect();
//! threads.into_iter().for_each(|t| t.join().unwrap());
//! let report = pipeline.shutdown().unwrap();
//! assert_eq!(report.records, 200);
//! assert!(ringlog::journal::verify(&dir).unwrap().is_clean());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

mod reader;
mod stamp;
mod writer;

pub use reader::{ReaderReport, WriterReport};
pub use writer::{AppendError, PipelineWriter};

use crate::bytes::{self, ByteQueueReader, Config, NewQueueError, QueueLimits};
use crate::journal::{Journal, JournalError, JournalFs, JournalOptions, SyncPolicy};
use crate::sync::{Arc, AtomicBool, AtomicU64, Ordering};
use crate::wait::Event;
use crossbeam_utils::CachePadded;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

/// Which MPSC byte queue carries the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Design {
    /// K buffers; the reader seals one and writes it whole (seeds 001/002).
    DoubleBuffer,
    /// One SPSC ring per writer plus a doorbell (seed 004).
    FanIn,
    /// One ring shared by every writer.
    SharedRing,
}

impl FromStr for Design {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "double-buffer" | "double" => Ok(Self::DoubleBuffer),
            "fan-in" | "fanin" => Ok(Self::FanIn),
            "shared-ring" | "shared" => Ok(Self::SharedRing),
            _ => Err(format!(
                "unknown design `{s}` (double-buffer, fan-in, shared-ring)"
            )),
        }
    }
}

/// How to build a pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The queue design.
    pub design: Design,
    /// The queue: capacity, writers, policy, waiting, buffer count.
    pub queue: Config,
    /// Directory of the journal's segment files.
    pub journal_dir: PathBuf,
    /// Segment size, sync policy, retention, recovery.
    pub journal: JournalOptions,
    /// Iterations of busy work the reader does after each batch (the seeds'
    /// `aux_work`), 0 for none.
    pub reader_aux_work: u32,
    /// How long the reader retries a failing sink (a full disk, an I/O
    /// error) without any progress before it gives up with
    /// [`PipelineError::SinkFailed`]. `Duration::MAX` retries for ever.
    pub sink_retry: Duration,
    /// Name of the reader thread (`ringlog-reader` by default).
    pub reader_thread_name: String,
}

/// Default of [`PipelineConfig::sink_retry`].
pub const DEFAULT_SINK_RETRY: Duration = Duration::from_secs(30);

impl Design {
    fn queue_design(self) -> bytes::Design {
        match self {
            Design::DoubleBuffer => bytes::Design::DoubleBuffer,
            Design::FanIn => bytes::Design::FanIn,
            Design::SharedRing => bytes::Design::SharedRing,
        }
    }
}

impl PipelineConfig {
    /// A pipeline of `writers` writers over `capacity_bytes` of queue, block
    /// policy, journal in `dir` synced every 100 ms.
    pub fn new(
        dir: impl AsRef<Path>,
        design: Design,
        capacity_bytes: usize,
        writers: usize,
    ) -> Self {
        Self {
            design,
            queue: Config::new(capacity_bytes, writers),
            journal_dir: dir.as_ref().to_path_buf(),
            journal: JournalOptions {
                sync: SyncPolicy::EveryMillis(100),
                ..JournalOptions::default()
            },
            reader_aux_work: 0,
            sink_retry: DEFAULT_SINK_RETRY,
            reader_thread_name: "ringlog-reader".into(),
        }
    }

    /// Checks the queue settings and says what the queue would be (largest
    /// record, memory), without allocating or touching the journal.
    ///
    /// # Errors
    ///
    /// [`NewQueueError`] for settings the design does not support.
    pub fn queue_limits(&self) -> Result<QueueLimits, NewQueueError> {
        bytes::limits(self.design.queue_design(), &self.queue)
    }
}

/// Why a pipeline could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The queue configuration was rejected.
    #[error("queue: {0}")]
    Queue(#[from] NewQueueError),
    /// The journal failed (the path and OS error are in the source).
    #[error("journal")]
    Journal(#[from] JournalError),
    /// The journal holds damage that recovery on open does not repair
    /// (corruption before the tail, broken sequences): appending would
    /// continue from an unknown point. Verify and recover it first.
    #[error(
        "the journal in {d} is damaged ({what}); check it with `ringlog verify {d}` \
         and repair it with `ringlog recover {d}` before appending",
        d = dir.display()
    )]
    Damaged {
        /// The journal directory.
        dir: PathBuf,
        /// What verification found.
        what: String,
    },
    /// The sink kept failing for `retried` without progress (or failed in
    /// a way a retry cannot fix), and the reader stopped. What it did until
    /// then is in `report`; everything it reports durable is in the journal.
    #[error(
        "the journal failed (retried for {:.1} s without progress); the reader stopped",
        retried.as_secs_f64()
    )]
    SinkFailed {
        /// How long the failure was retried.
        retried: Duration,
        /// The reader's report up to the failure.
        report: Box<ReaderReport>,
        /// The last error.
        #[source]
        source: JournalError,
    },
    /// The reader thread panicked.
    #[error("the reader thread panicked")]
    ReaderPanicked,
}

impl PipelineError {
    /// The reader's report, when the pipeline ran before it failed.
    pub fn report(&self) -> Option<&ReaderReport> {
        match self {
            Self::SinkFailed { report, .. } => Some(report),
            _ => None,
        }
    }
}

/// State shared by the writers, the reader and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Set by `shutdown`: the reader drains what is queued and stops.
    stop: AtomicBool,
    /// Per writer: how many of its records are synced to disk (its next
    /// sequence number not yet durable). Written by the reader only.
    durable: Box<[CachePadded<AtomicU64>]>,
    /// Per writer: how many of its records the reader has written to the
    /// journal's files (`write(2)` returned; not necessarily synced), its
    /// next sequence number not yet written. Written by the reader only,
    /// after each batch.
    written: Box<[CachePadded<AtomicU64>]>,
    /// The segment the reader appended its latest batch to. Written by the
    /// reader only.
    segment: AtomicU64,
    /// Notified by the reader after it advances `durable` or fails.
    durable_event: Event,
    /// Set when the reader stops (sink failure or shutdown); durable waits
    /// still pending then give up.
    failed: AtomicBool,
    /// The sink's last error, for reporting while the pipeline runs.
    last_error: Mutex<Option<String>>,
    /// Failed appends so far (each retry that failed counts).
    failures: AtomicU64,
    /// Per writer: the sequence number it started at.
    first_seqs: Box<[u64]>,
}

/// The running pipeline: the reader thread and the stop switch.
#[derive(Debug)]
pub struct Pipeline {
    shared: Arc<Shared>,
    reader: Option<std::thread::JoinHandle<Result<ReaderReport, PipelineError>>>,
}

/// Builds the queue and the journal, starts the reader thread, and returns
/// one writer handle per configured writer. The queue settings are checked
/// before the journal directory is touched.
///
/// An existing journal is continued: recovery runs on open, and writer `i`
/// starts at producer `i`'s next sequence number in the journal.
///
/// # Errors
///
/// The queue configuration is invalid, the journal cannot be opened, or it
/// is damaged ([`PipelineError::Damaged`]).
pub fn start(config: PipelineConfig) -> Result<(Vec<PipelineWriter>, Pipeline), PipelineError> {
    config.queue_limits()?;
    let journal = Journal::open(&config.journal_dir, config.journal)?;
    start_with_journal(config, journal)
}

/// The next sequence number of producers `0..writers` in the journal in
/// `dir`, which must be clean (a journal just opened has no torn tail).
///
/// # Errors
///
/// I/O errors reading the journal; [`PipelineError::Damaged`] if it is not
/// clean.
pub fn next_seqs(dir: &Path, writers: usize) -> Result<Vec<u64>, PipelineError> {
    let report = crate::journal::verify(dir)?;
    if !report.is_clean() {
        let faults: u64 = report
            .producers
            .values()
            .map(|p| p.missing + p.duplicates + p.out_of_order)
            .sum();
        return Err(PipelineError::Damaged {
            dir: dir.to_path_buf(),
            what: format!(
                "{} damaged ranges, {} torn tail, {faults} sequence faults",
                report.corrupted.len(),
                u8::from(report.torn_tail.is_some())
            ),
        });
    }
    Ok((0..writers)
        .map(|i| {
            u32::try_from(i)
                .ok()
                .and_then(|id| report.producers.get(&id))
                .filter(|p| p.records > 0)
                .map_or(0, |p| p.last_seq.saturating_add(1))
        })
        .collect())
}

/// [`start`] with a journal the caller opened, e.g. over a file layer that
/// injects faults (`config.journal` is then only used in messages). The
/// journal in `journal.dir()` is continued as [`start`] does.
///
/// # Errors
///
/// The queue configuration is invalid, the journal is damaged, or the
/// reader thread cannot start.
pub fn start_with_journal<Fs>(
    config: PipelineConfig,
    journal: Journal<Fs>,
) -> Result<(Vec<PipelineWriter>, Pipeline), PipelineError>
where
    Fs: JournalFs + Send + 'static,
    Fs::File: Send,
{
    config.queue_limits()?;
    let first_seqs = next_seqs(journal.dir(), config.queue.writers)?;
    let (writers, reader): (Vec<writer::AnyWriter>, Box<dyn ByteQueueReader>) = match config.design
    {
        Design::DoubleBuffer => {
            let (w, r) = bytes::double_buffer::channel(config.queue)?;
            (
                w.into_iter().map(writer::AnyWriter::Double).collect(),
                Box::new(r),
            )
        }
        Design::FanIn => {
            let (w, r) = bytes::fan_in::channel(config.queue)?;
            (
                w.into_iter().map(writer::AnyWriter::FanIn).collect(),
                Box::new(r),
            )
        }
        Design::SharedRing => {
            let (w, r) = bytes::shared_ring::channel(config.queue)?;
            (
                w.into_iter().map(writer::AnyWriter::Shared).collect(),
                Box::new(r),
            )
        }
    };
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        durable: first_seqs
            .iter()
            .map(|&s| CachePadded::new(AtomicU64::new(s)))
            .collect(),
        written: first_seqs
            .iter()
            .map(|&s| CachePadded::new(AtomicU64::new(s)))
            .collect(),
        segment: AtomicU64::new(journal.current_segment()),
        durable_event: Event::new(),
        failed: AtomicBool::new(false),
        last_error: Mutex::new(None),
        failures: AtomicU64::new(0),
        first_seqs: first_seqs.clone().into_boxed_slice(),
    });
    // Before any writer exists, so every record is stamped after the
    // clock's first anchor (stamp module docs).
    let clock = stamp::TickClock::new(stamp::Ticks::detect());
    let ticks = clock.ticks();
    let handles = writers
        .into_iter()
        .zip(first_seqs)
        .enumerate()
        .map(|(id, (w, first))| PipelineWriter::new(w, id as u32, first, ticks, shared.clone()))
        .collect();
    let reader_shared = shared.clone();
    let aux = config.reader_aux_work;
    let retry = config.sink_retry;
    let thread = std::thread::Builder::new()
        .name(config.reader_thread_name.clone())
        .spawn(move || reader::run(reader, journal, clock, &reader_shared, aux, retry))
        .map_err(|e| JournalError::io("spawn reader thread", &config.journal_dir, e))?;
    Ok((
        handles,
        Pipeline {
            shared,
            reader: Some(thread),
        },
    ))
}

impl Pipeline {
    /// Per writer: the sequence number it started at, which is its
    /// producer's next sequence in the journal when the pipeline started
    /// (0 for a new journal).
    pub fn first_seqs(&self) -> &[u64] {
        &self.shared.first_seqs
    }

    /// Per writer: every record of it with a lower sequence number is
    /// durable (synced) in the journal. Starts at [`first_seqs`](Self::first_seqs).
    pub fn durable_seqs(&self) -> Vec<u64> {
        self.shared
            .durable
            .iter()
            // Acquire: pairs with the reader's Release store after a sync.
            .map(|d| d.load(Ordering::Acquire))
            .collect()
    }

    /// How many appends have failed so far (each failed retry counts), for
    /// reporting every failure while it persists.
    pub fn sink_failures(&self) -> u64 {
        // Relaxed: a counter for display.
        self.shared.failures.load(Ordering::Relaxed)
    }

    /// The sink's last error while it retries, if it is failing now.
    pub fn sink_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or(None)
    }

    /// Whether the reader thread has finished (every writer gone and the
    /// queue drained, or a fatal error).
    pub fn is_finished(&self) -> bool {
        self.reader.as_ref().is_none_or(|r| r.is_finished())
    }

    /// Stops the pipeline: the reader drains everything already queued,
    /// appends it, syncs, and reports. Writers still alive get
    /// `Disconnected`-like failures only when the queue is full; drop them
    /// first for a clean stop.
    ///
    /// # Errors
    ///
    /// The sink's error if it failed, or `ReaderPanicked`.
    pub fn shutdown(mut self) -> Result<ReaderReport, PipelineError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<ReaderReport, PipelineError> {
        // Release: pairs with the Acquire load in the reader loop.
        self.shared.stop.store(true, Ordering::Release);
        match self.reader.take() {
            Some(h) => h.join().map_err(|_| PipelineError::ReaderPanicked)?,
            None => Err(PipelineError::ReaderPanicked),
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.stop_and_join();
        }
    }
}

/// Busy work standing in for the seeds' `aux_work`: `n` rounds of a
/// dependent integer mix the optimiser cannot remove.
#[inline]
pub fn aux_work(n: u32) {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..n {
        x = (x ^ u64::from(i))
            .wrapping_mul(0xBF58_476D_1CE4_E5B9)
            .rotate_left(31);
    }
    std::hint::black_box(x);
}
