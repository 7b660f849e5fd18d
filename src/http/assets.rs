//! The dashboard: the files of `web/`, compiled into the binary so it serves from any directory.
//! `GET` and `HEAD` only: another method on a file gets 405.

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
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
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, mime.as_ref()))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .body(file.data.into_owned()))
}
