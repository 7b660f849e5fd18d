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

/// A quote's fields in cents, in [`Quote`]'s order: price, bid, ask, open, high, low, change
/// (cents) and change_pct (hundredths of a percent).
pub type Cents = [i32; 8];

impl Quote {
    /// The quote of `symbol` with these prices in cents.
    pub fn from_cents(symbol: &str, cents: &Cents, volume: u64, seq: u64, ts: u64) -> Self {
        let [price, bid, ask, open, high, low, change, change_pct] = cents.map(from_cents);
        Self {
            symbol: symbol.to_owned(),
            price,
            bid,
            ask,
            open,
            high,
            low,
            change,
            change_pct,
            volume,
            seq,
            ts,
        }
    }
}

/// A price in dollars from cents (or a percentage from hundredths).
pub fn from_cents(cents: i32) -> f64 {
    f64::from(cents) / 100.0
}

/// Appends the JSON of a quote given in cents to `out`: byte for byte what serde_json writes for
/// the same [`Quote`] (a unit test compares them), without building the `Quote` and its `String`
/// first. Hand-written because this is the feed's per-update cost: a universe of 8,000 symbols
/// that all move serializes 80,000 quotes a second, and serde_json's float formatting and the
/// allocations around it were most of that (docs/benchmarks.md §16). A price in cents needs no
/// float formatting: its shortest round-trip form is its digits with the point two places in.
pub fn write_json(out: &mut Vec<u8>, symbol: &str, cents: &Cents, volume: u64, seq: u64, ts: u64) {
    const NAMES: [&[u8]; 8] = [
        b",\"price\":",
        b",\"bid\":",
        b",\"ask\":",
        b",\"open\":",
        b",\"high\":",
        b",\"low\":",
        b",\"change\":",
        b",\"change_pct\":",
    ];
    out.extend_from_slice(b"{\"symbol\":");
    write_str(out, symbol);
    for (name, &c) in NAMES.iter().zip(cents) {
        out.extend_from_slice(name);
        write_cents(out, c);
    }
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(b",\"volume\":");
    out.extend_from_slice(digits.format(volume).as_bytes());
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(digits.format(seq).as_bytes());
    out.extend_from_slice(b",\"ts\":");
    out.extend_from_slice(digits.format(ts).as_bytes());
    out.push(b'}');
}

/// A JSON string; names that need escaping (none a config accepts today) go through serde_json.
fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(out, s).expect("writing to a Vec cannot fail");
    }
}

/// `cents / 100` as serde_json writes that `f64`: the shortest form that reads back as the same
/// number, which for at most ten significant digits is the digits themselves, with at least one
/// after the point (`5.0`, `5.5`, `5.05`, `-0.05`, `0.0`).
fn write_cents(out: &mut Vec<u8>, cents: i32) {
    if cents < 0 {
        out.push(b'-');
    }
    let c = cents.unsigned_abs();
    out.extend_from_slice(itoa::Buffer::new().format(c / 100).as_bytes());
    let (tenths, hundredths) = ((c / 10 % 10) as u8, (c % 10) as u8);
    out.push(b'.');
    out.push(b'0' + tenths);
    if hundredths != 0 {
        out.push(b'0' + hundredths);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cent amount up to ±$5,000 and a spread of others up to `i32`'s ends is written as
    /// serde_json writes the same `f64`.
    #[test]
    fn cents_are_written_as_serde_writes_them() {
        let spread = (0..20_000u32).map(|i| i.wrapping_mul(2_654_435_761) as i32);
        let extremes = [
            i32::MIN,
            i32::MIN + 1,
            i32::MAX,
            100,
            -100,
            1,
            -1,
            10,
            -10,
            0,
        ];
        for c in (-500_000..=500_000).chain(spread).chain(extremes) {
            let mut ours = Vec::new();
            write_cents(&mut ours, c);
            let theirs = serde_json::to_string(&from_cents(c)).unwrap();
            assert_eq!(std::str::from_utf8(&ours).unwrap(), theirs, "{c} cents");
        }
    }

    /// A whole quote, names that need escaping included, as serde_json writes it.
    #[test]
    fn quotes_are_written_as_serde_writes_them() {
        for symbol in ["AAPL", "BRK.B", "a\"b\\c", "tab\t", "é€"] {
            let cents: Cents = [12345, 12340, 12350, 12000, 12399, -5, 345, -1];
            let quote = Quote::from_cents(symbol, &cents, u64::MAX, 7, 1_764_000_000_000);
            let mut ours = Vec::new();
            write_json(&mut ours, symbol, &cents, quote.volume, quote.seq, quote.ts);
            assert_eq!(
                std::str::from_utf8(&ours).unwrap(),
                serde_json::to_string(&quote).unwrap()
            );
        }
    }

    #[test]
    fn round2_has_no_negative_zero() {
        assert_eq!(round2(-0.001).to_string(), "0");
        assert_eq!(serde_json::to_string(&round2(-0.004)).unwrap(), "0.0");
        assert_eq!(round2(-0.006), -0.01);
    }
}
