//! RFC 3339 UTC timestamps without a date library.

use std::fmt::{self, Write};

/// Writes `unix_nanos` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds, as
/// tracing-subscriber's fmt layer prints them).
pub(crate) fn write_rfc3339_micros(out: &mut impl Write, unix_nanos: u64) -> fmt::Result {
    ringlog::journal::write_utc_timestamp(out, unix_nanos, 6)
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
