//! The dashboard: the files of `web/`, compiled into the binary so it serves from any directory.
//! `GET` and `HEAD` only: another method on a file gets 405. `Cache-Control: no-cache` with an
//! ETag from the file's hash: a browser revalidates every file on load (a new release shows at
//! once) and gets a bodiless 304 for what did not change.

use actix_web::http::Method;
use actix_web::http::header::{self, ETag, EntityTag, HeaderValue, IfNoneMatch};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

use crate::http::error::ApiError;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

pub async fn serve(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let path = req.path().trim_start_matches('/');
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_owned()
    };
    // `/demo` and the like map to `demo.html`.
    let file = Assets::get(&path)
        .map(|f| (f, path.clone()))
        .or_else(|| Assets::get(&format!("{path}.html")).map(|f| (f, format!("{path}.html"))))
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
