//! The byte-level encoders behind `cat` / `tail` output: decimal numbers,
//! JSON strings, escaped text, CSV fields, base64, hex and RFC 3339 times.
//!
//! Export runs at the speed of these loops, so they append to a reused
//! buffer without `fmt` and without a per-record allocation, and look at
//! payloads eight bytes at a time: a word with no byte that needs work is
//! copied whole (the "has less than" / "has zero byte" tests from Sean
//! Anderson's bit twiddling hacks). A flagged word is handled byte by
//! byte; the word tests may flag a clean word (a borrow can reach into a
//! later byte) but never miss a byte that needs work.

/// The bytes an encoder must look at.
#[derive(Debug, Clone, Copy)]
enum Needs {
    /// JSON, before any non-ASCII byte: controls, `"`, `\\`, bytes >= 0x80.
    JsonAscii,
    /// JSON in text known to be UTF-8: controls, `"`, `\\`.
    Json,
    /// Plain text: controls, DEL, `\\`, bytes >= 0x80.
    Text,
    /// CSV: `"`.
    Quote,
}

impl Needs {
    #[inline]
    fn byte(self, c: u8) -> bool {
        match self {
            Self::JsonAscii => c < 0x20 || c == b'"' || c == b'\\' || c >= 0x80,
            Self::Json => c < 0x20 || c == b'"' || c == b'\\',
            Self::Text => c < 0x20 || c == b'\\' || c >= 0x7f,
            Self::Quote => c == b'"',
        }
    }

    /// Bit k set where byte k of the 16 in `block` needs work.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn mask16(self, block: &[u8; 16]) -> u32 {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics
        // are available; the unaligned load reads exactly the 16 bytes of
        // `block`.
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast());
            let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
            // Signed: bytes >= 0x80 are negative, so below 0x20 too.
            let below_space_or_high = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
            let m = match self {
                Self::JsonAscii => {
                    _mm_or_si128(below_space_or_high, _mm_or_si128(eq(b'"'), eq(b'\\')))
                }
                Self::Json => {
                    // Unsigned v <= 0x1f: min(v, 0x1f) == v.
                    let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
                    _mm_or_si128(control, _mm_or_si128(eq(b'"'), eq(b'\\')))
                }
                Self::Text => _mm_or_si128(below_space_or_high, _mm_or_si128(eq(0x7f), eq(b'\\'))),
                Self::Quote => eq(b'"'),
            };
            _mm_movemask_epi8(m) as u32
        }
    }
}

/// Index of the first byte at or after `i` that `needs` names; `b.len()`
/// if none. On x86_64, 16 bytes per step with SSE2 compares.
#[inline]
fn skip_clean(b: &[u8], mut i: usize, needs: Needs) -> usize {
    #[cfg(target_arch = "x86_64")]
    while let Some(block) = b.get(i..i + 16) {
        let block: &[u8; 16] = block.try_into().expect("16 bytes");
        let m = needs.mask16(block);
        if m != 0 {
            return i + m.trailing_zeros() as usize;
        }
        i += 16;
    }
    i + b[i..]
        .iter()
        .position(|&c| needs.byte(c))
        .unwrap_or(b.len() - i)
}

