//! `ApiError`: every HTTP error the service returns, as a JSON body with the right status.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::access::{Refusal, TokenProblem};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unknown symbol: {}", .0.join(", "))]
    UnknownSymbols(Vec<String>),
    /// The one symbol a path names (`/api/quotes/{symbol}`) is not in the universe: 404.
    #[error("unknown symbol: {}", .0[0])]
    NoSuchSymbol([String; 1]),
    /// Symbols the request's token does not open: 403.
    #[error("your token does not open {}", .0.join(", "))]
    ForbiddenSymbols(Vec<String>),
    #[error("{requested} symbols in one request; at most {max} are allowed")]
    TooManySymbols { requested: usize, max: usize },
    /// The request target is longer than `server.max_uri_bytes`.
    #[error("the request URI is {length} bytes long; at most {max} are allowed")]
    UriTooLong { length: usize, max: usize },
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
    /// A method the path does not answer; `allow` lists those it does.
    #[error("method not allowed; this path answers {allow}")]
    MethodNotAllowed { allow: &'static str },
    /// Refused by access control: limits, origin, token.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// `Retry-After` of a refusal for lack of room: long enough for a reconnect storm to spread out.
const RETRY_AFTER_FULL_SECS: u64 = 5;

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
            Self::UnknownSymbols(_) | Self::NoSuchSymbol(_) => "unknown_symbol",
            Self::ForbiddenSymbols(_) => "forbidden_symbol",
            Self::TooManySymbols { .. } => "too_many_symbols",
            Self::UriTooLong { .. } => "uri_too_long",
            Self::NotFound => "not_found",
            Self::BadQuery(_) | Self::NotWebSocket(_) => "bad_request",
            Self::UnsupportedVersion => "upgrade_required",
            Self::ShuttingDown => "shutting_down",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Refused(refusal) => match refusal {
                Refusal::TooManyConnections => "too_many_connections",
                Refusal::TooManyConnectionsFromIp => "too_many_connections_from_ip",
                Refusal::RateLimited { .. } => "rate_limited",
                Refusal::ForbiddenOrigin(_) => "forbidden_origin",
                Refusal::Token(TokenProblem::Forbidden(_)) => "forbidden",
                Refusal::Token(_) => "unauthorized",
            },
        }
    }

    /// Seconds for `Retry-After`, on refusals that are worth retrying.
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::ShuttingDown => Some(1),
            Self::Refused(Refusal::TooManyConnections | Refusal::TooManyConnectionsFromIp) => {
                Some(RETRY_AFTER_FULL_SECS)
            }
            Self::Refused(Refusal::RateLimited { retry_after_secs }) => Some(*retry_after_secs),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::UnknownSymbols(_)
            | Self::TooManySymbols { .. }
            | Self::BadQuery(_)
            | Self::NotWebSocket(_) => StatusCode::BAD_REQUEST,
            Self::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            Self::NotFound | Self::NoSuchSymbol(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            Self::ShuttingDown | Self::Refused(Refusal::TooManyConnections) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Refused(Refusal::TooManyConnectionsFromIp | Refusal::RateLimited { .. }) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Refused(
                Refusal::ForbiddenOrigin(_) | Refusal::Token(TokenProblem::Forbidden(_)),
            )
            | Self::ForbiddenSymbols(_) => StatusCode::FORBIDDEN,
            Self::Refused(Refusal::Token(_)) => StatusCode::UNAUTHORIZED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::UnsupportedVersion => {
                response.insert_header((
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                ));
            }
            Self::Refused(Refusal::Token(problem)) => {
                let challenge = match problem {
                    TokenProblem::Missing => r#"Bearer realm="ticker""#,
                    TokenProblem::Expired => {
                        r#"Bearer realm="ticker", error="invalid_token", error_description="the token has expired""#
                    }
                    TokenProblem::Invalid(_) => r#"Bearer realm="ticker", error="invalid_token""#,
                    TokenProblem::Forbidden(_) => {
                        r#"Bearer realm="ticker", error="insufficient_scope""#
                    }
                };
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                ));
            }
            Self::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
            }
            _ => {}
        }
        if let Some(secs) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        response
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
            .json(self.body())
    }
}

impl ApiError {
    fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: self.code(),
            message: self.to_string(),
            symbols: match self {
                Self::UnknownSymbols(symbols) | Self::ForbiddenSymbols(symbols) => {
                    symbols.as_slice()
                }
                Self::NoSuchSymbol(symbol) => symbol.as_slice(),
                _ => &[],
            },
        }
    }

    /// The whole HTTP/1.1 answer, with `Connection: close`, for a connection refused before
    /// actix-http reads it (`http::server`). Carries what `error_response` would but
    /// `WWW-Authenticate`, which no refusal at accept needs.
    pub fn to_http1_bytes(&self) -> Vec<u8> {
        let status = self.status_code();
        let body = serde_json::to_string(&self.body()).expect("an error body always serializes");
        let retry_after = self
            .retry_after()
            .map(|secs| format!("retry-after: {secs}\r\n"))
            .unwrap_or_default();
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncache-control: no-cache\r\n\
             {retry_after}connection: close\r\ncontent-length: {}\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len(),
        )
        .into_bytes()
    }
}
