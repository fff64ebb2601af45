//! The binary event format of [`BinaryLayer`](crate::BinaryLayer): encode
//! and decode, with no dependency on `tracing`, so a reader (`ringlog cat`)
//! can format the records without linking a subscriber.
//!
//! # Records
//!
//! Every record of the format is an ordinary journal record whose payload
//! starts with [`MAGIC`] (`F5 52 4C 42`: the first byte never occurs in
//! UTF-8, so no text line is mistaken for one), then a version byte
//! ([`VERSION`]) and a kind byte. Integers are little-endian; a string is a
//! `u16` (`u32` in field values) byte length and its UTF-8 bytes.
//!
//! - **Callsite** (kind 1): `id u64, level u8 (1 TRACE .. 5 ERROR), line u32
//!   (u32::MAX: none), name, target, file (empty: none), field count u8,
//!   field names`. Written once per callsite, per thread, per segment.
//! - **Thread** (kind 3): `number u64, name` (empty: unnamed). Written once
//!   per thread, per segment.
//! - **Event** (kind 2): `callsite id u64, thread number u64, span key
//!   u64` (0: in no span; version 1 records have no span key), then one
//!   value per recorded field: `field index u8, tag u8, value` with tags
//!   1 `i64`, 2 `u64`, 3 `f64` (8 bytes each), 4 `true`, 5 `false`, 6 `str`,
//!   7 `Debug` output as text (`u32` length and bytes each), 8 `i128`,
//!   9 `u128` (16 bytes each). The event's time is the record's timestamp.
//! - **Span** (kind 4, version 2): `span key u64, parent key u64 (0: a
//!   root span), callsite id u64`, then the span's values as in an event.
//!   Keys are unique in a process; the span's callsite (its name and field
//!   names) is a callsite definition like an event's. An event names only
//!   its innermost span; the reader follows the parents to print the
//!   whole scope, `outer{a=1}:inner{b=2}:`, as the fmt layer does. Written
//!   once per span, per producer, per segment, and again after the span
//!   records more values (the latest definition read wins).
//!
//! Version 2 added span keys and span definitions; version 1 records (no
//! span key in events, no span kind) still decode.
//!
//! # Where the definitions are
//!
//! A thread writes the definitions its events need through its own journal
//! producer before the first event that needs them, so in file order a
//! definition always comes before the events of that producer that use it,
//! whatever the other threads do; the latest definition of an id read wins
//! (ids are callsite addresses, which a later run may reuse). Reading a
//! journal from the start, or one producer of it, resolves every event.
//!
//! Definitions are written again after the journal starts a new segment
//! (the writer learns of it from the pipeline, at most one batch late), so
//! that segments left after retention deleted older ones are still
//! readable. The events of that one batch may lean on definitions in the
//! segment before; if that segment is gone, or a reader starts in the
//! middle (`--since`), such an event is shown with its values by field
//! number and its callsite id instead of the names: never lost, never a
//! panic. A record that does not decode is shown in hex.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

/// First bytes of every record of the format.
pub const MAGIC: [u8; 4] = [0xF5, b'R', b'L', b'B'];
/// The format's version, after [`MAGIC`].
pub const VERSION: u8 = 2;
/// The first version, whose events carry no span key: still decoded.
const VERSION_1: u8 = 1;

/// Record kinds (the byte after the version).
pub(crate) const KIND_CALLSITE: u8 = 1;
pub(crate) const KIND_EVENT: u8 = 2;
pub(crate) const KIND_THREAD: u8 = 3;
pub(crate) const KIND_SPAN: u8 = 4;

/// The deepest span scope a reader follows (a guard against a parent chain
/// that loops, in damaged or crafted records).
const MAX_SPAN_DEPTH: usize = 64;

pub(crate) const TAG_I64: u8 = 1;
pub(crate) const TAG_U64: u8 = 2;
pub(crate) const TAG_F64: u8 = 3;
pub(crate) const TAG_TRUE: u8 = 4;
pub(crate) const TAG_FALSE: u8 = 5;
pub(crate) const TAG_STR: u8 = 6;
pub(crate) const TAG_DEBUG: u8 = 7;
pub(crate) const TAG_I128: u8 = 8;
pub(crate) const TAG_U128: u8 = 9;

/// A line number that says "none".
pub(crate) const NO_LINE: u32 = u32::MAX;

/// Whether `payload` claims to be a record of this format (it may still
/// fail to decode).
pub fn is_binary(payload: &[u8]) -> bool {
    payload.starts_with(&MAGIC)
}

