//! [`import_stream`]: the way back. Reads every message of a stream under
//! `P.>` and appends each record to a journal, with the producer, sequence
//! and timestamp of its headers, after checking its payload against its CRC
//! header.
//!
//! Nothing doubtful is written: a message without readable ringlog headers,
//! one whose frame rebuilt from the headers and the payload has another CRC
//! than its header says, and one that repeats or goes back in its
//! producer's sequence are counted, listed (the first [`MAX_LISTED`]) and
//! left out. Sequence numbers skipped within a producer are counted as gaps
//! (the records after a gap are written: they are sound, but the journal
//! then has the same gap, which `ringlog verify` reports).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull::OrderedConfig, consumer::DeliverPolicy};
use futures_util::StreamExt;
use ringlog::journal::{
    frame_into_vec, parse_segment_file_name, Journal, JournalOptions, Reader, DURABLE_FILE_NAME,
    INDEX_EXTENSION, SEGMENT_EXTENSION,
};
use serde::Serialize;

use crate::check::MAX_LISTED;
use crate::error::ForwardError;
use crate::forward::{connect, msg_id};
use crate::headers::RecordHeaders;
use crate::stream::StreamSpec;

/// Messages the reading consumer asks the server for at once (at most):
/// with the write batch, what bounds the memory an import holds.
pub const IMPORT_PULL_BATCH: i64 = 256;

/// How often a quiet import looks at [`ImportOptions::stop`].
const STOP_POLL: Duration = Duration::from_millis(100);

/// What to do with a journal already in the output directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Existing {
    /// Refuse to start ([`ForwardError::JournalExists`]).
    Refuse,
    /// Continue it: records up to the last one of each producer already
    /// in the journal are skipped (counted as already present, not
    /// compared), the rest appended.
    Resume,
    /// Replace it: its segment files, their indexes and its durable
    /// watermark (and only those) are removed once the stream has been
    /// found, just before the first write.
    Overwrite,
}

/// A progress callback, called about every [`ImportOptions::progress_interval`].
pub type ImportProgress = Box<dyn FnMut(&ImportReport) + Send>;

/// What [`import_stream`] does.
pub struct ImportOptions {
    /// The output journal directory (created when missing; its parent must
    /// exist).
    pub dir: PathBuf,
    /// Server URLs, comma-separated.
    pub server: String,
    /// The stream and the subject prefix its records are under
    /// (`create`, `replicas` and `duplicate_window` are not used).
    pub stream: StreamSpec,
    /// What to do with a journal already in `dir`.
    pub existing: Existing,
    /// Fail when no message arrives for this long before the last one.
    pub idle_timeout: Duration,
    /// Frame bytes gathered before they are appended and synced.
    pub batch_bytes: usize,
    /// Set to stop: what was read is written and synced, the report says
    /// `stopped`.
    pub stop: Option<Arc<AtomicBool>>,
    /// Called with the counters while running.
    pub progress: Option<ImportProgress>,
    /// How often `progress` is called.
    pub progress_interval: Duration,
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("dir", &self.dir)
            .field("server", &self.server)
            .field("stream", &self.stream)
            .field("existing", &self.existing)
            .field("idle_timeout", &self.idle_timeout)
            .field("batch_bytes", &self.batch_bytes)
            .finish_non_exhaustive()
    }
}

impl ImportOptions {
    /// Options with the defaults: refuse an existing journal, fail after
    /// 10 s without a message, append and sync every 4 MiB.
    pub fn new(dir: impl Into<PathBuf>, server: impl Into<String>, stream: StreamSpec) -> Self {
        Self {
            dir: dir.into(),
            server: server.into(),
            stream,
            existing: Existing::Refuse,
            idle_timeout: Duration::from_secs(10),
            batch_bytes: 4 << 20,
            stop: None,
            progress: None,
            progress_interval: Duration::from_secs(1),
        }
    }

