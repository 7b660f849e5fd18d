//! Token buckets: the per-address connect rate of upgrades and the per-session rate of client
//! messages, with the rule that turns sustained excess into a close.

use std::time::Duration;

use tokio::time::Instant;

/// A rate with a burst: `per_sec` tokens are added every second, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    per_sec: f64,
    burst: f64,
}

impl Rate {
    /// `None` when `per_sec` is 0 (no limit). A burst below one token is raised to one.
    pub fn new(per_sec: u32, burst: u32) -> Option<Self> {
        (per_sec > 0).then(|| Self {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
        })
    }
}

/// One bucket. The rate is passed in rather than stored, so a table of many buckets stays small.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket: a newcomer may use its whole burst at once.
    pub fn full(rate: Rate, now: Instant) -> Self {
        Self {
            tokens: rate.burst,
            updated: now,
        }
    }

    /// Takes one token, or says how long until one is there.
    pub fn try_take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate.per_sec))
        }
    }

    /// Whether the bucket has refilled completely: it then remembers nothing and can be dropped.
    pub fn is_full(&self, rate: Rate, now: Instant) -> bool {
        let mut probe = *self;
        probe.refill(rate, now);
        probe.tokens >= rate.burst
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_sec).min(rate.burst);
        self.updated = now;
    }
}

/// How long excess messages are counted before the count starts again.
pub const EXCESS_WINDOW: Duration = Duration::from_secs(10);

/// What to do with one client message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Within the rate: process it.
    Allow,
    /// Over the rate: answer `rate_limited` and drop it.
    Refuse,
    /// Over the rate for the `max_excess + 1`-th time within [`EXCESS_WINDOW`]: close with 1008.
    Close,
}

/// A session's message rate (`ws.max_client_messages_per_sec`, `ws.client_message_burst`) and
/// its tolerance for excess (`ws.max_excess_messages` within [`EXCESS_WINDOW`], counted from
/// the first excess message of the window).
#[derive(Debug)]
pub struct MessageRate {
    limit: Option<(Rate, TokenBucket)>,
    max_excess: u32,
    excess: u32,
    window_started: Instant,
}

impl MessageRate {
    pub fn new(rate: Option<Rate>, max_excess: u32, now: Instant) -> Self {
        Self {
            limit: rate.map(|rate| (rate, TokenBucket::full(rate, now))),
            max_excess,
            excess: 0,
            window_started: now,
        }
    }

    pub fn check(&mut self, now: Instant) -> Decision {
        let Some((rate, bucket)) = &mut self.limit else {
            return Decision::Allow;
        };
        if bucket.try_take(*rate, now).is_ok() {
            return Decision::Allow;
        }
        if self.excess == 0 || now.saturating_duration_since(self.window_started) > EXCESS_WINDOW {
            self.window_started = now;
            self.excess = 0;
        }
        self.excess += 1;
        if self.excess > self.max_excess {
            Decision::Close
        } else {
            Decision::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A full bucket gives its burst at once, then one token per `1/rate` seconds.
    #[test]
    fn bucket_gives_burst_then_rate() {
        let rate = Rate::new(10, 3).unwrap();
        let t0 = Instant::now();
        let mut bucket = TokenBucket::full(rate, t0);
        for _ in 0..3 {
            assert_eq!(bucket.try_take(rate, t0), Ok(()));
        }
        let wait = bucket.try_take(rate, t0).unwrap_err();
        assert_eq!(wait, 100 * MS);
        assert!(bucket.try_take(rate, t0 + 50 * MS).is_err());
        assert_eq!(bucket.try_take(rate, t0 + 100 * MS), Ok(()));
        assert!(!bucket.is_full(rate, t0 + 100 * MS));
        assert!(bucket.is_full(rate, t0 + 400 * MS), "refills to the burst");
        for _ in 0..3 {
            assert_eq!(bucket.try_take(rate, t0 + 10_000 * MS), Ok(()));
        }
        assert!(
            bucket.try_take(rate, t0 + 10_000 * MS).is_err(),
            "never more than the burst"
        );
    }

    /// A rate of 0 is no limit.
    #[test]
    fn zero_rate_is_no_limit() {
        assert_eq!(Rate::new(0, 10), None);
        let t0 = Instant::now();
        let mut unlimited = MessageRate::new(None, 0, t0);
        for _ in 0..10_000 {
            assert_eq!(unlimited.check(t0), Decision::Allow);
        }
    }

    /// Excess messages are refused; more than `max_excess` of them within the window closes,
    /// while excess spread over longer than the window never does.
    #[test]
    fn sustained_excess_closes() {
        let t0 = Instant::now();
        let mut burst = MessageRate::new(Rate::new(1, 2), 3, t0);
        let verdicts: Vec<_> = (0..6).map(|_| burst.check(t0)).collect();
        use Decision::*;
        assert_eq!(verdicts, [Allow, Allow, Refuse, Refuse, Refuse, Close]);

        let mut spread = MessageRate::new(Rate::new(1, 1), 3, t0);
        let mut now = t0;
        for _ in 0..20 {
            assert_eq!(spread.check(now), Allow);
            assert_eq!(spread.check(now), Refuse, "one excess message every 4 s");
            now += 4000 * MS;
        }
    }
}