/// Why a record of the format did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload does not start with [`MAGIC`].
    #[error("not a binary event record (no magic prefix)")]
    NotBinary,
    /// A version this reader does not know.
    #[error("unknown binary record version {0}")]
    Version(u8),
    /// A kind this reader does not know.
    #[error("unknown binary record kind {0}")]
    Kind(u8),
    /// The record ends before the field it describes.
    #[error("binary record truncated at byte {at} (reading {what})")]
    Truncated {
        /// Offset in the payload.
        at: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A string that is not UTF-8.
    #[error("binary record holds a string that is not UTF-8 at byte {0}")]
    NotUtf8(usize),
    /// A value tag this reader does not know.
    #[error("unknown value tag {tag} at byte {at}")]
    Tag {
        /// The tag.
        tag: u8,
        /// Offset in the payload.
        at: usize,
    },
    /// A level outside 1..=5.
    #[error("unknown level {0}")]
    Level(u8),
    /// Bytes left over after the record's last field.
    #[error("{0} bytes after the end of a binary record")]
    Trailing(usize),
}

/// An event's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `TRACE`.
    Trace,
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARN`.
    Warn,
    /// `ERROR`.
    Error,
}

impl Level {
    /// The byte the format stores.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Trace => 1,
            Self::Debug => 2,
            Self::Info => 3,
            Self::Warn => 4,
            Self::Error => 5,
        }
    }

    fn from_byte(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            1 => Self::Trace,
            2 => Self::Debug,
            3 => Self::Info,
            4 => Self::Warn,
            5 => Self::Error,
            _ => return Err(DecodeError::Level(b)),
        })
    }

    /// The name as the fmt layer prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "TRACE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
        }
    }
}

/// A callsite definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callsite<'a> {
    /// The id events refer to it by.
    pub id: u64,
    /// The level.
    pub level: Level,
    /// The callsite's name (`event src/main.rs:10` for events).
    pub name: &'a str,
    /// The target (the module path, unless set).
    pub target: &'a str,
    /// Source file, if known.
    pub file: Option<&'a str>,
    /// Source line, if known.
    pub line: Option<u32>,
    /// The names of the fields, by index.
    pub fields: Vec<&'a str>,
}

/// One field value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// A string (printed quoted, as the fmt layer prints `&str` fields).
    Str(&'a str),
    /// `Debug` output (printed as is).
    Debug(&'a str),
    /// A 128-bit signed integer.
    I128(i128),
    /// A 128-bit unsigned integer.
    U128(u128),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::I64(v) => write!(f, "{v}"),
            Self::U64(v) => write!(f, "{v}"),
            Self::F64(v) => write!(f, "{v}"),
            Self::Bool(v) => write!(f, "{v}"),
            Self::Str(v) => write!(f, "{v:?}"),
            Self::Debug(v) => f.write_str(v),
            Self::I128(v) => write!(f, "{v}"),
            Self::U128(v) => write!(f, "{v}"),
        }
    }
}

/// An event record: its callsite, its thread, its span and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord<'a> {
    /// The callsite id.
    pub callsite: u64,
    /// The thread number.
    pub thread: u64,
    /// The key of the innermost span the event is in (0: none).
    pub span: u64,
    /// `(field index, value)`, in the order recorded.
    pub values: Vec<(u8, Value<'a>)>,
}

/// A span definition: what the events in the span print before their
/// target, `name{fields}:`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord<'a> {
    /// The key events and child spans refer to it by (never 0).
    pub key: u64,
    /// The parent span's key (0: a root span).
    pub parent: u64,
    /// The span's callsite id (its name and field names).
    pub callsite: u64,
    /// `(field index, value)`, in the order recorded.
    pub values: Vec<(u8, Value<'a>)>,
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded<'a> {
    /// A callsite definition.
    Callsite(Callsite<'a>),
    /// A thread definition: its number and name (`None`: unnamed).
    Thread {
        /// The number events refer to it by.
        number: u64,
        /// The thread's name.
        name: Option<&'a str>,
    },
    /// An event.
    Event(EventRecord<'a>),
    /// A span definition.
    Span(SpanRecord<'a>),
}

/// Reads a payload front to back, never past its end.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(DecodeError::Truncated { at: self.at, what })?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn str_of(&mut self, n: usize, what: &'static str) -> Result<&'a str, DecodeError> {
        let at = self.at;
        let s = self.take(n, what)?;
        std::str::from_utf8(s).map_err(|_| DecodeError::NotUtf8(at))
    }

    fn str16(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let n = u16::from_le_bytes(self.array(what)?);
        self.str_of(usize::from(n), what)
    }

    fn str32(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let n = u32::from_le_bytes(self.array(what)?);
        self.str_of(n as usize, what)
    }

    fn rest(&self) -> usize {
        self.b.len() - self.at
    }

    /// The values up to the end of the record.
    fn values(&mut self) -> Result<Vec<(u8, Value<'a>)>, DecodeError> {
        let mut values = Vec::new();
        while self.rest() > 0 {
            let field = self.u8("field index")?;
            let at = self.at;
            let value = match self.u8("value tag")? {
                TAG_I64 => Value::I64(i64::from_le_bytes(self.array("i64")?)),
                TAG_U64 => Value::U64(self.u64("u64")?),
                TAG_F64 => Value::F64(f64::from_le_bytes(self.array("f64")?)),
                TAG_TRUE => Value::Bool(true),
                TAG_FALSE => Value::Bool(false),
                TAG_STR => Value::Str(self.str32("str")?),
                TAG_DEBUG => Value::Debug(self.str32("debug")?),
                TAG_I128 => Value::I128(i128::from_le_bytes(self.array("i128")?)),
                TAG_U128 => Value::U128(u128::from_le_bytes(self.array("u128")?)),
                tag => return Err(DecodeError::Tag { tag, at }),
            };
            values.push((field, value));
        }
        Ok(values)
    }
}

/// Decodes one record of the format.
///
/// # Errors
///
/// [`DecodeError`] saying what is wrong and where; never panics, whatever
/// the bytes.
pub fn decode(payload: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    if !is_binary(payload) {
        return Err(DecodeError::NotBinary);
    }
    let mut c = Cursor {
        b: payload,
        at: MAGIC.len(),
    };
    let version = c.u8("version")?;
    if version != VERSION && version != VERSION_1 {
        return Err(DecodeError::Version(version));
    }
    let decoded = match c.u8("kind")? {
        KIND_CALLSITE => {
            let id = c.u64("callsite id")?;
            let level = Level::from_byte(c.u8("level")?)?;
            let line = u32::from_le_bytes(c.array("line")?);
            let name = c.str16("name")?;
            let target = c.str16("target")?;
            let file = c.str16("file")?;
            let n = c.u8("field count")?;
            let fields = (0..n)
                .map(|_| c.str16("field name"))
                .collect::<Result<_, _>>()?;
            Decoded::Callsite(Callsite {
                id,
                level,
                name,
                target,
                file: (!file.is_empty()).then_some(file),
                line: (line != NO_LINE).then_some(line),
                fields,
            })
        }
        KIND_THREAD => {
            let number = c.u64("thread number")?;
            let name = c.str16("thread name")?;
            Decoded::Thread {
                number,
                name: (!name.is_empty()).then_some(name),
            }
        }
        KIND_EVENT => {
            let callsite = c.u64("callsite id")?;
            let thread = c.u64("thread number")?;
            let span = if version == VERSION_1 {
                0
            } else {
                c.u64("span key")?
            };
            Decoded::Event(EventRecord {
                callsite,
                thread,
                span,
                values: c.values()?,
            })
        }
        KIND_SPAN if version != VERSION_1 => {
            let key = c.u64("span key")?;
            let parent = c.u64("parent span key")?;
            let callsite = c.u64("callsite id")?;
            Decoded::Span(SpanRecord {
                key,
                parent,
                callsite,
                values: c.values()?,
            })
        }
        kind => return Err(DecodeError::Kind(kind)),
    };
    match c.rest() {
        0 => Ok(decoded),
        n => Err(DecodeError::Trailing(n)),
    }
}

/// Appends records of the format to a buffer (the writing side; used by
/// [`BinaryLayer`](crate::BinaryLayer), public for tests and other
/// writers). Nothing here allocates once the buffer has grown.
#[derive(Debug)]
pub struct Encoder<'a> {
    buf: &'a mut Vec<u8>,
}

fn put_str16(buf: &mut Vec<u8>, s: &str) {
    // Longer strings are cut at a character boundary.
    let mut n = s.len().min(usize::from(u16::MAX));
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    buf.extend_from_slice(&(n as u16).to_le_bytes());
    buf.extend_from_slice(&s.as_bytes()[..n]);
}

fn header(buf: &mut Vec<u8>, kind: u8) {
    buf.clear();
    buf.extend_from_slice(&MAGIC);
    buf.push(VERSION);
    buf.push(kind);
}

/// Writes `fmt::Write` output into a byte buffer.
struct Bytes<'a>(&'a mut Vec<u8>);

impl fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl<'a> Encoder<'a> {
    /// Clears `buf` and starts an event record in it, in the span `span`
    /// (its key, 0: none); add values with the other methods.
    pub fn event(buf: &'a mut Vec<u8>, callsite: u64, thread: u64, span: u64) -> Self {
        // One copy of a head built in registers, not six appends that each
        // check the capacity.
        let mut head = [0u8; 30];
        head[..4].copy_from_slice(&MAGIC);
        head[4] = VERSION;
        head[5] = KIND_EVENT;
        head[6..14].copy_from_slice(&callsite.to_le_bytes());
        head[14..22].copy_from_slice(&thread.to_le_bytes());
        head[22..30].copy_from_slice(&span.to_le_bytes());
        buf.clear();
        buf.extend_from_slice(&head);
        Self { buf }
    }

    /// Clears `buf` and writes a span definition's head into it: the
    /// values follow, either added with the other methods or copied from
    /// [`Encoder::values_only`] output with [`Encoder::raw`].
    pub fn span(buf: &'a mut Vec<u8>, key: u64, parent: u64, callsite: u64) -> Self {
        header(buf, KIND_SPAN);
        buf.extend_from_slice(&key.to_le_bytes());
        buf.extend_from_slice(&parent.to_le_bytes());
        buf.extend_from_slice(&callsite.to_le_bytes());
        Self { buf }
    }

    /// An encoder that appends bare values to `buf` (no header): a span's
    /// values, kept to be copied into its definitions.
    pub fn values_only(buf: &'a mut Vec<u8>) -> Self {
        Self { buf }
    }

    /// Appends bytes as they are: values encoded before, by
    /// [`Encoder::values_only`].
    pub fn raw(&mut self, values: &[u8]) {
        self.buf.extend_from_slice(values);
    }

    /// Writes a callsite definition into `buf` (cleared first). Names are
    /// cut at 65535 bytes, and fields after the 255th are left out.
    pub fn callsite(buf: &mut Vec<u8>, def: &Callsite<'_>) {
        header(buf, KIND_CALLSITE);
        buf.extend_from_slice(&def.id.to_le_bytes());
        buf.push(def.level.to_byte());
        buf.extend_from_slice(&def.line.unwrap_or(NO_LINE).to_le_bytes());
        put_str16(buf, def.name);
        put_str16(buf, def.target);
        put_str16(buf, def.file.unwrap_or(""));
        let n = def.fields.len().min(255);
        buf.push(n as u8);
        for f in &def.fields[..n] {
            put_str16(buf, f);
        }
    }

    /// Writes a thread definition into `buf` (cleared first).
    pub fn thread(buf: &mut Vec<u8>, number: u64, name: Option<&str>) {
        header(buf, KIND_THREAD);
        buf.extend_from_slice(&number.to_le_bytes());
        put_str16(buf, name.unwrap_or(""));
    }

    fn tag(&mut self, field: u8, tag: u8) {
        self.buf.push(field);
        self.buf.push(tag);
    }

    /// A field, its tag and an 8-byte value, in one append.
    fn word(&mut self, field: u8, tag: u8, v: [u8; 8]) {
        let mut b = [0u8; 10];
        b[0] = field;
        b[1] = tag;
        b[2..].copy_from_slice(&v);
        self.buf.extend_from_slice(&b);
    }

    /// A field, its tag and a 16-byte value, in one append.
    fn wide(&mut self, field: u8, tag: u8, v: [u8; 16]) {
        let mut b = [0u8; 18];
        b[0] = field;
        b[1] = tag;
        b[2..].copy_from_slice(&v);
        self.buf.extend_from_slice(&b);
    }

    /// Adds a value.
    #[inline]
    pub fn value(&mut self, field: u8, value: Value<'_>) {
        match value {
            Value::I64(v) => self.word(field, TAG_I64, v.to_le_bytes()),
            Value::U64(v) => self.word(field, TAG_U64, v.to_le_bytes()),
            Value::F64(v) => self.word(field, TAG_F64, v.to_le_bytes()),
            Value::Bool(v) => self.tag(field, if v { TAG_TRUE } else { TAG_FALSE }),
            Value::Str(s) => self.text(field, TAG_STR, s),
            Value::Debug(s) => self.text(field, TAG_DEBUG, s),
            Value::I128(v) => self.wide(field, TAG_I128, v.to_le_bytes()),
            Value::U128(v) => self.wide(field, TAG_U128, v.to_le_bytes()),
        }
    }

    fn text(&mut self, field: u8, tag: u8, s: &str) {
        let n = u32::try_from(s.len()).unwrap_or(u32::MAX);
        let mut head = [0u8; 6];
        head[0] = field;
        head[1] = tag;
        head[2..].copy_from_slice(&n.to_le_bytes());
        self.buf.reserve(6 + n as usize);
        self.buf.extend_from_slice(&head);
        self.buf.extend_from_slice(&s.as_bytes()[..n as usize]);
    }

    /// Adds a value's `Debug` output, formatted straight into the buffer.
    pub fn debug(&mut self, field: u8, value: &dyn fmt::Debug) {
        let at = self.buf.len() + 2;
        self.buf.extend_from_slice(&[field, TAG_DEBUG, 0, 0, 0, 0]);
        // Formatting into a Vec cannot fail, except through a Debug impl
        // that returns an error; what it wrote until then is kept.
        let _ = write!(Bytes(self.buf), "{value:?}");
        let n = u32::try_from(self.buf.len() - at - 4).unwrap_or(u32::MAX);
        self.buf[at..at + 4].copy_from_slice(&n.to_le_bytes());
    }
}

/// An owned callsite definition, as a reader keeps it.
#[derive(Debug, Clone)]
struct KnownCallsite {
    level: Level,
    name: String,
    target: String,
    fields: Vec<String>,
}

/// A span as a reader keeps it: its parent, and its `name{fields}` as the
/// fmt layer prints it, formatted once when the definition is read.
#[derive(Debug, Clone)]
struct KnownSpan {
    parent: u64,
    text: String,
}

/// What [`TextDecoder::show`] made of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Not a record of the format: nothing was written.
    NotBinary,
    /// A definition, remembered for the events after it: nothing was
    /// written.
    Definition,
    /// An event (or an undecodable record, in hex): one line was written.
    Line,
}

/// Formats the records of a journal read in order as the fmt layer would
/// have printed them: `2026-12-01T10:00:00.123456Z  INFO worker-1 app:
/// request served worker=1 latency_us=12`.
///
/// Feed it every record (it remembers the definitions); events whose
/// callsite was never seen are shown with `callsite=0x…` and their values
/// by field number, records that do not decode as `binary record
/// (error): hex`.
///
/// ```
/// use ringlog_tracing::binary::{Callsite, Encoder, Level, Shown, TextDecoder, Value};
/// let mut buf = Vec::new();
/// let mut d = TextDecoder::default();
/// let mut line = String::new();
/// let def = Callsite {
///     id: 7, level: Level::Info, name: "event", target: "app", file: None, line: None,
///     fields: vec!["message", "n"],
/// };
/// Encoder::callsite(&mut buf, &def);
/// assert_eq!(d.show(0, &buf, &mut line), Shown::Definition);
/// let mut e = Encoder::event(&mut buf, 7, 1, 0);
/// e.debug(0, &format_args!("served"));
/// e.value(1, Value::U64(3));
/// assert_eq!(d.show(0, &buf, &mut line), Shown::Line);
/// assert_eq!(line, "1970-01-01T00:00:00.000000Z  INFO thread-1 app: served n=3");
/// ```
#[derive(Debug, Default, Clone)]
pub struct TextDecoder {
    callsites: HashMap<u64, KnownCallsite>,
    threads: HashMap<u64, Option<String>>,
    spans: HashMap<u64, KnownSpan>,
}

