//! [`Builder`]: the options, checked before anything on disk is touched.

use crate::guard::{install_panic_hook, Guard};
use crate::inner::Inner;
use crate::writer::RingWriter;
use ringlog::bytes::{Config, Policy};
use ringlog::journal::{Journal, JournalOptions, RotateEvery, SyncPolicy};
use ringlog::pipeline::{self, Design, PipelineConfig, PipelineError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why [`Builder::build`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An option is outside what the writer supports; nothing on disk was
    /// touched.
    #[error("invalid option `{option}` = {value}: {reason}")]
    InvalidOption {
        /// The builder method.
        option: &'static str,
        /// The value given.
        value: String,
        /// What the limit is.
        reason: String,
    },
    /// The journal could not be opened (path and OS error in the chain).
    #[error("open journal in {}", dir.display())]
    Journal {
        /// The journal's directory.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: ringlog::journal::JournalError,
    },
    /// The pipeline could not start.
    #[error("start the journal pipeline for {}", dir.display())]
    Pipeline {
        /// The journal's directory.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: PipelineError,
    },
}

/// Most pipeline writers the queue supports; one is the shared one.
const MAX_WRITERS: usize = ringlog::bytes::double_buffer::MAX_WRITERS;

/// Longest partial line held per thread before it is cut into a record.
const MAX_PENDING: usize = 64 << 10;

/// Builds a journal writer and its [`Guard`]; the replacement for
/// `tracing_appender::non_blocking`.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let (writer, guard) = ringlog_tracing::Builder::new(dir.path())
///     .queue_bytes(1 << 20)
///     .max_segment_bytes(16 << 20)
///     .rotate(ringlog::journal::RotateEvery::Hourly)
///     .max_files(48)
///     .build()
///     .unwrap();
/// # drop((writer, guard));
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    dir: PathBuf,
    queue_bytes: usize,
    max_threads: usize,
    design: Design,
    lossy: bool,
    sync_interval: Duration,
    shutdown_timeout: Option<Duration>,
    panic_hook: bool,
    journal: JournalOptions,
    clock: Option<fn() -> u64>,
    thread_name: String,
}

