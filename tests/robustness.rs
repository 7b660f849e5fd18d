//! Bad input of any kind gets an error or a close code, never a panic, and other clients never
//! notice: a well-behaved client sees every update, with no seq gap, throughout.

mod support;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use support::{Client, OP_BINARY, OP_CONTINUATION, OP_TEXT, TestApp};
use ticker::protocol::{ErrorCode, ServerMessage};

/// A random request: truncated JSON, wrong types, unknown ops, odd symbols, deep nesting.
fn garbage(rng: &mut StdRng) -> String {
    let symbols = [
        "AAPL", "*", "", " msft ", "NOPE", "💥", "BRK.B", "a\"b", "\u{0}",
    ];
    let pick = |rng: &mut StdRng| Value::from(symbols[rng.random_range(0..symbols.len())]);
    let value = match rng.random_range(0..9) {
        0 => json!({"op": "subscribe", "symbols": [pick(rng), pick(rng)]}),
        1 => json!({"op": "unsubscribe", "symbols": [pick(rng)]}),
        2 => json!({"op": "subscribe", "symbols": pick(rng)}),
        3 => json!({"op": ["subscribe"], "symbols": []}),
        4 => json!({"op": "ping", "id": {"deep": [[[[[[[[1]]]]]]]]}}),
        5 => json!({"op": "sell", "qty": rng.random::<i64>()}),
        6 => json!([1, "two", null]),
        7 => json!(rng.random::<f64>()),
        _ => json!({"op": "subscribe", "symbols": [1, null, true]}),
    };
    let text = value.to_string();
    if rng.random_bool(0.3) {
        let cut = rng.random_range(0..=text.len());
        text.char_indices()
            .take_while(|(i, _)| *i < cut)
            .map(|(_, c)| c)
            .collect()
    } else {
        text
    }
}

/// 500 malformed requests and a series of illegal frames leave the server serving everyone:
/// the offender gets errors (and stays usable), the raw offenders get close codes, and a
/// bystander receives every update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_contained() {
    let app = TestApp::spawn().await;
    let bystander = app.connect("/ws?symbols=*").await;
    let (done, done_at) = tokio::sync::oneshot::channel();
    let bystander = tokio::spawn(support::watch_gapless(bystander, done_at));

    let mut offender = app.connect("/ws").await;
    let mut rng = StdRng::seed_from_u64(2026);
    for round in 0..500 {
        offender.send_text(&garbage(&mut rng)).await;
        if round % 50 == 0 {
            raw_abuse(&app, round).await;
        }
    }
    offender.send_json(json!({"op": "ping", "id": "end"})).await;
    let errors = drain_until_pong(&mut offender).await;
    assert!(
        errors > 100,
        "most garbage was answered with errors: {errors}"
    );

    let every = app.symbol_count().await;
    done.send(ticker::clock::now_ms()).unwrap();
    let (frames, symbols) = bystander.await.expect("the bystander saw no gap");
    // Coverage is by construction: it read until a quote stamped after the abuse ended.
    assert!(
        frames > 0 && symbols == every,
        "{frames} frames, {symbols} symbols"
    );
    app.stop().await;
}

/// Counts `error` replies until the pong; anything else must be a legitimate reply.
async fn drain_until_pong(client: &mut Client) -> usize {
    let mut errors = 0;
    loop {
        match client.recv().await {
            ServerMessage::Pong { id } if id == json!("end") => return errors,
            ServerMessage::Error { code, .. } => {
                assert!(matches!(
                    code,
                    ErrorCode::BadRequest | ErrorCode::UnknownSymbol
                ));
                errors += 1;
            }
            ServerMessage::Subscribed { .. }
            | ServerMessage::Snapshot { .. }
            | ServerMessage::Quotes { .. }
            | ServerMessage::Pong { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Connections that break the framing rules; each must get its close code.
async fn raw_abuse(app: &TestApp, round: usize) {
    let mut raw = app.raw("/ws").await;
    let expected = match round / 50 % 4 {
        0 => {
            raw.send_frame(OP_BINARY, &[0; 64], true).await;
            1003
        }
        1 => {
            raw.send_frame(OP_TEXT, b"\xC0\xAF", true).await;
            1007
        }
        2 => {
            raw.send_frame(OP_CONTINUATION, b"x", true).await;
            1002
        }
        _ => {
            raw.send_frame(OP_TEXT, &vec![b'a'; 70_000], true).await;
            1009
        }
    };
    assert_eq!(
        raw.read_until_close().await.0,
        Some(expected),
        "round {round}"
    );
}
