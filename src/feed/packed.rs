//! How the history keeps its rings small: a bar in 16 bytes instead of 24 and an update in 40
//! instead of 48, each falling back to the full form for a ring where a value does not fit.
//!
//! Why: at the defaults a symbol keeps 2,340 bars and 600 updates, and an exchange's 8,000
//! symbols at 24 and 48 bytes came to 669 MiB, over the 512 MiB the history was given
//! (docs/benchmarks.md §12, §18). Nearly every bar's high, low and close lie within $327.67 of
//! its open and nearly every ring spans less than 49 days and 4 billion shares; a ring holding
//! one that does not (a very high price, a volume that went down) keeps its full form from then
//! on, so what is stored is always exact. Hand-written: this is a layout, not a codec a crate
//! would offer.

use std::collections::VecDeque;

use super::history::{Recorded, Slot};

/// A bar in 16 bytes: high, low and close as offsets from the open, the update count in 16 bits.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Bar16 {
    o: i32,
    h: i16,
    l: i16,
    c: i16,
    n: u16,
    v: u32,
}

impl Bar16 {
    fn of(s: &Slot) -> Option<Self> {
        let offset = |x: i32| i16::try_from(i64::from(x) - i64::from(s.o)).ok();
        Some(Self {
            o: s.o,
            h: offset(s.h)?,
            l: offset(s.l)?,
            c: offset(s.c)?,
            n: u16::try_from(s.n).ok()?,
            v: s.v,
        })
    }

    fn slot(self) -> Slot {
        Slot {
            o: self.o,
            h: self.o + i32::from(self.h),
            l: self.o + i32::from(self.l),
            c: self.o + i32::from(self.c),
            v: self.v,
            n: u32::from(self.n),
        }
    }
}

/// A ring's bars, by position.
#[derive(Debug)]
pub(super) enum Bars {
    Narrow(Vec<Bar16>),
    Wide(Vec<Slot>),
}

impl Default for Bars {
    fn default() -> Self {
        Self::Narrow(Vec::new())
    }
}

impl Bars {
    /// `len` empty bars.
    pub(super) fn empty(len: usize) -> Self {
        Self::Narrow(vec![Bar16::default(); len])
    }

    pub(super) fn is_empty(&self) -> bool {
        match self {
            Self::Narrow(bars) => bars.is_empty(),
            Self::Wide(bars) => bars.is_empty(),
        }
    }

    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }

    pub(super) fn get(&self, at: usize) -> Slot {
        match self {
            Self::Narrow(bars) => bars[at].slot(),
            Self::Wide(bars) => bars[at],
        }
    }

    pub(super) fn set(&mut self, at: usize, slot: Slot) {
        if let Self::Narrow(bars) = self {
            match Bar16::of(&slot) {
                Some(narrow) => {
                    bars[at] = narrow;
                    return;
                }
                None => *self = Self::Wide(bars.iter().map(|b| b.slot()).collect()),
            }
        }
        if let Self::Wide(bars) = self {
            bars[at] = slot;
        }
    }
}

/// An update in 40 bytes: its time and cumulative volume as offsets from the ring's base.
#[derive(Debug, Clone, Copy)]
struct Update40 {
    ts: u32,
    volume: u32,
    cents: crate::protocol::quote::Cents,
}

/// A symbol's latest updates, oldest first.
#[derive(Debug)]
pub(super) struct Recent {
    /// What the narrow offsets count from: at most every kept update's time and volume.
    base_ts: u64,
    base_volume: u64,
    kept: Kept,
}

#[derive(Debug)]
enum Kept {
    Narrow(VecDeque<Update40>),
    Wide(VecDeque<Recorded>),
}

impl Default for Recent {
    fn default() -> Self {
        Self {
            base_ts: 0,
            base_volume: 0,
            kept: Kept::Narrow(VecDeque::new()),
        }
    }
}