const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends `v` in decimal.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `v` in decimal, zero-padded to `width` digits.
fn push_padded(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut n = 0;
    let mut x = v;
    while x > 0 {
        digits[19 - n] = b'0' + (x % 10) as u8;
        x /= 10;
        n += 1;
    }
    let n = n.max(width);
    out.extend_from_slice(&digits[20 - n..]);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `b` as `\u00XX`.
fn push_json_control(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(b"\\u00");
    out.push(HEX[usize::from(b >> 4)]);
    out.push(HEX[usize::from(b & 15)]);
}

/// Appends `bytes` as a quoted JSON string if they are UTF-8 text and
/// returns `true`; otherwise leaves `out` as it was and returns `false`.
///
/// ASCII is checked on the way (a word with a byte >= 0x80 is flagged);
/// only a payload that holds other bytes is validated as UTF-8, from the
/// first such byte on.
pub(crate) fn json_text_into(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let mark = out.len();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut ascii = true;
    let mut from = 0;
    let mut i = 0;
    loop {
        i = if ascii {
            skip_clean(bytes, i, Needs::JsonAscii)
        } else {
            skip_clean(bytes, i, Needs::Json)
        };
        let Some(&c) = bytes.get(i) else { break };
        if c >= 0x80 {
            // Everything before `i` is ASCII, so `i` starts a character.
            if std::str::from_utf8(&bytes[i..]).is_err() {
                out.truncate(mark);
                return false;
            }
            ascii = false;
            continue;
        }
        out.extend_from_slice(&bytes[from..i]);
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => push_json_control(out, c),
        }
        i += 1;
        from = i;
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
    true
}

/// Appends `bytes` as one line of text: valid UTF-8 as is, except control
/// characters and backslash, which are escaped (`\n`, `\t`, `\\`,
/// `\u{7f}`); bytes that are not UTF-8 as `\xNN`.
pub(crate) fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    // Printable ASCII other than backslash goes through whole; from the
    // first byte that is not, character by character.
    let i = skip_clean(bytes, 0, Needs::Text);
    out.extend_from_slice(&bytes[..i]);
    if i < bytes.len() {
        escape_slow(out, &bytes[i..]);
    }
}

