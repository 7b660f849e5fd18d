//! `Quote`, the one serde type for a symbol's state on the WebSocket and the polling API alike.

use serde::{Deserialize, Serialize};

/// The state of one symbol after an update. Prices are rounded to cents; `ts` is the Unix epoch
/// time of the tick in milliseconds; `seq` rises by one on every update of this symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    pub symbol: String,
    pub price: f64,
    pub bid: f64,
    pub ask: f64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub change: f64,
    pub change_pct: f64,
    pub volume: u64,
    pub seq: u64,
    pub ts: u64,
}

/// Rounds to two decimals, for prices in dollars and for percentages. Zero is always `0.0`,
/// never `-0.0` (which JSON would show as `-0.0`, and the history could not tell apart).
pub fn round2(x: f64) -> f64 {
    let rounded = (x * 100.0).round() / 100.0;
    if rounded == 0.0 { 0.0 } else { rounded }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round2_has_no_negative_zero() {
        assert_eq!(round2(-0.001).to_string(), "0");
        assert_eq!(serde_json::to_string(&round2(-0.004)).unwrap(), "0.0");
        assert_eq!(round2(-0.006), -0.01);
    }
}
