//! The record frame every byte queue uses in its memory: an 8-byte header
//! (`u32` payload length, `u32` kind, native endian) followed by the payload,
//! padded with unspecified bytes to a multiple of 8.
//!
//! It is the same frame as the SPSC byte ring's, so the fan-in design hands
//! out ring memory unchanged and a sink sees one format whatever the design.
//! A header of kind [`KIND_PAD`] covers bytes that carry no record (a partial
//! commit's slack, an abandoned grant); [`Records`] skips them.

/// Length of a record header in bytes.
pub const RECORD_HEADER_LEN: usize = 8;

/// `kind` of a record carrying a payload (never 0, so a zeroed header is
/// never mistaken for a record).
pub const KIND_DATA: u32 = 0x5244_4154;
/// `kind` of a padding record: `len` bytes that carry no record follow.
pub const KIND_PAD: u32 = 0x5250_4144;

/// Total bytes a record of `payload_len` payload bytes occupies: the header
/// plus the payload rounded up to a multiple of 8.
#[inline]
pub const fn record_len(payload_len: usize) -> usize {
    RECORD_HEADER_LEN + ((payload_len + 7) & !7)
}

/// Encodes a header word.
#[inline]
pub(crate) const fn encode_header(len: u32, kind: u32) -> u64 {
    len as u64 | ((kind as u64) << 32)
}

/// Decodes a header word into `(len, kind)`.
#[inline]
pub(crate) const fn decode_header(word: u64) -> (u32, u32) {
    (word as u32, (word >> 32) as u32)
}

/// One record header decoded against the bytes left in its slice.
struct Step {
    /// Bytes of the whole record, header and padding included.
    total: usize,
    /// Payload length of a data record; `None` for padding.
    payload: Option<usize>,
}

impl Step {
    /// `None` (a bug in the queue: its memory is private) for an unknown
    /// kind or a record longer than the `rest` bytes left.
    fn of(word: u64, rest: usize) -> Option<Step> {
        let (len, kind) = decode_header(word);
        let len = len as usize;
        let step = match kind {
            KIND_DATA => Step {
                total: record_len(len),
                payload: Some(len),
            },
            KIND_PAD => Step {
                total: RECORD_HEADER_LEN + len,
                payload: None,
            },
            _ => {
                debug_assert!(false, "malformed record header {word:#x}");
                return None;
            }
        };
        if step.total > rest {
            debug_assert!(false, "record header {word:#x} runs past the batch");
            return None;
        }
        Some(step)
    }
}

/// Iterator over the payloads of the records in a batch's slices, in order;
/// padding records are skipped.
///
/// Queue memory is private to the process, so a malformed header is a bug in
/// the queue; the iterator stops there instead of reading out of bounds.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    slices: [&'a [u8]; 2],
    /// Which slice we are in.
    which: usize,
    /// Byte offset inside it.
    pos: usize,
}

impl<'a> Records<'a> {
    pub(crate) fn new(slices: [&'a [u8]; 2]) -> Self {
        Self {
            slices,
            which: 0,
            pos: 0,
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let s = *self.slices.get(self.which)?;
            if self.pos >= s.len() {
                self.which += 1;
                self.pos = 0;
                continue;
            }
            let rest = &s[self.pos..];
            let Some(head) = rest.get(..RECORD_HEADER_LEN) else {
                debug_assert!(false, "batch ends inside a record header");
                self.which = 2;
                return None;
            };
            let word = u64::from_ne_bytes(head.try_into().expect("8 bytes"));
            let Some(step) = Step::of(word, rest.len()) else {
                self.which = 2;
                return None;
            };
            self.pos += step.total;
            if let Some(len) = step.payload {
                return Some(&rest[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len]);
            }
        }
    }
}

/// Iterator over the payloads of a batch's records as mutable slices
/// ([`Batch::records_mut`](super::Batch::records_mut)); padding records are
/// skipped, and a malformed header stops it, as with [`Records`].
#[derive(Debug)]
pub struct RecordsMut<'a> {
    /// `(start, len)` of the two parts, valid for reads and writes and used
    /// by nobody else for `'a`.
    parts: [(*mut u8, usize); 2],
    which: usize,
    pos: usize,
    _batch: std::marker::PhantomData<&'a mut [u8]>,
}

