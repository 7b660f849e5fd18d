//! Optional token auth: when `auth.tokens` or a JWT key is set, `/ws` and `/api/*` need a token,
//! as `Authorization: Bearer …` or `?token=…` (browsers cannot set headers on a WebSocket), and
//! a session can present a fresh one with `{"op":"auth"}`. A token is one of the static list
//! (every symbol, no expiry) or a JWT (`jwt`), whose claims become the request's
//! [`Entitlements`]. Health checks, `/metrics` and the static files stay open.
//!
//! Key files are read again by [`Auth::reload`], on SIGHUP ([`Auth::reload_on_sighup`]): keys
//! rotate without a restart, and a file that no longer loads keeps the keys in force.

use std::sync::{Arc, RwLock};

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::entitlements::Entitlements;
use super::jwt::{JwtKeys, KeyError, Rules};
use super::{Refusal, TokenProblem};
use crate::clock::now_secs;
use crate::settings::{AuthSettings, BrowserRefusal};

/// The tokens that open the API; none means auth is off. Cheap to clone.
#[derive(Clone, Default)]
pub struct Auth {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    tokens: Vec<Vec<u8>>,
    jwt: Option<Jwt>,
    browser_refusal: Option<BrowserRefusal>,
    /// The delayed tiers served (`auth.delayed_tiers_ms`).
    tiers: Vec<u64>,
}

struct Jwt {
    keys: RwLock<Arc<JwtKeys>>,
    rules: Rules,
    /// Where the keys come from, for reloads.
    settings: AuthSettings,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Auth({} tokens, JWT {})",
            self.inner.tokens.len(),
            if self.inner.jwt.is_some() {
                "on"
            } else {
                "off"
            }
        )
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

impl Auth {
    /// Loads the static tokens and the JWT keys; fails when a key file cannot be read or holds
    /// no usable key.
    pub fn new(settings: &AuthSettings) -> Result<Self, KeyError> {
        let jwt = JwtKeys::load(settings)?.map(|keys| Jwt {
            keys: RwLock::new(Arc::new(keys)),
            rules: Rules::new(settings),
            settings: settings.clone(),
        });
        Ok(Self {
            inner: Arc::new(Inner {
                tokens: settings
                    .tokens
                    .iter()
                    .map(|t| t.expose().as_bytes().to_vec())
                    .collect(),
                jwt,
                browser_refusal: Some(settings.browser_refusal),
                tiers: settings.delayed_tiers_ms.iter().map(|t| t.ms()).collect(),
            }),
        })
    }

    pub fn is_enabled(&self) -> bool {
        !self.inner.tokens.is_empty() || self.inner.jwt.is_some()
    }

    /// Whether a browser's token problem is told with a Close code after the upgrade.
    pub fn closes_browser_refusals(&self) -> bool {
        self.inner.browser_refusal == Some(BrowserRefusal::Close)
    }

    /// What the request's token grants; everything when auth is off.
    pub fn check(&self, req: &HttpRequest) -> Result<Entitlements, Refusal> {
        if !self.is_enabled() {
            return Ok(Entitlements::unlimited());
        }
        let token = presented(req).ok_or(TokenProblem::Missing)?;
        Ok(self.verify(&token)?)
    }

    /// What `token` grants: a static token everything, a JWT its claims.
    pub fn verify(&self, token: &str) -> Result<Entitlements, TokenProblem> {
        if !self.is_enabled() {
            return Ok(Entitlements::unlimited());
        }
        if self.is_listed(token) {
            return Ok(Entitlements::unlimited());
        }
        let Some(jwt) = &self.inner.jwt else {
            return Err(TokenProblem::Invalid("unknown token".into()));
        };
        let keys = Arc::clone(&jwt.keys.read().expect("no writer panics holding the lock"));
        let granted = keys.verify(token, &jwt.rules, now_secs())?;
        if granted.delay_ms > 0 && !self.inner.tiers.contains(&granted.delay_ms) {
            return Err(TokenProblem::Forbidden(format!(
                "no delayed tier of {} ms here (served: live{})",
                granted.delay_ms,
                self.inner
                    .tiers
                    .iter()
                    .map(|t| format!(", {t} ms"))
                    .collect::<String>()
            )));
        }
        Ok(granted)
    }

