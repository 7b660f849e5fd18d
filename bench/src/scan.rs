//! A fast scanner for `quotes` frames: pulls each quote's symbol, seq and ts out of the JSON
//! without building a tree, so thousands of clients can check every frame on one core.
//!
//! It relies on the server's field order (`symbol` … `seq`, `ts` last), which the protocol tests
//! pin; a frame it cannot read is counted as malformed rather than guessed at.

use memchr::memmem::Finder;

pub struct Scanner {
    symbol: Finder<'static>,
    seq: Finder<'static>,
    ts: Finder<'static>,
}

/// One quote as the scanner sees it.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen<'a> {
    pub symbol: &'a [u8],
    pub seq: u64,
    pub ts: u64,
}

impl Default for Scanner {
    fn default() -> Self {
        Self {
            symbol: Finder::new(br#""symbol":""#),
            seq: Finder::new(br#""seq":"#),
            ts: Finder::new(br#""ts":"#),
        }
    }
}

impl Scanner {
    /// Calls `each` for every quote in `frame`; false when the frame is not as expected.
    pub fn quotes<'a>(&self, frame: &'a [u8], mut each: impl FnMut(Seen<'a>)) -> bool {
        let mut rest = frame;
        while let Some(at) = self.symbol.find(rest) {
            rest = &rest[at + self.symbol.needle().len()..];
            let Some(end) = memchr::memchr(b'"', rest) else {
                return false;
            };
            let symbol = &rest[..end];
            let Some((seq, after_seq)) = number_after(&self.seq, rest) else {
                return false;
            };
            let Some((ts, after_ts)) = number_after(&self.ts, after_seq) else {
                return false;
            };
            each(Seen { symbol, seq, ts });
            rest = after_ts;
        }
        true
    }
}

fn number_after<'a>(key: &Finder<'_>, haystack: &'a [u8]) -> Option<(u64, &'a [u8])> {
    let start = key.find(haystack)? + key.needle().len();
    let digits = haystack[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let text = std::str::from_utf8(&haystack[start..start + digits]).ok()?;
    Some((text.parse().ok()?, &haystack[start + digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scanner reads what serde writes for the server's own `Quote`.
    #[test]
    fn reads_serialized_quotes() {
        let quote = |symbol: &str, seq, ts| ticker::protocol::quote::Quote {
            symbol: symbol.into(),
            price: 1.5,
            bid: 1.4,
            ask: 1.6,
            open: 1.0,
            high: 2.0,
            low: 0.5,
            change: 0.5,
            change_pct: 50.0,
            volume: 700,
            seq,
            ts,
        };
        let frame = ticker::protocol::ServerMessage::Quotes {
            quotes: vec![quote("AAPL", 12, 1_700_000_000_123), quote("BRK.B", 3, 9)],
        }
        .to_frame();
        let mut seen = Vec::new();
        assert!(Scanner::default().quotes(frame.as_bytes(), |q| seen.push((
            q.symbol.to_vec(),
            q.seq,
            q.ts
        ))));
        assert_eq!(
            seen,
            vec![
                (b"AAPL".to_vec(), 12, 1_700_000_000_123),
                (b"BRK.B".to_vec(), 3, 9)
            ]
        );
        assert!(!Scanner::default().quotes(br#"{"symbol":"X","price":1}"#, |_| {}));
    }
}
