//! What `tail` (and `cat`) select and how they print it: the filter options,
//! their parsing, and the output formats.
//!
//! Time bounds apply to the records' timestamps, which the pipeline writes
//! as nanoseconds since the Unix epoch. Selection by time, producer and
//! sequence goes to the library's [`RecordFilter`], which seeks through the
//! segments' index files where they are valid; `--grep` is applied here.

use std::cell::RefCell;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use ringlog::journal::{FollowOptions, Gap, IndexUse, RecordFilter, RecordRef};
use ringlog_tracing::binary::{self, Shown, TextDecoder};

use crate::encode::{
    base64_into, csv_quoted_into, escape_into, hex_into, json_text_into, push_u64, TimeCache,
};
use crate::units::parse_duration;

/// Options that select records and say how to print them.
#[derive(Debug, Clone, Args)]
pub(crate) struct QueryArgs {
    /// Only records at or after this time: RFC 3339 (`2026-12-01T10:00:00Z`,
    /// `2026-12-01 10:00:00.5+01:00`), a time ago (`10m`, `2h`, `30s`), or a
    /// raw timestamp in ns (`@1764583200000000000`).
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,
    /// Only records at or before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,
    /// Only this producer's records.
    #[arg(long)]
    pub(crate) producer: Option<u32>,
    /// Only records with a sequence number at or above this.
    #[arg(long, value_name = "SEQ")]
    pub(crate) seq_from: Option<u64>,
    /// Only records with a sequence number at or below this.
    #[arg(long, value_name = "SEQ")]
    pub(crate) seq_to: Option<u64>,
    /// Only records whose payload is UTF-8 text matching this regular
    /// expression. Events of ringlog-tracing's `BinaryLayer` are matched
    /// on their line as `--format text` formats it (time, level, thread,
    /// spans, target, message and fields), whatever the output format;
    /// their definitions and other binary payloads never match.
    #[arg(long, value_name = "REGEX")]
    pub(crate) grep: Option<String>,
    /// How to print records.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Index files: `use` them to seek when valid, `build` (also write the
    /// missing ones of sealed segments read whole), or `ignore` them.
    #[arg(long, value_enum, default_value_t = IndexMode::Use)]
    pub(crate) index: IndexMode,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// `<UTC time> <producer> <seq> <payload>`, one line per record: the
    /// time in RFC 3339 with nanoseconds, the payload as text with control
    /// characters, backslashes and bytes that are not UTF-8 escaped
    /// (`\n`, `\\`, `\xff`). Events of ringlog-tracing's `BinaryLayer`
    /// are formatted as its fmt layer would print them (time, level,
    /// thread, target, message, fields); their callsite and thread
    /// definitions are read but not printed.
    Text,
    /// One JSON object per line: producer, seq, timestamp_ns, segment,
    /// offset, len, and `payload` (UTF-8 text) or `payload_b64` (base64).
    Jsonl,
    /// As `jsonl`, but always with `payload_b64`, and `payload` as well when
    /// the payload is UTF-8 text.
    Json,
    /// A header line, then `producer,seq,timestamp_ns,segment,offset,len,encoding,payload`
    /// with the payload as text (`utf8`) or base64 (`base64`).
    Csv,
    /// `<producer> <seq> <timestamp ns> <payload in hex>`, one line per record.
    Hex,
    /// The payloads' bytes, nothing else.
    Raw,
}

/// `--index` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum IndexMode {
    /// Seek through valid index files.
    Use,
    /// Seek, and write the missing index files of sealed segments.
    Build,
    /// Always scan.
    Ignore,
}

/// A parsed, validated query.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    /// Selection the library applies (and seeks with).
    pub(crate) filter: RecordFilter,
    grep: Option<regex::bytes::Regex>,
    /// The output format.
    pub(crate) format: Format,
    index: IndexUse,
    /// Definitions of binary events read so far (`--format text`, or any
    /// format with `--grep`).
    decoder: RefCell<TextDecoder>,
    /// The last binary event formatted for `--grep`, and the record's
    /// `(segment, offset)`, so that printing it does not format it again.
    line: RefCell<(Option<(u64, u64)>, String)>,
    times: TimeCache,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(u128::from(u64::MAX)) as u64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str, what: &str) -> Result<i64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad {what} `{s}`"));
    }
    s.parse().map_err(|_| format!("bad {what} `{s}`"))
}

