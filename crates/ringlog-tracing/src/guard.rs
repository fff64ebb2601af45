//! [`Guard`]: flush, sync, counters, shutdown on drop, the panic hook.

use crate::inner::{lock, Inner, WaitFailure};
use crate::writer::RingWriter;
use ringlog::pipeline::{PipelineError, ReaderReport};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Why [`Guard::sync`] or [`Guard::flush`] returned before the events were
/// durable (or written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The timeout passed first (the disk is slow, or failing and being
    /// retried: see [`Guard::last_error`]).
    #[error("timed out waiting for the journal to write or sync the events")]
    Timeout,
    /// The journal pipeline stopped: its disk failed for good, or the guard
    /// shut it down.
    #[error("the journal pipeline stopped before the events were written or durable{}", last.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Stopped {
        /// The last error the pipeline reported, if any.
        last: Option<String>,
    },
}

/// Why [`Guard::shutdown`] could not drain and sync everything.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    /// The shutdown timeout passed before the queue was drained and synced;
    /// the reader thread is left to finish on its own.
    #[error("shutdown timed out after {0:?} with events still queued")]
    Timeout(Duration),
    /// The pipeline failed (the journal's error, with path and OS error,
    /// is in the chain).
    #[error("the journal pipeline failed")]
    Pipeline(#[source] PipelineError),
}

/// What a clean shutdown did.
#[derive(Debug, Clone)]
pub struct ShutdownReport {
    /// The reader's report: records and bytes appended and synced, write
    /// and sync latencies.
    pub reader: ReaderReport,
    /// Events dropped in lossy mode.
    pub dropped: u64,
    /// Events refused as larger than the largest record.
    pub rejected: u64,
    /// Errors counted (appends that failed, and the reader's failed
    /// appends that it retried).
    pub io_errors: u64,
}

/// Keeps the journal writer running; dropping it drains the queue, syncs
/// the journal and stops the reader thread (within the
/// [shutdown timeout](crate::Builder::shutdown_timeout)).
///
/// Hold it for as long as events are logged, e.g. as `let _guard` in
/// `main` (not `let _ =`, which drops it at once).
///
/// Counters are never silent: [`dropped`](Self::dropped),
/// [`rejected`](Self::rejected), [`io_errors`](Self::io_errors) and
/// [`last_error`](Self::last_error) can be read at any time, a drop that
/// had any of them non-zero (or failed) prints one line to stderr, and
/// [`shutdown`](Self::shutdown) returns them.
#[derive(Debug)]
#[must_use = "dropping the guard shuts the writer down"]
pub struct Guard {
    inner: Arc<Inner>,
    dir: PathBuf,
    timeout: Option<Duration>,
    done: bool,
}

