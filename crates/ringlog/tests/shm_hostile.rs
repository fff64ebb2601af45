//! A hostile peer writes random values into the segment while the consumer
//! runs: the consumer reports corruption, keeps serving the honest
//! producers, and never panics, reads out of bounds or hangs.
//!
//! The hostile writer maps the segment itself (as another process would)
//! and stores random words with atomic stores, so its writes are torn-free
//! on its side; what the consumer sees is whatever lands.
#![cfg(all(target_os = "linux", not(loom), not(miri)))]

use ringlog::ring::{ReadError, TryReadError};
use ringlog::shm::{mpsc, spsc, ShmOptions};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn unique(tag: &str) -> String {
    format!("/ringlog-hostile-{tag}-{}", std::process::id())
}

/// xorshift64*: no dependency, reproducible from the printed seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The segment mapped a second time, as the hostile process sees it.
struct Foreign {
    ptr: *mut u8,
    len: usize,
}
// SAFETY: only atomic stores go through the pointer.
unsafe impl Send for Foreign {}

impl Foreign {
    fn map(name: &str) -> Self {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/dev/shm{name}"))
            .unwrap();
        let len = f.metadata().unwrap().len() as usize;
        // SAFETY: a fresh shared mapping of a file we opened read-write.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                &f,
                0,
            )
            .unwrap()
        };
        Self {
            ptr: ptr.cast(),
            len,
        }
    }

    /// Stores `value` at the 8-aligned `offset` (clamped into the mapping).
    fn store(&self, offset: usize, value: u64) {
        let offset = (offset % self.len) & !7;
        // SAFETY: in bounds and 8-aligned; the mapping lives as long as self.
        let word = unsafe { &*self.ptr.add(offset).cast::<AtomicU64>() };
        word.store(value, Ordering::Relaxed);
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `map`.
        unsafe { rustix::mm::munmap(self.ptr.cast(), self.len).unwrap() };
    }
}

/// A value a hostile peer would pick: often near a boundary.
fn nasty(rng: &mut Rng) -> u64 {
    match rng.next() % 6 {
        0 => 0,
        1 => u64::MAX - (rng.next() % 64),
        2 => rng.next() % 4096,
        3 => (rng.next() % 4096) << 32 | 0x5244_4154, // a plausible header
        4 => 1 << (rng.next() % 64),
        _ => rng.next(),
    }
}

