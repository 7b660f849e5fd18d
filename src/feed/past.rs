//! A generated past for the simulated market, so that a fresh start shows full charts: for each
//! symbol a random walk with its own volatility and drift, run backwards from its opening price,
//! becomes the last `history.bars_1s` one-second bars and `history.bars_1m` one-minute bars.
//!
//! The recent minutes are the one-second bars added up, so both intervals tell the same story
//! where they overlap; older minutes are walked in coarser steps. Counts and volumes follow the
//! market's settings (updates per tick, 100 to 2,000 shares an update). Seeded from the
//! market's seed, so a seeded market has a reproducible past.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

use crate::feed::history::History;
use crate::feed::market::TRADING_YEAR_SECS;
use crate::protocol::history::{Bar, Interval};
use crate::protocol::quote::round2;
use crate::settings::{FeedSettings, HistorySettings};

/// Steps of the walk within one second, and within one older minute.
const STEPS_PER_SECOND: u64 = 4;
const STEPS_PER_MINUTE: u64 = 6;

/// Fills `history` with a past that ends at `now` (Unix ms) at each symbol's opening price;
/// returns each symbol's lowest and highest price in its one-second bars: the session so far,
/// which the dashboard's five-minute chart shows part of (the day of one-minute bars is walked
/// at `feed.time_scale`, a hundred market days at the default, too wide for a day's range).
/// The symbols are shared out over the machine's cores (each symbol's walk has its own seeded
/// generator, so the result does not depend on how): 5,000 symbols take seconds on one core.
pub fn generate(
    history: &History,
    feed: &FeedSettings,
    limits: &HistorySettings,
    seed: u64,
    now: u64,
) -> Vec<(f64, f64)> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(8);
    let per_thread = feed.symbols.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..feed.symbols.len())
            .step_by(per_thread)
            .map(|start| {
                let ids = start..(start + per_thread).min(feed.symbols.len());
                scope.spawn(move || generate_some(history, feed, limits, seed, now, ids))
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().expect("generating a past does not panic"))
            .collect()
    })
}

