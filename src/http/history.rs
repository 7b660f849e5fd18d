//! `GET /api/history/{symbol}?interval=1s|1m&limit=N`: a symbol's bars, oldest first, the same
//! bars the WebSocket's `history` op answers with, with an ETag that changes when a bar does.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::http::error::ApiError;
use crate::http::quotes::{conditional, entitlements};
use crate::http::state::AppState;
use crate::protocol::history::{Bar, Interval};

#[derive(Deserialize)]
pub struct HistoryQuery {
    interval: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct Answer<'a> {
    symbol: &'a str,
    interval: Interval,
    bars: Vec<Bar>,
}

/// The bars of one symbol; `interval` defaults to `1m`, `limit` to every bar kept.
pub async fn bars(
    req: HttpRequest,
    symbol: web::Path<String>,
    query: web::Query<HistoryQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let granted = entitlements(&req);
    // A delayed tier's history ends at now − delay.
    let feed = state.session.feed_for(granted.delay_ms);
    let id = feed
        .universe()
        .lookup(&symbol)
        .ok_or_else(|| ApiError::NoSuchSymbol([symbol.into_inner()]))?;
    if !granted.symbols.allows(feed.universe().name(id)) {
        state.metrics().auth_refused("forbidden_symbol");
        return Err(ApiError::ForbiddenSymbols(vec![
            feed.universe().name(id).to_owned(),
        ]));
    }
    let interval = match query.interval.as_deref() {
        None => Interval::Minute,
        Some(name) => Interval::parse(name)
            .ok_or_else(|| ApiError::BadQuery(format!("interval={name}: use 1s or 1m")))?,
    };
    let limit = feed
        .history()
        .limits()
        .intervals
        .bars_for(interval, query.limit)
        .map_err(|e| ApiError::BadQuery(format!("limit={}: {e}", query.limit.unwrap_or(0))))?;
    let (bars, revision) = feed.bars(id, interval, limit);
    let epoch = feed.latest().epoch;
    let tag = format!("h{epoch:x}-{id}-{}-{limit}-{revision:x}", interval.name());
    let name = feed.universe().name(id);
    Ok(conditional(&req, tag, || {
        serde_json::to_string(&Answer {
            symbol: name,
            interval,
            bars,
        })
        .expect("bars are plain data and always serialize")
    }))
}