fn seed() -> u64 {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {s:#x}");
    s
}

fn options() -> ShmOptions {
    ShmOptions {
        liveness_interval: Duration::from_millis(10),
        ..Default::default()
    }
}

/// Record: seq (8 bytes) then `len` bytes of `seq as u8`.
fn record(seq: u64, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.resize(8 + (seq % 50) as usize, seq as u8);
}

fn check(r: &[u8]) -> Option<u64> {
    let seq = u64::from_le_bytes(r.get(..8)?.try_into().ok()?);
    (r.len() == 8 + (seq % 50) as usize && r[8..].iter().all(|&b| b == seq as u8)).then_some(seq)
}

/// Slots 0 and 1 are honest; the hostile peer scribbles over slot 2's ring
/// (control block and data), the header and the doorbell. Every honest
/// record arrives intact and in order; slot 2 is reported corrupt.
#[test]
fn scribbled_slot_is_quarantined_and_the_others_go_on() {
    let name = unique("mpsc");
    let _ = mpsc::unlink(&name);
    let opts = options();
    let mut rx = mpsc::create_with(&name, 3, 4096, &opts).unwrap();
    let per = 20_000u64;
    let stop = Arc::new(AtomicBool::new(false));
    let mut honest = Vec::new();
    for slot in 0..2 {
        // Connected before the scribbling starts: a scrambled header is
        // rightly refused to newcomers.
        let mut tx = mpsc::connect_slot(&name, slot).unwrap();
        honest.push(std::thread::spawn(move || {
            let mut buf = Vec::new();
            for seq in 0..per {
                record(seq, &mut buf);
                if let Err(e) = tx.push(&buf, None) {
                    panic!(
                        "slot {slot} seq {seq}: {e}; consumer alive: {}",
                        tx.consumer_alive()
                    );
                }
            }
        }));
    }
    let _victim = mpsc::connect_slot(&name, 2).unwrap();
    // Slot stride from the header (offset 48), slot 2's ring starts at
    // 384 + 2 * stride; scribble over [that, end) and over [0, 384).
    let hostile = {
        let (name, stop) = (name.clone(), stop.clone());
        std::thread::spawn(move || {
            let f = Foreign::map(&name);
            let mut rng = Rng(seed());
            // SAFETY: read of an aligned word inside the mapping.
            let stride = unsafe { f.ptr.add(48).cast::<u64>().read_volatile() } as usize;
            let slot2 = 384 + 2 * stride;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let off = if rng.next() % 4 == 0 {
                    (rng.next() as usize) % 384
                } else {
                    slot2 + 128 + (rng.next() as usize) % (stride - 128)
                };
                // Never the honest slots' memory: that would be corruption
                // the consumer cannot tell from data. Nor the consumer's
                // identity word (offset 88): naming a dead consumer there
                // makes honest producers give up as `Disconnected`, a denial
                // of service any writer of a shared header can cause.
                if (88..96).contains(&off) {
                    continue;
                }
                f.store(off, nasty(&mut rng));
                n += 1;
                if n % 64 == 0 {
                    std::thread::yield_now();
                }
            }
        })
    };
    let mut next = [0u64; 2];
    let mut corrupt_reports = 0;
    let give_up = Instant::now() + Duration::from_secs(60);
    while next != [per, per] {
        assert!(Instant::now() < give_up, "hang: got {next:?} of {per}");

        match rx.read(Some(Instant::now() + Duration::from_millis(100))) {
            Ok(batch) => {
                let slot = batch.slot();
                for r in batch.iter() {
                    let Ok(r) = r else { continue };
                    if slot < 2 {
                        assert_eq!(check(r), Some(next[slot]), "slot {slot}");
                        next[slot] += 1;
                    }
                }
                batch.release();
            }
            Err(mpsc::MpscReadError::Corrupt { slot, error }) => {
                println!("reported: slot {slot}: {error}");
                assert_eq!(slot, 2);
                corrupt_reports += 1;
            }
            Err(_) => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    hostile.join().unwrap();
    for h in honest {
        h.join().unwrap();
    }
    // The scribbles over slot 2's indices are caught with overwhelming
    // probability within the run; read a little more to be sure.
    let until = Instant::now() + Duration::from_secs(2);
    while corrupt_reports == 0 && Instant::now() < until {
        match rx.read(Some(Instant::now() + Duration::from_millis(50))) {
            Err(mpsc::MpscReadError::Corrupt { .. }) => corrupt_reports += 1,
            Ok(b) => {
                let _ = b.iter().count();
                b.release();
            }
            Err(_) => {}
        }
    }
    assert!(rx.is_quarantined(2) || corrupt_reports == 0);
    println!("corruption reports: {corrupt_reports}");
    mpsc::unlink(&name).unwrap();
}

/// Random words anywhere in the whole segment, every ring included, while
/// producers push and the consumer reads: the consumer never panics or
/// hangs; every read returns within its deadline.
#[test]
fn scribbles_anywhere_never_crash_or_hang_the_consumer() {
    let name = unique("anywhere");
    let _ = mpsc::unlink(&name);
    let opts = options();
    let mut rx = mpsc::create_with(&name, 2, 1024, &opts).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for slot in 0..2 {
        let (name, stop) = (name.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let Ok(mut tx) = mpsc::connect_slot(&name, slot) else {
                return;
            };
            let mut buf = Vec::new();
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed) {
                record(seq, &mut buf);
                // Errors (corruption seen by the producer) end this producer.
                match tx.push(&buf, Some(Instant::now() + Duration::from_millis(50))) {
                    Ok(()) => seq += 1,
                    Err(ringlog::ring::ClaimError::Timeout) => {}
                    Err(_) => return,
                }
            }
        }));
    }
    let hostile = {
        let (name, stop) = (name.clone(), stop.clone());
        std::thread::spawn(move || {
            let f = Foreign::map(&name);
            let mut rng = Rng(seed());
            while !stop.load(Ordering::Relaxed) {
                let off = rng.next() as usize;
                f.store(off, nasty(&mut rng));
                std::thread::yield_now();
            }
        })
    };
    let end = Instant::now() + Duration::from_secs(3);
    let (mut records, mut reports) = (0u64, 0u64);
    while Instant::now() < end {
        let asked = Instant::now();
        let deadline = asked + Duration::from_millis(20);
        match rx.read(Some(deadline)) {
            Ok(batch) => {
                records += batch.iter().filter(|r| r.is_ok()).count() as u64;
                batch.release();
            }
            Err(mpsc::MpscReadError::Timeout) => {
                // Bounded by the deadline plus one liveness interval.
                assert!(asked.elapsed() < Duration::from_secs(5), "read overslept");
            }
            Err(e) => {
                println!("reported: {e}");
                reports += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    hostile.join().unwrap();
    drop(rx); // wakes producers blocked on a full ring
    for t in threads {
        t.join().unwrap();
    }
    println!("records {records}, reports {reports}");
    mpsc::unlink(&name).unwrap();
}

/// SPSC: random `head` values and record headers make the consumer return
/// `Corrupt`, never garbage or a panic.
#[test]
fn spsc_consumer_reports_a_scribbled_ring() {
    let name = unique("spsc");
    let _ = spsc::unlink(&name);
    let mut rx = spsc::create_with(&name, 4096, &options()).unwrap();
    let mut tx = spsc::connect(&name).unwrap();
    let f = Foreign::map(&name);
    let mut rng = Rng(seed());
    let mut corrupt = 0;
    for round in 0..200 {
        let mut buf = Vec::new();
        record(round, &mut buf);
        let _ = tx.try_push(&buf);
        // The ring's control block starts at 384 + 128; head is its first
        // word, the data area starts 512 bytes later.
        let ring = 384 + 128;
        let off = match rng.next() % 3 {
            0 => ring,
            1 => ring + 512 + (rng.next() as usize % 4096),
            _ => ring + (rng.next() as usize % (512 + 4096)),
        };
        f.store(off, nasty(&mut rng));
        match rx.try_read() {
            Ok(batch) => {
                for r in batch.iter() {
                    if r.is_err() {
                        corrupt += 1;
                    }
                }
                batch.release();
            }
            Err(TryReadError::Corrupt(e)) => {
                println!("round {round}: {e}");
                corrupt += 1;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(corrupt > 0, "200 scribbles went unnoticed");
    // Once corrupt, always corrupt: the ring is never trusted again.
    assert!(matches!(
        rx.read(Some(Instant::now())),
        Err(ReadError::Corrupt(_))
    ));
    spsc::unlink(&name).unwrap();
}
