//! Asking any running server (in-process or a child process) over HTTP: the symbols it serves
//! (tests ask rather than assume the default config).

use std::net::SocketAddr;

use serde_json::Value;

/// The symbols the server at `addr` lists (`GET /api/symbols`), in its order.
pub async fn symbols(addr: SocketAddr) -> Vec<String> {
    let infos: Vec<Value> = reqwest::get(format!("http://{addr}/api/symbols"))
        .await
        .expect("GET /api/symbols")
        .json()
        .await
        .expect("a JSON array of symbol infos");
    infos
        .iter()
        .map(|info| {
            info["symbol"]
                .as_str()
                .expect("each has a symbol")
                .to_owned()
        })
        .collect()
}

/// How many symbols the server at `addr` lists (`GET /api/symbols`).
pub async fn symbol_count(addr: SocketAddr) -> usize {
    symbols(addr).await.len()
}
