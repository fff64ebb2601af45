//! Arbitrary bytes through the frame parser and the segment scan: no panic,
//! and anything accepted re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringlog::journal::{frame_into_vec, parse_frame, scan_segment_bytes, FRAME_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = parse_frame(data) {
        let h = frame.header;
        let payload = &data[FRAME_HEADER_LEN..FRAME_HEADER_LEN + h.payload_len as usize];
        let mut again = Vec::new();
        frame_into_vec(&mut again, h.producer, h.seq, h.timestamp, payload).unwrap();
        // Header fields and payload re-encode identically; so does the CRC
        // when the padding is zero, as writers make it.
        let end = FRAME_HEADER_LEN + payload.len();
        assert_eq!(again[4..end], data[4..end]);
        if data[end..frame.framed_len].iter().all(|&b| b == 0) {
            assert_eq!(again[..], data[..frame.framed_len]);
        }
    }
    let _ = scan_segment_bytes(data);
});
