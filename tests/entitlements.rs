//! What tokens grant, on the real server: a token's `symbols` bound what a session may
//! subscribe to and what the polling API answers; a session closes with 4004 when its token
//! expires unless `auth` brought a fresh one; a browser learns of a token problem from a Close
//! code; and CORS lets the listed sites read `/api/*`.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::jwt::{self, SECRET};
use support::{Client, PATIENCE, TestApp, test_settings};
use ticker::protocol::{ErrorCode, ServerMessage, close};
use ticker::settings::{AllowedOrigin, BrowserRefusal, Secret};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A server taking HS256 tokens under `SECRET`, with no leeway.
async fn server() -> TestApp {
    let mut settings = test_settings();
    settings.auth.hmac_secret = Some(Secret::new(SECRET));
    settings.auth.leeway_secs = 0;
    TestApp::spawn_with(settings).await
}

/// The server's symbols that `AAPL` and `M*` open, in its order.
fn opened(app: &TestApp) -> Vec<String> {
    app.settings
        .feed
        .symbols
        .iter()
        .map(|s| s.symbol.clone())
        .filter(|s| s == "AAPL" || s.starts_with('M'))
        .collect()
}

/// The next message that is no `quotes` or `snapshot`.
async fn control(client: &mut Client) -> ServerMessage {
    loop {
        match client.recv().await {
            ServerMessage::Quotes { .. } | ServerMessage::Snapshot { .. } => continue,
            other => return other,
        }
    }
}

/// The symbols of the next `subscribed`, skipping quotes.
async fn subscribed(client: &mut Client) -> Vec<String> {
    match control(client).await {
        ServerMessage::Subscribed { symbols, .. } => symbols,
        other => panic!("expected subscribed, got {other:?}"),
    }
}

/// Reads until `quotes` or `snapshot` messages name `wanted` symbols; fails on any other.
async fn quotes_only_for(client: &mut Client, allowed: &[String], wanted: usize) {
    let mut seen = std::collections::HashSet::new();
    while seen.len() < wanted {
        match client.recv().await {
            ServerMessage::Quotes { quotes } | ServerMessage::Snapshot { quotes } => {
                for q in quotes {
                    assert!(allowed.contains(&q.symbol), "{} was sent", q.symbol);
                    seen.insert(q.symbol);
                }
            }
            other => panic!("expected quotes, got {other:?}"),
        }
    }
}

