//! History, resume and request ids on the real server: bars equal what a client recorded,
//! `GET /api/history` and the `history` op agree, a resume replays exactly the missed seqs,
//! one beyond the ring falls back to a snapshot, every reply carries its request's id, and bad
//! `since` values get clear errors on a connection that stays up.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{Value, json};
use support::settings::{CLIENT_LIMITS_OFF, IN_PROCESS, settings_from};
use support::{Client, TestApp};
use ticker::protocol::history::Bar;
use ticker::protocol::quote::Quote;
use ticker::protocol::{ErrorCode, ServerMessage};

async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    let response = reqwest::get(app.url(path)).await.expect("GET");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

fn bars_of(body: &Value) -> Vec<Bar> {
    serde_json::from_value(body["bars"].clone()).expect("bars")
}

/// Subscribes to every symbol and returns the snapshot.
async fn subscribe_all(client: &mut Client, since: Option<Value>) -> ServerMessage {
    let mut request = json!({"op": "subscribe", "symbols": ["*"], "id": "all"});
    if let Some(since) = since {
        request["since"] = since;
    }
    client.send_json(request).await;
    client.recv_control().await
}

/// Reads quotes for `span`, returning them in arrival order.
async fn record(client: &mut Client, span: Duration) -> Vec<Quote> {
    let until = tokio::time::Instant::now() + span;
    let mut seen = Vec::new();
    while let Ok(message) = tokio::time::timeout_at(until, client.recv()).await {
        if let ServerMessage::Quotes { quotes } = message {
            seen.extend(quotes);
        }
    }
    seen
}

/// The 1 s bars a client would compute from the updates it received; `before` is each
/// symbol's cumulative volume before the first of them.
fn bars_from(updates: &[Quote], before: &HashMap<String, u64>) -> BTreeMap<(String, u64), Bar> {
    let mut volume = before.clone();
    let mut bars: BTreeMap<(String, u64), Bar> = BTreeMap::new();
    for q in updates {
        let traded = q.volume
            - volume
                .insert(q.symbol.clone(), q.volume)
                .expect("in snapshot");
        let t = q.ts / 1000 * 1000;
        let bar = bars.entry((q.symbol.clone(), t)).or_insert(Bar {
            t,
            o: q.price,
            h: q.price,
            l: q.price,
            c: q.price,
            v: 0,
            n: 0,
        });
        bar.h = bar.h.max(q.price);
        bar.l = bar.l.min(q.price);
        bar.c = q.price;
        bar.v += traded;
        bar.n += 1;
    }
    bars
}

/// The server's 1 s bars are exactly those computed from the updates a client received, for
/// every second the client saw whole; HTTP and the `history` op answer the same bars.
#[tokio::test]
async fn bars_equal_what_clients_received() {
    let app = TestApp::spawn().await;
    let mut client = app.connect("/ws").await;
    let ServerMessage::Subscribed { .. } = subscribe_all(&mut client, None).await else {
        panic!("subscribed first");
    };
    let ServerMessage::Snapshot { quotes: snapshot } = client.recv_control().await else {
        panic!("then the snapshot");
    };
    let before: HashMap<String, u64> = snapshot
        .iter()
        .map(|q| (q.symbol.clone(), q.volume))
        .collect();
    let updates = record(&mut client, Duration::from_millis(2600)).await;
    let first_ms = updates.first().expect("updates came").ts;
    let last_ms = updates.last().expect("updates came").ts;
    // Whole seconds: after the first update's second, ended before the last update.
    let whole = |t: u64| t > first_ms && t + 1000 <= last_ms;
    let expected = bars_from(&updates, &before);
    let mut compared = 0;
    for symbol in app.symbols().await {
        let (status, body) =
            get_json(&app, &format!("/api/history/{symbol}?interval=1s&limit=60")).await;
        assert_eq!(status, 200);
        assert_eq!(body["symbol"], symbol);
        assert_eq!(body["interval"], "1s");
        let bars = bars_of(&body);
        assert!(bars.windows(2).all(|w| w[0].t < w[1].t), "oldest first");
        for bar in bars.iter().filter(|b| whole(b.t)) {
            assert_eq!(
                Some(bar),
                expected.get(&(symbol.clone(), bar.t)),
                "{symbol} at {}",
                bar.t
            );
            compared += 1;
        }
        // The op answers the same bars, but for the newest, which may have moved since.
        client
            .send_json(json!({"op": "history", "symbol": symbol, "interval": "1s", "limit": 60, "id": [symbol]}))
            .await;
        let ServerMessage::History {
            id,
            symbol: named,
            bars: by_op,
            ..
        } = client.recv_control().await
        else {
            panic!("a history reply");
        };
        assert_eq!((id, named), (Some(json!([symbol])), symbol.clone()));
        let settled = |b: &&Bar| b.t + 1000 <= last_ms;
        assert_eq!(
            by_op.iter().filter(settled).collect::<Vec<_>>(),
            bars.iter().filter(settled).collect::<Vec<_>>()
        );
    }
    assert!(
        compared >= app.symbols().await.len(),
        "compared {compared} bars"
    );
    app.stop().await;
}

