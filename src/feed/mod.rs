//! The feed: what sessions and HTTP handlers watch. A feed actor (the [`simulated`] market, or a
//! cluster edge) owns its state, serializes each update once and publishes it through its
//! [`outlets`] to every session without ever waiting for one; `FeedHandle` is its cheap,
//! cloneable face, whatever the source.
//!
//! Updates go out on a bounded broadcast ring, read by one listener per worker thread that
//! hands each tick to the sessions watching its symbols (`session::interest`); a session more
//! than a ring's worth behind resyncs from the latest snapshot, which the actor also publishes
//! on a `watch` after every tick. Ticks are shared (`Arc`), so a slow session holds at most a
//! ring's worth of pointers.
//!
//! Imports `protocol` and `settings` only.

pub mod delayed;
pub mod generated;
pub mod history;
pub mod market;
pub(crate) mod outlets;
mod packed;
pub(crate) mod past;
pub(crate) mod simulated;
pub(crate) mod symbols;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use bytestring::ByteString;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::protocol::quote::Quote;
use history::{History, Recorded};
use symbols::{SymbolId, Universe};

pub use outlets::TICK_BUFFER;

/// One symbol's latest update: its id, its seq, and its quote serialized once as JSON.
#[derive(Debug, Clone)]
pub struct Update {
    pub symbol: SymbolId,
    pub seq: u64,
    pub ts: u64,
    pub json: ByteString,
    /// The same quote as the history keeps it.
    pub recorded: Recorded,
}

impl Update {
    /// The update `seq` of symbol `id` (named `name`) as the history recorded it; serializes to
    /// the same JSON the live update had.
    pub fn recorded(id: SymbolId, name: &str, seq: u64, recorded: &Recorded) -> Self {
        Self::batch([(id, name, seq, *recorded)]).remove(0)
    }

    /// The update of symbol `symbol` to `quote`, serialized here, once for every client.
    pub fn new(symbol: SymbolId, quote: &Quote) -> Self {
        Self::recorded(symbol, &quote.symbol, quote.seq, &Recorded::of(quote))
    }

    /// The updates of one tick (id, name, seq, quote), serialized here once for every client,
    /// into one buffer they share: one allocation a tick instead of several an update.
    pub fn batch<'a>(
        updates: impl IntoIterator<Item = (SymbolId, &'a str, u64, Recorded)>,
    ) -> Vec<Self> {
        /// Enough for a quote of a short name and ordinary prices, so the buffer rarely grows.
        const QUOTE_BYTES: usize = 200;
        let updates = updates.into_iter();
        // At most this many (a delayed tick may leave out updates the history no longer has).
        let count = match updates.size_hint() {
            (_, Some(most)) => most,
            (least, None) => least,
        };
        let mut json = Vec::with_capacity(count * QUOTE_BYTES);
        let mut ends = Vec::with_capacity(count);
        for (symbol, name, seq, recorded) in updates {
            recorded.write_json(&mut json, name, seq);
            ends.push((symbol, seq, recorded, json.len()));
        }
        let json = ByteString::try_from(Bytes::from(json))
            .expect("quotes are written from UTF-8 names and ASCII");
        let mut start = 0;
        ends.into_iter()
            .map(|(symbol, seq, recorded, end)| {
                let one = json.slice_ref(&json[start..end]);
                start = end;
                Self {
                    symbol,
                    seq,
                    ts: recorded.ts(),
                    json: one,
                    recorded,
                }
            })
            .collect()
    }
}

/// Everything that moved in one tick, plus the ready-made frame for clients that want it all.
#[derive(Debug)]
pub struct Tick {
    pub number: u64,
    pub ts: u64,
    pub updates: Vec<Update>,
    /// Every symbol of the universe moved (each has an update here).
    pub moves_all: bool,
    /// `{"type":"quotes","quotes":[…every update…]}`, shared by every client that wants all of
    /// it: built by the first that asks ([`Tick::frame`]), so a large universe's tick that
    /// nobody wants whole costs nothing.
    pub whole: OnceLock<ByteString>,
    /// `frame` as a whole WebSocket frame, encoded by the first session that sends it and shared
    /// by the others.
    pub wire: OnceLock<Bytes>,
    /// `frame` compressed without context (permessage-deflate, RSV1 set), likewise encoded once
    /// and shared by every client that agreed on it.
    pub deflated: OnceLock<Bytes>,
    /// Where each symbol's updates are in `updates`, built by the first session that asks and
    /// shared by the others: a session watching a few symbols finds them without scanning.
    pub by_symbol: OnceLock<TickIndex>,
}

/// The updates of a tick by symbol: `first[id]` is the position of the symbol's first update
/// (`NO_UPDATE` if it did not move), `next[i]` that of the same symbol's next one (a cluster
/// edge may fold several updates of one symbol into a tick).
#[derive(Debug)]
pub struct TickIndex {
    first: Vec<u32>,
    next: Vec<u32>,
}

const NO_UPDATE: u32 = u32::MAX;

impl Tick {
    /// A tick of these updates (`moves_all`: one for every symbol of the universe), its frames
    /// and index to be built when first wanted.
    pub fn new(number: u64, ts: u64, updates: Vec<Update>, moves_all: bool) -> Self {
        Self {
            number,
            ts,
            updates,
            moves_all,
            whole: OnceLock::new(),
            wire: OnceLock::new(),
            by_symbol: OnceLock::new(),
            deflated: OnceLock::new(),
        }
    }

