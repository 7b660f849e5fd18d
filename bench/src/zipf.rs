//! Realistic subscription mixes: each client watches K symbols drawn from a Zipf-like
//! popularity over the server's universe (a few names watched by most screens, a long tail),
//! seeded, so a run can be repeated.

use std::net::SocketAddr;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::BenchError;

/// The server's symbols, from `GET /api/symbols` (HTTP/1.0: the server closes after answering).
pub async fn universe(addr: SocketAddr) -> Result<Vec<String>, BenchError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /api/symbols HTTP/1.0\r\nHost: ticker\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let body = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|end| &answer[end + 4..])
        .ok_or_else(|| BenchError::Usage("GET /api/symbols: no answer".into()))?;
    let infos: Vec<serde_json::Value> = serde_json::from_slice(body)?;
    Ok(infos
        .iter()
        .filter_map(|i| i["symbol"].as_str().map(str::to_owned))
        .collect())
}

/// Draws symbol ranks with probability proportional to 1 / rank.
pub struct Popularity {
    cumulative: Vec<f64>,
    rng: StdRng,
}

impl Popularity {
    pub fn new(symbols: usize, seed: u64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=symbols)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Self {
            cumulative,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// `k` distinct ranks (fewer if the universe is smaller).
    pub fn pick(&mut self, k: usize) -> Vec<usize> {
        let total = *self.cumulative.last().unwrap_or(&0.0);
        let mut picked: Vec<usize> = Vec::with_capacity(k);
        while picked.len() < k.min(self.cumulative.len()) {
            let x = self.rng.random::<f64>() * total;
            let rank = self.cumulative.partition_point(|&c| c < x);
            if !picked.contains(&rank) {
                picked.push(rank);
            }
        }
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Picks are distinct, seeded, and favour the first ranks.
    #[test]
    fn zipf_picks() {
        let mut a = Popularity::new(8000, 1);
        let mut b = Popularity::new(8000, 1);
        let picks: Vec<Vec<usize>> = (0..1000).map(|_| a.pick(20)).collect();
        assert!(picks.iter().all(|p| p.len() == 20));
        assert_eq!(picks[0], b.pick(20));
        let top = picks.iter().filter(|p| p.contains(&0)).count();
        let tail = picks.iter().filter(|p| p.contains(&7000)).count();
        assert!(top > 500 && tail < 20, "top {top}, tail {tail}");
    }
}