/// `generate` for the symbols `ids`.
fn generate_some(
    history: &History,
    feed: &FeedSettings,
    limits: &HistorySettings,
    seed: u64,
    now: u64,
    ids: std::ops::Range<usize>,
) -> Vec<(f64, f64)> {
    let mut ranges = Vec::with_capacity(ids.len());
    let tick_secs = feed.tick_interval_ms.get().as_secs_f64().max(0.001);
    let updates_per_sec = feed.update_probability / tick_secs;
    let walk = |secs: f64| secs * feed.time_scale / TRADING_YEAR_SECS;
    let mut path = Vec::new();
    for (id, symbol) in feed
        .symbols
        .iter()
        .enumerate()
        .skip(ids.start)
        .take(ids.len())
    {
        let mut rng =
            SmallRng::seed_from_u64(seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let step = |price: f64, dt: f64, rng: &mut SmallRng| {
            let z: f64 = rng.sample(StandardNormal);
            let sigma = symbol.volatility;
            // Backwards: the price one step earlier.
            price / ((symbol.drift - sigma * sigma / 2.0) * dt + sigma * dt.sqrt() * z).exp()
        };
        // One-second bars, newest last, ending at the opening price.
        let this_second = now / 1000;
        let seconds = limits.bars_1s as u64;
        let dt = walk(1.0 / STEPS_PER_SECOND as f64);
        path.clear();
        path.push(symbol.price);
        for _ in 0..seconds * STEPS_PER_SECOND {
            let earlier = step(*path.last().expect("never empty"), dt, &mut rng);
            path.push(earlier);
        }
        path.reverse();
        let second_bars: Vec<Bar> = (0..seconds)
            .map(|j| {
                let t = (this_second - seconds + j) * 1000;
                let prices =
                    &path[(j * STEPS_PER_SECOND) as usize..=((j + 1) * STEPS_PER_SECOND) as usize];
                bar(t, prices, updates_per_sec, &mut rng)
            })
            .collect();
        history.put_bars(id, Interval::Second, &second_bars);

        // One-minute bars: the recent ones add up the seconds, older ones walk on from there.
        let this_minute = now / 60_000;
        let minutes = limits.bars_1m as u64;
        let mut minute_bars: Vec<Bar> = Vec::with_capacity(minutes as usize);
        for b in &second_bars {
            let t = b.t / 60_000 * 60_000;
            match minute_bars.last_mut() {
                Some(m) if m.t == t => {
                    m.h = m.h.max(b.h);
                    m.l = m.l.min(b.l);
                    m.c = b.c;
                    m.v += b.v;
                    m.n += b.n;
                }
                _ => minute_bars.push(Bar { t, ..*b }),
            }
        }
        let covered = minute_bars.len() as u64;
        let first_open = second_bars.first().map_or(symbol.price, |b| b.o);
        let older = minutes.saturating_sub(covered).min(this_minute);
        let dt = walk(60.0 / STEPS_PER_MINUTE as f64);
        path.clear();
        path.push(first_open);
        for _ in 0..older * STEPS_PER_MINUTE {
            let earlier = step(*path.last().expect("never empty"), dt, &mut rng);
            path.push(earlier);
        }
        path.reverse();
        let oldest = minute_bars.first().map_or(this_minute, |m| m.t / 60_000) - older;
        let mut all: Vec<Bar> = (0..older)
            .map(|j| {
                let prices =
                    &path[(j * STEPS_PER_MINUTE) as usize..=((j + 1) * STEPS_PER_MINUTE) as usize];
                bar(
                    (oldest + j) * 60_000,
                    prices,
                    updates_per_sec * 60.0,
                    &mut rng,
                )
            })
            .collect();
        all.extend(minute_bars);
        history.put_bars(id, Interval::Minute, &all);
        ranges.push(
            second_bars
                .iter()
                .fold((symbol.price, symbol.price), |(low, high), b| {
                    (low.min(b.l), high.max(b.h))
                }),
        );
    }
    ranges
}

/// A bar over a walked path: open and close at its ends, high and low over it, and a count
/// and volume like `updates` updates' worth.
fn bar(t: u64, prices: &[f64], updates: f64, rng: &mut SmallRng) -> Bar {
    let (first, last) = (prices[0], prices[prices.len() - 1]);
    let (h, l) = prices
        .iter()
        .fold((f64::MIN, f64::MAX), |(h, l), &p| (h.max(p), l.min(p)));
    let n = (updates * rng.random_range(0.7..1.3)).round().max(1.0) as u64;
    let v = (0..n.min(64))
        .map(|_| 100 * rng.random_range(1..=20u64))
        .sum::<u64>()
        * n
        / n.min(64);
    Bar {
        t,
        o: round2(first),
        h: round2(h),
        l: round2(l),
        c: round2(last),
        v,
        n,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::feed::symbols::Universe;
    use crate::settings::Settings;

    fn history(settings: &Settings) -> History {
        let universe = Arc::new(Universe::new(&settings.feed.symbols));
        History::new(universe, &settings.history)
    }

    /// The past ends at each symbol's opening price, fills both rings, keeps bars consistent,
    /// and is the same however the symbols are shared out over threads.
    #[test]
    fn a_full_consistent_past_whatever_the_threads() {
        let settings = Settings::defaults().unwrap();
        let now = 1_795_000_000_123;
        let (shared, alone) = (history(&settings), history(&settings));
        let ranges = generate(&shared, &settings.feed, &settings.history, 9, now);
        let all = 0..settings.feed.symbols.len();
        assert_eq!(
            generate_some(&alone, &settings.feed, &settings.history, 9, now, all),
            ranges
        );
        for (id, symbol) in settings.feed.symbols.iter().enumerate() {
            for interval in Interval::ALL {
                let (bars, _) = shared.bars(id, interval, usize::MAX);
                assert_eq!(bars, alone.bars(id, interval, usize::MAX).0);
                let kept = match interval {
                    Interval::Second => settings.history.bars_1s,
                    Interval::Minute => settings.history.bars_1m,
                };
                assert_eq!(bars.len(), kept);
                assert!(
                    bars.iter()
                        .all(|b| b.l <= b.o.min(b.c) && b.h >= b.o.max(b.c))
                );
                assert!(bars.last().unwrap().t < now);
            }
            let (seconds, _) = shared.bars(id, Interval::Second, usize::MAX);
            assert_eq!(seconds.last().unwrap().c, round2(symbol.price));
            let (low, high) = ranges[id];
            assert!(low <= symbol.price && symbol.price <= high);
        }
    }
}
