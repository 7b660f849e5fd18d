//! The edge feed (`feed.source = "nats"`): a feed actor with no market of its own. It fills its
//! state from the publisher's snapshot, then from the quote stream on NATS, and hands both to
//! sessions through the same `FeedHandle` as the simulated feed, so sessions cannot tell.
//!
//! Every quote passes the [`Sequencer`], so duplicates, reordering and publisher restarts never
//! move a client's `seq` back. The broker link drives the feed status: stale from a disconnect
//! until a fresh snapshot has been applied after the reconnect.

use std::sync::Arc;
use std::time::Duration;

use async_nats::ServerAddr;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::cluster::backfill;
use crate::cluster::nats::{
    HistoryReply, Link, NatsError, QuoteMessage, SnapshotReply, SnapshotRequest, Subjects,
    connect_options, parse_urls,
};
use crate::cluster::sequencer::{Sequenced, Sequencer};
use crate::feed::history::History;
use crate::feed::market::opening_quotes;
use crate::feed::outlets::Outlets;
use crate::feed::symbols::Universe;
use crate::feed::{Command, FeedHandle, FeedStatus, Snapshot, Update};
use crate::protocol::quote::Quote;
use crate::settings::{FeedSettings, HistorySettings, Settings};

/// Most broker messages folded into one batch before sessions are woken.
const MAX_BATCH: usize = 4096;
/// Backfill replies waiting for the actor (one symbol's bars each).
const BACKFILL_BUFFER: usize = 4;
/// How often a wanted snapshot is asked for again when no request is in flight.
const SNAPSHOT_RETRY: Duration = Duration::from_millis(250);

/// Spawns an edge feed on the current runtime; it connects to NATS in the background and stops
/// when `shutdown` is cancelled. Fails only for unusable settings.
pub fn spawn(settings: &Settings, shutdown: CancellationToken) -> Result<FeedHandle, NatsError> {
    let urls = parse_urls(&settings.nats.url)?;
    let name = format!("ticker-edge-{}", settings.server.node());
    let (options, links) = connect_options(&settings.nats, &name)?;
    let (edge, handle) = Edge::new(&settings.feed, &settings.history);
    let link = LinkParts {
        options,
        urls,
        links,
        subjects: Subjects::new(&settings.nats.subject_prefix),
        request_timeout: settings.nats.request_timeout_ms.get(),
        stale_after: settings.nats.stale_after_ms.get(),
    };
    tokio::spawn(edge.run(link, shutdown));
    Ok(handle)
}

/// What the actor needs to reach the broker.
struct LinkParts {
    options: async_nats::ConnectOptions,
    urls: Vec<ServerAddr>,
    links: mpsc::Receiver<Link>,
    subjects: Subjects,
    request_timeout: Duration,
    stale_after: Duration,
}

struct Edge {
    commands: mpsc::Receiver<Command>,
    outlets: Outlets,
    universe: Arc<Universe>,
    sequencer: Sequencer,
    tick_number: u64,
    /// When the last quote message arrived (or the link came up).
    last_message: Instant,
    link_up: bool,
    /// A full snapshot is needed: at start, after a reconnect, and when a new publisher run appears.
    snapshot_wanted: bool,
    /// The bars are to be backfilled from the publisher: after each snapshot of its run.
    backfill_wanted: bool,
}

type SnapshotResult = Result<SnapshotReply, String>;

impl Edge {
    /// The actor, stale and waiting for its first snapshot, and its handle.
    fn new(feed: &FeedSettings, history: &HistorySettings) -> (Self, FeedHandle) {
        let universe = Arc::new(Universe::new(&feed.symbols));
        let history = Arc::new(History::new(Arc::clone(&universe), history));
        // Until the first snapshot: every symbol at its opening price with seq 0, which is
        // exactly what the publisher's market starts from.
        let placeholders = Snapshot::new(0, 0, &opening_quotes(feed, now_ms()));
        let stale = FeedStatus::Stale { since: now_ms() };
        let (outlets, commands, handle) =
            Outlets::new(placeholders, stale, Arc::clone(&universe), history);
        let edge = Edge {
            commands,
            outlets,
            universe: Arc::clone(&universe),
            sequencer: Sequencer::new(universe.len()),
            tick_number: 0,
            last_message: Instant::now(),
            link_up: false,
            snapshot_wanted: true,
            backfill_wanted: false,
        };
        (edge, handle)
    }

