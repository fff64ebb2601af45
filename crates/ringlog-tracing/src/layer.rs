//! [`BinaryLayer`]: deferred formatting. Each event becomes one compact
//! binary record (callsite id, thread number, field values) written through
//! the same per-thread journal producers as [`RingWriter`]; the text is made
//! only when the journal is read (`ringlog cat`). The format, and where its
//! definitions live, is described in [`binary`](crate::binary).

use crate::binary::{Callsite, Encoder, Level, Value};
use crate::inner::Inner;
use crate::writer::{with_lease, RingWriter};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

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
    /// The callsites last defined, by address, direct-mapped: most events
    /// find theirs here without hashing (0: empty).
    recent: [usize; RECENT],
    thread_defined: bool,
    /// This thread's number, looked up once.
    thread: u64,
    /// The segment the definitions were written for.
    segment: u64,
}

/// Entries in [`ThreadState::recent`].
const RECENT: usize = 16;

/// The [`ThreadState::recent`] entry of a callsite: its address without the
/// bits alignment leaves at zero.
fn recent_index(id: usize) -> usize {
    (id >> 4) % RECENT
}

impl ThreadState {
    fn new() -> Self {
        Self {
            buf: Vec::with_capacity(256),
            defined: HashSet::default(),
            recent: [0; RECENT],
            thread_defined: false,
            thread: thread_number(),
            segment: u64::MAX,
        }
    }
}

/// Keys of spans: unique in the process, never 0 (which says "no span").
static NEXT_SPAN: AtomicU64 = AtomicU64::new(1);

/// Tags of layers, so that two layers writing to different journals do not
/// take each other's span definitions for their own.
static NEXT_LAYER: AtomicU64 = AtomicU64::new(1);

/// What the layer keeps in a span's extensions: its key and mark, its
/// parent's key, and its values encoded once.
struct SpanData {
    mark: Arc<SpanMark>,
    parent: u64,
    /// The span's values as event values are encoded
    /// ([`Encoder::values_only`]), copied into each definition.
    values: Vec<u8>,
}

/// A span's key and where its definition was last written: shared by its
/// extensions and by the [`ENTERED`] stacks of the threads in it, so that an
/// event in a span already defined needs no look-up in the registry.
struct SpanMark {
    key: u64,
    /// `layer tag << 56 | slot << 40 | segment` (the low 40 bits) of the
    /// last definition written; 0 for none. A producer that finds its own
    /// mark needs no definition: one is in its stream, in this segment. A
    /// span used by threads in turn is defined again at each turn, which
    /// costs bytes, never correctness.
    defined: AtomicU64,
}

/// A span this thread has entered and not left, as the layer tagged `tag`
/// saw it: the same stack as the registry's, kept by `on_enter` and
/// `on_exit`. `mark` is filled by the first event in it that looked the
/// span up; later events read the key from here.
struct Entered {
    id: u64,
    tag: u64,
    mark: Option<Arc<SpanMark>>,
}

thread_local! {
    /// The spans this thread is in, innermost last.
    static ENTERED: RefCell<Vec<Entered>> = const { RefCell::new(Vec::new()) };
    /// How many entries [`ENTERED`] holds: 0 lets an event outside every
    /// span skip the stack (a `Cell` with no destructor, so reading it
    /// needs no check of the thread-local's state).
    static ENTERED_LEN: Cell<usize> = const { Cell::new(0) };
}

/// The mark of a definition written by layer `tag` through `slot` into
/// `segment`.
fn mark(tag: u64, slot: usize, segment: u64) -> u64 {
    (tag << 56) | ((slot as u64 & 0xFFFF) << 40) | (segment & ((1 << 40) - 1))
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
/// # Spans
///
/// An event in a span is shown in the span's scope, as the fmt layer
/// prints it: `outer{a=1}:inner{b=2}: app: message`. Each span's values are
/// encoded once, when it is created (and when it records more), kept in the
/// span's extensions, and written as a span definition once per producer
/// and segment, before the first event in it; an event stores only its
/// innermost span's key. Each thread keeps the stack of spans it is in
/// (a push on enter, a pop on exit), so that an event in a span already
/// defined finds its key there without looking the span up in the
/// registry. The layer needs a subscriber that stores spans, such as
/// `tracing_subscriber::registry()`.
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
#[derive(Debug)]
pub struct BinaryLayer {
    inner: Arc<Inner>,
    /// This layer's tag in span definition marks and in [`ENTERED`]
    /// (1..=255); each clone has its own, since each may be in another
    /// subscriber, with spans of its own.
    tag: u64,
}

/// A new layer tag. Relaxed: only distinctness matters. Tags wrap after
/// 255 layers, when two layers in one thread could take each other's spans.
fn new_tag() -> u64 {
    NEXT_LAYER.fetch_add(1, Ordering::Relaxed) % 255 + 1
}

impl Clone for BinaryLayer {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            tag: new_tag(),
        }
    }
}

