//! [`Forwarder`]: follows a journal and publishes every record to a
//! JetStream stream, persisting its cursor only over acknowledged records.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::header::HeaderName;
use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use async_nats::{HeaderMap, Subject};
use bytes::Bytes;
use futures_util::stream::{FuturesOrdered, StreamExt};
use futures_util::FutureExt;
use ringlog::journal::{
    read_cursor_file, segment_file_name, write_cursor_file, Cursor, FollowBound, FollowEvent,
    FollowOptions, Follower, Record,
};
use serde::Serialize;

use crate::batch::{self, Batch, Reply};
use crate::error::{ForwardError, NatsError};
use crate::headers::{RecordHeaders, HEADER_RECORD};
use crate::stream::{ensure_stream_marked, StreamSpec, ORDER_METADATA};
use crate::window::{AckWindow, SlotState};

// The names once, not parsed and allocated again for every message.
const NAME_RECORD: HeaderName = HeaderName::from_static(HEADER_RECORD);
const NAME_MSG_ID: HeaderName = HeaderName::from_static("Nats-Msg-Id");
const NAME_EXPECTED_LAST_SEQ: HeaderName = HeaderName::from_static("Nats-Expected-Last-Sequence");

/// Records the reading thread hands over at once (at most), and the
/// payload bytes (at most) of such a batch.
const READ_BATCH: usize = 4096;
const READ_BATCH_BYTES: usize = 4 << 20;

/// The most unacknowledged publishes allowed: the JetStream context holds at
/// most 5,000 acknowledgements in flight.
pub const MAX_WINDOW: usize = 4999;

/// How duplicates are kept out of the stream when a record is published
/// again (after a failure, or after a restart from the cursor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dedup {
    /// Only the `Nats-Msg-Id` header: the server drops a record it stored
    /// within its duplicate window (and says so in the acknowledgement).
    /// Relaxed order only: in [`Order::Strict`] the stream sequence each
    /// publish expects keeps duplicates out, and no `Nats-Msg-Id` is sent.
    /// So relaxed order with `MsgId` on a stream marked strict
    /// ([`ORDER_METADATA`](crate::ORDER_METADATA)) is refused
    /// ([`ForwardError::StreamConflict`]): its records would not be
    /// recognised.
    MsgId,
    /// Also, before the first record of each producer after a start, read
    /// the last message on `P.<producer>` and skip records up to its
    /// sequence: exactly once beyond the duplicate window, for producers
    /// whose sequence numbers increase (as the journal's `verify` checks).
    /// Only when the subject holds one message per sequence number from its
    /// first to its last: a record lost while later ones were stored (a
    /// forwarder that gave up on it, or was killed before its retry) is
    /// not skipped; for such a producer nothing is, and
    /// [`Metrics::incomplete_producers`] counts it.
    LastSubject,
}

/// Whether the stream must hold the records in journal order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    /// Every publish carries `Nats-Expected-Last-Sequence`: the stream's
    /// last sequence at the start (or after a retry's look at the stream)
    /// plus the records published before it since. A lost publish makes
    /// the server refuse the pipelined ones after it, and a stored one
    /// published again (its acknowledgement lost) is refused too. Before
    /// publishing again the forwarder reads the stream's last message:
    /// records up to it are in the stream, the rest are published again,
    /// in order, so the stream ends in journal order with each record
    /// once, beyond any duplicate window and without `Nats-Msg-Id` (whose
    /// bookkeeping costs the server more than the order check). At the
    /// start the stream's last message must be a record of
    /// this journal (records up to it are skipped as already in the
    /// stream) or the stream must be empty, otherwise
    /// [`ForwardError::ForeignStream`]. The forwarder must be the stream's
    /// only publisher: another one's messages are refused records here.
    Strict,
    /// No expectation: a lost publish retried is stored behind later
    /// records of its producer, counted in [`Metrics::out_of_order`]. For
    /// streams with other publishers.
    Relaxed,
    /// [`Order::Strict`] when the stream carries the metadata
    /// [`ORDER_METADATA`](crate::ORDER_METADATA) `strict`, which a
    /// forwarder in this mode or [`Order::Strict`] sets on a stream it
    /// creates; [`Order::Relaxed`] otherwise.
    Auto,
}

/// Counters of a forwarding run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Records published (a record counts once, however often retried).
    pub forwarded: u64,
    /// Acknowledgements received, duplicates included.
    pub acknowledged: u64,
    /// Publishes repeated after a failure.
    pub retried: u64,
    /// Acknowledgements in which the server said the record was a duplicate.
    pub duplicates: u64,
    /// Records the stream already held, so not published (or, when their
    /// acknowledgement was lost, not published again): by
    /// [`Dedup::LastSubject`], and in [`Order::Strict`] by the stream's
    /// last message at the start or before a retry.
    pub already_in_stream: u64,
    /// Records read from the journal and not yet acknowledged: those in
    /// the window, those waiting to be published, those read and not yet
    /// handed over, and (after a stop) those read and never published.
    /// Records the reading thread has not reached yet are counted only in
    /// `lag_bytes`.
    pub lag_records: u64,
    /// Journal frame bytes past the committed cursor, up to the end of the
    /// journal as last seen by the reading thread.
    pub lag_bytes: u64,
    /// Producers whose messages in the stream, when [`Dedup::LastSubject`]
    /// looked at them, were not one per sequence number from the first to
    /// the last (a lost publish never retried): none of their records was
    /// skipped.
    pub incomplete_producers: u64,
    /// Records that the server stored after a later record of their
    /// producer (a lost publish retried behind publishes that went
    /// through); `stream-check` reports the same from the stream.
    pub out_of_order: u64,
    /// Publishes the server refused because the stream's last message was
    /// not the record before them ([`Order::Strict`]: a lost publish
    /// ahead of them); each is published again. In batches the server
    /// refuses one message and ends the batch: counted once.
    pub order_refusals: u64,
    /// Whether this run kept the stream in journal order ([`Order`]).
    pub strict_order: bool,
    /// Whether this run published in fast-ingest batches
    /// ([`ForwardOptions::batch`]).
    pub batched: bool,
    /// Batches begun ([`ForwardOptions::batch`]): one per run of records
    /// published without a pause or a failure.
    pub batches: u64,
    /// Times the cursor file was written.
    pub cursor_writes: u64,
    /// The committed cursor, as in the cursor file.
    pub cursor: Option<String>,
    /// The last publish failure (retried), with its causes.
    pub last_error: Option<String>,
    /// Seconds since the start.
    pub elapsed_secs: f64,
}

/// Fault injection for tests: the publishes of one record are lost, as a
/// message the server never received would be. Each is acknowledged by
/// nothing, so it fails after the acknowledgement timeout, while the
/// publishes of later records go through.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LosePublish {
    /// The record's producer.
    pub producer: u32,
    /// The record's sequence number.
    pub seq: u64,
    /// Publishes of the record are lost for this long after its first one
    /// (zero: only the first one is lost).
    pub lose_for: Duration,
    /// Only the acknowledgements are lost: the publishes reach the server
    /// and are stored, and each fails as a timed-out one does.
    pub ack_only: bool,
}

