//! The simulated feed: an actor that owns the [`Market`], ticks it on the configured interval
//! and publishes each tick through its [`Outlets`]. `spawn` starts it and returns its handle.

use std::time::Duration;

use rand::RngExt;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::history::History;
use super::market::Market;
use super::outlets::Outlets;
use super::past;
use super::symbols::{SymbolId, Universe};
use super::{Command, FeedHandle, FeedStatus, Snapshot, Update};
use crate::clock::now_ms;
use crate::settings::{FeedSettings, HistorySettings};

/// Spawns the simulated feed on the current runtime, with a generated past if
/// `history.generate_past`; it stops when `shutdown` is cancelled.
pub fn spawn(
    settings: &FeedSettings,
    history_settings: &HistorySettings,
    shutdown: CancellationToken,
) -> FeedHandle {
    let seed = settings
        .seed
        .unwrap_or_else(|| rand::make_rng::<rand::rngs::StdRng>().random());
    tracing::info!(
        seed,
        symbols = settings.symbols.len(),
        "simulated feed starting"
    );
    let start = now_ms();
    let mut market = Market::new(settings, seed, start);
    let universe = std::sync::Arc::new(Universe::new(&settings.symbols));
    let history = std::sync::Arc::new(History::new(
        std::sync::Arc::clone(&universe),
        history_settings,
    ));
    if history_settings.generate_past {
        let began = std::time::Instant::now();
        let ranges = past::generate(&history, settings, history_settings, seed, start);
        // The day's range so far includes the past the charts show.
        for (id, (low, high)) in ranges.into_iter().enumerate() {
            market.widen_range(id, low, high);
        }
        tracing::info!(
            symbols = settings.symbols.len(),
            elapsed_ms = began.elapsed().as_millis() as u64,
            "generated a past for the charts"
        );
    }
    let epoch = rand::make_rng::<rand::rngs::StdRng>().random();
    let first = Snapshot::new(0, epoch, &market.quotes());
    let (outlets, commands, handle) = Outlets::new(first, FeedStatus::Live, universe, history);
    let actor = Feed {
        market,
        commands,
        outlets,
        tick_number: 0,
        epoch,
    };
    tokio::spawn(actor.run(settings.tick_interval_ms.get(), shutdown));
    handle
}

struct Feed {
    market: Market,
    commands: mpsc::Receiver<Command>,
    outlets: Outlets,
    tick_number: u64,
    epoch: u64,
}

impl Feed {
    async fn run(mut self, tick_interval: Duration, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(tick_interval);
        // A late tick is skipped, not burst: the market keeps its cadence.
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        interval.tick().await; // the first tick completes at once; the market starts at open
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = interval.tick() => self.tick(),
                Some(command) = self.commands.recv() => self.outlets.handle(command),
            }
        }
        tracing::debug!(ticks = self.tick_number, "feed stopped");
    }

    fn tick(&mut self) {
        self.tick_number += 1;
        let ts = now_ms();
        let moved = self.market.step(ts);
        let market = &self.market;
        let updates = Update::batch(moved.into_iter().map(|id: SymbolId| {
            let (name, seq, recorded) = market.recorded(id);
            (id, name, seq, recorded)
        }));
        self.outlets
            .publish(self.tick_number, ts, self.epoch, updates);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::quote::Quote;
    use crate::settings::Settings;

    fn history() -> HistorySettings {
        Settings::defaults().expect("defaults are valid").history
    }

    fn settings(seed: u64) -> FeedSettings {
        let mut feed = Settings::defaults().expect("defaults are valid").feed;
        feed.seed = Some(seed);
        feed
    }

    /// With a paused clock the feed ticks exactly on its interval; each tick carries the symbols
    /// that moved with seqs one above the snapshot's, and the shared frame lists them all.
    #[tokio::test(start_paused = true)]
    async fn ticks_follow_snapshot_on_interval() {
        let settings = settings(11);
        let shutdown = CancellationToken::new();
        let feed = spawn(&settings, &history(), shutdown.clone());
        let mut watcher = feed.watch().await.expect("feed is running");
        let mut seqs: Vec<u64> = watcher.snapshot.quotes.iter().map(|u| u.seq).collect();
        let start = tokio::time::Instant::now();
        for n in 1..=30u64 {
            let tick = watcher.ticks.recv().await.expect("no lag in this test");
            assert_eq!(tick.number, watcher.snapshot.tick + n);
            assert_eq!(start.elapsed(), settings.tick_interval_ms.get() * n as u32);
            assert!(!tick.updates.is_empty());
            for u in &tick.updates {
                assert_eq!(u.seq, seqs[u.symbol] + 1, "seq rises by one per update");
                seqs[u.symbol] = u.seq;
                let quote: Quote = serde_json::from_str(&u.json).unwrap();
                assert_eq!(quote.seq, u.seq);
            }
            let frame: serde_json::Value = serde_json::from_str(tick.frame()).unwrap();
            assert_eq!(
                frame["quotes"].as_array().unwrap().len(),
                tick.updates.len()
            );
        }
        let latest = feed.latest();
        assert_eq!(latest.tick, 30 + watcher.snapshot.tick);
        assert_eq!(
            latest.quotes.iter().map(|u| u.seq).collect::<Vec<_>>(),
            seqs
        );
        shutdown.cancel();
    }

    /// Two feeds with the same seed publish the same prices.
    #[tokio::test(start_paused = true)]
    async fn seeded_feeds_agree() {
        let shutdown = CancellationToken::new();
        let mut prices = Vec::new();
        for _ in 0..2 {
            let feed = spawn(&settings(5), &history(), shutdown.clone());
            let mut watcher = feed.watch().await.unwrap();
            let mut seen = Vec::new();
            for _ in 0..10 {
                let tick = watcher.ticks.recv().await.unwrap();
                for u in &tick.updates {
                    let q: Quote = serde_json::from_str(&u.json).unwrap();
                    seen.push((q.symbol, q.price, q.seq));
                }
            }
            prices.push(seen);
        }
        assert_eq!(prices[0], prices[1]);
        shutdown.cancel();
    }
}
