//! Real processes killed with SIGKILL at random moments.
//!
//! The test binary re-executes itself as the peer process: the `child_*`
//! tests do nothing unless their environment variable names a segment.
//!
//! - producers are killed in a loop while the consumer runs: the consumer
//!   notices each death (pid + start time), frees the slot, the next
//!   producer takes it, and every record that arrived is intact (CRC-32C)
//!   and each producer's records are a gap-free prefix of what it wrote;
//!   meanwhile another slot's producer holds a claim it never commits,
//!   which blocks nobody;
//! - the consumer is killed: producers notice, the segment is stale, a new
//!   consumer takes it over and resumes from the ring's tail, losing
//!   nothing that was not released.
#![cfg(all(target_os = "linux", not(loom), not(miri)))]

use ringlog::ring::ClaimError;
use ringlog::shm::{mpsc, spsc, ShmError, ShmOptions};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PRODUCER_ENV: &str = "RINGLOG_SHM_CRASH_PRODUCER";
const CONSUMER_ENV: &str = "RINGLOG_SHM_CRASH_CONSUMER";

fn options() -> ShmOptions {
    ShmOptions {
        liveness_interval: Duration::from_millis(20),
        ..Default::default()
    }
}

fn spawn_child(test: &str, env: &str, name: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, name)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Record: pid (4) | seq (8) | filler | crc32c of everything before (4).
fn encode(pid: u32, seq: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&pid.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    let fill = (seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize;
    out.extend((0..fill).map(|i| (i as u8) ^ (seq as u8)));
    let crc = crc32c::crc32c(out);
    out.extend_from_slice(&crc.to_le_bytes());
}

fn decode(r: &[u8]) -> Result<(u32, u64), String> {
    if r.len() < 16 {
        return Err(format!("record of {} bytes", r.len()));
    }
    let (body, crc) = r.split_at(r.len() - 4);
    if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().unwrap()) {
        return Err("checksum mismatch".into());
    }
    Ok((
        u32::from_le_bytes(body[..4].try_into().unwrap()),
        u64::from_le_bytes(body[4..12].try_into().unwrap()),
    ))
}

