//! Choosing a design at run time: [`Design`], [`channel`], and the
//! [`AnyWriter`] that wraps any design's writer.

use super::{
    double_buffer, fan_in, shared_ring, ByteQueueReader, ByteQueueWriter, ClaimError, CommitGrant,
    Config, NewQueueError, QueueLimits, TryClaimError,
};
use crate::wait::Deadline;
use std::ops::{Deref, DerefMut};

/// The three MPSC byte queue designs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Design {
    /// [`double_buffer`]: K buffers, one `fetch_add` per record.
    DoubleBuffer,
    /// [`fan_in`]: one SPSC ring per writer plus a doorbell.
    FanIn,
    /// [`shared_ring`]: one ring, reserve by CAS, publish the header last.
    SharedRing,
}

impl Design {
    /// Every design, in catalogue order.
    pub const ALL: [Design; 3] = [Design::DoubleBuffer, Design::FanIn, Design::SharedRing];

    /// The design's name: `double-buffer`, `fan-in`, `shared-ring`.
    pub fn name(self) -> &'static str {
        match self {
            Design::DoubleBuffer => "double-buffer",
            Design::FanIn => "fan-in",
            Design::SharedRing => "shared-ring",
        }
    }

    /// The design called `name` (as [`name`](Self::name) spells it).
    pub fn from_name(name: &str) -> Option<Design> {
        Design::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// Checks `config` for `design` and says what the queue would be (largest
/// record, memory) without allocating.
///
/// # Errors
///
/// As the design's own `limits`.
pub fn limits(design: Design, config: &Config) -> Result<QueueLimits, NewQueueError> {
    match design {
        Design::DoubleBuffer => double_buffer::limits(config),
        Design::FanIn => fan_in::limits(config),
        Design::SharedRing => shared_ring::limits(config),
    }
}

/// Builds a queue of the given design.
///
/// # Errors
///
/// As the design's own `channel`.
///
/// # Examples
///
/// ```
/// use ringlog::bytes::{self, ByteQueueWriter, Config, Design};
///
/// for design in Design::ALL {
///     let (mut writers, mut reader) = bytes::channel(design, Config::new(4096, 1)).unwrap();
///     writers[0].try_push(b"any design").unwrap();
///     let batch = reader.try_read().unwrap();
///     assert_eq!(batch.records().next(), Some(&b"any design"[..]));
///     batch.release();
/// }
/// ```
pub fn channel(
    design: Design,
    config: Config,
) -> Result<(Vec<AnyWriter>, Box<dyn ByteQueueReader>), NewQueueError> {
    Ok(match design {
        Design::DoubleBuffer => {
            let (w, r) = double_buffer::channel(config)?;
            (
                w.into_iter().map(AnyWriter::DoubleBuffer).collect(),
                Box::new(r),
            )
        }
        Design::FanIn => {
            let (w, r) = fan_in::channel(config)?;
            (w.into_iter().map(AnyWriter::FanIn).collect(), Box::new(r))
        }
        Design::SharedRing => {
            let (w, r) = shared_ring::channel(config)?;
            (
                w.into_iter().map(AnyWriter::SharedRing).collect(),
                Box::new(r),
            )
        }
    })
}

/// A writer of any design.
#[derive(Debug)]
pub enum AnyWriter {
    /// A double-buffer writer.
    DoubleBuffer(double_buffer::Writer),
    /// A fan-in writer.
    FanIn(fan_in::Writer),
    /// A shared-ring writer.
    SharedRing(shared_ring::Writer),
}

/// A grant of any design.
#[derive(Debug)]
pub enum AnyGrant<'a> {
    /// A double-buffer grant.
    DoubleBuffer(double_buffer::Grant<'a>),
    /// A fan-in grant.
    FanIn(fan_in::Grant<'a>),
    /// A shared-ring grant.
    SharedRing(shared_ring::Grant<'a>),
}

macro_rules! each {
    ($value:expr, $x:ident => $body:expr) => {
        match $value {
            AnyWriter::DoubleBuffer($x) => $body,
            AnyWriter::FanIn($x) => $body,
            AnyWriter::SharedRing($x) => $body,
        }
    };
}

impl ByteQueueWriter for AnyWriter {
    type Grant<'a> = AnyGrant<'a>;

    fn id(&self) -> usize {
        each!(self, w => w.id())
    }

    fn max_record_len(&self) -> usize {
        each!(self, w => w.max_record_len())
    }

    fn try_claim(&mut self, len: usize) -> Result<AnyGrant<'_>, TryClaimError> {
        Ok(match self {
            AnyWriter::DoubleBuffer(w) => AnyGrant::DoubleBuffer(w.try_claim(len)?),
            AnyWriter::FanIn(w) => AnyGrant::FanIn(w.try_claim(len)?),
            AnyWriter::SharedRing(w) => AnyGrant::SharedRing(w.try_claim(len)?),
        })
    }

    fn claim(&mut self, len: usize, deadline: Deadline) -> Result<AnyGrant<'_>, ClaimError> {
        Ok(match self {
            AnyWriter::DoubleBuffer(w) => AnyGrant::DoubleBuffer(w.claim(len, deadline)?),
            AnyWriter::FanIn(w) => AnyGrant::FanIn(w.claim(len, deadline)?),
            AnyWriter::SharedRing(w) => AnyGrant::SharedRing(w.claim(len, deadline)?),
        })
    }
}

impl CommitGrant for AnyGrant<'_> {
    fn commit(self, n: usize) {
        match self {
            AnyGrant::DoubleBuffer(g) => g.commit(n),
            AnyGrant::FanIn(g) => g.commit(n),
            AnyGrant::SharedRing(g) => g.commit(n),
        }
    }
}

impl Deref for AnyGrant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            AnyGrant::DoubleBuffer(g) => g,
            AnyGrant::FanIn(g) => g,
            AnyGrant::SharedRing(g) => g,
        }
    }
}

impl DerefMut for AnyGrant<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            AnyGrant::DoubleBuffer(g) => g,
            AnyGrant::FanIn(g) => g,
            AnyGrant::SharedRing(g) => g,
        }
    }
}
