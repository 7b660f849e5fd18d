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
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::feed::{
    Command, FeedHandle, FeedStatus, Snapshot, TICK_BUFFER, Tick, Update, Watcher, now_ms, snapshot,
};
use crate::market::Market;
use crate::nats::{
    Link, NatsError, QuoteMessage, SnapshotReply, Subjects, connect_options, parse_urls,
};
use crate::protocol::{QuotesKind, quotes_frame};
use crate::quote::Quote;
use crate::sequencer::{Sequencer, Verdict};
use crate::settings::Settings;
use crate::symbols::Universe;

const COMMAND_BUFFER: usize = 64;
/// Most broker messages folded into one batch before sessions are woken.
const MAX_BATCH: usize = 4096;
/// How often a wanted snapshot is asked for again when no request is in flight.
const SNAPSHOT_RETRY: Duration = Duration::from_millis(250);

impl FeedHandle {
    /// Spawns an edge feed on the current runtime; it connects to NATS in the background and
    /// stops when `shutdown` is cancelled. Fails only for unusable settings.
    pub fn spawn_nats(settings: &Settings, shutdown: CancellationToken) -> Result<Self, NatsError> {
        let urls = parse_urls(&settings.nats.url)?;
        let name = format!("ticker-edge-{}", settings.server.node());
        let (options, links) = connect_options(&settings.nats, &name)?;
        let universe = Arc::new(Universe::new(&settings.feed.symbols));
        // Until the first snapshot: every symbol at its opening price with seq 0, which is
        // exactly what the publisher's market starts from.
        let placeholders = snapshot(&Market::new(&settings.feed, 0, now_ms()), 0, 0);
        let (commands_tx, commands) = mpsc::channel(COMMAND_BUFFER);
        let (ticks, _) = broadcast::channel(TICK_BUFFER);
        let (latest_tx, latest) = watch::channel(Arc::new(placeholders));
        let (status_tx, status) = watch::channel(FeedStatus::Stale { since: now_ms() });
        let edge = Edge {
            commands,
            ticks,
            latest: latest_tx,
            status: status_tx,
            universe: Arc::clone(&universe),
            sequencer: Sequencer::new(universe.len()),
            tick_number: 0,
            last_message: Instant::now(),
            link_up: false,
            snapshot_wanted: true,
        };
        let link = LinkParts {
            options,
            urls,
            links,
            subjects: Subjects::new(&settings.nats.subject_prefix),
            request_timeout: settings.nats.request_timeout(),
            stale_after: settings.nats.stale_after(),
        };
        tokio::spawn(edge.run(link, shutdown));
        Ok(Self::new(commands_tx, latest, status, universe))
    }
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
    ticks: broadcast::Sender<Arc<Tick>>,
    latest: watch::Sender<Arc<Snapshot>>,
    status: watch::Sender<FeedStatus>,
    universe: Arc<Universe>,
    sequencer: Sequencer,
    tick_number: u64,
    /// When the last quote message arrived (or the link came up).
    last_message: Instant,
    link_up: bool,
    /// A full snapshot is needed: at start, after a reconnect, and when a new publisher run appears.
    snapshot_wanted: bool,
}

type SnapshotResult = Result<SnapshotReply, String>;

impl Edge {
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
        loop {
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
                Some(command) = self.commands.recv() => self.handle(command),
                Some(link) = links.recv() => self.on_link(link),
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
        tracing::debug!(ticks = self.tick_number, "edge feed stopped");
    }

    /// Without a usable NATS client: keep answering sessions, with the last state, as stale.
    async fn serve_stale(mut self, shutdown: CancellationToken) {
        tracing::error!("the edge feed stays stale until restarted");
        self.go_stale();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(command) = self.commands.recv() => self.handle(command),
            }
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Watch { respond_to } => {
                let watcher = Watcher {
                    snapshot: self.latest.borrow().clone(),
                    ticks: self.ticks.subscribe(),
                    status: self.status.subscribe(),
                };
                let _ = respond_to.send(watcher);
            }
        }
    }

    fn on_link(&mut self, link: Link) {
        tracing::info!(link = ?link, "nats link");
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
        let live = *self.status.borrow() == FeedStatus::Live;
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
        self.status.send_if_modified(|status| match status {
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
            if self.link_up {
                self.status.send_if_modified(|status| {
                    let changed = *status != FeedStatus::Live;
                    *status = FeedStatus::Live;
                    changed
                });
            }
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
        let Verdict::Accept(seq) = self.sequencer.accept(epoch, id, quote.seq) else {
            return None;
        };
        quote.seq = seq;
        Some(Update {
            symbol: id,
            seq,
            ts: quote.ts,
            json: serde_json::to_string(&quote)
                .expect("a quote is plain data and always serializes")
                .into(),
        })
    }

    /// Applies updates to the latest snapshot and sends them to sessions as one tick.
    fn publish(&mut self, updates: Vec<Update>) {
        if updates.is_empty() {
            return;
        }
        self.tick_number += 1;
        let epoch = self.sequencer.epoch().unwrap_or(0);
        let snapshot = {
            let previous = self.latest.borrow();
            let mut quotes = previous.quotes.clone();
            for u in &updates {
                quotes[u.symbol] = u.clone();
            }
            Snapshot {
                tick: self.tick_number,
                quotes,
                epoch,
            }
        };
        self.latest.send_replace(Arc::new(snapshot));
        let ts = updates.iter().map(|u| u.ts).max().unwrap_or_else(now_ms);
        let frame = quotes_frame(QuotesKind::Quotes, updates.iter().map(|u| &*u.json));
        let tick = Tick {
            number: self.tick_number,
            ts,
            updates,
            frame,
        };
        let _ = self.ticks.send(Arc::new(tick));
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

async fn request_snapshot(
    client: async_nats::Client,
    subject: String,
    timeout: Duration,
) -> SnapshotResult {
    let request = client.request(subject, Default::default());
    let reply = tokio::time::timeout(timeout, request)
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&reply.payload).map_err(|e| format!("unreadable snapshot: {e}"))
}
