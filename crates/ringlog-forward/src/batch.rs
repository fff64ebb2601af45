//! Fast-ingest batch publishing (JetStream 2.14 and later, on a stream
//! with `allow_batched`), the transport of [`Order::Strict`](crate::Order)
//! when the stream allows it.
//!
//! A batch is a run of ordinary publishes whose reply subject names the
//! batch and each message's place in it:
//! `<inbox>.<batch>.<flow>.fail.<n>.<op>.$FI`, `op` 0 for the first message,
//! 1 for the others, 3 for the end of the batch (a message the server does
//! not store). The server stores each message as it comes, like any
//! publish (headers such as `Nats-Expected-Last-Sequence` are checked as
//! usual), but acknowledges only every `flow` messages, with
//! `{"type":"ack","seq":n}`: messages 1 to `n` of the batch are stored. In
//! the `fail` gap mode a message that did not arrive (a gap in `n`) or
//! that the server refused ends the batch: it says so (`gap`, `err`) and
//! sends the batch's final acknowledgement, whose `count` is the number of
//! its messages stored, all of them before the first that was not. So the
//! acknowledged messages of a batch are always a prefix of it, which is
//! what the forwarder's cursor rule needs, and the acknowledgement per
//! message that an ordinary publish costs the servers is gone.
//!
//! Acknowledgements are messages like any other and can be lost; a batch
//! that makes no progress for the acknowledgement timeout is given up by
//! the forwarder: its records not acknowledged are failed, and strict
//! order's look at the stream's last message settles those that were
//! stored.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Instant;

use serde::Deserialize;

/// The reply subject's last token: a fast-ingest batch.
const SUFFIX: &str = "$FI";

/// Operations in the reply subject.
const OP_START: u8 = 0;
const OP_APPEND: u8 = 1;
const OP_COMMIT_END: u8 = 3;

/// Most messages per flow acknowledgement asked for (the server's own
/// limit is 500).
pub(crate) const MAX_FLOW: u16 = 500;

/// A message on a batch's reply subject, from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Messages 1 to `seq` of the batch are stored.
    Flow { seq: u64 },
    /// Messages from `expected` to before `seq` did not arrive; the batch
    /// ends (its final acknowledgement follows).
    Gap { expected: u64, seq: u64 },
    /// Message `seq` was refused; the batch ends.
    Error {
        seq: u64,
        code: u64,
        description: String,
    },
    /// The batch ended with its first `count` messages stored, the last of
    /// them at stream sequence `stream_seq`.
    Done { count: u64, stream_seq: u64 },
    /// The first message was refused, and with it the batch.
    Refused { code: u64, description: String },
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: Option<String>,
    seq: Option<u64>,
    last_seq: Option<u64>,
    count: Option<u64>,
    batch: Option<String>,
    error: Option<ApiError>,
}

/// Reads a server message on a batch's reply subject; `None` for anything
/// else.
pub(crate) fn parse(payload: &[u8]) -> Option<Reply> {
    let raw: Raw = serde_json::from_slice(payload).ok()?;
    let error = |e: ApiError| (e.err_code, e.description);
    match raw.kind.as_deref() {
        Some("ack") => Some(Reply::Flow { seq: raw.seq? }),
        Some("gap") => Some(Reply::Gap {
            expected: raw.last_seq?,
            seq: raw.seq?,
        }),
        Some("err") => {
            let (code, description) = raw.error.map(error).unwrap_or_default();
            Some(Reply::Error {
                seq: raw.seq?,
                code,
                description,
            })
        }
        Some(_) => None,
        None => match (raw.error, raw.batch, raw.count) {
            (Some(e), _, _) => {
                let (code, description) = error(e);
                Some(Reply::Refused { code, description })
            }
            (None, Some(_), Some(count)) => Some(Reply::Done {
                count,
                stream_seq: raw.seq?,
            }),
            _ => None,
        },
    }
}

/// Why the records of a batch not acknowledged failed.
#[derive(Debug, thiserror::Error)]
#[error("batch {batch}: {what}")]
pub(crate) struct BatchFailed {
    pub(crate) batch: String,
    pub(crate) what: String,
}

/// One batch being published: the window ids of its messages not yet
/// acknowledged, in batch order.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The batch id, a token of the reply subject.
    pub(crate) id: String,
    /// Window ids of messages `acked + 1 ..= sent`.
    pending: VecDeque<u64>,
    /// Messages acknowledged (a prefix of the batch).
    acked: u64,
    /// Messages published (or lost, by fault injection) so far.
    sent: u64,
    /// The end of the batch was sent: nothing more is added.
    pub(crate) ending: bool,
    /// When the batch last made progress (a publish into an idle batch, an
    /// acknowledgement).
    pub(crate) progress: Instant,
    /// Fault injection: acknowledgements of this message and later ones
    /// are dropped.
    pub(crate) lose_acks_from: Option<u64>,
}

impl Batch {
    pub(crate) fn new(id: String) -> Self {
        Self {
            id,
            pending: VecDeque::new(),
            acked: 0,
            sent: 0,
            ending: false,
            progress: Instant::now(),
            lose_acks_from: None,
        }
    }

    /// Messages published and not acknowledged.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// The window id of the latest message not acknowledged.
    pub(crate) fn last_id(&self) -> Option<u64> {
        self.pending.back().copied()
    }