impl BinaryLayer {
    /// A layer writing to the journal of `writer` (and its guard).
    pub fn new(writer: &RingWriter) -> Self {
        Self {
            inner: writer.inner.clone(),
            tag: new_tag(),
        }
    }

    /// Writes the definition of `meta` through `w` unless this thread
    /// already has in this segment.
    #[inline]
    fn define_callsite(
        inner: &Inner,
        w: &mut ringlog::pipeline::PipelineWriter,
        state: &mut ThreadState,
        meta: &Metadata<'_>,
    ) -> io::Result<()> {
        let id = std::ptr::from_ref(meta) as usize;
        if state.recent[recent_index(id)] == id {
            return Ok(());
        }
        Self::define_callsite_slow(inner, w, state, meta, id)
    }

    /// [`BinaryLayer::define_callsite`] past the recent callsites.
    #[cold]
    fn define_callsite_slow(
        inner: &Inner,
        w: &mut ringlog::pipeline::PipelineWriter,
        state: &mut ThreadState,
        meta: &Metadata<'_>,
        id: usize,
    ) -> io::Result<()> {
        if state.defined.contains(&id) {
            state.recent[recent_index(id)] = id;
            return Ok(());
        }
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
            state.recent[recent_index(id)] = id;
        }
        Ok(())
    }

    /// Writes the definitions of `leaf` and its parents that this
    /// producer lacks in `segment`; returns the key events in `leaf` carry.
    fn define_spans<'a, R: LookupSpan<'a>>(
        &self,
        w: &mut ringlog::pipeline::PipelineWriter,
        state: &mut ThreadState,
        slot: usize,
        leaf: &SpanRef<'a, R>,
    ) -> io::Result<u64> {
        let inner = &*self.inner;
        let here = mark(self.tag, slot, state.segment);
        // The steady state, without walking the scope (each step of which
        // looks the span up again).
        if let Some(data) = leaf.extensions().get::<SpanData>() {
            if data.mark.defined.load(Ordering::Relaxed) == here {
                return Ok(data.mark.key);
            }
        }
        let mut leaf_key = 0;
        for span in leaf.scope() {
            let ext = span.extensions();
            let Some(data) = ext.get::<SpanData>() else {
                continue;
            };
            if leaf_key == 0 {
                leaf_key = data.mark.key;
            }
            // Relaxed: the mark only says whether this producer's stream
            // already holds the definition, and only this producer writes
            // this producer's mark; other threads' marks are never equal.
            if data.mark.defined.load(Ordering::Relaxed) == here {
                // Defined here in this segment, and so were its parents
                // (they are defined before it).
                break;
            }
            let meta = span.metadata();
            Self::define_callsite(inner, w, state, meta)?;
            let id = std::ptr::from_ref(meta) as u64;
            Encoder::span(&mut state.buf, data.mark.key, data.parent, id).raw(&data.values);
            if inner.append_to(w, &state.buf)? {
                data.mark.defined.store(here, Ordering::Relaxed);
            }
        }
        Ok(leaf_key)
    }

    /// The key of the span `event` is in (0: none), with the definitions
    /// this producer lacks written first. An event in the span this thread
    /// entered last, already defined here, is answered from [`ENTERED`]
    /// without asking the registry.
    #[inline]
    fn span_key<S>(
        &self,
        w: &mut ringlog::pipeline::PipelineWriter,
        state: &mut ThreadState,
        slot: usize,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
    ) -> io::Result<u64>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if event.is_root() {
            return Ok(0);
        }
        // The common case of logging outside any span: nothing to look up.
        if event.is_contextual() && ENTERED_LEN.try_with(Cell::get).is_ok_and(|n| n == 0) {
            return Ok(0);
        }
        self.span_key_in_span(w, state, slot, event, ctx)
    }

    /// [`BinaryLayer::span_key`] for an event that may be in a span.
    fn span_key_in_span<S>(
        &self,
        w: &mut ringlog::pipeline::PipelineWriter,
        state: &mut ThreadState,
        slot: usize,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
    ) -> io::Result<u64>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let here = mark(self.tag, slot, state.segment);
        // `None`: ask the registry; `Some(None)`: in no span of this layer.
        let innermost = |entered: &Vec<Entered>| -> Option<Option<u64>> {
            let Some(top) = entered.iter().rev().find(|e| e.tag == self.tag) else {
                return Some(None);
            };
            let mark = top.mark.as_ref()?;
            // Relaxed: see `define_spans`.
            (mark.defined.load(Ordering::Relaxed) == here).then_some(Some(mark.key))
        };
        if event.is_contextual() {
            let cached = ENTERED
                .try_with(|e| e.try_borrow().ok().and_then(|e| innermost(&e)))
                .ok()
                .flatten();
            if let Some(key) = cached {
                return Ok(key.unwrap_or(0));
            }
        }
        let Some(leaf) = ctx.event_span(event) else {
            return Ok(0);
        };
        let key = self.define_spans(w, state, slot, &leaf)?;
        if event.is_contextual() {
            let id = leaf.id().into_u64();
            let mark = leaf.extensions().get::<SpanData>().map(|d| d.mark.clone());
            let _ = ENTERED.try_with(|e| {
                if let Ok(mut e) = e.try_borrow_mut() {
                    if let Some(top) = e.iter_mut().rev().find(|e| e.tag == self.tag) {
                        if top.id == id {
                            top.mark = mark;
                        }
                    }
                }
            });
        }
        Ok(key)
    }

    /// Writes `event` through `slot`, with the definitions this thread has
    /// not yet written into the current segment.
    fn write<S>(
        &self,
        slot: usize,
        state: &mut ThreadState,
        event: &Event<'_>,
        ctx: &Context<'_, S>,
    ) -> io::Result<()>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let inner = &*self.inner;
        inner.with_writer(slot, |w| {
            let segment = w.current_segment();
            if segment != state.segment {
                state.defined.clear();
                state.recent = [0; RECENT];
                state.thread_defined = false;
                state.segment = segment;
            }
            let thread = state.thread;
            if !state.thread_defined {
                let current = std::thread::current();
                Encoder::thread(&mut state.buf, thread, current.name());
                // A definition dropped in lossy mode is written again with
                // the next event.
                state.thread_defined = inner.append_to(w, &state.buf)?;
            }
            let meta = event.metadata();
            Self::define_callsite(inner, w, state, meta)?;
            let span = self.span_key(w, state, slot, event, ctx)?;
            let id = std::ptr::from_ref(meta) as u64;
            let mut enc = Encoder::event(&mut state.buf, id, thread, span);
            event.record(&mut Recorder(&mut enc));
            inner.append_to(w, &state.buf).map(drop)
        })?
    }
}

