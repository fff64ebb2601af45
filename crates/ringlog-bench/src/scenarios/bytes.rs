//! MPSC byte queues in memory: 4 producers of random 10..=10,000-byte
//! records, one reader that checks every record (sequence, check byte,
//! byte total). Each ringlog byte design against `Vec<u8>` records over a
//! crossbeam-channel (one allocation per record), and against one thread
//! copying the same bytes into a 1 MiB buffer and checking them (memcpy,
//! the limit of one core).

use crate::bench::{Bench, Case, Measured, Role, Unit};
use crate::check::{CheckError, RecordCheck};
use crate::records::{scratch, stamp, Plan};
use ringlog::bytes::{self, ByteQueueWriter, Config, Design};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

const WRITERS: usize = 4;
/// Queue memory for each design (fan-in: split across the writers' rings).
const CAPACITY: usize = 4 << 20;

/// Runs the scenario.
pub fn run(b: &mut Bench) {
    b.scenario("bytes");
    let total = b.settings.size(1 << 30, 96 << 20, 64 << 10);
    let plan = Arc::new(Plan::new(WRITERS, total, 0xB17E5));
    let group = "4 producers, 10..=10,000-byte records, in memory";
    let case = |name: &str, role, threads| Case::new(group, name, role, Unit::BytesPerSec, threads);
    for design in Design::ALL {
        let cap = if design == Design::FanIn {
            CAPACITY / WRITERS
        } else {
            CAPACITY
        };
        let name = format!("ringlog bytes {} ({} MiB)", design.name(), CAPACITY >> 20);
        b.case(case(&name, Role::Ringlog, WRITERS + 1), || {
            ringlog_run(design, cap, &plan)
        });
    }
    b.case(
        case(
            "crossbeam-channel of Vec<u8> (256)",
            Role::Peer,
            WRITERS + 1,
        ),
        || crossbeam_run(&plan),
    );
    b.case(case("memcpy, 1 thread", Role::Limit, 1), || {
        memcpy_run(&plan)
    });
}

fn ringlog_run(design: Design, cap: usize, plan: &Arc<Plan>) -> Result<Measured, CheckError> {
    let (writers, mut reader) = bytes::channel(design, Config::new(cap, WRITERS))
        .map_err(|e| CheckError::new(format!("queue: {e}")))?;
    let start = Instant::now();
    let threads: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(p, mut w)| {
            let plan = plan.clone();
            thread::spawn(move || {
                let mut rec = scratch();
                for (seq, &n) in plan.sizes[p].iter().enumerate() {
                    let r = &mut rec[..n as usize];
                    stamp(r, p, seq as u64);
                    if w.push(r, None).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    let mut check = RecordCheck::exact(WRITERS);
    while let Ok(batch) = reader.read(None) {
        for rec in batch.records() {
            check.see(rec);
        }
        batch.release();
    }
    let elapsed = start.elapsed();
    for t in threads {
        t.join().map_err(|_| CheckError::new("writer panicked"))?;
    }
    let bytes = check.finish(&plan.records(), plan.bytes())?;
    Ok(Measured::rate(bytes, elapsed))
}

fn crossbeam_run(plan: &Arc<Plan>) -> Result<Measured, CheckError> {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(256);
    let start = Instant::now();
    let threads: Vec<_> = (0..WRITERS)
        .map(|p| {
            let (tx, plan) = (tx.clone(), plan.clone());
            thread::spawn(move || {
                let mut rec = scratch();
                for (seq, &n) in plan.sizes[p].iter().enumerate() {
                    let r = &mut rec[..n as usize];
                    stamp(r, p, seq as u64);
                    if tx.send(r.to_vec()).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let mut check = RecordCheck::exact(WRITERS);
    for rec in rx {
        check.see(&rec);
    }
    let elapsed = start.elapsed();
    for t in threads {
        t.join().map_err(|_| CheckError::new("writer panicked"))?;
    }
    let bytes = check.finish(&plan.records(), plan.bytes())?;
    Ok(Measured::rate(bytes, elapsed))
}

/// One thread stamps and copies every record into a 1 MiB buffer (8-byte
/// aligned, wrapping), and checks it there, as the reader above does.
fn memcpy_run(plan: &Plan) -> Result<Measured, CheckError> {
    let mut dst = vec![0u8; 1 << 20];
    let mut recs: Vec<Vec<u8>> = (0..WRITERS).map(|_| scratch()).collect();
    let mut check = RecordCheck::exact(WRITERS);
    let longest = plan.sizes.iter().map(Vec::len).max().unwrap_or(0);
    let start = Instant::now();
    let mut at = 0;
    // Interleave the writers' records, as the queues do.
    for seq in 0..longest {
        for (p, rec) in recs.iter_mut().enumerate() {
            let Some(&n) = plan.sizes[p].get(seq) else {
                continue;
            };
            let n = n as usize;
            stamp(&mut rec[..n], p, seq as u64);
            if at + n > dst.len() {
                at = 0;
            }
            dst[at..at + n].copy_from_slice(&rec[..n]);
            check.see(std::hint::black_box(&dst[at..at + n]));
            at += (n + 7) & !7;
        }
    }
    let elapsed = start.elapsed();
    let bytes = check.finish(&plan.records(), plan.bytes())?;
    Ok(Measured::rate(bytes, elapsed))
}