impl TextDecoder {
    /// Looks at one record with its timestamp (Unix ns). Returns what it
    /// was, and for [`Shown::Line`] writes the line (without `\n`) to
    /// `out`, which is cleared first in that case.
    pub fn show(&mut self, timestamp: u64, payload: &[u8], out: &mut String) -> Shown {
        if !is_binary(payload) {
            return Shown::NotBinary;
        }
        match decode(payload) {
            Ok(Decoded::Callsite(c)) => {
                self.callsites.insert(
                    c.id,
                    KnownCallsite {
                        level: c.level,
                        name: c.name.to_owned(),
                        target: c.target.to_owned(),
                        fields: c.fields.iter().map(|&f| f.to_owned()).collect(),
                    },
                );
                Shown::Definition
            }
            Ok(Decoded::Thread { number, name }) => {
                self.threads.insert(number, name.map(str::to_owned));
                Shown::Definition
            }
            Ok(Decoded::Span(span)) => {
                let mut text = String::new();
                let _ = self.write_span(&span, &mut text);
                self.spans.insert(
                    span.key,
                    KnownSpan {
                        parent: span.parent,
                        text,
                    },
                );
                Shown::Definition
            }
            Ok(Decoded::Event(e)) => {
                out.clear();
                // Writing into a String cannot fail.
                let _ = self.write_event(timestamp, &e, out);
                Shown::Line
            }
            Err(err) => {
                out.clear();
                let _ = write!(out, "binary record ({err}):");
                for b in payload {
                    let _ = write!(out, " {b:02x}");
                }
                Shown::Line
            }
        }
    }