/// Parses an RFC 3339 date-time into ns since the Unix epoch.
pub(crate) fn parse_rfc3339(s: &str) -> Result<u64, String> {
    let b = s.as_bytes();
    let err = || format!("`{s}` is not an RFC 3339 time (e.g. 2026-12-01T10:00:00Z)");
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return Err(err());
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(err());
    }
    let year = digits(&s[0..4], "year")?;
    let month = digits(&s[5..7], "month")?;
    let day = digits(&s[8..10], "day")?;
    let hour = digits(&s[11..13], "hour")?;
    let min = digits(&s[14..16], "minute")?;
    let sec = digits(&s[17..19], "second")?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || min > 59
        || sec > 60
    {
        return Err(err());
    }
    let mut rest = &s[19..];
    let mut nanos = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(err());
        }
        let mut digits_ns = frac[..n.min(9)].to_owned();
        while digits_ns.len() < 9 {
            digits_ns.push('0');
        }
        nanos = digits(&digits_ns, "fraction")?;
        rest = &frac[n..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest.as_bytes()[3] == b':' =>
        {
            let h = digits(&rest[1..3], "offset")?;
            let m = digits(&rest[4..6], "offset")?;
            if h > 23 || m > 59 {
                return Err(err());
            }
            let v = h * 3600 + m * 60;
            if rest.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return Err(err()),
    };
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    let ns = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    u64::try_from(ns).map_err(|_| format!("`{s}` is before 1970 or too far ahead"))
}

/// Parses a `--since` / `--until` value: RFC 3339, a time ago, or `@ns`.
pub(crate) fn parse_time(s: &str, now: u64) -> Result<u64, String> {
    let t = s.trim();
    if let Some(raw) = t.strip_prefix('@') {
        return raw
            .parse()
            .map_err(|_| format!("`{s}` is not a raw timestamp (e.g. @1764583200000000000)"));
    }
    if t.len() >= 10 && t.as_bytes()[4] == b'-' {
        return parse_rfc3339(t);
    }
    let ago = parse_duration(t)
        .map_err(|e| format!("`{s}` is neither an RFC 3339 time nor a time ago: {e}"))?;
    let ago = u64::try_from(ago.as_nanos()).unwrap_or(u64::MAX);
    Ok(now.saturating_sub(ago))
}

impl QueryArgs {
    /// Validates the options into a [`Query`]; `Err` is a usage error.
    pub(crate) fn build(&self) -> Result<Query, String> {
        let now = now_ns();
        let since = self
            .since
            .as_deref()
            .map(|s| parse_time(s, now).map_err(|e| format!("--since: {e}")))
            .transpose()?;
        let until = self
            .until
            .as_deref()
            .map(|s| parse_time(s, now).map_err(|e| format!("--until: {e}")))
            .transpose()?;
        if let (Some(a), Some(b)) = (since, until) {
            if a > b {
                return Err(format!("--since ({a} ns) is after --until ({b} ns)"));
            }
        }
        if let (Some(a), Some(b)) = (self.seq_from, self.seq_to) {
            if a > b {
                return Err(format!("--seq-from {a} is above --seq-to {b}"));
            }
        }
        let grep = self
            .grep
            .as_deref()
            .map(|g| regex::bytes::Regex::new(g).map_err(|e| format!("--grep: {e}")))
            .transpose()?;
        Ok(Query {
            filter: RecordFilter {
                since,
                until,
                producer: self.producer,
                seq_from: self.seq_from,
                seq_to: self.seq_to,
            },
            grep,
            format: self.format,
            index: match self.index {
                IndexMode::Use => IndexUse::Use,
                IndexMode::Build => IndexUse::Build,
                IndexMode::Ignore => IndexUse::Ignore,
            },
            decoder: RefCell::default(),
            line: RefCell::default(),
            times: TimeCache::default(),
        })
    }
}

impl Query {
    /// The follower's options for this query.
    pub(crate) fn follow_options(&self) -> FollowOptions {
        FollowOptions {
            filter: self.filter,
            index: self.index,
            ..Default::default()
        }
    }

    /// Whether a record the library's filter passed also passes `--grep`.
    pub(crate) fn accepts(&self, r: &RecordRef<'_>) -> bool {
        let Some(re) = &self.grep else {
            return true;
        };
        if binary::is_binary(r.payload) {
            // Matched on the text it stands for, not its bytes.
            let mut line = self.line.borrow_mut();
            let (at, text) = &mut *line;
            let shown = self.decoder.borrow_mut().show(r.timestamp, r.payload, text);
            if shown != Shown::Line {
                *at = None;
                return false;
            }
            *at = Some((r.segment, r.offset));
            return re.is_match(text.as_bytes());
        }
        std::str::from_utf8(r.payload).is_ok() && re.is_match(r.payload)
    }

    /// What precedes the records (the CSV header).
    pub(crate) fn write_prologue(&self, out: &mut Vec<u8>) {
        if self.format == Format::Csv {
            out.extend_from_slice(
                b"producer,seq,timestamp_ns,segment,offset,len,encoding,payload\n",
            );
        }
    }

