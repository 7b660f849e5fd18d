//! Refuses a request whose target (path and query) is longer than `server.max_uri_bytes` with
//! `414 uri_too_long`, before any route reads it.
//!
//! actix-http accepts a request head of up to 128 KiB (past that it answers 431 and closes the
//! connection), so without this a single request line could carry a 100 KiB query string into
//! every handler: `?symbols=` lists, tokens, paths. A bound here keeps every route's input
//! small whatever the route does with it.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::http::error::ApiError;
use crate::http::state::AppState;

/// Middleware (with `from_fn`): 414 for a target over `max` bytes; 0 turns the limit off.
pub async fn limit_uri(
    max: usize,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let length = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if max == 0 || length <= max {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        state.metrics().uri_too_long.inc();
    }
    let error = ApiError::UriTooLong { length, max };
    Ok(req.error_response(error).map_into_right_body())
}
