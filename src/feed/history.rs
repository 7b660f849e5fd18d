//! `History`: what the feed remembers of each symbol, for charts and for resume. Per symbol, a
//! ring of its recent updates (a client that reconnects gets exactly what it missed) and OHLCV
//! bars at 1 s and 1 min, folded from exactly the updates clients receive.
//!
//! Memory is the point of the layout: a 5,000-symbol universe keeps millions of updates and
//! bars, so both are stored as integers, not JSON. Prices are cents (every quote is rounded to
//! cents, and `cents → f64` gives back the very same `f64`), so a replayed update serializes to
//! the same bytes the live one had; seqs and bar times are implicit in ring positions, and the
//! rings are packed ([`packed`](super::packed)). At the defaults a symbol costs 600 × 40 B of
//! updates and 2,340 × 16 B of bars, about 61 KB (docs/benchmarks.md measures it). Each symbol has its own lock, held only to copy in or out,
//! so the feed never waits on a reader for more than that.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::feed::packed::{Bars, Recent};
use crate::feed::symbols::{SymbolId, Universe};
use crate::protocol::history::{Bar, HistoryLimits, Interval, IntervalLimits};
use crate::protocol::quote::{self, Cents, Quote, from_cents};
use crate::settings::HistorySettings;

/// One update as the ring keeps it: everything of its quote but the symbol and the seq.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    pub(super) ts: u64,
    pub(super) volume: u64,
    /// price, bid, ask, open, high, low, change (cents) and change_pct (hundredths).
    pub(super) cents: Cents,
}

impl Recorded {
    /// A quote stamped `ts` with `volume` and these prices, in cents.
    pub fn new(ts: u64, volume: u64, cents: Cents) -> Self {
        Self { ts, volume, cents }
    }

    /// Appends this update's JSON as symbol `symbol` with `seq`: the very bytes serde_json
    /// writes for [`to_quote`](Self::to_quote)'s `Quote`.
    pub fn write_json(&self, out: &mut Vec<u8>, symbol: &str, seq: u64) {
        quote::write_json(out, symbol, &self.cents, self.volume, seq, self.ts);
    }

    pub fn of(quote: &Quote) -> Self {
        let q = quote;
        Self {
            ts: q.ts,
            volume: q.volume,
            cents: [
                q.price,
                q.bid,
                q.ask,
                q.open,
                q.high,
                q.low,
                q.change,
                q.change_pct,
            ]
            .map(to_cents),
        }
    }

    fn price(&self) -> i32 {
        self.cents[0]
    }

    /// The Unix ms of the tick this update came from.
    pub fn ts(&self) -> u64 {
        self.ts
    }

    /// The quote of symbol `symbol` this was, with its `seq`.
    pub fn to_quote(&self, symbol: &str, seq: u64) -> Quote {
        Quote::from_cents(symbol, &self.cents, self.volume, seq, self.ts)
    }
}

/// A price in cents; quotes are rounded to cents, so this is exact.
pub fn to_cents(x: f64) -> i32 {
    (x * 100.0).round() as i32
}

/// One bar in a ring; its time is its position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Slot {
    pub(super) o: i32,
    pub(super) h: i32,
    pub(super) l: i32,
    pub(super) c: i32,
    /// Saturates at `u32::MAX`.
    pub(super) v: u32,
    /// Updates in the bar; 0 = no bar.
    pub(super) n: u32,
}

/// The last `capacity` bars of one interval, by bar number (`t / interval`).
#[derive(Debug)]
struct BarRing {
    interval_ms: u64,
    capacity: usize,
    /// Allocated on first use, `capacity` slots; bar `k` lives at `k % capacity`.
    slots: Bars,
    /// The newest bar number seen.
    newest: u64,
}

impl BarRing {
    fn new(interval: Interval, capacity: usize) -> Self {
        Self {
            interval_ms: interval.millis(),
            capacity,
            slots: Bars::default(),
            newest: 0,
        }
    }

    /// Where bar `k` is, cleared if `k` is a new bar; `None` if `k` is older than the ring.
    fn slot(&mut self, k: u64) -> Option<usize> {
        if self.capacity == 0 {
            return None;
        }
        if self.slots.is_empty() {
            self.slots = Bars::empty(self.capacity);
            self.newest = k;
        }
        let cap = self.capacity as u64;
        if k > self.newest {
            // Bars between the newest and `k` had no updates: clear their slots (at most all).
            for gap in (self.newest + 1).max(k.saturating_sub(cap - 1))..=k {
                self.slots.set((gap % cap) as usize, Slot::default());
            }
            self.newest = k;
        } else if k + cap <= self.newest {
            return None;
        }
        Some((k % cap) as usize)
    }