/// A subscribe naming symbols the token does not open gets `forbidden_symbol` naming them while
/// the others apply; `?symbols=*` and `"*"` mean every open symbol; the polling API answers the
/// same way (403 naming them), and the refusals are counted.
#[tokio::test]
async fn symbols_claim_bounds_sessions_and_polls() {
    let app = server().await;
    let token = jwt::hs256(&jwt::claims(60, Some(&["AAPL", "M*"])));
    let opened = opened(&app);

    let mut client = app.connect(&format!("/ws?symbols=*&token={token}")).await;
    assert_eq!(subscribed(&mut client).await, opened);
    client
        .send_json(json!({"op":"unsubscribe","symbols":["*"]}))
        .await;
    assert!(subscribed(&mut client).await.is_empty());
    client
        .send_json(json!({"op":"subscribe","symbols":["AAPL","AMZN","MSFT","NOPE","TSLA"]}))
        .await;
    match control(&mut client).await {
        ServerMessage::Error { code, symbols, .. } => {
            assert_eq!(code, ErrorCode::UnknownSymbol);
            assert_eq!(symbols, ["NOPE"]);
        }
        other => panic!("expected unknown_symbol, got {other:?}"),
    }
    match control(&mut client).await {
        ServerMessage::Error { code, symbols, .. } => {
            assert_eq!(code, ErrorCode::ForbiddenSymbol);
            assert_eq!(symbols, ["AMZN", "TSLA"]);
        }
        other => panic!("expected forbidden_symbol, got {other:?}"),
    }
    assert_eq!(subscribed(&mut client).await, ["AAPL", "MSFT"]);
    quotes_only_for(&mut client, &opened, 2).await;

    let http = reqwest::Client::new();
    let get = |path: &str| http.get(app.url(path)).bearer_auth(&token).send();
    for path in ["/api/quotes", "/api/quotes?symbols=*"] {
        let body: Value = get(path).await.unwrap().json().await.unwrap();
        let symbols: Vec<&str> = body["quotes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["symbol"].as_str().unwrap())
            .collect();
        assert_eq!(symbols, opened, "{path}");
    }
    for path in ["/api/quotes?symbols=AAPL,AMZN", "/api/quotes/AMZN"] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status(), 403, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "forbidden_symbol");
        assert_eq!(body["symbols"], json!(["AMZN"]));
    }
    assert_eq!(get("/api/quotes/MSFT").await.unwrap().status(), 200);
    // The symbol list and its search show what the token opens, counts included.
    let listed: Vec<Value> = get("/api/symbols").await.unwrap().json().await.unwrap();
    let listed: Vec<&str> = listed
        .iter()
        .map(|s| s["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(listed, opened);
    let search = get("/api/symbols?q=m&limit=1000").await.unwrap();
    let total = search.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(total, (opened.len() - 1).to_string(), "M* only, not AAPL");
    let found: Vec<Value> = search.json().await.unwrap();
    assert!(
        found
            .iter()
            .all(|s| s["symbol"].as_str().unwrap().starts_with('M'))
    );
    // History too.
    assert_eq!(get("/api/history/AMZN").await.unwrap().status(), 403);
    assert_eq!(
        app.metric(r#"ticker_auth_refusals_total{reason="forbidden_symbol"}"#)
            .await,
        4.0
    );
    assert_eq!(
        app.metric(r#"ticker_sessions_open_by_tier{tier="live"}"#)
            .await,
        1.0
    );
    app.stop().await;
}

/// A session whose token expires is closed with 4004; one that sent a fresh token with `auth`
/// first stays open past the old expiry, loses the symbols the new token does not open (with a
/// notice), and a bad token sent with `auth` changes nothing.
#[tokio::test]
async fn expiry_closes_unless_a_fresh_token_came() {
    let app = server().await;
    let short = jwt::hs256(&jwt::claims(2, None));
    let mut expiring = app
        .connect(&format!("/ws?symbols=AAPL&token={short}"))
        .await;
    let mut refreshed = app
        .connect(&format!("/ws?symbols=AAPL,MSFT&token={short}"))
        .await;
    assert_eq!(subscribed(&mut refreshed).await, ["AAPL", "MSFT"]);

    refreshed
        .send_json(json!({"op":"auth","token":"not-a-token"}))
        .await;
    match control(&mut refreshed).await {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::Unauthorized),
        other => panic!("expected unauthorized, got {other:?}"),
    }
    let fresh = jwt::claims(600, Some(&["AAPL"]));
    refreshed
        .send_json(json!({"op":"auth","token":jwt::hs256(&fresh)}))
        .await;
    match control(&mut refreshed).await {
        ServerMessage::Error { code, symbols, .. } => {
            assert_eq!(code, ErrorCode::ForbiddenSymbol);
            assert_eq!(symbols, ["MSFT"]);
        }
        other => panic!("expected the forbidden_symbol notice, got {other:?}"),
    }
    assert_eq!(subscribed(&mut refreshed).await, ["AAPL"]);
    match control(&mut refreshed).await {
        ServerMessage::Authenticated { expires_at, .. } => {
            assert_eq!(expires_at, Some(fresh.exp * 1000))
        }
        other => panic!("expected authenticated, got {other:?}"),
    }

    let started = Instant::now();
    let code = expiring.recv_close().await;
    assert_eq!(code, close::TOKEN_EXPIRED);
    assert!(started.elapsed() < Duration::from_secs(4));
    // Past the old expiry, the refreshed session still gets AAPL, and only AAPL.
    quotes_only_for(&mut refreshed, &["AAPL".to_owned()], 1).await;
    refreshed.send_json(json!({"op":"ping","id":1})).await;
    assert!(matches!(
        control(&mut refreshed).await,
        ServerMessage::Pong { .. }
    ));
    assert_eq!(app.metric("ticker_token_expiry_closes_total").await, 1.0);
    assert_eq!(
        app.metric(r#"ticker_token_refreshes_total{result="accepted"}"#)
            .await,
        1.0
    );
    assert_eq!(
        app.metric(r#"ticker_token_refreshes_total{result="refused"}"#)
            .await,
        1.0
    );
    assert_eq!(
        app.metric(r#"ticker_connections_closed_total{code="4004"}"#)
            .await,
        1.0
    );
    app.stop().await;
}

/// With `auth.browser_refusal = "close"`, a browser (it sends `Origin`) whose token is missing,
/// invalid, expired or asks for a tier not served gets a 101 and at once a Close with 4001,
/// 4002, 4004 or 4003 and a reason; a client without `Origin` still gets the HTTP status.
#[tokio::test]
async fn browsers_learn_token_problems_from_close_codes() {
    let mut settings = test_settings();
    settings.auth.hmac_secret = Some(Secret::new(SECRET));
    settings.auth.leeway_secs = 0;
    settings.auth.browser_refusal = BrowserRefusal::Close;
    let app = TestApp::spawn_with(settings).await;
    let origin = format!("http://127.0.0.1:{}", app.addr.port());
    let delayed = jwt::hs256(&ticker::access::jwt::Claims {
        delay_ms: 900_000,
        ..jwt::claims(60, None)
    });
    let cases = [
        ("".to_owned(), close::UNAUTHORIZED, 401, "unauthorized"),
        (
            "?token=nope".to_owned(),
            close::INVALID_TOKEN,
            401,
            "unauthorized",
        ),
        (
            format!("?token={}", jwt::hs256(&jwt::claims(-10, None))),
            close::TOKEN_EXPIRED,
            401,
            "unauthorized",
        ),
        (
            format!("?token={delayed}"),
            close::FORBIDDEN,
            403,
            "forbidden",
        ),
    ];
    for (query, code, status, error) in &cases {
        let request = tokio_tungstenite::tungstenite::http::Request::builder()
            .uri(app.ws_url(&format!("/ws{query}")))
            .header("Origin", &origin)
            .header("Host", app.addr.to_string())
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header(
                "Sec-WebSocket-Key",
                tokio_tungstenite::tungstenite::handshake::client::generate_key(),
            )
            .body(())
            .unwrap();
        let (mut ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .unwrap_or_else(|e| panic!("{query}: the upgrade is accepted: {e}"));
        use futures_util::StreamExt;
        let frame = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a Close in time");
        match frame {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame)))) => {
                assert_eq!(frame.code, CloseCode::from(*code), "{query}");
                assert!(!frame.reason.is_empty(), "{query}: a reason is given");
            }
            other => panic!("{query}: expected a Close, got {other:?}"),
        }
        let refusal = app
            .try_connect(&format!("/ws{query}"), &[])
            .await
            .err()
            .unwrap_or_else(|| panic!("{query}: opened a session"));
        assert_eq!(
            (refusal.status, refusal.body["error"].as_str()),
            (*status, Some(*error))
        );
    }
    app.stop().await;
}

/// `/api/*` answers CORS preflights and requests from the listed origins, patterns included,
/// with the headers a page needs (token in `Authorization`, `ETag` readable); a refusal
/// carries them too, so the page can read it; other origins get none.
#[tokio::test]
async fn cors_for_listed_origins() {
    let mut settings = test_settings();
    settings.auth.hmac_secret = Some(Secret::new(SECRET));
    settings.server.allowed_origins = ["https://*.example.com", "http://localhost:3000"]
        .iter()
        .map(|o| toml::Value::String((*o).to_owned()).try_into().unwrap())
        .collect::<Vec<AllowedOrigin>>();
    let app = TestApp::spawn_with(settings).await;
    let http = reqwest::Client::new();
    let token = jwt::hs256(&jwt::claims(60, None));

    for origin in ["https://app.example.com", "http://localhost:3000"] {
        let preflight = http
            .request(reqwest::Method::OPTIONS, app.url("/api/quotes"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 200, "{origin}");
        let h = preflight.headers();
        assert_eq!(h["access-control-allow-origin"], origin);
        assert!(
            h["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .contains("authorization")
        );
        assert!(
            h["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("GET")
        );

        let answer = http
            .get(app.url("/api/quotes?symbols=AAPL"))
            .header("Origin", origin)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["access-control-allow-origin"], origin);
        let exposed = answer.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(exposed.contains("etag"), "{exposed}");

        let refused = http
            .get(app.url("/api/quotes"))
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.headers()["access-control-allow-origin"], origin);
    }
    for origin in [
        "https://example.com",
        "https://evil.test",
        "http://app.example.com",
    ] {
        let answer = http
            .get(app.url("/api/quotes?symbols=AAPL"))
            .header("Origin", origin)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(
            !answer.headers().contains_key("access-control-allow-origin"),
            "{origin}"
        );
    }
    // The WebSocket takes the same list.
    assert!(
        app.try_connect(
            &format!("/ws?token={token}"),
            &[("Origin", "https://app.example.com")]
        )
        .await
        .is_ok()
    );
    app.stop().await;
}
