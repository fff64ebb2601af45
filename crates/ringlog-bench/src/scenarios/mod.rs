//! The scenarios, one file each.

use crate::bench::Bench;

pub mod bytes;
pub mod forward;
pub mod ipc;
pub mod latency;
pub mod limits;
pub mod logging;
pub mod mpsc;
pub mod persist;
pub mod read;
pub mod spsc;

/// A scenario: its name on the command line, what it measures, its entry.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Name on the command line.
    pub name: &'static str,
    /// One line on what it measures.
    pub about: &'static str,
    /// Runs every case of the scenario.
    pub run: fn(&mut Bench),
}

/// Every available scenario, in the order they run by default.
pub const ALL: [Scenario; 10] = [
    Scenario {
        name: "limits",
        about: "memcpy, sequential file write, two-thread hand-off of 4 KiB chunks, cache-line, pipe and Unix-socket round trips",
        run: limits::run,
    },
    Scenario {
        name: "spsc",
        about: "u64 items, one producer, capacity 4096: ringlog spsc vs rtrb, crossbeam, flume, std",
        run: spsc::run,
    },
    Scenario {
        name: "mpsc",
        about: "u64 items at 1, 2, 4 producers, every ringlog policy vs crossbeam-channel, flume, std",
        run: mpsc::run,
    },
    Scenario {
        name: "bytes",
        about: "4 producers of 10..=10,000-byte records in memory: each byte design vs Vec<u8> channel, memcpy",
        run: bytes::run,
    },
    Scenario {
        name: "persist",
        about: "4 writers persisting 10..=10,000-byte records: the pipeline vs plain write, Mutex<BufWriter>, channel to a writer thread; ringlog run's pipeline vs write + fdatasync of the same bytes, same rounds",
        run: persist::run,
    },
    Scenario {
        name: "latency",
        about: "single-push latency percentiles (back to back, and in bursts 1 µs and 50 µs apart), PipelineWriter::append of 64 B at 1 and 4 writers, and SPSC ping-pong round trips",
        run: latency::run,
    },
    Scenario {
        name: "ipc",
        about: "between two processes: 8-byte round trips through shm rings (hot, cold) vs pipe and Unix-socket pairs; one-way 64-byte messages vs a pipe",
        run: ipc::run,
    },
    Scenario {
        name: "logging",
        about: "tracing::info! through the fmt layer at 1 and 4 threads: ringlog-tracing vs tracing-appender non_blocking (plain, rolling), Mutex<BufWriter<File>>",
        run: logging::run,
    },
    Scenario {
        name: "read",
        about: "a 4 GiB journal: seek by time and by (producer, sequence) through the index vs a full scan, follow latency, jsonl export vs reading the files",
        run: read::run,
    },
    Scenario {
        name: "forward",
        about: "64 B and 1 KiB records into NATS JetStream, one and three nodes: ringlog forward vs a plain async-nats publish loop, same ack window",
        run: forward::run,
    },
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<Scenario> {
    ALL.into_iter().find(|s| s.name == name)
}
