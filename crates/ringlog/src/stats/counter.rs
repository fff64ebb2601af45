//! A counter with one writer and any number of readers.

use crate::sync::{AtomicU64, Ordering};

/// A monotonically growing count written by exactly one thread.
///
/// `add` is a Relaxed load and a Relaxed store of the owner's own word: no
/// locked instruction. Put counters of different writers on different cache
/// lines (`CachePadded`) so that counting never bounces a line.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Adds `n`. Only one thread may call this for a given counter; the type
    /// cannot enforce it, so owners keep counters private and hand out reads.
    #[inline]
    pub fn add(&self, n: u64) {
        // Relaxed: a statistic; readers need no ordering with other memory.
        // Load + store instead of fetch_add: single writer, no lock prefix.
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let c = Counter::new();
        c.add(3);
        c.add(4);
        assert_eq!(c.get(), 7);
    }
}
