//! A shared segment whose memory a hostile peer filled with arbitrary bytes.
//!
//! The first input byte picks the mode:
//! - even: the rest is a raw segment header for `parse_header`, which must
//!   never panic and may accept only a geometry that fits the claimed size;
//! - odd: a real anonymous segment (valid header) is created, every byte
//!   after its header is overwritten with the input (slot owners, ring
//!   control blocks, record headers, payloads), and a consumer takes it over
//!   and reads everything: it must never panic, read out of bounds or hang,
//!   and every record it yields lies inside its ring.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringlog::shm::{mpsc, parse_header, spsc, ShmOptions, HEADER_LEN};
use std::time::{Duration, Instant};

/// Writes `bytes` into the segment right after its header.
fn overwrite(seg: &ringlog::shm::Segment, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::from(seg.fd().try_clone_to_owned().unwrap());
    let room = (seg.len() as usize).saturating_sub(HEADER_LEN);
    file.write_all_at(&bytes[..bytes.len().min(room)], HEADER_LEN as u64)
        .unwrap();
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let claimed = rest.len() as u64 * 97;
        if let Ok(g) = parse_header(rest, claimed) {
            assert!(g.total_len as u64 <= claimed);
            assert!(g.ring_capacity.is_power_of_two());
        }
        return;
    }
    let options = ShmOptions {
        liveness_interval: Duration::from_millis(1),
        ..Default::default()
    };
    let slots = 1 + (mode as usize >> 1) % 3;
    let capacity = 64 << ((mode as usize >> 3) % 4);
    let deadline = Instant::now() + Duration::from_millis(5);
    if slots == 1 && mode & 0x40 != 0 {
        let (rx, seg) = spsc::create_anonymous(capacity, &options).unwrap();
        drop(rx);
        overwrite(&seg, rest);
        let Ok(mut rx) = spsc::take_over_segment(&seg, &options) else {
            return;
        };
        for _ in 0..8 {
            match rx.try_read() {
                Ok(batch) => {
                    for r in batch.iter() {
                        let Ok(r) = r else { break };
                        assert!(r.len() <= capacity);
                    }
                    batch.release();
                }
                Err(_) => break,
            }
        }
    } else {
        let (rx, seg) = mpsc::create_anonymous(slots, capacity, &options).unwrap();
        drop(rx);
        overwrite(&seg, rest);
        let Ok(mut rx) = mpsc::take_over_segment(&seg, &options) else {
            return;
        };
        for _ in 0..16 {
            match rx.try_read() {
                Ok(batch) => {
                    for r in batch.iter() {
                        let Ok(r) = r else { break };
                        assert!(r.len() <= capacity);
                    }
                    batch.release();
                }
                Err(mpsc::MpscReadError::Timeout) => break,
                Err(_) => {}
            }
        }
        assert!(Instant::now() < deadline + Duration::from_secs(1), "read hung");
    }
});