/// How far [`Guard::flush`] and [`Guard::sync`] wait.
#[derive(Debug, Clone, Copy)]
enum Level {
    /// Synced to disk.
    Durable,
    /// Written to the journal's files.
    Written,
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

impl Guard {
    pub(crate) fn new(inner: Arc<Inner>, dir: PathBuf, timeout: Option<Duration>) -> Self {
        Self {
            inner,
            dir,
            timeout,
            done: false,
        }
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits until every event written before the call (by any thread;
    /// partial lines of other threads excepted) has been written to the
    /// journal's files: handed to the kernel with `write(2)`, so it
    /// survives this process dying (a crash or a `SIGKILL`) but not the
    /// machine losing power. It does not wait for `fdatasync`; that is
    /// [`sync`](Self::sync). This thread's partial line is ended first.
    ///
    /// It returns once the reader thread has written the batch holding
    /// those events, which is usually well within a millisecond on an idle
    /// queue.
    ///
    /// # Errors
    ///
    /// [`SyncError::Stopped`] if the pipeline stopped first.
    pub fn flush(&self) -> Result<(), SyncError> {
        self.wait_until(Level::Written, None)
    }

    /// [`flush`](Self::flush), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`SyncError::Timeout`], or as [`flush`](Self::flush).
    pub fn flush_timeout(&self, timeout: Duration) -> Result<(), SyncError> {
        self.wait_until(Level::Written, deadline(Some(timeout)))
    }

    /// Waits until every event written before the call (by any thread;
    /// partial lines of other threads excepted: see
    /// [`RingWriter`](crate::RingWriter)) is durable on disk. This thread's
    /// partial line is ended first.
    ///
    /// # Errors
    ///
    /// [`SyncError::Stopped`] if the pipeline stopped first.
    pub fn sync(&self) -> Result<(), SyncError> {
        self.wait_until(Level::Durable, None)
    }

    /// [`sync`](Self::sync), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`SyncError::Timeout`], or as [`sync`](Self::sync).
    pub fn sync_timeout(&self, timeout: Duration) -> Result<(), SyncError> {
        self.wait_until(Level::Durable, deadline(Some(timeout)))
    }

    fn wait_until(&self, level: Level, deadline: Option<Instant>) -> Result<(), SyncError> {
        let writer = RingWriter {
            inner: self.inner.clone(),
        };
        if let Err(e) = writer.flush_thread() {
            self.inner.note_error("sync: end the partial line", &e);
        }
        let waited = match level {
            Level::Durable => self.inner.wait_durable(deadline),
            Level::Written => self.inner.wait_written(deadline),
        };
        match waited {
            Ok(()) => Ok(()),
            // A slot held until the deadline is a timeout too: an append
            // blocked on a full queue.
            Err(WaitFailure::Timeout | WaitFailure::Busy) => Err(SyncError::Timeout),
            Err(WaitFailure::Stopped) => Err(SyncError::Stopped {
                last: self.inner.last_error(),
            }),
        }
    }

    /// Events dropped because the queue was full (lossy mode only).
    pub fn dropped(&self) -> u64 {
        self.inner.counters.dropped.load(Ordering::Relaxed)
    }

    /// Events refused because they exceed the largest record the queue
    /// holds (a little under half of [`queue_bytes`](crate::Builder::queue_bytes));
    /// the write returned `InvalidInput`.
    pub fn rejected(&self) -> u64 {
        self.inner.counters.rejected.load(Ordering::Relaxed)
    }

    /// Errors counted so far: appends that failed, and (after shutdown) the
    /// journal appends the reader had to retry.
    pub fn io_errors(&self) -> u64 {
        self.inner.counters.io_errors.load(Ordering::Relaxed)
    }

    /// The journal's current error while it is failing (and retrying), else
    /// the last error counted, with its OS error.
    pub fn last_error(&self) -> Option<String> {
        self.inner.last_error()
    }

    /// Drains the queue, syncs the journal, stops the reader thread and
    /// reports, within the shutdown timeout. Writes after this fail with
    /// `BrokenPipe` (and are counted).
    ///
    /// # Errors
    ///
    /// [`ShutdownError::Timeout`], or the pipeline's failure.
    pub fn shutdown(mut self) -> Result<ShutdownReport, ShutdownError> {
        self.shutdown_inner()
    }

    fn shutdown_inner(&mut self) -> Result<ShutdownReport, ShutdownError> {
        self.done = true;
        let timeout = self.timeout;
        let deadline = deadline(timeout);
        let timed_out = || ShutdownError::Timeout(timeout.unwrap_or_default());
        let writer = RingWriter {
            inner: self.inner.clone(),
        };
        if let Err(e) = writer.flush_thread() {
            self.inner.note_error("shutdown: end the partial line", &e);
        }
        // With every writer gone the reader drains the queue, syncs and
        // finishes by itself.
        let closed = self.inner.close(deadline);
        loop {
            let finished = lock(&self.inner.pipeline)
                .as_ref()
                .is_none_or(|p| p.is_finished());
            if finished {
                break;
            }
            if !closed || deadline.is_some_and(|d| Instant::now() >= d) {
                // Joining would wait for ever: leave the reader thread to
                // finish (or die with the process).
                if let Some(p) = lock(&self.inner.pipeline).take() {
                    std::mem::forget(p);
                }
                return Err(timed_out());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let pipeline = lock(&self.inner.pipeline).take();
        let Some(pipeline) = pipeline else {
            return Err(timed_out());
        };
        let reader = pipeline.shutdown().map_err(|e| {
            self.inner.note_error("journal pipeline", &e);
            ShutdownError::Pipeline(e)
        })?;
        let c = &self.inner.counters;
        c.io_errors
            .fetch_add(reader.write_errors, Ordering::Relaxed);
        Ok(ShutdownReport {
            dropped: c.dropped.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            io_errors: c.io_errors.load(Ordering::Relaxed),
            reader,
        })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let dir = self.dir.display().to_string();
        match self.shutdown_inner() {
            Ok(r) if r.dropped == 0 && r.rejected == 0 && r.io_errors == 0 => {}
            Ok(r) => eprintln!(
                "ringlog-tracing: journal {dir}: {} events dropped (queue full), {} refused (too large), {} I/O errors{}",
                r.dropped,
                r.rejected,
                r.io_errors,
                self.inner
                    .last_error()
                    .map(|e| format!("; last: {e}"))
                    .unwrap_or_default()
            ),
            Err(e) => {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    text.push_str(&format!(": {s}"));
                    source = s.source();
                }
                eprintln!("ringlog-tracing: journal {dir}: {text}");
            }
        }
    }
}

/// Chains a hook after the current one that syncs what was written before
/// the panic. Holds the writer weakly: after the guard is gone it does
/// nothing.
pub(crate) fn install_panic_hook(inner: Weak<Inner>, timeout: Option<Duration>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // The previous hook first: it may log the panic through us.
        previous(info);
        if let Some(inner) = inner.upgrade() {
            let writer = RingWriter {
                inner: inner.clone(),
            };
            let _ = writer.flush_thread();
            if let Err(e) = inner.wait_durable(deadline(timeout)) {
                eprintln!(
                    "ringlog-tracing: panic hook: events before the panic may not be durable ({e:?})"
                );
            }
        }
    }));
}