    /// Checks every option and the output directory; touches nothing.
    fn validate(&self) -> Result<Vec<PathBuf>, ForwardError> {
        self.stream.validate()?;
        if self.server.split(',').any(|s| s.trim().is_empty()) {
            return Err(ForwardError::InvalidOption(format!(
                "server list {:?} has an empty entry",
                self.server
            )));
        }
        if self.idle_timeout.is_zero() {
            return Err(ForwardError::InvalidOption(
                "the idle timeout must be longer than 0".to_owned(),
            ));
        }
        if self.batch_bytes == 0 {
            return Err(ForwardError::InvalidOption(
                "the batch size must be above 0".to_owned(),
            ));
        }
        let dir = &self.dir;
        if dir.exists() && !dir.is_dir() {
            return Err(ForwardError::InvalidOption(format!(
                "{} exists and is not a directory",
                dir.display()
            )));
        }
        if !dir.exists() {
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
            if parent.is_some_and(|p| !p.is_dir()) {
                return Err(ForwardError::InvalidOption(format!(
                    "{}: its parent directory does not exist",
                    dir.display()
                )));
            }
            return Ok(Vec::new());
        }
        let files = journal_files(dir)?;
        if !files.is_empty() && self.existing == Existing::Refuse {
            return Err(ForwardError::JournalExists {
                dir: dir.clone(),
                files: files.len(),
            });
        }
        Ok(files)
    }
}

/// The files of a journal in `dir`: segments, segments being created,
/// their indexes and the durable watermark.
fn journal_files(dir: &Path) -> Result<Vec<PathBuf>, ForwardError> {
    let list_err = |source| ForwardError::Io {
        op: "list directory",
        path: dir.to_owned(),
        source,
    };
    let segment_tmp = format!(".{SEGMENT_EXTENSION}.tmp");
    let index = format!(".{INDEX_EXTENSION}");
    let index_tmp = format!(".{INDEX_EXTENSION}.tmp");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let owned = parse_segment_file_name(name).is_some()
            || name.ends_with(&segment_tmp)
            || name.ends_with(&index)
            || name.ends_with(&index_tmp)
            || name == DURABLE_FILE_NAME;
        if owned {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// What an import found and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportReport {
    /// Messages under `P.>` when the import started.
    pub stream_messages: u64,
    /// Messages read.
    pub messages: u64,
    /// Records appended to the journal.
    pub written: u64,
    /// Records in the journal before the import (`--resume`).
    pub journal_records_before: u64,
    /// Journal files removed before the import ([`Existing::Overwrite`]).
    pub removed_files: usize,
    /// Messages skipped because the journal already held their producer's
    /// records up to their sequence ([`Existing::Resume`]).
    pub already_present: u64,
    /// Messages without readable ringlog headers, or whose headers
    /// disagree with their subject or `Nats-Msg-Id`, or too large for a
    /// frame: not written.
    pub malformed: u64,
    /// Messages whose payload does not match their CRC header: not written.
    pub crc_mismatches: u64,
    /// Messages repeating the sequence number of their producer's previous
    /// message: not written.
    pub duplicates: u64,
    /// Messages whose sequence number is below their producer's previous
    /// one: not written.
    pub out_of_order: u64,
    /// Sequence numbers skipped between a producer's consecutive records.
    pub gaps: u64,
    /// Producers seen.
    pub producers: u64,
    /// The stream sequence of the last message read.
    pub last_stream_sequence: u64,
    /// Whether [`ImportOptions::stop`] ended the import before the end of
    /// the stream.
    pub stopped: bool,
    /// The first problems, each naming the stream sequence and the record.
    pub problems: Vec<String>,
    /// Seconds since the start.
    pub elapsed_secs: f64,
}

impl ImportReport {
    /// Every message read was written (or already present), nothing was
    /// malformed, mismatched, repeated, out of order or missing, and the
    /// whole stream was read.
    pub fn is_clean(&self) -> bool {
        self.malformed == 0
            && self.crc_mismatches == 0
            && self.duplicates == 0
            && self.out_of_order == 0
            && self.gaps == 0
            && !self.stopped
    }

    fn note(&mut self, what: String) {
        if self.problems.len() < MAX_LISTED {
            self.problems.push(what);
        }
    }
}

/// Per producer: where the journal was before the import, the last
/// sequence read from the stream and the last one written.
#[derive(Default)]
struct Producer {
    present: Option<u64>,
    seen: Option<u64>,
    written: Option<u64>,
}

fn parse_headers(m: &async_nats::Message, prefix: &str) -> Result<RecordHeaders, String> {
    let r = RecordHeaders::read(m.headers.as_ref())?;
    let (producer, seq) = (r.producer, r.seq);
    let subject = format!("{prefix}.{producer}");
    if m.subject.as_str() != subject {
        return Err(format!(
            "subject {} does not match producer {producer} (expected {subject})",
            m.subject
        ));
    }
    if let Some(id) = m.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")) {
        if id.as_str() != msg_id(producer, seq) {
            return Err(format!(
                "Nats-Msg-Id {:?} does not match {producer}-{seq}",
                id.as_str()
            ));
        }
    }
    Ok(r)
}

