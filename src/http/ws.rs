//! `GET /ws`: checks the upgrade (shape, origin, token, limits), answers 101 at once and spawns
//! the session on this worker, holding its admission permit.

use std::net::Ipv4Addr;
use std::pin::Pin;

use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev, web};
use futures_util::{FutureExt, Stream};
use rand::RngExt;
use serde::Deserialize;
use tokio::time::Instant;

use crate::feed::symbols::Universe;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::protocol::SUBPROTOCOL;
use crate::session::frame_guard::FrameGuard;
use crate::session::{self, SessionParams};

#[derive(Deserialize)]
pub struct WsQuery {
    symbols: Option<String>,
}

pub async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<WsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    accept(&req, body, &query, &state).inspect_err(|e| state.metrics().rejected(e.code()))
}

fn accept(
    req: &HttpRequest,
    body: web::Payload,
    query: &WsQuery,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    if state.shutdown().is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    check_upgrade(req)?;
    state.origins.check(req)?;
    state.auth.check(req)?;
    let peer = req.peer_addr();
    // Every TCP connection has a peer; without one, all such requests share one budget.
    let client = peer.map_or(Ipv4Addr::UNSPECIFIED.into(), |p| {
        state.proxies.client_ip(p.ip(), req.headers())
    });
    let permit = state.admission.admit(client, Instant::now())?;
    let body = guard_frames(req, body, state.session.ws.max_message_bytes);
    // Only actix-ws's inbound side is used: `session::start` replaces the response's body.
    let (response, _, frames) = actix_ws::handle_with_protocols(req, body, &[SUBPROTOCOL])
        .map_err(|e| ApiError::NotWebSocket(e.to_string()))?;
    let frames = frames.max_frame_size(state.session.ws.max_message_bytes);
    let params = SessionParams {
        id: format!("{:016x}", rand::rng().random::<u64>()),
        peer: match peer {
            Some(peer) if client != peer.ip().to_canonical() => format!("{client} via {peer}"),
            Some(peer) => peer.to_string(),
            None => "unknown".to_owned(),
        },
        initial_symbols: query
            .symbols
            .as_deref()
            .map(|list| {
                Universe::split_list(list)
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    };
    let (response, session) = session::start(state.session.clone(), params, response, frames);
    actix_web::rt::spawn(state.sessions.track_future(async move {
        session.await;
        drop(permit);
    }));
    Ok(response)
}

/// Puts a `FrameGuard` between the connection and actix-ws's parser.
fn guard_frames(req: &HttpRequest, body: web::Payload, max: usize) -> web::Payload {
    let guarded: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
        Box::pin(FrameGuard::new(body.into_inner(), max));
    let mut raw = dev::Payload::Stream { payload: guarded };
    web::Payload::from_request(req, &mut raw)
        .now_or_never()
        .expect("extracting a Payload is immediate")
        .expect("extracting a Payload never fails")
}

/// Tells apart a request that is no upgrade at all (400) from one of another version (426).
fn check_upgrade(req: &HttpRequest) -> Result<(), ApiError> {
    let has_token = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return Err(ApiError::NotWebSocket(
            "expected `Connection: Upgrade` and `Upgrade: websocket`".to_owned(),
        ));
    }
    match req.headers().get(header::SEC_WEBSOCKET_VERSION) {
        Some(v) if v == "13" => Ok(()),
        _ => Err(ApiError::UnsupportedVersion),
    }
}
