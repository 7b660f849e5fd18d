//! Wire protocol v1 over a real connection: welcome, subscriptions, snapshots, updates, pings,
//! errors and per-symbol seq order.

mod support;

use std::collections::HashSet;

use serde_json::json;
use support::{Client, SeqTracker, TestApp};
use ticker::protocol::quote::Quote;
use ticker::protocol::{ErrorCode, ServerMessage};

fn symbols_of(quotes: &[Quote]) -> HashSet<String> {
    quotes.iter().map(|q| q.symbol.clone()).collect()
}

fn set(names: &[&str]) -> HashSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Reads `subscribed` and returns its list; panics on anything else but quotes.
async fn expect_subscribed(client: &mut Client) -> Vec<String> {
    match client.recv_control().await {
        ServerMessage::Subscribed { symbols, .. } => symbols,
        other => panic!("expected subscribed, got {other:?}"),
    }
}

async fn expect_snapshot(client: &mut Client) -> Vec<Quote> {
    match client.recv_control().await {
        ServerMessage::Snapshot { quotes } => quotes,
        other => panic!("expected snapshot, got {other:?}"),
    }
}

async fn expect_error(client: &mut Client) -> (ErrorCode, Vec<String>) {
    match client.recv_control().await {
        ServerMessage::Error { code, symbols, .. } => (code, symbols),
        other => panic!("expected error, got {other:?}"),
    }
}

/// The first frame is `welcome` with the version, a session id, every symbol and the heartbeat.
#[tokio::test]
async fn welcome_describes_session() {
    let app = TestApp::spawn().await;
    let (mut client, _) = app.connect_offering("ticker.v1").await;
    match client.recv().await {
        ServerMessage::Welcome {
            version,
            session_id,
            symbols,
            symbol_count,
            heartbeat_interval_ms,
            idle_timeout_ms,
            node,
            history,
            expires_at,
            delay_ms,
            run,
        } => {
            assert_eq!(delay_ms, None, "the live tier");
            assert!(
                run.is_some_and(|r| !r.is_empty()),
                "welcome names the feed's run"
            );
            let history = history.expect("welcome says what history keeps");
            assert_eq!(
                (history.intervals.second, history.intervals.minute),
                (900, 1440)
            );
            assert_eq!(history.resume_updates, 600);
            assert_eq!(expires_at, None, "without auth nothing expires");
            assert_eq!(symbol_count, app.symbol_count().await);
            assert_eq!(version, 1);
            assert!(!node.is_empty(), "welcome names the node");
            assert!(!session_id.is_empty());
            assert_eq!(symbols.len(), app.symbol_count().await);
            assert!(symbols.contains(&"AAPL".to_string()));
            assert_eq!((heartbeat_interval_ms, idle_timeout_ms), (5000, 15000));
        }
        other => panic!("expected welcome, got {other:?}"),
    }
    app.stop().await;
}

/// The server selects `ticker.v1` when it is among the offered subprotocols (the case of no
/// overlap is in `http_api.rs`: a WebSocket library refuses that handshake itself).
#[tokio::test]
async fn selects_ticker_v1_subprotocol() {
    let app = TestApp::spawn().await;
    let (_, selected) = app.connect_offering("other, ticker.v1").await;
    assert_eq!(selected.as_deref(), Some("ticker.v1"));
    app.stop().await;
}

/// `?symbols=` subscribes at connect: `subscribed`, a snapshot, then updates for just those.
#[tokio::test]
async fn query_subscribes_at_connect() {
    let app = TestApp::spawn().await;
    let mut client = app.connect("/ws?symbols=AAPL,msft").await;
    assert_eq!(expect_subscribed(&mut client).await, vec!["AAPL", "MSFT"]);
    let snapshot = expect_snapshot(&mut client).await;
    assert_eq!(symbols_of(&snapshot), set(&["AAPL", "MSFT"]));
    for _ in 0..10 {
        match client.recv().await {
            ServerMessage::Quotes { quotes } => {
                assert!(!quotes.is_empty());
                assert!(symbols_of(&quotes).is_subset(&set(&["AAPL", "MSFT"])));
            }
            other => panic!("expected quotes, got {other:?}"),
        }
    }
    app.stop().await;
}

/// A new connection gets nothing but its welcome until it subscribes.
#[tokio::test]
async fn no_updates_without_subscription() {
    let app = TestApp::spawn().await;
    let mut idle = app.connect("/ws").await;
    let mut watcher = app.connect("/ws?symbols=*").await;
    // Five ticks reach the watcher; had any reached `idle`, they would precede its pong.
    let mut ticks = 0;
    while ticks < 5 {
        if let ServerMessage::Quotes { .. } = watcher.recv().await {
            ticks += 1;
        }
    }
    idle.send_json(json!({"op": "ping", "id": "probe"})).await;
    assert_eq!(
        idle.recv().await,
        ServerMessage::Pong { id: json!("probe") }
    );
    app.stop().await;
}