    /// `{"type":"quotes","quotes":[…every update…]}`, built once.
    pub fn frame(&self) -> &ByteString {
        self.whole.get_or_init(|| {
            crate::protocol::quotes_frame(
                crate::protocol::QuotesKind::Quotes,
                self.updates.iter().map(|u| &*u.json),
            )
        })
    }

    /// Where the updates of symbol `id` are in `updates`, oldest first.
    pub fn positions_of(&self, id: SymbolId) -> impl Iterator<Item = usize> {
        let index = self.by_symbol.get_or_init(|| TickIndex::new(self));
        let mut at = index.first.get(id).copied().unwrap_or(NO_UPDATE);
        std::iter::from_fn(move || {
            let position = (at != NO_UPDATE).then_some(at as usize)?;
            at = index.next[position];
            Some(position)
        })
    }
}

impl TickIndex {
    fn new(tick: &Tick) -> Self {
        let universe = tick.updates.iter().map(|u| u.symbol + 1).max().unwrap_or(0);
        let mut first = vec![NO_UPDATE; universe];
        let mut last = vec![NO_UPDATE; universe];
        let mut next = vec![NO_UPDATE; tick.updates.len()];
        for (i, u) in tick.updates.iter().enumerate() {
            let i = i as u32;
            match last[u.symbol] {
                NO_UPDATE => first[u.symbol] = i,
                previous => next[previous as usize] = i,
            }
            last[u.symbol] = i;
        }
        Self { first, next }
    }
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
/// no broker connection or no snapshot yet (see `cluster::edge`).
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
    history: Arc<History>,
    /// This feed's identity, shared by its handles (`ring_id`).
    identity: Arc<()>,
    /// The ring itself, to read it from its next tick on (`subscribe_ticks`); weak, so the
    /// ring closes when the feed stops.
    ring: broadcast::WeakSender<Arc<Tick>>,
    /// How far behind the market this feed runs (a delayed tier); zero for the live feed.
    delay_ms: u64,
}

impl FeedHandle {
    /// The handle of a feed actor that answers `commands` and publishes on these watches.
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        latest: watch::Receiver<Arc<Snapshot>>,
        status: watch::Receiver<FeedStatus>,
        universe: Arc<Universe>,
        history: Arc<History>,
        ring: broadcast::WeakSender<Arc<Tick>>,
    ) -> Self {
        Self {
            commands,
            latest,
            status,
            universe,
            history,
            identity: Arc::new(()),
            ring,
            delay_ms: 0,
        }
    }

    /// This handle, for a feed that runs `delay_ms` behind the market.
    pub(crate) fn delayed_by(mut self, delay_ms: u64) -> Self {
        self.delay_ms = delay_ms;
        self
    }

    /// How far behind the market this feed runs: 0 for the live feed.
    pub fn delay_ms(&self) -> u64 {
        self.delay_ms
    }

    /// The newest `limit` bars of symbol `id` this feed may show, oldest first, and a revision
    /// that changes with them: on a delayed feed only bars that ended by now − delay.
    pub fn bars(
        &self,
        id: SymbolId,
        interval: crate::protocol::history::Interval,
        limit: usize,
    ) -> (Vec<crate::protocol::history::Bar>, u64) {
        if self.delay_ms == 0 {
            return self.history.bars(id, interval, limit);
        }
        let (mut bars, _) = self.history.bars(id, interval, usize::MAX);
        let cutoff = crate::clock::now_ms().saturating_sub(self.delay_ms);
        bars.retain(|b| b.t + interval.millis() <= cutoff);
        let revision = bars.last().map_or(0, |b| b.t);
        let keep = bars.len().saturating_sub(limit);
        bars.drain(..keep);
        (bars, revision)
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

    /// What the feed's status is and when it changes, as a receiver of its own.
    pub fn status_updates(&self) -> watch::Receiver<FeedStatus> {
        self.status.clone()
    }

    /// A receiver of every tick sent from now on; `None` once the feed has stopped.
    pub fn subscribe_ticks(&self) -> Option<broadcast::Receiver<Arc<Tick>>> {
        self.ring.upgrade().map(|ring| ring.subscribe())
    }

    /// Tells this feed's ring apart from other feeds' (for per-feed state on a thread).
    pub fn ring_id(&self) -> usize {
        Arc::as_ptr(&self.identity) as usize
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

    /// Every symbol's recent updates and bars, up to the latest tick published.
    pub fn history(&self) -> &Arc<History> {
        &self.history
    }
}

impl Snapshot {
    /// The snapshot after tick `tick` of run `epoch`, the quotes in `SymbolId` order.
    pub fn new<'a>(tick: u64, epoch: u64, quotes: impl IntoIterator<Item = &'a Quote>) -> Self {
        Self {
            tick,
            quotes: Update::batch(
                quotes
                    .into_iter()
                    .enumerate()
                    .map(|(id, q)| (id, q.symbol.as_str(), q.seq, Recorded::of(q))),
            ),
            epoch,
        }
    }
}
