//! `GET /ws`: checks the upgrade (shape, origin, token, limits), answers 101 at once and spawns
//! the session on this worker, holding its admission permit, with what its token grants. From
//! then on the connection is a session: its plain HTTP guard (`http::connection`) stands down.
//! A browser's token problem may instead be told by a Close code (`ws_refusal`).

use std::net::Ipv4Addr;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::error::PayloadError;
use actix_web::http::{ConnectionType, header};
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev, web};
use futures_util::{FutureExt, Stream};
use rand::RngExt;
use serde::Deserialize;
use tokio::time::Instant;

use crate::access::Refusal;
use crate::feed::symbols::Universe;
use crate::http::connection::{Guard, announces_body};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::protocol::SUBPROTOCOL;
use crate::session::extension::{self, Deflate};
use crate::session::frame_guard::{FrameGuard, Marks};
use crate::session::frames::Frames;
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
) -> HttpResponse {
    accept(&req, body, &query, &state).unwrap_or_else(|e| {
        state.metrics().rejected(e.code());
        // The client may follow its request with frames, which are no HTTP to read.
        let mut refusal = e.error_response();
        refusal
            .head_mut()
            .set_connection_type(ConnectionType::Close);
        refusal
    })
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
    let entitlements = match state.auth().check(req) {
        Ok(entitlements) => Ok(entitlements),
        Err(Refusal::Token(problem)) => {
            state.metrics().auth_refused(problem.label());
            let browser = req.headers().contains_key(header::ORIGIN);
            if !(browser && state.auth().closes_browser_refusals()) {
                return Err(Refusal::Token(problem).into());
            }
            Err(problem)
        }
        Err(refusal) => return Err(refusal.into()),
    };
    let peer = req.peer_addr();
    // Every TCP connection has a peer; without one, all such requests share one budget.
    let peer_ip = peer.map_or(Ipv4Addr::UNSPECIFIED.into(), |p| p.ip());
    let client = state.proxies.client_ip(peer_ip, req.headers());
    // A connection from any peer but a trusted proxy was counted against it at accept.
    let counted = !state.proxies.trusts(peer_ip);
    let permit = state
        .admission
        .admit_session(client, counted, Instant::now())?;
    let entitlements = match entitlements {
        Ok(entitlements) => entitlements,
        Err(problem) => {
            state
                .metrics()
                .rejected(ApiError::from(Refusal::Token(problem.clone())).code());
            if let Some(guard) = req.conn_data::<Rc<Guard>>() {
                guard.became_session();
            }
            return super::ws_refusal::close(req, body, &problem, permit);
        }
    };
    let deflate = negotiate_deflate(req, state);
    let marks = deflate.map(|_| Marks::default());
    let body = guard_frames(req, body, state.session.ws.max_message_bytes, marks.clone());
    let mut response =
        actix_http::ws::handshake(req.head()).map_err(|e| ApiError::NotWebSocket(e.to_string()))?;
    if let Some(protocol) = select_protocol(req) {
        response.insert_header((header::SEC_WEBSOCKET_PROTOCOL, protocol));
    }
    if let Some(agreed) = &deflate {
        response.insert_header((header::SEC_WEBSOCKET_EXTENSIONS, agreed.response()));
    }
    let frames = Frames::new(body.into_inner(), state.session.ws.max_message_bytes);
    if let Some(guard) = req.conn_data::<Rc<Guard>>() {
        guard.became_session();
    }
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
        deflate: deflate.zip(marks),
        entitlements,
    };
    let (body, session) = session::start(state.session.clone(), params, frames);
    // The connection's socket joins the session where the upgrade serves it (`http::upgrade`).
    let attach = body.attach();
    let mut response = response
        .message_body(body)
        .map_err(|e| ApiError::NotWebSocket(e.to_string()))?;
    response.extensions_mut().insert(attach);
    // Not an `async` block: one would keep room for `session` twice (its capture and its
    // await) for the session's whole life.
    actix_web::rt::spawn(
        state
            .sessions
            .track_future(session.map(move |()| drop(permit))),
    );
    Ok(HttpResponse::from(response).map_into_boxed_body())
}

/// `ticker.v1` if the client offers it among its subprotocols (the server speaks no other).
fn select_protocol(req: &HttpRequest) -> Option<&'static str> {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|offered| offered.trim() == SUBPROTOCOL)
        .then_some(SUBPROTOCOL)
}

/// The permessage-deflate offer accepted, if any (`ws.compression`; docs/protocol.md).
fn negotiate_deflate(req: &HttpRequest, state: &AppState) -> Option<Deflate> {
    let offers = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .filter_map(|value| value.to_str().ok());
    extension::negotiate(offers, state.session.ws.compression)
}

/// Puts a `FrameGuard` between the connection and actix-ws's parser; `marks` when
/// permessage-deflate was agreed.
fn guard_frames(
    req: &HttpRequest,
    body: web::Payload,
    max: usize,
    marks: Option<Marks>,
) -> web::Payload {
    let guarded: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
        Box::pin(FrameGuard::new(body.into_inner(), max, marks));
    let mut raw = dev::Payload::Stream { payload: guarded };
    web::Payload::from_request(req, &mut raw)
        .now_or_never()
        .expect("extracting a Payload is immediate")
        .expect("extracting a Payload never fails")
}

/// Tells apart a request that is no upgrade at all (400) from one of another version (426).
///
/// Only a plain handshake is served: `Upgrade` naming `websocket` and nothing else, and no body.
/// actix-http hands the connection over to the session only for such a request; for any other
/// (`Upgrade: websocket, h2c`, a chunked or sized body) it would keep reading HTTP, and the
/// session's frames would go out inside a chunked body while the client's were never read.
fn check_upgrade(req: &HttpRequest) -> Result<(), ApiError> {
    let tokens = |name: header::HeaderName| {
        req.headers()
            .get_all(name)
            .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    let upgrade = tokens(header::UPGRADE);
    let websocket_only =
        matches!(upgrade.as_slice(), [one] if one.eq_ignore_ascii_case("websocket"));
    let connection = tokens(header::CONNECTION);
    if !websocket_only || !connection.iter().any(|t| t.eq_ignore_ascii_case("upgrade")) {
        return Err(ApiError::NotWebSocket(
            "expected `Connection: Upgrade` and `Upgrade: websocket`, and no other protocol"
                .to_owned(),
        ));
    }
    if !req.head().upgrade() {
        return Err(ApiError::NotWebSocket(
            "`Connection: close` cannot be upgraded".to_owned(),
        ));
    }
    if announces_body(req.headers()) {
        return Err(ApiError::NotWebSocket(
            "an upgrade request has no body".to_owned(),
        ));
    }
    match req.headers().get(header::SEC_WEBSOCKET_VERSION) {
        Some(v) if v == "13" => Ok(()),
        _ => Err(ApiError::UnsupportedVersion),
    }
}
