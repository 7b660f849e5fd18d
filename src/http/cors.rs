//! CORS for `/api/*` (`actix-cors`): pages of the origins in `server.allowed_origins` (names,
//! `https://*.example.com` patterns, or `"*"`) may read the polling API, with a token in
//! `Authorization`. The same list as the WebSocket's origin policy, so one setting says which
//! sites may use this server. Other origins get no CORS headers (their browser hides the
//! answer); requests without `Origin` are untouched.

use actix_cors::Cors;
use actix_web::http::{Method, header};

use crate::access::origin::OriginPolicy;

/// How long a browser may cache a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE_SECS: usize = 600;

pub fn api(origins: OriginPolicy) -> Cors {
    Cors::default()
        .allowed_origin_fn(move |origin, _head| {
            origin
                .to_str()
                .is_ok_and(|origin| origins.allows_cross_origin(origin))
        })
        .allowed_methods([Method::GET, Method::HEAD])
        .allowed_headers([header::AUTHORIZATION, header::IF_NONE_MATCH])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            header::HeaderName::from_static("x-total-count"),
        ])
        .max_age(PREFLIGHT_MAX_AGE_SECS)
        // A page of another origin is still answered, without CORS headers, as before CORS:
        // its browser keeps the answer from it.
        .block_on_origin_mismatch(false)
}
