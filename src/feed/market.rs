//! The simulated market: geometric Brownian motion over the configured symbols, seeded and pure.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

use crate::feed::history::{Recorded, to_cents};
use crate::feed::symbols::SymbolId;
use crate::protocol::quote::{Quote, round2};
use crate::settings::{FeedSettings, SymbolSettings};

/// Seconds in a trading year (252 sessions of 6.5 hours), the unit of annualised volatility.
pub(crate) const TRADING_YEAR_SECS: f64 = 252.0 * 6.5 * 3600.0;

/// One symbol's evolving state.
#[derive(Debug, Clone)]
struct SymbolState {
    symbol: String,
    /// Unrounded price, so rounding to cents never feeds back into the walk.
    price: f64,
    open: f64,
    high: f64,
    low: f64,
    volume: u64,
    seq: u64,
    ts: u64,
    quiet_ticks: u32,
    volatility: f64,
    drift: f64,
}

/// The whole market. `step` advances it by one tick and reports the symbols that moved.
#[derive(Debug)]
pub struct Market {
    rng: StdRng,
    symbols: Vec<SymbolState>,
    /// One tick as a fraction of a trading year, time scale included.
    dt_years: f64,
    spread_fraction: f64,
    update_probability: f64,
    max_quiet_ticks: u32,
}

impl Market {
    /// A market at its opening prices, stamped `ts`, driven by a generator seeded with `seed`.
    pub fn new(settings: &FeedSettings, seed: u64, ts: u64) -> Self {
        let tick: Duration = settings.tick_interval_ms.get();
        let symbols = settings
            .symbols
            .iter()
            .map(|s| SymbolState::opening(s, ts))
            .collect();
        Self {
            rng: StdRng::seed_from_u64(seed),
            symbols,
            dt_years: tick.as_secs_f64() * settings.time_scale / TRADING_YEAR_SECS,
            spread_fraction: settings.spread_bps / 10_000.0,
            update_probability: settings.update_probability,
            max_quiet_ticks: settings.max_quiet_ticks,
        }
    }

    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// Advances one tick stamped `ts`; returns the ids of the symbols that moved, in order.
    pub fn step(&mut self, ts: u64) -> Vec<SymbolId> {
        let mut moved = Vec::with_capacity(self.symbols.len());
        for (id, s) in self.symbols.iter_mut().enumerate() {
            let forced = s.quiet_ticks >= self.max_quiet_ticks;
            if !forced && !self.rng.random_bool(self.update_probability) {
                s.quiet_ticks += 1;
                continue;
            }
            let z: f64 = self.rng.sample(StandardNormal);
            let sigma = s.volatility;
            let exponent =
                (s.drift - sigma * sigma / 2.0) * self.dt_years + sigma * self.dt_years.sqrt() * z;
            s.price *= exponent.exp();
            s.high = s.high.max(s.price);
            s.low = s.low.min(s.price);
            s.volume += 100 * self.rng.random_range(1..=20u64);
            s.seq += 1;
            s.ts = ts;
            s.quiet_ticks = 0;
            moved.push(id);
        }
        moved
    }

    /// Widens a symbol's day range (`low`, `high`) to take in a past it did not walk itself.
    pub fn widen_range(&mut self, id: SymbolId, low: f64, high: f64) {
        let s = &mut self.symbols[id];
        s.low = s.low.min(low);
        s.high = s.high.max(high);
    }

    /// The current quote of one symbol.
    pub fn quote(&self, id: SymbolId) -> Quote {
        self.symbols[id].quote(self.spread_fraction)
    }

    /// The current quote of one symbol, without building it: its name, seq and the rest in
    /// cents (what the feed serializes each tick).
    pub fn recorded(&self, id: SymbolId) -> (&str, u64, Recorded) {
        let s = &self.symbols[id];
        (&s.symbol, s.seq, s.recorded(self.spread_fraction))
    }

    /// Every symbol's current quote, in `SymbolId` order.
    pub fn quotes(&self) -> Vec<Quote> {
        (0..self.len()).map(|id| self.quote(id)).collect()
    }
}

/// Every symbol at its opening price with seq 0, stamped `ts`: what a market starts from, and
/// what a cluster edge shows until the publisher's first snapshot.
pub fn opening_quotes(settings: &FeedSettings, ts: u64) -> Vec<Quote> {
    let spread_fraction = settings.spread_bps / 10_000.0;
    settings
        .symbols
        .iter()
        .map(|s| SymbolState::opening(s, ts).quote(spread_fraction))
        .collect()
}