/// Subscribe acks the full list and snapshots only the new symbols; after an unsubscribe's ack
/// no update for that symbol arrives; `*` covers everything.
#[tokio::test]
async fn subscribe_and_unsubscribe_semantics() {
    let app = TestApp::spawn().await;
    let every = app.symbol_count().await;
    let mut client = app.connect("/ws").await;

    client
        .send_json(json!({"op": "subscribe", "symbols": ["AAPL", "NVDA"]}))
        .await;
    assert_eq!(expect_subscribed(&mut client).await, vec!["AAPL", "NVDA"]);
    assert_eq!(
        symbols_of(&expect_snapshot(&mut client).await),
        set(&["AAPL", "NVDA"])
    );

    client
        .send_json(json!({"op": "subscribe", "symbols": ["NVDA", "TSLA"]}))
        .await;
    assert_eq!(
        expect_subscribed(&mut client).await,
        vec!["AAPL", "NVDA", "TSLA"]
    );
    assert_eq!(
        symbols_of(&expect_snapshot(&mut client).await),
        set(&["TSLA"])
    );

    client
        .send_json(json!({"op": "unsubscribe", "symbols": ["AAPL", "TSLA"]}))
        .await;
    assert_eq!(expect_subscribed(&mut client).await, vec!["NVDA"]);
    // After the ack, only NVDA: a stale AAPL or TSLA update here would be a bug.
    let mut updates = 0;
    while updates < 15 {
        match client.recv().await {
            ServerMessage::Quotes { quotes } => {
                assert_eq!(symbols_of(&quotes), set(&["NVDA"]));
                updates += 1;
            }
            other => panic!("expected quotes, got {other:?}"),
        }
    }

    client
        .send_json(json!({"op": "subscribe", "symbols": ["*"]}))
        .await;
    assert_eq!(expect_subscribed(&mut client).await.len(), every);
    assert_eq!(
        expect_snapshot(&mut client).await.len(),
        every - 1,
        "all but NVDA are new"
    );

    client
        .send_json(json!({"op": "unsubscribe", "symbols": ["*"]}))
        .await;
    assert!(expect_subscribed(&mut client).await.is_empty());
    client.send_json(json!({"op": "ping", "id": 1})).await;
    assert_eq!(client.recv().await, ServerMessage::Pong { id: json!(1) });
    app.stop().await;
}

/// Unknown symbols are named in an `unknown_symbol` error while the known ones still apply.
#[tokio::test]
async fn unknown_symbols_are_named_and_known_ones_apply() {
    let app = TestApp::spawn().await;
    let mut client = app.connect("/ws").await;
    client
        .send_json(json!({"op": "subscribe", "symbols": ["AAPL", "NOPE", "ZZZZ"]}))
        .await;
    let (code, names) = expect_error(&mut client).await;
    assert_eq!(code, ErrorCode::UnknownSymbol);
    assert_eq!(names, vec!["NOPE", "ZZZZ"]);
    assert_eq!(expect_subscribed(&mut client).await, vec!["AAPL"]);
    assert_eq!(
        symbols_of(&expect_snapshot(&mut client).await),
        set(&["AAPL"])
    );
    client
        .send_json(json!({"op": "unsubscribe", "symbols": ["NOPE"]}))
        .await;
    assert_eq!(expect_error(&mut client).await.0, ErrorCode::UnknownSymbol);
    assert_eq!(expect_subscribed(&mut client).await, vec!["AAPL"]);
    app.stop().await;
}

/// Malformed requests get `bad_request` and the connection stays usable.
#[tokio::test]
async fn bad_requests_get_errors_and_connection_stays_open() {
    let app = TestApp::spawn().await;
    let mut client = app.connect("/ws").await;
    for bad in [
        "not json",
        "[1,2]",
        r#"{"symbols":["AAPL"]}"#,
        r#"{"op":"buy","symbols":["AAPL"]}"#,
        r#"{"op":"subscribe","symbols":"AAPL"}"#,
        r#"{"op":"subscribe","symbols":[1,2]}"#,
    ] {
        client.send_text(bad).await;
        assert_eq!(
            expect_error(&mut client).await.0,
            ErrorCode::BadRequest,
            "{bad}"
        );
    }
    client
        .send_json(json!({"op": "ping", "id": {"nested": [1]}}))
        .await;
    assert_eq!(
        client.recv().await,
        ServerMessage::Pong {
            id: json!({"nested": [1]})
        }
    );
    app.stop().await;
}