    /// Reads the definitions in a record that is not printed (filtered
    /// out), so the binary events after it can still be formatted.
    pub(crate) fn observe(&self, r: &RecordRef<'_>) {
        if self.format == Format::Text || self.grep.is_some() {
            self.decoder.borrow_mut().learn(r.payload);
        }
    }

    /// Appends one record in the query's format; `false` if it printed
    /// nothing (a binary event definition in text).
    pub(crate) fn write_record(&mut self, out: &mut Vec<u8>, r: &RecordRef<'_>) -> bool {
        let sep = |out: &mut Vec<u8>, c: u8| out.push(c);
        match self.format {
            Format::Text if binary::is_binary(r.payload) => {
                let mut cached = self.line.borrow_mut();
                let (at, line) = &mut *cached;
                if *at != Some((r.segment, r.offset)) {
                    let shown = self.decoder.borrow_mut().show(r.timestamp, r.payload, line);
                    if shown == Shown::Definition {
                        *at = None;
                        return false;
                    }
                }
                *at = None;
                self.times.push(out, r.timestamp);
                sep(out, b' ');
                push_u64(out, u64::from(r.producer));
                sep(out, b' ');
                push_u64(out, r.seq);
                sep(out, b' ');
                escape_into(out, line.as_bytes());
                out.push(b'\n');
            }
            Format::Text => {
                out.reserve(96 + r.payload.len());
                self.times.push(out, r.timestamp);
                sep(out, b' ');
                push_u64(out, u64::from(r.producer));
                sep(out, b' ');
                push_u64(out, r.seq);
                sep(out, b' ');
                escape_into(out, r.payload);
                out.push(b'\n');
            }
            Format::Hex => {
                push_u64(out, u64::from(r.producer));
                sep(out, b' ');
                push_u64(out, r.seq);
                sep(out, b' ');
                push_u64(out, r.timestamp);
                sep(out, b' ');
                hex_into(out, r.payload);
                out.push(b'\n');
            }
            Format::Jsonl | Format::Json => {
                // The fields, and the payload escaped as clean text is.
                out.reserve(192 + r.payload.len());
                out.extend_from_slice(b"{\"producer\":");
                push_u64(out, u64::from(r.producer));
                out.extend_from_slice(b",\"seq\":");
                push_u64(out, r.seq);
                out.extend_from_slice(b",\"timestamp_ns\":");
                push_u64(out, r.timestamp);
                out.extend_from_slice(b",\"segment\":");
                push_u64(out, r.segment);
                out.extend_from_slice(b",\"offset\":");
                push_u64(out, r.offset);
                out.extend_from_slice(b",\"len\":");
                push_u64(out, r.payload.len() as u64);
                if self.format == Format::Json {
                    out.extend_from_slice(b",\"payload_b64\":\"");
                    base64_into(out, r.payload);
                    out.push(b'"');
                }
                out.extend_from_slice(b",\"payload\":");
                if !json_text_into(out, r.payload) {
                    // Not UTF-8: no `payload`, and `payload_b64` for jsonl.
                    out.truncate(out.len() - b",\"payload\":".len());
                    if self.format == Format::Jsonl {
                        out.extend_from_slice(b",\"payload_b64\":\"");
                        base64_into(out, r.payload);
                        out.push(b'"');
                    }
                }
                out.extend_from_slice(b"}\n");
            }
            Format::Csv => {
                out.reserve(144 + r.payload.len());
                for v in [
                    u64::from(r.producer),
                    r.seq,
                    r.timestamp,
                    r.segment,
                    r.offset,
                    r.payload.len() as u64,
                ] {
                    push_u64(out, v);
                    sep(out, b',');
                }
                if std::str::from_utf8(r.payload).is_ok() {
                    out.extend_from_slice(b"utf8,");
                    csv_quoted_into(out, r.payload);
                } else {
                    out.extend_from_slice(b"base64,");
                    base64_into(out, r.payload);
                }
                out.push(b'\n');
            }
            Format::Raw => out.extend_from_slice(r.payload),
        }
        true
    }
}

/// The one line that reports a gap on stderr.
pub(crate) fn gap_message(g: &Gap) -> String {
    format!(
        "ringlog: warning: records lost before they were read: segments {}..={} were deleted \
         (journal positions {}..{}); continuing in segment {}",
        g.first_segment, g.last_segment, g.from_position, g.to_position, g.resume.segment
    )
}

