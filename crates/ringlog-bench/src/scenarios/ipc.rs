//! Between two processes: the round trip of an 8-byte message (p50/p99/p99.9)
//! through two ringlog shared-memory SPSC rings, hot (both sides spinning)
//! and cold (both sides asleep on the futex before each message), against a
//! pipe pair and a Unix socket pair; and one-way throughput of 64-byte
//! messages through a shared-memory ring (a claim/commit per message, the
//! reader taking whole batches) against a pipe (a `write` per message, the
//! reader taking 64 KiB at a time and splitting it).
//!
//! The peer is a separate process: this binary re-executed with
//! [`PEER_ENV`] naming its job, which [`peer_main`] runs before any argument
//! parsing. Pipes and sockets become the peer's stdin and stdout; segments
//! are named after this process's pid and a counter, and unlinked when the
//! run ends, failed or not.
//!
//! Checks: every message carries a sequence number under a fixed tag (and a
//! 64-byte message a payload derived from it). The side that receives checks
//! order, content and count; the peer reports a fault by its exit status
//! and a line on stderr, which the run's error row quotes. Every run waits
//! for its peer and fails unless the peer exited successfully.

use crate::bench::{Bench, Case, Measured, Role, Unit};
use crate::check::CheckError;
use crate::scenarios::latency::{histogram, percentiles, METRICS};
use ringlog::ring::ReadError;
use ringlog::shm::spsc::{self, ShmConsumer};
use ringlog::shm::{ShmOptions, ShmProducer};
use ringlog::wait::{Deadline, WaitStrategy};
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Set in a re-executed `ringlog-bench`, it makes the process the `ipc`
/// scenario's peer: the value is the peer's job.
pub const PEER_ENV: &str = "RINGLOG_BENCH_IPC_PEER";

/// Test hook: when set in the benchmark's environment (and so inherited by
/// its peers), every peer misbehaves once, so each case must end in an error
/// row.
pub const FAULT_ENV: &str = "RINGLOG_BENCH_IPC_FAULT";

/// Ring capacity for the round trips (one 8-byte message in flight).
const RTT_CAP: usize = 4096;
/// Ring capacity for one-way throughput.
const STREAM_CAP: usize = 1 << 20;
/// Bytes per one-way message.
const MSG: usize = 64;
/// How long a peer may take to start and say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a peer may take to exit once its input is closed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Tags in the top 16 bits of every word; the sequence number is below.
const SEQ_MASK: u64 = (1 << 48) - 1;
const REQUEST: u64 = 0x5251 << 48;
const REPLY: u64 = 0x5250 << 48;
const MESSAGE: u64 = 0x4d53 << 48;
const ACK: u64 = 0x4143 << 48;
/// The first word every peer sends: it has connected and is waiting.
const READY: u64 = u64::from_le_bytes(*b"ready\0\0\0");

/// Runs the scenario.
pub fn run(b: &mut Bench) {
    b.scenario("ipc");
    let trips = b.settings.size(200_000, 50_000, 200);
    let group = "8-byte round trip between two processes, ns";
    let case = |name: &str, role| Case::new(group, name, role, Unit::Nanos, 2);
    b.case_metrics(
        case("ringlog shm spsc, two rings, hot (spinning)", Role::Ringlog),
        &METRICS,
        |_| shm_round_trips(Wait::Hot, trips),
    );
    b.case_metrics(
        case(
            "ringlog shm spsc, two rings, cold (sleep at once)",
            Role::Ringlog,
        ),
        &METRICS,
        |_| shm_round_trips(Wait::Cold, trips),
    );
    b.case_metrics(case("pipe pair", Role::Peer), &METRICS, |_| {
        stream_round_trips(Transport::Pipe, trips)
    });
    b.case_metrics(case("Unix socket pair", Role::Peer), &METRICS, |_| {
        stream_round_trips(Transport::Socket, trips)
    });

    let n = b.settings.size(5_000_000, 1_000_000, 2_000);
    let group = "64-byte messages one way, process to process";
    let case = |name: &str, role| Case::new(group, name, role, Unit::ItemsPerSec, 2);
    b.case(
        case("ringlog shm spsc claim/commit, batch reads", Role::Ringlog),
        || shm_one_way(n),
    );
    b.case(case("pipe, one write per message", Role::Peer), || {
        pipe_one_way(n)
    });
}