    /// Folds one update at `ts` into its bar.
    fn fold(&mut self, ts: u64, price: i32, volume: u64) {
        let Some(at) = self.slot(ts / self.interval_ms) else {
            return;
        };
        let mut slot = self.slots.get(at);
        if slot.n == 0 {
            slot = Slot {
                o: price,
                h: price,
                l: price,
                c: price,
                v: 0,
                n: 0,
            };
        }
        slot.h = slot.h.max(price);
        slot.l = slot.l.min(price);
        slot.c = price;
        slot.v = slot
            .v
            .saturating_add(u32::try_from(volume).unwrap_or(u32::MAX));
        slot.n = slot.n.saturating_add(1);
        self.slots.set(at, slot);
    }

    /// Sets bar `k` outright (a generated or backfilled past).
    fn put(&mut self, bar: &Bar) {
        let interval = self.interval_ms;
        if let Some(at) = self.slot(bar.t / interval) {
            let slot = Slot {
                o: to_cents(bar.o),
                h: to_cents(bar.h),
                l: to_cents(bar.l),
                c: to_cents(bar.c),
                v: u32::try_from(bar.v).unwrap_or(u32::MAX),
                n: u32::try_from(bar.n).unwrap_or(u32::MAX),
            };
            self.slots.set(at, slot);
        }
    }

    /// The newest `limit` bars, oldest first.
    fn bars(&self, limit: usize) -> Vec<Bar> {
        if self.slots.is_empty() {
            return Vec::new();
        }
        let cap = self.capacity as u64;
        let oldest = (self.newest + 1).saturating_sub(cap);
        let mut bars: Vec<Bar> = (oldest..=self.newest)
            .rev()
            .filter_map(|k| {
                let s = self.slots.get((k % cap) as usize);
                (s.n > 0).then(|| Bar {
                    t: k * self.interval_ms,
                    o: from_cents(s.o),
                    h: from_cents(s.h),
                    l: from_cents(s.l),
                    c: from_cents(s.c),
                    v: u64::from(s.v),
                    n: u64::from(s.n),
                })
            })
            .take(limit)
            .collect();
        bars.reverse();
        bars
    }
}

/// One symbol's history.
#[derive(Debug)]
struct SymbolHistory {
    /// Its latest updates with consecutive seqs, the newest (`last_seq`) at the back.
    recent: Recent,
    /// The seq of the newest update folded in; 0 before any.
    last_seq: u64,
    /// Its cumulative volume then, to tell what each update traded.
    last_volume: u64,
    bars: [BarRing; 2],
    /// Counts every change to the bars, for validators.
    revision: u64,
    /// Updates up to this seq are in the bars already (a backfilled past): not folded again.
    bars_through: u64,
}

impl SymbolHistory {
    /// The seq of the oldest update in the ring.
    fn first_seq(&self) -> u64 {
        self.last_seq + 1 - self.recent.len() as u64
    }
}

/// A symbol's bars as a publisher hands them to an edge.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Exported {
    #[serde(rename = "1s")]
    pub second: Vec<Bar>,
    #[serde(rename = "1m")]
    pub minute: Vec<Bar>,
    /// The seq of the last update in them.
    pub through: u64,
    /// The symbol's cumulative volume after it.
    pub volume: u64,
}

/// The history of every symbol; shared by the feed (which writes) and its readers.
#[derive(Debug)]
pub struct History {
    symbols: Vec<Mutex<SymbolHistory>>,
    universe: Arc<Universe>,
    limits: HistoryLimits,
}

/// What a resume gets for one symbol.
#[derive(Debug, PartialEq, Eq)]
pub enum Replay {
    /// The updates after the client's seq up to the asked one, oldest first, as
    /// (ts, quote JSON); empty when the client missed nothing.
    Updates(Vec<(u64, String)>),
    /// Some of them are no longer in the ring.
    Gone,
    /// The client claims a seq the feed has not reached.
    Ahead { latest: u64 },
}

