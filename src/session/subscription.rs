//! What one connection subscribed to, what it has been sent, and what is waiting: the pure part
//! of delivery, including conflation for a client that cannot keep up.
//!
//! When the connection has room, a tick becomes one frame (the tick's shared frame when the
//! client wants all of it). When it has none, the tick's symbols are only marked pending; once
//! the connection drains, one frame carries the latest state of every pending symbol. A slow
//! client thus costs at most one flag per subscribed symbol, sees fewer updates (a `seq` gap tells
//! it so), and never stale prices.
//!
//! State costs what the client watches, not what the server lists: one entry per subscribed
//! symbol (its last seq and whether it is pending), sorted by id, and a by-id index only when
//! the subscription covers a large part of the universe. Per tick, a session watching fewer
//! symbols than moved looks its own symbols up in the tick's shared index; one watching more
//! (or all) walks the tick.

use std::sync::Arc;

use bytestring::ByteString;

use crate::feed::symbols::SymbolId;
use crate::feed::{Snapshot, Tick};
use crate::protocol::{QuotesKind, quotes_frame};
use crate::session::prefetch::prefetch;

/// A subscription over more than 1/`DENSE_SHARE` of the universe keeps a by-id index (4 bytes a
/// symbol of the universe) for lookups in O(1); a smaller one binary-searches its entries.
const DENSE_SHARE: usize = 8;
/// No entry for this symbol in the by-id index.
const ABSENT: u32 = u32::MAX;

/// One subscribed symbol.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The highest seq sent, so a symbol's seq never goes backwards on a connection.
    last_seq: u64,
    id: u32,
    /// An update is waiting for the connection to drain.
    pending: bool,
}

#[derive(Debug)]
pub struct Subscription {
    universe_len: usize,
    /// Sorted by id, the order quotes go out in.
    entries: Vec<Entry>,
    /// Position in `entries` by id; only for large subscriptions (see `DENSE_SHARE`).
    index: Option<Vec<u32>>,
    /// How many entries are pending.
    pending: usize,
    /// The updates of the current tick this client needs, as (entry, position in the tick);
    /// kept between ticks so that the per-tick path does not allocate.
    wanted: Vec<(u32, u32)>,
    /// Whole ticks sent to a client of the whole universe and not yet marked in `entries`
    /// (`mark`): the common tick then touches no entry at all, where marking each costs a
    /// cache miss per few symbols on every tick of every connection.
    unmarked: Vec<Arc<Tick>>,
    /// The newest tick whose quotes `entries` (with `unmarked`) account for: every update of
    /// a later tick is newer, symbol by symbol, than what this client has (a symbol's seq
    /// rises with the feed's ticks).
    newest_tick: u64,
}

/// Whole ticks kept unmarked at most; the next one marks them.
const UNMARKED: usize = 4;

/// The JSON of the quotes of a tick a client wants, in the order they go out.
#[derive(Clone)]
pub struct Wanted<'a> {
    positions: std::slice::Iter<'a, (u32, u32)>,
    tick: &'a Tick,
}

impl<'a> Iterator for Wanted<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let &(_, p) = self.positions.next()?;
        Some(&self.tick.updates[p as usize].json)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.positions.size_hint()
    }
}

