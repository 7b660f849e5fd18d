//! The HTTP side: polling API with ETags, symbols, health checks, upgrade errors, the dashboard.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::TestApp;
use ticker::protocol::ServerMessage;

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    reqwest::get(app.url(path)).await.expect("request")
}

/// `GET /api/quotes` returns every symbol's quote, no-cache, with a weak ETag (the body may go
/// out compressed, `tests/http_compression.rs`).
#[tokio::test]
async fn quotes_lists_every_symbol() {
    let app = TestApp::spawn().await;
    let response = get(&app, "/api/quotes").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["content-type"], "application/json");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with("W/\"") && etag.ends_with('"'),
        "weak ETag: {etag}"
    );
    let body: Value = response.json().await.unwrap();
    let quotes = body["quotes"].as_array().unwrap();
    assert_eq!(quotes.len(), app.symbol_count().await);
    let newest = quotes
        .iter()
        .map(|q| q["ts"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(
        body["ts"].as_u64(),
        Some(newest),
        "ts is the newest quote's tick"
    );
    app.stop().await;
}

/// `?symbols=` filters in request order, case-insensitively; unknown names are a 400 naming them.
#[tokio::test]
async fn quotes_filter_and_unknown_symbols() {
    let app = TestApp::spawn().await;
    let body: Value = get(&app, "/api/quotes?symbols=msft,AAPL")
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = body["quotes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["MSFT", "AAPL"]);

    let response = get(&app, "/api/quotes?symbols=AAPL&symbols=MSFT").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "bad_request"
    );

    let response = get(&app, "/api/quotes?symbols=AAPL,NOPE,XX").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unknown_symbol");
    assert_eq!(body["symbols"], serde_json::json!(["NOPE", "XX"]));
    app.stop().await;
}

/// `If-None-Match` with the current ETag gets 304 and no body until the quotes change; then 200.
#[tokio::test]
async fn etag_gives_304_until_quotes_change() {
    let mut settings = support::test_settings();
    settings.feed.tick_interval_ms = ticker::settings::Millis::new(300);
    let app = TestApp::spawn_with(settings).await;
    let client = reqwest::Client::new();
    let first = client
        .get(app.url("/api/quotes?symbols=AAPL"))
        .send()
        .await
        .unwrap();
    let etag = first.headers()["etag"].clone();
    let first: Value = first.json().await.unwrap();
    let mut saw_304 = false;
    loop {
        let response = client
            .get(app.url("/api/quotes?symbols=AAPL"))
            .header("If-None-Match", etag.clone())
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::NOT_MODIFIED {
            saw_304 = true;
            assert_eq!(response.headers()["etag"], etag);
            assert!(response.bytes().await.unwrap().is_empty());
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            continue;
        }
        assert_eq!(response.status(), StatusCode::OK);
        assert_ne!(response.headers()["etag"], etag);
        let next: Value = response.json().await.unwrap();
        assert!(next["quotes"][0]["seq"].as_u64() > first["quotes"][0]["seq"].as_u64());
        break;
    }
    assert!(
        saw_304,
        "the unchanged quote was answered with 304 at least once"
    );
    app.stop().await;
}

/// The polling API and the WebSocket serve the same quotes from the same state.
#[tokio::test]
async fn polling_and_push_agree() {
    let mut settings = support::test_settings();
    settings.feed.tick_interval_ms = ticker::settings::Millis::new(500);
    let app = TestApp::spawn_with(settings).await;
    let mut client = app.connect("/ws?symbols=*").await;
    client.recv().await; // subscribed
    let ServerMessage::Snapshot { quotes } = client.recv().await else {
        panic!("expected snapshot")
    };
    let polled: Value = get(&app, "/api/quotes").await.json().await.unwrap();
    let polled: Vec<ticker::protocol::quote::Quote> =
        serde_json::from_value(polled["quotes"].clone()).unwrap();
    // A tick may fall between the two reads; then the poll is newer, never older.
    for (pushed, polled) in quotes.iter().zip(&polled) {
        assert_eq!(pushed.symbol, polled.symbol);
        assert!(polled.seq >= pushed.seq);
        if polled.seq == pushed.seq {
            assert_eq!(pushed, polled);
        }
    }
    app.stop().await;
}

/// `GET /api/quotes/{symbol}` returns one quote, 404 JSON for an unknown one; `/api/symbols`
/// lists symbol, name and price; unknown API paths are JSON 404s.
#[tokio::test]
async fn single_quote_and_symbols() {
    let app = TestApp::spawn().await;
    let quote: Value = get(&app, "/api/quotes/nvda").await.json().await.unwrap();
    assert_eq!(quote["symbol"], "NVDA");
    let missing = get(&app, "/api/quotes/NOPE").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body = missing.json::<Value>().await.unwrap();
    assert_eq!(body["error"], "unknown_symbol");
    assert_eq!(body["symbols"], json!(["NOPE"]), "names the symbol");
    let empty = get(&app, "/api/quotes?symbols=").await;
    assert_eq!(
        empty.status(),
        StatusCode::BAD_REQUEST,
        "an empty list is not `all`"
    );
    let symbols: Value = get(&app, "/api/symbols").await.json().await.unwrap();
    // Every configured symbol: this is the list `TestApp::symbols` reads elsewhere.
    assert_eq!(
        symbols.as_array().unwrap().len(),
        app.settings.feed.symbols.len()
    );
    assert_eq!(symbols[0]["symbol"], "AAPL");
    assert_eq!(symbols[0]["name"], "Apple Inc.");
    assert!(symbols[0]["price"].as_f64().unwrap() > 0.0);
    assert_eq!(
        get(&app, "/api/nothing").await.status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

/// `/api/symbols?q=` searches symbols and names, best matches first, and pages with `limit`
/// and `offset`; `X-Total-Count` says how many match; bad paging is a 400.
#[tokio::test]
async fn symbol_search_and_paging() {
    let app = TestApp::spawn().await;
    let answer = get(&app, "/api/symbols?q=a&limit=3").await;
    assert_eq!(answer.status(), StatusCode::OK);
    let total: usize = answer.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let page: Value = answer.json().await.unwrap();
    let page = page.as_array().unwrap();
    assert_eq!(page.len(), 3);
    assert!(total > 3 && total <= app.settings.feed.symbols.len());
    // Symbols starting with the text come before names that only contain it.
    assert!(page[0]["symbol"].as_str().unwrap().starts_with('A'));
    let rest: Value = get(&app, "/api/symbols?q=a&limit=3&offset=3")
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(rest[0]["symbol"], page[0]["symbol"], "the next page");

    let by_name: Value = get(&app, "/api/symbols?q=micro")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_name[0]["symbol"], "MSFT");
    let exact: Value = get(&app, "/api/symbols?q=v").await.json().await.unwrap();
    assert_eq!(exact[0]["symbol"], "V", "the symbol itself first");
    let none = get(&app, "/api/symbols?q=zzzzzz").await;
    assert_eq!(none.headers()["x-total-count"], "0");
    assert_eq!(none.json::<Value>().await.unwrap(), json!([]));
    for bad in [
        "limit=0",
        "limit=100000",
        "limit=x",
        &format!("q={}", "a".repeat(65)),
    ] {
        let answer = get(&app, &format!("/api/symbols?{bad}")).await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    app.stop().await;
}

/// Health and readiness answer 200 while serving.
#[tokio::test]
async fn health_endpoints() {
    let app = TestApp::spawn().await;
    assert_eq!(get(&app, "/healthz").await.status(), StatusCode::OK);
    let ready: Value = get(&app, "/readyz").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    app.stop().await;
}

fn upgrade_request(app: &TestApp, version: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .get(app.url("/ws"))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", version)
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
}

/// `/ws` without an upgrade is 400; a wrong WebSocket version is 426 naming version 13; a
/// subprotocol offer without `ticker.v1` upgrades with no protocol selected.
#[tokio::test]
async fn upgrade_errors_and_protocol_negotiation() {
    let app = TestApp::spawn().await;
    let plain = get(&app, "/ws").await;
    assert_eq!(plain.status(), StatusCode::BAD_REQUEST);
    assert_eq!(plain.json::<Value>().await.unwrap()["error"], "bad_request");
    let old = upgrade_request(&app, "8").send().await.unwrap();
    assert_eq!(old.status(), StatusCode::UPGRADE_REQUIRED);
    assert_eq!(old.headers()["sec-websocket-version"], "13");
    let other = upgrade_request(&app, "13")
        .header("Sec-WebSocket-Protocol", "graphql-ws")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert!(other.headers().get("sec-websocket-protocol").is_none());
    app.stop().await;
}

/// `/` serves the dashboard page from `web/`.
#[tokio::test]
async fn serves_dashboard() {
    let app = TestApp::spawn().await;
    let page = get(&app, "/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().await.unwrap().contains("/ws"));
    assert_eq!(
        get(&app, "/no-such-file.js").await.status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

/// Every route answers `HEAD` like `GET` without the body; other methods get 405 with `Allow`
/// (`GET, HEAD`; `GET` on `/ws`), the dashboard's files included, and unknown paths stay 404.
#[tokio::test]
async fn head_works_and_other_methods_get_405() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/quotes",
        "/api/quotes/AAPL",
        "/api/symbols",
        "/",
        "/index.html",
    ] {
        let get = client.get(app.url(path)).send().await.unwrap();
        let head = client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK, "HEAD {path}");
        assert_eq!(
            head.headers()["content-type"],
            get.headers()["content-type"],
            "HEAD {path}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "HEAD {path}");
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let response = client
                .request(method.clone(), app.url(path))
                .body("x")
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(response.headers()["allow"], "GET, HEAD", "{method} {path}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "method_not_allowed", "{method} {path}");
        }
    }
    let post = client.post(app.url("/ws")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers()["allow"], "GET");
    for method in [Method::HEAD, Method::POST] {
        let missing = client
            .request(method.clone(), app.url("/no-such-file.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{method}");
    }
    app.stop().await;
}
