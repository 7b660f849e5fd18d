//! A delayed tier: a feed that runs a fixed delay behind the live one (market data licensed as
//! delayed, such as 15 minutes). It publishes every update of the live feed exactly `delay`
//! after it happened, with the same seq and the same JSON, through its own outlets, so sessions
//! and the polling API serve it like any feed; its snapshot is the market as of now − delay.
//!
//! It keeps no quotes of its own: per live tick it remembers only which symbols moved to which
//! seq (16 bytes an update), and takes the updates from the live feed's history when they are
//! due. So the history must reach back the delay: `history.resume_updates` at least the delay
//! times a symbol's updates per second (6,300 for 15 minutes at the default tick, 300 KB a
//! symbol). An update that has left the ring by then is skipped, and clients see a seq gap.
//! Until the process has run for the delay, a symbol shows the oldest state it knows.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::history::History;
use super::outlets::Outlets;
use super::symbols::{SymbolId, Universe};
use super::{Command, FeedHandle, FeedStatus, Snapshot, Tick, Update, Watcher};
use crate::clock::now_ms;

/// The updates of one live tick, waiting for their time.
struct Pending {
    ts: u64,
    moved: Vec<(SymbolId, u64)>,
}

/// Starts a feed that follows `live` `delay` behind; it stops when `shutdown` is cancelled.
pub fn spawn(live: &FeedHandle, delay: Duration, shutdown: CancellationToken) -> FeedHandle {
    let delay_ms = delay.as_millis() as u64;
    let latest = live.latest();
    let history = Arc::clone(live.history());
    let universe = Arc::clone(live.universe());
    let cutoff = now_ms().saturating_sub(delay_ms);
    // The market as of the cutoff: each symbol's latest update by then, if the ring reaches
    // back that far, else the oldest state known.
    let quotes: Vec<Update> = latest
        .quotes
        .iter()
        .enumerate()
        .map(|(id, current)| match history.as_of(id, cutoff) {
            Some((seq, recorded)) if seq <= current.seq => {
                Update::recorded(id, universe.name(id), seq, &recorded)
            }
            _ => current.clone(),
        })
        .collect();
    let shown: Vec<u64> = quotes.iter().map(|u| u.seq).collect();
    let first = Snapshot {
        tick: 0,
        quotes,
        epoch: latest.epoch,
    };
    let (outlets, commands, handle) = Outlets::replaying(
        first,
        live.status(),
        Arc::clone(&universe),
        Arc::clone(&history),
    );
    let actor = Delayed {
        outlets,
        history,
        universe,
        pending: VecDeque::new(),
        delay_ms,
        epoch: latest.epoch,
        tick_number: 0,
    };
    let live = live.clone();
    tokio::spawn(async move {
        let Ok(Watcher {
            snapshot,
            ticks,
            status,
        }) = live.watch().await
        else {
            return;
        };
        let mut actor = actor;
        actor.pending = actor.between(&shown, &snapshot);
        actor.run(commands, ticks, status, shutdown).await;
    });
    tracing::info!(delay_ms, "delayed tier started");
    handle.delayed_by(delay_ms)
}

struct Delayed {
    outlets: Outlets,
    history: Arc<History>,
    universe: Arc<Universe>,
    pending: VecDeque<Pending>,
    delay_ms: u64,
    epoch: u64,
    tick_number: u64,
}

impl Delayed {
    /// The updates after `shown` up to the live snapshot a watcher starts from, by time: the
    /// ticks after that snapshot arrive on the watcher, these come from the history.
    fn between(&self, shown: &[u64], snapshot: &Snapshot) -> VecDeque<Pending> {
        let mut waiting: BTreeMap<u64, Vec<(SymbolId, u64)>> = BTreeMap::new();
        for (id, current) in snapshot.quotes.iter().enumerate() {
            for seq in shown[id] + 1..=current.seq {
                if let Some(r) = self.history.recorded(id, seq) {
                    waiting.entry(r.ts()).or_default().push((id, seq));
                }
            }
        }
        waiting
            .into_iter()
            .map(|(ts, moved)| Pending { ts, moved })
            .collect()
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut ticks: broadcast::Receiver<Arc<Tick>>,
        mut status: watch::Receiver<FeedStatus>,
        shutdown: CancellationToken,
    ) {
        loop {
            let due = self.pending.front().map(|p| {
                let wait = (p.ts + self.delay_ms).saturating_sub(now_ms());
                Instant::now() + Duration::from_millis(wait)
            });
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(command) = commands.recv() => self.outlets.handle(command),
                () = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    self.publish_due();
                }
                tick = ticks.recv() => match tick {
                    Ok(tick) => self.pending.push_back(Pending {
                        ts: tick.ts,
                        moved: tick.updates.iter().map(|u| (u.symbol, u.seq)).collect(),
                    }),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, delay_ms = self.delay_ms, "the delayed tier fell behind the live feed; its clients see a gap");
                    }
                    Err(RecvError::Closed) => break,
                },
                changed = status.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let now = *status.borrow_and_update();
                    self.outlets.status.send_replace(now);
                }
            }
        }
        tracing::debug!(ticks = self.tick_number, "delayed tier stopped");
    }

    /// Publishes every pending tick that is due, as one delayed tick each.
    fn publish_due(&mut self) {
        let now = now_ms();
        while self
            .pending
            .front()
            .is_some_and(|p| p.ts + self.delay_ms <= now)
        {
            let Pending { ts, moved } = self.pending.pop_front().expect("a front");
            let updates = Update::batch(moved.into_iter().filter_map(|(id, seq)| {
                let recorded = self.history.recorded(id, seq)?;
                Some((id, self.universe.name(id), seq, recorded))
            }));
            if updates.is_empty() {
                continue;
            }
            self.tick_number += 1;
            self.outlets
                .publish(self.tick_number, ts, self.epoch, updates);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::simulated;
    use crate::settings::Settings;

    /// The delayed feed publishes the live feed's updates, same seqs and JSON, `delay` later.
    #[tokio::test]
    async fn replays_the_live_stream_later() {
        let defaults = Settings::defaults().unwrap();
        let mut feed = defaults.feed.clone();
        feed.tick_interval_ms = crate::settings::Millis::new(20);
        feed.seed = Some(3);
        let shutdown = CancellationToken::new();
        let live = simulated::spawn(&feed, &defaults.history, shutdown.clone());
        let mut live_watch = live.watch().await.unwrap();
        let delayed = spawn(&live, Duration::from_millis(300), shutdown.clone());
        assert_eq!(delayed.delay_ms(), 300);
        let mut delayed_watch = delayed.watch().await.unwrap();
        let mut live_seen = Vec::new();
        for _ in 0..10 {
            let tick = live_watch.ticks.recv().await.unwrap();
            for u in &tick.updates {
                live_seen.push((u.symbol, u.seq, u.json.to_string(), now_ms()));
            }
        }
        let mut delayed_seen = std::collections::HashMap::new();
        while delayed_seen.len() < live_seen.len() {
            let tick = delayed_watch.ticks.recv().await.unwrap();
            for u in &tick.updates {
                delayed_seen.insert((u.symbol, u.seq), (u.json.to_string(), now_ms(), u.ts));
            }
        }
        for (symbol, seq, json, live_at) in live_seen {
            let (delayed_json, delayed_at, ts) = &delayed_seen[&(symbol, seq)];
            assert_eq!(&json, delayed_json);
            assert!(*delayed_at >= ts + 300, "not early");
            assert!(
                *delayed_at >= live_at + 250,
                "about the delay after the live one"
            );
        }
        shutdown.cancel();
    }
}
