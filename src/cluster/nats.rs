//! The NATS side of cluster mode, shared by `ticker publish` and edges: connect options from
//! `[nats]`, the subjects, and the two message shapes on the wire (see docs/cluster.md).
//!
//! A quote message is `{"epoch":E,"quote":{…}}` on `{prefix}.quotes.{SYMBOL}`; a snapshot reply
//! is `{"epoch":E,"quotes":[{…},…]}`. `E` identifies one run of the publisher: its start time in
//! Unix milliseconds, so a later run has a larger epoch. The publisher writes both by joining
//! quote JSON it serialized once; edges parse them into the same `Quote` type clients get. A
//! history request on `{prefix}.history` names one symbol; the reply is [`HistoryReply`].

use std::time::Duration;

use async_nats::{ConnectOptions, Event, ServerAddr};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::feed::history::Exported;
use crate::protocol::join;
use crate::protocol::quote::Quote;
use crate::settings::NatsSettings;

/// Why the NATS connection could not be set up from the settings.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot read nats.credentials_file {path}: {source}")]
    Credentials {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid nats.url {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        source: async_nats::ConnectError,
    },
}

/// Subjects under one prefix.
#[derive(Debug, Clone)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// `{prefix}.quotes.{SYMBOL}`. A '.' in a symbol (`BRK.B`) would split the subject into two
    /// tokens, so it becomes '_' (which symbols never contain): `ticker.quotes.BRK_B`.
    pub fn quote(&self, symbol: &str) -> String {
        format!("{}.quotes.{}", self.prefix, symbol.replace('.', "_"))
    }

    /// Every quote subject: `{prefix}.quotes.>`.
    pub fn all_quotes(&self) -> String {
        format!("{}.quotes.>", self.prefix)
    }

    /// Where edges ask the publisher for the latest state of every symbol.
    pub fn snapshot(&self) -> String {
        format!("{}.snapshot", self.prefix)
    }

    /// Where edges ask the publisher for one symbol's bars (the request's payload names it).
    pub fn history(&self) -> String {
        format!("{}.history", self.prefix)
    }
}

/// A history reply: one symbol's bars in the publisher's run `epoch`, in its seqs.
#[derive(Debug, Serialize, Deserialize)]
pub struct HistoryReply {
    pub epoch: u64,
    pub symbol: String,
    #[serde(flatten)]
    pub bars: Exported,
}

/// One quote message as edges read it.
#[derive(Debug, Deserialize)]
pub struct QuoteMessage {
    pub epoch: u64,
    pub quote: Quote,
}

/// A snapshot reply as edges read it.
#[derive(Debug, Default, Deserialize)]
pub struct SnapshotReply {
    pub epoch: u64,
    pub quotes: Vec<Quote>,
    /// The position of the first of `quotes` in the universe: a large universe's snapshot
    /// comes in pages, each under the broker's `max_payload` (0 and absent for one page).
    #[serde(default)]
    pub from: usize,
    /// The universe's size, when the reply is one page of several.
    #[serde(default)]
    pub total: Option<usize>,
}

/// What an edge asks for: the page of the snapshot starting at `from`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SnapshotRequest {
    #[serde(default)]
    pub from: usize,
}

/// The reply to a snapshot request for quotes `from..` of `quotes` (every symbol's latest, in
/// universe order): as many as fit in `max_bytes`, at least one. Returns the body and how many
/// it holds.
pub fn snapshot_page(
    epoch: u64,
    quotes: &[&str],
    from: usize,
    max_bytes: usize,
) -> (String, usize) {
    let from = from.min(quotes.len());
    let head = format!(
        r#"{{"epoch":{epoch},"from":{from},"total":{},"quotes":["#,
        quotes.len()
    );
    let mut bytes = head.len() + 2;
    let taken = quotes[from..]
        .iter()
        .take_while(|q| {
            bytes += q.len() + 1;
            bytes <= max_bytes
        })
        .count()
        .max(1)
        .min(quotes.len() - from);
    let body = join(&head, quotes[from..from + taken].iter().copied(), "]}");
    (body, taken)
}