/// A progress callback, called about every [`ForwardOptions::progress_interval`].
pub type Progress = Box<dyn FnMut(&Metrics) + Send>;

/// What a [`Forwarder`] does.
pub struct ForwardOptions {
    /// The journal directory.
    pub dir: PathBuf,
    /// Server URLs, comma-separated (`nats://127.0.0.1:4222,nats://…`).
    pub server: String,
    /// The stream and its configuration.
    pub stream: StreamSpec,
    /// Where the cursor is kept; `None`: start from the oldest record and
    /// keep no cursor.
    pub cursor_file: Option<PathBuf>,
    /// Keep following the journal; otherwise stop once caught up.
    pub follow: bool,
    /// Most unacknowledged publishes (1 to [`MAX_WINDOW`]).
    pub window: usize,
    /// How long to wait for one acknowledgement before publishing again
    /// (in batches: how long a batch with records in flight may go without
    /// an acknowledgement before it is given up).
    pub ack_timeout: Duration,
    /// Give up on a record after failing this long (`None`: never).
    pub retry_for: Option<Duration>,
    /// How duplicates are avoided in relaxed order. In strict order
    /// ([`Order::Strict`]) the stream's last message says which records it
    /// holds, so [`Dedup::LastSubject`] reads nothing per producer.
    pub dedup: Dedup,
    /// Whether the stream is kept in journal order.
    pub order: Order,
    /// In [`Order::Strict`], on a stream that allows it (`allow_batched`,
    /// which a forwarder sets on a stream it creates in strict order;
    /// JetStream 2.14 or later), publish in fast-ingest batches: the
    /// server acknowledges every few hundred messages instead of each one,
    /// which costs the servers less per record (see the `batch` module's
    /// protocol). Otherwise, and when `false`, every publish is
    /// acknowledged on its own.
    pub batch: bool,
    /// Least time between two writes of the cursor file.
    pub cursor_interval: Duration,
    /// Refuse to start from the oldest record when records before it were
    /// already deleted (no cursor file yet): that is a gap too.
    pub allow_initial_gap: bool,
    /// Set to stop: nothing more is published, the window is drained and
    /// the cursor written.
    pub stop: Option<Arc<AtomicBool>>,
    /// Called with the metrics while running.
    pub progress: Option<Progress>,
    /// How often `progress` is called.
    pub progress_interval: Duration,
    /// Fault injection for tests; `None` in any real use.
    #[doc(hidden)]
    pub lose_publish: Option<LosePublish>,
}

impl std::fmt::Debug for ForwardOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardOptions")
            .field("dir", &self.dir)
            .field("server", &self.server)
            .field("stream", &self.stream)
            .field("cursor_file", &self.cursor_file)
            .field("follow", &self.follow)
            .field("window", &self.window)
            .field("dedup", &self.dedup)
            .field("order", &self.order)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl ForwardOptions {
    /// Options with the defaults: window 1024, acknowledgement timeout 5 s,
    /// retry for ever, [`Dedup::LastSubject`], [`Order::Auto`], batches
    /// where the stream allows them, cursor written at most every 100 ms.
    pub fn new(dir: impl Into<PathBuf>, server: impl Into<String>, stream: StreamSpec) -> Self {
        Self {
            dir: dir.into(),
            server: server.into(),
            stream,
            cursor_file: None,
            follow: false,
            window: 1024,
            ack_timeout: Duration::from_secs(5),
            retry_for: None,
            dedup: Dedup::LastSubject,
            order: Order::Auto,
            batch: true,
            cursor_interval: Duration::from_millis(100),
            allow_initial_gap: false,
            stop: None,
            progress: None,
            progress_interval: Duration::from_secs(1),
            lose_publish: None,
        }
    }

    fn validate(&self) -> Result<(), ForwardError> {
        self.stream.validate()?;
        if !(1..=MAX_WINDOW).contains(&self.window) {
            return Err(ForwardError::InvalidOption(format!(
                "window {}: must be 1 to {MAX_WINDOW}",
                self.window
            )));
        }
        if self.ack_timeout.is_zero() {
            return Err(ForwardError::InvalidOption(
                "the acknowledgement timeout must be longer than 0".to_owned(),
            ));
        }
        if self.server.split(',').any(|s| s.trim().is_empty()) {
            return Err(ForwardError::InvalidOption(format!(
                "server list {:?} has an empty entry",
                self.server
            )));
        }
        if let Some(c) = &self.cursor_file {
            let parent = c.parent().filter(|p| !p.as_os_str().is_empty());
            if c.is_dir() || parent.is_some_and(|p| !p.is_dir()) {
                return Err(ForwardError::InvalidOption(format!(
                    "cursor file {}: must be a file in an existing directory",
                    c.display()
                )));
            }
        }
        if !self.dir.is_dir() {
            return Err(ForwardError::InvalidOption(format!(
                "{} is not a directory",
                self.dir.display()
            )));
        }
        Ok(())
    }
}

/// What a finished run reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForwardReport {
    /// The counters.
    pub metrics: Metrics,
    /// Whether the run stopped because [`ForwardOptions::stop`] was set.
    pub stopped: bool,
}

/// A message to publish, kept until acknowledged so it can be published
/// again; its headers are built for each publish (no copy kept).
#[derive(Debug, Clone)]
struct Outgoing {
    producer: u32,
    seq: u64,
    timestamp: u64,
    crc: u32,
    subject: Subject,
    payload: Bytes,
    /// [`Order::Strict`]: the record before it in journal order.
    prev: Option<(u32, u64)>,
    /// [`Order::Strict`]: the stream's last sequence it expects, sent as
    /// `Nats-Expected-Last-Sequence` (`None`: relaxed order, it carries
    /// `Nats-Msg-Id` instead).
    expect_seq: Option<u64>,
    /// When its first publish failed.
    first_failure: Option<Instant>,
    /// Publishes after the first.
    attempts: u64,
    /// Whether the publish in flight is a retry.
    retried: bool,
}

impl Outgoing {
    fn of(subject: Subject, r: Record) -> Self {
        Self {
            producer: r.producer,
            seq: r.seq,
            timestamp: r.timestamp,
            crc: r.crc,
            subject,
            payload: Bytes::from(r.payload),
            prev: None,
            expect_seq: None,
            first_failure: None,
            attempts: 0,
            retried: false,
        }
    }

    fn message(&self) -> PublishMessage {
        PublishMessage::build()
            .payload(self.payload.clone())
            .headers(self.headers())
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let record = RecordHeaders {
            producer: self.producer,
            seq: self.seq,
            timestamp: self.timestamp,
            crc: self.crc,
        };
        headers.insert(NAME_RECORD, record.value());
        match self.expect_seq {
            Some(seq) => headers.insert(NAME_EXPECTED_LAST_SEQ, seq.to_string()),
            None => headers.insert(NAME_MSG_ID, msg_id(self.producer, self.seq)),
        }
        headers
    }
}

/// The `Nats-Msg-Id` of a record: `<producer>-<seq>`.
pub fn msg_id(producer: u32, seq: u64) -> String {
    format!("{producer}-{seq}")
}