impl History {
    pub fn new(universe: Arc<Universe>, settings: &HistorySettings) -> Self {
        let symbols = (0..universe.len())
            .map(|_| {
                Mutex::new(SymbolHistory {
                    recent: Recent::default(),
                    last_seq: 0,
                    last_volume: 0,
                    revision: 0,
                    bars_through: 0,
                    bars: [
                        BarRing::new(Interval::Second, settings.bars_1s),
                        BarRing::new(Interval::Minute, settings.bars_1m),
                    ],
                })
            })
            .collect();
        Self {
            symbols,
            universe,
            limits: HistoryLimits {
                intervals: IntervalLimits {
                    second: settings.bars_1s,
                    minute: settings.bars_1m,
                },
                resume_updates: settings.resume_updates,
                max_resume_quotes: settings.max_resume_quotes,
            },
        }
    }

    pub fn limits(&self) -> &HistoryLimits {
        &self.limits
    }

    fn symbol(&self, id: SymbolId) -> MutexGuard<'_, SymbolHistory> {
        // A panic while holding it leaves plain data that is still consistent enough to serve.
        self.symbols[id]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Folds an update of symbol `id` with `seq` into the ring and the bars. A seq that is not
    /// above the last one is ignored; one that skips seqs empties the ring first (those in
    /// between were never seen, so no resume may reach across them).
    pub fn record(&self, id: SymbolId, seq: u64, recorded: Recorded) {
        let capacity = self.limits.resume_updates;
        let mut h = self.symbol(id);
        if seq <= h.last_seq {
            return;
        }
        if seq != h.last_seq + 1 {
            h.recent.clear();
        }
        if capacity > 0 {
            h.recent.reserve(capacity);
            if h.recent.len() == capacity {
                h.recent.pop_front();
            }
            h.recent.push_back(recorded);
        }
        let traded = recorded.volume.saturating_sub(h.last_volume);
        h.last_seq = seq;
        h.last_volume = recorded.volume;
        if seq > h.bars_through {
            h.revision += 1;
            for ring in &mut h.bars {
                ring.fold(recorded.ts, recorded.price(), traded);
            }
        }
    }

    /// Everything a symbol's bars are made of, as one consistent copy: both intervals, the seq
    /// of the last update in them and the cumulative volume then (what a publisher answers an
    /// edge's backfill with).
    pub fn export(&self, id: SymbolId) -> Exported {
        let h = self.symbol(id);
        Exported {
            second: h.bars[Interval::Second.index()].bars(usize::MAX),
            minute: h.bars[Interval::Minute.index()].bars(usize::MAX),
            through: h.last_seq,
            volume: h.last_volume,
        }
    }

    /// Replaces a symbol's bars with `past` (another node's, whose seq `past.through` is this
    /// node's `through`), then folds in again the updates this node has after it. Updates up
    /// to `through` that arrive later are not folded twice.
    pub fn restore(&self, id: SymbolId, past: &Exported, through: u64) {
        let mut h = self.symbol(id);
        let h = &mut *h;
        for (ring, bars) in h.bars.iter_mut().zip([&past.second, &past.minute]) {
            ring.slots.clear();
            for bar in bars {
                ring.put(bar);
            }
        }
        h.bars_through = through;
        h.revision += 1;
        if h.recent.is_empty() || through >= h.last_seq {
            return;
        }
        let first = h.first_seq();
        let mut volume = past.volume;
        for (at, recorded) in h.recent.iter().enumerate() {
            let seq = first + at as u64;
            if seq > through {
                let traded = recorded.volume.saturating_sub(volume);
                for ring in &mut h.bars {
                    ring.fold(recorded.ts, recorded.price(), traded);
                }
            }
            volume = recorded.volume;
        }
    }

    /// Sets where a symbol starts (its seq and cumulative volume) without an update: the
    /// opening state, so the first update's volume is counted from it.
    pub fn start_at(&self, id: SymbolId, seq: u64, volume: u64) {
        let mut h = self.symbol(id);
        if h.last_seq == 0 && h.recent.is_empty() {
            h.last_seq = seq;
            h.last_volume = volume;
        }
    }

    /// Puts bars outright (a generated past, or one backfilled from the publisher).
    pub fn put_bars(&self, id: SymbolId, interval: Interval, bars: &[Bar]) {
        let mut h = self.symbol(id);
        h.revision += 1;
        let ring = &mut h.bars[interval.index()];
        for bar in bars {
            ring.put(bar);
        }
    }

