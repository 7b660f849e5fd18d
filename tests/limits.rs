//! Limits and access on the real server: every refusal has its status, `Retry-After` and reason
//! in the metrics, and the clients already connected (or coming from elsewhere) never notice.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::settings::{CLIENT_LIMITS_OFF, settings_from};
use support::{Client, PATIENCE, Refused, TestApp, test_settings};
use ticker::access::jwt::{Claims, SigningKey};
use ticker::protocol::{ErrorCode, ServerMessage};
use ticker::settings::{AllowedOrigin, Origin, Secret, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "test-token-0123456789abcdef";

/// Reads until a `quotes` frame: the client is still being served.
async fn receives_quotes(client: &mut Client) {
    loop {
        if let ServerMessage::Quotes { quotes } = client.recv().await
            && !quotes.is_empty()
        {
            return;
        }
    }
}

/// The refusal of an upgrade that must be refused.
async fn refused(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Refused {
    match app.try_connect(path, headers).await {
        Ok(_) => panic!("the upgrade to {path} with {headers:?} was accepted"),
        Err(refused) => refused,
    }
}

async fn accepted(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Client {
    app.try_connect(path, headers)
        .await
        .unwrap_or_else(|r| panic!("the upgrade to {path} with {headers:?} was refused: {r:?}"))
}

fn assert_refusal(refused: &Refused, status: u16, code: &str) {
    assert_eq!(refused.status, status, "{refused:?}");
    assert_eq!(refused.body["error"], code, "{refused:?}");
}

async fn rejected(app: &TestApp, reason: &str) -> f64 {
    app.metric(&format!(
        "ticker_upgrades_rejected_total{{reason=\"{reason}\"}}"
    ))
    .await
}

/// Settings with the proxy on 127.0.0.1 trusted, so tests can speak for many addresses.
fn behind_proxy() -> Settings {
    let mut s = test_settings();
    s.server.trusted_proxies = vec![ticker::settings::Network::parse("127.0.0.1").unwrap()];
    s
}

fn from(ip: &str) -> [(&str, &str); 1] {
    [("X-Forwarded-For", ip)]
}

/// The fixtures' `CLIENT_LIMITS_OFF` variables, read as the binary reads them, turn off every
/// limit that is on by default (a misspelt variable would be ignored without a word).
#[test]
fn fixture_variables_turn_the_client_limits_off() {
    let limits = |s: &Settings| {
        (
            s.server.max_connections_per_ip,
            s.server.connect_rate_per_ip,
            s.ws.max_client_messages_per_sec,
        )
    };
    let defaults = limits(&Settings::defaults().unwrap());
    assert!(
        defaults.0 > 0 && defaults.1 > 0 && defaults.2 > 0,
        "{defaults:?}"
    );
    let off = (0, 0, 0);
    assert_eq!(limits(&settings_from(CLIENT_LIMITS_OFF)), off);
    assert_eq!(limits(&test_settings()), off);
}

/// Past `server.max_connections` an upgrade gets 503 with Retry-After while the open sessions
/// keep receiving quotes; once one closes, a new upgrade is accepted.
#[tokio::test]
async fn max_connections_refuses_only_new_upgrades() {
    let mut settings = test_settings();
    settings.server.max_connections = Some(2);
    let app = TestApp::spawn_with(settings).await;
    let mut first = app.connect("/ws?symbols=*").await;
    let mut second = app.connect("/ws?symbols=*").await;

    let third = refused(&app, "/ws", &[]).await;
    assert_refusal(&third, 503, "too_many_connections");
    assert!(third.retry_after().is_some_and(|s| s >= 1), "{third:?}");
    receives_quotes(&mut first).await;
    receives_quotes(&mut second).await;
    assert_eq!(rejected(&app, "too_many_connections").await, 1.0);

    first.close(None).await;
    app.until_sessions(1).await;
    let mut third = accepted(&app, "/ws?symbols=*", &[]).await;
    receives_quotes(&mut third).await;
    receives_quotes(&mut second).await;
    app.stop().await;
}

/// Behind a trusted proxy, each `X-Forwarded-For` address has its own connection budget: one
/// address past `server.max_connections_per_ip` gets 429, another still connects.
#[tokio::test]
async fn per_ip_limit_counts_forwarded_addresses() {
    let mut settings = behind_proxy();
    settings.server.max_connections_per_ip = 1;
    let app = TestApp::spawn_with(settings).await;
    let mut a = accepted(&app, "/ws?symbols=*", &from("203.0.113.1")).await;

    let again = refused(&app, "/ws", &from("203.0.113.1")).await;
    assert_refusal(&again, 429, "too_many_connections_from_ip");
    assert!(again.retry_after().is_some(), "{again:?}");
    // A spoofed entry to the left of the proxy's own does not help.
    let spoofed = refused(&app, "/ws", &from("198.51.100.7, 203.0.113.1")).await;
    assert_refusal(&spoofed, 429, "too_many_connections_from_ip");

    let mut b = accepted(&app, "/ws?symbols=*", &from("203.0.113.2")).await;
    let mut direct = accepted(&app, "/ws", &[]).await;
    receives_quotes(&mut a).await;
    receives_quotes(&mut b).await;
    assert_eq!(rejected(&app, "too_many_connections_from_ip").await, 2.0);

    a.close(None).await;
    app.until_sessions(2).await;
    accepted(&app, "/ws", &from("203.0.113.1")).await;
    direct.close(None).await;
    app.stop().await;
}

/// Without trusted proxies `X-Forwarded-For` is ignored: claiming other addresses does not buy
/// a client more connections.
#[tokio::test]
async fn forwarded_for_is_ignored_from_untrusted_peers() {
    let mut settings = test_settings();
    settings.server.max_connections_per_ip = 1;
    let app = TestApp::spawn_with(settings).await;
    let mut first = accepted(&app, "/ws?symbols=*", &from("203.0.113.1")).await;
    let second = refused(&app, "/ws", &from("203.0.113.2")).await;
    assert_refusal(&second, 429, "too_many_connections_from_ip");
    receives_quotes(&mut first).await;
    app.stop().await;
}

/// Past `server.connect_rate_per_ip` (burst included) upgrades from that address get 429
/// `rate_limited` with Retry-After; another address connects, and the admitted ones are served.
#[tokio::test]
async fn connect_rate_is_per_address() {
    let mut settings = behind_proxy();
    settings.server.connect_rate_per_ip = 1;
    settings.server.connect_burst_per_ip = 2;
    let app = TestApp::spawn_with(settings).await;
    let mut first = accepted(&app, "/ws?symbols=*", &from("203.0.113.1")).await;
    let mut second = accepted(&app, "/ws?symbols=*", &from("203.0.113.1")).await;

    let third = refused(&app, "/ws", &from("203.0.113.1")).await;
    assert_refusal(&third, 429, "rate_limited");
    assert_eq!(third.retry_after(), Some(1), "one token per second");
    let mut other = accepted(&app, "/ws?symbols=*", &from("203.0.113.2")).await;
    for client in [&mut first, &mut second, &mut other] {
        receives_quotes(client).await;
    }
    assert_eq!(rejected(&app, "rate_limited").await, 1.0);
    app.stop().await;
}

/// A browser upgrade from another site gets 403; the same origin, no `Origin` (not a browser),
/// a listed origin and `*` are accepted.
#[tokio::test]
async fn origins_are_checked() {
    let mut settings = test_settings();
    settings.server.allowed_origins = vec![AllowedOrigin::Origin(
        Origin::parse("https://app.example").unwrap(),
    )];
    let app = TestApp::spawn_with(settings).await;
    let own = format!("http://{}", app.addr);
    let mut bystander = app.connect("/ws?symbols=*").await;

    let evil = refused(&app, "/ws", &[("Origin", "https://evil.example")]).await;
    assert_refusal(&evil, 403, "forbidden_origin");
    let other_port = format!("http://127.0.0.1:{}", app.addr.port().wrapping_add(1));
    let sibling = refused(&app, "/ws", &[("Origin", &other_port)]).await;
    assert_refusal(&sibling, 403, "forbidden_origin");
    accepted(&app, "/ws", &[("Origin", &own)]).await;
    accepted(&app, "/ws", &[("Origin", "https://app.example")]).await;
    accepted(&app, "/ws", &[]).await;
    receives_quotes(&mut bystander).await;
    assert_eq!(rejected(&app, "forbidden_origin").await, 2.0);
    app.stop().await;

    let mut settings = test_settings();
    settings.server.allowed_origins = vec![AllowedOrigin::Any];
    let any = TestApp::spawn_with(settings).await;
    accepted(&any, "/ws", &[("Origin", "https://evil.example")]).await;
    any.stop().await;
}

/// With `auth.tokens`, `/ws` and `/api/*` answer 401 (with `WWW-Authenticate: Bearer`) without
/// a known token and serve it from the query or a Bearer header; health, metrics and the
/// dashboard stay open.
#[tokio::test]
async fn tokens_guard_ws_and_api() {
    let mut settings = test_settings();
    settings.auth.tokens = vec![Secret::new(TOKEN)];
    let app = TestApp::spawn_with(settings).await;
    let bearer = format!("Bearer {TOKEN}");

    let missing = refused(&app, "/ws", &[]).await;
    assert_refusal(&missing, 401, "unauthorized");
    assert!(
        missing.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"),
        "{missing:?}"
    );
    let wrong = refused(&app, "/ws?token=test-token-0123456789abcdeX", &[]).await;
    assert_refusal(&wrong, 401, "unauthorized");
    let mut by_query = accepted(&app, &format!("/ws?symbols=*&token={TOKEN}"), &[]).await;
    let mut by_header = accepted(&app, "/ws?symbols=*", &[("Authorization", &bearer)]).await;
    receives_quotes(&mut by_query).await;
    receives_quotes(&mut by_header).await;
    assert_eq!(rejected(&app, "unauthorized").await, 2.0);

    let http = reqwest::Client::new();
    let get = |path: &str| http.get(app.url(path));
    let denied = get("/api/quotes").send().await.unwrap();
    assert_eq!(denied.status(), 401);
    assert!(
        denied.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let body: Value = denied.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    let wrong = get("/api/symbols")
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    for request in [
        get("/api/quotes").bearer_auth(TOKEN),
        get(&format!("/api/quotes/AAPL?token={TOKEN}")),
        get("/api/symbols").bearer_auth(TOKEN),
        get("/healthz"),
        get("/readyz"),
        get("/metrics"),
        get("/"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.url());
    }
    app.stop().await;
}

/// With `auth.hmac_secret`, an HS256 JWT opens `/ws` and `/api/*` until it expires; an expired
/// or forged one, or a token of the retired `v1.` format, gets 401.
#[tokio::test]
async fn signed_tokens_open_until_they_expire() {
    let secret = "0123456789abcdef0123456789abcdef";
    let mut settings = test_settings();
    settings.auth.hmac_secret = Some(Secret::new(secret));
    settings.auth.leeway_secs = 0;
    let app = TestApp::spawn_with(settings).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |key: &SigningKey, exp: u64| {
        key.mint(&Claims {
            exp,
            ..Claims::default()
        })
        .unwrap()
    };
    let signer = SigningKey::hmac(secret);
    let fresh = sign(&signer, now + 60);
    let expired = sign(&signer, now - 1);
    let forged = sign(
        &SigningKey::hmac("some other secret of 32 characters"),
        now + 60,
    );
    let retired = format!("v1.{}.{}", now + 60, "00".repeat(32));

    let mut client = accepted(&app, &format!("/ws?symbols=*&token={fresh}"), &[]).await;
    for token in [&expired, &forged, &retired] {
        let refusal = refused(&app, &format!("/ws?token={token}"), &[]).await;
        assert_refusal(&refusal, 401, "unauthorized");
    }
    let http = reqwest::Client::new();
    let poll = |token: &str| http.get(app.url("/api/quotes")).bearer_auth(token).send();
    assert_eq!(poll(&fresh).await.unwrap().status(), 200);
    assert_eq!(poll(&expired).await.unwrap().status(), 401);
    receives_quotes(&mut client).await;
    app.stop().await;
}

/// A burst past `ws.max_client_messages_per_sec` gets `rate_limited` errors instead of answers,
/// continued abuse gets Close 1008, and a polite client on the same server notices nothing.
#[tokio::test]
async fn message_flood_is_refused_then_closed() {
    let mut settings = test_settings();
    settings.ws.max_client_messages_per_sec = 5;
    settings.ws.client_message_burst = 5;
    settings.ws.max_excess_messages = 10;
    let app = TestApp::spawn_with(settings).await;
    let mut polite = app.connect("/ws?symbols=*").await;
    let mut flood = app.connect("/ws").await;

    for id in 0..8 {
        flood.send_json(json!({"op": "ping", "id": id})).await;
    }
    let (mut pongs, mut limited) = (0, 0);
    while pongs + limited < 8 {
        match flood.recv().await {
            ServerMessage::Pong { .. } => pongs += 1,
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            other => panic!("expected pong or rate_limited, got {other:?}"),
        }
    }
    assert!(
        pongs >= 5 && limited >= 1,
        "{pongs} pongs, {limited} refused"
    );

    polite
        .send_json(json!({"op": "ping", "id": "polite"}))
        .await;
    loop {
        match polite.recv_control().await {
            ServerMessage::Subscribed { .. } | ServerMessage::Snapshot { .. } => continue,
            other => {
                assert_eq!(
                    other,
                    ServerMessage::Pong {
                        id: json!("polite")
                    }
                );
                break;
            }
        }
    }

    // Ten more: past the 10 excess messages tolerated, whatever refilled meanwhile. Only the
    // refused ones are answered (and counted); the one that tips it over is answered with Close.
    for id in 0..10 {
        flood.send_json(json!({"op": "ping", "id": id})).await;
    }
    assert_eq!(flood.recv_close().await, 1008);
    receives_quotes(&mut polite).await;
    assert_eq!(app.metric("ticker_messages_rate_limited_total").await, 10.0);
    assert_eq!(app.metric("ticker_rate_limit_closes_total").await, 1.0);
    assert_eq!(
        app.metric("ticker_connections_closed_total{code=\"1008\"}")
            .await,
        1.0
    );
    app.stop().await;
}

/// A subscribe or unsubscribe naming more than `ws.max_symbols_per_request` symbols, here or in
/// `?symbols=`, is refused whole with `too_many_symbols`; the connection stays usable.
#[tokio::test]
async fn too_many_symbols_in_one_request() {
    let mut settings = test_settings();
    settings.ws.max_symbols_per_request = 3;
    let app = TestApp::spawn_with(settings).await;
    let four = ["AAPL", "MSFT", "NVDA", "AMZN"];

    let mut client = app.connect("/ws?symbols=AAPL,MSFT,NVDA,AMZN").await;
    let is_too_many = |m: &ServerMessage| {
        matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::TooManySymbols,
                ..
            }
        )
    };
    let first = client.recv_control().await;
    assert!(is_too_many(&first), "{first:?}");
    client
        .send_json(json!({"op": "subscribe", "symbols": four}))
        .await;
    let second = client.recv_control().await;
    assert!(is_too_many(&second), "{second:?}");
    client
        .send_json(json!({"op": "unsubscribe", "symbols": four}))
        .await;
    let third = client.recv_control().await;
    assert!(is_too_many(&third), "{third:?}");
    client
        .send_json(json!({"op": "subscribe", "symbols": &four[..3]}))
        .await;
    assert_eq!(
        client.recv_control().await,
        ServerMessage::Subscribed {
            id: None,
            symbols: vec!["AAPL".into(), "MSFT".into(), "NVDA".into()],
            recovered: vec![],
        }
    );
    assert!(matches!(
        client.recv_control().await,
        ServerMessage::Snapshot { quotes } if quotes.len() == 3
    ));
    let every = app.symbol_count().await;
    client
        .send_json(json!({"op": "subscribe", "symbols": ["*"]}))
        .await;
    assert!(matches!(
        client.recv_control().await,
        ServerMessage::Subscribed { symbols, .. } if symbols.len() == every
    ));
    app.stop().await;
}

/// Reads what the server sends until it closes the connection; returns it and when it closed.
async fn read_until_closed(mut stream: TcpStream) -> (Vec<u8>, Instant) {
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut bytes)).await;
    assert!(read.is_ok(), "the server never closed the connection");
    (bytes, Instant::now())
}

