//! [`BinaryLayer`]: deferred formatting. Each event becomes one compact
//! binary record (callsite id, thread number, field values) written through
//! the same per-thread journal producers as [`RingWriter`]; the text is made
//! only when the journal is read (`ringlog cat`). The format, and where its
//! definitions live, is described in [`binary`](crate::binary).

use crate::binary::{Callsite, Encoder, Level, Value};
use crate::inner::Inner;
use crate::writer::{with_lease, RingWriter};
use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing::field::{Field, Visit};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Hashes a callsite address: one multiply (the addresses are distinct,
/// aligned, and few).
#[derive(Debug, Default)]
pub(crate) struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// What one thread keeps per writer: the encoding buffer and which
/// definitions it has written into the current segment.
#[derive(Debug)]
pub(crate) struct ThreadState {
    buf: Vec<u8>,
    /// Callsites (by address) defined through this thread's producer in
    /// the segment `segment`.
    defined: HashSet<usize, BuildHasherDefault<AddressHasher>>,
    thread_defined: bool,
    /// The segment the definitions were written for.
    segment: u64,
}

impl ThreadState {
    fn new() -> Self {
        Self {
            buf: Vec::with_capacity(256),
            defined: HashSet::default(),
            thread_defined: false,
            segment: u64::MAX,
        }
    }
}

/// Numbers threads in the order of their first binary event: what event
/// records name their thread by.
static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's number, 0 until its first binary event.
    static THREAD_NUMBER: Cell<u64> = const { Cell::new(0) };
}

fn thread_number() -> u64 {
    THREAD_NUMBER
        .try_with(|n| {
            if n.get() == 0 {
                // Relaxed: a unique number is all that is needed.
                n.set(NEXT_THREAD.fetch_add(1, Ordering::Relaxed));
            }
            n.get()
        })
        .unwrap_or(0)
}

fn level_of(m: &Metadata<'_>) -> Level {
    match *m.level() {
        tracing::Level::TRACE => Level::Trace,
        tracing::Level::DEBUG => Level::Debug,
        tracing::Level::INFO => Level::Info,
        tracing::Level::WARN => Level::Warn,
        tracing::Level::ERROR => Level::Error,
    }
}

/// Records an event's fields into an [`Encoder`], without formatting
/// anything but `Debug` values (and the message, which `tracing` hands
/// over as `fmt::Arguments`).
struct Recorder<'a, 'b>(&'a mut Encoder<'b>);

fn index(field: &Field) -> u8 {
    u8::try_from(field.index()).unwrap_or(u8::MAX)
}

impl Visit for Recorder<'_, '_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.value(index(field), Value::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.value(index(field), Value::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.value(index(field), Value::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.value(index(field), Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.value(index(field), Value::Str(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.0.value(index(field), Value::I128(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.0.value(index(field), Value::U128(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.debug(index(field), &format_args!("{value}"));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.debug(index(field), value);
    }
}

/// A `tracing_subscriber` [`Layer`] that stores each event as a compact
/// binary record and leaves the formatting to whoever reads the journal
/// (`ringlog cat --format text`, or [`binary::TextDecoder`](crate::binary::TextDecoder)).
///
/// Per event it writes the callsite's id (its address), the thread's number
/// and the field values, typed (`i64`, `u64`, `f64`, `bool`, `&str`, 128-bit
/// integers; other values and the message as their `Debug` text), into the
/// same per-thread journal producer as [`RingWriter`], so text and binary
/// events of one thread stay in order. The metadata (level, target, name,
/// file, line, field names) and the thread's name are written once, as
/// definition records, before the first event that needs them, and again
/// in each new segment (see [`binary`](crate::binary) for the layout and
/// for what a reader that starts mid-journal sees). Nothing is allocated
/// per event once each thread has seen its callsites.
///
/// Span fields are not recorded: only the event's own.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// # let dir = tempfile::tempdir().unwrap();
/// let (writer, guard) = ringlog_tracing::Builder::new(dir.path()).build().unwrap();
/// let subscriber = tracing_subscriber::registry().with(ringlog_tracing::BinaryLayer::new(&writer));
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(target: "app", user = "ada", attempts = 3u64, "logged in");
/// });
/// guard.sync().unwrap();
///
/// // Read back and formatted, as `ringlog cat --format text` does.
/// let mut decoder = ringlog_tracing::binary::TextDecoder::default();
/// let mut lines = Vec::new();
/// for r in ringlog::journal::Reader::open(dir.path()).unwrap() {
///     let r = r.unwrap();
///     let mut line = String::new();
///     if decoder.show(r.timestamp, &r.payload, &mut line) == ringlog_tracing::binary::Shown::Line {
///         lines.push(line);
///     }
/// }
/// assert_eq!(lines.len(), 1);
/// // `2026-12-01T10:00:00.123456Z  INFO main app: logged in user="ada" attempts=3`
/// assert!(lines[0].contains("  INFO "), "{}", lines[0]);
/// assert!(lines[0].ends_with(r#" app: logged in user="ada" attempts=3"#), "{}", lines[0]);
/// ```
#[derive(Debug, Clone)]
pub struct BinaryLayer {
    inner: Arc<Inner>,
}

impl BinaryLayer {
    /// A layer writing to the journal of `writer` (and its guard).
    pub fn new(writer: &RingWriter) -> Self {
        Self {
            inner: writer.inner.clone(),
        }
    }

    /// Writes `event` through `slot`, with the definitions this thread has
    /// not yet written into the current segment.
    fn write(&self, slot: usize, state: &mut ThreadState, event: &Event<'_>) -> io::Result<()> {
        let inner = &*self.inner;
        inner.with_writer(slot, |w| {
            let segment = w.current_segment();
            if segment != state.segment {
                state.defined.clear();
                state.thread_defined = false;
                state.segment = segment;
            }
            let thread = thread_number();
            if !state.thread_defined {
                let current = std::thread::current();
                Encoder::thread(&mut state.buf, thread, current.name());
                // A definition dropped in lossy mode is written again with
                // the next event.
                state.thread_defined = inner.append_to(w, &state.buf)?;
            }
            let meta = event.metadata();
            let id = std::ptr::from_ref(meta) as usize;
            if !state.defined.contains(&id) {
                let fields: Vec<&str> = meta.fields().iter().map(|f| f.name()).collect();
                Encoder::callsite(
                    &mut state.buf,
                    &Callsite {
                        id: id as u64,
                        level: level_of(meta),
                        name: meta.name(),
                        target: meta.target(),
                        file: meta.file(),
                        line: meta.line(),
                        fields,
                    },
                );
                if inner.append_to(w, &state.buf)? {
                    state.defined.insert(id);
                }
            }
            let mut enc = Encoder::event(&mut state.buf, id as u64, thread);
            event.record(&mut Recorder(&mut enc));
            inner.append_to(w, &state.buf).map(drop)
        })?
    }
}

impl<S: Subscriber> Layer<S> for BinaryLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        // Errors are counted by the writer (see `Guard::io_errors`); a
        // layer has no way to return them.
        let written = with_lease(&self.inner, |lease| {
            let state = lease
                .binary
                .get_or_insert_with(|| Box::new(ThreadState::new()));
            self.write(lease.slot, state, event)
        });
        if written.is_none() {
            // No thread-local (thread exit) or a nested event: the shared
            // slot, with its definitions, from a state of its own.
            let _ = self.write(self.inner.shared_slot(), &mut ThreadState::new(), event);
        }
    }
}