/// What the reading thread hands over.
enum Read {
    Records {
        records: Vec<Record>,
        journal_end: u64,
    },
    Idle {
        journal_end: u64,
    },
    CaughtUp,
    Failed(ForwardError),
}

/// Frame bytes in the journal: the current segment's base position plus its
/// frame bytes, plus those of later segments (their headers counted as this
/// one's).
fn journal_end(dir: &Path, r: &Record) -> u64 {
    let len = |n: u64| {
        std::fs::metadata(dir.join(segment_file_name(n)))
            .map(|m| m.len().saturating_sub(u64::from(r.stamp.header_len)))
            .ok()
    };
    let mut end = r.stamp.base_position + len(r.segment).unwrap_or(0);
    let mut n = r.segment + 1;
    while let Some(l) = len(n) {
        end += l;
        n += 1;
    }
    end
}

/// Reads the journal on a thread of its own: batches of records that it
/// made durable itself (`fdatasync` of the segment after reading them, so
/// whatever the writer's sync policy, only locally durable records are
/// published). So it follows every frame written
/// ([`FollowBound::Written`]) rather than waiting for the writer's durable
/// watermark: a writer that syncs rarely does not hold forwarding back.
fn spawn_reader(
    dir: PathBuf,
    start: Option<Cursor>,
    follow: bool,
    allow_initial_gap: bool,
    stop: Arc<AtomicBool>,
    handed: Arc<AtomicU64>,
    tx: tokio::sync::mpsc::Sender<Read>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let fail = |e| ForwardError::Journal {
            dir: dir.clone(),
            source: e,
        };
        let options = FollowOptions {
            resume_past_deleted: true,
            bound: FollowBound::Written,
            ..Default::default()
        };
        let follower = match &start {
            Some(c) => Follower::from_cursor(&dir, c, options),
            None => Follower::open(&dir, options),
        };
        let mut follower = match follower {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Read::Failed(fail(e)));
                return;
            }
        };
        let mut first = start.is_none() && !allow_initial_gap;
        let mut synced: Option<(u64, File)> = None;
        let mut last: Option<Record> = None;
        // Relaxed: the flag carries no data.
        while !stop.load(Ordering::Relaxed) {
            let mut records = Vec::new();
            let mut bytes = 0usize;
            let mut outcome = None;
            while records.len() < READ_BATCH && bytes < READ_BATCH_BYTES {
                let event = if records.is_empty() && follow {
                    follower.next_before(Some(Instant::now() + Duration::from_millis(100)))
                } else {
                    follower.try_next()
                };
                match event {
                    Ok(Some(FollowEvent::Record(r))) => {
                        if first {
                            first = false;
                            let at = r.stamp.base_position
                                + r.offset.saturating_sub(u64::from(r.stamp.header_len));
                            if at > 0 {
                                outcome = Some(Read::Failed(ForwardError::Gap {
                                    first_segment: 0,
                                    last_segment: r.segment.saturating_sub(1),
                                    from_position: 0,
                                    to_position: at,
                                }));
                                break;
                            }
                        }
                        bytes += r.payload.len();
                        records.push(r);
                    }
                    Ok(Some(FollowEvent::Gap(g))) => {
                        outcome = Some(Read::Failed(ForwardError::Gap {
                            first_segment: g.first_segment,
                            last_segment: g.last_segment,
                            from_position: g.from_position,
                            to_position: g.to_position,
                        }));
                        break;
                    }
                    Ok(None) => {
                        if records.is_empty() && !follow {
                            outcome = Some(Read::CaughtUp);
                        }
                        break;
                    }
                    Err(e) => {
                        outcome = Some(Read::Failed(fail(e)));
                        break;
                    }
                }
            }
            // Durable before published: sync every segment the batch read.
            let mut segments: Vec<u64> = records.iter().map(|r| r.segment).collect();
            segments.dedup();
            for n in segments {
                let path = dir.join(segment_file_name(n));
                let result = match &synced {
                    Some((m, f)) if *m == n => f.sync_data(),
                    _ => File::open(&path).and_then(|f| {
                        let r = f.sync_data();
                        synced = Some((n, f));
                        r
                    }),
                };
                if let Err(source) = result {
                    let _ = tx.blocking_send(Read::Failed(ForwardError::Sync { path, source }));
                    return;
                }
            }
            if let Some(r) = records.last() {
                last = Some(r.clone());
            }
            let end = last.as_ref().map_or(0, |r| journal_end(&dir, r));
            let item = if records.is_empty() {
                Read::Idle { journal_end: end }
            } else {
                // Relaxed: a count for the metrics, read with no other data.
                handed.fetch_add(records.len() as u64, Ordering::Relaxed);
                Read::Records {
                    records,
                    journal_end: end,
                }
            };
            if tx.blocking_send(item).is_err() {
                return;
            }
            if let Some(o) = outcome {
                let _ = tx.blocking_send(o);
                return;
            }
        }
    })
}

type AckFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = (u64, Result<jetstream::publish::PublishAck, NatsError>)>
            + Send,
    >,
>;

/// Whether a publish error is worth publishing again: in strict order a
/// failed expectation is (a lost publish ahead of it, or the record stored
/// already, which the retry's look at the stream settles), otherwise
/// nothing sets one.
fn retryable(kind: &PublishErrorKind, strict: bool) -> bool {
    match kind {
        PublishErrorKind::MaxPayloadExceeded => false,
        PublishErrorKind::WrongLastMessageId | PublishErrorKind::WrongLastSequence => strict,
        _ => true,
    }
}

/// Connects to the servers, reconnecting by itself with a backoff of
/// 100 ms doubling to 5 s.
///
/// # Errors
///
/// [`ForwardError::Connect`].
pub async fn connect(server: &str) -> Result<async_nats::Client, ForwardError> {
    let urls: Vec<async_nats::ServerAddr> = server
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|e: std::io::Error| ForwardError::Connect {
            server: server.to_owned(),
            source: Box::new(e),
        })?;
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            let ms = 100u64.saturating_mul(1 << attempts.min(6) as u64);
            Duration::from_millis(ms.min(5000))
        })
        .connection_timeout(Duration::from_secs(5))
        .connect(urls)
        .await
        .map_err(|e| ForwardError::Connect {
            server: server.to_owned(),
            source: Box::new(e),
        })
}

/// Follows a journal and forwards its records to a stream.
///
/// # Examples
///
/// ```no_run
/// use ringlog_forward::{Forwarder, ForwardOptions, StreamSpec};
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// let mut options = ForwardOptions::new("journal", "nats://127.0.0.1:4222", StreamSpec::new("LOG"));
/// options.cursor_file = Some("journal.cursor".into());
/// let report = rt.block_on(Forwarder::new(options).run()).unwrap();
/// println!("{} records acknowledged", report.metrics.acknowledged);
/// ```
#[derive(Debug)]
pub struct Forwarder {
    options: ForwardOptions,
}

impl Forwarder {
    /// A forwarder; nothing is done until [`run`](Self::run).
    pub fn new(options: ForwardOptions) -> Self {
        Self { options }
    }

