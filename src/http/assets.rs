//! The dashboard: the files of `web/`, compiled into the binary so it serves from any directory.
//! `GET` and `HEAD` only: another method on a file gets 405. `Cache-Control: no-cache` with an
//! ETag from the file's hash: a browser revalidates every file on load (a new release shows at
//! once) and gets a bodiless 304 for what did not change. The JavaScript client package's
//! sources (`clients/js/src/`) are served under `/client/`: the dashboard imports them from
//! there, and any page of an allowed origin can too.

use actix_web::http::Method;
use actix_web::http::header::{self, ETag, EntityTag, HeaderValue, IfNoneMatch};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

use crate::http::error::ApiError;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

#[derive(RustEmbed)]
#[folder = "clients/js/src/"]
struct ClientPackage;

/// Where `/client/` starts: the package's sources, not the dashboard's.
const CLIENT_PREFIX: &str = "client/";

/// The embedded file at `path` (without the leading `/`).
fn embedded(path: &str) -> Option<rust_embed::EmbeddedFile> {
    match path.strip_prefix(CLIENT_PREFIX) {
        Some(source) => ClientPackage::get(source),
        None => Assets::get(path),
    }
}

pub async fn serve(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let path = req.path().trim_start_matches('/');
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_owned()
    };
    // `/demo` and the like map to `demo.html`.
    let file = embedded(&path)
        .map(|f| (f, path.clone()))
        .or_else(|| embedded(&format!("{path}.html")).map(|f| (f, format!("{path}.html"))))
        .ok_or(ApiError::NotFound)?;
    let (file, name) = file;
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Err(ApiError::MethodNotAllowed {
            allow: super::GET_HEAD,
        });
    }
    let mime = mime_guess::from_path(&name).first_or_octet_stream();
    // Weak: the body may go out compressed (`http::compression`).
    let hash: String = file.metadata.sha256_hash()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let etag = EntityTag::new_weak(hash);
    let unchanged = match req.get_header::<IfNoneMatch>() {
        Some(IfNoneMatch::Any) => true,
        Some(IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(&etag)),
        None => false,
    };
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(ETag(etag))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")));
    if unchanged {
        return Ok(response.finish());
    }
    Ok(response
        .insert_header((header::CONTENT_TYPE, mime.as_ref()))
        .body(file.data.into_owned()))
}
