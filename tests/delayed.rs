//! The delayed tier on the real server: a JWT with `delay_ms` gets the live stream's exact
//! updates (same seqs, same JSON) that much later, a `welcome` that says so, polls and history
//! as of now − delay; a delay the server does not serve is refused.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use support::jwt::{SECRET, claims, hs256};
use support::{Client, TestApp};
use ticker::clock::now_ms;
use ticker::protocol::ServerMessage;
use ticker::protocol::history::Bar;
use ticker::protocol::quote::Quote;
use ticker::settings::{Millis, Secret};

const DELAY_MS: u64 = 1000;

async fn app() -> TestApp {
    let mut settings = support::test_settings();
    settings.auth.hmac_secret = Some(Secret::new(SECRET));
    settings.auth.delayed_tiers_ms = vec![Millis::new(DELAY_MS)];
    TestApp::spawn_with(settings).await
}

fn token(delay_ms: u64) -> String {
    let mut claims = claims(600, None);
    claims.delay_ms = delay_ms;
    hs256(&claims)
}

/// Connects with `token`, checks `welcome`'s delay, subscribes to everything.
async fn connect(app: &TestApp, token: &str, delay: Option<u64>) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(app.ws_url(&format!("/ws?token={token}")))
        .await
        .expect("the upgrade succeeds");
    let mut client = Client::new(ws);
    match client.recv().await {
        ServerMessage::Welcome { delay_ms, .. } => assert_eq!(delay_ms, delay),
        other => panic!("expected welcome, got {other:?}"),
    }
    client
        .send_json(serde_json::json!({"op": "subscribe", "symbols": ["*"]}))
        .await;
    client
}

/// Every quote a client receives for `span`, by (symbol, seq), with when it arrived.
async fn record(mut client: Client, span: Duration) -> HashMap<(String, u64), (Quote, u64)> {
    let until = tokio::time::Instant::now() + span;
    let mut seen = HashMap::new();
    while let Ok(message) = tokio::time::timeout_at(until, client.recv()).await {
        if let ServerMessage::Quotes { quotes } = message {
            let at = now_ms();
            for q in quotes {
                assert!(
                    seen.insert((q.symbol.clone(), q.seq), (q, at)).is_none(),
                    "a repeat"
                );
            }
        }
    }
    seen
}

/// The delayed client gets every update the live one got, identical, a second later; none
/// earlier than its time; with no seq missing in between.
#[tokio::test]
async fn the_delayed_tier_replays_the_live_stream_later() {
    let app = app().await;
    let live = connect(&app, &token(0), None).await;
    let delayed = connect(&app, &token(DELAY_MS), Some(DELAY_MS)).await;
    let span = Duration::from_millis(4000);
    let (live, delayed) = tokio::join!(record(live, span), record(delayed, span));
    let mut common = 0;
    for (key, (quote, at)) in &delayed {
        assert!(
            *at + 5 >= quote.ts + DELAY_MS,
            "{key:?} came early: at {at}, ts {}",
            quote.ts
        );
        if let Some((live_quote, live_at)) = live.get(key) {
            assert_eq!(live_quote, quote, "{key:?}: the same update");
            let lag = at.saturating_sub(*live_at);
            assert!(
                (800..2000).contains(&lag),
                "{key:?} {lag} ms after the live one"
            );
            common += 1;
        }
    }
    assert!(common > 500, "{common} updates seen by both");
    let mut by_symbol: HashMap<&str, Vec<u64>> = HashMap::new();
    for (symbol, seq) in delayed.keys() {
        by_symbol.entry(symbol).or_default().push(*seq);
    }
    for (symbol, seqs) in &mut by_symbol {
        seqs.sort_unstable();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "{symbol}: a gap in {seqs:?}"
        );
    }
    app.stop().await;
}

/// Polls and history with a delayed token show the market as of now − delay; an unserved
/// delay is refused.
#[tokio::test]
async fn polls_and_history_of_the_delayed_tier_lag_by_the_delay() {
    let app = app().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let get = |path: String| async move {
        let response = reqwest::get(path).await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };
    let (status, live) = get(app.url(&format!("/api/quotes?token={}", token(0)))).await;
    assert_eq!(status, 200);
    let asked = now_ms();
    let (status, delayed) = get(app.url(&format!("/api/quotes?token={}", token(DELAY_MS)))).await;
    assert_eq!(status, 200);
    let newest = delayed["ts"].as_u64().unwrap();
    assert!(
        newest + DELAY_MS <= asked + 50,
        "polled {newest}, asked at {asked}"
    );
    assert!(
        newest + DELAY_MS + 500 >= asked,
        "not older than the delay needs"
    );
    assert!(live["ts"].as_u64().unwrap() > newest);

    let (_, bars) = get(app.url(&format!(
        "/api/history/AAPL?interval=1s&token={}",
        token(DELAY_MS)
    )))
    .await;
    let bars: Vec<Bar> = serde_json::from_value(bars["bars"].clone()).unwrap();
    let last = bars.last().expect("bars").t;
    assert!(
        last + 1000 <= now_ms() - DELAY_MS + 50,
        "the history ends at now − delay"
    );

    let (status, body) = get(app.url(&format!("/api/quotes?token={}", token(5000)))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    app.stop().await;
}
