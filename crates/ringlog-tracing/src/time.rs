//! RFC 3339 UTC timestamps without a date library.

use std::fmt::{self, Write};

/// Civil date (year, month, day) of `days` since 1970-01-01, proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Writes `unix_nanos` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds, as
/// tracing-subscriber's fmt layer prints them).
pub(crate) fn write_rfc3339_micros(out: &mut impl Write, unix_nanos: u64) -> fmt::Result {
    let secs = unix_nanos / 1_000_000_000;
    let micros = (unix_nanos % 1_000_000_000) / 1_000;
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(nanos: u64) -> String {
        let mut s = String::new();
        write_rfc3339_micros(&mut s, nanos).unwrap();
        s
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(show(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            show(1_796_119_200_123_456_789),
            "2026-12-01T10:00:00.123456Z"
        );
        // A leap day and the last second of a leap year.
        assert_eq!(show(951_782_400_000_000_000), "2000-02-29T00:00:00.000000Z");
        assert_eq!(
            show(1_735_689_599_000_000_000),
            "2024-12-31T23:59:59.000000Z"
        );
    }
}
