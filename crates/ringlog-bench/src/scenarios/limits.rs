//! What the machine allows, for the other scenarios to be read against:
//! memcpy bandwidth (4 KiB and 64 KiB copies), sequential file-write
//! bandwidth on the current directory's filesystem (with and without a
//! final `fdatasync`), round trips of 8 bytes between two threads
//! through a shared cache line, a pair of pipes and a Unix socket pair, and
//! the two-thread hand-off of 4 KiB chunks with one flag per chunk: the
//! ceiling of a byte ring, whose writer fills memory and publishes it and
//! whose reader takes it from another core (pinned and unpinned).

use crate::bench::{Bench, Case, Measured, Role, Unit};
use crate::check::{file_len, CheckError};
use crate::wait::Backoff;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

/// Bytes of one hand-off chunk.
const CHUNK: usize = 4 << 10;
/// Chunks in the hand-off ring: 1 MiB, in cache as a byte ring's recently
/// released memory is.
const CHUNKS: usize = 256;

/// Runs the scenario.
pub fn run(b: &mut Bench) {
    b.scenario("limits");
    let copy_total = b.settings.size(4 << 30, 512 << 20, 1 << 20);
    for block in [4usize << 10, 64 << 10] {
        let name = format!("memcpy {} KiB blocks", block >> 10);
        b.case(
            Case::new("memory bandwidth", name, Role::Limit, Unit::BytesPerSec, 1),
            || memcpy(block, copy_total),
        );
    }
    let file_total = b.settings.size(1 << 30, 128 << 20, 1 << 20);
    let dir = b.settings.work_dir.clone();
    for sync in [false, true] {
        let name = if sync {
            "sequential write 1 MiB, final fdatasync"
        } else {
            "sequential write 1 MiB, no sync"
        };
        b.case(
            Case::new("file write", name, Role::Limit, Unit::BytesPerSec, 1),
            || file_write(&dir, file_total, sync),
        );
    }
    let handoff_total = b.settings.size(4 << 30, 512 << 20, 1 << 20);
    b.throughput(
        Case::new(
            "two-thread hand-off, 1 MiB ring",
            "4 KiB chunks, one flag per chunk",
            Role::Limit,
            Unit::BytesPerSec,
            2,
        ),
        || handoff(handoff_total),
    );
    let trips = b.settings.size(1_000_000, 200_000, 1_000);
    let io_trips = b.settings.size(200_000, 40_000, 500);
    let group = "round trip between two threads";
    let case = |name: &str| Case::new(group, name, Role::Limit, Unit::Nanos, 2);
    b.case(case("cache line (AtomicU64 ping-pong)"), || {
        cache_line(trips)
    });
    b.case(case("pipe pair, 8-byte messages"), || {
        let pair = || -> std::io::Result<(File, File)> {
            let mut fds = [0; 2];
            // SAFETY: `fds` is a valid array of two ints for `pipe` to fill.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: both descriptors are fresh from `pipe` and owned by
            // nothing else.
            Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
        };
        let (a_rx, b_tx) = pair()?;
        let (b_rx, a_tx) = pair()?;
        stream_round_trip(io_trips, (a_rx, a_tx), (b_rx, b_tx))
    });
    b.case(case("Unix socket pair, 8-byte messages"), || {
        let (a, b) = UnixStream::pair()?;
        let (a2, b2) = (a.try_clone()?, b.try_clone()?);
        stream_round_trip(io_trips, (a, a2), (b, b2))
    });
}

fn memcpy(block: usize, total: u64) -> Result<Measured, CheckError> {
    let src: Vec<u8> = (0..block).map(|i| (i * 13 + 1) as u8).collect();
    // Destination of 1 MiB (16 blocks when 64 KiB): in cache, as a ring's
    // recently released memory is.
    let mut dst = vec![0u8; (1 << 20).max(block)];
    let slots = dst.len() / block;
    let copies = (total / block as u64).max(1);
    let start = Instant::now();
    for i in 0..copies {
        let at = (i as usize % slots) * block;
        dst[at..at + block].copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
    }
    let elapsed = start.elapsed();
    if dst[..block] != src[..] {
        return Err(CheckError::new("copied block differs from its source"));
    }
    Ok(Measured::rate(copies * block as u64, elapsed))
}

fn file_write(dir: &Path, total: u64, sync: bool) -> Result<Measured, CheckError> {
    let path = dir.join("limits-write.bin");
    let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 + 7) as u8).collect();
    let start = Instant::now();
    let mut f = File::create(&path)?;
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    if sync {
        f.sync_data()?;
    }
    let elapsed = start.elapsed();
    drop(f);
    let r = file_len(&path, total);
    let _ = std::fs::remove_file(&path);
    r?;
    Ok(Measured::rate(total, elapsed))
}

/// The hand-off ring: `CHUNKS` chunks of `CHUNK` bytes, each with a flag
/// that says whose turn it is. For lap `l` of slot `s`, flag `2l` means
/// empty (the writer's turn) and `2l + 1` full (the reader's).
struct HandoffRing {
    data: Box<[std::cell::UnsafeCell<[u8; CHUNK]>]>,
    flags: Box<[crossbeam_utils::CachePadded<AtomicU64>]>,
}

// SAFETY: a chunk is touched only by the side whose turn its flag gives
// (Acquire load of the flag before, Release store after), so no chunk is
// read and written at once.
unsafe impl Sync for HandoffRing {}

