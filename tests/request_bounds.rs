//! Every request costs bounded, linear work: the polling API takes at most
//! `ws.max_symbols_per_request` symbols (400 `too_many_symbols`), a request target longer than
//! `server.max_uri_bytes` gets 414 `uri_too_long` on every route, and even with both limits off
//! 16,000 distinct unknown names resolve in one pass.

mod support;

use reqwest::StatusCode;
use serde_json::Value;
use support::TestApp;

/// `n` distinct three-character names that are not in the test universe: with their commas,
/// 16,000 of them make the reported 64 KB query (the most an HTTP client library will send).
fn unknown_names(n: usize) -> Vec<String> {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let known: Vec<String> = support::test_settings()
        .feed
        .symbols
        .into_iter()
        .map(|s| s.symbol)
        .collect();
    (0..)
        .map(|i: usize| {
            let name = [i % 36, i / 36 % 36, i / 1296 % 36].map(|d| DIGITS[d]);
            String::from_utf8(name.to_vec()).expect("ASCII")
        })
        .filter(|name| !known.contains(name))
        .take(n)
        .collect()
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = reqwest::get(app.url(path))
        .await
        .unwrap_or_else(|e| panic!("{} bytes: {e:?}", path.len()));
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `?symbols=` on the polling API takes as many names as a WebSocket request and no more.
#[tokio::test]
async fn polling_takes_at_most_max_symbols_per_request() {
    let settings = support::test_settings();
    let max = settings.ws.max_symbols_per_request;
    let app = TestApp::spawn_with(settings).await;
    let at_limit = vec!["AAPL"; max].join(",");
    let (status, body) = get(&app, &format!("/api/quotes?symbols={at_limit}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["quotes"].as_array().map(Vec::len), Some(1));

    let over = vec!["AAPL"; max + 1].join(",");
    let (status, body) = get(&app, &format!("/api/quotes?symbols={over}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "too_many_symbols");
    assert_eq!(
        app.metric(r#"ticker_poll_requests_total{status="400"}"#)
            .await,
        1.0
    );
    app.stop().await;
}

/// A target of `server.max_uri_bytes` is served; one byte more gets 414 on every route, the
/// WebSocket upgrade included, before the route reads it.
#[tokio::test]
async fn long_request_targets_get_414() {
    let settings = support::test_settings();
    let max = settings.server.max_uri_bytes;
    let app = TestApp::spawn_with(settings).await;
    let path = |len: usize| {
        let head = "/api/quotes?symbols=AAPL";
        format!("{head}{}", ",".repeat(len - head.len()))
    };
    let (status, _) = get(&app, &path(max)).await;
    assert_eq!(status, StatusCode::OK, "empty names are skipped");
    let (status, body) = get(&app, &path(max + 1)).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    assert_eq!(body["error"], "uri_too_long");

    // The reported attack: 16,000 distinct unknown names, 64 KB.
    let list = unknown_names(16_000).join(",");
    for route in ["/api/quotes", "/ws", "/api/quotes/AAPL", "/healthz"] {
        let (status, body) = get(&app, &format!("{route}?symbols={list}")).await;
        assert_eq!(status, StatusCode::URI_TOO_LONG, "{route}");
        assert_eq!(body["error"], "uri_too_long", "{route}");
    }
    assert_eq!(app.metric("ticker_uri_too_long_total").await, 5.0);
    app.stop().await;
}

/// With both limits off, 16,000 distinct unknown names (and some repeated) are all reported
/// once, in request order: resolution is one pass with a hash set (it used to compare each name
/// with every unknown one before it).
#[tokio::test]
async fn unbounded_request_still_resolves_in_one_pass() {
    let mut settings = support::test_settings();
    settings.server.max_uri_bytes = 0;
    settings.ws.max_symbols_per_request = 100_000;
    let app = TestApp::spawn_with(settings).await;
    let names = unknown_names(16_000);
    let repeated = format!("{},{}", names.join(","), names[..100].join(","));
    let (status, body) = get(&app, &format!("/api/quotes?symbols={repeated}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unknown_symbol");
    let reported: Vec<&str> = body["symbols"]
        .as_array()
        .expect("the unknown names")
        .iter()
        .map(|s| s.as_str().expect("a name"))
        .collect();
    assert_eq!(reported, names);
    app.stop().await;
}
