//! `Link`: a TCP relay in front of a server whose connections a test can cut, as a network
//! outage would: `cut` drops every relayed connection at once (no Close frame, no goodbye) and
//! turns new ones away until `restore`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Link {
    /// Where clients connect instead of the server.
    pub addr: SocketAddr,
    down: Arc<AtomicBool>,
    /// Bumped by every `cut`; each relayed connection ends when it changes.
    cuts: watch::Sender<u64>,
    relay: JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.relay.abort();
        self.cuts.send_modify(|n| *n += 1);
    }
}

impl Link {
    /// Relays `127.0.0.1:<free port>` to `server`.
    pub async fn start(server: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let down = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0);
        let relay = tokio::spawn(relay(listener, server, down.clone(), cuts.clone()));
        Self {
            addr,
            down,
            cuts,
            relay,
        }
    }

    /// Drops every connection and refuses new ones (accepted and closed at once).
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

async fn relay(
    listener: TcpListener,
    server: SocketAddr,
    down: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
) {
    while let Ok((client, _)) = listener.accept().await {
        if down.load(Ordering::SeqCst) {
            continue; // dropped: the client sees its connection closed
        }
        let mut cut = cuts.subscribe();
        tokio::spawn(async move {
            let Ok(upstream) = TcpStream::connect(server).await else {
                return;
            };
            let (mut client, mut upstream) = (client, upstream);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                _ = cut.changed() => {}
            }
        });
    }
}
