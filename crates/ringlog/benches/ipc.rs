//! Between two processes: round-trip latency of an 8-byte message (hot:
//! both sides spinning; cold: both sides asleep on the futex before each
//! message) through ringlog's shared-memory rings, a pipe and a Unix
//! socket; and one-way throughput of 64-byte messages through ringlog and
//! a pipe (one `write` per message, as a message-oriented pipe user does).
//!
//! The peer process is this bench binary re-executed with
//! `RINGLOG_IPC_CHILD` set (no fork from a possibly multi-threaded
//! harness); pipes and sockets are inherited by descriptor number.
//!
//! Run: `cargo bench -p ringlog --bench ipc -- --warm-up-time 1 --measurement-time 3`.
//! On a 2-core machine the hot case needs both cores; with other load the
//! spinning side may be descheduled and the figures are upper bounds.

use criterion::{criterion_group, Criterion, Throughput};
use ringlog::shm::spsc::{self, ShmConsumer};
use ringlog::shm::{ShmOptions, ShmProducer};
use ringlog::wait::WaitStrategy;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "RINGLOG_IPC_CHILD";

fn hot() -> ShmOptions {
    ShmOptions {
        wait: WaitStrategy {
            spins: 1 << 20,
            ..WaitStrategy::SLEEP
        },
        ..Default::default()
    }
}

fn cold() -> ShmOptions {
    ShmOptions {
        wait: WaitStrategy::SLEEP,
        ..Default::default()
    }
}

fn options(kind: &str) -> ShmOptions {
    if kind == "hot" {
        hot()
    } else {
        cold()
    }
}

/// Two SPSC segments: `ping` (parent produces, child consumes) and `pong`
/// (child produces, parent consumes), and the child process.
struct RingPair {
    tx: ShmProducer,
    rx: ShmConsumer,
    child: Child,
    names: [String; 2],
}

impl RingPair {
    fn new(role: &str, kind: &str, capacity: usize) -> Self {
        let tag = format!("{}-{role}-{kind}", std::process::id());
        let names = [
            format!("/ringlog-bench-ping-{tag}"),
            format!("/ringlog-bench-pong-{tag}"),
        ];
        for n in &names {
            let _ = spsc::unlink(n);
        }
        let opts = options(kind);
        // Create ping and hand its consumer role to the child.
        drop(spsc::create_with(&names[0], capacity, &opts).unwrap());
        let rx = spsc::create_with(&names[1], capacity, &opts).unwrap();
        let child = Command::new(std::env::current_exe().unwrap())
            .env(
                CHILD_ENV,
                format!("{role}:{kind}:{}:{}", names[0], names[1]),
            )
            .spawn()
            .unwrap();
        let tx = spsc::connect_with(&names[0], &opts).unwrap();
        Self {
            tx,
            rx,
            child,
            names,
        }
    }

    fn wait_reply(&mut self) {
        let b = self.rx.read(None).unwrap();
        b.release();
    }
}

impl Drop for RingPair {
    fn drop(&mut self) {
        let _ = self.tx.push(&[], None); // quit
        let _ = self.child.wait();
        for n in &self.names {
            let _ = spsc::unlink(n);
        }
    }
}

/// The child's side of a ring pair.
fn ring_child(role: &str, kind: &str, ping: &str, pong: &str) {
    let opts = options(kind);
    let give_up = Instant::now() + Duration::from_secs(10);
    let mut rx = loop {
        match spsc::open(ping, &opts) {
            Ok(rx) => break rx,
            Err(e) if Instant::now() > give_up => panic!("{e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    let mut tx = spsc::connect_with(pong, &opts).unwrap();
    loop {
        let batch = rx.read(None).unwrap();
        for r in batch.iter() {
            let r = r.unwrap();
            match (role, r.len()) {
                (_, 0) => return,
                ("echo", _) => tx.push(r, None).unwrap(),
                // sink: one-byte record = "tell me you got everything".
                (_, 1) => tx.push(r, None).unwrap(),
                _ => {}
            }
        }
        batch.release();
    }
}

/// A pair of descriptors from `pipe` or `socketpair`, not close-on-exec so
/// the child inherits them.
fn fd_pair(socket: bool) -> [i32; 2] {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid out-array of two ints.
    let rc = unsafe {
        if socket {
            libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr())
        } else {
            libc::pipe(fds.as_mut_ptr())
        }
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    fds
}

fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        assert!(n > 0, "write: {}", std::io::Error::last_os_error());
        buf = &buf[n as usize..];
    }
}

/// Reads exactly `buf.len()` bytes; false on end of file.
fn read_exact(fd: i32, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the tail of `buf` is valid for writes.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n <= 0 {
            return false;
        }
        got += n as usize;
    }
    true
}

