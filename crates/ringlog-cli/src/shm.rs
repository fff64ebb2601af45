//! `ringlog shm serve` / `ringlog shm produce`: the pipeline across
//! processes. Producers frame and checksum their records straight into
//! their ring in a shared segment (`journal::frame_into` on ring memory);
//! the consumer checks every frame it reads (length and CRC: a producer is
//! untrusted) and appends the good ones to the journal.

use crate::errors::chain;
use crate::units::{fmt_bytes, parse_duration, parse_size};
use clap::{Args, Subcommand};
use ringlog::journal::{
    framed_len, parse_frame, parse_segment_file_name, Journal, JournalOptions, Reader, SyncPolicy,
    MAX_PAYLOAD, SEGMENT_EXTENSION,
};
use ringlog::ring::ClaimError;
use ringlog::shm::{mpsc, HeaderError, ShmError, ShmOptions};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `ringlog shm ...`
#[derive(Debug, Subcommand)]
pub(crate) enum ShmCommand {
    /// Create a shared segment and persist what producer processes send.
    Serve(ServeArgs),
    /// Connect to a served segment and send random records.
    Produce(ProduceArgs),
}

/// Arguments of `ringlog shm serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Segment name (e.g. /ringlog or ringlog).
    #[arg(long)]
    name: String,
    /// Producer slots.
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// Ring size of each producer slot (e.g. 4MiB).
    #[arg(long, default_value = "4MiB", value_parser = parse_size)]
    capacity: u64,
    /// Journal directory. A directory that already holds a journal is
    /// refused unless --resume (continue after a server that died) or
    /// --overwrite (replace it) says what to do with it: producers number
    /// their records from 0, so appending a new session to an old journal
    /// would break every producer's sequence.
    #[arg(long)]
    output: PathBuf,
    /// Replace the journal in --output: its segment files (and only those)
    /// are removed once every other option has been checked.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Stop after this long.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many records.
    #[arg(long)]
    records: Option<u64>,
    /// Take over an existing segment whose consumer died instead of
    /// creating one; reading resumes at each ring's tail, and the journal in
    /// --output is continued (records already in it are skipped).
    #[arg(long)]
    resume: bool,
    /// Leave the segment's name in place on exit.
    #[arg(long)]
    keep: bool,
}

/// Arguments of `ringlog shm produce`.
#[derive(Debug, Args)]
pub(crate) struct ProduceArgs {
    /// Segment name.
    #[arg(long)]
    name: String,
    /// Records to send.
    #[arg(long)]
    records: u64,
    /// Smallest payload in bytes.
    #[arg(long, default_value_t = 10)]
    min_size: usize,
    /// Largest payload in bytes.
    #[arg(long, default_value_t = 10_000)]
    max_size: usize,
    /// Producer slot (default: any free one).
    #[arg(long)]
    slot: Option<usize>,
    /// Producer id in the journal (default: this process's pid).
    #[arg(long)]
    id: Option<u32>,
    /// Seed of sizes and contents (default: the producer id).
    #[arg(long)]
    seed: Option<u64>,
    /// How long to wait for the segment to appear, or for a new server
    /// after the server died.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    connect_timeout: Duration,
}

pub(crate) fn shm(cmd: ShmCommand) -> Result<i32, String> {
    match cmd {
        ShmCommand::Serve(args) => serve(args),
        ShmCommand::Produce(args) => produce(args),
    }
}

fn usage_error(msg: &str) -> Result<i32, String> {
    eprintln!("ringlog: error: {msg}");
    Ok(2)
}

/// Segment files (and segments being created) in `dir`.
fn journal_files(dir: &std::path::Path) -> Result<Vec<PathBuf>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("list directory {}: {e}", dir.display())),
    };
    let tmp = format!(".{SEGMENT_EXTENSION}.tmp");
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("list directory {}: {e}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if parse_segment_file_name(name).is_some() || name.ends_with(&tmp) {
            files.push(entry.path());
        }
    }
    Ok(files)
}