    /// The newest `limit` bars of symbol `id`, oldest first, and the symbol's revision (which
    /// changes whenever a bar does).
    pub fn bars(&self, id: SymbolId, interval: Interval, limit: usize) -> (Vec<Bar>, u64) {
        let h = self.symbol(id);
        (h.bars[interval.index()].bars(limit), h.revision)
    }

    /// Update `seq` of symbol `id`, if the ring still holds it.
    pub fn recorded(&self, id: SymbolId, seq: u64) -> Option<Recorded> {
        let h = self.symbol(id);
        if h.recent.is_empty() || seq < h.first_seq() || seq > h.last_seq {
            return None;
        }
        Some(h.recent.get((seq - h.first_seq()) as usize))
    }

    /// The latest update of symbol `id` stamped at or before `ts`, with its seq, if the ring
    /// reaches back that far.
    pub fn as_of(&self, id: SymbolId, ts: u64) -> Option<(u64, Recorded)> {
        let h = self.symbol(id);
        let at = h.recent.count_until(ts);
        (at > 0).then(|| (h.first_seq() + at as u64 - 1, h.recent.get(at - 1)))
    }

    /// The updates of symbol `id` after seq `after` up to seq `through`, serialized as they
    /// were sent, if the ring still holds all of them.
    pub fn replay(&self, id: SymbolId, after: u64, through: u64) -> Replay {
        let h = self.symbol(id);
        if after > through.max(h.last_seq) {
            return Replay::Ahead {
                latest: through.max(h.last_seq),
            };
        }
        if after >= through {
            return Replay::Updates(Vec::new());
        }
        if through > h.last_seq || h.recent.is_empty() || after + 1 < h.first_seq() {
            return Replay::Gone;
        }
        let first = h.first_seq();
        let name = self.universe.name(id);
        let updates = (after + 1..=through)
            .map(|seq| {
                let recorded = h.recent.get((seq - first) as usize);
                let mut json = Vec::new();
                recorded.write_json(&mut json, name, seq);
                let json = String::from_utf8(json).expect("a UTF-8 name and ASCII");
                (recorded.ts, json)
            })
            .collect();
        Replay::Updates(updates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Update;
    use crate::protocol::quote::round2;
    use crate::settings::Settings;

    fn history(resume: usize) -> History {
        let settings = Settings::defaults().unwrap();
        let universe = Arc::new(Universe::new(&settings.feed.symbols));
        let mut h = settings.history.clone();
        h.resume_updates = resume;
        History::new(universe, &h)
    }

    fn quote(seq: u64, ts: u64, price: f64, volume: u64) -> Quote {
        Quote {
            symbol: "AAPL".into(),
            price: round2(price),
            bid: round2(price - 0.013),
            ask: round2(price + 0.017),
            open: 228.5,
            high: round2(price.max(228.5)),
            low: round2(price.min(228.5)),
            change: round2(price - 228.5),
            change_pct: round2((price - 228.5) / 228.5 * 100.0),
            volume,
            seq,
            ts,
        }
    }

    /// A replayed update is byte for byte the JSON the live update had.
    #[test]
    fn replay_serializes_exactly_as_live() {
        let h = history(100);
        let mut live = Vec::new();
        for seq in 1..=50u64 {
            let q = quote(
                seq,
                1_700_000_000_000 + seq * 100,
                228.5 + seq as f64 * 0.137,
                seq * 300,
            );
            live.push(Update::new(0, &q).json.to_string());
            h.record(0, seq, Recorded::of(&q));
        }
        let Replay::Updates(replayed) = h.replay(0, 20, 50) else {
            panic!("in the ring")
        };
        let replayed: Vec<String> = replayed.into_iter().map(|(_, json)| json).collect();
        assert_eq!(replayed, live[20..]);
        assert_eq!(h.replay(0, 50, 50), Replay::Updates(Vec::new()));
        assert_eq!(h.replay(0, 51, 50), Replay::Ahead { latest: 50 });
    }

    /// The ring holds the newest updates only, and a gap in seqs cuts resume across it.
    #[test]
    fn ring_is_bounded_and_contiguous() {
        let h = history(10);
        for seq in 1..=30u64 {
            h.record(0, seq, Recorded::of(&quote(seq, seq, 100.0, seq)));
        }
        assert_eq!(h.replay(0, 19, 30), Replay::Gone, "seq 20 was dropped");
        assert!(matches!(h.replay(0, 20, 30), Replay::Updates(u) if u.len() == 10));
        h.record(0, 35, Recorded::of(&quote(35, 35, 100.0, 35)));
        assert_eq!(h.replay(0, 30, 35), Replay::Gone, "31..34 were never seen");
        assert!(matches!(h.replay(0, 34, 35), Replay::Updates(u) if u.len() == 1));
        h.record(0, 33, Recorded::of(&quote(33, 36, 100.0, 36)));
        assert!(matches!(h.replay(0, 34, 35), Replay::Updates(u) if u.len() == 1));
    }

    /// Bars are the open, high, low, close, traded volume and count of the updates in them.
    #[test]
    fn bars_fold_updates() {
        let h = history(10);
        h.start_at(0, 0, 1000);
        let prices = [
            (1_000, 10.0, 1100),
            (1_400, 12.5, 1300),
            (1_999, 9.0, 1400),
            (2_000, 11.0, 2000),
        ];
        for (seq, (ts, price, volume)) in prices.into_iter().enumerate() {
            h.record(
                0,
                seq as u64 + 1,
                Recorded::of(&quote(seq as u64 + 1, ts, price, volume)),
            );
        }
        let (bars, revision) = h.bars(0, Interval::Second, 100);
        assert_eq!(revision, 4);
        assert_eq!(
            bars,
            vec![
                Bar {
                    t: 1_000,
                    o: 10.0,
                    h: 12.5,
                    l: 9.0,
                    c: 9.0,
                    v: 400,
                    n: 3
                },
                Bar {
                    t: 2_000,
                    o: 11.0,
                    h: 11.0,
                    l: 11.0,
                    c: 11.0,
                    v: 600,
                    n: 1
                },
            ]
        );
        assert_eq!(h.bars(0, Interval::Second, 1).0.len(), 1);
        let (minute, _) = h.bars(0, Interval::Minute, 100);
        assert_eq!(
            minute,
            vec![Bar {
                t: 0,
                o: 10.0,
                h: 12.5,
                l: 9.0,
                c: 11.0,
                v: 1000,
                n: 4
            }]
        );
    }

    /// A node that restores another's bars and then folds its own later updates ends with the
    /// bars of a node that saw everything; updates up to the restored seq are not folded twice.
    #[test]
    fn restore_merges_a_past_with_later_updates() {
        let (whole, late) = (history(100), history(100));
        let quotes: Vec<Quote> = (1..=40u64)
            .map(|seq| quote(seq, 1_000 + seq * 97, 100.0 + (seq % 7) as f64, seq * 150))
            .collect();
        for q in &quotes {
            whole.record(0, q.seq, Recorded::of(q));
        }
        // The late node saw 21..=30 live, then the past through 25 arrives, then the rest,
        // including a duplicate delivery of 24.
        let publisher = history(100);
        for q in &quotes[..25] {
            publisher.record(0, q.seq, Recorded::of(q));
        }
        for q in &quotes[20..30] {
            late.record(0, q.seq, Recorded::of(q));
        }
        late.restore(0, &publisher.export(0), 25);
        for q in &quotes[23..] {
            late.record(0, q.seq, Recorded::of(q));
        }
        for interval in Interval::ALL {
            assert_eq!(
                late.bars(0, interval, 1000).0,
                whole.bars(0, interval, 1000).0
            );
        }
    }

    /// Old bars fall out of the ring; a bar too old for it is ignored; gaps list nothing.
    #[test]
    fn bar_ring_keeps_the_newest() {
        let mut ring = BarRing::new(Interval::Second, 3);
        for k in [1u64, 2, 3, 4, 6] {
            ring.fold(k * 1000, k as i32, 1);
        }
        ring.fold(2_000, 99, 1);
        let times: Vec<u64> = ring.bars(10).iter().map(|b| b.t).collect();
        assert_eq!(times, vec![4_000, 6_000]);
        ring.fold(100_000, 7, 1);
        assert_eq!(ring.bars(10).len(), 1);
    }

    /// Cents round-trip every price a quote can carry.
    #[test]
    fn cents_round_trip() {
        for k in (-100_000..2_000_000).step_by(7) {
            let x = round2(k as f64 / 100.0 + 0.0031);
            assert_eq!(from_cents(to_cents(x)), x);
        }
    }
}
