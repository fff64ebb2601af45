//! No allocation per event in steady state, counted on the logging thread
//! by a counting global allocator (the reader thread is not counted: it
//! allocates per batch, not per event).

use ringlog_tracing::{Builder, RingLogger};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every operation to `System`; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Allocations made by `f` on this thread.
fn count(f: impl FnOnce()) -> u64 {
    let before = allocs();
    f();
    allocs() - before
}

#[test]
fn writing_lines_allocates_nothing_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = Builder::new(dir.path()).build().unwrap();
    // The counter sees this thread's allocations.
    assert_eq!(count(|| drop(std::hint::black_box(vec![1u8; 8]))), 1);
    let line = b"2026-12-01T10:00:00.000000Z  INFO app: request served status=200\n";
    let mut w = writer.clone();
    // Warm-up: the first write takes this thread's lease.
    for _ in 0..1000 {
        w.write_all(line).unwrap();
    }
    let n = count(|| {
        for _ in 0..100_000 {
            w.write_all(line).unwrap();
        }
    });
    assert_eq!(n, 0, "allocations in 100,000 io::Write events");
    // Through MakeWriter, as the fmt layer calls it.
    let n = count(|| {
        for _ in 0..100_000 {
            let mut ew = tracing_subscriber::fmt::MakeWriter::make_writer(&writer);
            ew.write_all(line).unwrap();
        }
    });
    assert_eq!(n, 0, "allocations in 100,000 MakeWriter events");
    let report = guard.shutdown().unwrap();
    assert_eq!(report.reader.records, 201_000);
}

#[test]
fn the_log_backend_allocates_nothing_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = Builder::new(dir.path()).build().unwrap();
    let logger = RingLogger::new(writer, log::LevelFilter::Info);
    let event = |i: u64| {
        log::Log::log(
            &logger,
            &log::Record::builder()
                .level(log::Level::Info)
                .target("app")
                .args(format_args!("request {i} served"))
                .build(),
        )
    };
    for i in 0..1000 {
        event(i);
    }
    let n = count(|| (0..100_000).for_each(event));
    assert_eq!(n, 0, "allocations in 100,000 log events");
    let report = guard.shutdown().unwrap();
    assert_eq!(report.reader.records, 101_000);
}

#[test]
fn the_fmt_layer_through_ringlog_allocates_nothing_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = Builder::new(dir.path()).build().unwrap();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..1000u64 {
            tracing::info!(i, "request served");
        }
        let n = count(|| {
            for i in 0..100_000u64 {
                tracing::info!(i, "request served");
            }
        });
        assert_eq!(n, 0, "allocations in 100,000 tracing::info! events");
    });
    let report = guard.shutdown().unwrap();
    assert_eq!(report.reader.records, 101_000);
}

#[test]
fn the_binary_layer_allocates_nothing_per_event() {
    use tracing_subscriber::layer::SubscriberExt;
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = Builder::new(dir.path()).build().unwrap();
    let subscriber =
        tracing_subscriber::registry().with(ringlog_tracing::BinaryLayer::new(&writer));
    // One callsite for the warm-up and the counted events: a new callsite
    // is defined (and allocated for) once per thread.
    let event = |i: u64| tracing::info!(i, ok = true, path = "/index", "request served");
    tracing::subscriber::with_default(subscriber, || {
        (0..1000).for_each(event);
        let n = count(|| (0..100_000).for_each(event));
        assert_eq!(n, 0, "allocations in 100,000 binary events");
    });
    let report = guard.shutdown().unwrap();
    // One thread and one callsite definition, then the events.
    assert_eq!(report.reader.records, 101_002);
}

#[test]
fn binary_events_in_spans_allocate_nothing_per_event() {
    use tracing_subscriber::layer::SubscriberExt;
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = Builder::new(dir.path()).build().unwrap();
    let subscriber =
        tracing_subscriber::registry().with(ringlog_tracing::BinaryLayer::new(&writer));
    tracing::subscriber::with_default(subscriber, || {
        // Making a span allocates (its values are kept); events in it, and
        // entering and leaving it, must not.
        let conn = tracing::info_span!("conn", peer = "10.0.0.1", port = 443u64);
        let _c = conn.enter();
        let request = tracing::info_span!("request", id = 7u64);
        let event = |i: u64| tracing::info!(i, ok = true, "request served");
        let in_request = |i: u64| request.in_scope(|| event(i));
        (0..1000).for_each(event);
        (0..1000).for_each(in_request);
        let n = count(|| (0..100_000).for_each(event));
        assert_eq!(n, 0, "allocations in 100,000 binary events in a span");
        let n = count(|| (0..100_000).for_each(in_request));
        assert_eq!(
            n, 0,
            "allocations in 100,000 binary events, each entering a nested span"
        );
    });
    let report = guard.shutdown().unwrap();
    // One thread, three callsites (two spans, the event) and two span
    // definitions, then the events.
    assert_eq!(report.reader.records, 202_000 + 6);
}
