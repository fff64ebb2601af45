//! Record-size and latency histograms.

use serde::Serialize;
use std::time::Duration;

/// Counts of record sizes in power-of-two buckets: bucket `k` holds sizes in
/// `[2^(k-1), 2^k)` (bucket 0 holds size 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeHistogram {
    counts: [u64; 65],
}

impl Default for SizeHistogram {
    fn default() -> Self {
        Self { counts: [0; 65] }
    }
}

/// One non-empty bucket of a [`SizeHistogram`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SizeBucket {
    /// Smallest size in the bucket, bytes.
    pub min_bytes: u64,
    /// Largest size in the bucket, bytes.
    pub max_bytes: u64,
    /// Records whose size fell in the bucket.
    pub count: u64,
}

impl SizeHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one record of `size` bytes.
    #[inline]
    pub fn record(&mut self, size: u64) {
        self.counts[(64 - size.leading_zeros()) as usize] += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
    }

    /// Records counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The non-empty buckets, smallest first.
    pub fn buckets(&self) -> Vec<SizeBucket> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(k, &count)| {
                let (min_bytes, max_bytes) = match k {
                    0 => (0, 0),
                    64 => (1 << 63, u64::MAX),
                    _ => (1u64 << (k - 1), (1u64 << k) - 1),
                };
                SizeBucket {
                    min_bytes,
                    max_bytes,
                    count,
                }
            })
            .collect()
    }
}

impl Serialize for SizeHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.buckets().serialize(s)
    }
}

/// Latencies in nanoseconds, to three significant digits, from 1 ns to an hour.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    h: hdrhistogram::Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            h: hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                .expect("static bounds are valid"),
        }
    }

    /// Counts one latency (clamped to the histogram's range).
    pub fn record(&mut self, d: Duration) {
        self.record_ns(d.as_nanos().min(u128::from(u64::MAX)) as u64);
    }

    /// Counts one latency given in nanoseconds (clamped to the range).
    pub fn record_ns(&mut self, ns: u64) {
        self.h.saturating_record(ns.max(1));
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.h.add(&other.h);
    }

    /// Latencies counted.
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// Mean in nanoseconds (0 when empty).
    pub fn mean_ns(&self) -> f64 {
        if self.h.is_empty() {
            0.0
        } else {
            self.h.mean()
        }
    }

    /// The latency at `quantile` (0.0..=1.0) in nanoseconds (0 when empty).
    pub fn quantile_ns(&self, quantile: f64) -> u64 {
        if self.h.is_empty() {
            0
        } else {
            self.h.value_at_quantile(quantile)
        }
    }

    /// Largest latency counted, in nanoseconds.
    pub fn max_ns(&self) -> u64 {
        self.h.max()
    }

    /// A summary: count, mean, p50, p99, p99.9, max.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count(),
            mean_ns: self.mean_ns(),
            p50_ns: self.quantile_ns(0.5),
            p99_ns: self.quantile_ns(0.99),
            p999_ns: self.quantile_ns(0.999),
            max_ns: self.max_ns(),
        }
    }
}

/// Percentiles of a [`LatencyHistogram`], in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Latencies counted.
    pub count: u64,
    /// Mean.
    pub mean_ns: f64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest.
    pub max_ns: u64,
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn size_buckets_are_powers_of_two() {
        let mut h = SizeHistogram::new();
        for s in [0, 1, 2, 3, 10, 10_000] {
            h.record(s);
        }
        let b = h.buckets();
        assert_eq!(
            b[0],
            SizeBucket {
                min_bytes: 0,
                max_bytes: 0,
                count: 1
            }
        );
        assert_eq!(
            b[1],
            SizeBucket {
                min_bytes: 1,
                max_bytes: 1,
                count: 1
            }
        );
        assert_eq!(
            b[2],
            SizeBucket {
                min_bytes: 2,
                max_bytes: 3,
                count: 2
            }
        );
        assert_eq!(
            b[3],
            SizeBucket {
                min_bytes: 8,
                max_bytes: 15,
                count: 1
            }
        );
        assert_eq!(
            b[4],
            SizeBucket {
                min_bytes: 8192,
                max_bytes: 16383,
                count: 1
            }
        );
        let mut m = h.clone();
        m.merge(&h);
        assert_eq!(m.total(), 12);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "hdrhistogram is slow under Miri and has no unsafe of ours"
    )]
    fn latency_quantiles() {
        let mut h = LatencyHistogram::new();
        for ns in 1..=1000u64 {
            h.record_ns(ns * 1000);
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert!(
            (s.p50_ns as f64 - 500_000.0).abs() / 500_000.0 < 0.01,
            "{s:?}"
        );
        assert!(
            (s.p99_ns as f64 - 990_000.0).abs() / 990_000.0 < 0.01,
            "{s:?}"
        );
        assert!(s.max_ns >= 999_000);
        assert_eq!(LatencyHistogram::new().summary().p99_ns, 0);
    }
}