/// The producer process: pushes records until killed or disconnected.
#[test]
fn child_producer() {
    let Ok(name) = std::env::var(PRODUCER_ENV) else {
        return;
    };
    let mut tx = mpsc::connect(&name).unwrap();
    let pid = std::process::id();
    let mut buf = Vec::new();
    for seq in 0.. {
        encode(pid, seq, &mut buf);
        match tx.push(&buf, None) {
            Ok(()) => {}
            Err(ClaimError::Disconnected) => return,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn killed_producers_are_noticed_and_their_slots_reused() {
    let name = format!("/ringlog-crash-producers-{}", std::process::id());
    let _ = mpsc::unlink(&name);
    let mut rx = mpsc::create_with(&name, 2, 1 << 16, &options()).unwrap();

    // Slot 0 for the children; slot 1 is held by a producer that claims
    // and never commits.
    let stalled = {
        let name = name.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let mut tx = mpsc::connect_slot(&name, 1).unwrap();
            let grant = tx.try_claim(100).unwrap();
            ready_tx.send(()).unwrap();
            let _ = stop_rx.recv();
            let _ = grant.len(); // the claim is held, uncommitted, until here
        });
        ready_rx.recv().unwrap();
        (t, stop_tx)
    };

    let mut rng = 0x2545_f491_4f6c_dd1du64 ^ u64::from(std::process::id());
    for round in 0..4 {
        let mut child = spawn_child("child_producer", PRODUCER_ENV, &name);
        let pid = child.id();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let kill_at = Instant::now() + Duration::from_millis(100 + rng % 300);
        let mut next_seq = 0u64;
        let mut killed = false;
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(
                Instant::now() < give_up,
                "round {round}: death of pid {pid} not noticed (killed: {killed}, records {next_seq})"
            );
            if !killed && Instant::now() >= kill_at {
                child.kill().unwrap(); // SIGKILL; not reaped yet: a zombie
                killed = true;
            }
            match rx.read(Some(Instant::now() + Duration::from_millis(10))) {
                Ok(batch) => {
                    assert_eq!(batch.slot(), 0, "the stalled slot published nothing");
                    for r in batch.iter() {
                        let (p, seq) = decode(r.unwrap()).unwrap();
                        assert_eq!(p, pid, "round {round}");
                        assert_eq!(seq, next_seq, "round {round}: gap or duplicate");
                        next_seq += 1;
                    }
                    batch.release();
                }
                Err(mpsc::MpscReadError::ProducerDied { slot, owner }) => {
                    assert_eq!((slot, owner.pid), (0, pid));
                    assert!(killed, "a live producer was declared dead");
                    break;
                }
                Err(mpsc::MpscReadError::Timeout) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        // Whatever the child committed before dying is still read.
        while let Ok(batch) = rx.try_read() {
            for r in batch.iter() {
                let (_, seq) = decode(r.unwrap()).unwrap();
                assert_eq!(seq, next_seq);
                next_seq += 1;
            }
            batch.release();
        }
        child.wait().unwrap();
        println!("round {round}: pid {pid} delivered a valid prefix of {next_seq} records");
        assert!(next_seq > 0, "round {round}: child delivered nothing");
        assert_eq!(rx.producer(0), None, "slot 0 freed");
    }
    drop(stalled.1);
    stalled.0.join().unwrap();
    mpsc::unlink(&name).unwrap();
}

/// The consumer process: creates the segment, says so on stdout, then
/// reads slowly until killed.
#[test]
fn child_consumer() {
    let Ok(name) = std::env::var(CONSUMER_ENV) else {
        return;
    };
    let mut rx = spsc::create_with(&name, 4096, &options()).unwrap();
    println!("ready");
    loop {
        if let Ok(batch) = rx.read(None) {
            batch.release();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn killed_consumer_is_taken_over_and_reading_resumes_at_the_tail() {
    let name = format!("/ringlog-crash-consumer-{}", std::process::id());
    let _ = spsc::unlink(&name);
    let mut child = spawn_child("child_consumer", CONSUMER_ENV, &name);
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        assert_ne!(out.read_line(&mut line).unwrap(), 0, "child exited");
    }
    let total = 20_000u64;
    let producer = {
        let name = name.clone();
        std::thread::spawn(move || {
            let mut tx = spsc::connect_with(&name, &options()).unwrap();
            let mut buf = Vec::new();
            let mut disconnects = 0;
            let mut seq = 0;
            while seq < total {
                encode(0, seq, &mut buf);
                match tx.push(&buf, Some(Instant::now() + Duration::from_secs(30))) {
                    Ok(()) => seq += 1,
                    Err(ClaimError::Disconnected) => {
                        // The consumer died; wait for its successor.
                        disconnects += 1;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            disconnects
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    // Until the kernel has turned the child into a zombie it may still be
    // seen alive; after that the segment is stale.
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        match spsc::open(&name, &options()) {
            Err(ShmError::Stale { owner, .. }) => {
                assert_eq!(owner.pid, child.id());
                break;
            }
            Err(ShmError::Busy { .. }) if Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(5))
            }
            other => panic!("expected a stale segment, got {other:?}"),
        }
    }
    let mut rx = spsc::take_over(&name, &options()).unwrap();
    child.wait().unwrap();
    let mut first = None;
    let mut next = 0;
    while next < total {
        let batch = rx
            .read(Some(Instant::now() + Duration::from_secs(30)))
            .unwrap();
        for r in batch.iter() {
            let (_, seq) = decode(r.unwrap()).unwrap();
            if first.is_none() {
                first = Some(seq);
                next = seq;
            }
            assert_eq!(seq, next, "gap after the takeover");
            next += 1;
        }
        batch.release();
    }
    let disconnects = producer.join().unwrap();
    println!(
        "resumed at record {} of {total}; the producer saw {disconnects} disconnects",
        first.unwrap()
    );
    spsc::unlink(&name).unwrap();
}

const IDLE_CONSUMER_ENV: &str = "RINGLOG_SHM_CRASH_IDLE_CONSUMER";
const SPSC_PRODUCER_ENV: &str = "RINGLOG_SHM_CRASH_SPSC_PRODUCER";

/// A consumer process that creates the segment and never reads.
#[test]
fn child_idle_consumer() {
    let Ok(name) = std::env::var(IDLE_CONSUMER_ENV) else {
        return;
    };
    let _rx = spsc::create_with(&name, 4096, &options()).unwrap();
    println!("ready");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// An SPSC producer process that commits 100 records, says so, then idles.
#[test]
fn child_spsc_producer() {
    let Ok(name) = std::env::var(SPSC_PRODUCER_ENV) else {
        return;
    };
    let mut tx = spsc::connect_with(&name, &options()).unwrap();
    let mut buf = Vec::new();
    for seq in 0..100 {
        encode(std::process::id(), seq, &mut buf);
        tx.push(&buf, None).unwrap();
    }
    println!("ready");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn wait_ready(child: &mut Child) {
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        assert_ne!(out.read_line(&mut line).unwrap(), 0, "child exited");
    }
}

#[test]
fn producer_blocked_on_a_killed_consumer_is_told_disconnected() {
    let name = format!("/ringlog-crash-idle-{}", std::process::id());
    let _ = spsc::unlink(&name);
    let mut child = spawn_child("child_idle_consumer", IDLE_CONSUMER_ENV, &name);
    wait_ready(&mut child);
    let mut tx = spsc::connect_with(&name, &options()).unwrap();
    while tx.try_push(&[0; 64]).is_ok() {}
    child.kill().unwrap();
    let asked = Instant::now();
    let r = tx.push(&[0; 64], Some(asked + Duration::from_secs(30)));
    assert_eq!(
        r,
        Err(ClaimError::Disconnected),
        "after {:?}",
        asked.elapsed()
    );
    assert!(!tx.consumer_alive());
    child.wait().unwrap();
    spsc::unlink(&name).unwrap();
}

#[test]
fn consumer_reads_a_killed_producers_records_then_is_told_disconnected() {
    let name = format!("/ringlog-crash-spsc-producer-{}", std::process::id());
    let _ = spsc::unlink(&name);
    let mut rx = spsc::create_with(&name, 1 << 16, &options()).unwrap();
    let mut child = spawn_child("child_spsc_producer", SPSC_PRODUCER_ENV, &name);
    wait_ready(&mut child);
    child.kill().unwrap();
    let mut next = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match rx.read(Some(deadline)) {
            Ok(batch) => {
                for r in batch.iter() {
                    let (pid, seq) = decode(r.unwrap()).unwrap();
                    assert_eq!((pid, seq), (child.id(), next));
                    next += 1;
                }
                batch.release();
            }
            Err(ringlog::ring::ReadError::Disconnected) => break,
            Err(e) => panic!("after {next} records: {e}"),
        }
    }
    assert_eq!(next, 100);
    assert!(!rx.producer_alive());
    child.wait().unwrap();
    // The slot is free for the next producer.
    let _tx = spsc::connect(&name).unwrap();
    spsc::unlink(&name).unwrap();
}

#[test]
fn busy_consumer_still_notices_a_killed_producer() {
    let name = format!("/ringlog-crash-busy-{}", std::process::id());
    let _ = mpsc::unlink(&name);
    let mut rx = mpsc::create_with(&name, 2, 1 << 16, &options()).unwrap();
    // The child takes slot 0 (first free), then this process's producer
    // takes slot 1, whose records keep the consumer from ever idling.
    let mut child = spawn_child("child_producer", PRODUCER_ENV, &name);
    let give_up = Instant::now() + Duration::from_secs(30);
    while rx.producer(0).is_none() {
        assert!(Instant::now() < give_up, "child never connected");
        std::thread::sleep(Duration::from_millis(1));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let (name, stop) = (name.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut tx = mpsc::connect_slot(&name, 1).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = tx.try_push(&[1; 32]);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    let pid = child.id();
    loop {
        assert!(
            Instant::now() < give_up,
            "death of {pid} not reported while busy"
        );
        match rx.read(Some(Instant::now() + Duration::from_millis(10))) {
            // Slot 1's records are never released, so there is always a
            // batch to read: the consumer never idles.
            Ok(batch) if batch.slot() == 1 => {}
            Ok(batch) => batch.release(),
            Err(mpsc::MpscReadError::ProducerDied { slot, owner }) => {
                assert_eq!((slot, owner.pid), (0, pid));
                break;
            }
            Err(mpsc::MpscReadError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.join().unwrap();
    child.wait().unwrap();
    mpsc::unlink(&name).unwrap();
}
