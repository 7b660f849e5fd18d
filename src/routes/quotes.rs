//! The polling API: the same quotes as the WebSocket, from the same snapshot, with ETags.

use actix_web::http::header::{self, CacheControl, CacheDirective, ETag, EntityTag, IfNoneMatch};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::error::ApiError;
use crate::startup::AppState;
use crate::symbols::{SymbolId, Universe};

#[derive(Deserialize)]
pub struct QuotesQuery {
    symbols: Option<String>,
}

/// `GET /api/quotes[?symbols=A,B]` → `{"ts":…,"quotes":[…]}`; 304 when the ETag still matches.
pub async fn all(
    req: HttpRequest,
    query: web::Query<QuotesQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let response = poll(&req, &query, &state);
    let status = match &response {
        Ok(response) => response.status(),
        Err(e) => actix_web::ResponseError::status_code(e),
    };
    state.metrics.polled(status.as_u16());
    response
}

fn poll(
    req: &HttpRequest,
    query: &QuotesQuery,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let universe = state.feed.universe();
    let ids: Vec<SymbolId> = match query.symbols.as_deref() {
        None => (0..universe.len()).collect(),
        Some(list) => {
            let resolved = universe.resolve(&Universe::split_list(list));
            if !resolved.unknown.is_empty() {
                return Err(ApiError::UnknownSymbols(resolved.unknown));
            }
            resolved.ids
        }
    };
    let snapshot = state.feed.latest();
    Ok(conditional(req, snapshot.etag(&ids), || {
        snapshot.poll_body(&ids)
    }))
}

/// `GET /api/quotes/{symbol}` → the symbol's quote; 404 for a symbol the service does not know.
pub async fn one(
    req: HttpRequest,
    symbol: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = state
        .feed
        .universe()
        .lookup(&symbol)
        .ok_or(ApiError::NotFound)?;
    let snapshot = state.feed.latest();
    Ok(conditional(&req, snapshot.etag(&[id]), || {
        snapshot.quotes[id].json.to_string()
    }))
}

/// `GET /api/symbols` → the universe: symbol, name and starting price.
pub async fn symbols(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.feed.universe().infos())
}

/// Answers 304 when the client's `If-None-Match` matches `tag`, else 200 with the body.
fn conditional(req: &HttpRequest, tag: String, body: impl FnOnce() -> String) -> HttpResponse {
    let etag = EntityTag::new_strong(tag);
    let matches = match req.get_header::<IfNoneMatch>() {
        Some(IfNoneMatch::Any) => true,
        Some(IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(&etag)),
        None => false,
    };
    let mut response = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(ETag(etag))
        .insert_header(CacheControl(vec![CacheDirective::NoCache]));
    if matches {
        response.finish()
    } else {
        response
            .insert_header(header::ContentType::json())
            .body(body())
    }
}