/// A connection that sends half a request line and stalls, one that sends nothing, and one that
/// trickles its headers a byte at a time (slowloris) are all closed after
/// `server.handshake_timeout_ms`; a connected client keeps receiving quotes.
#[tokio::test]
async fn stalled_handshakes_are_closed() {
    let mut settings = test_settings();
    settings.server.handshake_timeout_ms = ticker::settings::Millis::new(1000);
    let app = TestApp::spawn_with(settings).await;
    let mut client = app.connect("/ws?symbols=*").await;

    let started = Instant::now();
    let mut half = TcpStream::connect(app.addr).await.unwrap();
    half.write_all(b"GET /ws HTT").await.unwrap();
    let silent = TcpStream::connect(app.addr).await.unwrap();
    let (trickle_read, mut trickle_write) =
        TcpStream::connect(app.addr).await.unwrap().into_split();
    let addr = app.addr;
    let trickler = tokio::spawn(async move {
        let head = format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nX-Padding: {}",
            addr,
            "a".repeat(200)
        );
        for byte in head.bytes() {
            if trickle_write.write_all(&[byte]).await.is_err() {
                return;
            }
            // The slowloris pace: each byte well inside any per-read timeout.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let trickle = async move {
        let mut bytes = Vec::new();
        let mut read = trickle_read;
        let done = tokio::time::timeout(PATIENCE, read.read_to_end(&mut bytes)).await;
        assert!(
            done.is_ok(),
            "the server never closed the trickling connection"
        );
        (bytes, Instant::now())
    };
    let (half, silent, trickle) =
        tokio::join!(read_until_closed(half), read_until_closed(silent), trickle);
    trickler.abort();
    for (bytes, closed) in [half, silent, trickle] {
        let waited = closed - started;
        // actix arms the deadline from a clock that ticks every 500 ms: up to that much early.
        assert!(
            waited >= Duration::from_millis(450) && waited < Duration::from_secs(3),
            "closed after {waited:?}"
        );
        let answer = String::from_utf8_lossy(&bytes);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
    receives_quotes(&mut client).await;
    app.stop().await;
}