    async fn run(mut self, link: LinkParts, shutdown: CancellationToken) {
        let LinkParts {
            options,
            urls,
            mut links,
            subjects,
            request_timeout,
            stale_after,
        } = link;
        let client = match options.connect(urls).await {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %e, "cannot set up the NATS client");
                return self.serve_stale(shutdown).await;
            }
        };
        let mut quotes = match client.subscribe(subjects.all_quotes()).await {
            Ok(subscriber) => subscriber,
            Err(e) => {
                tracing::error!(error = %e, "cannot subscribe to quotes");
                return self.serve_stale(shutdown).await;
            }
        };
        tracing::info!(subject = %subjects.all_quotes(), "edge feed subscribed");
        let (replies_tx, mut replies) = mpsc::channel::<SnapshotResult>(1);
        let mut in_flight = false;
        let mut retry = tokio::time::interval(SNAPSHOT_RETRY);
        let (backfill_tx, mut backfills) = mpsc::channel::<HistoryReply>(BACKFILL_BUFFER);
        let mut backfilling: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            if self.backfill_wanted && self.link_up {
                self.backfill_wanted = false;
                if let Some(previous) = backfilling.take() {
                    previous.abort();
                }
                backfilling = Some(tokio::spawn(backfill::run(
                    client.clone(),
                    subjects.history(),
                    self.universe.names(),
                    request_timeout,
                    backfill_tx.clone(),
                )));
            }
            if self.snapshot_wanted && self.link_up && !in_flight {
                in_flight = true;
                let request =
                    request_snapshot(client.clone(), subjects.snapshot(), request_timeout);
                let replies_tx = replies_tx.clone();
                tokio::spawn(async move {
                    let _ = replies_tx.send(request.await).await;
                });
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(command) = self.commands.recv() => self.outlets.handle(command),
                Some(link) = links.recv() => self.on_link(link),
                Some(reply) = backfills.recv() => self.on_backfill(reply),
                Some(reply) = replies.recv() => {
                    in_flight = false;
                    match reply {
                        Ok(reply) => self.on_snapshot(reply),
                        Err(e) => tracing::debug!(error = %e, "snapshot request failed; retrying"),
                    }
                }
                message = quotes.next() => match message {
                    Some(first) => self.on_messages(&drain(first, &mut quotes)),
                    None => {
                        tracing::error!("the quote subscription ended");
                        return self.serve_stale(shutdown).await;
                    }
                },
                _ = retry.tick() => self.check_silence(stale_after),
            }
        }
        if let Some(backfilling) = backfilling {
            backfilling.abort();
        }
        tracing::debug!(ticks = self.tick_number, "edge feed stopped");
    }

    /// Without a usable NATS client: keep answering sessions, with the last state, as stale.
    async fn serve_stale(mut self, shutdown: CancellationToken) {
        tracing::error!("the edge feed stays stale until restarted");
        self.go_stale();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(command) = self.commands.recv() => self.outlets.handle(command),
            }
        }
    }

    /// Losing the broker is a warning, like a silent publisher; getting it back is news.
    fn on_link(&mut self, link: Link) {
        match link {
            Link::Up => tracing::info!("nats link up"),
            Link::Down => tracing::warn!("nats link down: the feed is stale until it is back"),
        }
        match link {
            Link::Up => {
                self.link_up = true;
                self.last_message = Instant::now();
                // Updates published while we were away are lost: refresh everything.
                self.snapshot_wanted = true;
            }
            Link::Down => {
                self.link_up = false;
                self.go_stale();
            }
        }
    }

    /// A broker but no quotes: the publisher is gone. Stale until a snapshot answers again.
    fn check_silence(&mut self, stale_after: Duration) {
        let live = *self.outlets.status.borrow() == FeedStatus::Live;
        if live && self.link_up && self.last_message.elapsed() > stale_after {
            tracing::warn!(
                silent_ms = stale_after.as_millis() as u64,
                "no quotes from the publisher"
            );
            self.go_stale();
            self.snapshot_wanted = true;
        }
    }

    fn go_stale(&mut self) {
        let since = now_ms();
        self.outlets.status.send_if_modified(|status| match status {
            FeedStatus::Live => {
                *status = FeedStatus::Stale { since };
                true
            }
            FeedStatus::Stale { .. } => false,
        });
    }

    fn on_snapshot(&mut self, reply: SnapshotReply) {
        let accepted: Vec<Update> = reply
            .quotes
            .into_iter()
            .filter_map(|quote| self.admit(reply.epoch, quote))
            .collect();
        tracing::info!(
            epoch = reply.epoch,
            changed = accepted.len(),
            "snapshot applied"
        );
        self.publish(accepted);
        if self.sequencer.epoch() == Some(reply.epoch) {
            self.snapshot_wanted = false;
            self.backfill_wanted = true;
            // An answer is a sign of life: the silence counts from here, or a restarted
            // publisher's first snapshot would be judged by the old run's last quote, and the
            // next silence check would turn the feed stale again at once.
            self.last_message = Instant::now();
            if self.link_up {
                self.outlets.status.send_if_modified(|status| {
                    let changed = *status != FeedStatus::Live;
                    *status = FeedStatus::Live;
                    changed
                });
            }
        }
    }

    /// Merges one symbol's bars from the publisher, if they are of the run this edge follows.
    fn on_backfill(&mut self, reply: HistoryReply) {
        let Some(id) = self.universe.lookup(&reply.symbol) else {
            return;
        };
        if let Some(through) = self
            .sequencer
            .client_seq(reply.epoch, id, reply.bars.through)
        {
            self.outlets.history().restore(id, &reply.bars, through);
        }
    }

    fn on_messages(&mut self, batch: &[async_nats::Message]) {
        self.last_message = Instant::now();
        let mut updates: Vec<Update> = Vec::new();
        for message in batch {
            let parsed: QuoteMessage = match serde_json::from_slice(&message.payload) {
                Ok(parsed) => parsed,
                Err(e) => {
                    tracing::warn!(subject = %message.subject, error = %e, "unreadable quote message");
                    continue;
                }
            };
            if self.sequencer.epoch().is_some() && self.sequencer.is_new_epoch(parsed.epoch) {
                tracing::info!(epoch = parsed.epoch, "a new publisher run");
                self.snapshot_wanted = true;
            }
            let Some(update) = self.admit(parsed.epoch, parsed.quote) else {
                continue;
            };
            // One tick per publisher tick: a symbol seen again starts the next one.
            if updates.iter().any(|u| u.symbol == update.symbol) {
                self.publish(std::mem::take(&mut updates));
            }
            updates.push(update);
        }
        self.publish(updates);
    }

    /// Passes one quote through the sequencer; an accepted one carries the client seq.
    fn admit(&mut self, epoch: u64, mut quote: Quote) -> Option<Update> {
        let Some(id) = self.universe.lookup(&quote.symbol) else {
            tracing::warn!(symbol = %quote.symbol, "quote for a symbol this edge does not list");
            return None;
        };
        let Sequenced::Accept(seq) = self.sequencer.accept(epoch, id, quote.seq) else {
            return None;
        };
        quote.seq = seq;
        Some(Update::new(id, &quote))
    }

    /// Applies updates to the latest snapshot and sends them to sessions as one tick.
    fn publish(&mut self, updates: Vec<Update>) {
        if updates.is_empty() {
            return;
        }
        self.tick_number += 1;
        let epoch = self.sequencer.epoch().unwrap_or(0);
        let ts = updates.iter().map(|u| u.ts).max().unwrap_or_else(now_ms);
        self.outlets.publish(self.tick_number, ts, epoch, updates);
    }
}

