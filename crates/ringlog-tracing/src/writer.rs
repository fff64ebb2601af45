//! The writer: `io::Write` and `MakeWriter`, one record per line, each
//! thread on a pipeline writer of its own.

use crate::inner::Inner;
use std::cell::RefCell;
use std::io;
use std::sync::Arc;
use tracing_subscriber::fmt::MakeWriter;

/// A thread's hold on one slot of one [`Inner`], and the partial line it
/// has written so far.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) inner: Arc<Inner>,
    pub(crate) slot: usize,
    /// Bytes of a line not yet ended by `\n` (empty in the common case,
    /// where each write is a whole line).
    pending: Vec<u8>,
    /// What [`BinaryLayer`](crate::BinaryLayer) keeps for this thread, made
    /// on its first event.
    pub(crate) binary: Option<Box<crate::layer::ThreadState>>,
}

impl Lease {
    fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.pending.is_empty() {
            if let Some(line) = buf.strip_suffix(b"\n") {
                // The common case: one whole line, framed straight into
                // queue memory.
                return self.inner.append(self.slot, line);
            }
        }
        self.pending.extend_from_slice(buf);
        if self.pending.ends_with(b"\n") || self.pending.len() >= self.inner.max_pending {
            return self.flush();
        }
        Ok(())
    }

    /// Appends the partial line, if any, as one record.
    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let line = self.pending.strip_suffix(b"\n").unwrap_or(&self.pending);
        let result = self.inner.append(self.slot, line);
        self.pending.clear();
        result
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // A thread that exits with a partial line still gets it written.
        let _ = self.flush();
        self.inner.release(self.slot);
    }
}

thread_local! {
    /// This thread's leases, one per live writer it has written through
    /// (almost always one). Dropped when the thread exits, which gives the
    /// slots back.
    static LEASES: RefCell<Vec<Lease>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's lease on `inner`, taking one on first use.
/// `None` if the thread-local is gone (the thread is exiting) or already
/// borrowed (a write from inside a write, e.g. by a panic hook).
pub(crate) fn with_lease<R>(inner: &Arc<Inner>, f: impl FnOnce(&mut Lease) -> R) -> Option<R> {
    LEASES
        .try_with(|cell| {
            let mut leases = cell.try_borrow_mut().ok()?;
            let i = match leases.iter().position(|l| Arc::ptr_eq(&l.inner, inner)) {
                Some(i) => i,
                None => {
                    // Leases of writers shut down since are of no use.
                    leases.retain(|l| !l.inner.is_closed());
                    let slot = inner.lease();
                    leases.push(Lease {
                        inner: inner.clone(),
                        slot,
                        pending: Vec::new(),
                        binary: None,
                    });
                    leases.len() - 1
                }
            };
            Some(f(&mut leases[i]))
        })
        .ok()
        .flatten()
}

/// The writer half of [`Builder::build`](crate::Builder::build): hand it to
/// `tracing_subscriber::fmt().with_writer(..)`, or write to it directly.
///
/// Cloning is cheap (an `Arc`); every clone writes to the same journal.
///
/// # Records and lines
///
/// A record is one line, without its `\n`. A write that ends with `\n`
/// (tracing-subscriber's fmt layer writes each event as exactly one such
/// `write_all`) is framed directly into the queue's memory: no copy into a
/// buffer of ours, no allocation. Bytes that do not end a line are held per
/// thread until a later write ends it, [`flush`](io::Write::flush) is
/// called, the line reaches 64 KiB, or the thread exits; so `write!` pieces
/// and `writeln!` still give one record per line.
///
/// # Threads
///
/// The pipeline has a fixed number of writers
/// ([`Builder::max_threads`](crate::Builder::max_threads) + 1). A thread
/// takes a writer of its own on its first event and gives it back when it
/// exits; its records then carry that writer's producer id and consecutive
/// sequence numbers, in the order the thread wrote them. When every writer
/// is taken, further threads share the last one behind a mutex: still in
/// order per thread, at the price of contention among them.
#[derive(Debug, Clone)]
pub struct RingWriter {
    pub(crate) inner: Arc<Inner>,
}

impl RingWriter {
    fn write_line(&self, buf: &[u8]) -> io::Result<()> {
        match with_lease(&self.inner, |l| l.write(buf)) {
            Some(r) => r,
            // No thread-local (thread exit) or a nested write: the shared
            // slot, whole, as one record.
            None => {
                let line = buf.strip_suffix(b"\n").unwrap_or(buf);
                self.inner.append(self.inner.shared_slot(), line)
            }
        }
    }

    /// Appends this thread's partial line, if any, as a record.
    pub(crate) fn flush_thread(&self) -> io::Result<()> {
        with_lease(&self.inner, Lease::flush).unwrap_or(Ok(()))
    }
}

impl io::Write for RingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_line(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_line(buf)
    }

    /// Ends this thread's partial line, if any, as a record; it does not
    /// wait for the journal (see [`Guard::flush`](crate::Guard::flush)).
    fn flush(&mut self) -> io::Result<()> {
        self.flush_thread()
    }
}

impl io::Write for &RingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_line(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_line(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_thread()
    }
}

/// What [`RingWriter`] hands the fmt layer per event: a borrow, so making
/// one costs nothing (no reference count touched).
#[derive(Debug)]
pub struct EventWriter<'a> {
    writer: &'a RingWriter,
}

impl io::Write for EventWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write_line(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer.write_line(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush_thread()
    }
}

impl<'a> MakeWriter<'a> for RingWriter {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        EventWriter { writer: self }
    }
}
