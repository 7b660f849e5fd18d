//! gzip and brotli over HTTP: the polling API and the dashboard's files are compressed when the
//! client's `Accept-Encoding` allows it and decode to exactly the plain body; every variant says
//! `Vary: Accept-Encoding` and carries the same (weak) ETag, which revalidates to a bodiless 304
//! whatever the encoding; `Cache-Control` stays `no-cache`. `/ws` and `/metrics` are untouched.

mod support;

use std::io::Read;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use support::{TestApp, connect_ws, test_settings};
use ticker::protocol::ServerMessage;
use ticker::settings::Millis;

/// A server whose quotes do not move during the test, so that two requests see one state.
async fn still_server() -> TestApp {
    let mut settings = test_settings();
    settings.feed.tick_interval_ms = Millis::new(600_000);
    TestApp::spawn_with(settings).await
}

/// `GET path` with this `Accept-Encoding` (none if empty) and `If-None-Match` (if given).
async fn fetch(
    app: &TestApp,
    path: &str,
    accept: &str,
    if_none_match: Option<&str>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = reqwest::Client::new().get(app.url(path));
    if !accept.is_empty() {
        request = request.header("accept-encoding", accept);
    }
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("a body").to_vec();
    (status, headers, body)
}

/// Whether the answer has one `Vary` header and it names `Accept-Encoding` (CORS may name
/// more on `/api`).
fn varies_on_encoding(headers: &HeaderMap) -> bool {
    headers.get_all("vary").iter().count() == 1
        && header(headers, "vary")
            .split(',')
            .any(|n| n.trim().eq_ignore_ascii_case("accept-encoding"))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map_or("", |v| v.to_str().expect("an ASCII header"))
}

fn decode(encoding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .expect("valid gzip"),
        "br" => brotli::Decompressor::new(body, 4096)
            .read_to_end(&mut out)
            .expect("valid brotli"),
        other => panic!("unexpected encoding {other}"),
    };
    out
}

/// Each of the API's answers and the dashboard's files: plain without `Accept-Encoding`,
/// gzip or brotli as asked, the same bytes once decoded, the same ETag, `Vary` on all, and a
/// 304 without a body for the ETag, asked with or without compression.
#[tokio::test]
async fn api_and_files_are_compressed_for_clients_that_accept_it() {
    let app = still_server().await;
    for path in [
        "/api/quotes",
        "/api/quotes/AAPL",
        "/api/symbols",
        "/",
        "/app.js",
        "/style.css",
        "/vendor/uPlot.iife.min.js",
    ] {
        let (status, plain_headers, plain) = fetch(&app, path, "", None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(header(&plain_headers, "content-encoding"), "", "{path}");
        assert_eq!(
            header(&plain_headers, "cache-control"),
            "no-cache",
            "{path}"
        );
        assert!(
            varies_on_encoding(&plain_headers),
            "{path}: {plain_headers:?}"
        );
        let etag = header(&plain_headers, "etag").to_owned();
        let is_quote = path.starts_with("/api/quotes");
        if is_quote || !path.starts_with("/api") {
            assert!(etag.starts_with("W/\""), "{path}: weak ETag {etag}");
        }
        for (accept, encoding) in [
            ("gzip", "gzip"),
            ("br", "br"),
            ("gzip, deflate, br", "br"),
            ("gzip;q=1.0, br;q=0.5", "gzip"),
        ] {
            let (status, headers, body) = fetch(&app, path, accept, None).await;
            assert_eq!(status, StatusCode::OK, "{path} {accept}");
            assert_eq!(
                header(&headers, "content-encoding"),
                encoding,
                "{path} {accept}"
            );
            assert!(varies_on_encoding(&headers), "{path} {accept}: {headers:?}");
            assert_eq!(header(&headers, "etag"), etag, "{path} {accept}");
            assert_eq!(header(&headers, "cache-control"), "no-cache", "{path}");
            assert_eq!(decode(encoding, &body), plain, "{path} {accept}");
            eprintln!("{path} {accept}: {} of {} bytes", body.len(), plain.len());
            if plain.len() > 1000 {
                // actix's fast levels (gzip 1, brotli 3): cheap per request, still well worth it.
                assert!(
                    body.len() * 10 < plain.len() * 7,
                    "{path} {accept}: {} of {} bytes",
                    body.len(),
                    plain.len()
                );
            }
        }
        if etag.is_empty() {
            continue;
        }
        for accept in ["", "gzip", "br"] {
            let (status, headers, body) = fetch(&app, path, accept, Some(&etag)).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{path} {accept}");
            assert!(body.is_empty(), "{path} {accept}: a 304 has no body");
            assert_eq!(header(&headers, "etag"), etag, "{path} {accept}");
            assert_eq!(header(&headers, "content-encoding"), "", "{path} {accept}");
            assert!(varies_on_encoding(&headers), "{path} {accept}: {headers:?}");
        }
        // A client that kept the validator without its `W/` still revalidates.
        let strong = etag.trim_start_matches("W/");
        let (status, _, _) = fetch(&app, path, "gzip", Some(strong)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path} {strong}");
    }
    app.stop().await;
}

/// `/metrics` and the health checks stay plain for scrapers and probes, and a WebSocket upgrade
/// that offers gzip is a normal session.
#[tokio::test]
async fn metrics_health_and_websocket_are_not_compressed() {
    let app = still_server().await;
    for path in ["/metrics", "/healthz", "/readyz"] {
        let (status, headers, body) = fetch(&app, path, "gzip, br", None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(header(&headers, "content-encoding"), "", "{path}");
        assert!(!body.is_empty(), "{path}");
    }
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            app.ws_url("/ws?symbols=AAPL"),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("accept-encoding", "gzip, br".parse().unwrap());
    let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.status(), 101);
    assert!(response.headers().get("content-encoding").is_none());
    drop(ws);
    let (mut client, _) = connect_ws(app.addr, "/ws?symbols=AAPL").await;
    assert!(matches!(
        client.recv().await,
        ServerMessage::Subscribed { .. }
    ));
    app.stop().await;
}
