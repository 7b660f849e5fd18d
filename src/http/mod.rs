//! HTTP: the routes (WebSocket upgrade, polling API, health checks, metrics, the static
//! dashboard), `ApiError` and `AppState`.
//!
//! Imports `session`, `access`, `feed`, `metrics`, `protocol` and `settings`; only `app` (and
//! the publisher's health checks) import it.

mod assets;
pub mod error;
pub mod health;
mod metrics;
mod quotes;
pub mod state;
pub mod uri_limit;
mod ws;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::web;

use error::ApiError;
use state::AppState;

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
                .wrap(from_fn(require_token))
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

/// Middleware for the routes behind auth.
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("configure runs inside an App that has the AppState");
    state.auth.check(req.request()).map_err(ApiError::from)?;
    next.call(req).await
}