/// One thread fills 4 KiB chunks (filler, then a stamp word) and releases
/// each with one flag store; the calling thread copies each chunk out (as
/// a `write` of it copies it into the page cache), checks its stamp and last
/// byte, and hands the slot back. Bytes per second handed over.
fn handoff(total: u64) -> Result<Measured, CheckError> {
    let chunks = (total / CHUNK as u64).max(1);
    let ring = Arc::new(HandoffRing {
        data: (0..CHUNKS)
            .map(|_| std::cell::UnsafeCell::new([0u8; CHUNK]))
            .collect(),
        flags: (0..CHUNKS)
            .map(|_| crossbeam_utils::CachePadded::new(AtomicU64::new(0)))
            .collect(),
    });
    let filler: Vec<u8> = (0..CHUNK).map(|i| (i * 31 + 7) as u8).collect();
    let start = Instant::now();
    let last = filler[CHUNK - 1];
    let writer = {
        let ring = ring.clone();
        crate::pin::spawn(move || {
            let mut backoff = Backoff::new();
            for i in 0..chunks {
                let (slot, lap) = ((i % CHUNKS as u64) as usize, i / CHUNKS as u64);
                // Acquire: pairs with the reader's Release store that hands
                // the slot back, so its copy-out happens before our writes.
                while ring.flags[slot].load(Ordering::Acquire) != 2 * lap {
                    backoff.snooze();
                }
                backoff.reset();
                // SAFETY: the flag says the slot is the writer's; the reader
                // does not touch it until the Release store below.
                let chunk = unsafe { &mut *ring.data[slot].get() };
                chunk.copy_from_slice(std::hint::black_box(&filler));
                chunk[..8].copy_from_slice(&i.to_le_bytes());
                // Release: publishes the chunk; pairs with the reader's
                // Acquire load.
                ring.flags[slot].store(2 * lap + 1, Ordering::Release);
            }
        })
    };
    let mut out = [0u8; CHUNK];
    let mut backoff = Backoff::new();
    let mut bad = None;
    for i in 0..chunks {
        let (slot, lap) = ((i % CHUNKS as u64) as usize, i / CHUNKS as u64);
        // Acquire: pairs with the writer's Release store of a full chunk.
        while ring.flags[slot].load(Ordering::Acquire) != 2 * lap + 1 {
            backoff.snooze();
        }
        backoff.reset();
        // SAFETY: the flag says the slot is the reader's until the store
        // below hands it back.
        out.copy_from_slice(unsafe { &*ring.data[slot].get() });
        std::hint::black_box(&mut out);
        // Release: our copy-out happens before the writer's next fill.
        ring.flags[slot].store(2 * lap + 2, Ordering::Release);
        if bad.is_none() && (out[..8] != i.to_le_bytes() || out[CHUNK - 1] != last) {
            bad = Some(i);
        }
    }
    let elapsed = start.elapsed();
    writer
        .join()
        .map_err(|_| CheckError::new("hand-off writer panicked"))?;
    if let Some(i) = bad {
        return Err(CheckError::new(format!("hand-off chunk {i} arrived wrong")));
    }
    Ok(Measured::rate(chunks * CHUNK as u64, elapsed))
}

/// Thread A writes odd values, thread B answers with the next even one.
fn cache_line(trips: u64) -> Result<Measured, CheckError> {
    let line = Arc::new(AtomicU64::new(0));
    let other = line.clone();
    let echo = thread::spawn(move || {
        let mut backoff = Backoff::new();
        for i in 0..trips {
            // Acquire/Release: each side's store publishes its turn to the
            // other's load; nothing else is shared.
            while other.load(Ordering::Acquire) != 2 * i + 1 {
                backoff.snooze();
            }
            backoff.reset();
            other.store(2 * i + 2, Ordering::Release);
        }
    });
    let mut backoff = Backoff::new();
    let start = Instant::now();
    for i in 0..trips {
        line.store(2 * i + 1, Ordering::Release);
        while line.load(Ordering::Acquire) != 2 * i + 2 {
            backoff.snooze();
        }
        backoff.reset();
    }
    let elapsed = start.elapsed();
    echo.join()
        .map_err(|_| CheckError::new("echo thread panicked"))?;
    if line.load(Ordering::Acquire) != 2 * trips {
        return Err(CheckError::new("ping-pong ended on the wrong value"));
    }
    Ok(Measured::nanos(elapsed.as_nanos() as f64 / trips as f64))
}

/// A sends 8 bytes (a counter), B answers with counter + 1.
fn stream_round_trip<R, W>(trips: u64, a: (R, W), b: (R, W)) -> Result<Measured, CheckError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let (mut b_rx, mut b_tx) = b;
    let echo = thread::spawn(move || -> std::io::Result<()> {
        let mut buf = [0u8; 8];
        for _ in 0..trips {
            b_rx.read_exact(&mut buf)?;
            let v = u64::from_le_bytes(buf) + 1;
            b_tx.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    });
    let (mut a_rx, mut a_tx) = a;
    let mut buf = [0u8; 8];
    let start = Instant::now();
    for i in 0..trips {
        a_tx.write_all(&(i * 2).to_le_bytes())?;
        a_rx.read_exact(&mut buf)?;
        if u64::from_le_bytes(buf) != i * 2 + 1 {
            return Err(CheckError::new(format!(
                "round trip {i}: got {}",
                u64::from_le_bytes(buf)
            )));
        }
    }
    let elapsed = start.elapsed();
    echo.join()
        .map_err(|_| CheckError::new("echo thread panicked"))??;
    Ok(Measured::nanos(elapsed.as_nanos() as f64 / trips as f64))
}
