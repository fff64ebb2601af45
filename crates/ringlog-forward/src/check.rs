//! The way back: read a stream and compare it with the journal it came
//! from.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull::OrderedConfig, consumer::DeliverPolicy};
use futures_util::StreamExt;
use ringlog::journal::{frame_into_vec, parse_frame, Reader};
use serde::Serialize;

use crate::error::ForwardError;
use crate::forward::connect;
use crate::headers::RecordHeaders;
use crate::stream::StreamSpec;

/// At most this many problems of each kind are listed (all are counted).
pub const MAX_LISTED: usize = 20;

/// What [`check_stream`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamCheck {
    /// Records in the journal.
    pub journal_records: u64,
    /// Messages read from the stream under `P.>`.
    pub messages: u64,
    /// Journal records not in the stream.
    pub missing: u64,
    /// Messages for a (producer, sequence) already seen.
    pub duplicates: u64,
    /// Messages out of the journal's order for their producer.
    pub out_of_order: u64,
    /// Messages whose CRC header, recomputed frame CRC and journal CRC
    /// disagree.
    pub crc_mismatches: u64,
    /// Messages for no journal record, or without readable headers.
    pub unknown: u64,
    /// The first problems, as `producer-seq: what`.
    pub problems: Vec<String>,
}

impl StreamCheck {
    /// Every journal record once, in order per producer, CRCs matching,
    /// nothing else.
    pub fn is_clean(&self) -> bool {
        self.missing == 0
            && self.duplicates == 0
            && self.out_of_order == 0
            && self.crc_mismatches == 0
            && self.unknown == 0
            && self.messages == self.journal_records
    }

    fn note(&mut self, what: String) {
        if self.problems.len() < MAX_LISTED {
            self.problems.push(what);
        }
    }
}

struct Expect {
    crc: u32,
    /// Rank among the producer's records in journal order.
    rank: u64,
    seen: bool,
}

/// Reads every message of the stream under the spec's prefix and compares
/// it with the journal in `dir`: every (producer, sequence) once, in the
/// journal's order per producer, the CRC header equal to the journal's
/// frame CRC and to the CRC of a frame rebuilt from the message.
///
/// # Errors
///
/// Connection, a missing stream, journal read errors, a stream that stops
/// delivering for 10 s before its last message.
pub async fn check_stream(
    dir: &Path,
    server: &str,
    spec: &StreamSpec,
) -> Result<StreamCheck, ForwardError> {
    spec.validate()?;
    let mut check = StreamCheck::default();
    let mut expect: HashMap<(u32, u64), Expect> = HashMap::new();
    let mut ranks: HashMap<u32, u64> = HashMap::new();
    let jerr = |source| ForwardError::Journal {
        dir: dir.to_owned(),
        source,
    };
    for r in Reader::open(dir).map_err(jerr)? {
        let r = r.map_err(jerr)?;
        let rank = ranks.entry(r.producer).or_insert(0);
        expect.insert(
            (r.producer, r.seq),
            Expect {
                crc: r.crc,
                rank: *rank,
                seen: false,
            },
        );
        *rank += 1;
        check.journal_records += 1;
    }

    let client = connect(server).await?;
    let js = jetstream::new(client);
    let api = |op| {
        move |e: Box<dyn std::error::Error + Send + Sync>| ForwardError::Stream {
            stream: spec.name.clone(),
            op,
            source: e,
        }
    };
    let mut stream = js
        .get_stream(&spec.name)
        .await
        .map_err(|e| api("look up")(Box::new(e)))?;
    let last = stream
        .info()
        .await
        .map_err(|e| api("read info")(Box::new(e)))?
        .state
        .last_sequence;
    let mut last_rank: HashMap<u32, u64> = HashMap::new();
    let mut frame = Vec::new();
    if last > 0 {
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: spec.filter(),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| api("create a reading consumer")(Box::new(e)))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| api("read")(Box::new(e)))?;
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), messages.next())
                .await
                .map_err(|e| api("read (no message for 10 s)")(Box::new(e)))?;
            let Some(m) = next else { break };
            let m = m.map_err(|e| api("read")(Box::new(e)))?;
            let stream_seq = m.info().map(|i| i.stream_sequence).unwrap_or(last);
            check.messages += 1;
            let parsed = RecordHeaders::read(m.headers.as_ref())
                .map(|r| (r.producer, r.seq, r.timestamp, r.crc));
            let Ok((producer, seq, ts, crc)) = parsed else {
                check.unknown += 1;
                check.note(format!(
                    "stream message {stream_seq}: no ringlog headers ({})",
                    parsed.unwrap_err()
                ));
                if stream_seq >= last {
                    break;
                }
                continue;
            };
            let id = format!("{producer}-{seq}");
            frame.clear();
            let rebuilt = frame_into_vec(&mut frame, producer, seq, ts, &m.payload)
                .ok()
                .and_then(|_| parse_frame(&frame).ok())
                .map(|p| p.header.crc);
            match expect.get_mut(&(producer, seq)) {
                None => {
                    check.unknown += 1;
                    check.note(format!("{id}: not in the journal"));
                }
                Some(e) if e.seen => {
                    check.duplicates += 1;
                    check.note(format!("{id}: again at stream sequence {stream_seq}"));
                }
                Some(e) => {
                    e.seen = true;
                    if rebuilt != Some(crc) || e.crc != crc {
                        check.crc_mismatches += 1;
                        check.note(format!(
                            "{id}: CRC header {crc:#010x}, message {:?}, journal {:#010x}",
                            rebuilt, e.crc
                        ));
                    }
                    let prev = last_rank.insert(producer, e.rank);
                    if prev.is_some_and(|p| p >= e.rank) {
                        check.out_of_order += 1;
                        check.note(format!(
                            "{id}: out of order at stream sequence {stream_seq}"
                        ));
                    }
                }
            }
            if stream_seq >= last {
                break;
            }
        }
    }
    let mut missing: Vec<(u32, u64)> = expect
        .iter()
        .filter(|(_, e)| !e.seen)
        .map(|(&k, _)| k)
        .collect();
    missing.sort_unstable();
    check.missing = missing.len() as u64;
    for (p, s) in missing.into_iter().take(MAX_LISTED) {
        check.note(format!("{p}-{s}: missing from the stream"));
    }
    Ok(check)
}
