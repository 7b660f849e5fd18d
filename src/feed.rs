//! The feed actor: one task owns the market, ticks it, serializes each update once and publishes
//! it to every session without ever waiting for one; `FeedHandle` is its cheap, cloneable face.
//!
//! Updates go out on a bounded broadcast ring shared by all sessions, so a slow session costs no
//! memory of its own: when it falls behind the ring it is told how far (`Lagged`) and resyncs
//! from the latest snapshot, which the actor also publishes on a `watch` after every tick.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytestring::ByteString;
use rand::RngExt;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::market::Market;
use crate::protocol::{QuotesKind, join, quotes_frame};
use crate::settings::FeedSettings;
use crate::symbols::{SymbolId, Universe};

/// Ticks the broadcast ring holds; a session further behind than this resyncs from a snapshot.
pub const TICK_BUFFER: usize = 64;
const COMMAND_BUFFER: usize = 64;

/// One symbol's latest update: its id, its seq, and its quote serialized once as JSON.
#[derive(Debug, Clone)]
pub struct Update {
    pub symbol: SymbolId,
    pub seq: u64,
    pub ts: u64,
    pub json: ByteString,
}

/// Everything that moved in one tick, plus the ready-made frame for clients that want it all.
#[derive(Debug)]
pub struct Tick {
    pub number: u64,
    pub ts: u64,
    pub updates: Vec<Update>,
    /// `{"type":"quotes","quotes":[…every update…]}`, shared by every client subscribed to all.
    pub frame: ByteString,
}

/// The latest quote of every symbol after tick `tick`.
#[derive(Debug)]
pub struct Snapshot {
    pub tick: u64,
    /// Indexed by `SymbolId`.
    pub quotes: Vec<Update>,
    /// Identifies this feed's run, so validators from another run never match.
    pub epoch: u64,
}

/// What a new watcher gets: a snapshot and the stream of ticks that follow it, exactly, and
/// whether the feed behind them is live.
pub struct Watcher {
    pub snapshot: Arc<Snapshot>,
    pub ticks: broadcast::Receiver<Arc<Tick>>,
    pub status: watch::Receiver<FeedStatus>,
}

/// Whether quotes are flowing. The simulated feed is always live; an edge is stale while it has
/// no broker connection or no snapshot yet (see `edge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedStatus {
    Live,
    /// Stale since this Unix time in milliseconds.
    Stale {
        since: u64,
    },
}

/// The feed has stopped (shutdown); no watcher can be added.
#[derive(Debug, thiserror::Error)]
#[error("the feed has stopped")]
pub struct FeedClosed;

pub(crate) enum Command {
    Watch {
        respond_to: oneshot::Sender<Watcher>,
    },
}

/// Cheap to clone; every session and HTTP handler holds one.
#[derive(Clone)]
pub struct FeedHandle {
    commands: mpsc::Sender<Command>,
    latest: watch::Receiver<Arc<Snapshot>>,
    status: watch::Receiver<FeedStatus>,
    universe: Arc<Universe>,
}

impl FeedHandle {
    /// The handle of a feed actor that answers `commands` and publishes on these watches.
    fn new(
        commands: mpsc::Sender<Command>,
        latest: watch::Receiver<Arc<Snapshot>>,
        status: watch::Receiver<FeedStatus>,
        universe: Arc<Universe>,
    ) -> Self {
        Self {
            commands,
            latest,
            status,
            universe,
        }
    }

