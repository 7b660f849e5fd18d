//! A generated symbol universe of any size, seeded: exchange-like tickers and company names,
//! prices and volatilities, for benchmarks and tests at the size of a real exchange (a US
//! equities screen picks from about 8,000 symbols). `ticker-bench universe` prints it as a
//! settings file.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::settings::SymbolSettings;

const FIRST: &[&str] = &[
    "Alpha", "Atlas", "Blue", "Cedar", "Delta", "Eagle", "First", "Global", "Granite", "Harbor",
    "Iron", "Keystone", "Liberty", "Meridian", "North", "Orion", "Pacific", "Pioneer", "Quantum",
    "Summit", "Union", "Vertex", "Western", "Zenith",
];
const SECOND: &[&str] = &[
    "Bancorp",
    "Biotech",
    "Capital",
    "Chemicals",
    "Devices",
    "Energy",
    "Foods",
    "Holdings",
    "Industries",
    "Logistics",
    "Materials",
    "Media",
    "Networks",
    "Pharma",
    "Realty",
    "Retail",
    "Semiconductor",
    "Software",
    "Systems",
    "Telecom",
    "Therapeutics",
    "Utilities",
];
const SUFFIX: &[&str] = &["Inc.", "Corp.", "Co.", "Ltd.", "plc", "Group"];

/// `count` symbols with unique one- to four-letter tickers, the same for the same `seed`.
pub fn universe(count: usize, seed: u64) -> Vec<SymbolSettings> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut taken = HashSet::with_capacity(count);
    let mut symbols = Vec::with_capacity(count);
    while symbols.len() < count {
        // Mostly three and four letters, as on real tapes; short ones run out first.
        let len = match rng.random_range(0..10) {
            0 => 2,
            1..=4 => 3,
            _ => 4,
        };
        let ticker: String = (0..len)
            .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
            .collect();
        if !taken.insert(ticker.clone()) {
            continue;
        }
        let name = format!(
            "{} {} {}",
            FIRST[rng.random_range(0..FIRST.len())],
            SECOND[rng.random_range(0..SECOND.len())],
            SUFFIX[rng.random_range(0..SUFFIX.len())]
        );
        // Prices spread over orders of magnitude (log-uniform from $2 to $900).
        let price = (2f64.ln() + rng.random::<f64>() * (900f64.ln() - 2f64.ln())).exp();
        symbols.push(SymbolSettings {
            symbol: ticker,
            name,
            price: (price * 100.0).round() / 100.0,
            volatility: 0.12 + rng.random::<f64>() * 0.6,
            drift: 0.0,
        });
    }
    symbols
}

/// The universe as the `[[feed.symbols]]` tables of a settings file.
pub fn to_toml(symbols: &[SymbolSettings]) -> String {
    #[derive(serde::Serialize)]
    struct Feed<'a> {
        symbols: &'a [SymbolSettings],
    }
    #[derive(serde::Serialize)]
    struct File<'a> {
        feed: Feed<'a>,
    }
    toml::to_string(&File {
        feed: Feed { symbols },
    })
    .expect("symbol settings are plain data and always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::is_valid_symbol;

    /// The same seed gives the same universe; tickers are valid and unique.
    #[test]
    fn seeded_valid_and_unique() {
        let a = universe(8000, 1);
        assert_eq!(a.len(), 8000);
        let names: HashSet<&str> = a.iter().map(|s| s.symbol.as_str()).collect();
        assert_eq!(names.len(), 8000);
        assert!(
            a.iter()
                .all(|s| is_valid_symbol(&s.symbol) && s.price > 0.0)
        );
        let b = universe(8000, 1);
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.symbol == y.symbol && x.price == y.price)
        );
        let text = to_toml(&a[..3]);
        assert_eq!(text.matches("[[feed.symbols]]").count(), 3, "{text}");
    }
}
