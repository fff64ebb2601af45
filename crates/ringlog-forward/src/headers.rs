//! [`RecordMeta`]: a record's producer, sequence, timestamp and CRC in the
//! headers of its message.
//!
//! Written as one header, [`HEADER_RECORD`]`: p=<producer>;s=<seq>;t=<timestamp>;c=<crc>`
//! (the CRC as 8 hex digits), beside `Nats-Msg-Id`. Streams written before
//! carry four headers ([`HEADER_PRODUCER`], [`HEADER_SEQ`],
//! [`HEADER_TIMESTAMP`], [`HEADER_CRC`] with `0x`); those are still read.

use async_nats::HeaderMap;

/// The one header carrying the record's producer, sequence, timestamp and
/// frame CRC-32C: `p=<producer>;s=<seq>;t=<timestamp>;c=<8 hex digits>`.
pub const HEADER_RECORD: &str = "Ringlog";
/// Older messages: the record's producer id.
pub const HEADER_PRODUCER: &str = "Ringlog-Producer";
/// Older messages: the record's sequence number.
pub const HEADER_SEQ: &str = "Ringlog-Seq";
/// Older messages: the record's timestamp.
pub const HEADER_TIMESTAMP: &str = "Ringlog-Timestamp";
/// Older messages: the record's frame CRC-32C, `0x` and 8 hex digits.
pub const HEADER_CRC: &str = "Ringlog-Crc";

/// What the headers of a record's message say of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    /// Producer id.
    pub producer: u32,
    /// Sequence number.
    pub seq: u64,
    /// Timestamp.
    pub timestamp: u64,
    /// The frame's CRC-32C.
    pub crc: u32,
}

impl RecordMeta {
    /// The value of [`HEADER_RECORD`].
    pub fn encode(&self) -> String {
        format!(
            "p={};s={};t={};c={:08x}",
            self.producer, self.seq, self.timestamp, self.crc
        )
    }

    /// Reads a value of [`HEADER_RECORD`].
    ///
    /// # Errors
    ///
    /// Why it is not one, as a sentence.
    pub fn parse(value: &str) -> Result<Self, String> {
        let bad = || format!("{HEADER_RECORD} header {value:?} is not valid");
        let mut fields = value.split(';');
        let mut next = |key: &str| {
            fields
                .next()
                .and_then(|f| f.strip_prefix(key))
                .and_then(|f| f.strip_prefix('='))
                .ok_or_else(bad)
        };
        let producer = next("p")?.parse().map_err(|_| bad())?;
        let seq = next("s")?.parse().map_err(|_| bad())?;
        let timestamp = next("t")?.parse().map_err(|_| bad())?;
        let c = next("c")?;
        if c.len() != 8 || fields.next().is_some() {
            return Err(bad());
        }
        let crc = u32::from_str_radix(c, 16).map_err(|_| bad())?;
        Ok(Self {
            producer,
            seq,
            timestamp,
            crc,
        })
    }

    /// Reads the headers of a message: [`HEADER_RECORD`], or the four
    /// older ones.
    ///
    /// # Errors
    ///
    /// Why there is no record in them, as a sentence.
    pub fn from_headers(headers: Option<&HeaderMap>) -> Result<Self, String> {
        let get = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
        if let Some(v) = get(HEADER_RECORD) {
            return Self::parse(v);
        }
        let Some(p) = get(HEADER_PRODUCER) else {
            return Err(format!("no {HEADER_RECORD} header"));
        };
        let field = |name: &str| get(name).ok_or_else(|| format!("no {name} header"));
        let bad = |name: &str, v: &str| format!("{name} header {v:?} is not valid");
        let producer = p.parse().map_err(|_| bad(HEADER_PRODUCER, p))?;
        let s = field(HEADER_SEQ)?;
        let seq = s.parse().map_err(|_| bad(HEADER_SEQ, s))?;
        let t = field(HEADER_TIMESTAMP)?;
        let timestamp = t.parse().map_err(|_| bad(HEADER_TIMESTAMP, t))?;
        let c = field(HEADER_CRC)?;
        let crc = c
            .strip_prefix("0x")
            .filter(|h| h.len() == 8)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| bad(HEADER_CRC, c))?;
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

    #[test]
    fn one_header_round_trips_and_the_old_four_are_read() {
        let m = RecordMeta {
            producer: 7,
            seq: u64::MAX,
            timestamp: 1_700_000_000_000_000_000,
            crc: 0x0012_abcd,
        };
        assert_eq!(
            m.encode(),
            "p=7;s=18446744073709551615;t=1700000000000000000;c=0012abcd"
        );
        assert_eq!(RecordMeta::parse(&m.encode()), Ok(m));
        let mut h = HeaderMap::new();
        h.insert(HEADER_RECORD, m.encode().as_str());
        assert_eq!(RecordMeta::from_headers(Some(&h)), Ok(m));

        let mut old = HeaderMap::new();
        old.insert(HEADER_PRODUCER, "7");
        old.insert(HEADER_SEQ, "18446744073709551615");
        old.insert(HEADER_TIMESTAMP, "1700000000000000000");
        old.insert(HEADER_CRC, "0x0012abcd");
        assert_eq!(RecordMeta::from_headers(Some(&old)), Ok(m));

        for bad in [
            "",
            "p=7;s=1;t=2",
            "p=7;s=1;t=2;c=123",
            "s=1;p=7;t=2;c=00000000",
            "p=7;s=1;t=2;c=00000000;x=1",
        ] {
            assert!(RecordMeta::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            RecordMeta::from_headers(None),
            Err("no Ringlog header".to_owned())
        );
        old.insert(HEADER_CRC, "12abcd");
        assert_eq!(
            RecordMeta::from_headers(Some(&old)),
            Err("Ringlog-Crc header \"12abcd\" is not valid".to_owned())
        );
    }
}