    /// Reads the key files again; on failure the keys in force stay and the error is returned.
    pub fn reload(&self) -> Result<(), KeyError> {
        let Some(jwt) = &self.inner.jwt else {
            tracing::info!("SIGHUP: no JWT keys to reload");
            return Ok(());
        };
        let keys = JwtKeys::load(&jwt.settings)?.expect("JWT keys were configured at start");
        *jwt.keys.write().expect("no writer panics holding the lock") = Arc::new(keys);
        Ok(())
    }

    /// Reloads the key files on every SIGHUP until `shutdown`. Installed whether or not there
    /// are key files, so a `systemctl reload` never ends the process (SIGHUP's default).
    #[cfg(unix)]
    pub fn reload_on_sighup(&self, shutdown: CancellationToken) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(e) => {
                tracing::warn!(error = %e, "no SIGHUP handler: key files are read at start only");
                return;
            }
        };
        let auth = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    got = hangups.recv() => if got.is_none() { return },
                    () = shutdown.cancelled() => return,
                }
                match auth.reload() {
                    Ok(()) => tracing::info!("SIGHUP: JWT keys reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "SIGHUP: JWT keys not reloaded; the old ones stay")
                    }
                }
            }
        });
    }

    #[cfg(not(unix))]
    pub fn reload_on_sighup(&self, _shutdown: CancellationToken) {}

    /// Compares against every static token without stopping early, each comparison in constant
    /// time, so the answer's timing says nothing about how much of a token was right.
    fn is_listed(&self, candidate: &str) -> bool {
        self.inner
            .tokens
            .iter()
            .fold(subtle::Choice::from(0), |found, token| {
                found | token.as_slice().ct_eq(candidate.as_bytes())
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

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;
    use crate::access::jwt::{Claims, SigningKey};
    use crate::settings::{Secret, Settings};

    fn settings() -> AuthSettings {
        Settings::defaults().expect("defaults are valid").auth
    }

    /// Off without tokens; on, a known token passes by header or query and nothing else does.
    #[test]
    fn tokens_by_header_or_query() {
        let token = "s3cret-token-0123456789";
        let off = Auth::default();
        assert!(off.check(&TestRequest::get().to_http_request()).is_ok());

        let mut s = settings();
        s.tokens = vec![Secret::new("other-token-abcdefghij"), Secret::new(token)];
        let auth = Auth::new(&s).unwrap();
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
        assert_eq!(
            check(TestRequest::get()),
            Err(Refusal::Token(TokenProblem::Missing))
        );
        assert!(matches!(
            check(TestRequest::get().uri("/ws?token=s3cret")),
            Err(Refusal::Token(TokenProblem::Invalid(_)))
        ));
        assert_eq!(
            check(TestRequest::get().insert_header(("Authorization", format!("Basic {token}")))),
            Err(Refusal::Token(TokenProblem::Missing))
        );
    }

    /// A JWT asking for a delayed tier gets it if the server serves that delay, and is
    /// refused as forbidden otherwise.
    #[test]
    fn only_served_delayed_tiers_are_granted() {
        let secret = "0123456789abcdef0123456789abcdef";
        let mut s = settings();
        s.hmac_secret = Some(Secret::new(secret));
        s.delayed_tiers_ms = vec![crate::settings::Millis::new(60_000)];
        let auth = Auth::new(&s).unwrap();
        let served = Claims {
            exp: now_secs() + 60,
            delay_ms: 60_000,
            ..Claims::default()
        };
        let token = SigningKey::hmac(secret).mint(&served).unwrap();
        assert_eq!(auth.verify(&token).unwrap().delay_ms, 60_000);
        let claims = Claims {
            exp: now_secs() + 60,
            delay_ms: 900_000,
            ..Claims::default()
        };
        let token = SigningKey::hmac(secret).mint(&claims).unwrap();
        assert!(matches!(
            auth.verify(&token),
            Err(TokenProblem::Forbidden(_))
        ));
        let live = SigningKey::hmac(secret)
            .mint(&Claims {
                delay_ms: 0,
                ..claims
            })
            .unwrap();
        assert!(auth.verify(&live).unwrap().symbols.is_all());
    }
}