impl RecordsMut<'_> {
    /// # Safety
    ///
    /// Each part is valid for reads and writes of its length, starts 8-byte
    /// aligned, and nobody else reads or writes it for the iterator's
    /// lifetime.
    pub(crate) unsafe fn new(parts: [(*mut u8, usize); 2]) -> Self {
        Self {
            parts,
            which: 0,
            pos: 0,
            _batch: std::marker::PhantomData,
        }
    }
}

impl<'a> Iterator for RecordsMut<'a> {
    type Item = &'a mut [u8];

    fn next(&mut self) -> Option<&'a mut [u8]> {
        loop {
            let (base, n) = *self.parts.get(self.which)?;
            if self.pos >= n {
                self.which += 1;
                self.pos = 0;
                continue;
            }
            let rest = n - self.pos;
            if rest < RECORD_HEADER_LEN {
                debug_assert!(false, "batch ends inside a record header");
                self.which = 2;
                return None;
            }
            // SAFETY: `pos + 8 <= n`, inside the part (`new`'s contract), and
            // 8-aligned: the part starts aligned and every record length is a
            // multiple of 8. No slice handed out covers a header.
            let word = unsafe { base.add(self.pos).cast::<u64>().read() };
            let Some(step) = Step::of(word, rest) else {
                self.which = 2;
                return None;
            };
            let start = self.pos + RECORD_HEADER_LEN;
            self.pos += step.total;
            if let Some(len) = step.payload {
                // SAFETY: `[start, start + len)` is inside the part (checked
                // against `rest` above) and past every range handed out
                // before (`pos` only grows), so the slices never overlap;
                // `new`'s contract gives exclusive access for `'a`.
                return Some(unsafe { std::slice::from_raw_parts_mut(base.add(start), len) });
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn frame(out: &mut Vec<u8>, payload: &[u8]) {
        out.extend_from_slice(&encode_header(payload.len() as u32, KIND_DATA).to_ne_bytes());
        out.extend_from_slice(payload);
        out.resize(out.len().next_multiple_of(8), 0);
    }

    /// `Batch::records_mut` in every design: each record's bytes, and only
    /// them, across a wrapped batch and padding, changed in place and seen
    /// changed by `records`. (Runs under Miri: the slices come from raw
    /// queue memory and must not overlap.)
    #[test]
    fn records_mut_edits_each_record_in_place_in_every_design() {
        use crate::bytes::{channel, ByteQueueWriter, CommitGrant, Config, Design};
        for design in [Design::DoubleBuffer, Design::FanIn, Design::SharedRing] {
            let (mut ws, mut r) = channel(design, Config::new(256, 1)).unwrap();
            let w = &mut ws[0];
            let mut sent = Vec::new();
            for round in 0..6u8 {
                for i in 0..3u8 {
                    let payload = vec![round * 16 + i; 5 + i as usize * 9];
                    // A grant committed short leaves padding behind it.
                    let mut g = w.try_claim(payload.len() + 3).unwrap();
                    g[..payload.len()].copy_from_slice(&payload);
                    g.commit(payload.len());
                    sent.push(payload);
                }
                while let Ok(mut b) = r.try_read() {
                    for rec in b.records_mut() {
                        for byte in rec.iter_mut() {
                            *byte = !*byte;
                        }
                    }
                    for rec in b.records() {
                        let want = sent.remove(0);
                        let flipped: Vec<u8> = want.iter().map(|x| !x).collect();
                        assert_eq!(rec, &flipped[..], "{design:?}");
                    }
                    b.release();
                }
            }
            assert!(sent.is_empty(), "{design:?}: {} not read", sent.len());
        }
    }

    #[test]
    fn records_walk_both_slices_and_skip_padding() {
        let mut a = Vec::new();
        frame(&mut a, b"one");
        a.extend_from_slice(&encode_header(8, KIND_PAD).to_ne_bytes());
        a.extend_from_slice(&[0xAA; 8]);
        frame(&mut a, b"");
        let mut b = Vec::new();
        frame(&mut b, b"three, longer than eight");
        let got: Vec<&[u8]> = Records::new([&a, &b]).collect();
        assert_eq!(got, [&b"one"[..], b"", b"three, longer than eight"]);
        assert_eq!(record_len(0), 8);
        assert_eq!(record_len(1), 16);
        assert_eq!(record_len(8), 16);
    }
}