impl<S> Layer<S> for BinaryLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<SpanData>().map(|d| d.mark.key))
            .unwrap_or(0);
        let mut ext = span.extensions_mut();
        if ext.get_mut::<SpanData>().is_some() {
            // Another BinaryLayer of this subscriber made it.
            return;
        }
        let mut values = Vec::new();
        attrs.record(&mut Recorder(&mut Encoder::values_only(&mut values)));
        ext.insert(SpanData {
            mark: Arc::new(SpanMark {
                // Relaxed: a unique number is all that is needed.
                key: NEXT_SPAN.fetch_add(1, Ordering::Relaxed),
                defined: AtomicU64::new(0),
            }),
            parent,
            values,
        });
    }

    fn on_enter(&self, id: &Id, _ctx: Context<'_, S>) {
        // No look-up here: entering and leaving stay a push and a pop.
        let _ = ENTERED.try_with(|e| {
            if let Ok(mut e) = e.try_borrow_mut() {
                e.push(Entered {
                    id: id.into_u64(),
                    tag: self.tag,
                    mark: None,
                });
                let _ = ENTERED_LEN.try_with(|n| n.set(e.len()));
            }
        });
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        let id = id.into_u64();
        let _ = ENTERED.try_with(|e| {
            if let Ok(mut e) = e.try_borrow_mut() {
                // The latest entry of the span, as the registry pops it.
                if let Some(i) = e.iter().rposition(|e| e.id == id && e.tag == self.tag) {
                    e.remove(i);
                }
                let _ = ENTERED_LEN.try_with(|n| n.set(e.len()));
            }
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut ext = span.extensions_mut();
        if let Some(data) = ext.get_mut::<SpanData>() {
            // Added after the values so far, as the fmt layer shows them.
            values.record(&mut Recorder(&mut Encoder::values_only(&mut data.values)));
            // Defined again everywhere, with the new values.
            data.mark.defined.store(0, Ordering::Relaxed);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // Errors are counted by the writer (see `Guard::io_errors`); a
        // layer has no way to return them.
        let written = with_lease(&self.inner, |lease| {
            let state = lease
                .binary
                .get_or_insert_with(|| Box::new(ThreadState::new()));
            self.write(lease.slot, state, event, &ctx)
        });
        if written.is_none() {
            // No thread-local (thread exit) or a nested event: the shared
            // slot, with its definitions, from a state of its own.
            let _ = self.write(
                self.inner.shared_slot(),
                &mut ThreadState::new(),
                event,
                &ctx,
            );
        }
    }
}