/// Writes `buf` to `out` and flushes; a closed pipe is `Ok(false)`.
pub(crate) fn emit(out: &mut impl Write, buf: &mut Vec<u8>) -> io::Result<bool> {
    let result = out.write_all(buf).and_then(|()| out.flush());
    buf.clear();
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339("2026-12-01T10:00:00Z"),
            Ok(1_796_119_200_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2026-12-01 11:00:00.5+01:00"),
            Ok(1_796_119_200_500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00.000000001z"),
            Ok(951_782_400_000_000_001)
        );
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-12-01T10:00:00",
            "2026-12-01T10:00:00+1:00",
            "1969-12-31T23:59:59Z",
            "yesterday",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relative_and_raw_times() {
        let now = 1_000_000_000_000;
        assert_eq!(parse_time("10m", now), Ok(now - 600_000_000_000));
        assert_eq!(parse_time("@42", now), Ok(42));
        assert_eq!(parse_time("500ms", now), Ok(now - 500_000_000));
        assert!(parse_time("ten minutes", now).is_err());
    }

    #[test]
    fn jsonl_is_valid_json_for_text_and_binary() {
        let mut q = QueryArgs {
            since: None,
            until: None,
            producer: None,
            seq_from: None,
            seq_to: None,
            grep: Some("^he".into()),
            format: Format::Jsonl,
            index: IndexMode::Use,
        }
        .build()
        .unwrap();
        let stamp = ringlog::journal::SegmentStamp {
            created_unix_nanos: 0,
            base_position: 0,
            header_len: 48,
        };
        let mk = |payload: &[u8]| ringlog::journal::Record {
            producer: 1,
            seq: 2,
            timestamp: 3,
            payload: payload.to_vec(),
            segment: 1,
            offset: 48,
            crc: 0,
            stamp,
        };
        for payload in [&b"he said \"hi\"\n\x01"[..], &[0xff, 0xfe][..]] {
            let mut out = Vec::new();
            q.write_record(&mut out, &mk(payload).as_ref());
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["seq"], 2);
            match v.get("payload") {
                Some(p) => assert_eq!(p.as_str().unwrap().as_bytes(), payload),
                None => assert_eq!(v["payload_b64"], "//4="),
            }
        }
        assert!(q.accepts(&mk(b"hello").as_ref()));
        assert!(!q.accepts(&mk(b"oh hello").as_ref()));
        assert!(!q.accepts(&mk(&[b'h', b'e', 0xff]).as_ref()));
    }

    #[test]
    fn grep_matches_binary_events_on_their_text_and_prints_them_once_formatted() {
        use ringlog_tracing::binary::{Callsite, Encoder, Level, Value};
        let mut q = QueryArgs {
            since: None,
            until: None,
            producer: None,
            seq_from: None,
            seq_to: None,
            grep: Some(" app: served n=[12]$".into()),
            format: Format::Text,
            index: IndexMode::Use,
        }
        .build()
        .unwrap();
        let mut records = Vec::new();
        let mut buf = Vec::new();
        Encoder::callsite(
            &mut buf,
            &Callsite {
                id: 7,
                level: Level::Info,
                name: "event",
                target: "app",
                file: None,
                line: None,
                fields: vec!["message", "n"],
            },
        );
        records.push(buf.clone());
        for n in 0..3 {
            let mut e = Encoder::event(&mut buf, 7, 1, 0);
            e.debug(0, &format_args!("served"));
            e.value(1, Value::U64(n));
            records.push(buf.clone());
        }
        let mut out = Vec::new();
        for (i, payload) in records.iter().enumerate() {
            let r = ringlog::journal::RecordRef {
                producer: 1,
                seq: i as u64,
                timestamp: 0,
                payload,
                segment: 1,
                offset: 48 + 100 * i as u64,
                crc: 0,
                stamp: ringlog::journal::SegmentStamp {
                    created_unix_nanos: 0,
                    base_position: 0,
                    header_len: 48,
                },
            };
            if q.accepts(&r) {
                assert!(q.write_record(&mut out, &r));
            } else {
                q.observe(&r);
            }
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1970-01-01T00:00:00.000000000Z 1 2 1970-01-01T00:00:00.000000Z  INFO thread-1 app: served n=1\n\
             1970-01-01T00:00:00.000000000Z 1 3 1970-01-01T00:00:00.000000Z  INFO thread-1 app: served n=2\n"
        );
    }

    fn rfc3339_utc(t: u64) -> String {
        let mut out = Vec::new();
        TimeCache::default().push(&mut out, t);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn utc_dates_match_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339_utc(1), "1970-01-01T00:00:00.000000001Z");
        // 2000-02-29 (a leap day in a year divisible by 400).
        assert_eq!(
            rfc3339_utc(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        // date -u -d @1709294400.123456789
        assert_eq!(
            rfc3339_utc(1_709_294_400_123_456_789),
            "2024-03-01T12:00:00.123456789Z"
        );
        assert_eq!(rfc3339_utc(u64::MAX), "2554-07-21T23:34:33.709551615Z");
        // The formatter and the parser agree.
        let t = 1_764_583_200_123_456_789;
        assert_eq!(parse_rfc3339(&rfc3339_utc(t)), Ok(t));
    }
}
