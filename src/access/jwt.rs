//! JWTs (RFC 7519) with the `jsonwebtoken` crate: the keys that verify them (an HS256 secret, a
//! PEM public key, a JWKS file), the checks, the claims they carry, and minting for
//! `ticker token`. Standard tokens, so any backend can mint them.
//!
//! What makes a token good: an algorithm this server has a key of that family for (never
//! `none`; an HS256 token is checked against the HMAC secret only, so a public key cannot be
//! abused as an HMAC secret), a valid signature, `exp` in the future, `nbf` and `iat` not in
//! the future, `aud` and `iss` among the configured ones when configured, all within the
//! leeway; and a `symbols` claim that parses.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::TokenProblem;
use super::entitlements::Entitlements;
use super::symbol_rights::SymbolRights;
use crate::settings::{AuthSettings, MIN_SECRET_LEN};

/// The claims this service reads and `ticker token` writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Unix seconds; required.
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Checked by `jsonwebtoken` when `auth.audience` is set; one value or several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<OneOrMany>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Names, prefixes (`A*`) or `*`; absent opens every symbol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbols: Option<Vec<String>>,
    /// 0 (or absent): the live tier.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delay_ms: u64,
}

/// A claim that is one string or a list of them (`aud`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Why key material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

fn file_error(path: &Path, message: impl ToString) -> KeyError {
    KeyError::File {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// A public key and the algorithms it verifies.
struct PublicKey {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

/// Every key that verifies JWTs, loaded from the settings and their files; replaced whole on
/// reload.
pub struct JwtKeys {
    hmac: Option<DecodingKey>,
    public: Vec<PublicKey>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "JwtKeys(hmac {}, {} public)",
            if self.hmac.is_some() { "on" } else { "off" },
            self.public.len()
        )
    }
}

/// The settings that say what a good token's claims are.
#[derive(Debug, Clone)]
pub struct Rules {
    audience: Vec<String>,
    issuer: Vec<String>,
    leeway_secs: u64,
}

impl Rules {
    pub fn new(settings: &AuthSettings) -> Self {
        Self {
            audience: settings.audience.clone(),
            issuer: settings.issuer.clone(),
            leeway_secs: settings.leeway_secs,
        }
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway_secs;
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        if self.audience.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.audience);
            required.push("aud");
        }
        if !self.issuer.is_empty() {
            v.set_issuer(&self.issuer);
            required.push("iss");
        }
        v.set_required_spec_claims(&required);
        v
    }
}

impl JwtKeys {
    /// Loads the configured keys; `None` when no JWT key is configured.
    pub fn load(settings: &AuthSettings) -> Result<Option<Self>, KeyError> {
        if !settings.has_jwt_keys() {
            return Ok(None);
        }
        let secret = match (&settings.hmac_secret, &settings.hmac_secret_file) {
            (Some(secret), _) => Some(secret.expose().to_owned()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
                let secret = text.trim().to_owned();
                if secret.len() < MIN_SECRET_LEN {
                    return Err(file_error(
                        path,
                        format!("the key must be at least {MIN_SECRET_LEN} characters"),
                    ));
                }
                Some(secret)
            }
            (None, None) => None,
        };
        let mut public = Vec::new();
        if let Some(path) = &settings.public_key_file {
            let pem = std::fs::read(path).map_err(|e| file_error(path, e))?;
            public.push(pem_key(&pem).map_err(|e| file_error(path, e))?);
        }
        if let Some(path) = &settings.jwks_file {
            let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
            public.extend(jwks_keys(&text).map_err(|e| file_error(path, e))?);
        }
        Ok(Some(Self {
            hmac: secret.map(|s| DecodingKey::from_secret(s.as_bytes())),
            public,
        }))
    }

