//! `Outlets`: what a feed actor publishes through, whatever its source: the bounded ring of
//! ticks every session reads, the latest snapshot, and the feed's status. The simulated feed and
//! the cluster edge each own one, so sessions cannot tell them apart.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch};

use super::history::History;
use super::symbols::Universe;
use super::{Command, FeedHandle, FeedStatus, Snapshot, Tick, Update, Watcher};

/// Ticks the broadcast ring holds, and a session's slot at most; a session further behind than
/// this resyncs from a snapshot.
pub const TICK_BUFFER: usize = 64;
const COMMAND_BUFFER: usize = 64;

/// What a feed actor publishes through, whatever its source: the ring of ticks, the latest
/// snapshot and the feed's status. The simulated feed and the cluster edge each own one.
pub(crate) struct Outlets {
    pub(crate) ticks: broadcast::Sender<Arc<Tick>>,
    latest: watch::Sender<Arc<Snapshot>>,
    history: Arc<History>,
    /// Whether published updates go into the history: not for a delayed view of a feed, which
    /// replays what the live feed recorded.
    records: bool,
    /// Held while the actor runs, so watchers' status receivers stay open.
    pub(crate) status: watch::Sender<FeedStatus>,
}

impl Outlets {
    /// The outlets, the command receiver for the actor, and the handle for everyone else.
    pub(crate) fn new(
        first: Snapshot,
        status: FeedStatus,
        universe: Arc<Universe>,
        history: Arc<History>,
    ) -> (Self, mpsc::Receiver<Command>, FeedHandle) {
        let (commands_tx, commands) = mpsc::channel(COMMAND_BUFFER);
        let (ticks, _) = broadcast::channel(TICK_BUFFER);
        let (latest_tx, latest) = watch::channel(Arc::new(first));
        let (status_tx, status) = watch::channel(status);
        let outlets = Self {
            ticks,
            latest: latest_tx,
            history: Arc::clone(&history),
            records: true,
            status: status_tx,
        };
        let ring = outlets.ticks.downgrade();
        let handle = FeedHandle::new(commands_tx, latest, status, universe, history, ring);
        (outlets, commands, handle)
    }

    /// Outlets that publish what another feed's `history` recorded (see `feed::delayed`).
    pub(crate) fn replaying(
        first: Snapshot,
        status: FeedStatus,
        universe: Arc<Universe>,
        history: Arc<History>,
    ) -> (Self, mpsc::Receiver<Command>, FeedHandle) {
        let (mut outlets, commands, handle) = Self::new(first, status, universe, history);
        outlets.records = false;
        (outlets, commands, handle)
    }

    /// The history this feed records into.
    pub(crate) fn history(&self) -> &History {
        &self.history
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

    /// Records `updates` in the history, applies them to the latest snapshot, then sends them
    /// to every session as tick `number`. Never waits: no receivers is fine, and a session
    /// behind the ring resyncs. In this order, the history holds every update a snapshot
    /// shows, so a resume up to a snapshot's seqs finds them all.
    pub(crate) fn publish(&self, number: u64, ts: u64, epoch: u64, updates: Vec<Update>) {
        if self.records {
            for u in &updates {
                self.history.record(u.symbol, u.seq, u.recorded);
            }
        }
        // A tick that moved every symbol once, in order (a busy universe) replaces the
        // snapshot outright instead of copying it first.
        let everything = {
            let previous = self.latest.borrow();
            updates.len() == previous.quotes.len()
                && updates.iter().enumerate().all(|(id, u)| u.symbol == id)
        };
        let snapshot = {
            let quotes = if everything {
                updates.clone()
            } else {
                let mut quotes = self.latest.borrow().quotes.clone();
                for u in &updates {
                    quotes[u.symbol] = u.clone();
                }
                quotes
            };
            Snapshot {
                tick: number,
                quotes,
                epoch,
            }
        };
        self.latest.send_replace(Arc::new(snapshot));
        let tick = Tick::new(number, ts, updates, everything);
        let _ = self.ticks.send(Arc::new(tick));
    }
}
