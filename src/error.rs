//! `ApiError`: every HTTP error the service returns, as a JSON body with the right status.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unknown symbol: {}", .0.join(", "))]
    UnknownSymbols(Vec<String>),
    #[error("not found")]
    NotFound,
    #[error("bad query string: {0}")]
    BadQuery(String),
    #[error("not a WebSocket upgrade: {0}")]
    NotWebSocket(String),
    #[error("unsupported WebSocket version; this server speaks version 13")]
    UnsupportedVersion,
    #[error("the server is shutting down")]
    ShuttingDown,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    message: String,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    symbols: &'a [String],
}

impl ApiError {
    /// The `error` field of the body, also the reason label of rejected upgrades in metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownSymbols(_) => "unknown_symbol",
            Self::NotFound => "not_found",
            Self::BadQuery(_) | Self::NotWebSocket(_) => "bad_request",
            Self::UnsupportedVersion => "upgrade_required",
            Self::ShuttingDown => "shutting_down",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::UnknownSymbols(_) | Self::BadQuery(_) | Self::NotWebSocket(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let symbols = match self {
            Self::UnknownSymbols(symbols) => symbols.as_slice(),
            _ => &[],
        };
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::UnsupportedVersion => {
                response.insert_header((
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                ));
            }
            Self::ShuttingDown => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            _ => {}
        }
        response
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
            .json(ErrorBody {
                error: self.code(),
                message: self.to_string(),
                symbols,
            })
    }
}
