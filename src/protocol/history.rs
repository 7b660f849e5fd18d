//! History on the wire: bar intervals, OHLCV bars, and what `welcome` says about history and
//! resume. The same `Bar` answers `GET /api/history/{symbol}` and the `history` op.

use serde::{Deserialize, Serialize};

/// The width of a bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Interval {
    #[serde(rename = "1s")]
    Second,
    #[serde(rename = "1m")]
    Minute,
}

impl Interval {
    pub const ALL: [Interval; 2] = [Interval::Second, Interval::Minute];

    /// The bar's width in milliseconds.
    pub const fn millis(self) -> u64 {
        match self {
            Interval::Second => 1_000,
            Interval::Minute => 60_000,
        }
    }

    /// As written on the wire and in URLs: `1s`, `1m`.
    pub const fn name(self) -> &'static str {
        match self {
            Interval::Second => "1s",
            Interval::Minute => "1m",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Position in per-interval arrays.
    pub const fn index(self) -> usize {
        match self {
            Interval::Second => 0,
            Interval::Minute => 1,
        }
    }
}

/// One OHLCV bar built from exactly the updates clients receive: `t` is the bar's start (Unix
/// ms), `o` the first price in it, `h`/`l` the highest/lowest, `c` the last, `v` the volume
/// traded in it and `n` the number of updates. A bar without updates is not listed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    pub t: u64,
    pub o: f64,
    pub h: f64,
    pub l: f64,
    pub c: f64,
    pub v: u64,
    pub n: u64,
}

/// `welcome`'s `history`: how many bars each interval keeps, and how far a resume reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryLimits {
    /// Bars kept per symbol, by interval: the largest `limit` a history request can use.
    pub intervals: IntervalLimits,
    /// Updates kept per symbol for resume: a `since` this many seqs back is still recovered.
    pub resume_updates: usize,
    /// The most updates one `subscribe` replays; symbols past it get a snapshot instead.
    pub max_resume_quotes: usize,
}

/// Bars kept per interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalLimits {
    #[serde(rename = "1s")]
    pub second: usize,
    #[serde(rename = "1m")]
    pub minute: usize,
}

impl IntervalLimits {
    pub fn of(&self, interval: Interval) -> usize {
        match interval {
            Interval::Second => self.second,
            Interval::Minute => self.minute,
        }
    }

    /// How many bars a history request for `limit` gets: all kept when absent; an error that
    /// says what may be asked when it is out of range (0, or more than are kept).
    pub fn bars_for(&self, interval: Interval, limit: Option<usize>) -> Result<usize, String> {
        let kept = self.of(interval);
        match limit {
            None => Ok(kept),
            Some(n) if (1..=kept).contains(&n) => Ok(n),
            Some(_) => Err(format!(
                "{} bars are kept, ask for 1 to {kept}",
                interval.name()
            )),
        }
    }
}
