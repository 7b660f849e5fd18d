//! Backfill: an edge asks the publisher for every symbol's bars, one request per symbol on
//! `{prefix}.history`, so that an edge that started late (or lost the broker for a while) answers
//! `/api/history` like every other edge. Runs as its own task after each snapshot the edge
//! applies and hands each reply to the edge actor, which merges it with what it saw itself
//! (`History::restore`). One request at a time: a large universe backfills steadily without
//! a burst on the publisher, whose reply to one symbol stays far below NATS's payload limit.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::cluster::nats::HistoryReply;

/// Asks for the bars of every symbol in `symbols` and sends the replies to `replies`. A symbol
/// whose request fails is skipped (its bars fill from the live stream); the edge starts another
/// backfill after its next snapshot.
pub async fn run(
    client: async_nats::Client,
    subject: String,
    symbols: Vec<String>,
    timeout: Duration,
    replies: mpsc::Sender<HistoryReply>,
) {
    let started = Instant::now();
    let mut failed = 0usize;
    for symbol in &symbols {
        let request = client.request(subject.clone(), symbol.clone().into());
        let reply = match tokio::time::timeout(timeout, request).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                tracing::debug!(%symbol, error = %e, "history request failed");
                failed += 1;
                continue;
            }
            Err(_) => {
                tracing::debug!(%symbol, "history request timed out");
                failed += 1;
                continue;
            }
        };
        match serde_json::from_slice::<HistoryReply>(&reply.payload) {
            Ok(parsed) => {
                if replies.send(parsed).await.is_err() {
                    return; // the edge stopped
                }
            }
            Err(e) => {
                tracing::warn!(%symbol, error = %e, "unreadable history reply");
                failed += 1;
            }
        }
    }
    let elapsed_ms = started.elapsed().as_millis() as u64;
    if failed == 0 {
        tracing::info!(
            symbols = symbols.len(),
            elapsed_ms,
            "history backfilled from the publisher"
        );
    } else {
        tracing::warn!(
            symbols = symbols.len(),
            failed,
            elapsed_ms,
            "history backfill incomplete"
        );
    }
}
