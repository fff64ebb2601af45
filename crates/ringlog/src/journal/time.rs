//! Record timestamps (nanoseconds since the Unix epoch, UTC) as RFC 3339
//! text, without a date library: what `ringlog cat` prints and what the
//! logging writer puts in its lines.

use std::fmt;

/// Civil date (year, month, day) of `days` since 1970-01-01, proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Days since 0000-03-01, in 400-year eras of 146097 days.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Writes `unix_nanos` as `YYYY-MM-DDTHH:MM:SS.fffZ` with `digits`
/// fractional digits (at most 9; 6 gives microseconds, 9 nanoseconds).
///
/// # Errors
///
/// Only those of `out`.
///
/// # Examples
///
/// ```
/// let mut s = String::new();
/// ringlog::journal::write_utc_timestamp(&mut s, 1_709_294_400_123_456_789, 6).unwrap();
/// assert_eq!(s, "2024-03-01T12:00:00.123456Z");
/// ```
pub fn write_utc_timestamp(out: &mut impl fmt::Write, unix_nanos: u64, digits: u32) -> fmt::Result {
    let digits = digits.min(9);
    let secs = unix_nanos / 1_000_000_000;
    let fraction = (unix_nanos % 1_000_000_000) / 10u64.pow(9 - digits);
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )?;
    if digits > 0 {
        write!(out, ".{fraction:0width$}", width = digits as usize)?;
    }
    out.write_char('Z')
}
