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

    /// Bit k set where byte k of the 16 in `v` needs work.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn mask(self, v: std::arch::x86_64::__m128i) -> u32 {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics
        // are available; they only compute on registers.
        unsafe {
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

/// Appends `b[from..k]` to `out`, where `k` is the index of the first byte
/// at or after `from` that `needs` names (`b.len()` if none), and returns
/// `k`: the scan and the copy in one pass.
///
/// On x86_64, 16 bytes per step with SSE2: each block is stored to `out`
/// whole, then its compare mask says how much of it counts; the last
/// block ends at `b`'s end, overlapping the one before.
#[inline]
fn copy_clean(out: &mut Vec<u8>, b: &[u8], from: usize, needs: Needs) -> usize {
    let n = b.len() - from;
    #[cfg(target_arch = "x86_64")]
    if n >= 16 {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_storeu_si128};
        out.reserve(n);
        let base = out.len();
        // SAFETY: the loads read 16 bytes at `src + j` with `j + 16 <= n`,
        // within `b[from..]`; the stores write 16 bytes at `dst + j`, within
        // the `n` bytes of spare capacity reserved above (unaligned loads
        // and stores, SSE2 being baseline). Every byte below `found` was
        // stored (blocks cover `0..j` and the last one `n - 16..n`), so
        // `set_len` exposes only written bytes.
        unsafe {
            let src = b.as_ptr().add(from);
            let dst = out.as_mut_ptr().add(base);
            let mut j = 0;
            let found = loop {
                if j + 16 > n {
                    let s = n - 16;
                    let v = _mm_loadu_si128(src.add(s).cast::<__m128i>());
                    _mm_storeu_si128(dst.add(s).cast::<__m128i>(), v);
                    // Only bytes from `j` on are new; j - s is in 1..=16.
                    let m = needs.mask(v) & (u32::MAX << (j - s));
                    break if m != 0 {
                        s + m.trailing_zeros() as usize
                    } else {
                        n
                    };
                }
                let v = _mm_loadu_si128(src.add(j).cast::<__m128i>());
                _mm_storeu_si128(dst.add(j).cast::<__m128i>(), v);
                let m = needs.mask(v);
                if m != 0 {
                    break j + m.trailing_zeros() as usize;
                }
                j += 16;
            };
            out.set_len(base + found);
            return from + found;
        }
    }
    let k = from + b[from..].iter().position(|&c| needs.byte(c)).unwrap_or(n);
    out.extend_from_slice(&b[from..k]);
    k
}

/// The 8 decimal digits of `v < 10^8`, zero-padded, as ASCII in a word
/// whose lowest byte is the first digit (so a little-endian store writes
/// them in order), computed in registers: lanes of 4 digits, then of 2,
/// then of 1, each split by a multiply and shift that divides exactly in
/// its range (n * 10486 >> 20 is n / 100 for n < 10^4; m * 103 >> 10 is
/// m / 10 for m < 100). A digit string built in a stack buffer with
/// narrow stores and copied out with a wide load stalls on store
/// forwarding instead.
#[inline]
fn eight_digits(v: u32) -> u64 {
    debug_assert!(v < 100_000_000);
    let v = u64::from(v);
    // Lanes of 32 bits: the first four digits, the last four.
    let x = (v / 10_000) | ((v % 10_000) << 32);
    let hundreds = ((x * 10_486) >> 20) & 0x0000_007f_0000_007f;
    // Lanes of 16 bits: 2 digits each.
    let y = hundreds | ((x - hundreds * 100) << 16);
    let tens = ((y * 103) >> 10) & 0x000f_000f_000f_000f;
    // Lanes of 8 bits: 1 digit each.
    let z = tens | ((y - tens * 10) << 8);
    z | 0x3030_3030_3030_3030
}

