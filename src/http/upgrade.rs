//! The hand-over of an upgrade request: actix-http gives every request that asks for
//! `Upgrade: websocket` to this service together with the connection itself, instead of
//! dispatching it. The request still goes through the routes (`GET /ws` and its checks, and
//! every other route for a request that asks for an upgrade where there is none), with the
//! client's bytes flowing through a [`pipe`](super::pipe) as its payload. A `101 Switching
//! Protocols` answer makes the connection a session's: its head is written and
//! [`upgraded`](super::upgraded) serves the connection from then on, on a task of its own, so
//! that a wake-up for the connection polls that and nothing else (not actix-server's
//! connection future, the acceptor's and actix-http's dispatcher around it;
//! `AppState::upgraded` tracks these tasks for shutdown, and the connection's
//! [`Lease`](super::connection::Lease) goes with it). The 101 carries its session's
//! [`Attach`] (in its extensions), which joins the socket to the session's outbox. Any other
//! answer is written and the connection closed: after an upgrade request, what the
//! client sends next is not HTTP.
//!
//! Why not let actix-http's dispatcher send the 101's body, as it does for other answers: it
//! copies every frame into a per-connection write buffer (8 KiB kept for the connection's life)
//! and keeps an 8 KiB read buffer and its timers, for a connection that, once upgraded, needs
//! none of them (docs/benchmarks.md §14 measures the difference).

use std::rc::Rc;

use actix_codec::{Framed, FramedParts};
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::h1::{Codec, Message};
use actix_http::{ConnectionType, Payload, Request, Response, StatusCode};
use actix_service::{Service, ServiceFactory};
use actix_web::dev::ServiceResponse;
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::Encoder;
use tokio_util::task::TaskTracker;

use super::connection::Connection;
use super::pipe::pipe;
use super::upgraded::{LINGER, Upgraded};
use crate::session::body::Attach;

/// Unread bytes from a client its session may fall behind by before the connection stops
/// reading (actix-http's own limit for a request payload).
const INBOUND_LIMIT: usize = 32 * 1024;

/// Makes an [`UpgradeService`] per worker from the routes' factory `F`.
pub struct Upgrade<F> {
    pub routes: F,
    /// Where the upgraded connections' tasks are spawned.
    pub upgraded: TaskTracker,
}

/// Runs upgrade requests through the routes, then serves or closes their connection.
pub struct UpgradeService<S> {
    routes: Rc<S>,
    upgraded: TaskTracker,
}

impl<F, B> ServiceFactory<(Request, Framed<Connection, Codec>)> for Upgrade<F>
where
    F: ServiceFactory<
            Request,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    F::Service: 'static,
    F::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ();
    type Error = actix_web::Error;
    type Config = ();
    type Service = UpgradeService<F::Service>;
    type InitError = F::InitError;
    type Future = LocalBoxFuture<'static, Result<Self::Service, Self::InitError>>;

    fn new_service(&self, (): ()) -> Self::Future {
        let routes = self.routes.new_service(());
        let upgraded = self.upgraded.clone();
        Box::pin(async move {
            Ok(UpgradeService {
                routes: Rc::new(routes.await?),
                upgraded,
            })
        })
    }
}

impl<S, B> Service<(Request, Framed<Connection, Codec>)> for UpgradeService<S>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ();
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<(), actix_web::Error>>;

    actix_service::always_ready!();

    fn call(&self, (req, framed): (Request, Framed<Connection, Codec>)) -> Self::Future {
        let routes = Rc::clone(&self.routes);
        let tasks = self.upgraded.clone();
        Box::pin(async move {
            if let Some(upgraded) = answer(&*routes, req, framed).await? {
                tasks.spawn_local(upgraded);
            }
            Ok(())
        })
    }
}

/// Runs `req` through the routes; the connection, ready to serve, if they switched protocols,
/// else `None` once their answer is written.
async fn answer<S, B>(
    routes: &S,
    req: Request,
    framed: Framed<Connection, Codec>,
) -> Result<Option<Upgraded>, actix_web::Error>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let (inbound, payload) = pipe(INBOUND_LIMIT);
    let (req, _) = req.replace_payload(Payload::Stream {
        payload: Box::pin(payload) as _,
    });
    let response: Response<BoxBody> = match routes.call(req).await {
        Ok(response) => response.map_into_boxed_body().into(),
        Err(e) => e.into(),
    };
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        refuse(framed, response).await?;
        return Ok(None);
    }
    let (mut head, body) = response.into_parts();
    let attach = head.extensions_mut().remove::<Attach>();
    let FramedParts {
        io,
        mut codec,
        read_buf,
        mut write_buf,
        ..
    } = framed.into_parts();
    // Anything actix had not yet written goes first, then the 101's head; copied out of
    // actix's buffers, which are dropped here.
    codec.encode(Message::Item((head, body.size())), &mut write_buf)?;
    // What the client sent after its request (its first frames) is the session's.
    inbound.send(Bytes::copy_from_slice(&read_buf));
    let head = Bytes::copy_from_slice(&write_buf);
    Ok(Some(Upgraded::new(io, head, inbound, body, attach)))
}

/// Writes an answer other than 101 and closes the connection.
async fn refuse(
    framed: Framed<Connection, Codec>,
    mut response: Response<BoxBody>,
) -> Result<(), actix_web::Error> {
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    let (head, body) = response.into_parts();
    let size = body.size();
    // Answers here are short JSON errors, or whatever a route says to a request that asked
    // for an upgrade it does not offer.
    let body = actix_http::body::to_bytes(body).await.unwrap_or_default();
    let size = match size {
        BodySize::None => BodySize::None,
        _ => BodySize::Sized(body.len() as u64),
    };
    let mut parts = framed.into_parts();
    let mut out = std::mem::take(&mut parts.write_buf);
    parts.codec.encode(Message::Item((head, size)), &mut out)?;
    parts.codec.encode(Message::Chunk(Some(body)), &mut out)?;
    parts.codec.encode(Message::Chunk(None), &mut out)?;
    let mut io = parts.io;
    // Closing with the client's bytes unread would reset the connection, and a reset can
    // destroy the answer before the client reads it: read until it closes, for a while.
    let _ = tokio::time::timeout(LINGER, async {
        io.write_all(&out).await?;
        io.shutdown().await?;
        let mut sink = [0u8; 1024];
        while io.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
    Ok(())
}
