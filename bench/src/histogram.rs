//! A lock-free latency histogram in whole milliseconds (the resolution of a quote's `ts`),
//! shared by every client task.

use std::sync::atomic::{AtomicU64, Ordering};

/// Latencies from 0 to `MAX_MS - 1` ms get their own bucket; longer ones share the last.
const MAX_MS: usize = 30_000;

pub struct Histogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: (0..MAX_MS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn record(&self, ms: u64) {
        let bucket = (ms as usize).min(MAX_MS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(ms, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// The smallest latency at or below which a `q` share of the samples fall.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let target = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (ms, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= target {
                return ms as u64;
            }
        }
        self.max()
    }

    pub fn reset(&self) {
        self.buckets
            .iter()
            .for_each(|b| b.store(0, Ordering::Relaxed));
        self.max.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quantiles land on the right millisecond; resets empty it.
    #[test]
    fn quantiles_and_reset() {
        let h = Histogram::default();
        (0..1000).for_each(|i| h.record(i % 10));
        h.record(50_000);
        assert_eq!(
            h.quantile(0.5),
            5,
            "rank 501 of 1001 falls in the 5 ms bucket"
        );
        assert_eq!(h.quantile(0.99), 9);
        assert_eq!(h.max(), 50_000);
        assert_eq!(h.quantile(1.0), (MAX_MS - 1) as u64);
        h.reset();
        assert_eq!((h.count(), h.max()), (0, 0));
    }
}
