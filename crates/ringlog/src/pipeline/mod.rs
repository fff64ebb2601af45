//! Layer 7: the pipeline — writers → MPSC byte queue → reader loop → journal.
//!
//! Each [`PipelineWriter`] frames its records (header, CRC-32C, payload) in
//! place, inside the queue's memory, on its own thread: checksumming runs in
//! parallel and the record is copied once. The reader thread takes whole
//! batches from the queue and hands every frame of a batch to the journal in
//! one vectored append: no per-record copy, one `writev` per batch.
//!
//! - `writer.rs`: [`PipelineWriter`]: `append`, durable acknowledgement.
//! - `reader.rs`: the reader loop, sync policy, durable positions, retries
//!   after a disk error (the batch stays in the queue, so back-pressure
//!   reaches writers through their policy).
//!
//! Shutdown: [`Pipeline::shutdown`] (or dropping every writer) makes the
//! reader drain the queue, append, sync, and return its [`ReaderReport`].
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
mod writer;

pub use reader::ReaderReport;
pub use writer::{AppendError, PipelineWriter};

use crate::bytes::{self, ByteQueueReader, Config, NewQueueError};
use crate::journal::{Journal, JournalError, JournalFs, JournalOptions, SyncPolicy};
use crate::sync::{Arc, AtomicBool, AtomicU64, Ordering};
use crate::wait::Event;
use crossbeam_utils::CachePadded;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

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
        }
    }
}

/// Why a pipeline could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The queue configuration was rejected.
    #[error("queue: {0}")]
    Queue(#[from] NewQueueError),
    /// The journal failed (the path and OS error are in the message).
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// The reader thread panicked.
    #[error("the reader thread panicked")]
    ReaderPanicked,
}

/// State shared by the writers, the reader and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Set by `shutdown`: the reader drains what is queued and stops.
    stop: AtomicBool,
    /// Per writer: how many of its records are synced to disk (its next
    /// sequence number not yet durable). Written by the reader only.
    durable: Box<[CachePadded<AtomicU64>]>,
    /// Notified by the reader after it advances `durable` or fails.
    durable_event: Event,
    /// Set when the reader stops (sink failure or shutdown); durable waits
    /// still pending then give up.
    failed: AtomicBool,
    /// The sink's last error, for reporting while the pipeline runs.
    last_error: Mutex<Option<String>>,
}

/// The running pipeline: the reader thread and the stop switch.
#[derive(Debug)]
pub struct Pipeline {
    shared: Arc<Shared>,
    reader: Option<std::thread::JoinHandle<Result<ReaderReport, PipelineError>>>,
}

/// Builds the queue and the journal, starts the reader thread, and returns
/// one writer handle per configured writer.
///
/// # Errors
///
/// The queue configuration is invalid, or the journal cannot be opened.
pub fn start(config: PipelineConfig) -> Result<(Vec<PipelineWriter>, Pipeline), PipelineError> {
    let journal = Journal::open(&config.journal_dir, config.journal)?;
    start_with_journal(config, journal)
}

/// [`start`] with a journal the caller opened, e.g. over a file layer that
/// injects faults (`config.journal_dir` and `config.journal` are then only
/// used in messages).
///
/// # Errors
///
/// The queue configuration is invalid, or the reader thread cannot start.
pub fn start_with_journal<Fs>(
    config: PipelineConfig,
    journal: Journal<Fs>,
) -> Result<(Vec<PipelineWriter>, Pipeline), PipelineError>
where
    Fs: JournalFs + Send + 'static,
    Fs::File: Send,
{
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
        durable: (0..writers.len())
            .map(|_| CachePadded::new(AtomicU64::new(0)))
            .collect(),
        durable_event: Event::new(),
        failed: AtomicBool::new(false),
        last_error: Mutex::new(None),
    });
    let handles = writers
        .into_iter()
        .enumerate()
        .map(|(id, w)| PipelineWriter::new(w, id as u32, shared.clone()))
        .collect();
    let reader_shared = shared.clone();
    let aux = config.reader_aux_work;
    let thread = std::thread::Builder::new()
        .name("ringlog-reader".into())
        .spawn(move || reader::run(reader, journal, &reader_shared, aux))
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
