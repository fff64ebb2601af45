//! Logging: the cost of `tracing::info!` through tracing-subscriber's fmt
//! layer (no ANSI, default fields and timestamp) at 1 and 4 threads, by
//! where the formatted line goes:
//!
//! - ringlog: [`ringlog_tracing::Builder`] (blocking, 4 MiB queue, the
//!   journal synced every 100 ms and at shutdown);
//! - `tracing_appender::non_blocking` over a `File`, made blocking
//!   (`lossy(false)`) so that it is compared like with like and loses
//!   nothing;
//! - `tracing_appender::rolling::hourly` under the same `non_blocking`
//!   (rows say `appender` for `tracing_appender`);
//! - a `Mutex<BufWriter<File>>` (64 KiB) written by the logging threads
//!   themselves;
//! - `std::io::sink()`, which discards each line: the fmt layer's
//!   formatting alone, the limit of every row that formats (what a writer
//!   costs is its row minus this one);
//! - and, as its own row, no fmt layer at all but
//!   [`ringlog_tracing::BinaryLayer`] over the same ringlog writer: deferred
//!   formatting, the event stored as its callsite id and typed values and
//!   formatted only when read back.
//!
//! All threads share one subscriber (one `Dispatch`, as a global one is).
//! Each event is timed with `Instant` around the `info!` call (p50, p99,
//! p99.9 of that, in an HDR histogram), and `ns/event` is the wall time from
//! the first event until every line is written out (and, for ringlog,
//! synced), divided by the number of events: the inverse of throughput.
//!
//! Every run's output is read back: the journal with ringlog's reader, the
//! files line by line; each thread's events must all be there, in order
//! (through the same [`SeqCheck`] as the queue scenarios).
//!
//! Allocations per event on the logging threads are counted by the binary's
//! global allocator ([`CountingAlloc`]) and printed as a note after each
//! case.

use crate::bench::{Bench, Case, Measured, Role, Unit};
use crate::check::{item, CheckError, SeqCheck};
use hdrhistogram::Histogram;
use ringlog_tracing::binary::Shown;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::Path;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Instant;
use tracing::Dispatch;

/// The percentiles of a latency row, after the wall-time cost per event.
const METRICS: [&str; 4] = ["ns/event (wall)", "p50", "p99", "p99.9"];

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

/// A global allocator that counts allocations per thread and defers to
/// `System`; `ringlog-bench` installs it so that the logging scenario can
/// report allocations per event.
#[derive(Debug)]
pub struct CountingAlloc;

// SAFETY: every call is passed to `System` unchanged; the count is a
// thread-local `Cell` with a const initialiser (no allocation, no
// destructor), so counting cannot recurse into the allocator.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract for `alloc` is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract for `alloc_zeroed` is passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract for `realloc` is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn thread_allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Where the fmt layer's lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    Ringlog,
    Binary,
    NonBlocking,
    RollingNonBlocking,
    MutexBufWriter,
    /// `std::io::sink()`: formatting alone.
    FormatOnly,
}

impl Sink {
    fn name(self) -> &'static str {
        match self {
            Sink::Ringlog => "ringlog-tracing (journal)",
            Sink::Binary => "ringlog-tracing BinaryLayer (deferred fmt)",
            Sink::NonBlocking => "appender non_blocking(File)",
            Sink::RollingNonBlocking => "appender rolling::hourly+non_blocking",
            Sink::MutexBufWriter => "Mutex<BufWriter<File>> (64 KiB)",
            Sink::FormatOnly => "fmt layer into io::sink (formatting alone)",
        }
    }

    fn role(self) -> Role {
        match self {
            Sink::Ringlog | Sink::Binary => Role::Ringlog,
            Sink::FormatOnly => Role::Limit,
            _ => Role::Peer,
        }
    }
}