/// A fresh server has a full day of 1 m bars and 15 minutes of 1 s bars (the generated past),
/// ending where the live market starts; bad requests get 400/404 with JSON errors; the ETag
/// answers 304 until a bar changes.
#[tokio::test]
async fn history_api_answers_a_full_past() {
    let app = TestApp::spawn().await;
    let (status, day) = get_json(&app, "/api/history/AAPL?interval=1m").await;
    assert_eq!(status, 200);
    let day = bars_of(&day);
    assert!(day.len() >= 1440, "{} minute bars", day.len());
    let (_, seconds) = get_json(&app, "/api/history/AAPL?interval=1s&limit=300").await;
    let seconds = bars_of(&seconds);
    assert_eq!(seconds.len(), 300);
    assert!(
        seconds
            .iter()
            .all(|b| b.l <= b.o.min(b.c) && b.h >= b.o.max(b.c) && b.n > 0)
    );
    let (_, default) = get_json(&app, "/api/history/AAPL").await;
    assert_eq!(default["interval"], "1m");

    for (path, status, code) in [
        ("/api/history/NOPE", 404, "unknown_symbol"),
        ("/api/history/AAPL?interval=5m", 400, "bad_request"),
        ("/api/history/AAPL?interval=1s&limit=0", 400, "bad_request"),
        (
            "/api/history/AAPL?interval=1s&limit=901",
            400,
            "bad_request",
        ),
        ("/api/history/AAPL?limit=-1", 400, "bad_request"),
    ] {
        let (got, body) = get_json(&app, path).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }

    let http = reqwest::Client::new();
    let first = http
        .get(app.url("/api/history/AAPL?interval=1s&limit=5"))
        .send()
        .await
        .unwrap();
    let etag = first.headers()["etag"].clone();
    let again = http
        .get(app.url("/api/history/AAPL?interval=1s&limit=5"))
        .header("If-None-Match", etag.clone())
        .send()
        .await
        .unwrap();
    // AAPL moves about 35 times a second here: 304 now and then, a new tag soon.
    let mut changed = again.status() == 200;
    for _ in 0..50 {
        if changed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let later = http
            .get(app.url("/api/history/AAPL?interval=1s&limit=5"))
            .header("If-None-Match", etag.clone())
            .send()
            .await
            .unwrap();
        changed = later.status() == 200 && later.headers()["etag"] != etag;
    }
    assert!(changed, "the ETag changes when a bar does");
    app.stop().await;
}

/// Every update of one connection, per symbol, in arrival order.
fn seqs_by_symbol(quotes: &[Quote], into: &mut HashMap<String, Vec<u64>>) {
    for q in quotes {
        into.entry(q.symbol.clone()).or_default().push(q.seq);
    }
}