/// Checks the settings of `serve` before anything is created or opened.
fn check_serve(args: &ServeArgs) -> Result<usize, String> {
    use ringlog::ring::{MAX_CAPACITY, MIN_CAPACITY};
    use ringlog::shm::MAX_SLOTS;
    if !(1..=MAX_SLOTS).contains(&args.producers) {
        return Err(format!(
            "--producers {}: a segment has 1 to {MAX_SLOTS} producer slots",
            args.producers
        ));
    }
    let shown = fmt_bytes(args.capacity as f64);
    let capacity = usize::try_from(args.capacity)
        .ok()
        .filter(|c| (MIN_CAPACITY..=MAX_CAPACITY).contains(c))
        .ok_or_else(|| {
            format!(
                "--capacity {shown}: a producer's ring takes {MIN_CAPACITY} B to {}",
                fmt_bytes(MAX_CAPACITY as f64)
            )
        })?;
    // Each ring is rounded up to a power of two; the segment lives in
    // memory (shared memory is RAM or swap).
    let total = (capacity.next_power_of_two() as u64).saturating_mul(args.producers as u64);
    if let Some(avail) = crate::run::available_memory() {
        if total > avail {
            return Err(format!(
                "--capacity {shown} for {} producers: the segment needs {} of memory but {} \
                 is available",
                args.producers,
                fmt_bytes(total as f64),
                fmt_bytes(avail as f64)
            ));
        }
    }
    match std::fs::metadata(&args.output) {
        Ok(m) if !m.is_dir() => {
            return Err(format!(
                "--output {}: not a directory",
                args.output.display()
            ))
        }
        Ok(_) | Err(_) => {}
    }
    if !args.resume && !args.overwrite && !journal_files(&args.output)?.is_empty() {
        return Err(format!(
            "--output {} already holds a journal; pass --resume to continue it after a server \
             that died, or --overwrite to replace it",
            args.output.display()
        ));
    }
    Ok(capacity)
}

fn serve(args: ServeArgs) -> Result<i32, String> {
    let capacity = match check_serve(&args) {
        Ok(c) => c,
        Err(msg) => return usage_error(&msg),
    };
    let options = ShmOptions::default();
    let rx = if args.resume {
        mpsc::take_over(&args.name, &options)
    } else {
        mpsc::create_with(&args.name, args.producers, capacity, &options)
    };
    let mut rx = rx.map_err(|e| e.to_string())?;
    let result = serve_loop(&mut rx, &args);
    drop(rx);
    if !args.keep {
        let _ = mpsc::unlink(&args.name);
    }
    result
}

