//! Cluster mode with a real `nats-server` started on a free port and the real `ticker` binary as
//! publisher and edges, run with the same commands and settings as `docker-compose.yml` (checked

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use async_nats::Client as NatsClient;
use serde_json::{Value, json};
use support::cluster::{Cluster, Roles, edge, publisher};
use support::prereq::{self, NATS_SERVER};
use support::{
    Client, Event, PATIENCE, SeqTracker, connect_ws, symbol_count, terminate, wait_ready,
    wait_unready,
};
use ticker::protocol::history::Bar;
use ticker::protocol::quote::Quote;
use ticker::protocol::{Liveness, ServerMessage};

fn main() {
    let trials = vec![
        prereq::trial(
            "two_edges_serve_the_same_market",
            &[NATS_SERVER],
            two_edges_serve_the_same_market,
        ),
        prereq::trial(
            "broker_loss_goes_stale_and_recovers",
            &[NATS_SERVER],
            broker_loss_goes_stale_and_recovers,
        ),
        prereq::trial(
            "publisher_restart_keeps_seq_monotonic",
            &[NATS_SERVER],
            publisher_restart_keeps_seq_monotonic,
        ),
        prereq::trial(
            "killed_edge_clients_move_to_the_other",
            &[NATS_SERVER],
            killed_edge_clients_move_to_the_other,
        ),
        prereq::trial(
            "duplicate_and_old_messages_never_reach_clients",
            &[NATS_SERVER],
            duplicate_and_old_messages_never_reach_clients,
        ),
        prereq::trial(
            "a_late_edge_backfills_the_same_history",
            &[NATS_SERVER],
            a_late_edge_backfills_the_same_history,
        ),
        prereq::trial(
            "sigterm_stops_everything_without_a_broker",
            &[NATS_SERVER],
            sigterm_stops_everything_without_a_broker,
        ),
    ];
    prereq::run(trials)
}

/// Subscribes to `symbols` and reads the `subscribed` and `snapshot` answers.
async fn subscribe(client: &mut Client, symbols: &str, seqs: &mut SeqTracker) {
    client
        .send_json(json!({"op": "subscribe", "symbols": [symbols]}))
        .await;
    loop {
        match client.recv_control().await {
            ServerMessage::Subscribed { .. } => {}
            ServerMessage::Snapshot { quotes } => return seqs.snapshot(&quotes),
            ServerMessage::Status { .. } => {}
            other => panic!("expected subscribed and snapshot, got {other:?}"),
        }
    }
}

/// Reads until `n` quotes frames arrived; returns their quotes, checked for monotonic seq.
async fn quotes(client: &mut Client, n: usize, seqs: &mut SeqTracker) -> Vec<Quote> {
    let mut all = Vec::new();
    for _ in 0..n {
        match client.recv().await {
            ServerMessage::Quotes { quotes } => {
                seqs.update(&quotes);
                all.extend(quotes);
            }
            other => panic!("expected quotes, got {other:?}"),
        }
    }
    all
}

fn node_of(welcome: &ServerMessage) -> &str {
    match welcome {
        ServerMessage::Welcome { node, .. } => node,
        other => panic!("not a welcome: {other:?}"),
    }
}