    /// Spawns the simulated feed on the current runtime; it stops when `shutdown` is cancelled.
    pub fn spawn_simulated(settings: &FeedSettings, shutdown: CancellationToken) -> Self {
        let seed = settings
            .seed
            .unwrap_or_else(|| rand::make_rng::<rand::rngs::StdRng>().random());
        tracing::info!(
            seed,
            symbols = settings.symbols.len(),
            "simulated feed starting"
        );
        let market = Market::new(settings, seed, now_ms());
        let universe = Arc::new(Universe::new(&settings.symbols));
        let epoch = rand::make_rng::<rand::rngs::StdRng>().random();
        let first = snapshot(&market, 0, epoch);
        let (outlets, commands, handle) = Outlets::new(first, FeedStatus::Live, universe);
        let actor = Feed {
            market,
            commands,
            outlets,
            tick_number: 0,
            epoch,
        };
        tokio::spawn(actor.run(settings.tick_interval(), shutdown));
        handle
    }

    /// Registers a watcher: the latest snapshot and a receiver positioned right after it.
    pub async fn watch(&self) -> Result<Watcher, FeedClosed> {
        let (respond_to, response) = oneshot::channel();
        self.commands
            .send(Command::Watch { respond_to })
            .await
            .map_err(|_| FeedClosed)?;
        response.await.map_err(|_| FeedClosed)
    }

    /// The latest snapshot; never blocks the feed.
    pub fn latest(&self) -> Arc<Snapshot> {
        self.latest.borrow().clone()
    }

    /// Whether quotes are flowing right now.
    pub fn status(&self) -> FeedStatus {
        *self.status.borrow()
    }

    pub fn universe(&self) -> &Arc<Universe> {
        &self.universe
    }
}

/// What a feed actor publishes through, whatever its source: the ring of ticks, the latest
/// snapshot and the feed's status. The simulated feed and the cluster edge each own one.
pub(crate) struct Outlets {
    pub(crate) ticks: broadcast::Sender<Arc<Tick>>,
    pub(crate) latest: watch::Sender<Arc<Snapshot>>,
    /// Held while the actor runs, so watchers' status receivers stay open.
    pub(crate) status: watch::Sender<FeedStatus>,
}

impl Outlets {
    /// The outlets, the command receiver for the actor, and the handle for everyone else.
    pub(crate) fn new(
        first: Snapshot,
        status: FeedStatus,
        universe: Arc<Universe>,
    ) -> (Self, mpsc::Receiver<Command>, FeedHandle) {
        let (commands_tx, commands) = mpsc::channel(COMMAND_BUFFER);
        let (ticks, _) = broadcast::channel(TICK_BUFFER);
        let (latest_tx, latest) = watch::channel(Arc::new(first));
        let (status_tx, status) = watch::channel(status);
        let outlets = Self {
            ticks,
            latest: latest_tx,
            status: status_tx,
        };
        let handle = FeedHandle::new(commands_tx, latest, status, universe);
        (outlets, commands, handle)
    }

    pub(crate) fn handle(&self, command: Command) {
        match command {
            Command::Watch { respond_to } => {
                // Subscribing here, between ticks, makes the receiver start right after the snapshot.
                let watcher = Watcher {
                    snapshot: self.latest.borrow().clone(),
                    ticks: self.ticks.subscribe(),
                    status: self.status.subscribe(),
                };
                let _ = respond_to.send(watcher);
            }
        }
    }

    /// Applies `updates` to the latest snapshot, then sends them to every session as tick
    /// `number`. Never waits: no receivers is fine, and a session behind the ring resyncs.
    pub(crate) fn publish(&self, number: u64, ts: u64, epoch: u64, updates: Vec<Update>) {
        let frame = quotes_frame(QuotesKind::Quotes, updates.iter().map(|u| &*u.json));
        let snapshot = {
            let previous = self.latest.borrow();
            let mut quotes = previous.quotes.clone();
            for u in &updates {
                quotes[u.symbol] = u.clone();
            }
            Snapshot {
                tick: number,
                quotes,
                epoch,
            }
        };
        self.latest.send_replace(Arc::new(snapshot));
        let tick = Tick {
            number,
            ts,
            updates,
            frame,
        };
        let _ = self.ticks.send(Arc::new(tick));
    }
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
        let updates: Vec<Update> = moved
            .into_iter()
            .map(|id| update(&self.market, id))
            .collect();
        self.outlets
            .publish(self.tick_number, ts, self.epoch, updates);
    }
}

