//! `ticker-bench compare` against the real server: push shows every update, polling misses
//! some and shows older prices, and both report what they cost.

mod support;

use std::process::Command;

use serde_json::Value;
use support::TestApp;

/// Two seconds of push versus 500 ms polling: push misses nothing and is fresher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_reports_push_fresher_than_polling() {
    let mut settings = support::test_settings();
    settings.feed.tick_interval_ms = ticker::settings::Millis::new(50);
    let app = TestApp::spawn_with(settings).await;
    let url = app.url("");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_ticker-bench"))
            .args(["compare", "--url", &url, "--duration-secs", "2"])
            .args([
                "--poll-interval-ms",
                "500",
                "--symbols",
                "AAPL,MSFT",
                "--json",
            ])
            .output()
            .expect("ticker-bench runs")
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON report");
    let (push, poll) = (&report["push"], &report["poll"]);
    assert_eq!(push["missed"], 0);
    assert!(push["shown"].as_u64().unwrap() > 20, "{report}");
    assert!(poll["missed"].as_u64().unwrap() > 0, "{report}");
    assert!(poll["requests"].as_u64().unwrap() >= 3, "{report}");
    assert!(
        poll["staleness_ms"]["mean"].as_f64() > push["staleness_ms"]["mean"].as_f64(),
        "{report}"
    );
    assert!(push["bytes"].as_u64().unwrap() > 0 && poll["bytes"].as_u64().unwrap() > 0);
    app.stop().await;
}

/// `ticker-bench poll` and `push` on the same server: the pollers' requests show up in the
/// server's own count, they miss updates that the push clients all receive, and their prices
/// are older.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_and_push_modes_report_the_same_load() {
    let mut settings = support::test_settings();
    settings.feed.tick_interval_ms = ticker::settings::Millis::new(50);
    let app = TestApp::spawn_with(settings).await;
    let addr = app.addr.to_string();
    let bench = move |args: Vec<String>| {
        let output = Command::new(env!("CARGO_BIN_EXE_ticker-bench"))
            .args(args)
            .output()
            .expect("ticker-bench runs");
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice::<Value>(&output.stdout).expect("one JSON report")
    };
    let poll_args: Vec<String> = [
        "poll",
        "--addr",
        &addr,
        "--clients",
        "4",
        "--interval-ms",
        "300",
        "--duration-secs",
        "2",
        "--json",
    ]
    .map(String::from)
    .to_vec();
    let push_args: Vec<String> = [
        "push",
        "--addr",
        &addr,
        "--clients",
        "4",
        "--warmup-secs",
        "0",
        "--duration-secs",
        "2",
        "--json",
    ]
    .map(String::from)
    .to_vec();
    let (poll, push) = tokio::task::spawn_blocking(move || (bench(poll_args), bench(push_args)))
        .await
        .unwrap();

    assert_eq!(poll["failed"], 0, "{poll}");
    let requests = poll["requests_per_sec"].as_f64().unwrap() * poll["seconds"].as_f64().unwrap();
    let served = app
        .metric(r#"ticker_poll_requests_total{status="200"}"#)
        .await
        + app
            .metric(r#"ticker_poll_requests_total{status="304"}"#)
            .await;
    assert!(
        (requests - served).abs() < 1.0,
        "the bench made {requests} requests, the server answered {served}"
    );
    assert!(poll["missed_per_sec"].as_f64().unwrap() > 0.0, "{poll}");
    assert!(
        poll["staleness_ms"]["p50"].as_f64().unwrap() > 50.0,
        "{poll}"
    );
    assert_eq!(push["held"], 4, "{push}");
    assert_eq!(push["seq_gaps"], 0, "{push}");
    assert!(
        push["frames_per_sec"].as_f64().unwrap() > 4.0 * 10.0,
        "{push}"
    );
    app.stop().await;
}
