//! Fault containment: a session that panics (injected with the `fault-injection` feature, which
//! only the tests enable) takes down its own connection and nothing else.

mod support;

use support::{Event, TestApp};
use ticker::session::FAULT_PANIC;

/// A panicking session loses its client; a bystander on the same server keeps every tick, new
/// clients are served, and the metrics count the session as closed by a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_session_takes_down_only_itself() {
    let app = TestApp::spawn().await;
    let bystander = app.connect("/ws?symbols=*").await;
    let (done, done_at) = tokio::sync::oneshot::channel();
    let bystander = tokio::spawn(support::watch_gapless(bystander, done_at));

    for _ in 0..3 {
        let mut victim = app.connect("/ws?symbols=AAPL").await;
        victim.send_text(FAULT_PANIC).await;
        // Messages already on their way may still arrive; then the connection ends.
        while let Event::Message(_) = victim.next_event().await {}
    }
    assert_eq!(
        app.metric(r#"ticker_connections_closed_total{code="panic"}"#)
            .await,
        3.0
    );

    let mut newcomer = app.connect("/ws?symbols=MSFT").await;
    assert!(matches!(
        newcomer.recv_control().await,
        ticker::protocol::ServerMessage::Subscribed { .. }
    ));
    assert_eq!(app.metric("ticker_connections_open").await, 2.0);

    let every = app.symbol_count().await;
    done.send(ticker::clock::now_ms()).unwrap();
    let (frames, symbols) = bystander.await.expect("the bystander saw no gap");
    assert!(
        frames > 0 && symbols == every,
        "{frames} frames, {symbols} symbols"
    );
    app.stop().await;
}
