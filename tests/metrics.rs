//! `GET /metrics`: the Prometheus exposition counts what really happened on the wire.

mod support;

use reqwest::StatusCode;
use reqwest::header::IF_NONE_MATCH;
use serde_json::json;
use support::TestApp;
use ticker::protocol::ServerMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A session, a poll pair and a refused upgrade show up in the counters the moment they end.
#[tokio::test]
async fn metrics_count_sessions_polls_and_rejections() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();

    let metrics = http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .expect("ASCII")
            .starts_with("application/openmetrics-text"),
    );
    let body = metrics.text().await.expect("a body");
    assert!(body.ends_with("# EOF\n"), "a complete exposition");

    let mut client = app.connect("/ws").await; // `connect` has read the welcome
    client
        .send_json(json!({"op": "subscribe", "symbols": ["*"]}))
        .await;
    let mut frames = 0;
    while frames < 5 {
        if let ServerMessage::Quotes { .. } = client.recv().await {
            frames += 1;
        }
    }
    assert_eq!(app.metric("ticker_connections_open").await, 1.0);
    client
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await;
    app.until_no_sessions().await;

    let first = http.get(app.url("/api/quotes")).send().await.expect("poll");
    assert_eq!(first.status(), StatusCode::OK);
    // `If-None-Match: *` matches any current representation: a 304 however fast the feed is.
    let second = http
        .get(app.url("/api/quotes"))
        .header(IF_NONE_MATCH, "*")
        .send()
        .await
        .expect("poll");
    assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
    let refused = http.get(app.url("/ws")).send().await.expect("a plain GET");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let text = http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a body");
    let value = |series: &str| support::metric_value(&text, series);
    assert_eq!(value("ticker_connections_opened_total"), 1.0);
    assert_eq!(value("ticker_connections_open"), 0.0);
    assert_eq!(
        value(r#"ticker_connections_closed_total{code="1000"}"#),
        1.0
    );
    assert!(
        value("ticker_frames_sent_total") >= 5.0 + 2.0,
        "welcome, subscribed, snapshot, quotes"
    );
    assert!(value("ticker_quotes_delivered_total") >= 5.0);
    assert!(value("ticker_ws_sent_bytes_total") > 100.0);
    assert_eq!(value("ticker_messages_received_total"), 1.0);
    assert!(value("ticker_ws_received_bytes_total") > 10.0);
    assert!(value("ticker_tick_to_send_seconds_count") >= 1.0);
    assert!(value("ticker_feed_ticks_total") >= 5.0);
    assert_eq!(
        value(r#"ticker_upgrades_rejected_total{reason="bad_request"}"#),
        1.0
    );
    assert_eq!(value(r#"ticker_poll_requests_total{status="200"}"#), 1.0);
    assert_eq!(value(r#"ticker_poll_requests_total{status="304"}"#), 1.0);
    app.stop().await;
}

/// Close codes that clients choose do not become series of their own: 50 clients closing with
/// 50 different private codes add two series, `3xxx` and `4xxx`; each still gets its own code
/// echoed.
#[tokio::test]
async fn client_close_codes_add_a_bounded_number_of_series() {
    let app = TestApp::spawn().await;
    for i in 0..50u16 {
        let code = if i % 2 == 0 { 3000 + i } else { 4000 + i };
        let mut client = app.connect("/ws").await;
        client
            .close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: "".into(),
            }))
            .await;
        assert_eq!(client.recv_close().await, code);
    }
    app.until_no_sessions().await;
    let text = reqwest::get(app.url("/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a body");
    let mut series: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("ticker_connections_closed_total{"))
        .collect();
    series.sort_unstable();
    assert_eq!(
        series,
        [
            r#"ticker_connections_closed_total{code="3xxx"} 25"#,
            r#"ticker_connections_closed_total{code="4xxx"} 25"#,
        ]
    );
    app.stop().await;
}

/// The process's own figures (descriptors against their limit, memory, CPU) and the build are
/// exported, read from `/proc` at scrape time.
#[tokio::test]
async fn process_figures_and_build_are_exported() {
    let app = TestApp::spawn().await;
    let _client = app.connect("/ws").await;
    let fds = app.metric("ticker_process_open_fds").await;
    let limit = app.metric("ticker_process_max_fds").await;
    assert!(fds >= 3.0 && fds < limit, "{fds} of {limit}");
    assert!(app.metric("ticker_process_resident_memory_bytes").await > 1_000_000.0);
    assert!(app.metric("ticker_process_cpu_seconds_total").await > 0.0);
    assert_eq!(
        app.metric(&format!(
            "ticker_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        ))
        .await,
        1.0
    );
    app.stop().await;
}