impl Recent {
    pub(super) fn len(&self) -> usize {
        match &self.kept {
            Kept::Narrow(kept) => kept.len(),
            Kept::Wide(kept) => kept.len(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room for `capacity` updates, allocated once.
    pub(super) fn reserve(&mut self, capacity: usize) {
        match &mut self.kept {
            Kept::Narrow(kept) if kept.capacity() == 0 => kept.reserve_exact(capacity),
            Kept::Wide(kept) if kept.capacity() == 0 => kept.reserve_exact(capacity),
            _ => {}
        }
    }

    pub(super) fn clear(&mut self) {
        match &mut self.kept {
            Kept::Narrow(kept) => kept.clear(),
            Kept::Wide(kept) => kept.clear(),
        }
    }

    pub(super) fn pop_front(&mut self) {
        match &mut self.kept {
            Kept::Narrow(kept) => {
                kept.pop_front();
            }
            Kept::Wide(kept) => {
                kept.pop_front();
            }
        }
    }

    pub(super) fn push_back(&mut self, recorded: Recorded) {
        if self.is_empty() {
            (self.base_ts, self.base_volume) = (recorded.ts, recorded.volume);
        }
        let narrow = match self.narrow(&recorded) {
            Some(narrow) => Some(narrow),
            // Moves the base up to what is kept now (once in 49 days, or 4 billion shares).
            None => self
                .rebase(&recorded)
                .then(|| self.narrow(&recorded))
                .flatten(),
        };
        match (&mut self.kept, narrow) {
            (Kept::Narrow(kept), Some(narrow)) => kept.push_back(narrow),
            (Kept::Narrow(kept), None) => {
                let mut wide = VecDeque::with_capacity(kept.capacity());
                wide.extend(
                    kept.iter()
                        .map(|k| widen(self.base_ts, self.base_volume, k)),
                );
                wide.push_back(recorded);
                self.kept = Kept::Wide(wide);
            }
            (Kept::Wide(kept), _) => kept.push_back(recorded),
        }
    }

    pub(super) fn get(&self, at: usize) -> Recorded {
        match &self.kept {
            Kept::Narrow(kept) => widen(self.base_ts, self.base_volume, &kept[at]),
            Kept::Wide(kept) => kept[at],
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = Recorded> + '_ {
        (0..self.len()).map(|at| self.get(at))
    }

    /// The number of updates, from the oldest, stamped at or before `ts`.
    pub(super) fn count_until(&self, ts: u64) -> usize {
        match &self.kept {
            Kept::Narrow(kept) => kept.partition_point(|k| self.base_ts + u64::from(k.ts) <= ts),
            Kept::Wide(kept) => kept.partition_point(|r| r.ts <= ts),
        }
    }

    fn narrow(&self, r: &Recorded) -> Option<Update40> {
        Some(Update40 {
            ts: u32::try_from(r.ts.checked_sub(self.base_ts)?).ok()?,
            volume: u32::try_from(r.volume.checked_sub(self.base_volume)?).ok()?,
            cents: r.cents,
        })
    }

    /// Bases the offsets on the least time and volume of what is kept and `next`; false when
    /// they still would not fit (the ring goes wide).
    fn rebase(&mut self, next: &Recorded) -> bool {
        let Kept::Narrow(kept) = &self.kept else {
            return false;
        };
        let all: Vec<Recorded> = kept
            .iter()
            .map(|k| widen(self.base_ts, self.base_volume, k))
            .chain([*next])
            .collect();
        let (ts, volume) = (all.iter().map(|r| r.ts), all.iter().map(|r| r.volume));
        let (base_ts, base_volume) = (
            ts.clone().min().unwrap_or(0),
            volume.clone().min().unwrap_or(0),
        );
        let fits =
            |max: Option<u64>, base: u64| max.is_some_and(|m| m - base <= u64::from(u32::MAX));
        if !fits(ts.max(), base_ts) || !fits(volume.max(), base_volume) {
            return false;
        }
        (self.base_ts, self.base_volume) = (base_ts, base_volume);
        let rebased: VecDeque<Update40> = all[..all.len() - 1]
            .iter()
            .map(|r| self.narrow(r).expect("every kept update fits the new base"))
            .collect();
        let capacity = kept.capacity();
        let mut kept = VecDeque::with_capacity(capacity);
        kept.extend(rebased);
        self.kept = Kept::Narrow(kept);
        true
    }
}

fn widen(base_ts: u64, base_volume: u64, k: &Update40) -> Recorded {
    Recorded::new(
        base_ts + u64::from(k.ts),
        base_volume + u64::from(k.volume),
        k.cents,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(ts: u64, volume: u64, price: i32) -> Recorded {
        Recorded::new(ts, volume, [price; 8])
    }

    /// The packed forms are the sizes the layout is for.
    #[test]
    fn sizes() {
        assert_eq!(std::mem::size_of::<Bar16>(), 16);
        assert_eq!(std::mem::size_of::<Update40>(), 40);
    }

    /// A bar that fits is kept narrow; one that does not turns the ring wide; both read back
    /// exactly what was put.
    #[test]
    fn bars_read_back_exactly() {
        let mut bars = Bars::empty(3);
        let small = Slot {
            o: 10_000,
            h: 10_050,
            l: 9_990,
            c: 10_001,
            v: 7,
            n: 3,
        };
        bars.set(0, small);
        assert!(matches!(bars, Bars::Narrow(_)));
        let huge = Slot {
            o: 60_000_000,
            h: 60_500_000,
            l: 59_000_000,
            c: 59_999_999,
            v: u32::MAX,
            n: 70_000,
        };
        bars.set(1, huge);
        assert!(matches!(bars, Bars::Wide(_)));
        assert_eq!(bars.get(0), small);
        assert_eq!(bars.get(1), huge);
        assert_eq!(bars.get(2), Slot::default());
    }

    /// Updates read back exactly: across a rebase (the offsets outgrow 32 bits as the ring
    /// moves on) and after a volume that went down (the ring goes wide).
    #[test]
    fn updates_read_back_exactly() {
        let day = 86_400_000;
        let mut recent = Recent::default();
        recent.reserve(3);
        let mut pushed = Vec::new();
        for i in 0..200u64 {
            // A day apart: 50 days after the base, the offsets no longer fit in 32 bits.
            let r = recorded(
                1_764_000_000_000 + i * day,
                5_000_000_000 + i * 1_000,
                i as i32,
            );
            if recent.len() == 3 {
                recent.pop_front();
                pushed.remove(0);
            }
            recent.push_back(r);
            pushed.push(r);
            assert_eq!(recent.iter().collect::<Vec<_>>(), pushed);
        }
        assert!(
            matches!(recent.kept, Kept::Narrow(_)),
            "rebased, still narrow"
        );
        assert_eq!(recent.count_until(pushed[1].ts), 2);
        let down = recorded(pushed[2].ts + 1, 10, 7);
        recent.pop_front();
        pushed.remove(0);
        recent.push_back(down);
        pushed.push(down);
        assert!(matches!(recent.kept, Kept::Wide(_)));
        assert_eq!(recent.iter().collect::<Vec<_>>(), pushed);
        assert_eq!(recent.count_until(down.ts), 3);
    }
}
