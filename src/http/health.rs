//! `/healthz` (the process is alive) and `/readyz` (it takes traffic; 503 once shutdown began,
//! and on an edge while its feed is stale).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::feed::FeedStatus;
use crate::http::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.shutdown().is_cancelled() {
        HttpResponse::ServiceUnavailable().json(json!({"status": "shutting_down"}))
    } else if let FeedStatus::Stale { since } = state.feed().status() {
        HttpResponse::ServiceUnavailable().json(json!({"status": "feed_stale", "since": since}))
    } else {
        HttpResponse::Ok().json(json!({"status": "ready"}))
    }
}