    /// Remembers `payload` if it is a definition (and says so), without
    /// formatting anything: for records a reader skips (filtered out) but
    /// whose definitions later events need.
    pub fn learn(&mut self, payload: &[u8]) -> bool {
        if !is_binary(payload) || payload.get(MAGIC.len() + 1) == Some(&KIND_EVENT) {
            return false;
        }
        self.show(0, payload, &mut String::new()) == Shown::Definition
    }

    /// `name{a=1 b=2}` (`name` alone without values), as the fmt layer
    /// prints a span in an event's scope.
    fn write_span(&self, span: &SpanRecord<'_>, out: &mut String) -> fmt::Result {
        let known = self.callsites.get(&span.callsite);
        match known {
            Some(c) => out.push_str(&c.name),
            None => write!(out, "callsite={:#x}", span.callsite)?,
        }
        if !span.values.is_empty() {
            out.push('{');
            let mut fields = String::new();
            write_values(known, &span.values, &mut fields)?;
            out.push_str(fields.strip_prefix(' ').unwrap_or(&fields));
            out.push('}');
        }
        Ok(())
    }

    /// The scope of an event in span `leaf`, from the root, as the fmt
    /// layer prints it: `outer{a=1}:inner:` and a space; nothing for no
    /// span. A span whose definition was not read is shown as `span#KEY`
    /// (and ends the scope: its parents are unknown).
    fn write_scope(&self, leaf: u64, out: &mut String) -> fmt::Result {
        if leaf == 0 {
            return Ok(());
        }
        let mut chain = [0u64; MAX_SPAN_DEPTH];
        let mut n = 0;
        let mut key = leaf;
        while key != 0 && n < MAX_SPAN_DEPTH {
            chain[n] = key;
            n += 1;
            key = self.spans.get(&key).map_or(0, |s| s.parent);
        }
        for &key in chain[..n].iter().rev() {
            match self.spans.get(&key) {
                Some(s) => out.push_str(&s.text),
                None => write!(out, "span#{key}")?,
            }
            out.push(':');
        }
        out.push(' ');
        Ok(())
    }