    /// Runs until caught up (or, with [`ForwardOptions::follow`], until
    /// stopped), then waits for every outstanding acknowledgement and writes
    /// the cursor.
    ///
    /// # Errors
    ///
    /// Invalid options, connection, stream conflicts, journal errors, a
    /// [`ForwardError::Gap`], a refused record. The cursor file holds the
    /// last committed cursor whatever the error.
    pub async fn run(mut self) -> Result<ForwardReport, ForwardError> {
        self.options.validate()?;
        let o = &mut self.options;
        let start = match &o.cursor_file {
            Some(p) => read_cursor_file(p).map_err(|source| ForwardError::Cursor {
                path: p.clone(),
                source,
            })?,
            None => None,
        };
        let client = connect(&o.server).await?;
        let js = jetstream::ContextBuilder::new()
            .timeout(o.ack_timeout)
            .max_ack_inflight(o.window + 1)
            .backpressure_on_inflight(true)
            .build(client);
        let stream = ensure_stream_marked(&js, &o.stream, o.order != Order::Relaxed).await?;
        let marked_strict = stream
            .cached_info()
            .config
            .metadata
            .get(ORDER_METADATA)
            .is_some_and(|v| v == "strict");
        let strict = match o.order {
            Order::Strict => true,
            Order::Relaxed => false,
            Order::Auto => marked_strict,
        };

        if !strict && o.dedup == Dedup::MsgId && marked_strict {
            // Its records forwarded in strict order carry no Nats-Msg-Id:
            // the server could not tell a replay of them from new records.
            return Err(ForwardError::StreamConflict {
                stream: o.stream.name.clone(),
                what: format!(
                    "it is marked {ORDER_METADATA}: strict, and records forwarded in strict \
                     order carry no Nats-Msg-Id, so relaxed order deduplicating on it alone \
                     (--dedup msg-id) could store them twice; use last-subject \
                     deduplication, or strict order"
                ),
            });
        }
        let batched = strict && o.batch && stream.cached_info().config.allow_batch_publish;
        let mut replies = None;
        let batching =
            if batched {
                let client = js.client();
                let inbox = client.new_inbox();
                let sub = client.subscribe(format!("{inbox}.>")).await.map_err(|e| {
                    ForwardError::Stream {
                        stream: o.stream.name.clone(),
                        op: "subscribe to batch acknowledgements",
                        source: Box::new(e),
                    }
                })?;
                replies = Some(sub);
                let token = inbox.rsplit('.').next().unwrap_or("b").to_owned();
                Some(Batching {
                    client,
                    inbox,
                    flow: u16::try_from((o.window / 2).clamp(1, usize::from(batch::MAX_FLOW)))
                        .unwrap_or(batch::MAX_FLOW),
                    token,
                    batches: VecDeque::new(),
                })
            } else {
                None
            };
        let started = Instant::now();
        let stop_reader = Arc::new(AtomicBool::new(false));
        let handed = Arc::new(AtomicU64::new(0));
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let reader = spawn_reader(
            o.dir.clone(),
            start,
            o.follow,
            o.allow_initial_gap,
            Arc::clone(&stop_reader),
            Arc::clone(&handed),
            tx,
        );
        let mut run = Run {
            js: &js,
            batching,
            stream: &stream,
            window: AckWindow::new(start),
            acks: FuturesOrdered::new(),
            metrics: Metrics::default(),
            last_stored: HashMap::new(),
            dedup: o.dedup,
            retry_for: o.retry_for,
            prefix: o.stream.subject_prefix.clone(),
            subjects: HashMap::new(),
            handed,
            received: 0,
            newest_stored: HashMap::new(),
            dropped: 0,
            retry_delay: Duration::from_millis(100),
            retries_in_flight: 0,
            ack_timeout: o.ack_timeout,
            lose: o.lose_publish.map(|l| (l, None)),
            strict,
            prev: start
                .as_ref()
                .and_then(|c| c.last)
                .map(|l| (l.producer, l.seq)),
            next_seq: None,
            skip_until: None,
        };
        run.metrics.strict_order = strict;
        run.metrics.batched = batched;
        if strict {
            run.seed(start.as_ref()).await?;
        }
        let mut reader_idle = false;
        let mut queue: VecDeque<Record> = VecDeque::new();
        let mut reading = true;
        let mut stopped = false;
        let mut failure: Option<ForwardError> = None;
        let mut journal_end_pos = 0u64;
        let mut written: Option<Cursor> = start;
        let mut last_write = Instant::now();
        let mut last_progress = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        let result: Result<(), ForwardError> = async {
            loop {
                if let Some(s) = run.skip_until {
                    // The journal read to its end without the stream's
                    // last message.
                    if queue.is_empty() && (reader_idle || !reading) && failure.is_none() {
                        return Err(run.foreign(
                            s.stream_seq,
                            format!(
                                "is record {}, which is not in the journal after the cursor",
                                msg_id(s.producer, s.seq)
                            ),
                        ));
                    }
                }
                while run.window.len() < o.window
                    && !run.window.has_failed()
                    && run.retries_in_flight == 0
                {
                    let Some(r) = queue.pop_front() else { break };
                    run.publish(r).await?;
                }
                if queue.is_empty() && (reader_idle || !reading) {
                    // A pause (the reading thread found nothing new, or
                    // is done): end the batch, so its last records are
                    // acknowledged now rather than at the next flow point.
                    // A queue that ran dry while the reading thread is
                    // still busy is refilled in a moment: the batch goes
                    // on, and the server's acknowledgements keep their
                    // pace rather than start again from one per message.
                    run.end_batch().await;
                }
                let retrying =
                    run.window.has_failed() && run.acks.is_empty() && run.batch_in_flight() == 0;
                if retrying {
                    run.retry_failed().await?;
                    // New records wait for the retried ones: have them
                    // acknowledged now, not at the next flow point.
                    run.end_batch().await;
                }
                if !reading && queue.is_empty() && run.window.is_empty() {
                    break;
                }
                if retrying {
                    // Nothing is in flight; intake waits for the retries.
                } else {
                    tokio::select! {
                        Some((id, result)) = run.acks.next(), if !run.acks.is_empty() => {
                            run.settle(id, result)?;
                            // And every other one already there, without a
                            // round through the select.
                            while let Some(Some((id, result))) = run.acks.next().now_or_never() {
                                run.settle(id, result)?;
                            }
                        }
                        Some(m) = next_reply(&mut replies), if replies.is_some() => {
                            run.on_batch_reply(&m)?;
                            while let Some(m) = replies.as_mut().and_then(|r| r.next().now_or_never().flatten()) {
                                run.on_batch_reply(&m)?;
                            }
                        }
                        // Taken before the queue runs dry, so publishing never
                        // waits for the reading thread's hand-over.
                        read = rx.recv(), if reading && queue.len() < o.window => match read {
                            Some(Read::Records { records, journal_end }) => {
                                reader_idle = false;
                                journal_end_pos = journal_end;
                                run.received += records.len() as u64;
                                queue.extend(records);
                            }
                            Some(Read::Idle { journal_end }) => {
                                reader_idle = true;
                                journal_end_pos = journal_end.max(journal_end_pos);
                            }
                            Some(Read::CaughtUp) | None => reading = false,
                            Some(Read::Failed(e)) => {
                                reading = false;
                                failure = Some(e);
                            }
                        },
                        _ = tick.tick() => {}
                    }
                }
                run.expire_batches()?;
                // Relaxed: the flag carries no data.
                if reading && o.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                    reading = false;
                    stopped = true;
                    run.dropped += queue.len() as u64;
                    queue.clear();
                }
                let committed = run.window.committed().copied();
                if let Some(path) = &o.cursor_file {
                    if committed != written && last_write.elapsed() >= o.cursor_interval {
                        persist(path, committed.as_ref(), &mut run.metrics)?;
                        written = committed;
                        last_write = Instant::now();
                    }
                }
                if let Some(p) = o.progress.as_mut() {
                    if last_progress.elapsed() >= o.progress_interval {
                        last_progress = Instant::now();
                        run.fill_metrics(&queue, journal_end_pos, started);
                        p(&run.metrics);
                    }
                }
            }
            Ok(())
        }
        .await;
        // Relaxed: the flag carries no data.
        stop_reader.store(true, Ordering::Relaxed);
        drop(rx);
        let _ = reader.join();
        // Whatever happened, the cursor file holds what was acknowledged.
        let committed = run.window.committed().copied();
        if let Some(path) = &o.cursor_file {
            if committed != written {
                persist(path, committed.as_ref(), &mut run.metrics)?;
            }
        }
        result?;
        if let Some(e) = failure {
            return Err(e);
        }
        run.fill_metrics(&queue, journal_end_pos, started);
        Ok(ForwardReport {
            metrics: run.metrics,
            stopped,
        })
    }
}