    /// Checks `token` and returns what it grants.
    pub fn verify(
        &self,
        token: &str,
        rules: &Rules,
        now: u64,
    ) -> Result<Entitlements, TokenProblem> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| TokenProblem::Invalid("not a JWT with a supported alg".into()))?;
        let alg = header.alg;
        let candidates: Vec<&DecodingKey> = if alg.family() == AlgorithmFamily::Hmac {
            // Only HS256, and only against the secret: never a public key as an HMAC key.
            self.hmac
                .iter()
                .filter(|_| alg == Algorithm::HS256)
                .collect()
        } else {
            let by_alg = self.public.iter().filter(|k| k.algorithms.contains(&alg));
            let named: Vec<&PublicKey> = match &header.kid {
                Some(kid) => by_alg
                    .clone()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .collect(),
                None => Vec::new(),
            };
            if named.is_empty() {
                by_alg.map(|k| &k.key).collect()
            } else {
                named.into_iter().map(|k| &k.key).collect()
            }
        };
        if candidates.is_empty() {
            return Err(TokenProblem::Invalid(format!("no key for alg {alg:?}")));
        }
        let validation = rules.validation(alg);
        let mut problem = TokenProblem::Invalid("bad signature".into());
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => return entitlements(data.claims, rules, now),
                Err(e) => {
                    // A key whose signature matched tells the real reason; keep trying the
                    // others only while none did.
                    let found = classify(e.kind());
                    let signature_ok = !matches!(
                        e.kind(),
                        ErrorKind::InvalidSignature | ErrorKind::InvalidKeyFormat
                    );
                    problem = found;
                    if signature_ok {
                        break;
                    }
                }
            }
        }
        Err(problem)
    }
}

/// What a verified token's claims grant; `iat` and `symbols` are checked here.
fn entitlements(claims: Claims, rules: &Rules, now: u64) -> Result<Entitlements, TokenProblem> {
    if claims
        .iat
        .is_some_and(|iat| iat > now.saturating_add(rules.leeway_secs))
    {
        return Err(TokenProblem::Invalid("issued in the future (iat)".into()));
    }
    let symbols = match &claims.symbols {
        None => SymbolRights::all(),
        Some(entries) => SymbolRights::parse(entries)
            .map_err(|e| TokenProblem::Invalid(format!("symbols claim: {e}")))?,
    };
    Ok(Entitlements {
        subject: claims.sub,
        symbols,
        delay_ms: claims.delay_ms,
        expires_at: Some(claims.exp.saturating_add(rules.leeway_secs)),
    })
}

fn classify(kind: &ErrorKind) -> TokenProblem {
    let invalid = |why: &str| TokenProblem::Invalid(why.to_owned());
    match kind {
        ErrorKind::ExpiredSignature => TokenProblem::Expired,
        ErrorKind::ImmatureSignature => invalid("not valid yet (nbf)"),
        ErrorKind::InvalidAudience => invalid("wrong audience (aud)"),
        ErrorKind::InvalidIssuer => invalid("wrong issuer (iss)"),
        ErrorKind::MissingRequiredClaim(claim) => invalid(&format!("no {claim} claim")),
        ErrorKind::InvalidClaimFormat(claim) => invalid(&format!("malformed {claim} claim")),
        ErrorKind::InvalidSignature => invalid("bad signature"),
        ErrorKind::InvalidAlgorithm => invalid("algorithm not accepted"),
        _ => invalid("malformed token"),
    }
}

/// A PEM public key: RSA, EC or Ed25519, and the algorithms of its family.
fn pem_key(pem: &[u8]) -> Result<PublicKey, String> {
    let (key, algorithms) = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        (key, AlgorithmFamily::Rsa.algorithms().to_vec())
    } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        (key, AlgorithmFamily::Ec.algorithms().to_vec())
    } else if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        (key, vec![Algorithm::EdDSA])
    } else {
        return Err("not an RSA, EC or Ed25519 public key in PEM".to_owned());
    };
    Ok(PublicKey {
        kid: None,
        algorithms,
        key,
    })
}

/// The signing keys of a JWKS document. Encryption keys and symmetric (`oct`) keys are
/// skipped: a secret does not belong in a key set meant to be public.
fn jwks_keys(text: &str) -> Result<Vec<PublicKey>, String> {
    let set: JwkSet = serde_json::from_str(text).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = Vec::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let family = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa,
            AlgorithmParameters::EllipticCurve(_) => AlgorithmFamily::Ec,
            AlgorithmParameters::OctetKeyPair(_) => AlgorithmFamily::Ed,
            _ => continue,
        };
        let algorithms = match jwk.common.key_algorithm {
            Some(named) => {
                let alg = Algorithm::from_str(&named.to_string())
                    .map_err(|_| format!("key {i}: unsupported alg {named}"))?;
                if alg.family() != family {
                    return Err(format!("key {i}: alg {named} does not fit its key type"));
                }
                vec![alg]
            }
            None => family.algorithms().to_vec(),
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {i}: {e}"))?;
        keys.push(PublicKey {
            kid: jwk.common.key_id.clone(),
            algorithms,
            key,
        });
    }
    if keys.is_empty() {
        return Err("no signing key in the set".to_owned());
    }
    Ok(keys)
}