fn escape_slow(out: &mut Vec<u8>, bytes: &[u8]) {
    use std::io::Write;
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        for c in valid.chars() {
            if c.is_control() || c == '\\' {
                let _ = write!(out, "{}", c.escape_default());
            } else {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        for &b in chunk.invalid() {
            out.extend_from_slice(b"\\x");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        }
    }
}

/// Appends `text` between double quotes, each `"` in it doubled (CSV).
pub(crate) fn csv_quoted_into(out: &mut Vec<u8>, text: &[u8]) {
    out.reserve(text.len() + 2);
    out.push(b'"');
    let mut from = 0;
    loop {
        let i = skip_clean(text, from, Needs::Quote);
        if i == text.len() {
            break;
        }
        out.extend_from_slice(&text[from..=i]);
        out.push(b'"');
        from = i + 1;
    }
    out.extend_from_slice(&text[from..]);
    out.push(b'"');
}

/// Appends `bytes` in lower-case hex.
pub(crate) fn hex_into(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64_into(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len().div_ceil(3) * 4);
    let mut chunks = bytes.chunks_exact(3);
    for c in &mut chunks {
        let v = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        out.extend_from_slice(&[
            B64[(v >> 18) as usize & 63],
            B64[(v >> 12) as usize & 63],
            B64[(v >> 6) as usize & 63],
            B64[v as usize & 63],
        ]);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let v = (u32::from(rest[0]) << 16) | (u32::from(*rest.get(1).unwrap_or(&0)) << 8);
        out.push(B64[(v >> 18) as usize & 63]);
        out.push(B64[(v >> 12) as usize & 63]);
        out.push(if rest.len() > 1 {
            B64[(v >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(b'=');
    }
}

/// RFC 3339 UTC times with nanoseconds, the date and time of day formatted
/// once per second: records of one second differ only in the fraction.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimeCache {
    /// The second `prefix` is for.
    second: Option<u64>,
    /// `YYYY-MM-DDTHH:MM:SS` of `second`.
    prefix: String,
}

impl TimeCache {
    /// Appends `unix_nanos` as `2024-03-01T12:00:00.000000001Z`.
    pub(crate) fn push(&mut self, out: &mut Vec<u8>, unix_nanos: u64) {
        let second = unix_nanos / 1_000_000_000;
        if self.second != Some(second) {
            self.prefix.clear();
            let _ =
                ringlog::journal::write_utc_timestamp(&mut self.prefix, second * 1_000_000_000, 0);
            // Without the `Z`.
            self.prefix.pop();
            self.second = Some(second);
        }
        out.extend_from_slice(self.prefix.as_bytes());
        out.push(b'.');
        push_padded(out, unix_nanos % 1_000_000_000, 9);
        out.push(b'Z');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn decimals() {
        for v in [0, 1, 9, 10, 99, 100, 101, 12_345, 1 << 40, u64::MAX] {
            assert_eq!(s(|o| push_u64(o, v)), v.to_string());
        }
        assert_eq!(s(|o| push_padded(o, 42, 9)), "000000042");
        assert_eq!(s(|o| push_padded(o, 0, 9)), "000000000");
        assert_eq!(s(|o| push_padded(o, 999_999_999, 9)), "999999999");
    }

    #[test]
    fn base64_matches_the_standard() {
        let enc = |b: &[u8]| s(|o| base64_into(o, b));
        assert_eq!(enc(b""), "");
        assert_eq!(enc(b"f"), "Zg==");
        assert_eq!(enc(b"fo"), "Zm8=");
        assert_eq!(enc(b"foo"), "Zm9v");
        assert_eq!(enc(b"foobar"), "Zm9vYmFy");
        assert_eq!(enc(&[0xff, 0x00, 0x80]), "/wCA");
    }

    /// Every payload a JSON parser reads back as it was, or is refused as
    /// not UTF-8 exactly when it is not; escapes at every position of a
    /// word and across words.
    #[test]
    fn json_strings_round_trip() {
        let specials: [&[u8]; 9] = [
            b"\"",
            b"\\",
            b"\n",
            b"\x01",
            b"\x1f",
            b"\x7f",
            "é".as_bytes(),
            "€".as_bytes(),
            b"\xff",
        ];
        for len in 0..20 {
            for at in 0..=len {
                for sp in specials {
                    let mut p = vec![b'a'; len];
                    p.splice(at..at, sp.iter().copied());
                    let mut out = b"x".to_vec();
                    let ok = json_text_into(&mut out, &p);
                    assert_eq!(ok, std::str::from_utf8(&p).is_ok(), "{p:?}");
                    if ok {
                        let v: String = serde_json::from_slice(&out[1..]).unwrap();
                        assert_eq!(v.as_bytes(), p, "{p:?}");
                    } else {
                        assert_eq!(out, b"x");
                    }
                }
            }
        }
    }

    #[test]
    fn escape_keeps_text_and_escapes_the_rest() {
        let esc = |b: &[u8]| s(|o| escape_into(o, b));
        assert_eq!(esc("héllo wörld".as_bytes()), "héllo wörld");
        assert_eq!(esc(b"a\nb\tc\\d"), "a\\nb\\tc\\\\d");
        assert_eq!(esc(&[b'x', 0xff, 0x00, b'y']), "x\\xff\\u{0}y");
        assert_eq!(esc(b"0123456789abcdef\x7f"), "0123456789abcdef\\u{7f}");
        assert_eq!(esc(b"0123456789abcdef"), "0123456789abcdef");
    }

    #[test]
    fn csv_doubles_quotes() {
        let q = |b: &[u8]| s(|o| csv_quoted_into(o, b));
        assert_eq!(q(b""), "\"\"");
        assert_eq!(q(b"a\"b"), "\"a\"\"b\"");
        assert_eq!(
            q(b"0123456789\"\"abcdef\""),
            "\"0123456789\"\"\"\"abcdef\"\"\""
        );
    }

    #[test]
    fn cached_times_match_the_formatter() {
        let mut c = TimeCache::default();
        for t in [
            0,
            1,
            1_709_294_400_123_456_789,
            1_709_294_400_999_999_999,
            1_709_294_401_000_000_000,
            1_709_294_400_000_000_007,
            u64::MAX,
        ] {
            let mut want = String::new();
            ringlog::journal::write_utc_timestamp(&mut want, t, 9).unwrap();
            assert_eq!(s(|o| c.push(o, t)), want);
        }
    }
}