/// The next message on the batch acknowledgements' subscription.
async fn next_reply(r: &mut Option<async_nats::Subscriber>) -> Option<async_nats::Message> {
    r.as_mut()?.next().await
}

fn persist(path: &Path, c: Option<&Cursor>, m: &mut Metrics) -> Result<(), ForwardError> {
    let Some(c) = c else { return Ok(()) };
    write_cursor_file(path, c).map_err(|source| ForwardError::Cursor {
        path: path.to_owned(),
        source,
    })?;
    m.cursor_writes += 1;
    Ok(())
}

/// What [`Run::probe`] found on a producer's subject.
enum Probe {
    /// No message.
    Empty,
    /// One message per sequence number up to `last`.
    Complete { last: u64 },
    /// Fewer or more messages than sequence numbers from `first` to `last`
    /// (or a message without a readable sequence header).
    Holes {
        first: u64,
        last: u64,
        messages: u64,
    },
}

/// [`ForwardOptions::batch`]: the batches being published, the oldest
/// first; only the last one may be taking records (the others were ended
/// and wait for their final acknowledgement).
struct Batching {
    client: async_nats::Client,
    /// Replies come to `<inbox>.<batch id>.…`.
    inbox: String,
    /// Messages per flow acknowledgement asked for: at most half the
    /// window, so the window never waits for an acknowledgement that only
    /// a fuller window would bring.
    flow: u16,
    /// Batch ids are `<token>-<n>`, `n` counting the run's batches
    /// ([`Metrics::batches`]).
    token: String,
    batches: VecDeque<Batch>,
}

struct Run<'a> {
    js: &'a jetstream::Context,
    /// `Some` when publishing in batches.
    batching: Option<Batching>,
    stream: &'a jetstream::stream::Stream,
    window: AckWindow<Outgoing>,
    acks: FuturesOrdered<AckFuture>,
    metrics: Metrics,
    last_stored: HashMap<u32, Option<u64>>,
    dedup: Dedup,
    retry_for: Option<Duration>,
    prefix: String,
    /// `<prefix>.<producer>`, made once per producer.
    subjects: HashMap<u32, Subject>,
    /// Records the reading thread handed over, counted by it.
    handed: Arc<AtomicU64>,
    /// Records taken from the reading thread.
    received: u64,
    /// Per producer, the window id and sequence of the latest record (in
    /// journal order) that this run stored, not as a duplicate.
    newest_stored: HashMap<u32, (u64, u64)>,
    /// Records taken and never published (dropped on a stop).
    dropped: u64,
    retry_delay: Duration,
    retries_in_flight: usize,
    ack_timeout: Duration,
    /// [`LosePublish`], and when its record's first publish was lost.
    lose: Option<(LosePublish, Option<Instant>)>,
    /// [`Order::Strict`].
    strict: bool,
    /// The latest record taken into the window (journal order), or the
    /// one before the starting cursor.
    prev: Option<(u32, u64)>,
    /// [`Order::Strict`]: the `Nats-Expected-Last-Sequence` of the next
    /// record taken into the window (`None` until the start's look at the
    /// stream says).
    next_seq: Option<u64>,
    /// The stream's last message at the start, a record after the cursor:
    /// records up to it are in the stream already.
    skip_until: Option<LastInStream>,
}

/// The stream's last message, a record of the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LastInStream {
    producer: u32,
    seq: u64,
    crc: u32,
    stream_seq: u64,
}

