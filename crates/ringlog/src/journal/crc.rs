//! CRC-32C of several frames at once, for the reader's verification.
//!
//! The `crc32` instruction has a latency of three cycles and a throughput
//! of one per cycle, so one dependent chain uses a third of it. The
//! `crc32c` crate runs three chains inside one buffer, but only for
//! buffers of 768 bytes and more; typical records are shorter, and each
//! is then one chain at a third of the speed. Frames are independent, so
//! here three frames are checksummed side by side, one chain each: the
//! three-way interleaving of Intel's "Fast CRC Computation for iSCSI
//! Polynomial Using CRC32 Instruction" (Gopal et al., 2011), across
//! buffers instead of within one, with no combination step.
//!
//! Every result equals `crc32c::crc32c(&frame[4..])`, which the tests
//! check; without SSE 4.2 that function is what runs.

/// Stores in `out[i]` the CRC-32C of `frames[i][4..]`: what a frame's
/// first four bytes must hold. Each frame is at least 8 bytes long and a
/// multiple of 8 ([`framed_len`](super::framed_len) guarantees both);
/// `out` is as long as `frames`.
pub(crate) fn frame_crcs(frames: &[&[u8]], out: &mut [u32]) {
    assert_eq!(frames.len(), out.len());
    assert!(
        frames.iter().all(|f| f.len() >= 8 && f.len() % 8 == 0),
        "frames are at least 8 bytes long and a multiple of 8"
    );
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: SSE 4.2 is available, checked just above.
        unsafe { x86::frame_crcs(frames, out) };
        return;
    }
    for (f, o) in frames.iter().zip(out.iter_mut()) {
        *o = crc32c::crc32c(&f[4..]);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{_mm_crc32_u32, _mm_crc32_u64};

    /// The chain after a frame's bytes 4..8 (the first after its CRC).
    ///
    /// # Safety
    ///
    /// The CPU supports SSE 4.2; `f` is at least 8 bytes long.
    #[inline]
    #[target_feature(enable = "sse4.2")]
    unsafe fn first(f: &[u8]) -> u64 {
        debug_assert!(f.len() >= 8);
        // SAFETY: 4 + 4 <= f.len() (the caller's promise), so the read is
        // within `f`; SSE 4.2 is there (the caller's promise).
        u64::from(unsafe { _mm_crc32_u32(!0, f.as_ptr().add(4).cast::<u32>().read_unaligned()) })
    }

    /// The chain `c` continued over the little-endian word at `f[i..i + 8]`.
    ///
    /// # Safety
    ///
    /// The CPU supports SSE 4.2; `i + 8 <= f.len()`.
    #[inline]
    #[target_feature(enable = "sse4.2")]
    unsafe fn step(c: u64, f: &[u8], i: usize) -> u64 {
        debug_assert!(i + 8 <= f.len());
        // SAFETY: i + 8 <= f.len() (the caller's promise), so the read is
        // within `f`; SSE 4.2 is there (the caller's promise). x86_64 is
        // little endian, as the frame is.
        unsafe { _mm_crc32_u64(c, f.as_ptr().add(i).cast::<u64>().read_unaligned()) }
    }

    /// Continues the chain `c` over `f[i..]`, 8 bytes at a time (a frame
    /// is a multiple of 8 long: nothing is left over), and finalises it.
    ///
    /// # Safety
    ///
    /// The CPU supports SSE 4.2.
    #[inline]
    #[target_feature(enable = "sse4.2")]
    unsafe fn finish(mut c: u64, f: &[u8], mut i: usize) -> u32 {
        while i + 8 <= f.len() {
            // SAFETY: SSE 4.2 (the caller's promise); i + 8 <= f.len().
            c = unsafe { step(c, f, i) };
            i += 8;
        }
        !(c as u32)
    }

    /// [`super::frame_crcs`] with the `crc32` instruction: three lanes,
    /// each taking the next frame as soon as it finishes one, all three
    /// stepped together up to the nearest end of a frame; the last frames
    /// one by one once fewer than three are left.
    ///
    /// # Safety
    ///
    /// The CPU supports SSE 4.2; every frame is at least 8 bytes long.
    #[target_feature(enable = "sse4.2")]
    pub(super) unsafe fn frame_crcs(frames: &[&[u8]], out: &mut [u32]) {
        if frames.len() < 3 {
            for (f, o) in frames.iter().zip(out.iter_mut()) {
                // SAFETY: SSE 4.2 and `f.len() >= 8` (the caller's promise).
                *o = unsafe { finish(first(f), f, 8) };
            }
            return;
        }
        // Lane k works on frame `idx[k]`, at byte `pos[k]`, chain `crc[k]`.
        let mut idx = [0, 1, 2];
        let mut pos = [8usize; 3];
        // SAFETY: SSE 4.2 and frames at least 8 bytes long (the caller's
        // promise).
        let mut crc = unsafe { [first(frames[0]), first(frames[1]), first(frames[2])] };
        let mut next = 3;
        loop {
            let (a, b, c) = (frames[idx[0]], frames[idx[1]], frames[idx[2]]);
            let words = ((a.len() - pos[0]) / 8)
                .min((b.len() - pos[1]) / 8)
                .min((c.len() - pos[2]) / 8);
            for _ in 0..words {
                // SAFETY: SSE 4.2; each lane has at least `words` more
                // whole words before its frame's end.
                unsafe {
                    crc[0] = step(crc[0], a, pos[0]);
                    crc[1] = step(crc[1], b, pos[1]);
                    crc[2] = step(crc[2], c, pos[2]);
                }
                pos[0] += 8;
                pos[1] += 8;
                pos[2] += 8;
            }
            // At least one lane is at its frame's end: finish it and give
            // it the next frame; with none left, finish the other two.
            for k in 0..3 {
                let f = frames[idx[k]];
                if pos[k] + 8 > f.len() {
                    out[idx[k]] = !(crc[k] as u32);
                    let Some(g) = frames.get(next) else {
                        for j in (0..3).filter(|&j| j != k) {
                            let f = frames[idx[j]];
                            // SAFETY: SSE 4.2 (the caller's promise).
                            out[idx[j]] = unsafe { finish(crc[j], f, pos[j]) };
                        }
                        return;
                    };
                    idx[k] = next;
                    pos[k] = 8;
                    // SAFETY: SSE 4.2 and `g.len() >= 8`.
                    crc[k] = unsafe { first(g) };
                    next += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::format::{frame_into_vec, framed_len};
    use proptest::prelude::*;

    /// A fixed mix of lengths (groups of three and stragglers), small
    /// enough for Miri.
    #[test]
    fn fixed_lengths_match_the_crc32c_crate() {
        let lens = [0usize, 1, 7, 8, 9, 63, 64, 65, 300, 5, 0];
        let frames: Vec<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let p: Vec<u8> = (0..n).map(|k| (k * 31 + i) as u8).collect();
                let mut f = Vec::new();
                frame_into_vec(&mut f, i as u32, 7, 9, &p).unwrap();
                f
            })
            .collect();
        for take in [1, 2, 3, 4, frames.len()] {
            let views: Vec<&[u8]> = frames[..take].iter().map(Vec::as_slice).collect();
            let mut got = vec![0u32; views.len()];
            frame_crcs(&views, &mut got);
            for (f, c) in views.iter().zip(&got) {
                assert_eq!(*c, crc32c::crc32c(&f[4..]));
                assert_eq!(*c, u32::from_le_bytes(f[..4].try_into().unwrap()));
            }
        }
    }

    /// Not under Miri: proptest needs the working directory, which Miri's
    /// isolation hides (the fixed test above covers the portable path).
    #[cfg(not(miri))]
    mod prop {
        use super::*;

        proptest! {
            /// Any mix of frame lengths, in groups of three and alone, gives
            /// the `crc32c` crate's result.
            #[test]
            fn matches_the_crc32c_crate(
                payloads in proptest::collection::vec(
                    proptest::collection::vec(any::<u8>(), 0..1200), 0..10),
            ) {
                let mut frames = Vec::new();
                for (i, p) in payloads.iter().enumerate() {
                    let mut f = Vec::new();
                    frame_into_vec(&mut f, i as u32, 7, 9, p).unwrap();
                    prop_assert_eq!(f.len(), framed_len(p.len()));
                    frames.push(f);
                }
                let views: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
                let mut got = vec![0u32; views.len()];
                frame_crcs(&views, &mut got);
                for (f, c) in views.iter().zip(&got) {
                    prop_assert_eq!(*c, crc32c::crc32c(&f[4..]));
                    prop_assert_eq!(*c, u32::from_le_bytes(f[..4].try_into().unwrap()));
                }
            }
        }
    }
}
