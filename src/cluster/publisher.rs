//! `ticker publish`: runs the simulated feed alone and publishes every update to NATS, one
//! message per symbol update on `{prefix}.quotes.{SYMBOL}`, and answers edges' snapshot requests
//! on `{prefix}.snapshot` with the latest quote of every symbol and their history requests on
//! `{prefix}.history` with a symbol's bars. A tiny HTTP listener answers
//! `/healthz` and `/readyz` (200 while connected to NATS) for orchestrators.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web::Bytes;
use actix_web::{App, HttpResponse, HttpServer, web};
use async_nats::connection::State;
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::cluster::nats::{
    HistoryReply, NatsError, SnapshotRequest, Subjects, quote_message, snapshot_page,
};

/// Bytes of a snapshot page's message kept free for its subject and headers.
const SNAPSHOT_MARGIN: usize = 4096;
use crate::feed::{FeedHandle, Tick, Watcher, simulated};
use crate::http::health;
use crate::settings::Settings;

/// How long a stopping publisher waits for NATS to take what is still buffered.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Why the publisher could not start.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Nats(#[from] NatsError),
    #[error("cannot subscribe to snapshot requests: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
    #[error("cannot bind the health listener: {0}")]
    Bind(#[from] io::Error),
}

/// A running publisher: the feed, its NATS link and the health listener.
pub struct Publisher {
    server: Server,
    addr: SocketAddr,
    pump: tokio::task::JoinHandle<()>,
    shutdown: CancellationToken,
}

impl Publisher {
    /// Connects (in the background), starts the feed and binds the health listener.
    pub async fn build(
        settings: Settings,
        shutdown: CancellationToken,
    ) -> Result<Self, PublishError> {
        let name = format!("ticker-publisher-{}", settings.server.node());
        let (client, _links) = crate::cluster::nats::connect(&settings.nats, &name).await?;
        let subjects = Subjects::new(&settings.nats.subject_prefix);
        let snapshot_requests = client.subscribe(subjects.snapshot()).await?;
        let history_requests = client.subscribe(subjects.history()).await?;
        let feed = simulated::spawn(&settings.feed, &settings.history, shutdown.clone());
        let epoch = now_ms();
        tracing::info!(epoch, url = %settings.nats.url, prefix = %settings.nats.subject_prefix, "publisher starting");
        let pump = Pump {
            client: client.clone(),
            subjects,
            epoch,
            feed,
        };
        let pump = tokio::spawn(pump.run(snapshot_requests, history_requests, shutdown.clone()));

        let state = web::Data::new(client);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/healthz", web::get().to(health::healthz))
                .route("/readyz", web::get().to(readyz))
        })
        .workers(1)
        .disable_signals()
        .bind((settings.server.host.as_str(), settings.server.port))?;
        let addr = *server
            .addrs()
            .first()
            .expect("bind succeeded, so there is at least one address");
        tracing::info!(%addr, "listening");
        Ok(Self {
            server: server.run(),
            addr,
            pump,
            shutdown,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Publishes until the shutdown token is cancelled.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        self.shutdown.cancelled().await;
        handle.stop(true).await;
        server.await.map_err(io::Error::other)??;
        self.pump.await.map_err(io::Error::other)?;
        tracing::info!("stopped");
        Ok(())
    }
}

async fn readyz(client: web::Data<async_nats::Client>) -> HttpResponse {
    match client.connection_state() {
        State::Connected => HttpResponse::Ok().json(json!({"status": "ready"})),
        _ => HttpResponse::ServiceUnavailable().json(json!({"status": "nats_disconnected"})),
    }
}

/// Moves ticks from the feed to NATS and answers snapshot requests.
struct Pump {
    client: async_nats::Client,
    subjects: Subjects,
    epoch: u64,
    feed: FeedHandle,
}

impl Pump {
    async fn run(
        self,
        mut requests: async_nats::Subscriber,
        mut history_requests: async_nats::Subscriber,
        shutdown: CancellationToken,
    ) {
        let Ok(Watcher { mut ticks, .. }) = self.feed.watch().await else {
            return;
        };
        let mut published = 0u64;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                tick = ticks.recv() => match tick {
                    Ok(tick) => published += self.publish(&tick).await,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "publisher fell behind the feed; edges see a gap");
                    }
                    Err(RecvError::Closed) => break,
                },
                request = requests.next() => match request {
                    Some(request) => self.answer(request).await,
                    None => {
                        tracing::error!("the snapshot subscription ended");
                        break;
                    }
                },
                request = history_requests.next() => match request {
                    Some(request) => self.answer_history(request).await,
                    None => {
                        tracing::error!("the history subscription ended");
                        break;
                    }
                },
            }
        }
        // Whatever is still buffered goes out before the process exits, unless the broker is
        // away: then there is nothing to wait for.
        if tokio::time::timeout(FLUSH_TIMEOUT, self.client.flush())
            .await
            .is_err()
        {
            tracing::warn!("could not flush to NATS before stopping");
        }
        tracing::info!(published, "publisher stopped");
    }

    /// Publishes one message per update; returns how many went out. While the broker is away
    /// nothing is queued: edges refresh from a snapshot when the link is back.
    async fn publish(&self, tick: &Tick) -> u64 {
        if self.client.connection_state() != State::Connected {
            return 0;
        }
        let universe = self.feed.universe();
        let mut sent = 0;
        for update in &tick.updates {
            let subject = self.subjects.quote(universe.name(update.symbol));
            let payload = Bytes::from(quote_message(self.epoch, &update.json));
            match self.client.publish(subject, payload).await {
                Ok(()) => sent += 1,
                Err(e) => tracing::debug!(error = %e, "publish failed"),
            }
        }
        sent
    }

    /// Answers an edge's backfill: the bars of the symbol the request names.
    async fn answer_history(&self, request: async_nats::Message) {
        let Some(reply) = request.reply else {
            return;
        };
        let name = String::from_utf8_lossy(&request.payload);
        let Some(id) = self.feed.universe().lookup(&name) else {
            tracing::warn!(symbol = %name, "history request for a symbol this publisher does not list");
            return;
        };
        let answer = HistoryReply {
            epoch: self.epoch,
            symbol: name.into_owned(),
            bars: self.feed.history().export(id),
        };
        let body = serde_json::to_vec(&answer).expect("bars are plain data and always serialize");
        if let Err(e) = self.client.publish(reply, Bytes::from(body)).await {
            tracing::warn!(error = %e, "cannot answer a history request");
        }
    }

    async fn answer(&self, request: async_nats::Message) {
        let Some(reply) = request.reply else {
            return;
        };
        // An edge asks for the page from `from` on (an empty request: the first page).
        let from = serde_json::from_slice::<SnapshotRequest>(&request.payload)
            .map(|r| r.from)
            .unwrap_or(0);
        let latest = self.feed.latest();
        let quotes: Vec<&str> = latest.quotes.iter().map(|u| &*u.json).collect();
        // Room for the message's headers under the broker's limit.
        let max = (self.client.server_info().max_payload).saturating_sub(SNAPSHOT_MARGIN);
        let (body, _) = snapshot_page(self.epoch, &quotes, from, max);
        if let Err(e) = self.client.publish(reply, Bytes::from(body)).await {
            tracing::warn!(error = %e, "cannot answer a snapshot request");
        }
    }
}
