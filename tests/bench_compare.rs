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
    settings.feed.tick_interval_ms = 50;
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