/// How the shared-memory handles wait for each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Spin (then yield, so a loaded machine degrades instead of stalling)
    /// before sleeping: the hand-off is caught while both sides run.
    Hot,
    /// `WaitStrategy::SLEEP`: no spins or yields, so a message is a futex
    /// wake-up unless it lands within the few condition checks a sleep
    /// episode starts with (then the round trip is caught without one, and
    /// the row's figure drops to the hot one's).
    Cold,
}

impl Wait {
    fn options(self) -> ShmOptions {
        let wait = match self {
            Wait::Hot => WaitStrategy {
                spins: 1 << 16,
                yields: 1 << 10,
                ..WaitStrategy::SLEEP
            },
            Wait::Cold => WaitStrategy::SLEEP,
        };
        ShmOptions {
            wait,
            ..ShmOptions::default()
        }
    }

    fn name(self) -> &'static str {
        match self {
            Wait::Hot => "hot",
            Wait::Cold => "cold",
        }
    }
}

/// What a peer process does; passed in [`PEER_ENV`] as words separated by
/// spaces (segment names never hold one).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Job {
    /// Answer `count` requests read from segment `ping` on segment `pong`.
    ShmEcho {
        wait: Wait,
        count: u64,
        ping: String,
        pong: String,
    },
    /// Read `count` 64-byte messages from `ping`; acknowledge on `pong`.
    ShmSink {
        count: u64,
        ping: String,
        pong: String,
    },
    /// Answer `count` requests read from stdin on stdout.
    StreamEcho { count: u64 },
    /// Read `count` 64-byte messages from stdin; acknowledge on stdout.
    StreamSink { count: u64 },
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Job::ShmEcho {
                wait,
                count,
                ping,
                pong,
            } => write!(f, "shm-echo {count} {ping} {pong} {}", wait.name()),
            Job::ShmSink { count, ping, pong } => write!(f, "shm-sink {count} {ping} {pong}"),
            Job::StreamEcho { count } => write!(f, "stream-echo {count}"),
            Job::StreamSink { count } => write!(f, "stream-sink {count}"),
        }
    }
}

impl Job {
    fn parse(spec: &str) -> Option<Self> {
        let w: Vec<&str> = spec.split(' ').collect();
        let count = w.get(1)?.parse().ok()?;
        let name = |i: usize| w.get(i).map(|s| s.to_string());
        Some(match (w[0], w.len()) {
            ("shm-echo", 5) => Job::ShmEcho {
                count,
                ping: name(2)?,
                pong: name(3)?,
                wait: match w[4] {
                    "hot" => Wait::Hot,
                    "cold" => Wait::Cold,
                    _ => return None,
                },
            },
            ("shm-sink", 4) => Job::ShmSink {
                count,
                ping: name(2)?,
                pong: name(3)?,
            },
            ("stream-echo", 2) => Job::StreamEcho { count },
            ("stream-sink", 2) => Job::StreamSink { count },
            _ => return None,
        })
    }
}

/// The peer's entry: `Some(exit status)` when this process was started as
/// an `ipc` peer (and has done its job), `None` otherwise. Call it first in
/// `main`.
pub fn peer_main() -> Option<ExitCode> {
    let spec = std::env::var_os(PEER_ENV)?;
    let spec = spec.to_string_lossy();
    let fault = std::env::var_os(FAULT_ENV).is_some();
    let done = match Job::parse(&spec) {
        None => Err(CheckError::new(format!("bad {PEER_ENV}: {spec:?}"))),
        Some(Job::ShmEcho {
            wait,
            count,
            ping,
            pong,
        }) => shm_echo(wait, count, &ping, &pong, fault),
        Some(Job::ShmSink { count, ping, pong }) => shm_sink(count, &ping, &pong, fault),
        Some(Job::StreamEcho { count }) => stream_echo(count, fault),
        Some(Job::StreamSink { count }) => stream_sink(count, fault),
    };
    Some(match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    })
}

