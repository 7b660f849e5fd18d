//! JWT fixtures: key pairs made by the `openssl` command in a temporary folder (RSA, EC P-256,
//! Ed25519), their public halves as PEM and as a JWKS, and tokens minted with the service's
//! own `SigningKey`; plus the hand-made tokens no library would sign (`alg: none`, tampered).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use ticker::access::jwt::{Claims, SigningKey};
use ticker::clock::now_secs;

/// An HS256 secret for the tests.
pub const SECRET: &str = "jwt-test-secret-0123456789abcdef";

/// A key pair on disk: its private PEM (PKCS#8) and public PEM.
pub struct KeyPair {
    pub private: PathBuf,
    pub public: PathBuf,
    pub kind: KeyKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    P256,
    Ed25519,
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command is installed (Debian: openssl)");
    assert!(output.status.success(), "openssl {args:?}: {output:?}");
    output.stdout
}

impl KeyPair {
    /// Generates a key pair of `kind` as `dir/{name}.pem` and `dir/{name}.pub.pem`.
    pub fn generate(dir: &Path, name: &str, kind: KeyKind) -> Self {
        let private = dir.join(format!("{name}.pem"));
        let public = dir.join(format!("{name}.pub.pem"));
        let p = private.to_str().unwrap();
        match kind {
            KeyKind::Rsa => openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                p,
            ]),
            KeyKind::P256 => openssl(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                p,
            ]),
            KeyKind::Ed25519 => openssl(&["genpkey", "-algorithm", "ED25519", "-out", p]),
        };
        openssl(&[
            "pkey",
            "-in",
            p,
            "-pubout",
            "-out",
            public.to_str().unwrap(),
        ]);
        Self {
            private,
            public,
            kind,
        }
    }

    pub fn signer(&self) -> SigningKey {
        SigningKey::from_pem(&std::fs::read(&self.private).unwrap()).expect("a PKCS#8 key")
    }

    /// The public key as a JWK with `kid`.
    pub fn jwk(&self, kid: &str) -> Value {
        let der = openssl(&[
            "pkey",
            "-pubin",
            "-in",
            self.public.to_str().unwrap(),
            "-outform",
            "DER",
        ]);
        match self.kind {
            KeyKind::Ed25519 => {
                // SubjectPublicKeyInfo of Ed25519: a fixed 12-byte prefix, then the key.
                json!({"kty":"OKP","crv":"Ed25519","kid":kid,"use":"sig","x":B64.encode(&der[der.len() - 32..])})
            }
            KeyKind::P256 => {
                // Ends with the uncompressed point: 0x04, x, y.
                let point = &der[der.len() - 65..];
                assert_eq!(point[0], 4);
                json!({"kty":"EC","crv":"P-256","kid":kid,"alg":"ES256",
                       "x":B64.encode(&point[1..33]),"y":B64.encode(&point[33..])})
            }
            KeyKind::Rsa => {
                let text = String::from_utf8(openssl(&[
                    "rsa",
                    "-pubin",
                    "-in",
                    self.public.to_str().unwrap(),
                    "-noout",
                    "-modulus",
                ]))
                .unwrap();
                let hex = text.trim().trim_start_matches("Modulus=");
                let n: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect();
                json!({"kty":"RSA","kid":kid,"n":B64.encode(n),"e":"AQAB"})
            }
        }
    }
}

/// Writes a JWKS of `keys` to `path`.
pub fn write_jwks(path: &Path, keys: &[Value]) {
    std::fs::write(path, json!({ "keys": keys }).to_string()).unwrap();
}

/// Claims good for `ttl` seconds from now, opening `symbols` (`None`: all).
pub fn claims(ttl: i64, symbols: Option<&[&str]>) -> Claims {
    let now = now_secs();
    Claims {
        sub: Some("test-user".into()),
        exp: now.saturating_add_signed(ttl),
        iat: Some(now),
        symbols: symbols.map(|s| s.iter().map(|s| (*s).to_owned()).collect()),
        ..Claims::default()
    }
}

/// An HS256 token under `SECRET`.
pub fn hs256(claims: &Claims) -> String {
    SigningKey::hmac(SECRET).mint(claims).unwrap()
}

/// `header.payload.signature` with the header and payload given as JSON.
pub fn hand_made(header: &Value, payload: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        B64.encode(header.to_string()),
        B64.encode(payload.to_string()),
        B64.encode(signature)
    )
}

/// `token` with its payload replaced, the signature kept.
pub fn tampered(token: &str, payload: &Value) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    let encoded = B64.encode(payload.to_string());
    parts[1] = &encoded;
    parts.join(".")
}