/// Appends `batch` (whole frames) and syncs it.
fn flush(journal: &mut Journal, batch: &mut Vec<u8>, dir: &Path) -> Result<(), ForwardError> {
    if batch.is_empty() {
        return Ok(());
    }
    let jerr = |source| ForwardError::Journal {
        dir: dir.to_owned(),
        source,
    };
    journal.append_frames(batch).map_err(jerr)?;
    journal.sync().map_err(jerr)?;
    batch.clear();
    Ok(())
}

/// Reads every message of the stream under the spec's prefix (an ordered
/// pull consumer from the first message, [`IMPORT_PULL_BATCH`] messages
/// per pull) and appends each sound record to the journal in
/// [`ImportOptions::dir`], in stream order, synced every
/// [`ImportOptions::batch_bytes`] and at the end. The import ends at the
/// last message the stream held when it started.
///
/// Every option and the output directory are checked, and the stream
/// looked up, before anything on disk is touched. The report counts and
/// lists what was left out; see [`ImportReport::is_clean`]. After a stop
/// or an error the journal holds whole records only (those gathered since
/// the last sync are not written on an error), and [`Existing::Resume`]
/// continues it.
///
/// # Errors
///
/// [`ForwardError::InvalidOption`], [`ForwardError::JournalExists`] (with
/// [`Existing::Refuse`]), connection and stream errors (a missing stream,
/// no message for [`ImportOptions::idle_timeout`]), journal errors,
/// [`ForwardError::Io`] when a file cannot be removed.
pub async fn import_stream(mut options: ImportOptions) -> Result<ImportReport, ForwardError> {
    let files = options.validate()?;
    let o = &mut options;
    let started = Instant::now();
    let spec = &o.stream;
    let api = |op| {
        move |e: Box<dyn std::error::Error + Send + Sync>| ForwardError::Stream {
            stream: spec.name.clone(),
            op,
            source: e,
        }
    };
    let client = connect(&o.server).await?;
    let js = jetstream::new(client);
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
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: spec.filter(),
            deliver_policy: DeliverPolicy::All,
            max_batch: IMPORT_PULL_BATCH,
            ..Default::default()
        })
        .await
        .map_err(|e| api("create a reading consumer")(Box::new(e)))?;
    let mut report = ImportReport {
        stream_messages: consumer.cached_info().num_pending,
        ..Default::default()
    };

    // The stream is there: now the disk.
    if o.existing == Existing::Overwrite {
        for path in &files {
            match std::fs::remove_file(path) {
                Ok(()) => report.removed_files += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ForwardError::Io {
                        op: "remove",
                        path: path.clone(),
                        source,
                    })
                }
            }
        }
    }
    let dir = o.dir.clone();
    let jerr = |source| ForwardError::Journal {
        dir: dir.clone(),
        source,
    };
    let mut journal = Journal::open(&dir, JournalOptions::default()).map_err(jerr)?;
    let mut producers: HashMap<u32, Producer> = HashMap::new();
    if o.existing == Existing::Resume {
        for r in Reader::open(&dir).map_err(jerr)? {
            let r = r.map_err(jerr)?;
            producers.entry(r.producer).or_default().present = Some(r.seq);
            report.journal_records_before += 1;
        }
    }

    let mut batch: Vec<u8> = Vec::new();
    let mut last_progress = Instant::now();
    if report.stream_messages > 0 {
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| api("read")(Box::new(e)))?;
        let prefix = spec.subject_prefix.clone();
        // Relaxed: the flag carries no data.
        let stopping = || o.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
        'read: loop {
            // Waits in short steps, so that a stop is seen while the stream
            // is quiet. Dropping `next()` loses nothing: the consumer
            // keeps its place.
            let waiting = Instant::now();
            let next = loop {
                if stopping() {
                    report.stopped = true;
                    break 'read;
                }
                match tokio::time::timeout(STOP_POLL, messages.next()).await {
                    Ok(next) => break next,
                    Err(e) if waiting.elapsed() >= o.idle_timeout => {
                        return Err(api("read (no message within the idle timeout)")(Box::new(
                            e,
                        )));
                    }
                    Err(_) => {}
                }
            };
            let Some(m) = next else { break };
            let m = m.map_err(|e| api("read")(Box::new(e)))?;
            let (stream_seq, pending) = m
                .info()
                .map(|i| (i.stream_sequence, i.pending))
                .map_err(api("read the message's stream sequence"))?;
            report.messages += 1;
            report.last_stream_sequence = stream_seq;
            handle(
                &m,
                stream_seq,
                &prefix,
                &mut producers,
                &mut batch,
                &mut report,
            );
            if batch.len() >= o.batch_bytes {
                flush(&mut journal, &mut batch, &dir)?;
            }
            if let Some(p) = o.progress.as_mut() {
                if last_progress.elapsed() >= o.progress_interval {
                    last_progress = Instant::now();
                    report.producers = producers.len() as u64;
                    report.elapsed_secs = started.elapsed().as_secs_f64();
                    p(&report);
                }
            }
            if pending == 0 || stream_seq >= last {
                break;
            }
        }
    }
    flush(&mut journal, &mut batch, &dir)?;
    journal.sync().map_err(jerr)?;
    report.producers = producers.len() as u64;
    report.elapsed_secs = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Checks one message and adds its frame to `batch` when it is sound and
