//! A reconnect storm against the real binary: thousands of clients drop at once and come back
//! at once, as after a network blip or a load balancer restart.

mod support;

use std::time::Instant;

use futures_util::future::join_all;
use ticker::protocol::ServerMessage;

const CLIENTS: usize = 1500;

/// 1,500 clients vanish together and reconnect together: every reconnect succeeds and gets its
/// welcome, subscription and snapshot; a bystander connected throughout misses no tick; the
/// server ends up holding exactly the clients that are connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storm_is_absorbed() {
    rlimit::increase_nofile_limit(u64::MAX).expect("the open file limit can be raised");
    let (_server, addr) =
        support::start_server(&[("TICKER__FEED__SEED", "5"), ("TICKER__LOG__LEVEL", "warn")]).await;
    let (bystander, _) = support::connect_ws(addr, "/ws?symbols=*").await;
    let (done, done_at) = tokio::sync::oneshot::channel();
    let bystander = tokio::spawn(support::watch_gapless(bystander, done_at));

    let connect_all = || async move {
        let clients = join_all((0..CLIENTS).map(|i| {
            let path = if i % 2 == 0 {
                "/ws?symbols=AAPL,MSFT"
            } else {
                "/ws?symbols=*"
            };
            async move {
                let (mut client, _welcome) = support::connect_ws(addr, path).await;
                assert!(matches!(
                    client.recv_control().await,
                    ServerMessage::Subscribed { .. }
                ));
                assert!(matches!(
                    client.recv_control().await,
                    ServerMessage::Snapshot { .. }
                ));
                client
            }
        }))
        .await;
        assert_eq!(clients.len(), CLIENTS);
        clients
    };
    let first = connect_all().await;
    let open = || async move {
        let text = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("a body");
        support::metric_value(&text, "ticker_connections_open")
    };
    assert_eq!(open().await, (CLIENTS + 1) as f64);

    // The storm: every client's TCP connection goes at once, and all come straight back.
    let started = Instant::now();
    drop(first);
    let second = connect_all().await;
    let reconnected_in = started.elapsed();

    // The dropped sessions are noticed and closed; only the new ones remain.
    let deadline = Instant::now() + support::PATIENCE;
    while open().await != (CLIENTS + 1) as f64 {
        assert!(
            Instant::now() < deadline,
            "stale sessions linger: {}",
            open().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let every = support::symbol_count(addr).await;
    done.send(ticker::clock::now_ms()).unwrap();
    let (frames, symbols) = bystander.await.expect("the bystander saw no gap");
    assert!(
        frames > 0 && symbols == every,
        "{frames} frames, {symbols} symbols"
    );
    drop(second);
    eprintln!("{CLIENTS} clients reconnected in {reconnected_in:?}");
}