    /// Takes window id `id` as the next message; returns its place in the
    /// batch and the reply subject to publish it with.
    pub(crate) fn add(&mut self, id: u64, inbox: &str, flow: u16) -> (u64, String) {
        if self.pending.is_empty() {
            self.progress = Instant::now();
        }
        self.pending.push_back(id);
        self.sent += 1;
        let op = if self.sent == 1 { OP_START } else { OP_APPEND };
        (self.sent, self.reply(inbox, flow, self.sent, op))
    }

    /// The reply subject of the message that ends the batch.
    pub(crate) fn end(&mut self, inbox: &str, flow: u16) -> String {
        self.ending = true;
        self.reply(inbox, flow, self.sent + 1, OP_COMMIT_END)
    }

    fn reply(&self, inbox: &str, flow: u16, n: u64, op: u8) -> String {
        let mut s = String::with_capacity(inbox.len() + self.id.len() + 32);
        let _ = write!(s, "{inbox}.{}.{flow}.fail.{n}.{op}.{SUFFIX}", self.id);
        s
    }

    /// Messages 1 to `n` are stored: the window ids newly acknowledged.
    /// Nothing while acknowledgements are being lost from `n` on.
    pub(crate) fn ack_to(&mut self, n: u64) -> Vec<u64> {
        if self.lose_acks_from.is_some_and(|l| n >= l) {
            return Vec::new();
        }
        let n = n.min(self.sent);
        let mut ids = Vec::new();
        while self.acked < n {
            ids.extend(self.pending.pop_front());
            self.acked += 1;
        }
        if !ids.is_empty() {
            self.progress = Instant::now();
        }
        ids
    }

    /// The window ids not acknowledged, taken out (the batch is over).
    pub(crate) fn take_pending(&mut self) -> Vec<u64> {
        self.acked = self.sent;
        self.pending.drain(..).collect()
    }

    /// The batch id in a reply subject under `inbox`, if it is one.
    pub(crate) fn id_of<'s>(subject: &'s str, inbox: &str) -> Option<&'s str> {
        let rest = subject.strip_prefix(inbox)?.strip_prefix('.')?;
        rest.split('.').next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_of_every_kind_are_read() {
        assert_eq!(
            parse(br#"{"type":"ack","seq":500,"msgs":500}"#),
            Some(Reply::Flow { seq: 500 })
        );
        assert_eq!(
            parse(br#"{"type":"gap","last_seq":7,"seq":9}"#),
            Some(Reply::Gap {
                expected: 7,
                seq: 9
            })
        );
        assert_eq!(
            parse(
                br#"{"type":"err","seq":3,"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 5"}}"#
            ),
            Some(Reply::Error {
                seq: 3,
                code: 10071,
                description: "wrong last sequence: 5".to_owned()
            })
        );
        assert_eq!(
            parse(br#"{"stream":"S","domain":"d","seq":42,"batch":"b-1","count":12}"#),
            Some(Reply::Done {
                count: 12,
                stream_seq: 42
            })
        );
        assert_eq!(
            parse(
                br#"{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 0"},"stream":"S","seq":0}"#
            ),
            Some(Reply::Refused {
                code: 10071,
                description: "wrong last sequence: 0".to_owned()
            })
        );
        for other in [
            &br#"{"type":"later","seq":1}"#[..],
            br#"{"stream":"S","seq":4}"#,
            br#"{"type":"ack"}"#,
            b"not json",
            b"",
        ] {
            assert_eq!(parse(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn acknowledgements_take_a_prefix_of_the_batch() {
        let mut b = Batch::new("x-1".to_owned());
        let (n, reply) = b.add(10, "_INBOX.abc", 4);
        assert_eq!((n, reply.as_str()), (1, "_INBOX.abc.x-1.4.fail.1.0.$FI"));
        for id in 11..15 {
            b.add(id, "_INBOX.abc", 4);
        }
        assert_eq!(b.in_flight(), 5);
        assert_eq!(b.ack_to(0), Vec::<u64>::new());
        assert_eq!(b.ack_to(3), vec![10, 11, 12]);
        // Acknowledgements are cumulative: an older one changes nothing.
        assert_eq!(b.ack_to(2), Vec::<u64>::new());
        // Never beyond what was published.
        assert_eq!(b.ack_to(9), vec![13, 14]);
        assert_eq!(b.in_flight(), 0);
        assert_eq!(b.end("_INBOX.abc", 4), "_INBOX.abc.x-1.4.fail.6.3.$FI");
        assert!(b.ending);
    }

    #[test]
    fn lost_acknowledgements_and_the_rest_of_a_batch() {
        let mut b = Batch::new("x-2".to_owned());
        for id in 0..6 {
            b.add(id, "_INBOX.abc", 2);
        }
        b.lose_acks_from = Some(4);
        assert_eq!(b.ack_to(2), vec![0, 1]);
        assert_eq!(b.ack_to(4), Vec::<u64>::new());
        assert_eq!(b.take_pending(), vec![2, 3, 4, 5]);
        assert_eq!(b.in_flight(), 0);
    }

    #[test]
    fn the_batch_id_is_read_from_a_reply_subject() {
        assert_eq!(
            Batch::id_of("_INBOX.abc.x-1.4.fail.6.3.$FI", "_INBOX.abc"),
            Some("x-1")
        );
        assert_eq!(Batch::id_of("_INBOX.abcd.x-1.4", "_INBOX.abc"), None);
        assert_eq!(Batch::id_of("other.x-1", "_INBOX.abc"), None);
    }
}