/// Digits of `v < 10^8` (1 for 0).
#[inline]
fn digits_below_1e8(v: u32) -> usize {
    v.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Appends `v` in decimal.
#[inline]
pub(crate) fn push_u64(out: &mut Vec<u8>, v: u64) {
    const E8: u64 = 100_000_000;
    // Stores of 8 bytes, each of whole words of digits; the last may
    // reach 4 bytes past the number (20 digits at most).
    out.reserve(24);
    let len = out.len();
    // SAFETY: `reserve` made room for 24 bytes after `len`; every store
    // below ends within them (at most 4 + 8 + 8 + 4 bytes in), and the
    // `n` bytes `set_len` exposes were all written.
    unsafe {
        let p = out.as_mut_ptr().add(len);
        let put = |at: usize, w: u64| p.add(at).cast::<u64>().write_unaligned(w.to_le());
        // The leading word without its leading zeros (its lowest bytes).
        let lead = |v: u32| {
            let d = digits_below_1e8(v);
            (eight_digits(v) >> (8 * (8 - d)), d)
        };
        let n = if v < E8 {
            let (w, d) = lead(v as u32);
            put(0, w);
            d
        } else if v < E8 * E8 {
            let (w, d) = lead((v / E8) as u32);
            put(0, w);
            put(d, eight_digits((v % E8) as u32));
            d + 8
        } else {
            let (w, d) = lead((v / (E8 * E8)) as u32);
            put(0, w);
            put(d, eight_digits((v / E8 % E8) as u32));
            put(d + 8, eight_digits((v % E8) as u32));
            d + 16
        };
        out.set_len(len + n);
    }
}

/// Appends `v < 10^9` in decimal, zero-padded to 9 digits (the nanoseconds
/// of a second).
#[inline]
fn push_nanos(out: &mut Vec<u8>, v: u64) {
    debug_assert!(v < 1_000_000_000);
    out.push(b'0' + (v / 100_000_000) as u8);
    out.extend_from_slice(&eight_digits((v % 100_000_000) as u32).to_le_bytes());
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
    let mut i = 0;
    loop {
        i = if ascii {
            copy_clean(out, bytes, i, Needs::JsonAscii)
        } else {
            copy_clean(out, bytes, i, Needs::Json)
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
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => push_json_control(out, c),
        }
        i += 1;
    }
    out.push(b'"');
    true
}

/// Appends `bytes` as one line of text: valid UTF-8 as is, except control
/// characters and backslash, which are escaped (`\n`, `\t`, `\\`,
/// `\u{7f}`); bytes that are not UTF-8 as `\xNN`.
pub(crate) fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    // Printable ASCII other than backslash goes through whole; from the
    // first byte that is not, character by character.
    let i = copy_clean(out, bytes, 0, Needs::Text);
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
        let i = copy_clean(out, text, from, Needs::Quote);
        if i == text.len() {
            break;
        }
        out.extend_from_slice(b"\"\"");
        from = i + 1;
    }
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
        push_nanos(out, unix_nanos % 1_000_000_000);
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
        for v in [
            0,
            9,
            10,
            99_999_999,
            100_000_000,
            100_000_001,
            123_456_789_012_345_678,
            10_000_000_000_000_000_000,
        ] {
            assert_eq!(s(|o| push_u64(o, v)), v.to_string());
        }
        // Each side of every change in the number of digits.
        let mut p = 1u64;
        for _ in 0..20 {
            for v in [p - 1, p, p + 1] {
                assert_eq!(s(|o| push_u64(o, v)), v.to_string());
            }
            p = p.saturating_mul(10);
        }
        for v in (0..100_000_000).step_by(9_973).chain([99_999_999]) {
            assert_eq!(
                eight_digits(v).to_le_bytes(),
                format!("{v:08}").as_bytes(),
                "{v}"
            );
        }
        assert_eq!(s(|o| push_nanos(o, 42)), "000000042");
        assert_eq!(s(|o| push_nanos(o, 0)), "000000000");
        assert_eq!(s(|o| push_nanos(o, 999_999_999)), "999999999");
        assert_eq!(s(|o| push_nanos(o, 100_000_000)), "100000000");
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

    /// Random strings of ASCII, controls, quotes, backslashes, DEL,
    /// multi-byte characters and stray bytes, at lengths around the
    /// 16-byte blocks: each encoder gives what a byte-at-a-time reference
    /// gives, and JSON parses back to the payload.
    #[test]
    fn encoders_match_byte_at_a_time_references() {
        fn json_ref(b: &[u8]) -> Option<Vec<u8>> {
            let text = std::str::from_utf8(b).ok()?;
            let mut o = b"\"".to_vec();
            for c in text.chars() {
                match c {
                    '"' => o.extend_from_slice(b"\\\""),
                    '\\' => o.extend_from_slice(b"\\\\"),
                    '\n' => o.extend_from_slice(b"\\n"),
                    '\r' => o.extend_from_slice(b"\\r"),
                    '\t' => o.extend_from_slice(b"\\t"),
                    c if (c as u32) < 0x20 => {
                        o.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                    }
                    c => o.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
            o.push(b'"');
            Some(o)
        }
        fn text_ref(b: &[u8]) -> Vec<u8> {
            let mut o = Vec::new();
            escape_slow(&mut o, b);
            o
        }
        fn csv_ref(b: &[u8]) -> Vec<u8> {
            let mut o = b"\"".to_vec();
            for &c in b {
                o.push(c);
                if c == b'"' {
                    o.push(b'"');
                }
            }
            o.push(b'"');
            o
        }
        let pieces: [&[u8]; 14] = [
            b"a",
            b"Z",
            b" ",
            b"\"",
            b"\\",
            b"\n",
            b"\t",
            b"\x00",
            b"\x1f",
            b"\x7f",
            "é".as_bytes(),
            "€".as_bytes(),
            "𝄞".as_bytes(),
            b"\xff",
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 80) as usize;
            // Mostly plain letters, so that clean blocks come up too.
            let mut p = Vec::new();
            while p.len() < len {
                let r = next();
                if r % 4 == 0 {
                    p.extend_from_slice(pieces[(r >> 8) as usize % pieces.len()]);
                } else {
                    p.push(b'a' + (r >> 8) as u8 % 26);
                }
            }
            let mut out = b"x".to_vec();
            match json_ref(&p) {
                Some(want) => {
                    assert!(json_text_into(&mut out, &p), "{p:?}");
                    assert_eq!(&out[1..], &want[..], "{p:?}");
                    let back: String = serde_json::from_slice(&out[1..]).unwrap();
                    assert_eq!(back.as_bytes(), &p[..]);
                }
                None => {
                    assert!(!json_text_into(&mut out, &p), "{p:?}");
                    assert_eq!(out, b"x");
                }
            }
            assert_eq!(s(|o| escape_into(o, &p)).as_bytes(), &text_ref(&p)[..]);
            let mut q = b"x".to_vec();
            csv_quoted_into(&mut q, &p);
            assert_eq!(&q[1..], &csv_ref(&p)[..], "{p:?}");
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
