//! The checks every scenario runs before a figure may be printed.
//!
//! Items are `u64`s that carry their producer in the top 16 bits and a
//! per-producer sequence number below ([`item`]). The consumer feeds every
//! item it receives to a [`SeqCheck`]; at the end [`SeqCheck::finish`]
//! compares with what the producers sent (and, under a drop policy, with
//! what was counted as dropped). A lost, duplicated, reordered or foreign
//! item makes the run an error row instead of a figure.

use std::fmt;

/// Bits of an item that hold the sequence number.
pub const SEQ_BITS: u32 = 48;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;

/// The item producer `producer` sends as its `seq`-th.
#[inline]
pub fn item(producer: usize, seq: u64) -> u64 {
    ((producer as u64) << SEQ_BITS) | (seq & SEQ_MASK)
}

/// Why a run's result was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError(pub String);

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckError {}

impl CheckError {
    /// A rejection with this message.
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl From<std::io::Error> for CheckError {
    fn from(e: std::io::Error) -> Self {
        Self(format!("I/O error: {e}"))
    }
}

/// Checks the items one consumer received from several producers.
///
/// Lossless (`exact`): each producer's items arrive as 0, 1, 2, … with no
/// gap. Lossy (`lossy`, for the drop policies): each producer's sequence
/// numbers strictly increase (order kept, nothing duplicated), and at the
/// end delivered + dropped must equal sent.
#[derive(Debug, Clone)]
pub struct SeqCheck {
    next: Vec<u64>,
    delivered: Vec<u64>,
    lossy: bool,
    fault: Option<String>,
}

impl SeqCheck {
    /// Every item of `producers` producers must arrive, in order.
    pub fn exact(producers: usize) -> Self {
        Self::new(producers, false)
    }

    /// Items may be dropped (and counted), never duplicated or reordered.
    pub fn lossy(producers: usize) -> Self {
        Self::new(producers, true)
    }

    fn new(producers: usize, lossy: bool) -> Self {
        Self {
            next: vec![0; producers],
            delivered: vec![0; producers],
            lossy,
            fault: None,
        }
    }

    /// Records one received item.
    #[inline]
    pub fn see(&mut self, item: u64) {
        let p = (item >> SEQ_BITS) as usize;
        let seq = item & SEQ_MASK;
        match self.next.get_mut(p) {
            Some(next) if seq == *next || (self.lossy && seq > *next) => {
                *next = seq + 1;
                self.delivered[p] += 1;
            }
            _ => self.fault(p, seq),
        }
    }

    #[cold]
    fn fault(&mut self, p: usize, seq: u64) {
        if self.fault.is_none() {
            self.fault = Some(match self.next.get(p) {
                None => format!("item from unknown producer {p} (seq {seq})"),
                Some(next) => format!("producer {p}: got seq {seq}, expected {next}"),
            });
        }
    }

    /// Items received so far, all producers.
    pub fn delivered(&self) -> u64 {
        self.delivered.iter().sum()
    }

    /// Compares with what each producer sent and how many items were
    /// counted as dropped; returns the number delivered.
    ///
    /// # Errors
    ///
    /// The first sequence fault seen, or a count that does not add up.
    pub fn finish(self, sent: &[u64], dropped: u64) -> Result<u64, CheckError> {
        if let Some(f) = self.fault {
            return Err(CheckError(f));
        }
        if sent.len() != self.delivered.len() {
            return Err(CheckError::new(format!(
                "{} producers sent, {} expected",
                sent.len(),
                self.delivered.len()
            )));
        }
        let delivered = self.delivered();
        let total: u64 = sent.iter().sum();
        for (p, (&got, &sent)) in self.delivered.iter().zip(sent).enumerate() {
            if got > sent || (!self.lossy && got != sent) {
                return Err(CheckError::new(format!(
                    "producer {p}: sent {sent}, delivered {got}"
                )));
            }
        }
        if !self.lossy && dropped != 0 {
            return Err(CheckError::new(format!(
                "{dropped} items dropped by a lossless channel"
            )));
        }
        if delivered + dropped != total {
            return Err(CheckError::new(format!(
                "sent {total}, delivered {delivered} + dropped {dropped} = {}: {} lost",
                delivered + dropped,
                total as i128 - (delivered + dropped) as i128
            )));
        }
        Ok(delivered)
    }
}

/// Checks byte records stamped by [`crate::records::stamp`]: their
/// sequence numbers per producer, their tail byte and the byte total.
#[derive(Debug, Clone)]
pub struct RecordCheck {
    seq: SeqCheck,
    bytes: u64,
    bad: Option<String>,
}

impl RecordCheck {
    /// Every record of `producers` producers must arrive, in order.
    pub fn exact(producers: usize) -> Self {
        Self {
            seq: SeqCheck::exact(producers),
            bytes: 0,
            bad: None,
        }
    }

    /// Records one received record.
    #[inline]
    pub fn see(&mut self, rec: &[u8]) {
        match crate::records::parse(rec) {
            Some(id) => self.seq.see(id),
            None => self.corrupt(rec.len()),
        }
        self.bytes += rec.len() as u64;
    }

    #[cold]
    fn corrupt(&mut self, len: usize) {
        if self.bad.is_none() {
            self.bad = Some(format!("corrupted record of {len} bytes"));
        }
    }

    /// Compares with what was sent; returns the byte total.
    ///
    /// # Errors
    ///
    /// A corrupted record, a sequence fault, or totals that differ.
    pub fn finish(self, sent_records: &[u64], sent_bytes: u64) -> Result<u64, CheckError> {
        if let Some(b) = self.bad {
            return Err(CheckError(b));
        }
        self.seq.finish(sent_records, 0)?;
        if self.bytes != sent_bytes {
            return Err(CheckError::new(format!(
                "sent {sent_bytes} bytes, received {}",
                self.bytes
            )));
        }
        Ok(self.bytes)
    }
}

/// Checks that a file holds exactly `expected` bytes.
///
/// # Errors
///
/// The file is missing or its length differs.
pub fn file_len(path: &std::path::Path, expected: u64) -> Result<(), CheckError> {
    let len = std::fs::metadata(path)?.len();
    if len != expected {
        return Err(CheckError::new(format!(
            "{}: {len} bytes on disk, {expected} written",
            path.display()
        )));
    }
    Ok(())
}