/// Past `ws.max_subscriptions` a subscribe is refused whole with `too_many_subscriptions`.
#[tokio::test]
async fn subscription_limit_is_enforced() {
    let mut settings = support::test_settings();
    settings.ws.max_subscriptions = 3;
    let app = TestApp::spawn_with(settings).await;
    let mut client = app.connect("/ws?symbols=AAPL,MSFT").await;
    expect_subscribed(&mut client).await;
    expect_snapshot(&mut client).await;
    client
        .send_json(json!({"op": "subscribe", "symbols": ["NVDA", "TSLA"]}))
        .await;
    assert_eq!(
        expect_error(&mut client).await.0,
        ErrorCode::TooManySubscriptions
    );
    client
        .send_json(json!({"op": "subscribe", "symbols": ["*"]}))
        .await;
    assert_eq!(
        expect_error(&mut client).await.0,
        ErrorCode::TooManySubscriptions
    );
    client
        .send_json(json!({"op": "subscribe", "symbols": ["NVDA", "AAPL"]}))
        .await;
    assert_eq!(
        expect_subscribed(&mut client).await,
        vec!["AAPL", "MSFT", "NVDA"]
    );
    app.stop().await;
}

/// Across snapshots, re-subscriptions and many ticks, a symbol's seq never goes backwards and
/// every `quotes` entry is newer than what came before it on this connection.
#[tokio::test]
async fn seq_strictly_increases_per_symbol() {
    let app = TestApp::spawn().await;
    let mut client = app.connect("/ws?symbols=*").await;
    let mut seqs = SeqTracker::default();
    let mut frames = 0;
    let mut churn = 0;
    while frames < 120 {
        match client.recv().await {
            ServerMessage::Quotes { quotes } => {
                seqs.update(&quotes);
                frames += 1;
                // Churn the subscription now and then, racing the feed.
                if frames % 20 == 0 {
                    let op = if churn % 2 == 0 {
                        "unsubscribe"
                    } else {
                        "subscribe"
                    };
                    client
                        .send_json(json!({"op": op, "symbols": ["AAPL", "MSFT", "TSLA"]}))
                        .await;
                    churn += 1;
                }
            }
            ServerMessage::Snapshot { quotes } => seqs.snapshot(&quotes),
            ServerMessage::Subscribed { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seqs.last.len(), app.symbol_count().await);
    app.stop().await;
}

/// Clients subscribed to the same symbols receive the same quotes.
#[tokio::test]
async fn clients_see_the_same_market() {
    let app = TestApp::spawn().await;
    let mut a = app.connect("/ws?symbols=AAPL").await;
    let mut b = app.connect("/ws?symbols=AAPL").await;
    let mut seen = [Vec::new(), Vec::new()];
    for (i, client) in [&mut a, &mut b].into_iter().enumerate() {
        while seen[i].len() < 20 {
            match client.recv().await {
                ServerMessage::Quotes { quotes } | ServerMessage::Snapshot { quotes } => {
                    seen[i].extend(quotes)
                }
                _ => {}
            }
        }
    }
    // Both saw seqs in an overlapping window; wherever they overlap the quote is identical.
    let overlap: Vec<_> = seen[0]
        .iter()
        .filter(|q| seen[1].iter().any(|r| r.seq == q.seq))
        .collect();
    assert!(
        overlap.len() > 10,
        "clients connected together see overlapping updates"
    );
    for q in overlap {
        assert!(seen[1].contains(q), "same seq, same quote: {q:?}");
    }
    app.stop().await;
}

/// Quotes carry consistent fields: cents, bid < ask, low ≤ price ≤ high, change from open.
#[tokio::test]
async fn quotes_are_well_formed() {
    let app = TestApp::spawn().await;
    let mut client = app.connect("/ws?symbols=*").await;
    expect_subscribed(&mut client).await;
    let mut quotes = expect_snapshot(&mut client).await;
    while quotes.len() < 200 {
        if let ServerMessage::Quotes { quotes: q } = client.recv().await {
            quotes.extend(q);
        }
    }
    let now_ms = ticker::clock::now_ms();
    for q in quotes {
        assert!(
            q.bid < q.ask && q.low <= q.price && q.price <= q.high,
            "{q:?}"
        );
        assert_eq!((q.price * 100.0).round() / 100.0, q.price);
        assert!((q.change - (q.price - q.open)).abs() < 0.011, "{q:?}");
        assert!(
            q.ts <= now_ms && now_ms - q.ts < 60_000,
            "ts is recent epoch ms: {q:?}"
        );
    }
    app.stop().await;
}