/// `{"epoch":E,"quote":…}` around a quote already serialized as JSON.
pub fn quote_message(epoch: u64, quote_json: &str) -> String {
    join(&format!(r#"{{"epoch":{epoch},"quote":"#), [quote_json], "}")
}

/// `{"epoch":E,"quotes":[…]}` around quotes already serialized as JSON (one page: what
/// publishers before paging answered).
#[cfg(test)]
pub fn snapshot_reply<'a>(epoch: u64, quotes: impl IntoIterator<Item = &'a str>) -> String {
    join(&format!(r#"{{"epoch":{epoch},"quotes":["#), quotes, "]}")
}

/// The servers of `nats.url`, comma-separated.
pub fn parse_urls(urls: &str) -> Result<Vec<ServerAddr>, NatsError> {
    urls.split(',')
        .map(|url| {
            url.trim()
                .parse::<ServerAddr>()
                .map_err(|e| NatsError::Url {
                    url: url.to_owned(),
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// Connection events the caller wants to react to; everything else is only logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Up,
    Down,
}

/// Capacity of the connection-event channel; events are rare (one per connect or disconnect).
const EVENT_BUFFER: usize = 16;

/// Connect options from `[nats]`: authentication, TLS, backoff, and a channel of link changes.
/// Connecting happens in the background and is retried forever, so neither the publisher nor an
/// edge needs the broker to be up before it starts.
pub fn connect_options(
    settings: &NatsSettings,
    name: &str,
) -> Result<(ConnectOptions, mpsc::Receiver<Link>), NatsError> {
    let mut options = match &settings.credentials_file {
        Some(path) => {
            let credentials_error = |source| NatsError::Credentials {
                path: path.display().to_string(),
                source,
            };
            let text = std::fs::read_to_string(path).map_err(credentials_error)?;
            ConnectOptions::with_credentials(&text).map_err(credentials_error)?
        }
        None => ConnectOptions::new(),
    };
    if let (Some(user), Some(password)) = (&settings.user, &settings.password) {
        options = options.user_and_password(user.clone(), password.expose().to_owned());
    }
    if let Some(token) = &settings.token {
        options = options.token(token.expose().to_owned());
    }
    if let Some(ca) = &settings.tls_ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    let backoff = settings.clone();
    let (links_tx, links) = mpsc::channel(EVENT_BUFFER);
    let options = options
        .name(name)
        .require_tls(settings.tls_required)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(move |attempts| backoff.reconnect_delay(attempts))
        .event_callback(move |event| {
            let links = links_tx.clone();
            async move {
                let link = match event {
                    Event::Connected => Link::Up,
                    Event::Disconnected => Link::Down,
                    // async-nats logs every event itself.
                    _ => return,
                };
                // The receiver is gone only when its owner stopped; nobody needs the event then.
                let _ = links.send(link).await;
            }
        });
    Ok((options, links))
}

/// Connects in the background; fails only for unusable settings, never for an absent broker.
pub async fn connect(
    settings: &NatsSettings,
    name: &str,
) -> Result<(async_nats::Client, mpsc::Receiver<Link>), NatsError> {
    let (options, links) = connect_options(settings, name)?;
    let client = options
        .connect(parse_urls(&settings.url)?)
        .await
        .map_err(|source| NatsError::Connect {
            url: settings.url.clone(),
            source,
        })?;
    Ok((client, links))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The joined envelopes parse back into the types edges read.
    #[test]
    fn envelopes_round_trip() {
        let quote = r#"{"symbol":"BRK.B","price":1.5,"bid":1.4,"ask":1.6,"open":1.0,"high":2.0,"low":0.5,"change":0.5,"change_pct":50.0,"volume":100,"seq":3,"ts":9}"#;
        let message: QuoteMessage = serde_json::from_str(&quote_message(77, quote)).unwrap();
        assert_eq!((message.epoch, message.quote.seq), (77, 3));
        let reply: SnapshotReply =
            serde_json::from_str(&snapshot_reply(78, [quote, quote])).unwrap();
        assert_eq!((reply.epoch, reply.quotes.len()), (78, 2));
        let subjects = Subjects::new("ticker");
        assert_eq!(subjects.quote("BRK.B"), "ticker.quotes.BRK_B");
        assert_eq!(subjects.all_quotes(), "ticker.quotes.>");
        assert_eq!(subjects.snapshot(), "ticker.snapshot");
    }

    /// Pages cover the universe exactly, in order, each under the limit (one quote at least).
    #[test]
    fn snapshot_pages_cover_everything_once() {
        let quotes: Vec<String> = (0..100)
            .map(|i| format!(r#"{{"symbol":"S{i}","seq":{}}}"#, i * 7))
            .collect();
        let refs: Vec<&str> = quotes.iter().map(String::as_str).collect();
        for max in [1, 200, 1_000, 1 << 20] {
            let mut from = 0;
            let mut seen = Vec::new();
            while from < refs.len() {
                let (body, n) = snapshot_page(3, &refs, from, max);
                assert!(n >= 1);
                assert!(n == 1 || body.len() <= max, "{} > {max}", body.len());
                let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(reply["epoch"], 3);
                assert_eq!(reply["from"], from);
                assert_eq!(reply["total"], 100);
                let page = reply["quotes"].as_array().unwrap();
                assert_eq!(page.len(), n);
                seen.extend(
                    page.iter()
                        .map(|q| q["symbol"].as_str().unwrap().to_owned()),
                );
                from += n;
            }
            let expected: Vec<String> = (0..100).map(|i| format!("S{i}")).collect();
            assert_eq!(seen, expected, "max {max}");
        }
    }
}