/// A private key that mints tokens: the HS256 secret, or an RSA, EC P-256 or Ed25519 private
/// key in PEM (PKCS#8), signing with RS256, ES256 or EdDSA.
pub struct SigningKey {
    alg: Algorithm,
    key: EncodingKey,
    kid: Option<String>,
}

impl SigningKey {
    pub fn hmac(secret: &str) -> Self {
        Self {
            alg: Algorithm::HS256,
            key: EncodingKey::from_secret(secret.as_bytes()),
            kid: None,
        }
    }

    /// The HS256 key of the settings: `auth.hmac_secret`, else `auth.hmac_secret_file`.
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, KeyError> {
        if let Some(secret) = &settings.hmac_secret {
            return Ok(Self::hmac(secret.expose()));
        }
        let Some(path) = &settings.hmac_secret_file else {
            return Err(KeyError::Invalid(
                "no HS256 key: set auth.hmac_secret (e.g. TICKER__AUTH__HMAC_SECRET) or \
                 auth.hmac_secret_file, or sign with --private-key"
                    .to_owned(),
            ));
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
        Ok(Self::hmac(text.trim()))
    }

    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let (alg, key) = if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
            (Algorithm::RS256, key)
        } else if let Ok(key) = EncodingKey::from_ec_pem(pem) {
            (Algorithm::ES256, key)
        } else if let Ok(key) = EncodingKey::from_ed_pem(pem) {
            (Algorithm::EdDSA, key)
        } else {
            return Err(KeyError::Invalid(
                "not an RSA, EC P-256 or Ed25519 private key in PEM (PKCS#8)".to_owned(),
            ));
        };
        Ok(Self {
            alg,
            key,
            kid: None,
        })
    }

    /// Names the key in the token's header, for a JWKS with several keys.
    pub fn with_kid(mut self, kid: &str) -> Self {
        self.kid = Some(kid.to_owned());
        self
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// A signed token carrying `claims`.
    pub fn mint(&self, claims: &Claims) -> Result<String, KeyError> {
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|e| KeyError::Invalid(format!("cannot sign: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Secret, Settings};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn settings() -> AuthSettings {
        let mut auth = Settings::defaults().expect("defaults are valid").auth;
        auth.hmac_secret = Some(Secret::new(SECRET));
        auth.leeway_secs = 0;
        auth
    }

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: Some("alice".into()),
            exp,
            symbols: Some(vec!["AAPL".into(), "M*".into()]),
            ..Claims::default()
        }
    }

    /// An HS256 token grants its claims until `exp`; an expired or foreign one is refused.
    #[test]
    fn hs256_round_trip() {
        let settings = settings();
        let keys = JwtKeys::load(&settings).unwrap().unwrap();
        let rules = Rules::new(&settings);
        let now = crate::clock::now_secs();
        let token = SigningKey::hmac(SECRET).mint(&claims(now + 60)).unwrap();
        let granted = keys.verify(&token, &rules, now).unwrap();
        assert_eq!(granted.subject.as_deref(), Some("alice"));
        assert!(granted.symbols.allows("MSFT") && !granted.symbols.allows("AMZN"));
        assert_eq!(granted.expires_at, Some(now + 60));
        let other = SigningKey::hmac("another secret of thirty-two chars")
            .mint(&claims(u64::MAX / 2))
            .unwrap();
        assert_eq!(
            keys.verify(&other, &rules, now),
            Err(TokenProblem::Invalid("bad signature".into()))
        );
        let expired = SigningKey::hmac(SECRET).mint(&claims(1_000)).unwrap();
        assert_eq!(
            keys.verify(&expired, &rules, now),
            Err(TokenProblem::Expired)
        );
    }

    /// A bad `symbols` claim or an `iat` in the future makes a token invalid.
    #[test]
    fn claims_are_checked() {
        let settings = settings();
        let keys = JwtKeys::load(&settings).unwrap().unwrap();
        let rules = Rules::new(&settings);
        let now = crate::clock::now_secs();
        let mut bad = claims(now + 60);
        bad.symbols = Some(vec!["A B".into()]);
        let token = SigningKey::hmac(SECRET).mint(&bad).unwrap();
        assert!(matches!(
            keys.verify(&token, &rules, now),
            Err(TokenProblem::Invalid(why)) if why.contains("symbols")
        ));
        let mut future = claims(now + 60);
        future.iat = Some(now + 30);
        let token = SigningKey::hmac(SECRET).mint(&future).unwrap();
        assert!(keys.verify(&token, &rules, now).is_err());
    }
}
