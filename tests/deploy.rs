//! The files operators install from `deploy/` say what the server does: the Prometheus rules and
//! the Grafana dashboard name only series a running server exposes, and the systemd unit runs
//! commands the binary accepts.

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use support::TestApp;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every series name a server's `GET /metrics` has once each labelled family has been used (a
/// session opened and closed, an upgrade refused, a poll), from its `# TYPE` lines: a counter's
/// samples end in `_total`, a histogram's in `_bucket`, `_sum` and `_count`.
async fn exposed_series() -> BTreeSet<String> {
    let app = TestApp::spawn().await;
    let mut client = app.connect("/ws").await;
    client.close(None).await;
    app.until_no_sessions().await;
    let refused = reqwest::get(app.url("/ws")).await.expect("GET /ws");
    assert!(
        refused.status().is_client_error(),
        "a plain GET /ws is refused"
    );
    let polled = reqwest::get(app.url("/api/quotes"))
        .await
        .expect("GET /api/quotes");
    assert_eq!(polled.status().as_u16(), 200);
    let text = reqwest::get(app.url("/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a text body");
    let mut series = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        series.extend(suffixes.iter().map(|s| format!("{name}{s}")));
    }
    assert!(series.len() > 10, "a full exposition:\n{text}");
    series
}

/// The `ticker_…` names in a PromQL expression (label names and values never start so).
fn ticker_names(expr: &str) -> Vec<&str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with("ticker_"))
        .collect()
}

/// Every alert in `deploy/prometheus/alerts.yml` is complete (name, expression, severity,
/// summary), and every `ticker_` series its expression reads is one the server exposes.
#[tokio::test]
async fn alert_rules_read_only_series_the_server_exposes() {
    let text = std::fs::read_to_string(format!("{ROOT}/deploy/prometheus/alerts.yml"))
        .expect("deploy/prometheus/alerts.yml");
    let rules: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    let exposed = exposed_series().await;
    let mut names = BTreeSet::new();
    let mut read = BTreeSet::new();
    for group in rules["groups"].as_sequence().expect("a groups list") {
        for rule in group["rules"].as_sequence().expect("a rules list") {
            let name = rule["alert"].as_str().expect("every rule is an alert");
            assert!(names.insert(name.to_owned()), "{name} appears once");
            let expr = rule["expr"].as_str().expect("an expression");
            assert!(rule["labels"]["severity"].is_string(), "{name}: a severity");
            assert!(
                rule["annotations"]["summary"].is_string(),
                "{name}: a summary"
            );
            let series = ticker_names(expr);
            assert!(
                !series.is_empty() || expr.starts_with("up{"),
                "{name} reads a ticker series"
            );
            for series in series {
                assert!(
                    exposed.contains(series),
                    "{name} reads {series}, which GET /metrics never has; it has {exposed:?}"
                );
                read.insert(series.to_owned());
            }
        }
    }
    // What docs/operations.md says to alert on.
    for wanted in [
        "ticker_feed_last_update_age_seconds",
        "ticker_tick_to_send_seconds_bucket",
        "ticker_slow_client_closes_total",
        "ticker_quotes_conflated_total",
        "ticker_connections_closed_total",
        "ticker_connections_opened_total",
        "ticker_upgrades_rejected_total",
        "ticker_rate_limit_closes_total",
        "ticker_connections_open",
    ] {
        assert!(read.contains(wanted), "no alert reads {wanted}");
    }
}

/// Every `ticker_` series anywhere in `deploy/grafana/ticker.json` (panel queries and the node
/// variable) is one the server exposes, and every panel has a query.
#[tokio::test]
async fn dashboard_reads_only_series_the_server_exposes() {
    let text = std::fs::read_to_string(format!("{ROOT}/deploy/grafana/ticker.json"))
        .expect("deploy/grafana/ticker.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let panels = dashboard["panels"].as_array().expect("a panels list");
    for panel in panels {
        let title = panel["title"].as_str().expect("a title");
        let targets = panel["targets"].as_array().map_or(0, Vec::len);
        assert!(targets > 0, "panel {title} has a query");
    }
    let exposed = exposed_series().await;
    let named: BTreeSet<&str> = ticker_names(&text).into_iter().collect();
    for series in &named {
        assert!(
            exposed.contains(*series),
            "the dashboard reads {series}, which GET /metrics never has"
        );
    }
    for wanted in [
        "ticker_connections_open",
        "ticker_frames_sent_total",
        "ticker_ws_sent_bytes_total",
        "ticker_quotes_conflated_total",
        "ticker_slow_client_closes_total",
        "ticker_idle_closes_total",
        "ticker_upgrades_rejected_total",
        "ticker_tick_to_send_seconds_bucket",
        "ticker_feed_last_update_age_seconds",
        "ticker_poll_requests_total",
    ] {
        assert!(named.contains(wanted), "no panel shows {wanted}");
    }
}

/// The value of every `key=` line of a unit file, in order.
fn directives<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// `deploy/ticker.service` checks the settings it serves with (`ExecStartPre` is `ExecStart`
/// with `check-config` for `serve`), and that check passes with the binary and the installed
/// `config/default.toml`; it is unprivileged and hardened; `systemd-analyze verify` accepts it
/// where systemd exists.
#[test]
fn systemd_unit_checks_the_settings_it_serves_with() {
    let unit = std::fs::read_to_string(format!("{ROOT}/deploy/ticker.service"))
        .expect("deploy/ticker.service");
    let [check] = directives(&unit, "ExecStartPre")[..] else {
        panic!("one ExecStartPre");
    };
    let [start] = directives(&unit, "ExecStart")[..] else {
        panic!("one ExecStart");
    };
    assert_eq!(start.replace(" serve", " check-config"), check);
    for (key, value) in [
        ("Restart", "on-failure"),
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
    ] {
        assert_eq!(directives(&unit, key), [value], "{key}");
    }
    assert!(!directives(&unit, "LimitNOFILE").is_empty());

    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("ticker.toml");
    std::fs::copy(format!("{ROOT}/config/default.toml"), &config).expect("install the settings");
    let binary = env!("CARGO_BIN_EXE_ticker");
    let check = check.replace("/usr/local/bin/ticker", binary).replace(
        "/etc/ticker/ticker.toml",
        config.to_str().expect("a UTF-8 path"),
    );
    let mut words = check.split_whitespace();
    let output = Command::new(words.next().expect("a program"))
        .args(words)
        .env_remove("TICKER_ENV")
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{check} fails: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let verify = Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !verify.is_ok_and(|s| s.success()) {
        eprintln!("systemd-analyze not available: checked the unit's commands only");
        return;
    }
    // verify wants the programs to exist: the same unit, with the binary where cargo built it.
    let copy = dir.path().join("ticker.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/ticker", binary)).expect("write");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze runs");
    assert!(
        output.status.success(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
