//! What one connection subscribed to, what it has been sent, and what is waiting: the pure part
//! of delivery, including conflation for a client that cannot keep up.
//!
//! When the connection has room, a tick becomes one frame (the tick's shared frame when the
//! client wants all of it). When it has none, the tick's symbols are only marked pending; once
//! the connection drains, one frame carries the latest state of every pending symbol. A slow
//! client thus costs at most one flag per subscribed symbol, sees fewer updates (a `seq` gap tells
//! it so), and never stale prices.

use bytestring::ByteString;

use crate::feed::symbols::{SymbolId, SymbolSet};
use crate::feed::{Snapshot, Tick, Update};
use crate::protocol::{QuotesKind, quotes_frame};

#[derive(Debug)]
pub struct Subscription {
    subscribed: SymbolSet,
    /// The highest seq sent per symbol, so a symbol's seq never goes backwards on a connection.
    last_seq: Vec<u64>,
    /// Subscribed symbols with updates not yet sent, waiting for the connection to drain.
    pending: SymbolSet,
}

/// A frame ready to send and how many quotes it carries.
#[derive(Debug)]
pub struct Batch {
    pub frame: ByteString,
    pub quotes: usize,
    /// Updates of these symbols the client will never receive: newer states replaced them.
    pub skipped: u64,
}

impl Subscription {
    pub fn new(universe_len: usize) -> Self {
        Self {
            subscribed: SymbolSet::empty(universe_len),
            last_seq: vec![0; universe_len],
            pending: SymbolSet::empty(universe_len),
        }
    }

    pub fn len(&self) -> usize {
        self.subscribed.len()
    }

    pub fn contains(&self, id: SymbolId) -> bool {
        self.subscribed.contains(id)
    }

    /// Subscribed symbols in universe order.
    pub fn symbols(&self) -> impl Iterator<Item = SymbolId> + '_ {
        self.subscribed.iter()
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Subscribes to `ids` and returns the snapshot frame of those that are new, if any.
    pub fn add(&mut self, ids: &[SymbolId], snapshot: &Snapshot) -> Option<Batch> {
        let added: Vec<SymbolId> = ids
            .iter()
            .copied()
            .filter(|&id| self.subscribed.insert(id))
            .collect();
        if added.is_empty() {
            return None;
        }
        for &id in &added {
            self.last_seq[id] = self.last_seq[id].max(snapshot.quotes[id].seq);
            self.pending.remove(id);
        }
        let frame = quotes_frame(
            QuotesKind::Snapshot,
            added.iter().map(|&id| &*snapshot.quotes[id].json),
        );
        Some(Batch {
            frame,
            quotes: added.len(),
            skipped: 0,
        })
    }

    /// Unsubscribes from `ids`; nothing pending for them is sent afterwards.
    pub fn remove(&mut self, ids: &[SymbolId]) {
        for &id in ids {
            self.subscribed.remove(id);
            self.pending.remove(id);
        }
    }

    /// How many quotes of `tick` this client still needs.
    pub fn wanted(&self, tick: &Tick) -> usize {
        tick.updates.iter().filter(|u| self.wants(u)).count()
    }

    fn wants(&self, u: &Update) -> bool {
        self.subscribed.contains(u.symbol) && u.seq > self.last_seq[u.symbol]
    }

    /// The frame for `tick` when the connection has room: the shared frame when this client
    /// wants all of it, else one joined from the quotes it wants. Marks them sent.
    pub fn take_tick(&mut self, tick: &Tick) -> Option<Batch> {
        let quotes = self.wanted(tick);
        let frame = if quotes == 0 {
            return None;
        } else if quotes == tick.updates.len() {
            tick.frame.clone()
        } else {
            quotes_frame(
                QuotesKind::Quotes,
                tick.updates
                    .iter()
                    .filter(|u| self.wants(u))
                    .map(|u| &*u.json),
            )
        };
        for u in &tick.updates {
            if self.subscribed.contains(u.symbol) {
                self.last_seq[u.symbol] = self.last_seq[u.symbol].max(u.seq);
            }
        }
        Some(Batch {
            frame,
            quotes,
            skipped: 0,
        })
    }

    /// The connection is full: remember which of `tick`'s symbols changed instead of queueing
    /// the tick. Returns how many quotes were deferred.
    pub fn defer_tick(&mut self, tick: &Tick) -> usize {
        let mut deferred = 0;
        for u in &tick.updates {
            if self.wants(u) {
                self.pending.insert(u.symbol);
                deferred += 1;
            }
        }
        deferred
    }

    /// Marks every subscribed symbol pending (after missing ticks altogether).
    pub fn defer_all(&mut self) {
        for id in self.subscribed.iter().collect::<Vec<_>>() {
            self.pending.insert(id);
        }
    }

    /// Updates of pending symbols the client has not received: what a session that ends now
    /// leaves undelivered.
    pub fn undelivered(&self, latest: &Snapshot) -> u64 {
        self.pending
            .iter()
            .map(|id| latest.quotes[id].seq.saturating_sub(self.last_seq[id]))
            .sum()
    }

    /// Updates of every subscribed symbol the client has not received: what a client stuck
    /// behind a full connection loses, counting those still waiting in the feed's ring.
    pub fn missed(&self, latest: &Snapshot) -> u64 {
        self.subscribed
            .iter()
            .map(|id| latest.quotes[id].seq.saturating_sub(self.last_seq[id]))
            .sum()
    }