/// Two edges behind one publisher push the same quote for every (symbol, seq) they both send,
/// name their nodes in `welcome`, and poll the same state with the same ETag.
async fn two_edges_serve_the_same_market() {
    let cluster = Cluster::start(2).await;
    let (addr_a, addr_b) = (cluster.addr(0), cluster.addr(1));
    let mut clients = Vec::new();
    for (addr, node) in [(addr_a, "edge-a"), (addr_b, "edge-b")] {
        let (mut client, welcome) = connect_ws(addr, "/ws").await;
        assert_eq!(node_of(&welcome), node);
        let mut seqs = SeqTracker::default();
        subscribe(&mut client, "*", &mut seqs).await;
        clients.push((client, seqs));
    }
    let mut seen: Vec<HashMap<(String, u64), Quote>> = Vec::new();
    for (client, seqs) in &mut clients {
        let got = quotes(client, 20, seqs).await;
        seen.push(
            got.into_iter()
                .map(|q| ((q.symbol.clone(), q.seq), q))
                .collect(),
        );
    }
    // Both clients listened at overlapping times; whatever both saw must be identical.
    let (a, b) = (&seen[0], &seen[1]);
    let common: Vec<_> = a.keys().filter(|k| b.contains_key(*k)).collect();
    assert!(!common.is_empty(), "the edges sent overlapping quotes");
    for key in common {
        assert_eq!(a[key], b[key], "edges disagree on {key:?}");
    }
    // Polling: both edges serve the same body, given a moment between two ticks.
    let every = symbol_count(addr_a).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (body_a, etag_a) = poll(addr_a).await;
        let (body_b, etag_b) = poll(addr_b).await;
        if body_a == body_b {
            assert_eq!(body_a["quotes"].as_array().map(Vec::len), Some(every));
            // So a conditional poll that the balancer sends to the other edge still gets 304.
            assert_eq!(etag_a, etag_b, "the same state has the same validator");
            break;
        }
        assert!(Instant::now() < deadline, "polls never agreed");
    }
}

/// `GET /api/history/{symbol}?interval=…`: the bars.
async fn history(addr: SocketAddr, symbol: &str, interval: &str) -> Vec<Bar> {
    let body: Value = reqwest::get(format!(
        "http://{addr}/api/history/{symbol}?interval={interval}"
    ))
    .await
    .expect("GET /api/history")
    .json()
    .await
    .expect("JSON body");
    serde_json::from_value(body["bars"].clone()).expect("bars")
}