    fn write_event(&self, timestamp: u64, e: &EventRecord<'_>, out: &mut String) -> fmt::Result {
        ringlog::journal::write_utc_timestamp(out, timestamp, 6)?;
        let known = self.callsites.get(&e.callsite);
        match known {
            Some(c) => write!(out, " {:>5}", c.level.as_str())?,
            None => out.push_str("     ?"),
        }
        match self.threads.get(&e.thread) {
            Some(Some(name)) => write!(out, " {name} ")?,
            _ => write!(out, " thread-{} ", e.thread)?,
        }
        self.write_scope(e.span, out)?;
        match known {
            Some(c) => write!(out, "{}:", c.target)?,
            None => write!(out, "callsite={:#x}:", e.callsite)?,
        }
        write_values(known, &e.values, out)
    }
}

/// ` message a=1 b="x"`: the message first, without its name, as the fmt
/// layer does, then the other values; each after a space. Values of a
/// callsite not read are shown by field number.
fn write_values(
    known: Option<&KnownCallsite>,
    values: &[(u8, Value<'_>)],
    out: &mut String,
) -> fmt::Result {
    let name_of = |i: u8| -> Option<&str> {
        known
            .and_then(|c| c.fields.get(usize::from(i)))
            .map(String::as_str)
    };
    let message = values
        .iter()
        .position(|&(i, _)| name_of(i) == Some("message"));
    if let Some(m) = message {
        match values[m].1 {
            Value::Str(s) => write!(out, " {s}")?,
            v => write!(out, " {v}")?,
        }
    }
    for (k, &(i, v)) in values.iter().enumerate() {
        if Some(k) == message {
            continue;
        }
        match name_of(i) {
            Some(name) => write!(out, " {}={v}", name.strip_prefix("r#").unwrap_or(name))?,
            None => write!(out, " field#{i}={v}")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(id: u64) -> Callsite<'static> {
        Callsite {
            id,
            level: Level::Warn,
            name: "event src/main.rs:3",
            target: "app::db",
            file: Some("src/main.rs"),
            line: Some(3),
            fields: vec!["message", "a", "b", "c", "d", "e", "f", "g", "h", "r#type"],
        }
    }

    #[test]
    fn every_value_type_round_trips() {
        let mut buf = Vec::new();
        Encoder::callsite(&mut buf, &def(42));
        assert_eq!(decode(&buf), Ok(Decoded::Callsite(def(42))));
        Encoder::thread(&mut buf, 9, Some("worker-9"));
        assert_eq!(
            decode(&buf),
            Ok(Decoded::Thread {
                number: 9,
                name: Some("worker-9")
            })
        );
        Encoder::thread(&mut buf, 10, None);
        assert_eq!(
            decode(&buf),
            Ok(Decoded::Thread {
                number: 10,
                name: None
            })
        );
        let values = [
            Value::I64(i64::MIN),
            Value::U64(u64::MAX),
            Value::F64(-1.5),
            Value::Bool(true),
            Value::Bool(false),
            Value::Str("héllo \"x\""),
            Value::Debug("Some(3)"),
            Value::I128(i128::MIN),
            Value::U128(u128::MAX),
        ];
        let mut e = Encoder::event(&mut buf, 42, 9, 0);
        for (i, v) in values.iter().enumerate() {
            e.value(i as u8 + 1, *v);
        }
        e.debug(0, &format_args!("done {}", 7));
        let Ok(Decoded::Event(got)) = decode(&buf) else {
            panic!("{:?}", decode(&buf));
        };
        assert_eq!((got.callsite, got.thread), (42, 9));
        let mut want: Vec<(u8, Value<'_>)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u8 + 1, *v))
            .collect();
        want.push((0, Value::Debug("done 7")));
        assert_eq!(got.values, want);
    }

    #[test]
    fn events_format_like_the_fmt_layer() {
        let mut buf = Vec::new();
        let mut d = TextDecoder::default();
        let mut out = String::new();
        Encoder::callsite(&mut buf, &def(1));
        assert_eq!(d.show(0, &buf, &mut out), Shown::Definition);
        Encoder::thread(&mut buf, 2, Some("worker-2"));
        assert_eq!(d.show(0, &buf, &mut out), Shown::Definition);
        let mut e = Encoder::event(&mut buf, 1, 2, 0);
        e.value(1, Value::U64(5));
        e.debug(0, &format_args!("slow query"));
        e.value(4, Value::Str("users"));
        e.value(9, Value::Bool(true));
        assert_eq!(
            d.show(1_796_119_200_123_456_789, &buf, &mut out),
            Shown::Line
        );
        assert_eq!(
            out,
            "2026-12-01T10:00:00.123456Z  WARN worker-2 app::db: slow query a=5 d=\"users\" type=true"
        );
        // An event whose definitions were never read.
        let mut e = Encoder::event(&mut buf, 0xbeef, 3, 0);
        e.value(2, Value::I64(-1));
        d.show(0, &buf, &mut out);
        assert_eq!(
            out,
            "1970-01-01T00:00:00.000000Z     ? thread-3 callsite=0xbeef: field#2=-1"
        );
        assert_eq!(d.show(0, b"plain text", &mut out), Shown::NotBinary);
    }

    #[test]
    fn garbled_records_never_panic_and_show_in_hex() {
        let mut buf = Vec::new();
        let mut d = TextDecoder::default();
        let mut out = String::new();
        let mut e = Encoder::event(&mut buf, 1, 2, 0);
        e.value(1, Value::Str("abc"));
        e.value(2, Value::F64(2.0));
        let good = buf.clone();
        let Ok(Decoded::Event(full)) = decode(&good) else {
            panic!("{:?}", decode(&good));
        };
        // Every prefix, and every byte flipped in every way, of a valid
        // record: decoding answers, and a line is always shown. A prefix
        // that ends between two values is an event with fewer values.
        for n in MAGIC.len()..good.len() {
            assert_eq!(d.show(0, &good[..n], &mut out), Shown::Line);
            match decode(&good[..n]) {
                Ok(Decoded::Event(e)) => {
                    assert!(full.values.starts_with(&e.values), "prefix {n}");
                    assert!(!out.starts_with("binary record ("), "{out}");
                }
                Ok(other) => panic!("prefix {n}: {other:?}"),
                Err(_) => assert!(out.starts_with("binary record ("), "{out}"),
            }
        }
        assert!(decode(&good[..good.len() - 1]).is_err());
        for i in MAGIC.len()..good.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= x;
                let _ = decode(&bad);
                assert_ne!(d.show(0, &bad, &mut out), Shown::NotBinary);
            }
        }
        let mut v3 = good.clone();
        v3[4] = 3;
        assert_eq!(decode(&v3), Err(DecodeError::Version(3)));
        d.show(0, &v3, &mut out);
        assert_eq!(
            out,
            format!(
                "binary record (unknown binary record version 3): {}",
                v3.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        );
        let mut trailing = good.clone();
        trailing.push(1);
        assert!(decode(&trailing).is_err());
        let mut bad_str = good.clone();
        // The first value's string bytes: field, tag, u32 length, then text.
        let at = MAGIC.len() + 2 + 24 + 6;
        bad_str[at] = 0xff;
        assert_eq!(decode(&bad_str), Err(DecodeError::NotUtf8(at)));
    }

    /// A callsite, a thread, two nested spans and an event in the inner
    /// one, as a layer writes them.
    fn span_records() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let span_def = |id: u64, name: &'static str, fields: Vec<&'static str>| Callsite {
            id,
            level: Level::Info,
            name,
            target: "app",
            file: None,
            line: None,
            fields,
        };
        Encoder::callsite(&mut buf, &span_def(10, "conn", vec!["peer", "tls"]));
        out.push(buf.clone());
        Encoder::callsite(&mut buf, &span_def(11, "request", vec!["id"]));
        out.push(buf.clone());
        Encoder::callsite(&mut buf, &def(1));
        out.push(buf.clone());
        Encoder::thread(&mut buf, 2, Some("worker-2"));
        out.push(buf.clone());
        let mut values = Vec::new();
        let mut v = Encoder::values_only(&mut values);
        v.value(0, Value::Str("10.0.0.1"));
        v.value(1, Value::Bool(true));
        Encoder::span(&mut buf, 100, 0, 10).raw(&values);
        out.push(buf.clone());
        Encoder::span(&mut buf, 101, 100, 11).value(0, Value::U64(7));
        out.push(buf.clone());
        let mut e = Encoder::event(&mut buf, 1, 2, 101);
        e.debug(0, &format_args!("served"));
        e.value(1, Value::U64(5));
        out.push(buf.clone());
        out
    }

    #[test]
    fn events_in_spans_show_their_scope_like_the_fmt_layer() {
        let mut d = TextDecoder::default();
        let mut out = String::new();
        let records = span_records();
        let (defs, event) = records.split_at(records.len() - 1);
        for r in defs {
            assert_eq!(d.show(0, r, &mut out), Shown::Definition);
        }
        assert_eq!(
            decode(&records[5]),
            Ok(Decoded::Span(SpanRecord {
                key: 101,
                parent: 100,
                callsite: 11,
                values: vec![(0, Value::U64(7))],
            }))
        );
        assert_eq!(d.show(0, &event[0], &mut out), Shown::Line);
        assert_eq!(
            out,
            "1970-01-01T00:00:00.000000Z  WARN worker-2 conn{peer=\"10.0.0.1\" tls=true}:request{id=7}: app::db: served a=5"
        );
        // A span with no values is its name alone; one never defined is
        // shown by key, and ends the scope.
        let mut buf = Vec::new();
        Encoder::span(&mut buf, 102, 555, 11);
        d.show(0, &buf, &mut out);
        Encoder::event(&mut buf, 1, 2, 102);
        d.show(0, &buf, &mut out);
        assert_eq!(
            out,
            "1970-01-01T00:00:00.000000Z  WARN worker-2 span#555:request: app::db:"
        );
        // A parent chain that loops (damaged records) is cut, not followed
        // forever.
        Encoder::span(&mut buf, 103, 103, 11);
        d.show(0, &buf, &mut out);
        Encoder::event(&mut buf, 1, 2, 103);
        d.show(0, &buf, &mut out);
        assert_eq!(out.matches("request:").count(), MAX_SPAN_DEPTH);
    }

    #[test]
    fn version_1_records_still_decode() {
        // An event as version 1 wrote it: no span key.
        let mut v1 = MAGIC.to_vec();
        v1.extend_from_slice(&[1, KIND_EVENT]);
        v1.extend_from_slice(&1u64.to_le_bytes());
        v1.extend_from_slice(&2u64.to_le_bytes());
        v1.extend_from_slice(&[1, TAG_U64]);
        v1.extend_from_slice(&5u64.to_le_bytes());
        assert_eq!(
            decode(&v1),
            Ok(Decoded::Event(EventRecord {
                callsite: 1,
                thread: 2,
                span: 0,
                values: vec![(1, Value::U64(5))],
            }))
        );
        let mut d = TextDecoder::default();
        let mut out = String::new();
        let mut buf = Vec::new();
        Encoder::callsite(&mut buf, &def(1));
        buf[4] = 1;
        assert_eq!(d.show(0, &buf, &mut out), Shown::Definition);
        assert_eq!(d.show(0, &v1, &mut out), Shown::Line);
        assert_eq!(
            out,
            "1970-01-01T00:00:00.000000Z  WARN thread-2 app::db: a=5"
        );
        // Version 1 had no span records.
        Encoder::span(&mut buf, 1, 0, 1);
        buf[4] = 1;
        assert_eq!(decode(&buf), Err(DecodeError::Kind(KIND_SPAN)));
    }

    #[test]
    fn every_prefix_and_bit_flip_of_span_records_decodes_or_shows_hex() {
        let records = span_records();
        for (k, good) in records.iter().enumerate() {
            let ok = decode(good).unwrap_or_else(|e| panic!("record {k}: {e}"));
            for n in 0..good.len() {
                // A fresh decoder per record, with the definitions before
                // it, so that what a damaged one defines stays local.
                let mut d = TextDecoder::default();
                let mut out = String::new();
                for r in &records[..k] {
                    d.show(0, r, &mut out);
                }
                let shown = d.show(0, &good[..n], &mut out);
                match decode(&good[..n]) {
                    Err(_) if n >= MAGIC.len() => {
                        assert_eq!(shown, Shown::Line, "record {k} prefix {n}");
                        assert!(out.starts_with("binary record ("), "{out}");
                    }
                    Err(e) => {
                        assert_eq!(e, DecodeError::NotBinary);
                        assert_eq!(shown, Shown::NotBinary);
                    }
                    // A prefix that ends between two values is the same
                    // record with fewer of them.
                    Ok(Decoded::Event(e)) => {
                        let Decoded::Event(full) = &ok else {
                            panic!("record {k} prefix {n}: {e:?}")
                        };
                        assert!(full.values.starts_with(&e.values));
                        assert_eq!(shown, Shown::Line);
                    }
                    Ok(Decoded::Span(s)) => {
                        let Decoded::Span(full) = &ok else {
                            panic!("record {k} prefix {n}: {s:?}")
                        };
                        assert!(full.values.starts_with(&s.values));
                        assert_eq!(shown, Shown::Definition);
                    }
                    Ok(other) => panic!("record {k} prefix {n}: {other:?}"),
                }
            }
            for i in MAGIC.len()..good.len() {
                for x in [0x01u8, 0x02, 0x10, 0x80, 0xff] {
                    let mut bad = good.clone();
                    bad[i] ^= x;
                    let mut d = TextDecoder::default();
                    let mut out = String::new();
                    for r in &records[..k] {
                        d.show(0, r, &mut out);
                    }
                    let shown = d.show(0, &bad, &mut out);
                    assert_ne!(shown, Shown::NotBinary);
                    if decode(&bad).is_err() {
                        assert_eq!(shown, Shown::Line);
                        assert!(out.starts_with("binary record ("), "{out}");
                    }
                    // The event after it still shows, whatever the damaged
                    // record defined.
                    let last = records.last().unwrap();
                    assert_eq!(d.show(0, last, &mut out), Shown::Line);
                }
            }
        }
    }
}
