//! JWTs on the real server: every algorithm opens `/ws` and `/api/*` with keys made for the
//! test (HS256 secret, RSA PEM, EC and Ed25519 in a JWKS), every kind of bad token is refused
//! (expired, not yet valid, wrong audience or issuer, tampered, `alg: none`, an HS256 token
//! signed with the RSA public key), JWKS keys rotate on SIGHUP, and `ticker token` signs with
//! a private key.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use support::jwt::{self, KeyKind, KeyPair, SECRET};
use support::process::bare_ticker;
use support::{PATIENCE, TestApp, start_server, terminate, test_settings};
use ticker::access::jwt::{Claims, OneOrMany, SigningKey};
use ticker::protocol::ServerMessage;
use ticker::settings::Secret;

const AUDIENCE: &str = "ticker-tests";
const ISSUER: &str = "https://issuer.test";

/// The key pairs of one test, in a temporary folder that lives as long as they do.
struct Keys {
    dir: tempfile::TempDir,
    rsa: KeyPair,
    ec: KeyPair,
    ed: KeyPair,
}

impl Keys {
    fn generate() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rsa = KeyPair::generate(dir.path(), "rsa", KeyKind::Rsa);
        let ec = KeyPair::generate(dir.path(), "ec", KeyKind::P256);
        let ed = KeyPair::generate(dir.path(), "ed", KeyKind::Ed25519);
        Self { dir, rsa, ec, ed }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// A server taking HS256 under `SECRET`, RS256 under the RSA PEM, and ES256 / EdDSA under a
/// JWKS (kids `ec-1`, `ed-1`), with an audience and an issuer required and no leeway.
async fn server(keys: &Keys) -> TestApp {
    let jwks = keys.path("jwks.json");
    jwt::write_jwks(&jwks, &[keys.ec.jwk("ec-1"), keys.ed.jwk("ed-1")]);
    let mut settings = test_settings();
    settings.auth.hmac_secret = Some(Secret::new(SECRET));
    settings.auth.public_key_file = Some(keys.rsa.public.clone());
    settings.auth.jwks_file = Some(jwks);
    settings.auth.audience = vec![AUDIENCE.into()];
    settings.auth.issuer = vec![ISSUER.into()];
    settings.auth.leeway_secs = 0;
    TestApp::spawn_with(settings).await
}

/// Claims this server accepts, for a minute.
fn good() -> Claims {
    Claims {
        aud: Some(OneOrMany::One(AUDIENCE.into())),
        iss: Some(ISSUER.into()),
        ..jwt::claims(60, None)
    }
}

/// The status of `GET /api/quotes?symbols=AAPL` with `token` as a Bearer token.
async fn poll_status(app: &TestApp, token: &str) -> u16 {
    reqwest::Client::new()
        .get(app.url("/api/quotes?symbols=AAPL"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// HS256, RS256, ES256 and EdDSA tokens each open a session (whose `welcome` carries the
/// token's expiry) and the polling API.
#[tokio::test]
async fn every_algorithm_opens_ws_and_api() {
    let keys = Keys::generate();
    let app = server(&keys).await;
    let claims = good();
    let tokens = [
        ("HS256", SigningKey::hmac(SECRET).mint(&claims).unwrap()),
        ("RS256", keys.rsa.signer().mint(&claims).unwrap()),
        (
            "ES256",
            keys.ec.signer().with_kid("ec-1").mint(&claims).unwrap(),
        ),
        (
            "EdDSA",
            keys.ed.signer().with_kid("ed-1").mint(&claims).unwrap(),
        ),
        // Without a kid, every key of the token's algorithm is tried.
        ("EdDSA, no kid", keys.ed.signer().mint(&claims).unwrap()),
    ];
    for (alg, token) in &tokens {
        assert_eq!(poll_status(&app, token).await, 200, "{alg}");
        let (_client, welcome) = support::connect_ws(app.addr, &format!("/ws?token={token}")).await;
        match welcome {
            ServerMessage::Welcome { expires_at, .. } => {
                assert_eq!(expires_at, Some(claims.exp * 1000), "{alg}")
            }
            other => panic!("{alg}: expected welcome, got {other:?}"),
        }
    }
    app.stop().await;
}

/// Expired, not-yet-valid, wrong-audience, wrong-issuer, tampered, unsigned (`alg: none`) and
/// algorithm-confused tokens (HS256 keyed with the RSA public key) get 401 on `/ws` and
/// `/api/*`, and are counted by reason.
#[tokio::test]
async fn bad_tokens_are_refused() {
    let keys = Keys::generate();
    let app = server(&keys).await;
    let rsa = keys.rsa.signer();
    let now = ticker::clock::now_secs();
    let mint = |change: &dyn Fn(&mut Claims)| {
        let mut claims = good();
        change(&mut claims);
        rsa.mint(&claims).unwrap()
    };
    let public_pem = std::fs::read_to_string(&keys.rsa.public).unwrap();
    let good_token = mint(&|_| {});
    let mut payload = serde_json::to_value(good()).unwrap();
    payload["sub"] = json!("admin");
    let bad = [
        ("expired", mint(&|c| c.exp = now - 5)),
        ("not yet valid", mint(&|c| c.nbf = Some(now + 600))),
        ("issued in the future", mint(&|c| c.iat = Some(now + 600))),
        (
            "wrong audience",
            mint(&|c| c.aud = Some(OneOrMany::One("other".into()))),
        ),
        ("no audience", mint(&|c| c.aud = None)),
        (
            "wrong issuer",
            mint(&|c| c.iss = Some("https://evil.test".into())),
        ),
        ("tampered", jwt::tampered(&good_token, &payload)),
        (
            "alg none",
            jwt::hand_made(&json!({"alg":"none","typ":"JWT"}), &payload, b""),
        ),
        (
            "alg confusion",
            SigningKey::hmac(&public_pem).mint(&good()).unwrap(),
        ),
        (
            "unknown kid, foreign key",
            KeyPair::generate(keys.dir.path(), "other", KeyKind::P256)
                .signer()
                .with_kid("ec-1")
                .mint(&good())
                .unwrap(),
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    assert_eq!(poll_status(&app, &good_token).await, 200);
    for (what, token) in &bad {
        assert_eq!(poll_status(&app, token).await, 401, "{what}: {token}");
        let refusal = app
            .try_connect(&format!("/ws?token={token}"), &[])
            .await
            .err()
            .unwrap_or_else(|| panic!("{what} opened a session"));
        assert_eq!(refusal.status, 401, "{what}");
        assert_eq!(refusal.body["error"], "unauthorized", "{what}");
    }
    let expired = app
        .metric(r#"ticker_auth_refusals_total{reason="expired"}"#)
        .await;
    let invalid = app
        .metric(r#"ticker_auth_refusals_total{reason="invalid"}"#)
        .await;
    assert_eq!((expired, invalid), (2.0, 2.0 * (bad.len() as f64 - 1.0)));
    app.stop().await;

    // Without an HMAC secret, an HS256 token made from the public key finds no key at all.
    let mut settings = test_settings();
    settings.auth.public_key_file = Some(keys.rsa.public.clone());
    let rsa_only = TestApp::spawn_with(settings).await;
    let confused = SigningKey::hmac(&public_pem).mint(&good()).unwrap();
    assert_eq!(poll_status(&rsa_only, &confused).await, 401);
    assert_eq!(
        poll_status(&rsa_only, &rsa.mint(&jwt::claims(60, None)).unwrap()).await,
        200
    );
    rsa_only.stop().await;
}

/// The binary reads its JWKS again on SIGHUP: a token of a key added to the file is refused
/// before and accepted after, and a file that no longer parses keeps the keys in force.
#[tokio::test]
async fn jwks_reloads_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let old = KeyPair::generate(dir.path(), "old", KeyKind::Ed25519);
    let new = KeyPair::generate(dir.path(), "new", KeyKind::P256);
    let jwks = dir.path().join("jwks.json");
    jwt::write_jwks(&jwks, &[old.jwk("old")]);
    let (mut server, addr) =
        start_server(&[("TICKER__AUTH__JWKS_FILE", jwks.to_str().unwrap())]).await;
    let status = |token: String| async move {
        reqwest::Client::new()
            .get(format!("http://{addr}/api/quotes"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let claims = jwt::claims(300, None);
    let old_token = old.signer().with_kid("old").mint(&claims).unwrap();
    let new_token = new.signer().with_kid("new").mint(&claims).unwrap();
    assert_eq!(status(old_token.clone()).await, 200);
    assert_eq!(status(new_token.clone()).await, 401);

    jwt::write_jwks(&jwks, &[new.jwk("new")]);
    support::signal(server.id(), "HUP");
    let started = Instant::now();
    while status(new_token.clone()).await != 200 {
        assert!(started.elapsed() < PATIENCE, "the new key was not loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(old_token).await, 401, "the old key is gone");

    std::fs::write(&jwks, "{ not json").unwrap();
    support::signal(server.id(), "HUP");
    let started = Instant::now();
    while !server
        .logs()
        .iter()
        .any(|line| line.contains("JWT keys not reloaded"))
    {
        assert!(started.elapsed() < PATIENCE, "no error logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(new_token).await, 200, "the keys in force stay");
    assert_eq!(terminate(&mut server).await, Some(0));
}

/// `ticker token --private-key` signs with RS256, ES256 or EdDSA by the key's type, with the
/// claims asked for; a key file that is no key is refused with exit code 2.
#[test]
fn token_command_signs_with_a_private_key() {
    let keys = Keys::generate();
    for (pair, alg) in [
        (&keys.rsa, "RS256"),
        (&keys.ec, "ES256"),
        (&keys.ed, "EdDSA"),
    ] {
        let output = bare_ticker()
            .args([
                "token",
                "--sub",
                "bob",
                "--symbols",
                "AAPL",
                "--delay-ms",
                "0",
            ])
            .arg("--private-key")
            .arg(&pair.private)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let token = String::from_utf8(output.stdout).unwrap();
        let header = jsonwebtoken_header(token.trim());
        assert_eq!(header["alg"], alg);
        let mut auth = support::test_settings().auth;
        auth.public_key_file = Some(pair.public.clone());
        let granted = ticker::access::auth::Auth::new(&auth)
            .unwrap()
            .verify(token.trim())
            .unwrap();
        assert_eq!(granted.subject.as_deref(), Some("bob"));
        assert_eq!(granted.symbols.describe(), ["AAPL"]);
    }
    let not_a_key = keys.path("not-a-key.pem");
    std::fs::write(&not_a_key, "hello").unwrap();
    let output = bare_ticker()
        .args(["token", "--private-key"])
        .arg(&not_a_key)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let bad_symbols = bare_ticker()
        .env("TICKER__AUTH__HMAC_SECRET", SECRET)
        .args(["token", "--symbols", "A B"])
        .output()
        .unwrap();
    assert_eq!(bad_symbols.status.code(), Some(64), "{bad_symbols:?}");
}

/// A key file that does not load stops the server at start with exit code 2, naming it.
#[test]
fn unloadable_key_file_is_a_settings_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, r#"{"keys":[]}"#).unwrap();
    for command in ["check-config", "serve"] {
        let output = bare_ticker()
            .arg(command)
            .env("TICKER__SERVER__PORT", "0")
            .env("TICKER__AUTH__JWKS_FILE", &path)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{command}: {output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("jwks.json"), "{stderr}");
    }
    assert!(Path::new(&path).exists());
}

/// The decoded header of a JWT.
fn jsonwebtoken_header(token: &str) -> serde_json::Value {
    use base64::Engine;
    let head = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// SIGHUP never ends the process, with or without key files: a `systemctl reload` is safe.
#[tokio::test]
async fn sighup_without_keys_keeps_serving() {
    let (mut server, addr) = start_server(&[]).await;
    support::signal(server.id(), "HUP");
    let started = Instant::now();
    while !server
        .logs()
        .iter()
        .any(|line| line.contains("no JWT keys to reload"))
    {
        assert!(started.elapsed() < PATIENCE, "SIGHUP was not handled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    support::wait_healthy(addr).await;
    assert_eq!(terminate(&mut server).await, Some(0));
}