/// An edge started a minute after another backfills its history from the publisher: once
/// warmed, both answer `/api/history` with the same bars, the minute before the late one
/// started included, for every symbol and both intervals.
async fn a_late_edge_backfills_the_same_history() {
    let mut cluster = Cluster::start(1).await;
    let early = cluster.addr(0);
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    let late_started = ticker::clock::now_ms();
    let (process, late) = edge(&cluster.nats, "edge-late", &[]).await;
    cluster.edges.push(support::cluster::Edge {
        node: "edge-late".into(),
        addr: late,
        process,
    });
    let symbols = support::symbols(early).await;
    let last = symbols.last().expect("symbols").clone();
    // Warmed: the last symbol backfilled (one request per symbol, in order) has the day.
    let deadline = Instant::now() + PATIENCE;
    while history(late, &last, "1m").await.len() < 1440 {
        assert!(Instant::now() < deadline, "the late edge never backfilled");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for symbol in &symbols {
        for (interval, width) in [("1s", 1000), ("1m", 60_000)] {
            // Settled: both edges have quotes stamped after it, and take them in order.
            let settled_before = ticker::clock::now_ms() - 1000;
            for addr in [early, late] {
                while poll(addr).await.0["ts"].as_u64().unwrap_or(0) <= settled_before + 500 {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
            let (a, b) = (
                history(early, symbol, interval).await,
                history(late, symbol, interval).await,
            );
            let settled = |bars: &[Bar]| -> Vec<Bar> {
                bars.iter()
                    .filter(|bar| bar.t + width < settled_before)
                    .copied()
                    .collect()
            };
            // The oldest bars leave each ring when its newest bar arrives: compare from the
            // newer of the two oldest.
            let from = a
                .first()
                .map_or(0, |x| x.t)
                .max(b.first().map_or(0, |x| x.t));
            let (a, b) = (settled(&a), settled(&b));
            let (a, b): (Vec<Bar>, Vec<Bar>) = (
                a.into_iter().filter(|x| x.t >= from).collect(),
                b.into_iter().filter(|x| x.t >= from).collect(),
            );
            if let Some(at) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
                panic!(
                    "{symbol} {interval} bars differ at {at} of {}/{}: early {:?}, late {:?}",
                    a.len(),
                    b.len(),
                    a.get(at.saturating_sub(1)..(at + 2).min(a.len())),
                    b.get(at.saturating_sub(1)..(at + 2).min(b.len())),
                );
            }
            if interval == "1s" {
                let before_late = a.iter().filter(|bar| bar.t + 5000 < late_started).count();
                assert!(
                    before_late >= 50,
                    "{symbol}: {before_late} bars of the overlap"
                );
            }
        }
    }
}

/// `GET /api/quotes`: the body and its ETag.
async fn poll(addr: SocketAddr) -> (Value, String) {
    let response = reqwest::get(format!("http://{addr}/api/quotes"))
        .await
        .expect("poll");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    (response.json().await.expect("JSON body"), etag)
}

/// NATS down: the socket stays open, clients hear `stale`, `/readyz` is 503; NATS back: `live`,
/// and quotes flow again with seq above everything before, with nothing restarted.
async fn broker_loss_goes_stale_and_recovers() {
    let mut cluster = Cluster::start_with(1, Roles::seed("11")).await;
    let addr = cluster.addr(0);
    let (mut client, _) = connect_ws(addr, "/ws").await;
    let mut seqs = SeqTracker::default();
    subscribe(&mut client, "*", &mut seqs).await;
    quotes(&mut client, 3, &mut seqs).await;

    cluster.nats.stop();
    let since = loop {
        match client.recv().await {
            ServerMessage::Quotes { quotes } => seqs.update(&quotes),
            ServerMessage::Status {
                feed: Liveness::Stale,
                since: Some(since),
                ..
            } => break since,
            other => panic!("expected quotes or stale, got {other:?}"),
        }
    };
    assert!(since > 0);
    wait_unready(addr).await;
    client.send_json(json!({"op": "ping", "id": 1})).await;
    assert_eq!(client.recv().await, ServerMessage::Pong { id: json!(1) });
    // A client arriving now hears about it right after its welcome.
    let (mut late, _) = connect_ws(addr, "/ws").await;
    assert!(matches!(
        late.recv().await,
        ServerMessage::Status {
            feed: Liveness::Stale,
            ..
        }
    ));

    cluster.nats.restart();
    loop {
        match client.recv().await {
            ServerMessage::Status {
                feed: Liveness::Live,
                since: None,
                ..
            } => break,
            ServerMessage::Quotes { quotes } => seqs.update(&quotes),
            other => panic!("expected live, got {other:?}"),
        }
    }
    wait_ready(addr).await;
    quotes(&mut client, 5, &mut seqs).await;
}

/// A publisher killed: the edge, still connected to NATS, turns stale after
/// `nats.stale_after_ms` of silence. A new publisher with another seed: live again, and every
/// symbol's seq keeps rising on the same connection.
async fn publisher_restart_keeps_seq_monotonic() {
    let silence = [("TICKER__NATS__STALE_AFTER_MS", "1000")];
    let mut cluster = Cluster::start_with(
        1,
        Roles {
            seed: "1",
            edge_env: &silence,
            ..Roles::default()
        },
    )
    .await;
    let addr = cluster.addr(0);
    let (mut client, _) = connect_ws(addr, "/ws").await;
    let mut seqs = SeqTracker::default();
    subscribe(&mut client, "*", &mut seqs).await;
    quotes(&mut client, 10, &mut seqs).await;

    cluster.publisher.kill();
    until_status(&mut client, Liveness::Stale, &mut seqs).await;
    wait_unready(addr).await;
    // Everything the old run sent has arrived; all that follows comes from the new run.
    let before = seqs.last.clone();
    let _second = publisher(&cluster.nats, "2").await;
    until_status(&mut client, Liveness::Live, &mut seqs).await;
    let after = quotes(&mut client, 10, &mut seqs).await;
    for q in &after {
        assert!(q.seq > before[&q.symbol], "{} restarted its seq", q.symbol);
    }
}

/// Reads quotes (checking their seq) until a `status` with `feed`.
async fn until_status(client: &mut Client, feed: Liveness, seqs: &mut SeqTracker) {
    loop {
        match client.recv().await {
            ServerMessage::Quotes { quotes } => seqs.update(&quotes),
            ServerMessage::Status { feed: got, .. } if got == feed => return,
            other => panic!("expected quotes or a {feed:?} status, got {other:?}"),
        }
    }
}

/// An edge killed: its client is disconnected, reconnects to the other edge and gets a full
/// snapshot there.
async fn killed_edge_clients_move_to_the_other() {
    let mut cluster = Cluster::start_with(2, Roles::seed("3")).await;
    let (addr_a, addr_b) = (cluster.addr(0), cluster.addr(1));
    let (mut client, _) = connect_ws(addr_a, "/ws?symbols=*").await;
    let mut seqs = SeqTracker::default();
    quotes_after_snapshot(&mut client, &mut seqs).await;
    cluster.edges[0].process.kill();
    // Whatever was in flight, then the end of the connection (a Close or just EOF).
    while let Event::Message(_) = client.next_event().await {}
    let (mut client, welcome) = connect_ws(addr_b, "/ws?symbols=*").await;
    assert_eq!(node_of(&welcome), "edge-b");
    let snapshot = quotes_after_snapshot(&mut client, &mut SeqTracker::default()).await;
    assert_eq!(
        snapshot.len(),
        symbol_count(addr_b).await,
        "a full snapshot on the other edge"
    );
}

/// Reads `subscribed` and the snapshot that follows `?symbols=`; returns the snapshot.
async fn quotes_after_snapshot(client: &mut Client, seqs: &mut SeqTracker) -> Vec<Quote> {
    loop {
        match client.recv_control().await {
            ServerMessage::Subscribed { .. } => {}
            ServerMessage::Snapshot { quotes } => {
                seqs.snapshot(&quotes);
                return quotes;
            }
            other => panic!("expected a snapshot, got {other:?}"),
        }
    }
}

/// Duplicates, older seqs and an older epoch published straight onto the quote subject never
/// reach clients, and seq never goes backwards.
async fn duplicate_and_old_messages_never_reach_clients() {
    let cluster = Cluster::start_with(1, Roles::seed("5")).await;
    let addr = cluster.addr(0);
    let (mut client, _) = connect_ws(addr, "/ws").await;
    let mut seqs = SeqTracker::default();
    subscribe(&mut client, "AAPL", &mut seqs).await;
    quotes(&mut client, 2, &mut seqs).await;

    let nats_client: NatsClient = async_nats::connect(cluster.nats.url())
        .await
        .expect("connect");
    let reply = nats_client
        .request("ticker.snapshot", Default::default())
        .await
        .expect("the publisher answers snapshot requests");
    let snapshot: Value = serde_json::from_slice(&reply.payload).unwrap();
    let epoch = snapshot["epoch"].as_u64().unwrap();
    let mut aapl: Value = snapshot["quotes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["symbol"] == "AAPL")
        .unwrap()
        .clone();
    // A marker price no real quote has, on messages that must all be dropped.
    aapl["price"] = json!(0.01);
    let seq = aapl["seq"].as_u64().unwrap();
    for (e, s) in [
        (epoch, seq),
        (epoch, seq.saturating_sub(3)),
        (epoch - 1, seq + 1000),
    ] {
        aapl["seq"] = json!(s);
        let message = json!({"epoch": e, "quote": aapl}).to_string();
        nats_client
            .publish("ticker.quotes.AAPL", message.into())
            .await
            .unwrap();
    }
    nats_client.flush().await.unwrap();
    for q in quotes(&mut client, 10, &mut seqs).await {
        assert_ne!(
            q.price, 0.01,
            "a duplicate or old message reached the client: {q:?}"
        );
    }
}

/// With the broker gone, SIGTERM still stops publisher and edge promptly: the edge's clients
/// get Close 1001, and both processes exit 0 without waiting for NATS.
async fn sigterm_stops_everything_without_a_broker() {
    let mut cluster = Cluster::start_with(1, Roles::seed("13")).await;
    let (mut client, _) = connect_ws(cluster.addr(0), "/ws").await;
    cluster.nats.stop();
    assert!(matches!(
        client.recv_control().await,
        ServerMessage::Status {
            feed: Liveness::Stale,
            ..
        }
    ));
    assert_eq!(terminate(&mut cluster.publisher).await, Some(0));
    let edge = &mut cluster.edges[0].process;
    let (edge_exit, close) = tokio::join!(terminate(edge), client.recv_close());
    assert_eq!((edge_exit, close), (Some(0), 1001));
}