impl SymbolState {
    fn opening(s: &SymbolSettings, ts: u64) -> Self {
        Self {
            symbol: s.symbol.clone(),
            price: s.price,
            open: s.price,
            high: s.price,
            low: s.price,
            volume: 0,
            seq: 0,
            ts,
            quiet_ticks: 0,
            volatility: s.volatility,
            drift: s.drift,
        }
    }

    fn quote(&self, spread_fraction: f64) -> Quote {
        self.recorded(spread_fraction)
            .to_quote(&self.symbol, self.seq)
    }

    /// The quote, in cents: prices rounded to cents (a float rounded to cents and read back
    /// from cents is the same float, so `quote` is unchanged by going through this).
    fn recorded(&self, spread_fraction: f64) -> Recorded {
        let s = self;
        let price = round2(s.price);
        let half_spread = (s.price * spread_fraction / 2.0).max(0.005);
        let bid = round2(s.price - half_spread);
        // Keep the book uncrossed after rounding: ask is at least a cent above bid.
        let ask = round2(s.price + half_spread).max(round2(bid + 0.01));
        let fields = [
            price,
            bid,
            ask,
            round2(s.open),
            round2(s.high),
            round2(s.low),
            round2(s.price - s.open),
            round2((s.price - s.open) / s.open * 100.0),
        ];
        Recorded::new(s.ts, s.volume, fields.map(to_cents))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    fn feed_settings() -> FeedSettings {
        Settings::defaults().expect("defaults are valid").feed
    }

    /// The same seed gives the same market, tick for tick; another seed gives another one.
    #[test]
    fn same_seed_same_market() {
        let settings = feed_settings();
        let run = |seed| {
            let mut m = Market::new(&settings, seed, 0);
            (1..=50).for_each(|t| {
                m.step(t);
            });
            (0..m.len()).map(|id| m.quote(id)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    /// Every tick moves some symbols, no symbol stays quiet longer than allowed, each move bumps
    /// its seq by one, and quotes keep their invariants (positive, bid < ask, low ≤ price ≤ high).
    #[test]
    fn steps_keep_quote_invariants() {
        let settings = feed_settings();
        let mut m = Market::new(&settings, 42, 0);
        let mut last_move = vec![0u64; m.len()];
        let mut seqs = vec![0u64; m.len()];
        for t in 1..=500u64 {
            let moved = m.step(t);
            assert!(!moved.is_empty(), "tick {t} moved nothing");
            for id in moved {
                let q = m.quote(id);
                assert_eq!(q.seq, seqs[id] + 1);
                assert_eq!(q.ts, t);
                seqs[id] = q.seq;
                assert!(t - last_move[id] <= u64::from(settings.max_quiet_ticks) + 1);
                last_move[id] = t;
                assert!(q.price > 0.0 && q.bid < q.ask, "{q:?}");
                assert!(q.low <= q.price && q.price <= q.high, "{q:?}");
                assert!((q.change - (q.price - q.open)).abs() <= 0.011, "{q:?}");
                assert_eq!(q.price, round2(q.price));
            }
        }
        assert!(
            seqs.iter().all(|&s| s > 100),
            "every symbol moved often: {seqs:?}"
        );
    }

    /// With probability one every symbol moves on every tick (the benchmark's workload).
    #[test]
    fn full_probability_moves_everything() {
        let mut settings = feed_settings();
        settings.update_probability = 1.0;
        let mut m = Market::new(&settings, 1, 0);
        assert_eq!(m.step(1).len(), m.len());
    }

    /// The walk has the configured spread of returns: with zero drift, the standard deviation
    /// of log returns per tick matches sigma * sqrt(dt) within a few percent.
    #[test]
    fn log_returns_match_volatility() {
        let mut settings = feed_settings();
        settings.update_probability = 1.0;
        settings.symbols.truncate(1);
        settings.symbols[0].volatility = 0.3;
        settings.symbols[0].drift = 0.0;
        let mut m = Market::new(&settings, 3, 0);
        let mut prev = m.symbols[0].price;
        let returns: Vec<f64> = (1..=20_000)
            .map(|t| {
                m.step(t);
                let p = m.symbols[0].price;
                let r = (p / prev).ln();
                prev = p;
                r
            })
            .collect();
        let mean = returns.iter().sum::<f64>() / returns.len() as f64;
        let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / returns.len() as f64;
        let expected = 0.3 * m.dt_years.sqrt();
        let ratio = var.sqrt() / expected;
        assert!((0.97..1.03).contains(&ratio), "std ratio {ratio}");
    }
}