impl ExactSizeIterator for Wanted<'_> {}

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
            universe_len,
            entries: Vec::new(),
            index: None,
            pending: 0,
            wanted: Vec::new(),
            unmarked: Vec::new(),
            newest_tick: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn contains(&self, id: SymbolId) -> bool {
        self.find(id).is_some()
    }

    /// Subscribed symbols in universe order.
    pub fn symbols(&self) -> impl Iterator<Item = SymbolId> + '_ {
        self.entries.iter().map(|e| e.id as SymbolId)
    }

    /// Whether this subscription covers a large part of the universe (and so keeps a by-id
    /// index): such a client is handed every tick (`interest`).
    pub fn is_dense(&self) -> bool {
        self.index.is_some()
    }

    pub fn has_pending(&self) -> bool {
        self.pending > 0
    }

    fn find(&self, id: SymbolId) -> Option<usize> {
        match &self.index {
            Some(index) => index
                .get(id)
                .copied()
                .filter(|&at| at != ABSENT)
                .map(|at| at as usize),
            None => self
                .entries
                .binary_search_by_key(&(id as u32), |e| e.id)
                .ok(),
        }
    }

    /// Marks the whole ticks sent and not yet marked; every use of `entries`' seqs comes after.
    fn mark(&mut self) {
        if self.unmarked.is_empty() {
            return;
        }
        let index = self
            .index
            .as_deref()
            .expect("only a client of the whole universe leaves ticks unmarked");
        for tick in self.unmarked.drain(..) {
            for u in &tick.updates {
                let entry = &mut self.entries[index[u.symbol] as usize];
                debug_assert!(u.seq > entry.last_seq, "a later tick is newer");
                entry.last_seq = u.seq;
            }
        }
    }

    /// After entries were added or removed: the by-id index exists exactly when it pays.
    fn reindex(&mut self) {
        self.index = (self.entries.len() * DENSE_SHARE > self.universe_len).then(|| {
            let mut index = vec![ABSENT; self.universe_len];
            for (at, e) in self.entries.iter().enumerate() {
                index[e.id as usize] = at as u32;
            }
            index
        });
    }

    /// Subscribes to `ids` as of `snapshot` and returns the snapshot frame of those that are
    /// new, if any, leaving out those in `recovered` (sorted): their missed updates are replayed
    /// instead, up to the same snapshot.
    pub fn add(
        &mut self,
        ids: &[SymbolId],
        snapshot: &Snapshot,
        recovered: &[SymbolId],
    ) -> Option<Batch> {
        self.mark();
        self.newest_tick = self.newest_tick.max(snapshot.tick);
        let mut added: Vec<SymbolId> = ids
            .iter()
            .copied()
            .filter(|&id| self.find(id).is_none())
            .collect();
        added.sort_unstable();
        added.dedup();
        if added.is_empty() {
            return None;
        }
        self.entries.extend(added.iter().map(|&id| Entry {
            last_seq: snapshot.quotes[id].seq,
            id: id as u32,
            pending: false,
        }));
        self.entries.sort_unstable_by_key(|e| e.id);
        self.reindex();
        // The snapshot lists them in the order the client asked for them.
        let mut listed = std::collections::HashSet::new();
        let requested: Vec<SymbolId> = ids
            .iter()
            .copied()
            .filter(|id| {
                added.binary_search(id).is_ok()
                    && recovered.binary_search(id).is_err()
                    && listed.insert(*id)
            })
            .collect();
        if requested.is_empty() {
            return None;
        }
        let frame = quotes_frame(
            QuotesKind::Snapshot,
            requested.iter().map(|&id| &*snapshot.quotes[id].json),
        );
        Some(Batch {
            frame,
            quotes: requested.len(),
            skipped: 0,
        })
    }

    /// Unsubscribes from `ids`; nothing pending for them is sent afterwards.
    pub fn remove(&mut self, ids: &[SymbolId]) {
        self.mark();
        let before = self.entries.len();
        for &id in ids {
            if let Some(at) = self.find(id) {
                self.entries[at].id = ABSENT;
            }
        }
        self.entries.retain(|e| e.id != ABSENT);
        if self.entries.len() != before {
            self.pending = self.entries.iter().filter(|e| e.pending).count();
            self.reindex();
        }
    }

    /// Fills `self.wanted` with the updates of `tick` this client still needs, in the order
    /// they go out: by walking the tick, or, when this client watches fewer symbols than moved,
    /// by looking its own symbols up in the tick's shared index.
    fn collect_wanted(&mut self, tick: &Tick) {
        self.mark();
        let mut wanted = std::mem::take(&mut self.wanted);
        wanted.clear();
        if self.entries.len() < tick.updates.len() {
            for (at, e) in self.entries.iter().enumerate() {
                let mut last = e.last_seq;
                for position in tick.positions_of(e.id as SymbolId) {
                    let seq = tick.updates[position].seq;
                    if seq > last {
                        last = seq;
                        wanted.push((at as u32, position as u32));
                    }
                }
            }
        } else {
            for (position, u) in tick.updates.iter().enumerate() {
                if let Some(at) = self.find(u.symbol)
                    && u.seq > self.entries[at].last_seq
                {
                    wanted.push((at as u32, position as u32));
                }
            }
        }
        self.wanted = wanted;
    }

    /// Prefetches what `take_whole` writes outside `self` (`session::prefetch`).
    pub fn prefetch(&self) {
        prefetch(self.unmarked.as_ptr(), size_of::<Arc<Tick>>());
    }

    /// When this client wants every update of `tick` (the common case of a client watching
    /// much of the universe and keeping up), marks them sent and returns how many: the tick's
    /// shared frame is then the client's. Else changes nothing. A client of the whole universe
    /// takes a tick newer than all it has without looking at its entries (`unmarked`); any
    /// other looks up the entries of the tick's symbols.
    pub fn take_whole(&mut self, tick: &Arc<Tick>) -> Option<usize> {
        let whole_universe = self.index.is_some() && self.entries.len() == self.universe_len;
        if whole_universe && tick.number > self.newest_tick {
            if tick.moves_all {
                // It brings every symbol's newest seq: the older ones need no marking.
                self.unmarked.clear();
            } else if self.unmarked.len() == UNMARKED {
                self.mark();
            }
            self.unmarked.push(Arc::clone(tick));
            self.newest_tick = tick.number;
            return Some(tick.updates.len());
        }
        self.mark();
        let index = self.index.as_deref()?;
        let Self { entries, .. } = self;
        for u in &tick.updates {
            let at = *index.get(u.symbol)?;
            if at == ABSENT || u.seq <= entries[at as usize].last_seq {
                return None;
            }
        }
        for u in &tick.updates {
            let entry = &mut entries[index[u.symbol] as usize];
            entry.last_seq = entry.last_seq.max(u.seq);
        }
        self.newest_tick = self.newest_tick.max(tick.number);
        Some(tick.updates.len())
    }

    /// The frame for `tick` when the connection has room: the shared frame when this client
    /// wants all of it, else one joined from the quotes it wants. Marks them sent. (The body
    /// builds its frames with `take_tick_with`; this is its plain form, for tests.)
    #[cfg(test)]
    pub fn take_tick(&mut self, tick: &Tick) -> Option<Batch> {
        let (frame, quotes) = self.take_tick_with(tick, |wanted| {
            if wanted.len() == tick.updates.len() {
                tick.frame().clone()
            } else {
                quotes_frame(QuotesKind::Quotes, wanted)
            }
        })?;
        Some(Batch {
            frame,
            quotes,
            skipped: 0,
        })
    }

    /// The quotes of `tick` this client still wants, marked sent: `build` makes the frame from
    /// their JSON, in order (the tick's shared frame when it gets them all); `None` if it wants
    /// nothing. With the quote count.
    pub fn take_tick_with<T>(
        &mut self,
        tick: &Tick,
        build: impl FnOnce(Wanted<'_>) -> T,
    ) -> Option<(T, usize)> {
        self.collect_wanted(tick);
        if self.wanted.is_empty() {
            return None;
        }
        for &(at, p) in &self.wanted {
            let entry = &mut self.entries[at as usize];
            entry.last_seq = entry.last_seq.max(tick.updates[p as usize].seq);
        }
        self.newest_tick = self.newest_tick.max(tick.number);
        let wanted = Wanted {
            positions: self.wanted.iter(),
            tick,
        };
        Some((build(wanted), self.wanted.len()))
    }

    /// The connection is full: remember which of `tick`'s symbols changed instead of queueing
    /// the tick. Returns how many quotes were deferred.
    pub fn defer_tick(&mut self, tick: &Tick) -> usize {
        self.collect_wanted(tick);
        for &(at, _) in &self.wanted {
            let entry = &mut self.entries[at as usize];
            if !std::mem::replace(&mut entry.pending, true) {
                self.pending += 1;
            }
        }
        self.wanted.len()
    }

    /// Marks every subscribed symbol pending (after missing ticks altogether).
    pub fn defer_all(&mut self) {
        self.mark();
        for entry in &mut self.entries {
            entry.pending = true;
        }
        self.pending = self.entries.len();
    }

    /// Updates of pending symbols the client has not received: what a session that ends now
    /// leaves undelivered.
    pub fn undelivered(&mut self, latest: &Snapshot) -> u64 {
        self.mark();
        self.entries
            .iter()
            .filter(|e| e.pending)
            .map(|e| latest.quotes[e.id as usize].seq.saturating_sub(e.last_seq))
            .sum()
    }

    /// Updates of every subscribed symbol the client has not received: what a client stuck
    /// behind a full connection loses, counting those still waiting in its slot.
    pub fn missed(&mut self, latest: &Snapshot) -> u64 {
        self.mark();
        self.entries
            .iter()
            .map(|e| latest.quotes[e.id as usize].seq.saturating_sub(e.last_seq))
            .sum()
    }

    /// The connection drained: one frame with the latest state of every pending symbol that
    /// changed since it was last sent. Clears the pending set.
    pub fn take_pending(&mut self, latest: &Snapshot) -> Option<Batch> {
        if self.pending == 0 {
            return None;
        }
        self.mark();
        self.newest_tick = self.newest_tick.max(latest.tick);
        self.pending = 0;
        let mut skipped = 0;
        let mut changed = Vec::new();
        for entry in self.entries.iter_mut().filter(|e| e.pending) {
            entry.pending = false;
            let quote = &latest.quotes[entry.id as usize];
            if quote.seq > entry.last_seq {
                skipped += quote.seq - entry.last_seq - 1;
                entry.last_seq = quote.seq;
                changed.push(&*quote.json);
            }
        }
        if changed.is_empty() {
            return None;
        }
        Some(Batch {
            frame: quotes_frame(QuotesKind::Quotes, changed.iter().copied()),
            quotes: changed.len(),
            skipped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Update;

    fn update(symbol: SymbolId, seq: u64) -> Update {
        Update {
            symbol,
            seq,
            ts: seq,
            json: format!(r#"{{"s":{symbol},"seq":{seq}}}"#).into(),
            recorded: Default::default(),
        }
    }

    fn tick(number: u64, updates: Vec<Update>) -> Arc<Tick> {
        Arc::new(Tick::new(number, number, updates, false))
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
        sub.add(&[0, 1], &snapshot(&[0, 0]), &[]);
        let t = tick(1, vec![update(0, 1), update(1, 1)]);
        let out = sub.take_tick(&t).unwrap();
        assert_eq!(out.quotes, 2);
        assert_eq!(
            out.frame.as_ptr(),
            t.frame().as_ptr(),
            "shared, not rebuilt"
        );
    }

    /// `take_whole` takes a tick only when every update is new to the client, and then marks
    /// them as `take_tick` would; otherwise it changes nothing and `take_tick` filters.
    #[test]
    fn take_whole_agrees_with_take_tick() {
        let mut sub = Subscription::new(3);
        let after_tick_1 = Snapshot {
            tick: 1,
            ..snapshot(&[0, 4, 0])
        };
        sub.add(&[0, 1, 2], &after_tick_1, &[]);
        // Symbol 1's update 4 is the snapshot's: not new, so not whole.
        let stale = tick(1, vec![update(0, 1), update(1, 4)]);
        assert_eq!(sub.take_whole(&stale), None);
        let out = sub.take_tick(&stale).unwrap();
        assert_eq!(
            &*out.frame,
            r#"{"type":"quotes","quotes":[{"s":0,"seq":1}]}"#
        );
        let fresh = tick(2, vec![update(0, 2), update(1, 5)]);
        assert_eq!(sub.take_whole(&fresh), Some(2));
        assert!(sub.take_tick(&fresh).is_none(), "marked sent");
        assert_eq!(sub.take_whole(&fresh), None);
        // A small subscription (no by-id index) always goes through `take_tick`.
        let mut small = Subscription::new(100);
        small.add(&[0], &snapshot(&[0; 100]), &[]);
        assert_eq!(small.take_whole(&tick(1, vec![update(0, 1)])), None);
    }

    /// A client of the whole universe takes newer ticks without marking them one by one; what
    /// it was sent still counts everywhere: a tick it had is not whole again, nothing of it is
    /// missed, conflation and a later partial tick start from the newest seqs.
    #[test]
    fn whole_universe_marks_lazily_and_exactly() {
        let mut sub = Subscription::new(3);
        sub.add(&[0, 1, 2], &snapshot(&[0, 0, 0]), &[]);
        let mut ticks = Vec::new();
        for n in 1..=(UNMARKED as u64 + 2) {
            // Symbol 2 moves on even ticks only.
            let mut updates = vec![update(0, n), update(1, n)];
            if n % 2 == 0 {
                updates.push(update(2, n / 2));
            }
            let t = tick(n, updates);
            assert_eq!(sub.take_whole(&t), Some(t.updates.len()));
            ticks.push(t);
        }
        let n = ticks.len() as u64;
        assert_eq!(
            sub.take_whole(&ticks[ticks.len() - 1]),
            None,
            "already sent"
        );
        assert_eq!(sub.missed(&snapshot(&[n, n, n / 2])), 0);
        assert_eq!(sub.missed(&snapshot(&[n + 1, n, n / 2])), 1);
        // A tick moving every symbol supersedes what waits to be marked.
        let all = Arc::new(Tick::new(
            n + 1,
            n + 1,
            vec![update(0, n + 1), update(1, n + 1), update(2, n / 2 + 1)],
            true,
        ));
        assert_eq!(sub.take_whole(&all), Some(3));
        assert_eq!(sub.missed(&snapshot(&[n + 1, n + 1, n / 2 + 1])), 0);
        // An older tick delivered late is filtered by seq, symbol by symbol.
        let late = tick(n, vec![update(0, n), update(2, n / 2 + 2)]);
        let out = sub.take_tick(&late).unwrap();
        assert_eq!(out.quotes, 1);
        assert!(out.frame.contains(&format!(r#""seq":{}"#, n / 2 + 2)));
        // Conflation after lazy marks: only what changed since is sent.
        let mut more = tick(n + 2, vec![update(1, n + 2)]);
        sub.defer_tick(&more);
        let latest = Snapshot {
            tick: n + 3,
            ..snapshot(&[n + 1, n + 3, n / 2 + 2])
        };
        let batch = sub.take_pending(&latest).unwrap();
        assert_eq!((batch.quotes, batch.skipped), (1, 1));
        more = tick(n + 3, vec![update(1, n + 3)]);
        assert_eq!(sub.take_whole(&more), None, "conflation sent it");
    }

    /// A partial subscription gets only its symbols; quotes already covered are skipped.
    #[test]
    fn partial_tick_is_filtered_and_never_repeats() {
        let mut sub = Subscription::new(3);
        let snap = sub.add(&[1], &snapshot(&[0, 5, 0]), &[]).unwrap();
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
        sub.add(&[0, 1, 2], &snapshot(&[0, 0, 0]), &[]);
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
        sub.add(&[0, 1], &snapshot(&[0, 0]), &[]);
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

    /// A client watching a few symbols of a large universe gets exactly its symbols' updates,
    /// several of one symbol in one tick included, in order, and holds no state per symbol of
    /// the universe.
    #[test]
    fn few_symbols_of_a_large_universe() {
        let universe = 10_000;
        let mut sub = Subscription::new(universe);
        sub.add(&[9_000, 7, 7], &snapshot(&vec![0; universe]), &[]);
        assert_eq!(sub.len(), 2);
        assert!(sub.index.is_none(), "no by-id index for two symbols");
        let mut updates: Vec<Update> = (0..5_000).map(|id| update(id * 2, 1)).collect();
        updates.push(update(7, 2)); // 7 (odd) moves at the end of the tick, to seq 2
        let out = sub.take_tick(&tick(1, updates)).unwrap();
        assert_eq!(
            &*out.frame,
            r#"{"type":"quotes","quotes":[{"s":7,"seq":2},{"s":9000,"seq":1}]}"#,
        );
        let out = sub
            .take_tick(&tick(2, vec![update(7, 3), update(7, 4), update(8, 1)]))
            .unwrap();
        assert_eq!(
            &*out.frame,
            r#"{"type":"quotes","quotes":[{"s":7,"seq":3},{"s":7,"seq":4}]}"#
        );
        assert_eq!(sub.symbols().collect::<Vec<_>>(), vec![7, 9_000]);
    }

    /// A subscription to most of the universe keeps a by-id index and drops it when it shrinks.
    #[test]
    fn large_subscriptions_index_by_id() {
        let mut sub = Subscription::new(16);
        let all: Vec<SymbolId> = (0..16).collect();
        sub.add(&all, &snapshot(&[0; 16]), &[]);
        assert!(sub.index.is_some());
        sub.remove(&all[1..]);
        assert!(sub.index.is_none());
        assert!(sub.contains(0) && !sub.contains(1));
        let out = sub
            .take_tick(&tick(1, vec![update(0, 1), update(1, 1)]))
            .unwrap();
        assert_eq!(out.quotes, 1);
    }
}
