//! Optional token auth (`auth.tokens`): when tokens are configured, `/ws` and `/api/*` need one,
//! as `Authorization: Bearer …` or `?token=…` (browsers cannot set headers on a WebSocket).
//! Health checks, `/metrics` and the static files stay open.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::startup::AppState;

/// The tokens that open the API; none means auth is off.
#[derive(Clone, Default)]
pub struct Auth {
    tokens: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Auth({} tokens)", self.tokens.len())
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

impl Auth {
    pub fn new(tokens: &[String]) -> Self {
        Self {
            tokens: tokens.iter().map(|t| t.as_bytes().to_vec()).collect(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Passes when auth is off or the request carries a known token.
    pub fn check(&self, req: &HttpRequest) -> Result<(), ApiError> {
        if !self.is_enabled() {
            return Ok(());
        }
        match presented(req) {
            Some(token) if self.knows(token.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::Unauthorized { presented: true }),
            None => Err(ApiError::Unauthorized { presented: false }),
        }
    }

    /// Compares against every token without stopping early, each comparison in constant time,
    /// so the answer's timing says nothing about how much of a token was right.
    fn knows(&self, candidate: &[u8]) -> bool {
        self.tokens
            .iter()
            .fold(subtle::Choice::from(0), |found, token| {
                found | token.as_slice().ct_eq(candidate)
            })
            .into()
    }
}

/// The bearer token of the `Authorization` header, else the `token` query parameter.
fn presented(req: &HttpRequest) -> Option<String> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    bearer.or_else(|| {
        web::Query::<TokenQuery>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.into_inner().token)
    })
}

/// Middleware for the routes behind auth.
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("routes::configure runs inside an App that has the AppState");
    state.auth.check(req.request())?;
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    /// Off without tokens; on, a known token passes by header or query and nothing else does.
    #[test]
    fn tokens_by_header_or_query() {
        let token = "s3cret-token-0123456789";
        let off = Auth::default();
        assert!(off.check(&TestRequest::get().to_http_request()).is_ok());

        let auth = Auth::new(&["other-token-abcdefghij".to_owned(), token.to_owned()]);
        let check = |req: TestRequest| auth.check(&req.to_http_request());
        assert!(
            check(TestRequest::get().insert_header(("Authorization", format!("Bearer {token}"))))
                .is_ok()
        );
        assert!(
            check(TestRequest::get().insert_header(("Authorization", format!("bearer {token}"))))
                .is_ok()
        );
        assert!(check(TestRequest::get().uri(&format!("/ws?symbols=A&token={token}"))).is_ok());
        assert!(matches!(
            check(TestRequest::get()),
            Err(ApiError::Unauthorized { presented: false })
        ));
        assert!(matches!(
            check(TestRequest::get().uri("/ws?token=s3cret")),
            Err(ApiError::Unauthorized { presented: true })
        ));
        assert!(matches!(
            check(TestRequest::get().insert_header(("Authorization", format!("Basic {token}")))),
            Err(ApiError::Unauthorized { presented: false })
        ));
    }
}