// ---------------------------------------------------------------------------
// Messages and their checks, shared by both sides.

/// An error with what was being done.
fn failed<E: fmt::Display>(what: &'static str) -> impl Fn(E) -> CheckError {
    move |e| CheckError::new(format!("{what}: {e}"))
}

fn word(rec: &[u8]) -> Result<u64, CheckError> {
    <[u8; 8]>::try_from(rec)
        .map(u64::from_le_bytes)
        .map_err(|_| CheckError::new(format!("{}-byte record, expected 8", rec.len())))
}

fn expect_word(got: u64, want: u64, what: &str, seq: u64) -> Result<(), CheckError> {
    if got == want {
        return Ok(());
    }
    Err(CheckError::new(format!(
        "{what} {seq}: got {got:#018x}, expected {want:#018x}"
    )))
}

fn expect_count(got: u64, sent: u64, what: &str) -> Result<(), CheckError> {
    if got == sent {
        return Ok(());
    }
    Err(CheckError::new(format!(
        "{got} {what} received, {sent} sent: {} lost",
        sent as i128 - got as i128
    )))
}

/// Writes one-way message `seq`: its tagged sequence number, then 56 bytes
/// derived from it.
#[inline]
fn fill(msg: &mut [u8], seq: u64) {
    msg[..8].copy_from_slice(&(MESSAGE | seq).to_le_bytes());
    let mut x = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for chunk in msg[8..MSG].chunks_exact_mut(8) {
        x = x.rotate_left(7) ^ 0x5851_f42d_4c95_7f2d;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
}

/// Checks that `rec` is one-way message `seq`.
#[inline]
fn check_message(rec: &[u8], seq: u64) -> Result<(), CheckError> {
    if rec.len() != MSG {
        return Err(CheckError::new(format!(
            "message {seq}: {} bytes, expected {MSG}",
            rec.len()
        )));
    }
    let mut want = [0u8; MSG];
    fill(&mut want, seq);
    if rec[..8] != want[..8] {
        let got = u64::from_le_bytes(rec[..8].try_into().expect("8 bytes"));
        return Err(CheckError::new(format!(
            "message {seq}: got sequence {} (tag {:#06x}), expected {seq}",
            got & SEQ_MASK,
            got >> 48
        )));
    }
    if rec[8..] != want[8..] {
        return Err(CheckError::new(format!("message {seq}: payload corrupted")));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The peer process and the names it shares.

/// A peer process; killed if dropped before [`finish`](Self::finish).
#[derive(Debug)]
struct Peer {
    child: Option<Child>,
}

impl Peer {
    fn spawn(job: &Job, stdin: Stdio, stdout: Stdio) -> Result<Self, CheckError> {
        let exe = std::env::current_exe().map_err(failed("locating this binary"))?;
        let child = Command::new(exe)
            .env(PEER_ENV, job.to_string())
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(failed("starting the peer process"))?;
        Ok(Self { child: Some(child) })
    }

    fn exited(&mut self) -> bool {
        let child = self.child.as_mut().expect("running");
        !matches!(child.try_wait(), Ok(None))
    }

    /// Waits for the peer to exit (its input must be closed by now): the
    /// run's result stands only if the peer passed its own checks too.
    fn finish<T>(mut self, run: Result<T, CheckError>) -> Result<T, CheckError> {
        let mut child = self.child.take().expect("running");
        let give_up = Instant::now() + EXIT_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("did not exit within {EXIT_TIMEOUT:?}; killed"));
                }
                Err(e) => break Err(format!("waiting for it: {e}")),
            }
        };
        let mut said = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut said);
        }
        let peer = match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("{s}: {}", said.trim())),
            Err(e) => Err(e),
        };
        match (run, peer) {
            (Ok(v), Ok(())) => Ok(v),
            (Err(e), Ok(())) => Err(e),
            (Ok(_), Err(p)) => Err(CheckError::new(format!("peer process {p}"))),
            (Err(e), Err(p)) => Err(CheckError::new(format!("{e}; peer process {p}"))),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

static SEGMENTS: AtomicU64 = AtomicU64::new(0);

/// The names of a run's two segments: `ping` (this process produces, the
/// peer consumes) and `pong` (the other way). Unique per process and run;
/// unlinked on drop, whatever happened.
#[derive(Debug)]
struct Names {
    ping: String,
    pong: String,
}

impl Names {
    fn new(what: &str) -> Self {
        let n = SEGMENTS.fetch_add(1, Ordering::Relaxed);
        let base = format!("/ringlog-bench-{}-{n}-{what}", std::process::id());
        let names = Self {
            ping: format!("{base}-ping"),
            pong: format!("{base}-pong"),
        };
        // Only an earlier process with our pid can have left these.
        names.unlink();
        names
    }

    fn unlink(&self) {
        for n in [&self.ping, &self.pong] {
            let _ = spsc::unlink(n);
        }
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        self.unlink();
    }
}

// ---------------------------------------------------------------------------
// Shared memory: this process's side.

/// The segments of a run: `tx` produces into `ping`, whose consumer the
/// peer opens; `rx` consumes `pong`.
struct ShmPair {
    names: Names,
    tx: ShmProducer,
    rx: ShmConsumer,
}

impl ShmPair {
    fn new(what: &str, ping_cap: usize, opts: &ShmOptions) -> Result<Self, CheckError> {
        let names = Names::new(what);
        // Created here and left without a consumer: the peer opens it as one.
        drop(spsc::create_with(&names.ping, ping_cap, opts).map_err(failed("creating ping"))?);
        let rx = spsc::create_with(&names.pong, RTT_CAP, opts).map_err(failed("creating pong"))?;
        let tx = spsc::connect_with(&names.ping, opts).map_err(failed("connecting to ping"))?;
        Ok(Self { names, tx, rx })
    }
}

/// Reads the one record the peer sent (waiting up to `deadline`).
fn read_word(rx: &mut ShmConsumer, deadline: Deadline) -> Result<u64, CheckError> {
    let batch = rx.read(deadline).map_err(failed("reading from the peer"))?;
    let got = {
        let mut records = batch.iter();
        match (records.next(), records.next()) {
            (Some(Ok(r)), None) => word(r),
            (Some(Err(e)), _) => Err(failed("reading from the peer")(e)),
            (Some(Ok(_)), Some(_)) => Err(CheckError::new("the peer sent more than one answer")),
            (None, _) => Err(CheckError::new("empty batch from the peer")),
        }
    };
    batch.release();
    got
}

/// Waits for the peer's `READY`, giving up if it exits or never comes.
fn shm_ready(rx: &mut ShmConsumer, peer: &mut Peer) -> Result<(), CheckError> {
    let give_up = Instant::now() + START_TIMEOUT;
    loop {
        match rx.wait_for_data(Some(Instant::now() + Duration::from_millis(20))) {
            Ok(()) => return expect_word(read_word(rx, None)?, READY, "ready word", 0),
            Err(ReadError::Timeout) if peer.exited() => {
                return Err(CheckError::new("the peer exited before it was ready"))
            }
            Err(ReadError::Timeout) if Instant::now() > give_up => {
                return Err(CheckError::new(format!(
                    "the peer was not ready within {START_TIMEOUT:?}"
                )))
            }
            Err(ReadError::Timeout) => {}
            Err(e) => return Err(failed("waiting for the peer")(e)),
        }
    }
}

fn warmup(trips: u64) -> u64 {
    (trips / 10).min(10_000)
}

fn shm_round_trips(wait: Wait, trips: u64) -> Result<Vec<Measured>, CheckError> {
    let opts = wait.options();
    let ShmPair {
        names,
        mut tx,
        mut rx,
    } = ShmPair::new(wait.name(), RTT_CAP, &opts)?;
    let warm = warmup(trips);
    let job = Job::ShmEcho {
        wait,
        count: warm + trips,
        ping: names.ping.clone(),
        pong: names.pong.clone(),
    };
    let mut peer = Peer::spawn(&job, Stdio::null(), Stdio::null())?;
    let run = shm_ready(&mut rx, &mut peer).and_then(|()| {
        time_round_trips(warm, trips, |i| {
            tx.push(&(REQUEST | i).to_le_bytes(), None)
                .map_err(failed("sending a request"))?;
            read_word(&mut rx, None)
        })
    });
    // Closing ping ends the peer's loop.
    drop(tx);
    let r = peer.finish(run);
    drop(names);
    r
}

/// `warm` untimed then `trips` timed round trips through `trip`, which sends
/// request `i` and returns the answer.
fn time_round_trips(
    warm: u64,
    trips: u64,
    mut trip: impl FnMut(u64) -> Result<u64, CheckError>,
) -> Result<Vec<Measured>, CheckError> {
    let mut h = histogram();
    for i in 0..warm + trips {
        let t = Instant::now();
        let got = trip(i)?;
        let ns = t.elapsed().as_nanos() as u64;
        expect_word(got, REPLY | i, "reply", i)?;
        if i >= warm {
            h.saturating_record(ns.max(1));
        }
    }
    Ok(percentiles(&h))
}

fn shm_one_way(n: u64) -> Result<Measured, CheckError> {
    let opts = Wait::Hot.options();
    let ShmPair { names, tx, mut rx } = ShmPair::new("oneway", STREAM_CAP, &opts)?;
    let job = Job::ShmSink {
        count: n,
        ping: names.ping.clone(),
        pong: names.pong.clone(),
    };
    let mut peer = Peer::spawn(&job, Stdio::null(), Stdio::null())?;
    let mut tx = Some(tx);
    let run = shm_ready(&mut rx, &mut peer).and_then(|()| {
        let mut open = tx.take().expect("open");
        let start = Instant::now();
        // Segment memory is written only by copy (no `&mut [u8]` into
        // memory the peer maps): fill a private message, then copy it in.
        let mut msg = [0u8; MSG];
        for i in 0..n {
            let mut g = open.claim(MSG, None).map_err(failed("claiming"))?;
            fill(&mut msg, i);
            g.copy_from_slice(&msg);
            g.commit(MSG);
        }
        // Closing tells the peer everything was sent; it answers with the
        // count it received.
        drop(open);
        let ack = read_word(&mut rx, None)?;
        let elapsed = start.elapsed();
        expect_word(ack, ACK | n, "acknowledgement of", n)?;
        Ok(Measured::rate(n, elapsed))
    });
    drop(tx);
    let r = peer.finish(run);
    drop(names);
    r
}

// ---------------------------------------------------------------------------
// Shared memory: the peer's side.

/// The peer's ends: it reads `ping`, answers on `pong`, and says it is ready.
fn peer_rings(
    opts: &ShmOptions,
    ping: &str,
    pong: &str,
) -> Result<(ShmConsumer, ShmProducer), CheckError> {
    let rx = spsc::open(ping, opts).map_err(failed("opening ping"))?;
    let mut tx = spsc::connect_with(pong, opts).map_err(failed("connecting to pong"))?;
    tx.push(&READY.to_le_bytes(), None)
        .map_err(failed("sending ready"))?;
    Ok((rx, tx))
}

/// Hands every record of `rx` to `each`, a batch at a time, until the other
/// side closes the ring.
fn for_each_record(
    rx: &mut ShmConsumer,
    what: &'static str,
    mut each: impl FnMut(&[u8]) -> Result<(), CheckError>,
) -> Result<(), CheckError> {
    loop {
        let batch = match rx.read(None) {
            Ok(b) => b,
            Err(ReadError::Disconnected) => return Ok(()),
            Err(e) => return Err(failed(what)(e)),
        };
        for r in batch.iter() {
            each(r.map_err(failed(what))?)?;
        }
        batch.release();
    }
}

fn shm_echo(wait: Wait, count: u64, ping: &str, pong: &str, fault: bool) -> Result<(), CheckError> {
    let (mut rx, mut tx) = peer_rings(&wait.options(), ping, pong)?;
    let mut next = 0u64;
    for_each_record(&mut rx, "reading requests", |r| {
        expect_word(word(r)?, REQUEST | next, "request", next)?;
        let answer = if fault && next == 3 { next + 1 } else { next };
        tx.push(&(REPLY | answer).to_le_bytes(), None)
            .map_err(failed("answering"))?;
        next += 1;
        Ok(())
    })?;
    expect_count(next, count, "requests")
}

fn shm_sink(count: u64, ping: &str, pong: &str, fault: bool) -> Result<(), CheckError> {
    let mut lose = fault;
    let (mut rx, mut tx) = peer_rings(&Wait::Hot.options(), ping, pong)?;
    let mut next = 0u64;
    for_each_record(&mut rx, "reading messages", |r| {
        if lose && next == 3 {
            // As if the ring had lost this message.
            lose = false;
            return Ok(());
        }
        check_message(r, next)?;
        next += 1;
        Ok(())
    })?;
    expect_count(next, count, "messages")?;
    tx.push(&(ACK | next).to_le_bytes(), None)
        .map_err(failed("acknowledging"))
}

// ---------------------------------------------------------------------------
// Pipes and sockets.

#[derive(Debug, Clone, Copy)]
enum Transport {
    Pipe,
    Socket,
}

/// A pipe whose ends are closed on exec (the peer gets one as stdin or
/// stdout, nothing else): (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for `pipe2` to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh from `pipe2` and owned by nothing
    // else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Starts a peer whose stdin and stdout are the other ends of a pipe pair
/// or a socket pair; returns this side's reader and writer and the peer.
fn spawn_stream(transport: Transport, job: &Job) -> Result<(File, File, Peer), CheckError> {
    let (mine_r, mine_w, theirs_in, theirs_out): (OwnedFd, OwnedFd, OwnedFd, OwnedFd) =
        match transport {
            Transport::Pipe => {
                let (down_r, down_w) = pipe()?;
                let (up_r, up_w) = pipe()?;
                (up_r, down_w, down_r, up_w)
            }
            Transport::Socket => {
                let (a, b) = UnixStream::pair()?;
                let (a2, b2) = (a.try_clone()?, b.try_clone()?);
                (a.into(), a2.into(), b.into(), OwnedFd::from(b2))
            }
        };
    // The peer's ends are moved into the command, which drops them once the
    // peer has them: when the peer exits, this side reads end of file.
    let peer = Peer::spawn(job, theirs_in.into(), theirs_out.into())?;
    Ok((File::from(mine_r), File::from(mine_w), peer))
}

/// Reads until `buf` is full or end of file; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads one word; end of file is an error.
fn read_stream_word(r: &mut impl Read) -> Result<u64, CheckError> {
    let mut buf = [0u8; 8];
    match read_full(r, &mut buf)? {
        8 => Ok(u64::from_le_bytes(buf)),
        n => Err(CheckError::new(format!(
            "the peer closed its end after {n} of 8 bytes"
        ))),
    }
}

fn stream_round_trips(transport: Transport, trips: u64) -> Result<Vec<Measured>, CheckError> {
    let warm = warmup(trips);
    let job = Job::StreamEcho {
        count: warm + trips,
    };
    let (mut r, mut w, peer) = spawn_stream(transport, &job)?;
    let run = read_stream_word(&mut r)
        .and_then(|ready| expect_word(ready, READY, "ready word", 0))
        .and_then(|()| {
            time_round_trips(warm, trips, |i| {
                w.write_all(&(REQUEST | i).to_le_bytes())?;
                read_stream_word(&mut r)
            })
        });
    // Both ends: a socket reads end of file only when every descriptor of
    // the other end is closed.
    drop((r, w));
    peer.finish(run)
}

fn pipe_one_way(n: u64) -> Result<Measured, CheckError> {
    let (mut r, w, peer) = spawn_stream(Transport::Pipe, &Job::StreamSink { count: n })?;
    let mut w = Some(w);
    let run = read_stream_word(&mut r)
        .and_then(|ready| expect_word(ready, READY, "ready word", 0))
        .and_then(|()| {
            let mut open = w.take().expect("open");
            let mut msg = [0u8; MSG];
            let start = Instant::now();
            for i in 0..n {
                fill(&mut msg, i);
                open.write_all(&msg)?;
            }
            drop(open);
            let ack = read_stream_word(&mut r)?;
            let elapsed = start.elapsed();
            expect_word(ack, ACK | n, "acknowledgement of", n)?;
            Ok(Measured::rate(n, elapsed))
        });
    // Both ends: a socket reads end of file only when every descriptor of
    // the other end is closed.
    drop((r, w));
    peer.finish(run)
}

/// The peer's stdin and stdout as unbuffered files.
fn stdio() -> Result<(File, File), CheckError> {
    let input = io::stdin().as_fd().try_clone_to_owned()?;
    let output = io::stdout().as_fd().try_clone_to_owned()?;
    Ok((File::from(input), File::from(output)))
}

fn stream_echo(count: u64, fault: bool) -> Result<(), CheckError> {
    let (mut input, mut output) = stdio()?;
    output.write_all(&READY.to_le_bytes())?;
    let mut buf = [0u8; 8];
    let mut next = 0u64;
    loop {
        match read_full(&mut input, &mut buf)? {
            0 => break,
            8 => {}
            n => {
                return Err(CheckError::new(format!(
                    "input ended inside request {next} ({n} of 8 bytes)"
                )))
            }
        }
        expect_word(u64::from_le_bytes(buf), REQUEST | next, "request", next)?;
        let answer = if fault && next == 3 { next + 1 } else { next };
        output.write_all(&(REPLY | answer).to_le_bytes())?;
        next += 1;
    }
    expect_count(next, count, "requests")
}

fn stream_sink(count: u64, fault: bool) -> Result<(), CheckError> {
    let mut lose = fault;
    let (mut input, mut output) = stdio()?;
    output.write_all(&READY.to_le_bytes())?;
    let mut buf = vec![0u8; 1 << 16];
    // Bytes of an incomplete message kept at the front of `buf`.
    let mut have = 0;
    let mut next = 0u64;
    loop {
        let got = match input.read(&mut buf[have..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        have += got;
        let whole = have / MSG * MSG;
        for m in buf[..whole].chunks_exact(MSG) {
            if lose && next == 3 {
                // As if the pipe had lost this message.
                lose = false;
                continue;
            }
            check_message(m, next)?;
            next += 1;
        }
        buf.copy_within(whole..have, 0);
        have -= whole;
    }
    if have != 0 {
        return Err(CheckError::new(format!(
            "input ended inside message {next} ({have} of {MSG} bytes)"
        )));
    }
    expect_count(next, count, "messages")?;
    output.write_all(&(ACK | next).to_le_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip_through_their_spec() {
        for job in [
            Job::ShmEcho {
                wait: Wait::Cold,
                count: 7,
                ping: "/a-ping".into(),
                pong: "/a-pong".into(),
            },
            Job::ShmSink {
                count: 9,
                ping: "/b-ping".into(),
                pong: "/b-pong".into(),
            },
            Job::StreamEcho { count: 1 },
            Job::StreamSink { count: 0 },
        ] {
            assert_eq!(Job::parse(&job.to_string()), Some(job));
        }
        assert_eq!(Job::parse("shm-echo x /a /b hot"), None);
        assert_eq!(Job::parse(""), None);
    }

    #[test]
    fn a_message_is_checked_for_order_and_content() {
        let mut m = [0u8; MSG];
        fill(&mut m, 41);
        assert!(check_message(&m, 41).is_ok());
        assert!(check_message(&m, 40).unwrap_err().0.contains("sequence 41"));
        m[MSG - 1] ^= 1;
        assert!(check_message(&m, 41).unwrap_err().0.contains("corrupted"));
        assert!(check_message(&m[..8], 41).is_err());
    }
}