impl Builder {
    /// A writer of the journal in `dir` (created if missing; an existing
    /// journal is recovered and continued, never replaced), with a 4 MiB
    /// queue, blocking when it is full, synced every 100 ms, segments of
    /// 64 MiB, no retention limit.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self {
            dir: dir.as_ref().to_owned(),
            queue_bytes: 4 << 20,
            max_threads: 16,
            design: Design::DoubleBuffer,
            lossy: false,
            sync_interval: Duration::from_millis(100),
            shutdown_timeout: Some(Duration::from_secs(30)),
            panic_hook: false,
            journal: JournalOptions::default(),
            clock: None,
            thread_name: "ringlog-reader".into(),
        }
    }

    /// Queue memory in bytes, allocated once. 64 KiB to 1 GiB. With the
    /// default double buffer: two buffers of half each, and the largest
    /// event is a little under half. With [`Design::FanIn`]: one ring per
    /// writer (`max_threads + 1`) of `bytes / (max_threads + 1)` rounded
    /// down to a power of two, and the largest event is half a ring.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// The queue between the logging threads and the journal's thread
    /// ([`Design::DoubleBuffer`] by default). [`Design::FanIn`] gives each
    /// logging thread a ring of its own: no writer shares a cache line with
    /// another, at the price of a smaller largest event and of a thread
    /// that logs a burst filling only its own ring.
    pub fn design(mut self, design: Design) -> Self {
        self.design = design;
        self
    }

    /// Threads that get a pipeline writer of their own (1 to 63); threads
    /// beyond them share one more writer behind a mutex.
    pub fn max_threads(mut self, threads: usize) -> Self {
        self.max_threads = threads;
        self
    }

    /// `false` (the default): a full queue blocks the logging thread until
    /// there is room, so nothing is lost. `true`: the newest event is
    /// dropped and counted ([`Guard::dropped`]); the write still returns
    /// `Ok`, as `tracing_appender`'s lossy mode does.
    pub fn lossy(mut self, lossy: bool) -> Self {
        self.lossy = lossy;
        self
    }

    /// How often the journal is synced to disk (`fdatasync`) while events
    /// arrive; [`Guard::sync`] returns within about one interval.
    /// `Duration::ZERO` syncs after every batch the reader writes.
    pub fn sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = interval;
        self
    }

    /// Longest the guard's drop (and the panic hook) waits for the queue to
    /// drain and the journal to sync; `None` waits as long as it takes.
    /// Default 30 s.
    pub fn shutdown_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Installs a panic hook (chained after the one already set) that
    /// syncs every event written before the panic, so they survive the
    /// process dying. Off by default.
    pub fn panic_hook(mut self, on: bool) -> Self {
        self.panic_hook = on;
        self
    }

    /// Name of the thread that writes the journal (default
    /// `ringlog-reader`), as `tracing_appender`'s `thread_name`. At most
    /// 63 bytes, without NUL.
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// Size rotation: a new segment file once the current one would exceed
    /// this many bytes. At least 4 KiB. Default 64 MiB.
    pub fn max_segment_bytes(mut self, bytes: u64) -> Self {
        self.journal.segment_bytes = bytes;
        self
    }

    /// Time rotation: also start a new segment at each UTC minute, hour or
    /// day (whichever limit comes first).
    pub fn rotate(mut self, every: RotateEvery) -> Self {
        self.journal.rotate = Some(every);
        self
    }

    /// Retention: keep at most this many segment files, deleting the
    /// oldest after a rotation (at least 1).
    pub fn max_files(mut self, files: usize) -> Self {
        self.journal.retention.max_segments = Some(files);
        self
    }

    /// Retention: keep at most this many bytes of segment files, deleting
    /// the oldest whole segments after a rotation. The current segment is
    /// never deleted, so the journal can exceed the cap by one segment.
    pub fn max_total_bytes(mut self, bytes: u64) -> Self {
        self.journal.retention.max_bytes = Some(bytes);
        self
    }

    /// The clock time rotation reads (Unix nanoseconds, UTC), for tests.
    #[doc(hidden)]
    pub fn clock(mut self, clock: fn() -> u64) -> Self {
        self.clock = Some(clock);
        self
    }

    fn check(&self) -> Result<(), BuildError> {
        let invalid = |option, value: String, reason: &str| {
            Err(BuildError::InvalidOption {
                option,
                value,
                reason: reason.to_owned(),
            })
        };
        if !(64 << 10..=1 << 30).contains(&self.queue_bytes) {
            return invalid(
                "queue_bytes",
                self.queue_bytes.to_string(),
                "must be 65536 to 1073741824 bytes",
            );
        }
        if !(1..MAX_WRITERS).contains(&self.max_threads) {
            return invalid(
                "max_threads",
                self.max_threads.to_string(),
                "must be 1 to 63 threads",
            );
        }
        if self.journal.segment_bytes < 4096 {
            return invalid(
                "max_segment_bytes",
                self.journal.segment_bytes.to_string(),
                "must be at least 4096 bytes",
            );
        }
        if self.journal.retention.max_segments == Some(0) {
            return invalid("max_files", "0".into(), "must keep at least 1 file");
        }
        if self.thread_name.len() > 63 || self.thread_name.contains('\0') {
            return invalid(
                "thread_name",
                format!("{:?}", self.thread_name),
                "must be at most 63 bytes, without NUL",
            );
        }
        if u64::try_from(self.sync_interval.as_millis()).is_err() {
            return invalid(
                "sync_interval",
                format!("{:?}", self.sync_interval),
                "too long",
            );
        }
        Ok(())
    }

    /// Opens (or creates) the journal, starts the reader thread and returns
    /// the writer and the guard that drains and syncs it when dropped.
    ///
    /// # Errors
    ///
    /// [`BuildError::InvalidOption`] before anything on disk is touched;
    /// the journal's or the pipeline's error with the path and OS error.
    pub fn build(self) -> Result<(RingWriter, Guard), BuildError> {
        self.check()?;
        let mut journal = self.journal;
        journal.sync = if self.sync_interval.is_zero() {
            SyncPolicy::EveryBatch
        } else {
            // Checked above to fit.
            SyncPolicy::EveryMillis(self.sync_interval.as_millis() as u64)
        };
        let writers = self.max_threads + 1;
        let per_queue = match self.design {
            // Rounded down, so the rings together stay within queue_bytes.
            Design::FanIn => 1usize << (self.queue_bytes / writers).max(64).ilog2(),
            Design::DoubleBuffer | Design::SharedRing => self.queue_bytes / 2,
        };
        let mut queue = Config::new(per_queue, writers);
        if self.lossy {
            queue = queue.with_policy(Policy::DropNewest);
        }
        let config = PipelineConfig {
            design: self.design,
            queue,
            journal_dir: self.dir.clone(),
            journal,
            reader_aux_work: 0,
            sink_retry: pipeline::DEFAULT_SINK_RETRY,
            reader_thread_name: self.thread_name,
        };
        let mut opened =
            Journal::open(&self.dir, journal).map_err(|source| BuildError::Journal {
                dir: self.dir.clone(),
                source,
            })?;
        if let Some(clock) = self.clock {
            opened.set_clock(clock);
        }
        let (writers, pipeline) =
            pipeline::start_with_journal(config, opened).map_err(|source| {
                BuildError::Pipeline {
                    dir: self.dir.clone(),
                    source,
                }
            })?;
        let inner = Arc::new(Inner::new(writers, pipeline, MAX_PENDING));
        if self.panic_hook {
            install_panic_hook(Arc::downgrade(&inner), self.shutdown_timeout);
        }
        Ok((
            RingWriter {
                inner: inner.clone(),
            },
            Guard::new(inner, self.dir, self.shutdown_timeout),
        ))
    }
}
