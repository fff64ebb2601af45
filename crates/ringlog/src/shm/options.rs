//! [`ShmOptions`], and the helpers every constructor shares.

use super::error::{SegmentKind, ShmError};
use super::header::Geometry;
use super::identity::ProcessIdentity;
use super::segment::DEFAULT_MODE;
use crate::wait::WaitStrategy;
use std::time::Duration;

/// How segments are created and how their handles wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShmOptions {
    /// Permission bits of a new named segment (default 0600).
    pub mode: u32,
    /// Spin and yield budgets before a wait sleeps on the futex.
    pub wait: WaitStrategy,
    /// Longest a blocked call sleeps before it looks at the peer's liveness
    /// (and the MPSC consumer sweeps for dead producers). Also caps every
    /// single futex sleep.
    pub liveness_interval: Duration,
}

impl Default for ShmOptions {
    fn default() -> Self {
        Self {
            mode: DEFAULT_MODE,
            wait: WaitStrategy::DEFAULT,
            liveness_interval: Duration::from_millis(100),
        }
    }
}

impl ShmOptions {
    pub(super) fn wait_strategy(&self) -> WaitStrategy {
        WaitStrategy {
            max_sleep: Some(
                self.wait
                    .max_sleep
                    .map_or(self.liveness_interval, |s| s.min(self.liveness_interval)),
            ),
            ..self.wait
        }
    }
}

pub(super) fn geometry(
    name: &str,
    kind: SegmentKind,
    capacity: usize,
    slots: usize,
) -> Result<Geometry, ShmError> {
    Geometry::new(kind, capacity, slots).map_err(|(what, requested, min, max)| ShmError::Geometry {
        name: name.to_owned(),
        what,
        requested,
        min,
        max,
    })
}

pub(super) fn me(name: &str) -> Result<ProcessIdentity, ShmError> {
    ProcessIdentity::current().map_err(|e| ShmError::io(name, "read /proc/self/stat", e))
}
