//! Optional token auth: when `auth.tokens` or `auth.hmac_secret` is set, `/ws` and `/api/*` need
//! a token, as `Authorization: Bearer …` or `?token=…` (browsers cannot set headers on a
//! WebSocket). A token is one of the static list, or a signed one that has not expired:
//! `v1.{expires}.{signature}`, `expires` in Unix seconds and the signature the hex HMAC-SHA256
//! of `v1.{expires}` under the secret. Health checks, `/metrics` and the static files stay open.

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use ring::hmac;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::Refusal;
use crate::clock::now_secs;
use crate::settings::AuthSettings;

/// The tokens that open the API; none means auth is off.
#[derive(Clone, Default)]
pub struct Auth {
    tokens: Vec<Vec<u8>>,
    signed: Option<SignedTokens>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Auth({} tokens, signed tokens {})",
            self.tokens.len(),
            if self.signed.is_some() { "on" } else { "off" }
        )
    }
}

/// Mints and checks signed, expiring tokens under `auth.hmac_secret`.
#[derive(Clone)]
pub struct SignedTokens {
    key: hmac::Key,
}

const SIGNED_PREFIX: &str = "v1.";

impl SignedTokens {
    pub fn new(secret: &str) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        }
    }

    /// A token valid until `expires` (Unix seconds).
    pub fn sign(&self, expires: u64) -> String {
        let claim = format!("{SIGNED_PREFIX}{expires}");
        let tag = hmac::sign(&self.key, claim.as_bytes());
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("{claim}.{hex}")
    }

    /// Whether `token` was signed with this key and is still valid at `now` (Unix seconds).
    /// The signature is checked in constant time.
    pub fn verify(&self, token: &str, now: u64) -> bool {
        let Some((claim, hex)) = token.rsplit_once('.') else {
            return false;
        };
        let Some(expires) = claim
            .strip_prefix(SIGNED_PREFIX)
            .and_then(|e| e.parse::<u64>().ok())
        else {
            return false;
        };
        let Some(signature) = decode_hex(hex) else {
            return false;
        };
        hmac::verify(&self.key, claim.as_bytes(), &signature).is_ok() && now < expires
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

impl Auth {
    pub fn new(settings: &AuthSettings) -> Self {
        Self {
            tokens: settings
                .tokens
                .iter()
                .map(|t| t.expose().as_bytes().to_vec())
                .collect(),
            signed: settings
                .hmac_secret
                .as_ref()
                .map(|s| SignedTokens::new(s.expose())),
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty() || self.signed.is_some()
    }

    /// Passes when auth is off or the request carries a known token.
    pub fn check(&self, req: &HttpRequest) -> Result<(), Refusal> {
        if !self.is_enabled() {
            return Ok(());
        }
        match presented(req) {
            Some(token) if self.knows(&token) => Ok(()),
            Some(_) => Err(Refusal::Unauthorized { presented: true }),
            None => Err(Refusal::Unauthorized { presented: false }),
        }
    }

    /// Compares against every static token without stopping early, each comparison in constant
    /// time, so the answer's timing says nothing about how much of a token was right; then
    /// checks it as a signed token.
    fn knows(&self, candidate: &str) -> bool {
        let listed: bool = self
            .tokens
            .iter()
            .fold(subtle::Choice::from(0), |found, token| {
                found | token.as_slice().ct_eq(candidate.as_bytes())
            })
            .into();
        listed
            || self
                .signed
                .as_ref()
                .is_some_and(|signed| signed.verify(candidate, now_secs()))
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

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;
    use crate::settings::Secret;

    /// Off without tokens; on, a known token passes by header or query and nothing else does.
    #[test]
    fn tokens_by_header_or_query() {
        let token = "s3cret-token-0123456789";
        let off = Auth::default();
        assert!(off.check(&TestRequest::get().to_http_request()).is_ok());

        let auth = Auth::new(&AuthSettings {
            tokens: vec![Secret::new("other-token-abcdefghij"), Secret::new(token)],
            hmac_secret: None,
        });
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
            Err(Refusal::Unauthorized { presented: false })
        ));
        assert!(matches!(
            check(TestRequest::get().uri("/ws?token=s3cret")),
            Err(Refusal::Unauthorized { presented: true })
        ));
        assert!(matches!(
            check(TestRequest::get().insert_header(("Authorization", format!("Basic {token}")))),
            Err(Refusal::Unauthorized { presented: false })
        ));
    }

    /// A signed token passes until it expires; a changed expiry, another key's signature or
    /// garbage does not.
    #[test]
    fn signed_tokens_expire() {
        let secret = "0123456789abcdef0123456789abcdef";
        let signed = SignedTokens::new(secret);
        let token = signed.sign(1_000);
        assert!(token.starts_with("v1.1000."), "{token}");
        assert!(signed.verify(&token, 999));
        assert!(!signed.verify(&token, 1_000), "expired");
        assert!(!signed.verify(&token.replace("v1.1000.", "v1.9000."), 999));
        assert!(!SignedTokens::new("another secret, also 32 chars long").verify(&token, 999));
        for junk in ["", "v1.", "v1.1000", "v1.x.00", "v1.1000.zz", "v2.1000.00"] {
            assert!(!signed.verify(junk, 0), "{junk}");
        }

        let auth = Auth::new(&AuthSettings {
            tokens: Vec::new(),
            hmac_secret: Some(Secret::new(secret)),
        });
        assert!(auth.is_enabled());
        let fresh = signed.sign(now_secs() + 60);
        let stale = signed.sign(now_secs() - 1);
        let bearer = |t: &str| {
            auth.check(
                &TestRequest::get()
                    .insert_header(("Authorization", format!("Bearer {t}")))
                    .to_http_request(),
            )
        };
        assert!(bearer(&fresh).is_ok());
        assert!(matches!(
            bearer(&stale),
            Err(Refusal::Unauthorized { presented: true })
        ));
    }
}
