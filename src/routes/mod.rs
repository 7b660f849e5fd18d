//! HTTP routes: the WebSocket upgrade, the polling API, health checks, metrics and the static
//! dashboard.

mod assets;
mod health;
mod metrics;
mod quotes;
mod ws;

use actix_web::middleware::from_fn;
use actix_web::web;

use crate::auth;
use crate::error::ApiError;

/// Registers every route on an actix `App`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let query_errors =
        web::QueryConfig::default().error_handler(|e, _| ApiError::BadQuery(e.to_string()).into());
    cfg.app_data(query_errors)
        // `/ws` checks the token itself, so a refusal is counted with the other refused upgrades.
        .route("/ws", web::get().to(ws::upgrade))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(metrics::scrape))
        .service(
            web::scope("/api")
                .wrap(from_fn(auth::require_token))
                .route("/quotes", web::get().to(quotes::all))
                .route("/quotes/{symbol}", web::get().to(quotes::one))
                .route("/symbols", web::get().to(quotes::symbols))
                .default_service(web::to(not_found)),
        )
        .default_service(web::get().to(assets::serve));
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
