//! Reading the Prometheus exposition of `GET /metrics`.

use std::net::SocketAddr;

/// The value of `series` in a Prometheus text exposition, 0 when absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().expect("a numeric sample"))
}

/// The value of one series in the `GET /metrics` of the server at `addr`, 0 when absent.
pub async fn metric(addr: SocketAddr, series: &str) -> f64 {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a text body");
    metric_value(&text, series)
}