/// A client that drops its connection and resumes with `since` gets exactly the updates it
/// missed (none missing, none repeated), before any live one, and `recovered` names every
/// symbol; a reference client that never disconnected saw the same seqs.
#[tokio::test]
async fn resume_replays_exactly_what_was_missed() {
    let app = TestApp::spawn().await;
    let mut reference = app.connect("/ws").await;
    subscribe_all(&mut reference, None).await;
    let mut client = app.connect("/ws").await;
    subscribe_all(&mut client, None).await;
    let ServerMessage::Snapshot { quotes } = client.recv_control().await else {
        panic!("a snapshot");
    };
    let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
    seqs_by_symbol(&quotes, &mut seen);
    let reference_task = tokio::spawn(async move {
        let ServerMessage::Snapshot { quotes } = reference.recv_control().await else {
            panic!("a snapshot");
        };
        let mut seen = HashMap::new();
        seqs_by_symbol(&quotes, &mut seen);
        seqs_by_symbol(
            &record(&mut reference, Duration::from_millis(3500)).await,
            &mut seen,
        );
        seen
    });
    seqs_by_symbol(
        &record(&mut client, Duration::from_millis(700)).await,
        &mut seen,
    );
    client.close(None).await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let since: serde_json::Map<String, Value> = seen
        .iter()
        .map(|(s, seqs)| (s.clone(), json!(seqs.last().unwrap())))
        .collect();
    let mut client = app.connect("/ws").await;
    let subscribed = subscribe_all(&mut client, Some(Value::Object(since.clone()))).await;
    let ServerMessage::Subscribed {
        id,
        symbols,
        recovered,
    } = subscribed
    else {
        panic!("subscribed, got {subscribed:?}");
    };
    assert_eq!(id, Some(json!("all")));
    let mut recovered = recovered.clone();
    recovered.sort();
    let mut all = symbols.clone();
    all.sort();
    assert_eq!(recovered, all, "every symbol is recovered");
    // Replayed frames first: the first update of every symbol continues its seq.
    let resumed = record(&mut client, Duration::from_millis(1500)).await;
    let mut firsts: HashMap<&str, u64> = HashMap::new();
    for q in &resumed {
        firsts.entry(q.symbol.as_str()).or_insert(q.seq);
    }
    for (symbol, first) in &firsts {
        assert_eq!(
            *first,
            since[*symbol].as_u64().unwrap() + 1,
            "{symbol} resumes right after"
        );
    }
    seqs_by_symbol(&resumed, &mut seen);
    let reference = reference_task.await.unwrap();
    for (symbol, seqs) in &seen {
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "{symbol}: a seq missing or repeated: {seqs:?}"
        );
        let theirs = &reference[symbol];
        let overlap: Vec<u64> = theirs
            .iter()
            .copied()
            .filter(|s| seqs.contains(s))
            .collect();
        assert!(
            overlap.len() > 20,
            "{symbol}: the two clients saw the same stream"
        );
        assert!(
            seqs.iter()
                .filter(|s| *s >= &theirs[0] && *s <= theirs.last().unwrap())
                .count()
                == overlap.len()
        );
    }
    app.stop().await;
}

/// With a ring of 5 updates, a client away for a second cannot be recovered: it gets a
/// snapshot, and `recovered` is empty.
#[tokio::test]
async fn resume_beyond_the_ring_gets_a_snapshot() {
    let settings = settings_from(
        &[
            IN_PROCESS,
            CLIENT_LIMITS_OFF,
            &[("TICKER__HISTORY__RESUME_UPDATES", "5")],
        ]
        .concat(),
    );
    let app = TestApp::spawn_with(settings).await;
    let mut client = app.connect("/ws").await;
    client
        .send_json(json!({"op": "subscribe", "symbols": ["AAPL"]}))
        .await;
    client.recv_control().await;
    let ServerMessage::Snapshot { quotes } = client.recv_control().await else {
        panic!("a snapshot");
    };
    let last = quotes[0].seq;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut again = app.connect("/ws").await;
    again
        .send_json(json!({"op": "subscribe", "symbols": ["AAPL"], "since": {"AAPL": last}}))
        .await;
    let ServerMessage::Subscribed { recovered, .. } = again.recv_control().await else {
        panic!("subscribed");
    };
    assert!(recovered.is_empty());
    let ServerMessage::Snapshot { quotes } = again.recv_control().await else {
        panic!("a snapshot instead");
    };
    assert!(quotes[0].seq > last + 5);
    app.stop().await;
}

