//! The drain window of a rolling deploy: once shutdown begins, each session is told when it will
//! be closed and closed then, at a moment drawn uniformly from `server.drain_ms`. Closing every
//! session at once would send every client of the node to its siblings in the same second; spread
//! over the window, they arrive at the rate the window sets.

use std::time::Duration;

use rand::{Rng, RngExt};

/// When sessions close after a shutdown signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    window: Duration,
}

impl Drain {
    pub fn new(window: Duration) -> Self {
        Self { window }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// How long after the signal one session is closed: uniform over the window, in whole
    /// milliseconds (what the client is told); zero without a window.
    pub fn close_after(&self, rng: &mut impl Rng) -> Duration {
        let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        if window_ms == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(rng.random_range(0..=window_ms))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    /// Without a window every session closes at once.
    #[test]
    fn no_window_closes_at_once() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            Drain::new(Duration::ZERO).close_after(&mut rng),
            Duration::ZERO
        );
    }

    /// 1,000 sessions over a 10 s window: every close inside it, each tenth of it used by
    /// roughly a tenth of them.
    #[test]
    fn closes_spread_over_the_window() {
        let drain = Drain::new(Duration::from_secs(10));
        let mut rng = StdRng::seed_from_u64(7);
        let mut per_second = [0usize; 11];
        for _ in 0..1000 {
            let after = drain.close_after(&mut rng);
            assert!(after <= drain.window());
            per_second[after.as_secs() as usize] += 1;
        }
        for (second, &count) in per_second[..10].iter().enumerate() {
            assert!((60..=140).contains(&count), "second {second}: {count}");
        }
    }
}