impl Run<'_> {
    fn fill_metrics(&mut self, queue: &VecDeque<Record>, journal_end: u64, started: Instant) {
        let committed = self.window.committed();
        // Relaxed: a count for the metrics, read with no other data.
        let in_transit = self
            .handed
            .load(Ordering::Relaxed)
            .saturating_sub(self.received);
        self.metrics.lag_records =
            (self.window.len() + queue.len()) as u64 + in_transit + self.dropped;
        self.metrics.lag_bytes = journal_end.saturating_sub(committed.map_or(0, Cursor::position));
        self.metrics.cursor = committed.map(ToString::to_string);
        self.metrics.elapsed_secs = started.elapsed().as_secs_f64();
    }

    /// The sequence up to which the producer's records may be skipped: that
    /// of its last message in the stream, provided the stream holds one
    /// message for every sequence number from its first message's to that
    /// one. Otherwise (a publish was lost while later ones were stored, and
    /// the forwarder stopped before its retry was) `None`: nothing is
    /// skipped and `Nats-Msg-Id` alone keeps duplicates out.
    async fn last_stored(&mut self, producer: u32) -> Result<Option<u64>, ForwardError> {
        if let Some(&s) = self.last_stored.get(&producer) {
            return Ok(s);
        }
        let subject = format!("{}.{producer}", self.prefix);
        let mut delay = Duration::from_millis(100);
        let started = Instant::now();
        let found = loop {
            match self.probe(&subject).await {
                Ok(Probe::Empty) => break None,
                Ok(Probe::Complete { last }) => break Some(last),
                Ok(Probe::Holes {
                    first,
                    last,
                    messages,
                }) => {
                    self.metrics.incomplete_producers += 1;
                    self.metrics.last_error = Some(format!(
                        "producer {producer}: the stream holds {messages} messages on {subject} \
                         for sequence numbers {first} to {last}: not one per sequence number, \
                         so no record is skipped (Nats-Msg-Id drops those stored within the \
                         duplicate window)"
                    ));
                    break None;
                }
                Err(e) => {
                    if self.retry_for.is_some_and(|r| started.elapsed() >= r) {
                        return Err(ForwardError::Stream {
                            stream: self.stream.cached_info().config.name.clone(),
                            op: "read the first and last messages of a producer",
                            source: e,
                        });
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        self.last_stored.insert(producer, found);
        Ok(found)
    }

    /// What the stream holds on `subject`: its first and last sequence
    /// numbers (headers) and its message count.
    async fn probe(&self, subject: &str) -> Result<Probe, NatsError> {
        let seq_of = |m: &jetstream::message::StreamMessage| {
            RecordHeaders::read(Some(&m.headers)).ok().map(|r| r.seq)
        };
        let last = match self.stream.get_last_raw_message_by_subject(subject).await {
            Ok(m) => seq_of(&m),
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
                return Ok(Probe::Empty)
            }
            Err(e) => return Err(Box::new(e)),
        };
        let first = seq_of(
            &self
                .stream
                .get_first_raw_message_by_subject(subject, 1)
                .await?,
        );
        let mut messages = 0u64;
        let mut subjects = self.stream.info_with_subjects(subject).await?;
        while let Some(entry) = subjects.next().await {
            let (s, n) = entry?;
            if s == subject {
                messages = n as u64;
            }
        }
        Ok(match (first, last) {
            (Some(first), Some(last)) if last >= first && messages == last - first + 1 => {
                Probe::Complete { last }
            }
            (first, last) => Probe::Holes {
                first: first.unwrap_or(0),
                last: last.unwrap_or(0),
                messages,
            },
        })
    }

    /// Whether this publish of (producer, seq) is to be lost
    /// ([`LosePublish`]).
    fn lost(&mut self, producer: u32, seq: u64) -> bool {
        let Some((l, first)) = self.lose.as_mut() else {
            return false;
        };
        if (l.producer, l.seq) != (producer, seq) {
            return false;
        }
        match first {
            None => {
                *first = Some(Instant::now());
                true
            }
            Some(t) => t.elapsed() < l.lose_for,
        }
    }

    /// Whether [`LosePublish`] loses only acknowledgements.
    fn ack_only(&self) -> bool {
        self.lose.as_ref().is_some_and(|(l, _)| l.ack_only)
    }

    /// Waits for the acknowledgement of publish `id`; `lose_ack`: the
    /// acknowledgement is then dropped ([`LosePublish::ack_only`]) and the
    /// publish fails as a timed-out one.
    fn push_ack(&mut self, id: u64, fut: jetstream::context::PublishAckFuture, lose_ack: bool) {
        self.acks.push_back(Box::pin(async move {
            let r = fut.await.map_err(|e| Box::new(e) as NatsError);
            if lose_ack && r.is_ok() {
                let e = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no acknowledgement: it was lost after the publish was stored \
                     (fault injection)",
                );
                return (id, Err(Box::new(e) as NatsError));
            }
            (id, r)
        }));
    }

    /// An acknowledgement that never comes: the publish fails after the
    /// acknowledgement timeout, as one the server never received does.
    fn push_lost(&mut self, id: u64) {
        let timeout = self.ack_timeout;
        self.acks.push_back(Box::pin(async move {
            tokio::time::sleep(timeout).await;
            let e = std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no acknowledgement: the publish was lost (fault injection)",
            );
            (id, Err(Box::new(e) as NatsError))
        }));
    }

    fn stream_name(&self) -> String {
        self.stream.cached_info().config.name.clone()
    }

    fn foreign(&self, stream_seq: u64, what: String) -> ForwardError {
        ForwardError::ForeignStream {
            stream: self.stream_name(),
            stream_seq,
            what,
        }
    }

    /// `Err(ForeignStream)` unless the stream's message `stream_seq`, which
    /// carries record `(producer, seq)` with `stream_crc`, has the
    /// journal's CRC of that record.
    fn same_crc(
        &self,
        stream_seq: u64,
        (producer, seq): (u32, u64),
        stream_crc: u32,
        journal_crc: u32,
    ) -> Result<(), ForwardError> {
        if stream_crc == journal_crc {
            return Ok(());
        }
        Err(self.foreign(
            stream_seq,
            format!(
                "is record {} with another CRC than the journal's",
                msg_id(producer, seq)
            ),
        ))
    }

    /// The stream's last message (`None`: the stream is empty, with its
    /// last sequence), as a record of the journal.
    async fn last_in_stream(&self) -> Result<Result<LastInStream, u64>, ForwardError> {
        let api = |op| {
            move |e: NatsError| ForwardError::Stream {
                stream: self.stream_name(),
                op,
                source: e,
            }
        };
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|e| api("read the stream's state")(Box::new(e)))?;
        let last = info.state.last_sequence;
        if info.state.messages == 0 {
            return Ok(Err(last));
        }
        let m = self
            .stream
            .get_raw_message(last)
            .await
            .map_err(|e| api("read the stream's last message")(Box::new(e)))?;
        let r = RecordHeaders::read(Some(&m.headers))
            .map_err(|e| self.foreign(last, format!("is not a ringlog record: {e}")))?;
        Ok(Ok(LastInStream {
            producer: r.producer,
            seq: r.seq,
            crc: r.crc,
            stream_seq: last,
        }))
    }

    /// [`Order::Strict`], at the start: what the first record published
    /// expects, and which records the stream holds already.
    async fn seed(&mut self, start: Option<&Cursor>) -> Result<(), ForwardError> {
        match self.last_in_stream().await? {
            Err(last_seq) => self.next_seq = Some(last_seq),
            Ok(last) => match start.and_then(|c| c.last) {
                Some(l) if (l.producer, l.seq) == (last.producer, last.seq) => {
                    self.same_crc(last.stream_seq, (l.producer, l.seq), last.crc, l.crc)?;
                    self.next_seq = Some(last.stream_seq);
                }
                _ => self.skip_until = Some(last),
            },
        }
        Ok(())
    }

    /// [`Order::Strict`], before publishing failed records again (nothing
    /// in flight): the stream's last message says which records it holds.
    /// Every record from the first failed one up to it was stored with its
    /// acknowledgement lost, and is settled as in the stream; the records
    /// after it expect the stream sequences that follow its own.
    async fn reseed(&mut self, first: u64) -> Result<(), ForwardError> {
        let Some(out) = self.window.item(first) else {
            return Ok(());
        };
        let prev = out.prev;
        let last = match self.last_in_stream().await {
            Ok(Ok(last)) => last,
            // Empty: the records' own expectations hold.
            Ok(Err(_)) => return Ok(()),
            // Unreachable now: the retry finds out.
            Err(ForwardError::Stream { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let id = (last.producer, last.seq);
        let mut next = first;
        if Some(id) != prev {
            let mut i = first;
            loop {
                let Some(out) = self.window.item(i) else {
                    return Err(self.foreign(
                        last.stream_seq,
                        format!(
                            "is {}, not the record before {} nor a later one: another \
                             publisher writes to the stream, or it lost messages it had \
                             acknowledged",
                            msg_id(id.0, id.1),
                            prev.map_or_else(|| "the first one".to_owned(), |(p, s)| msg_id(p, s))
                        ),
                    ));
                };
                if (out.producer, out.seq) == id {
                    self.same_crc(last.stream_seq, id, last.crc, out.crc)?;
                    break;
                }
                i += 1;
            }
            // Ids ascending: an acknowledgement may commit the front.
            for j in first..=i {
                if self.window.state(j) == Some(SlotState::Failed) {
                    self.window.ack(j);
                    self.metrics.already_in_stream += 1;
                }
            }
            next = i + 1;
        }
        let mut expect = last.stream_seq;
        while let Some(out) = self.window.item_mut(next) {
            out.expect_seq = Some(expect);
            expect += 1;
            next += 1;
        }
        self.next_seq = Some(expect);
        Ok(())
    }

    fn subject(&mut self, producer: u32) -> Subject {
        let prefix = &self.prefix;
        self.subjects
            .entry(producer)
            .or_insert_with(|| Subject::from(format!("{prefix}.{producer}")))
            .clone()
    }

    async fn publish(&mut self, r: Record) -> Result<(), ForwardError> {
        let cursor = r.cursor();
        if let Some(last) = self.skip_until {
            if (r.producer, r.seq) == (last.producer, last.seq) {
                self.same_crc(last.stream_seq, (r.producer, r.seq), last.crc, r.crc)?;
                self.skip_until = None;
                self.next_seq = Some(last.stream_seq);
            }
            self.metrics.already_in_stream += 1;
            self.prev = Some((r.producer, r.seq));
            let subject = self.subject(r.producer);
            let id = self.window.push(cursor, Outgoing::of(subject, r));
            self.window.ack(id);
            return Ok(());
        }
        if self.dedup == Dedup::LastSubject && !self.strict {
            if let Some(last) = self.last_stored(r.producer).await? {
                if r.seq <= last {
                    self.metrics.already_in_stream += 1;
                    let subject = self.subject(r.producer);
                    let id = self.window.push(cursor, Outgoing::of(subject, r));
                    self.window.ack(id);
                    return Ok(());
                }
            }
        }
        let subject = self.subject(r.producer);
        let lost = self.lost(r.producer, r.seq);
        let mut out = Outgoing::of(subject.clone(), r);
        if self.strict {
            out.prev = self.prev;
            // Set by `seed`, or when the skip reached the stream's last
            // message; without it (a bug) the record goes out with
            // `Nats-Msg-Id`, still never twice within the duplicate window.
            out.expect_seq = self.next_seq;
            self.next_seq = self.next_seq.map(|s| s + 1);
            self.prev = Some((out.producer, out.seq));
        }
        if self.batching.is_some() {
            let id = self.window.push(cursor, out);
            self.metrics.forwarded += 1;
            return self.send_batched(id, lost).await;
        }
        let message = out.message();
        let id = self.window.push(cursor, out);
        self.metrics.forwarded += 1;
        if lost && !self.ack_only() {
            self.push_lost(id);
            return Ok(());
        }
        match self.js.send_publish(subject, message).await {
            Ok(fut) => self.push_ack(id, fut, lost),
            Err(e) => {
                self.note_failure(id, Box::new(e))?;
            }
        }
        Ok(())
    }

    fn note_failure(&mut self, id: u64, e: NatsError) -> Result<(), ForwardError> {
        let kind = e
            .downcast_ref::<jetstream::context::PublishError>()
            .map(jetstream::context::PublishError::kind);
        let refused = kind.as_ref().is_some_and(|k| !retryable(k, self.strict));
        let out = self.window.item(id).expect("in the window");
        if matches!(
            kind,
            Some(PublishErrorKind::WrongLastMessageId | PublishErrorKind::WrongLastSequence)
        ) && !refused
        {
            // Refused, not stored: a lost publish ahead of it. The first
            // failure says why, not these.
            self.metrics.order_refusals += 1;
            self.window.fail(id);
            return Ok(());
        }
        if refused {
            return Err(ForwardError::Refused {
                producer: out.producer,
                seq: out.seq,
                source: e,
            });
        }
        self.metrics.last_error = Some(ringlog::error_chain(&*e));
        self.window.fail(id);
        Ok(())
    }

    fn settle(
        &mut self,
        id: u64,
        result: Result<jetstream::publish::PublishAck, NatsError>,
    ) -> Result<(), ForwardError> {
        self.settle_outcome(id, result.map(|ack| (ack.duplicate, Some(ack.sequence))))
    }

    /// Settles publish `id`: stored (whether as a duplicate, and at which
    /// stream sequence when the acknowledgement says), or failed.
    fn settle_outcome(
        &mut self,
        id: u64,
        result: Result<(bool, Option<u64>), NatsError>,
    ) -> Result<(), ForwardError> {
        let mut record = None;
        if let Some(out) = self.window.item_mut(id) {
            record = Some((out.producer, out.seq));
            if std::mem::take(&mut out.retried) {
                self.retries_in_flight -= 1;
                self.retry_delay = if result.is_ok() {
                    Duration::from_millis(100)
                } else {
                    (self.retry_delay * 2).min(Duration::from_secs(5))
                };
            }
        }
        match result {
            Ok((duplicate, stream_seq)) => {
                self.metrics.acknowledged += 1;
                if duplicate {
                    self.metrics.duplicates += 1;
                } else if let Some((producer, seq)) = record {
                    // Stored now, after a later record of its producer was
                    // stored: a publish was lost while later ones in the
                    // window went through, and its retry landed behind
                    // them. The stream cannot be reordered afterwards; say
                    // so rather than let it pass.
                    // Window ids follow the journal's order.
                    let newest = self.newest_stored.entry(producer).or_insert((id, seq));
                    if id < newest.0 {
                        self.metrics.out_of_order += 1;
                        let at = stream_seq
                            .map_or_else(String::new, |s| format!(" at stream sequence {s}"));
                        self.metrics.last_error = Some(format!(
                            "record {producer}-{seq} stored{at} after record {producer}-{}: \
                             out of order for its producer",
                            newest.1
                        ));
                    } else {
                        *newest = (id, seq);
                    }
                }
                self.window.ack(id);
                Ok(())
            }
            Err(e) => self.note_failure(id, e),
        }
    }

    /// Records published in batches and not yet acknowledged.
    fn batch_in_flight(&self) -> usize {
        self.batching
            .as_ref()
            .map_or(0, |b| b.batches.iter().map(Batch::in_flight).sum())
    }

    /// Publishes window record `id` as the next message of the batch
    /// taking records, beginning one when none is. `lost`: fault injection
    /// ([`LosePublish`]) loses the message, or only its acknowledgements.
    async fn send_batched(&mut self, id: u64, lost: bool) -> Result<(), ForwardError> {
        let ack_only = self.ack_only();
        let out = self.window.item(id).expect("in the window");
        let (producer, seq) = (out.producer, out.seq);
        let (subject, headers, payload) = (out.subject.clone(), out.headers(), out.payload.clone());
        let b = self.batching.as_mut().expect("publishing in batches");
        if b.batches.back().is_none_or(|c| c.ending) {
            self.metrics.batches += 1;
            b.batches
                .push_back(Batch::new(format!("{}-{}", b.token, self.metrics.batches)));
        }
        let current = b.batches.back_mut().expect("one was just begun");
        let (n, reply) = current.add(id, &b.inbox, b.flow);
        if lost {
            if ack_only {
                current.lose_acks_from.get_or_insert(n);
            } else {
                // Never sent: the next message shows the server a gap, or
                // the batch waits in vain and is given up.
                return Ok(());
            }
        }
        match b
            .client
            .publish_with_reply_and_headers(subject, reply, headers, payload)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == async_nats::client::PublishErrorKind::MaxPayloadExceeded => {
                Err(ForwardError::Refused {
                    producer,
                    seq,
                    source: Box::new(e),
                })
            }
            Err(e) => {
                // Not sent, so the batch cannot go on (its next message
                // would be a gap): end it here.
                let what = format!("a publish failed: {}", ringlog::error_chain(&e));
                let at = b.batches.len() - 1;
                self.fail_batch(at, what)
            }
        }
    }

    /// Sends the end of the batch taking records, if it has records: the
    /// server then acknowledges all it stored, without waiting for the
    /// next flow point.
    async fn end_batch(&mut self) {
        let Some(b) = self.batching.as_mut() else {
            return;
        };
        let Some(current) = b.batches.back_mut().filter(|c| !c.ending) else {
            return;
        };
        if current.in_flight() == 0 {
            // Nothing to wait for: the next record begins a new batch.
            current.ending = true;
            return;
        }
        // Any subject of the stream takes it: that of the batch's last
        // record.
        let Some(subject) = current
            .last_id()
            .and_then(|id| self.window.item(id))
            .map(|out| out.subject.clone())
        else {
            return;
        };
        let reply = current.end(&b.inbox, b.flow);
        // A failure to send it leaves the batch to its timeout.
        let _ = b
            .client
            .publish_with_reply(subject, reply, Bytes::new())
            .await;
    }

    /// Takes batch `at` out and fails its records not acknowledged.
    fn fail_batch(&mut self, at: usize, what: String) -> Result<(), ForwardError> {
        let Some(b) = self.batching.as_mut() else {
            return Ok(());
        };
        let Some(mut batch) = b.batches.remove(at) else {
            return Ok(());
        };
        let delay = self.retry_delay;
        for id in batch.take_pending() {
            let e = batch::BatchFailed {
                batch: batch.id.clone(),
                what: what.clone(),
            };
            self.settle_outcome(id, Err(Box::new(e)))?;
        }
        if self.retry_delay > delay {
            // One failure of the batch, not one per retried record in it.
            self.retry_delay = (delay * 2).min(Duration::from_secs(5));
        }
        Ok(())
    }

    /// A message from the server about a batch.
    fn on_batch_reply(&mut self, m: &async_nats::Message) -> Result<(), ForwardError> {
        let Some(b) = self.batching.as_mut() else {
            return Ok(());
        };
        let Some(bid) = Batch::id_of(m.subject.as_str(), &b.inbox) else {
            return Ok(());
        };
        // A batch given up already says nothing that matters now.
        let Some(at) = b.batches.iter().position(|x| x.id == bid) else {
            return Ok(());
        };
        let Some(reply) = batch::parse(&m.payload) else {
            return Ok(());
        };
        // The records newly acknowledged, whether the batch is over (and
        // why), and the error code of a refused message.
        let (stored, ended, refused) = match reply {
            Reply::Flow { seq } => (b.batches[at].ack_to(seq), None, None),
            Reply::Done { count, .. } => (
                b.batches[at].ack_to(count),
                Some(format!("ended with {count} of its messages stored")),
                None,
            ),
            Reply::Refused { code, description } => (
                Vec::new(),
                Some(format!("refused: {description} (error {code})")),
                Some(code),
            ),
            // The batch's final acknowledgement follows these two.
            Reply::Gap { expected, seq } => {
                self.metrics.last_error = Some(format!(
                    "batch {bid}: messages {expected} to {} did not reach the server",
                    seq.saturating_sub(1)
                ));
                (Vec::new(), None, None)
            }
            Reply::Error {
                seq,
                code,
                description,
            } => {
                self.metrics.last_error = Some(format!(
                    "batch {bid}: message {seq} refused: {description} (error {code})"
                ));
                (Vec::new(), None, Some(code))
            }
        };
        if refused == Some(jetstream::ErrorCode::STREAM_WRONG_LAST_SEQUENCE.0) {
            self.metrics.order_refusals += 1;
        }
        for id in stored {
            self.settle_outcome(id, Ok((false, None)))?;
        }
        match ended {
            Some(what) => self.fail_batch(at, what),
            None => Ok(()),
        }
    }

    /// Gives up batches with records in flight and no progress for the
    /// acknowledgement timeout, and forgets ended ones with none.
    fn expire_batches(&mut self) -> Result<(), ForwardError> {
        let timeout = self.ack_timeout;
        loop {
            let Some(b) = self.batching.as_mut() else {
                return Ok(());
            };
            let found = b.batches.iter().position(|x| {
                (x.in_flight() > 0 && x.progress.elapsed() >= timeout)
                    || (x.in_flight() == 0 && x.ending)
            });
            let Some(at) = found else { return Ok(()) };
            if b.batches[at].in_flight() == 0 {
                b.batches.remove(at);
                continue;
            }
            self.fail_batch(at, format!("no acknowledgement for {timeout:?}"))?;
        }
    }

    /// Publishes every failed record again, in order, after a backoff of
    /// 100 ms that doubles (to 5 s) while retries keep failing; their
    /// acknowledgements are settled like any other. New records wait until
    /// the retried ones are settled.
    async fn retry_failed(&mut self) -> Result<(), ForwardError> {
        tokio::time::sleep(self.retry_delay).await;
        if self.strict {
            if let Some(&first) = self.window.failed_ids().first() {
                self.reseed(first).await?;
            }
        }
        // After the reseed, which may have settled some as in the stream.
        let failed = self.window.failed_ids();
        for id in failed {
            let out = self
                .window
                .item_mut(id)
                .expect("failed ids are in the window");
            let first = *out.first_failure.get_or_insert_with(Instant::now);
            if self.retry_for.is_some_and(|r| first.elapsed() >= r) {
                return Err(ForwardError::GaveUp {
                    producer: out.producer,
                    seq: out.seq,
                    attempts: out.attempts,
                    source: self.metrics.last_error.clone().unwrap_or_default().into(),
                });
            }
            out.attempts += 1;
            out.retried = true;
            let (producer, seq) = (out.producer, out.seq);
            self.window.resend(id);
            self.metrics.retried += 1;
            self.retries_in_flight += 1;
            let lost = self.lost(producer, seq);
            if self.batching.is_some() {
                self.send_batched(id, lost).await?;
                continue;
            }
            let out = self.window.item(id).expect("failed ids are in the window");
            let (subject, message) = (out.subject.clone(), out.message());
            if lost && !self.ack_only() {
                self.push_lost(id);
                continue;
            }
            match self.js.send_publish(subject, message).await {
                Ok(fut) => self.push_ack(id, fut, lost),
                Err(e) => self.settle(id, Err(Box::new(e)))?,
            }
        }
        Ok(())
    }
}