    /// The connection drained: one frame with the latest state of every pending symbol that
    /// changed since it was last sent. Clears the pending set.
    pub fn take_pending(&mut self, latest: &Snapshot) -> Option<Batch> {
        let changed: Vec<SymbolId> = self
            .pending
            .iter()
            .filter(|&id| latest.quotes[id].seq > self.last_seq[id])
            .collect();
        self.pending = SymbolSet::empty(self.last_seq.len());
        if changed.is_empty() {
            return None;
        }
        let mut skipped = 0;
        for &id in &changed {
            skipped += latest.quotes[id].seq - self.last_seq[id] - 1;
            self.last_seq[id] = latest.quotes[id].seq;
        }
        let frame = quotes_frame(
            QuotesKind::Quotes,
            changed.iter().map(|&id| &*latest.quotes[id].json),
        );
        Some(Batch {
            frame,
            quotes: changed.len(),
            skipped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(symbol: SymbolId, seq: u64) -> Update {
        Update {
            symbol,
            seq,
            ts: seq,
            json: format!(r#"{{"s":{symbol},"seq":{seq}}}"#).into(),
        }
    }

    fn tick(number: u64, updates: Vec<Update>) -> Tick {
        let frame = quotes_frame(QuotesKind::Quotes, updates.iter().map(|u| &*u.json));
        Tick {
            number,
            ts: number,
            updates,
            frame,
            wire: Default::default(),
            deflated: Default::default(),
        }
    }

    fn snapshot(seqs: &[u64]) -> Snapshot {
        Snapshot {
            tick: 0,
            quotes: seqs
                .iter()
                .enumerate()
                .map(|(id, &s)| update(id, s))
                .collect(),
            epoch: 1,
        }
    }

    /// A client wanting all of a tick gets the tick's shared frame itself, not a copy.
    #[test]
    fn whole_tick_uses_the_shared_frame() {
        let mut sub = Subscription::new(2);
        sub.add(&[0, 1], &snapshot(&[0, 0]));
        let t = tick(1, vec![update(0, 1), update(1, 1)]);
        let out = sub.take_tick(&t).unwrap();
        assert_eq!(out.quotes, 2);
        assert_eq!(out.frame.as_ptr(), t.frame.as_ptr(), "shared, not rebuilt");
    }

    /// A partial subscription gets only its symbols; quotes already covered are skipped.
    #[test]
    fn partial_tick_is_filtered_and_never_repeats() {
        let mut sub = Subscription::new(3);
        let snap = sub.add(&[1], &snapshot(&[0, 5, 0])).unwrap();
        assert_eq!(
            &*snap.frame,
            r#"{"type":"snapshot","quotes":[{"s":1,"seq":5}]}"#
        );
        // A tick older than the snapshot carries nothing new.
        assert!(
            sub.take_tick(&tick(1, vec![update(0, 1), update(1, 5)]))
                .is_none()
        );
        let out = sub
            .take_tick(&tick(2, vec![update(0, 2), update(1, 6), update(2, 1)]))
            .unwrap();
        assert_eq!(
            &*out.frame,
            r#"{"type":"quotes","quotes":[{"s":1,"seq":6}]}"#
        );
    }

    /// While full, ticks only mark symbols pending; the flush sends each once, at its latest.
    #[test]
    fn conflation_sends_latest_state_once() {
        let mut sub = Subscription::new(3);
        sub.add(&[0, 1, 2], &snapshot(&[0, 0, 0]));
        for n in 1..=50 {
            let deferred = sub.defer_tick(&tick(n, vec![update(0, n), update(2, n)]));
            assert_eq!(deferred, 2);
        }
        assert!(sub.has_pending());
        assert_eq!(sub.undelivered(&snapshot(&[50, 0, 50])), 100);
        let out = sub.take_pending(&snapshot(&[50, 0, 50])).unwrap();
        assert_eq!(out.quotes, 2);
        assert_eq!(
            out.skipped,
            2 * 49,
            "seqs 1..=49 of both symbols were never sent"
        );
        assert_eq!(
            &*out.frame,
            r#"{"type":"quotes","quotes":[{"s":0,"seq":50},{"s":2,"seq":50}]}"#
        );
        assert!(!sub.has_pending());
        assert_eq!(sub.undelivered(&snapshot(&[50, 0, 50])), 0);
        assert_eq!(
            sub.missed(&snapshot(&[53, 2, 50])),
            5,
            "counted without a defer"
        );
        // Afterwards the stream resumes where the latest state left off.
        assert!(sub.take_tick(&tick(50, vec![update(0, 50)])).is_none());
        assert_eq!(
            sub.take_tick(&tick(51, vec![update(0, 51)]))
                .unwrap()
                .quotes,
            1
        );
    }

    /// Unsubscribing drops pending work for those symbols.
    #[test]
    fn unsubscribe_clears_pending() {
        let mut sub = Subscription::new(2);
        sub.add(&[0, 1], &snapshot(&[0, 0]));
        sub.defer_tick(&tick(1, vec![update(0, 1), update(1, 1)]));
        sub.remove(&[0]);
        let out = sub.take_pending(&snapshot(&[1, 1])).unwrap();
        assert_eq!(
            &*out.frame,
            r#"{"type":"quotes","quotes":[{"s":1,"seq":1}]}"#
        );
        sub.defer_all();
        assert!(
            sub.take_pending(&snapshot(&[1, 1])).is_none(),
            "nothing changed"
        );
        assert!(!sub.has_pending());
    }
}