/// Every reply carries its request's id: subscribed, unsubscribed, history, pong and errors,
/// even for a request that could not be read.
#[tokio::test]
async fn replies_carry_request_ids() {
    let app = TestApp::spawn().await;
    let mut client = app.connect("/ws").await;
    let id = |message: ServerMessage| match message {
        ServerMessage::Subscribed { id, .. }
        | ServerMessage::History { id, .. }
        | ServerMessage::Error { id, .. } => id,
        ServerMessage::Pong { id } => Some(id),
        other => panic!("not a reply: {other:?}"),
    };
    client
        .send_json(json!({"op": "subscribe", "symbols": ["AAPL", "NOPE"], "id": 1}))
        .await;
    assert_eq!(
        id(client.recv_control().await),
        Some(json!(1)),
        "unknown_symbol"
    );
    assert_eq!(
        id(client.recv_control().await),
        Some(json!(1)),
        "subscribed"
    );
    assert!(matches!(
        client.recv_control().await,
        ServerMessage::Snapshot { .. }
    ));
    client
        .send_json(json!({"op": "unsubscribe", "symbols": ["AAPL"], "id": "u"}))
        .await;
    assert_eq!(id(client.recv_control().await), Some(json!("u")));
    client.send_json(json!({"op": "history", "symbol": "MSFT", "interval": "1m", "limit": 3, "id": {"k": [1]}})).await;
    assert_eq!(id(client.recv_control().await), Some(json!({"k": [1]})));
    client
        .send_json(
            json!({"op": "history", "symbol": "MSFT", "interval": "1m", "limit": 0, "id": 4}),
        )
        .await;
    assert_eq!(id(client.recv_control().await), Some(json!(4)));
    client.send_json(json!({"op": "ping", "id": 5.5})).await;
    assert_eq!(id(client.recv_control().await), Some(json!(5.5)));
    client.send_json(json!({"op": "sell", "id": "x"})).await;
    let reply = client.recv_control().await;
    assert!(matches!(
        &reply,
        ServerMessage::Error {
            code: ErrorCode::BadRequest,
            ..
        }
    ));
    assert_eq!(id(reply), Some(json!("x")));
    client.send_json(json!({"op": "ping"})).await;
    assert_eq!(id(client.recv_control().await), Some(Value::Null));
    app.stop().await;
}

/// Bad `since` values get `bad_request` errors that say what is wrong; the connection stays up.
#[tokio::test]
async fn bad_since_values_are_refused_clearly() {
    let app = TestApp::spawn().await;
    let mut client = app.connect("/ws").await;
    let error = |message: ServerMessage| match message {
        ServerMessage::Error {
            code: ErrorCode::BadRequest,
            message,
            symbols,
            ..
        } => (message, symbols),
        other => panic!("expected bad_request, got {other:?}"),
    };
    // Malformed: nothing changes.
    for since in [
        json!({"AAPL": -1}),
        json!({"AAPL": "12"}),
        json!([1]),
        json!(7),
    ] {
        client
            .send_json(json!({"op": "subscribe", "symbols": ["AAPL"], "since": since}))
            .await;
        let (message, _) = error(client.recv_control().await);
        assert!(message.contains("since"), "{message}");
        assert!(message.contains("nothing was changed"), "{message}");
    }
    // A future seq, and a symbol not in the request: an error naming them, a snapshot anyway.
    client
        .send_json(json!({"op": "subscribe", "symbols": ["AAPL"], "since": {"AAPL": 1_000_000_000u64, "NOPE": 3, "MSFT": 1}}))
        .await;
    let (message, mut symbols) = error(client.recv_control().await);
    symbols.sort();
    assert_eq!(symbols, ["AAPL", "MSFT", "NOPE"], "{message}");
    assert!(message.contains("ahead"), "{message}");
    let ServerMessage::Subscribed {
        symbols, recovered, ..
    } = client.recv_control().await
    else {
        panic!("subscribed");
    };
    assert_eq!((symbols, recovered), (vec!["AAPL".to_string()], vec![]));
    assert!(
        matches!(client.recv_control().await, ServerMessage::Snapshot { quotes } if quotes.len() == 1)
    );
    client.send_json(json!({"op": "ping", "id": "alive"})).await;
    assert_eq!(
        client.recv_control().await,
        ServerMessage::Pong { id: json!("alive") }
    );
    app.stop().await;
}