fn close(fd: i32) {
    // SAFETY: closing a descriptor this process owns.
    unsafe { libc::close(fd) };
}

/// The parent's ends (`w` to the child, `r` from it) and the child.
struct FdPair {
    w: i32,
    r: i32,
    child: Child,
}

impl FdPair {
    fn new(role: &str, socket: bool) -> Self {
        let (down, up) = (fd_pair(socket), fd_pair(socket));
        // Our ends must not leak into the child, or it never sees EOF.
        for fd in [down[1], up[0]] {
            // SAFETY: fcntl on descriptors this process owns.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        // Pipe: [0] reads, [1] writes. Socket pair: both ends do both.
        let child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, format!("{role}:{}:{}", down[0], up[1]))
            .spawn()
            .unwrap();
        close(down[0]);
        close(up[1]);
        Self {
            w: down[1],
            r: up[0],
            child,
        }
    }
}

impl Drop for FdPair {
    fn drop(&mut self) {
        close(self.w);
        let _ = self.child.wait();
        close(self.r);
    }
}

fn fd_child(role: &str, r: i32, w: i32) {
    if role == "fd-echo" {
        let mut m = [0u8; 8];
        while read_exact(r, &mut m) {
            write_all(w, &m);
        }
    } else {
        // fd-sink: an 8-byte count, then that many bytes, then one ack byte.
        let mut buf = vec![0u8; 1 << 16];
        let mut n = [0u8; 8];
        while read_exact(r, &mut n) {
            let mut left = u64::from_le_bytes(n) as usize;
            while left > 0 {
                let take = left.min(buf.len());
                // SAFETY: `buf` is valid for `take` bytes.
                let got = unsafe { libc::read(r, buf.as_mut_ptr().cast(), take) };
                assert!(got > 0);
                left -= got as usize;
            }
            write_all(w, &[1]);
        }
    }
}

fn rtt(c: &mut Criterion) {
    let mut g = c.benchmark_group("ipc_rtt_8B");
    for kind in ["hot", "cold"] {
        let mut p = RingPair::new("echo", kind, 1 << 16);
        g.bench_function(format!("ringlog_{kind}"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    p.tx.push(&i.to_le_bytes(), None).unwrap();
                    p.wait_reply();
                }
                start.elapsed()
            })
        });
    }
    for (name, socket) in [("pipe", false), ("unix_socket", true)] {
        let p = FdPair::new("fd-echo", socket);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut m = [0u8; 8];
                let start = Instant::now();
                for i in 0..iters {
                    write_all(p.w, &i.to_le_bytes());
                    assert!(read_exact(p.r, &mut m));
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

fn throughput(c: &mut Criterion) {
    const BATCH: u64 = 10_000;
    let mut g = c.benchmark_group("ipc_oneway_64B");
    g.throughput(Throughput::Elements(BATCH));
    let msg = [0x5au8; 64];
    {
        let mut p = RingPair::new("sink", "hot", 1 << 20);
        g.bench_function("ringlog", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    for _ in 0..BATCH {
                        p.tx.push(&msg, None).unwrap();
                    }
                }
                p.tx.push(&[1], None).unwrap();
                p.wait_reply();
                start.elapsed()
            })
        });
    }
    {
        let p = FdPair::new("fd-sink", false);
        g.bench_function("pipe", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                write_all(p.w, &(iters * BATCH * 64).to_le_bytes());
                for _ in 0..iters * BATCH {
                    write_all(p.w, &msg);
                }
                let mut ack = [0u8; 1];
                assert!(read_exact(p.r, &mut ack));
                start.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, rtt, throughput);

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts[..] {
            [role @ ("echo" | "sink"), kind, ping, pong] => ring_child(role, kind, ping, pong),
            [role, r, w] => fd_child(role, r.parse().unwrap(), w.parse().unwrap()),
            _ => panic!("bad {CHILD_ENV}: {spec}"),
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
