//! HTTP: the server (every connection admitted and bounded), the routes (WebSocket upgrade,
//! polling API, health checks, metrics, the static dashboard), `ApiError` and `AppState`.
//!
//! Imports `session`, `access`, `feed`, `metrics`, `protocol` and `settings`; only `app` (and
//! the publisher's health checks) import it.

mod assets;
mod compression;
pub mod connection;
mod cors;
pub mod error;
pub mod health;
mod history;
mod metrics;
mod pipe;
mod quotes;
pub mod server;
pub mod state;
mod upgrade;
mod upgraded;
pub mod uri_limit;
mod ws;
mod ws_refusal;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, Next, from_fn};
use actix_web::{FromRequest, Handler, HttpMessage, HttpResponse, Resource, Responder, guard, web};

use error::ApiError;
use state::AppState;

/// What every route but `/ws` answers: `HEAD` is `GET` without the body, which actix leaves out.
const GET_HEAD: &str = "GET, HEAD";

/// Registers every route on an actix `App`; `state` configures CORS.
pub fn configure(cfg: &mut web::ServiceConfig, state: &AppState) {
    let query_errors =
        web::QueryConfig::default().error_handler(|e, _| ApiError::BadQuery(e.to_string()).into());
    cfg.app_data(query_errors)
        // `/ws` checks the token itself, so a refusal is counted with the other refused upgrades.
        .service(
            web::resource("/ws")
                .route(web::get().to(ws::upgrade))
                .default_service(web::to(|| not_allowed("GET"))),
        )
        .service(readable("/healthz", health::healthz))
        .service(readable("/readyz", health::readyz))
        .service(readable("/metrics", metrics::scrape))
        // Everything else may be compressed: the API and the dashboard's files.
        .service(
            web::scope("")
                .wrap(compression::compress())
                .wrap(from_fn(compression::vary))
                .service(
                    web::scope("/api")
                        .wrap(from_fn(require_token))
                        // Outside the token check, so preflights need no token and refusals
                        // carry CORS headers too.
                        .wrap(cors::api(state.origins.clone()))
                        // Polls must revalidate; the quote routes say so themselves, with ETags.
                        .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-cache")))
                        .service(readable("/quotes", quotes::all))
                        .service(readable("/quotes/{symbol}", quotes::one))
                        .service(readable("/symbols", quotes::symbols))
                        .service(readable("/history/{symbol}", history::bars))
                        .default_service(web::to(not_found)),
                )
                .default_service(web::to(assets::serve)),
        );
}

/// A resource that answers `GET` and `HEAD` with `handler`, and other methods with 405.
fn readable<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(
            web::route()
                .guard(guard::Any(guard::Get()).or(guard::Head()))
                .to(handler),
        )
        .default_service(web::to(|| not_allowed(GET_HEAD)))
}

async fn not_allowed(allow: &'static str) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed { allow })
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// Middleware for the routes behind auth: the request's [`Entitlements`] go into its
/// extensions for the handlers, or the refusal is the answer.
///
/// [`Entitlements`]: crate::access::entitlements::Entitlements
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("configure runs inside an App that has the AppState");
    match state.auth().check(req.request()) {
        Ok(entitlements) => {
            req.extensions_mut().insert(entitlements);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(refusal) => {
            if let crate::access::Refusal::Token(problem) = &refusal {
                state.metrics().auth_refused(problem.label());
            }
            Ok(req
                .error_response(ApiError::from(refusal))
                .map_into_right_body())
        }
    }
}
