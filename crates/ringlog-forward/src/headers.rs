//! The header that carries a record's identity on its message.
//!
//! One header, [`HEADER_RECORD`]: `<producer> <seq> <timestamp> 0x<crc>`,
//! the CRC as 8 hex digits. Earlier versions wrote four headers
//! ([`HEADER_PRODUCER`], [`HEADER_SEQ`], [`HEADER_TIMESTAMP`],
//! [`HEADER_CRC`]); they are still read, so a stream forwarded by them can
//! be checked, imported and forwarded to again. The server's cost of a
//! message grows with its header block (`ringlog-bench forward` measures
//! it), which is why the four became one.

use async_nats::HeaderMap;

/// Header carrying a record's producer, sequence number, timestamp and
/// frame CRC-32C: `<producer> <seq> <timestamp> 0x<crc>`.
pub const HEADER_RECORD: &str = "Ringlog-Record";
/// Header carrying the record's producer id (written by earlier versions,
/// still read).
pub const HEADER_PRODUCER: &str = "Ringlog-Producer";
/// Header carrying the record's sequence number (earlier versions).
pub const HEADER_SEQ: &str = "Ringlog-Seq";
/// Header carrying the record's timestamp (earlier versions).
pub const HEADER_TIMESTAMP: &str = "Ringlog-Timestamp";
/// Header carrying the record's frame CRC-32C, `0x` and 8 hex digits
/// (earlier versions).
pub const HEADER_CRC: &str = "Ringlog-Crc";

/// A record's identity as its message's headers carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeaders {
    /// The record's producer id.
    pub producer: u32,
    /// The record's sequence number.
    pub seq: u64,
    /// The record's timestamp.
    pub timestamp: u64,
    /// The record's frame CRC-32C.
    pub crc: u32,
}

/// A decimal number of digits only: `str::parse` would also take a
/// leading `+`, which no writer of these headers puts there.
fn number<T: std::str::FromStr>(v: &str) -> Option<T> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

fn parse_crc(v: &str) -> Option<u32> {
    v.strip_prefix("0x")
        .filter(|h| h.len() == 8 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|h| u32::from_str_radix(h, 16).ok())
}

impl RecordHeaders {
    /// The value of its [`HEADER_RECORD`].
    pub fn value(&self) -> String {
        format!(
            "{} {} {} {:#010x}",
            self.producer, self.seq, self.timestamp, self.crc
        )
    }

    /// Parses a [`HEADER_RECORD`] value: four fields separated by one
    /// space, nothing else.
    pub fn parse_value(v: &str) -> Option<Self> {
        let mut fields = v.split(' ');
        let producer = number(fields.next()?)?;
        let seq = number(fields.next()?)?;
        let timestamp = number(fields.next()?)?;
        let crc = parse_crc(fields.next()?)?;
        if fields.next().is_some() {
            return None;
        }
        Some(Self {
            producer,
            seq,
            timestamp,
            crc,
        })
    }

    /// Reads a message's headers: [`HEADER_RECORD`], or without it the four
    /// headers of earlier versions. The error says which header is missing
    /// or not valid.
    pub fn read(headers: Option<&HeaderMap>) -> Result<Self, String> {
        let field = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
        if let Some(v) = field(HEADER_RECORD) {
            return Self::parse_value(v)
                .ok_or_else(|| format!("{HEADER_RECORD} header {v:?} is not valid"));
        }
        if field(HEADER_PRODUCER).is_none() {
            return Err(format!("no {HEADER_RECORD} header"));
        }
        let need = |name: &str| field(name).ok_or_else(|| format!("no {name} header"));
        let bad = |name: &str, v: &str| format!("{name} header {v:?} is not valid");
        let p = need(HEADER_PRODUCER)?;
        let producer = number(p).ok_or_else(|| bad(HEADER_PRODUCER, p))?;
        let s = need(HEADER_SEQ)?;
        let seq = number(s).ok_or_else(|| bad(HEADER_SEQ, s))?;
        let t = need(HEADER_TIMESTAMP)?;
        let timestamp = number(t).ok_or_else(|| bad(HEADER_TIMESTAMP, t))?;
        let c = need(HEADER_CRC)?;
        let crc = parse_crc(c).ok_or_else(|| bad(HEADER_CRC, c))?;
        Ok(Self {
            producer,
            seq,
            timestamp,
            crc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: RecordHeaders = RecordHeaders {
        producer: 7,
        seq: 12_345,
        timestamp: 1_700_000_000_000_000_000,
        crc: 0x0012_abcd,
    };

    #[test]
    fn the_value_round_trips_and_nothing_else_parses() {
        assert_eq!(R.value(), "7 12345 1700000000000000000 0x0012abcd");
        assert_eq!(RecordHeaders::parse_value(&R.value()), Some(R));
        for bad in [
            "",
            "7 12345 1700000000000000000",
            "7 12345 1700000000000000000 0x0012abcd ",
            "7 12345 1700000000000000000 0x0012abcd 1",
            "7  12345 1700000000000000000 0x0012abcd",
            "7 12345 1700000000000000000 0012abcd",
            "7 12345 1700000000000000000 0x12abcd",
            "-7 12345 1700000000000000000 0x0012abcd",
            "+7 12345 1700000000000000000 0x0012abcd",
            "7 +12345 1700000000000000000 0x0012abcd",
            "7 12345 +1700000000000000000 0x0012abcd",
            "7 12345 1700000000000000000 0x+012abcd",
            "7 12345 17000000000000000000000 0x0012abcd",
            "4294967296 1 1 0x00000000",
        ] {
            assert_eq!(RecordHeaders::parse_value(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_the_one_header_and_the_four_of_earlier_versions() {
        let mut one = HeaderMap::new();
        one.insert(HEADER_RECORD, R.value().as_str());
        assert_eq!(RecordHeaders::read(Some(&one)), Ok(R));

        let mut four = HeaderMap::new();
        four.insert(HEADER_PRODUCER, "7");
        four.insert(HEADER_SEQ, "12345");
        four.insert(HEADER_TIMESTAMP, "1700000000000000000");
        four.insert(HEADER_CRC, "0x0012abcd");
        assert_eq!(RecordHeaders::read(Some(&four)), Ok(R));

        four.insert(HEADER_SEQ, "+12345");
        assert_eq!(
            RecordHeaders::read(Some(&four)),
            Err("Ringlog-Seq header \"+12345\" is not valid".to_owned())
        );
        four.insert(HEADER_SEQ, "12345");
        four.insert(HEADER_CRC, "0x12abcd");
        assert_eq!(
            RecordHeaders::read(Some(&four)),
            Err("Ringlog-Crc header \"0x12abcd\" is not valid".to_owned())
        );
        let mut partial = HeaderMap::new();
        partial.insert(HEADER_PRODUCER, "7");
        assert_eq!(
            RecordHeaders::read(Some(&partial)),
            Err("no Ringlog-Seq header".to_owned())
        );
        assert_eq!(
            RecordHeaders::read(None),
            Err("no Ringlog-Record header".to_owned())
        );
        one.insert(HEADER_RECORD, "7 x 1 0x00000000");
        assert_eq!(
            RecordHeaders::read(Some(&one)),
            Err("Ringlog-Record header \"7 x 1 0x00000000\" is not valid".to_owned())
        );
    }
}
