//! The polling API: the same quotes as the WebSocket, from the same snapshot, with ETags, within
//! the symbols the request's token opens (`require_token` put its entitlements in the request).

use actix_web::http::header::{self, CacheControl, CacheDirective, ETag, EntityTag, IfNoneMatch};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::access::entitlements::Entitlements;
use crate::feed::Snapshot;
use crate::feed::symbols::{SymbolId, Universe};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::protocol::join;

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
    state.metrics().polled(status.as_u16());
    response
}

fn poll(
    req: &HttpRequest,
    query: &QuotesQuery,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let universe = state.feed().universe();
    let granted = entitlements(req);
    let rights = &granted.symbols;
    let ids: Vec<SymbolId> = match query.symbols.as_deref() {
        None => rights.ids(universe),
        Some(list) => {
            let names = Universe::split_list(list);
            if names.is_empty() {
                return Err(ApiError::BadQuery(
                    "symbols= names no symbol; leave it out for every symbol".to_owned(),
                ));
            }
            // The WebSocket's limit: one request never costs more than that many lookups.
            let max = state.session.ws.max_symbols_per_request;
            if names.len() > max {
                return Err(ApiError::TooManySymbols {
                    requested: names.len(),
                    max,
                });
            }
            let resolved = rights.resolve(universe, &names);
            if !resolved.unknown.is_empty() {
                return Err(ApiError::UnknownSymbols(resolved.unknown));
            }
            if !resolved.forbidden.is_empty() {
                state.metrics().auth_refused("forbidden_symbol");
                return Err(ApiError::ForbiddenSymbols(resolved.forbidden));
            }
            resolved.ids
        }
    };
    // A delayed tier's token polls its feed: the market as of now − delay.
    let snapshot = state.session.feed_for(granted.delay_ms).latest();
    Ok(conditional(req, etag(&snapshot, &ids), || {
        poll_body(&snapshot, &ids)
    }))
}

/// `GET /api/quotes/{symbol}` → the symbol's quote; 404 `unknown_symbol` naming a symbol the
/// service does not know.
pub async fn one(
    req: HttpRequest,
    symbol: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let universe = state.feed().universe();
    let id = universe
        .lookup(&symbol)
        .ok_or_else(|| ApiError::NoSuchSymbol([symbol.into_inner()]))?;
    let granted = entitlements(&req);
    if !granted.symbols.allows(universe.name(id)) {
        state.metrics().auth_refused("forbidden_symbol");
        return Err(ApiError::ForbiddenSymbols(vec![
            universe.name(id).to_owned(),
        ]));
    }
    let snapshot = state.session.feed_for(granted.delay_ms).latest();
    Ok(conditional(&req, etag(&snapshot, &[id]), || {
        snapshot.quotes[id].json.to_string()
    }))
}

/// What the request's token grants; everything when no middleware put anything there.
pub(crate) fn entitlements(req: &HttpRequest) -> Entitlements {
    req.extensions()
        .get::<Entitlements>()
        .cloned()
        .unwrap_or_default()
}

/// Most symbols one `GET /api/symbols` page may hold.
const MAX_PAGE: usize = 1000;
/// The page size when a search gives none.
const DEFAULT_PAGE: usize = 50;
/// The longest search text.
const MAX_QUERY_CHARS: usize = 64;

#[derive(Deserialize)]
pub struct SymbolsQuery {
    q: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// `GET /api/symbols` → the universe, or the part of it the request's token opens: symbol,
/// name and starting price. With `q`, `limit` or `offset`, a search and a page of it (best
/// matches first, see `Universe::search`), the number of matches in `X-Total-Count`; without,
/// every symbol in configuration order.
pub async fn symbols(
    req: HttpRequest,
    query: web::Query<SymbolsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let universe = state.feed().universe();
    let rights = entitlements(&req).symbols;
    if query.q.is_none() && query.limit.is_none() && query.offset.is_none() {
        let open: Vec<_> = universe
            .infos()
            .iter()
            .filter(|info| rights.allows(&info.symbol))
            .collect();
        return Ok(HttpResponse::Ok()
            .insert_header(("x-total-count", open.len()))
            .json(open));
    }
    let text = query.q.as_deref().unwrap_or_default();
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::BadQuery(format!(
            "q is at most {MAX_QUERY_CHARS} characters"
        )));
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadQuery(format!(
            "limit must be from 1 to {MAX_PAGE}"
        )));
    }
    let (total, page) =
        universe.search_among(text, query.offset.unwrap_or(0), limit, |s| rights.allows(s));
    Ok(HttpResponse::Ok()
        .insert_header(("x-total-count", total))
        .json(page))
}

/// The `GET /api/quotes` body for the given symbols: `{"ts":…,"quotes":[…]}`, where `ts` is the
/// newest tick among them, so the body changes exactly when one of them does.
fn poll_body(snapshot: &Snapshot, ids: &[SymbolId]) -> String {
    let ts = ids
        .iter()
        .map(|&id| snapshot.quotes[id].ts)
        .max()
        .unwrap_or(0);
    join(
        &format!(r#"{{"ts":{ts},"quotes":["#),
        ids.iter().map(|&id| &*snapshot.quotes[id].json),
        "]}",
    )
}

/// The opaque part of the validator for the given symbols: it changes whenever one of their
/// seqs does, and never matches across feed runs (`epoch`).
fn etag(snapshot: &Snapshot, ids: &[SymbolId]) -> String {
    let seq_sum: u64 = ids.iter().map(|&id| snapshot.quotes[id].seq).sum();
    format!("{:x}-{}-{:x}", snapshot.epoch, ids.len(), seq_sum)
}

/// Answers 304 when the client's `If-None-Match` matches `tag`, else 200 with the body.
pub(crate) fn conditional(
    req: &HttpRequest,
    tag: String,
    body: impl FnOnce() -> String,
) -> HttpResponse {
    // Weak: the body may go out compressed (`http::compression`).
    let etag = EntityTag::new_weak(tag);
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

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::feed::simulated;
    use crate::settings::Settings;

    /// The poll body and ETag cover exactly the requested symbols and change when they move.
    #[tokio::test(start_paused = true)]
    async fn poll_body_and_etag_track_requested_symbols() {
        let shutdown = CancellationToken::new();
        let defaults = Settings::defaults().expect("defaults are valid");
        let mut settings = defaults.feed;
        settings.seed = Some(9);
        let feed = simulated::spawn(&settings, &defaults.history, shutdown.clone());
        let mut watcher = feed.watch().await.unwrap();
        let before = feed.latest();
        let body: serde_json::Value = serde_json::from_str(&poll_body(&before, &[0, 2])).unwrap();
        assert_eq!(body["quotes"].as_array().unwrap().len(), 2);
        assert_eq!(body["quotes"][1]["symbol"], feed.universe().name(2));
        let tick = watcher.ticks.recv().await.unwrap();
        let moved = tick.updates[0].symbol;
        let after = feed.latest();
        assert_ne!(etag(&before, &[moved]), etag(&after, &[moved]));
        assert_eq!(etag(&after, &[moved]), etag(&after, &[moved]));
        shutdown.cancel();
        assert!(
            feed.watch().await.is_err(),
            "a stopped feed takes no watchers"
        );
    }
}
