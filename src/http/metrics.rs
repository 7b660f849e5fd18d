//! `GET /metrics`: every counter of the service for Prometheus to scrape.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::http::state::AppState;
use crate::metrics::CONTENT_TYPE;

pub async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, CONTENT_TYPE))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(state.metrics().encode())
}