/// Runs the scenario.
pub fn run(b: &mut Bench) {
    b.scenario("logging");
    let events = b.settings.size(1_000_000, 100_000, 1_000);
    let dir = b.settings.work_dir.join("logging");
    for threads in [1usize, 4] {
        let group = format!(
            "tracing::info! via fmt layer, {threads} thread{}, ns",
            if threads == 1 { "" } else { "s" }
        );
        for sink in [
            Sink::Ringlog,
            Sink::Binary,
            Sink::NonBlocking,
            Sink::RollingNonBlocking,
            Sink::MutexBufWriter,
            Sink::FormatOnly,
        ] {
            let allocs = Cell::new((0u64, 0u64));
            // The logging threads plus, for the queued sinks, the thread
            // that writes.
            let cpus =
                threads + usize::from(!matches!(sink, Sink::MutexBufWriter | Sink::FormatOnly));
            b.case_metrics(
                Case::new(group.as_str(), sink.name(), sink.role(), Unit::Nanos, cpus),
                &METRICS,
                |_| {
                    let _ = std::fs::remove_dir_all(&dir);
                    std::fs::create_dir_all(&dir)?;
                    let r = one_run(&dir, sink, threads, events);
                    let _ = std::fs::remove_dir_all(&dir);
                    let (ms, a) = r?;
                    let (sum, n) = allocs.get();
                    allocs.set((sum + a, n + threads as u64 * events));
                    Ok(ms)
                },
            );
            let (sum, n) = allocs.get();
            if n > 0 {
                b.note(&format!(
                    "logging: {} at {threads} thread(s): {:.3} allocations per event on the logging threads",
                    sink.name(),
                    sum as f64 / n as f64
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a run leaves behind to be read back.
enum Output {
    Journal(ringlog_tracing::Guard),
    Appender(tracing_appender::non_blocking::WorkerGuard),
    /// Lines went to a [`LineCounter`]: each thread's count is checked.
    Counted,
    Nothing,
}

thread_local! {
    /// Lines this thread wrote into a [`LineCounter`].
    static SINK_LINES: Cell<u64> = const { Cell::new(0) };
}

/// `std::io::sink()` that counts, per thread, the lines it discards: the
/// check of the formatting-alone row (a thread-local count, so that the
/// 4-thread row shares no line between threads, as the fmt layer doesn't).
struct LineCounter;

impl std::io::Write for LineCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let lines = buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let _ = SINK_LINES.try_with(|c| c.set(c.get() + lines));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One run: `threads` threads log `events` events each through one shared
/// subscriber writing to `sink`. Returns the figures and the allocations
/// made on the logging threads during their timed loops.
fn one_run(
    dir: &Path,
    sink: Sink,
    threads: usize,
    events: u64,
) -> Result<(Vec<Measured>, u64), CheckError> {
    let file_path = dir.join("app.log");
    let fmt = || {
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
    };
    let (dispatch, output) = match sink {
        Sink::Ringlog => {
            let (writer, guard) = ringlog_tracing::Builder::new(dir.join("journal"))
                .build()
                .map_err(|e| CheckError::new(format!("ringlog-tracing: {e}")))?;
            (
                Dispatch::new(fmt().with_writer(writer).finish()),
                Output::Journal(guard),
            )
        }
        Sink::Binary => {
            use tracing_subscriber::layer::SubscriberExt;
            let (writer, guard) = ringlog_tracing::Builder::new(dir.join("journal"))
                .build()
                .map_err(|e| CheckError::new(format!("ringlog-tracing: {e}")))?;
            let layer = ringlog_tracing::BinaryLayer::new(&writer);
            (
                Dispatch::new(tracing_subscriber::registry().with(layer)),
                Output::Journal(guard),
            )
        }
        Sink::NonBlocking => {
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(File::create(&file_path)?);
            (
                Dispatch::new(fmt().with_writer(writer).finish()),
                Output::Appender(guard),
            )
        }
        Sink::RollingNonBlocking => {
            let rolling = tracing_appender::rolling::hourly(dir.join("rolling"), "app.log");
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(rolling);
            (
                Dispatch::new(fmt().with_writer(writer).finish()),
                Output::Appender(guard),
            )
        }
        Sink::FormatOnly => (
            Dispatch::new(fmt().with_writer(|| LineCounter).finish()),
            Output::Counted,
        ),
        Sink::MutexBufWriter => {
            let out = Mutex::new(BufWriter::with_capacity(
                64 << 10,
                File::create(&file_path)?,
            ));
            (
                Dispatch::new(fmt().with_writer(out).finish()),
                Output::Nothing,
            )
        }
    };
    let start_line = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let dispatch = dispatch.clone();
            let start_line = start_line.clone();
            thread::spawn(move || {
                let _default = tracing::dispatcher::set_default(&dispatch);
                let mut hist =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("static bounds");
                // Warm-up outside the count: the first event takes the
                // thread's lease and grows the fmt layer's buffer.
                tracing::info!(t, i = 0u64, "warm up");
                start_line.wait();
                let before = thread_allocs();
                let lines_before = SINK_LINES.with(Cell::get);
                for i in 0..events {
                    let t0 = Instant::now();
                    tracing::info!(t, i, "request served");
                    let ns = t0.elapsed().as_nanos() as u64;
                    let _ = hist.record(ns.max(1));
                }
                let lines = SINK_LINES.with(Cell::get) - lines_before;
                (hist, thread_allocs() - before, lines)
            })
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("static bounds");
    let mut allocs = 0;
    let mut counted = Vec::with_capacity(threads);
    for h in handles {
        let (th, a, lines) = h
            .join()
            .map_err(|_| CheckError::new("a logging thread panicked"))?;
        hist.add(th)
            .map_err(|e| CheckError::new(format!("histogram: {e}")))?;
        allocs += a;
        counted.push(lines);
    }
    // Everything out of the writer: drop the subscriber (the BufWriter
    // flushes), then the guards drain their queues.
    drop(dispatch);
    let journal = match output {
        Output::Journal(guard) => {
            let report = guard
                .shutdown()
                .map_err(|e| CheckError::new(format!("ringlog-tracing shutdown: {e}")))?;
            if report.dropped + report.rejected + report.io_errors > 0 {
                return Err(CheckError::new(format!(
                    "ringlog-tracing: {} dropped, {} rejected, {} I/O errors",
                    report.dropped, report.rejected, report.io_errors
                )));
            }
            true
        }
        Output::Appender(guard) => {
            drop(guard);
            false
        }
        Output::Counted => {
            // Nothing was kept to read back: each thread's lines are counted.
            if let Some((t, n)) = counted.iter().enumerate().find(|&(_, &n)| n != events) {
                return Err(CheckError::new(format!(
                    "thread {t} formatted {n} lines, expected {events}"
                )));
            }
            return Ok((
                figures(&hist, start.elapsed(), threads as u64 * events),
                allocs,
            ));
        }
        Output::Nothing => false,
    };
    let elapsed = start.elapsed();
    let total = threads as u64 * events;
    let sent = vec![events; threads];
    let mut check = SeqCheck::exact(threads);
    if journal {
        // Binary events are formatted here, as `ringlog cat` would.
        let mut decoder = ringlog_tracing::binary::TextDecoder::default();
        let mut line = String::new();
        for r in ringlog::journal::Reader::open(dir.join("journal"))
            .map_err(|e| CheckError::new(format!("journal: {e}")))?
        {
            let r = r.map_err(|e| CheckError::new(format!("journal: {e}")))?;
            match decoder.show(r.timestamp, &r.payload, &mut line) {
                Shown::NotBinary => see_line(&mut check, &String::from_utf8_lossy(&r.payload))?,
                Shown::Line => see_line(&mut check, &line)?,
                Shown::Definition => {}
            }
        }
    } else {
        let mut files: Vec<_> = if sink == Sink::RollingNonBlocking {
            std::fs::read_dir(dir.join("rolling"))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?
        } else {
            vec![file_path]
        };
        // Hourly names sort by time.
        files.sort();
        for f in files {
            for line in BufReader::new(File::open(&f)?).lines() {
                see_line(&mut check, &line?)?;
            }
        }
    }
    check.finish(&sent, 0)?;
    Ok((figures(&hist, elapsed, total), allocs))
}

/// A row's figures: wall time per event, then the percentiles of `hist`.
fn figures(hist: &Histogram<u64>, elapsed: std::time::Duration, events: u64) -> Vec<Measured> {
    vec![
        Measured::nanos(elapsed.as_nanos() as f64 / events as f64),
        Measured::nanos(hist.value_at_quantile(0.5) as f64),
        Measured::nanos(hist.value_at_quantile(0.99) as f64),
        Measured::nanos(hist.value_at_quantile(0.999) as f64),
    ]
}

/// Feeds one formatted line (`… request served t=T i=I`) to the check; the
/// warm-up events are skipped.
fn see_line(check: &mut SeqCheck, line: &str) -> Result<(), CheckError> {
    if line.contains("warm up") {
        return Ok(());
    }
    let field = |name: &str| -> Option<u64> {
        let key = format!(" {name}=");
        let at = line.find(&key)? + key.len();
        let end = line[at..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(line.len(), |e| at + e);
        line[at..end].parse().ok()
    };
    match (field("t"), field("i")) {
        (Some(t), Some(i)) => {
            check.see(item(t as usize, i));
            Ok(())
        }
        _ => Err(CheckError::new(format!("unexpected line {line:?}"))),
    }
}