/// `first` and every message already waiting behind it, so one wake of the sessions covers a
/// whole burst (a publisher tick arrives as one message per symbol).
fn drain(
    first: async_nats::Message,
    quotes: &mut async_nats::Subscriber,
) -> Vec<async_nats::Message> {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match quotes.next().now_or_never() {
            Some(Some(message)) => batch.push(message),
            _ => break,
        }
    }
    batch
}

/// The publisher's snapshot, page by page when the universe does not fit in one message (each
/// page is as fresh as when it was asked for; every quote is admitted by its own seq).
async fn request_snapshot(
    client: async_nats::Client,
    subject: String,
    timeout: Duration,
) -> SnapshotResult {
    let mut epoch = None;
    let mut quotes = Vec::new();
    loop {
        let from = quotes.len();
        let payload = serde_json::to_vec(&SnapshotRequest { from })
            .expect("a request is plain data and always serializes");
        let request = client.request(subject.clone(), payload.into());
        let reply = tokio::time::timeout(timeout, request)
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        let page: SnapshotReply = serde_json::from_slice(&reply.payload)
            .map_err(|e| format!("unreadable snapshot: {e}"))?;
        if page.from != from {
            return Err(format!(
                "snapshot page from {} when {from} was asked",
                page.from
            ));
        }
        if *epoch.get_or_insert(page.epoch) != page.epoch {
            return Err("the publisher restarted during the snapshot".to_owned());
        }
        let empty = page.quotes.is_empty();
        quotes.extend(page.quotes);
        match page.total {
            Some(total) if quotes.len() < total && !empty => continue,
            Some(total) if quotes.len() < total => {
                return Err(format!("snapshot page from {from} is empty, of {total}"));
            }
            _ => {
                return Ok(SnapshotReply {
                    epoch: page.epoch,
                    quotes,
                    from: 0,
                    total: None,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::nats::quote_message;
    use crate::feed::Tick;
    use crate::feed::symbols::SymbolId;

    fn edge() -> (Edge, FeedHandle) {
        let defaults = Settings::defaults().expect("defaults are valid");
        Edge::new(&defaults.feed, &defaults.history)
    }

    fn quote(symbol: &str, seq: u64) -> Quote {
        Quote {
            symbol: symbol.into(),
            price: 100.0 + seq as f64,
            bid: 99.0,
            ask: 101.0,
            open: 100.0,
            high: 110.0,
            low: 90.0,
            change: 0.0,
            change_pct: 0.0,
            volume: 100 * seq,
            seq,
            ts: 1_700_000_000_000 + seq,
        }
    }

    fn message(epoch: u64, symbol: &str, seq: u64) -> async_nats::Message {
        let json = serde_json::to_string(&quote(symbol, seq)).unwrap();
        let payload = quote_message(epoch, &json);
        async_nats::Message {
            subject: Subjects::new("ticker").quote(symbol).into(),
            reply: None,
            length: payload.len(),
            payload: payload.into(),
            headers: None,
            status: None,
            description: None,
        }
    }

    fn seqs(tick: &Tick) -> Vec<(SymbolId, u64)> {
        tick.updates.iter().map(|u| (u.symbol, u.seq)).collect()
    }

    /// A burst of messages becomes one tick per publisher tick: a symbol seen again starts the
    /// next one. Duplicates are dropped; the latest snapshot has the newest of each symbol.
    #[test]
    fn bursts_become_ticks() {
        let (mut edge, handle) = edge();
        let mut ticks = edge.outlets.ticks.subscribe();
        let (aapl, msft) = (0, 1);
        edge.on_messages(&[
            message(7, "AAPL", 1),
            message(7, "MSFT", 1),
            message(7, "AAPL", 1),
            message(7, "AAPL", 2),
        ]);
        assert_eq!(seqs(&ticks.try_recv().unwrap()), [(aapl, 1), (msft, 1)]);
        let second = ticks.try_recv().unwrap();
        assert_eq!(seqs(&second), [(aapl, 2)]);
        let frame: serde_json::Value = serde_json::from_str(second.frame()).unwrap();
        assert_eq!(frame["quotes"][0]["seq"], 2);
        assert!(ticks.try_recv().is_err(), "the duplicate made no tick");
        assert_eq!(handle.latest().quotes[aapl].seq, 2);
        assert_eq!(handle.latest().epoch, 7);
    }

    /// A new publisher run continues above the last seq, rewrites the quote's JSON to say so,
    /// and asks for a fresh snapshot.
    #[test]
    fn a_new_run_continues_seq_and_wants_a_snapshot() {
        let (mut edge, handle) = edge();
        edge.on_snapshot(SnapshotReply {
            epoch: 7,
            quotes: vec![quote("AAPL", 5)],
            ..Default::default()
        });
        assert!(!edge.snapshot_wanted);
        edge.on_messages(&[message(9, "AAPL", 1)]);
        assert!(edge.snapshot_wanted);
        let latest = handle.latest();
        assert_eq!(latest.quotes[0].seq, 7, "5 + 1 + 1");
        let shown: Quote = serde_json::from_str(&latest.quotes[0].json).unwrap();
        assert_eq!((shown.seq, shown.price), (7, 101.0));
    }

    /// Stale from the start until a snapshot with the link up; stale again on a disconnect,
    /// with the time it happened; live again after the next snapshot.
    #[test]
    fn status_follows_the_link_and_snapshots() {
        let (mut edge, handle) = edge();
        let reply = || SnapshotReply {
            epoch: 7,
            quotes: vec![quote("AAPL", 1)],
            ..Default::default()
        };
        assert!(matches!(handle.status(), FeedStatus::Stale { .. }));
        edge.on_link(Link::Up);
        assert!(edge.snapshot_wanted);
        edge.on_snapshot(reply());
        assert_eq!(handle.status(), FeedStatus::Live);
        let before = now_ms();
        edge.on_link(Link::Down);
        let FeedStatus::Stale { since } = handle.status() else {
            panic!("stale after a disconnect");
        };
        assert!(since >= before);
        edge.on_link(Link::Up);
        assert!(edge.snapshot_wanted);
        assert!(matches!(handle.status(), FeedStatus::Stale { .. }));
        edge.on_snapshot(reply());
        assert_eq!(handle.status(), FeedStatus::Live);
    }

    /// Connected but silent for longer than `stale_after`: stale, and a snapshot is wanted.
    #[tokio::test(start_paused = true)]
    async fn silence_turns_stale() {
        let (mut edge, handle) = edge();
        edge.on_link(Link::Up);
        edge.on_snapshot(SnapshotReply {
            epoch: 7,
            quotes: vec![quote("AAPL", 1)],
            ..Default::default()
        });
        let stale_after = Duration::from_secs(3);
        tokio::time::advance(Duration::from_secs(2)).await;
        edge.on_messages(&[message(7, "AAPL", 2)]);
        tokio::time::advance(Duration::from_secs(2)).await;
        edge.check_silence(stale_after);
        assert_eq!(handle.status(), FeedStatus::Live, "a message 2 s ago");
        tokio::time::advance(Duration::from_secs(2)).await;
        edge.check_silence(stale_after);
        assert!(matches!(handle.status(), FeedStatus::Stale { .. }));
        assert!(edge.snapshot_wanted);
    }

    /// A publisher restart is one stale → live transition: the new run's snapshot counts as a
    /// sign of life, so the silence check right after it does not turn the feed stale again.
    #[tokio::test(start_paused = true)]
    async fn a_restarted_publisher_is_live_once() {
        let (mut edge, handle) = edge();
        let mut status = edge.outlets.status.subscribe();
        edge.on_link(Link::Up);
        edge.on_snapshot(SnapshotReply {
            epoch: 7,
            quotes: vec![quote("AAPL", 1)],
            ..Default::default()
        });
        let stale_after = Duration::from_secs(3);
        // The publisher dies: silence, stale.
        tokio::time::advance(Duration::from_secs(4)).await;
        edge.check_silence(stale_after);
        assert!(matches!(handle.status(), FeedStatus::Stale { .. }));
        status.mark_unchanged();
        // A new run answers the snapshot request before it publishes its first quote.
        tokio::time::advance(Duration::from_secs(2)).await;
        edge.on_snapshot(SnapshotReply {
            epoch: 9,
            quotes: vec![quote("AAPL", 1)],
            ..Default::default()
        });
        assert_eq!(handle.status(), FeedStatus::Live);
        assert!(status.has_changed().unwrap());
        status.mark_unchanged();
        for _ in 0..8 {
            tokio::time::advance(SNAPSHOT_RETRY).await;
            edge.check_silence(stale_after);
        }
        assert_eq!(handle.status(), FeedStatus::Live, "no second stale");
        assert!(!status.has_changed().unwrap(), "exactly one transition");
    }
}
