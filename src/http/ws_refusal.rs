//! A refused upgrade a browser can read (`auth.browser_refusal = "close"`): a page never sees
//! the HTTP status of a refused WebSocket upgrade, only close 1006, the same as a network
//! failure. So for a token problem the upgrade is accepted and the connection closed at once
//! with an application code (`protocol::close`, 4001–4004: do not retry) and a reason.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason};

use crate::access::TokenProblem;
use crate::access::admission::Permit;
use crate::http::error::ApiError;
use crate::protocol::SUBPROTOCOL;

/// How long the client has to answer the Close before the connection is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Answers 101 and sends only a Close for `problem`; the permit is held until it is done.
pub fn close(
    req: &HttpRequest,
    body: web::Payload,
    problem: &TokenProblem,
    permit: Permit,
) -> Result<HttpResponse, ApiError> {
    let (response, session, mut frames) =
        actix_ws::handle_with_protocols(req, body, &[SUBPROTOCOL])
            .map_err(|e| ApiError::NotWebSocket(e.to_string()))?;
    let reason = CloseReason {
        code: CloseCode::Other(problem.close_code()),
        description: Some(problem.to_string()),
    };
    actix_web::rt::spawn(async move {
        let _ = session.close(Some(reason)).await;
        // Reads until the client's Close (or silence), so the handshake ends cleanly.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(frame)) = frames.recv().await {
                if matches!(frame, actix_ws::Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
        drop(permit);
    });
    Ok(response)
}