/// new.
fn handle(
    m: &async_nats::Message,
    stream_seq: u64,
    prefix: &str,
    producers: &mut HashMap<u32, Producer>,
    batch: &mut Vec<u8>,
    report: &mut ImportReport,
) {
    let h = match parse_headers(m, prefix) {
        Ok(h) => h,
        Err(why) => {
            report.malformed += 1;
            report.note(format!("stream message {stream_seq}: {why}"));
            return;
        }
    };
    let id = msg_id(h.producer, h.seq);
    // The frame is built now to check the CRC, and kept if written.
    let start = batch.len();
    if let Err(e) = frame_into_vec(batch, h.producer, h.seq, h.timestamp, &m.payload) {
        batch.truncate(start);
        report.malformed += 1;
        report.note(format!(
            "stream message {stream_seq} ({id}): {}",
            ringlog::error_chain(&e)
        ));
        return;
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&batch[start..start + 4]);
    let crc = u32::from_le_bytes(crc);
    if crc != h.crc {
        batch.truncate(start);
        report.crc_mismatches += 1;
        report.note(format!(
            "stream message {stream_seq} ({id}): CRC header {:#010x}, payload gives {crc:#010x}",
            h.crc
        ));
        return;
    }
    let p = producers.entry(h.producer).or_default();
    if let Some(prev) = p.seen {
        if h.seq <= prev {
            batch.truncate(start);
            if h.seq == prev {
                report.duplicates += 1;
                report.note(format!(
                    "stream message {stream_seq} ({id}): duplicate of the previous message of producer {}",
                    h.producer
                ));
            } else {
                report.out_of_order += 1;
                report.note(format!(
                    "stream message {stream_seq} ({id}): out of order, after {}-{prev}",
                    h.producer
                ));
            }
            return;
        }
    }
    p.seen = Some(h.seq);
    if p.present.is_some_and(|present| h.seq <= present) {
        batch.truncate(start);
        report.already_present += 1;
        return;
    }
    if let Some(before) = p.written.or(p.present) {
        if h.seq > before + 1 {
            let missing = h.seq - before - 1;
            report.gaps += missing;
            report.note(format!(
                "stream message {stream_seq} ({id}): {missing} sequence numbers missing after {}-{before}",
                h.producer
            ));
        }
    }
    p.written = Some(h.seq);
    report.written += 1;
}