fn serve_loop(rx: &mut mpsc::MpscConsumer, args: &ServeArgs) -> Result<i32, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| format!("installing a signal handler: {e}"))?;
    }
    let journal_options = JournalOptions {
        sync: SyncPolicy::EveryMillis(100),
        ..Default::default()
    };
    if args.overwrite {
        for p in journal_files(&args.output)? {
            std::fs::remove_file(&p).map_err(|e| format!("remove {}: {e}", p.display()))?;
        }
    }
    let mut journal = Journal::open(&args.output, journal_options).map_err(|e| chain(&e))?;
    // Resuming: records read but not released by the dead server are read
    // again; those it had already persisted are skipped by sequence number,
    // so the journal gets every record exactly once.
    let mut next_seq: Option<HashMap<u32, u64>> = if args.resume {
        let mut seen = HashMap::new();
        let reader = Reader::open(&args.output).map_err(|e| chain(&e))?;
        for r in reader {
            let r = r.map_err(|e| chain(&e))?;
            let next = seen.entry(r.producer).or_insert(0);
            *next = (*next).max(r.seq + 1);
        }
        Some(seen)
    } else {
        None
    };
    let mut duplicates = 0u64;
    let start = Instant::now();
    let end = args.duration.map(|d| start + d);
    let (mut records, mut bytes, mut rejected, mut deaths, mut corrupt) = (0u64, 0u64, 0u64, 0, 0);
    let mut buf = Vec::new();
    while !stop.load(Ordering::Relaxed)
        && args.records.is_none_or(|n| records < n)
        && end.is_none_or(|e| Instant::now() < e)
    {
        let deadline = Instant::now() + Duration::from_millis(100);
        match rx.read(Some(end.map_or(deadline, |e| e.min(deadline)))) {
            Ok(batch) => {
                buf.clear();
                for r in batch.iter() {
                    let Ok(r) = r else { break };
                    // A frame must fill its record exactly and check out.
                    match parse_frame(r) {
                        Ok(f) if f.framed_len == r.len() => {
                            let h = f.header;
                            if let Some(next) = next_seq.as_mut() {
                                let n = next.entry(h.producer).or_insert(0);
                                if h.seq < *n {
                                    duplicates += 1;
                                    continue;
                                }
                                *n = h.seq + 1;
                            }
                            buf.extend_from_slice(r);
                            records += 1;
                            bytes += u64::from(f.header.payload_len);
                        }
                        Ok(_) | Err(_) => rejected += 1,
                    }
                }
                // Persist before release: a crash here re-reads the batch.
                if !buf.is_empty() {
                    journal.append_frames(&buf).map_err(|e| chain(&e))?;
                }
                batch.release();
            }
            Err(mpsc::MpscReadError::Timeout) => {}
            Err(e @ mpsc::MpscReadError::ProducerDied { .. }) => {
                deaths += 1;
                eprintln!("ringlog: {e}");
            }
            Err(e @ mpsc::MpscReadError::Corrupt { .. }) => {
                corrupt += 1;
                eprintln!("ringlog: {e}");
            }
        }
    }
    journal.sync().map_err(|e| chain(&e))?;
    println!(
        "served {records} records ({bytes} payload bytes) in {:.3}s; rejected {rejected}, \
         duplicates skipped {duplicates}, producer deaths {deaths}, corrupt slots {corrupt}",
        start.elapsed().as_secs_f64()
    );
    Ok(0)
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn connect(args: &ProduceArgs) -> Result<ringlog::shm::ShmProducer, String> {
    let give_up = Instant::now() + args.connect_timeout;
    loop {
        let r = match args.slot {
            Some(s) => mpsc::connect_slot(&args.name, s),
            None => mpsc::connect(&args.name),
        };
        match r {
            Ok(tx) => return Ok(tx),
            // Not there yet, or still being laid out (magic written last).
            Err(ShmError::NotFound { .. })
            | Err(ShmError::Header {
                source: HeaderError::BadMagic { found: 0, .. } | HeaderError::TooSmall { .. },
                ..
            }) if Instant::now() < give_up => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Waits for room for `n` bytes; if the server dies meanwhile, waits up to
/// `--connect-timeout` for a successor (`serve --resume`) to take over.
fn wait_for_space(
    tx: &mut ringlog::shm::ShmProducer,
    n: usize,
    args: &ProduceArgs,
    seq: u64,
) -> Result<(), String> {
    let mut orphaned: Option<Instant> = None;
    loop {
        match tx.wait_for_space(n, None) {
            Ok(()) => return Ok(()),
            Err(ClaimError::Disconnected) => {
                let since = *orphaned.get_or_insert_with(Instant::now);
                if tx.consumer_alive() {
                    orphaned = None;
                } else if since.elapsed() > args.connect_timeout {
                    return Err(format!(
                        "shm segment {}: consumer gone after {seq} records",
                        args.name
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("shm segment {}: {e}", args.name)),
        }
    }
}

fn produce(args: ProduceArgs) -> Result<i32, String> {
    if args.min_size > args.max_size {
        return usage_error(&format!(
            "--min-size {} B is larger than --max-size {} B",
            args.min_size, args.max_size
        ));
    }
    if args.max_size > MAX_PAYLOAD {
        return usage_error(&format!(
            "--max-size {} B: the journal's largest record payload is {MAX_PAYLOAD} B ({})",
            args.max_size,
            fmt_bytes(MAX_PAYLOAD as f64)
        ));
    }
    let mut tx = connect(&args)?;
    if framed_len(args.max_size) > tx.max_record_len() {
        return usage_error(&format!(
            "--max-size {} B does not fit the segment's rings (largest payload {} B)",
            args.max_size,
            tx.max_record_len().saturating_sub(framed_len(0))
        ));
    }
    let id = args.id.unwrap_or_else(std::process::id);
    let mut rng = args.seed.unwrap_or(u64::from(id));
    let mut payload = vec![0u8; args.max_size];
    // Frames are built in private memory and copied into the segment: no
    // `&mut [u8]` is made into memory the consumer process maps.
    let mut frame = vec![0u8; framed_len(args.max_size)];
    for seq in 0..args.records {
        let span = (args.max_size - args.min_size) as u64 + 1;
        let len = args.min_size + (splitmix(&mut rng) % span) as usize;
        for chunk in payload[..len].chunks_mut(8) {
            let r = splitmix(&mut rng).to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        let n = framed_len(len);
        wait_for_space(&mut tx, n, &args, seq)?;
        let mut grant = tx
            .try_claim(n)
            .map_err(|e| format!("shm segment {}: {e}", args.name))?;
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        ringlog::journal::frame_into(&mut frame[..n], id, seq, ts, &payload[..len])
            .map_err(|e| e.to_string())?;
        grant.copy_from_slice(&frame[..n]);
        grant.commit(n);
    }
    Ok(0)
}