fn update(market: &Market, id: SymbolId) -> Update {
    let quote = market.quote(id);
    Update {
        symbol: id,
        seq: quote.seq,
        ts: quote.ts,
        json: serde_json::to_string(&quote)
            .expect("a quote is plain data and always serializes")
            .into(),
    }
}

pub(crate) fn snapshot(market: &Market, tick: u64, epoch: u64) -> Snapshot {
    Snapshot {
        tick,
        quotes: (0..market.len()).map(|id| update(market, id)).collect(),
        epoch,
    }
}

impl Snapshot {
    /// The `GET /api/quotes` body for the given symbols: `{"ts":…,"quotes":[…]}`, where `ts` is
    /// the newest tick among them, so the body changes exactly when one of them does.
    pub fn poll_body(&self, ids: &[SymbolId]) -> String {
        let ts = ids.iter().map(|&id| self.quotes[id].ts).max().unwrap_or(0);
        join(
            &format!(r#"{{"ts":{ts},"quotes":["#),
            ids.iter().map(|&id| &*self.quotes[id].json),
            "]}",
        )
    }

    /// The opaque part of a strong validator for the given symbols: it changes whenever one of their seqs does.
    pub fn etag(&self, ids: &[SymbolId]) -> String {
        let seq_sum: u64 = ids.iter().map(|&id| self.quotes[id].seq).sum();
        format!("{:x}-{}-{:x}", self.epoch, ids.len(), seq_sum)
    }
}

/// Wall-clock time in Unix epoch milliseconds, the `ts` of quotes.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quote::Quote;
    use crate::settings::Settings;

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
        let feed = FeedHandle::spawn_simulated(&settings, shutdown.clone());
        let mut watcher = feed.watch().await.expect("feed is running");
        let mut seqs: Vec<u64> = watcher.snapshot.quotes.iter().map(|u| u.seq).collect();
        let start = tokio::time::Instant::now();
        for n in 1..=30u64 {
            let tick = watcher.ticks.recv().await.expect("no lag in this test");
            assert_eq!(tick.number, watcher.snapshot.tick + n);
            assert_eq!(start.elapsed(), settings.tick_interval() * n as u32);
            assert!(!tick.updates.is_empty());
            for u in &tick.updates {
                assert_eq!(u.seq, seqs[u.symbol] + 1, "seq rises by one per update");
                seqs[u.symbol] = u.seq;
                let quote: Quote = serde_json::from_str(&u.json).unwrap();
                assert_eq!(quote.seq, u.seq);
            }
            let frame: serde_json::Value = serde_json::from_str(&tick.frame).unwrap();
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
            let feed = FeedHandle::spawn_simulated(&settings(5), shutdown.clone());
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

    /// The poll body and ETag cover exactly the requested symbols and change when they move.
    #[tokio::test(start_paused = true)]
    async fn poll_body_and_etag_track_requested_symbols() {
        let shutdown = CancellationToken::new();
        let feed = FeedHandle::spawn_simulated(&settings(9), shutdown.clone());
        let mut watcher = feed.watch().await.unwrap();
        let before = feed.latest();
        let body: serde_json::Value = serde_json::from_str(&before.poll_body(&[0, 2])).unwrap();
        assert_eq!(body["quotes"].as_array().unwrap().len(), 2);
        assert_eq!(body["quotes"][1]["symbol"], feed.universe().name(2));
        let tick = watcher.ticks.recv().await.unwrap();
        let moved = tick.updates[0].symbol;
        let after = feed.latest();
        assert_ne!(before.etag(&[moved]), after.etag(&[moved]));
        assert_eq!(after.etag(&[moved]), after.etag(&[moved]));
        shutdown.cancel();
        assert!(
            feed.watch().await.is_err(),
            "a stopped feed takes no watchers"
        );
    }
}
