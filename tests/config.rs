//! Settings: the layers in order (defaults → TICKER_ENV file → --config file → TICKER__ vars),
//! every validation error naming its key, and the binary's exit code 2 and `check-config`.

mod support;

use std::path::Path;

use support::process::bare_ticker;
use ticker::settings::{AllowedOrigin, FeedSource, Secret, Settings, SettingsError, Sources};

fn vars(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The defaults are valid and ship at least 20 real tickers.
#[test]
fn defaults_are_valid() {
    let settings = Settings::defaults().unwrap();
    assert!(settings.feed.symbols.len() >= 20);
    assert_eq!(settings.server.port, 8080);
    assert!(settings.feed.seed.is_none());
    assert_eq!(
        settings.feed.source,
        FeedSource::Simulated,
        "single process by default"
    );
    assert_eq!(settings.nats.subject_prefix, "ticker");
}

/// The cluster settings load from variables, as compose sets them, and from `config/docker.toml`.
#[test]
fn cluster_settings_load() {
    let settings = Settings::load(&Sources {
        config_dir: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/config").into()),
        environment: Some("docker".into()),
        env_vars: vars(&[
            ("TICKER__FEED__SOURCE", "nats"),
            ("TICKER__SERVER__NODE_ID", "edge-7"),
        ]),
        ..Sources::default()
    })
    .unwrap();
    assert_eq!(settings.feed.source, FeedSource::Nats);
    assert_eq!(settings.nats.url, "nats://nats:4222");
    assert_eq!(settings.server.node(), "edge-7");
    assert_eq!(settings.server.host, "0.0.0.0");
    assert_eq!(
        settings.nats.reconnect_delay(1).as_millis(),
        u128::from(settings.nats.reconnect_min_ms.ms())
    );
    assert_eq!(
        settings.nats.reconnect_delay(50).as_millis(),
        u128::from(settings.nats.reconnect_max_ms.ms())
    );
}

/// Each layer overrides the one before: env file, then --config file, then variables.
#[test]
fn layers_apply_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "staging.toml",
        "[server]\nport = 9000\nworkers = 3\n[ws]\nmax_subscriptions = 7\n",
    );
    let file = write(
        dir.path(),
        "local.toml",
        "[server]\nport = 9100\n[feed]\nseed = 42\n",
    );
    let settings = Settings::load(&Sources {
        config_dir: Some(dir.path().to_owned()),
        environment: Some("staging".into()),
        file: Some(file.clone()),
        env_vars: vars(&[
            ("TICKER__SERVER__PORT", "0"),
            ("TICKER__WS__IDLE_TIMEOUT_MS", "1500"),
            ("TICKER__WS__HEARTBEAT_INTERVAL_MS", "500"),
            ("TICKER__LOG__FORMAT", "json"),
            ("OTHER__SERVER__PORT", "1"),
        ]),
        flags: Vec::new(),
    })
    .unwrap();
    assert_eq!(settings.server.port, 0, "variables win");
    assert_eq!(settings.server.workers, 3, "env file applies");
    assert_eq!(settings.ws.max_subscriptions, 7);
    assert_eq!(settings.feed.seed, Some(42), "--config file applies");
    assert_eq!(settings.ws.idle_timeout_ms.ms(), 1500);
    assert_eq!(settings.log.format, ticker::settings::LogFormat::Json);
    assert_eq!(
        settings.feed.tick_interval_ms.ms(),
        100,
        "untouched keys keep defaults"
    );

    let without_vars = Settings::load(&Sources {
        config_dir: Some(dir.path().to_owned()),
        environment: Some("staging".into()),
        file: Some(file),
        env_vars: vars(&[]),
        flags: Vec::new(),
    })
    .unwrap();
    assert_eq!(
        without_vars.server.port, 9100,
        "--config beats the env file"
    );
}

/// A file's symbol list replaces the default universe rather than merging into it.
#[test]
fn symbol_list_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "two.toml",
        "[[feed.symbols]]\nsymbol = \"ABC\"\nname = \"Abc\"\nprice = 10.0\nvolatility = 0.2\n\
         [[feed.symbols]]\nsymbol = \"XYZ\"\nname = \"Xyz\"\nprice = 20.0\nvolatility = 0.3\n",
    );
    let settings = Settings::load(&Sources {
        file: Some(file),
        env_vars: vars(&[]),
        ..Sources::default()
    })
    .unwrap();
    let names: Vec<_> = settings
        .feed
        .symbols
        .iter()
        .map(|s| s.symbol.as_str())
        .collect();
    assert_eq!(names, vec!["ABC", "XYZ"]);
}

fn invalid_key(file_text: &str, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bad.toml", file_text);
    match Settings::load(&Sources {
        file: Some(file),
        env_vars: vars(env),
        ..Sources::default()
    }) {
        Err(SettingsError::Invalid { key, .. }) => key,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// A settings file, environment variables, and the key the error must name.
type InvalidCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

/// Every invalid setting is refused with the key that is wrong.
#[test]
fn validation_names_the_key() {
    let cases: &[InvalidCase] = &[
        (
            "",
            &[("TICKER__WS__IDLE_TIMEOUT_MS", "100000000000")],
            "ws.idle_timeout_ms",
        ),
        (
            "",
            &[("TICKER__SERVER__SEND_BUFFER_BYTES", "100")],
            "server.send_buffer_bytes",
        ),
        (
            "",
            &[("TICKER__WS__HEARTBEAT_INTERVAL_MS", "15000")],
            "ws.heartbeat_interval_ms",
        ),
        (
            "[feed]\ntick_interval_ms = 0\n",
            &[],
            "feed.tick_interval_ms",
        ),
        ("[feed]\nsymbols = []\n", &[], "feed.symbols"),
        (
            "[[feed.symbols]]\nsymbol = \"A\"\nname = \"a\"\nprice = 1.0\nvolatility = 0.1\n\
             [[feed.symbols]]\nsymbol = \"A\"\nname = \"b\"\nprice = 2.0\nvolatility = 0.1\n",
            &[],
            "feed.symbols[1].symbol",
        ),
        (
            "[[feed.symbols]]\nsymbol = \"A\"\nname = \"a\"\nprice = 0.0\nvolatility = 0.1\n",
            &[],
            "feed.symbols[0].price",
        ),
        (
            "[[feed.symbols]]\nsymbol = \"A\"\nname = \"a\"\nprice = -3.5\nvolatility = 0.1\n",
            &[],
            "feed.symbols[0].price",
        ),
        (
            "[[feed.symbols]]\nsymbol = \"bad sym\"\nname = \"a\"\nprice = 1.0\nvolatility = 0.1\n",
            &[],
            "feed.symbols[0].symbol",
        ),
        (
            "[feed]\nupdate_probability = 0.0\n",
            &[],
            "feed.update_probability",
        ),
        ("[ws]\nmax_subscriptions = 0\n", &[], "ws.max_subscriptions"),
        ("[log]\nlevel = \"info,[[[\"\n", &[], "log.level"),
        ("[server]\nnode_id = \" \"\n", &[], "server.node_id"),
        ("", &[("TICKER__NATS__URL", " ")], "nats.url"),
        (
            "",
            &[("TICKER__NATS__SUBJECT_PREFIX", "ticker.>")],
            "nats.subject_prefix",
        ),
        (
            "[nats]\nsubject_prefix = \"a..b\"\n",
            &[],
            "nats.subject_prefix",
        ),
        ("[nats]\nuser = \"u\"\n", &[], "nats.password"),
        (
            "[nats]\nuser = \"u\"\npassword = \"p\"\ntoken = \"t\"\n",
            &[],
            "nats.token",
        ),
        (
            "[nats]\nreconnect_min_ms = 0\n",
            &[],
            "nats.reconnect_min_ms",
        ),
        (
            "[nats]\nreconnect_min_ms = 5000\nreconnect_max_ms = 100\n",
            &[],
            "nats.reconnect_max_ms",
        ),
        (
            "[nats]\nrequest_timeout_ms = 0\n",
            &[],
            "nats.request_timeout_ms",
        ),
        (
            "[server]\nconnect_burst_per_ip = 0\n",
            &[],
            "server.connect_burst_per_ip",
        ),
        (
            "[server]\nhandshake_timeout_ms = 500\n",
            &[],
            "server.handshake_timeout_ms",
        ),
        (
            "",
            &[(
                "TICKER__SERVER__HANDSHAKE_TIMEOUT_MS",
                "18446744073709551615",
            )],
            "server.handshake_timeout_ms",
        ),
        (
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.local\"]\n",
            &[],
            "server.trusted_proxies[1]",
        ),
        (
            "",
            &[("TICKER__SERVER__TRUSTED_PROXIES", "10.0.0.0/33")],
            "server.trusted_proxies[0]",
        ),
        (
            "[server]\nallowed_origins = [\"https://example.com/app\"]\n",
            &[],
            "server.allowed_origins[0]",
        ),
        (
            "[ws]\nclient_message_burst = 0\n",
            &[],
            "ws.client_message_burst",
        ),
        (
            "[ws]\nmax_symbols_per_request = 0\n",
            &[],
            "ws.max_symbols_per_request",
        ),
        ("[auth]\ntokens = [\"short\"]\n", &[], "auth.tokens[0]"),
        (
            "",
            &[("TICKER__AUTH__HMAC_SECRET", "too short")],
            "auth.hmac_secret",
        ),
        (
            "",
            &[("TICKER__AUTH__TOKENS", "0123456789abcdef,has space in it!!")],
            "auth.tokens[1]",
        ),
    ];
    for (file, env, key) in cases {
        assert_eq!(invalid_key(file, env), *key, "case {file:?} {env:?}");
    }
}

/// The limits of a public endpoint are on by default, auth is off, and list settings load from
/// comma-separated variables.
#[test]
fn limits_default_on_and_lists_load_from_variables() {
    let defaults = Settings::defaults().unwrap();
    assert_eq!(
        defaults.server.max_connections, None,
        "derived from the open-file limit"
    );
    assert!(defaults.server.max_connections_per_ip > 0);
    assert!(defaults.server.connect_rate_per_ip > 0);
    assert!(defaults.ws.max_client_messages_per_sec > 0);
    assert!(
        defaults.server.allowed_origins.is_empty(),
        "same origin only"
    );
    assert!(defaults.auth.tokens.is_empty(), "auth is off");
    assert_eq!(defaults.server.handshake_timeout_ms.ms(), 5000);

    let settings = Settings::load(&Sources {
        env_vars: vars(&[
            ("TICKER__SERVER__TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1"),
            ("TICKER__SERVER__ALLOWED_ORIGINS", "*"),
            ("TICKER__AUTH__TOKENS", "0123456789abcdef,fedcba9876543210"),
            ("TICKER__NATS__URL", "nats://a:4222,nats://b:4222"),
        ]),
        ..Sources::default()
    })
    .unwrap();
    let proxies: Vec<String> = settings
        .server
        .trusted_proxies
        .iter()
        .map(|n| n.0.to_string())
        .collect();
    assert_eq!(proxies, ["10.0.0.0/8", "127.0.0.1/32"]);
    assert_eq!(settings.server.allowed_origins, [AllowedOrigin::Any]);
    assert_eq!(settings.auth.tokens.len(), 2);
    assert_eq!(
        settings.nats.url, "nats://a:4222,nats://b:4222",
        "other values with commas stay strings"
    );
    assert!(
        !settings.to_toml().contains("0123456789abcdef"),
        "tokens are redacted"
    );
    let mut with_secret = settings.clone();
    with_secret.auth.hmac_secret = Some(Secret::new(&"s".repeat(40)));
    assert!(
        !with_secret.to_toml().contains(&"s".repeat(40)),
        "so is the secret"
    );
}

/// Wrong types, unknown keys and values outside an enum are refused naming the key and the file;
/// a missing file is a load error.
#[test]
fn malformed_settings_name_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key, needle) in [
        ("[server]\nport = \"eighty\"\n", "server.port", "eighty"),
        ("[server]\nprot = 80\n", "server.prot", "prot"),
        ("[log]\nformat = \"xml\"\n", "log.format", "xml"),
        ("[feed]\nsource = \"kafka\"\n", "feed.source", "kafka"),
    ] {
        let file = write(dir.path(), "bad.toml", text);
        let err = Settings::load(&Sources {
            file: Some(file.clone()),
            env_vars: vars(&[]),
            ..Sources::default()
        })
        .unwrap_err();
        let SettingsError::Invalid {
            key: named, origin, ..
        } = &err
        else {
            panic!("expected an invalid setting, got {err:?}");
        };
        assert_eq!(named, key, "{err}");
        assert!(origin.contains("bad.toml"), "{err}");
        assert!(
            err.to_string().contains(needle),
            "{err} should mention {needle}"
        );
    }
    let missing = Settings::load(&Sources {
        file: Some(dir.path().join("absent.toml")),
        env_vars: vars(&[]),
        ..Sources::default()
    });
    assert!(missing.is_err());
}

/// The error for `text` in a file, and for `var=value` as an environment variable.
fn refusal(file_text: Option<&str>, env: &[(&str, &str)]) -> SettingsError {
    let dir = tempfile::tempdir().unwrap();
    Settings::load(&Sources {
        file: file_text.map(|text| write(dir.path(), "bad.toml", text)),
        env_vars: vars(env),
        ..Sources::default()
    })
    .expect_err("the settings are refused")
}

/// Text settings stay exactly the text given; integers are whole numbers in range, never
/// rounded, clamped or read from a boolean; the error names the key and where the value came
/// from.
#[test]
fn values_are_never_coerced() {
    let secret = "12345678901234567890123456789012345678";
    let settings = Settings::load(&Sources {
        env_vars: vars(&[
            ("TICKER__SERVER__NODE_ID", "007"),
            ("TICKER__AUTH__HMAC_SECRET", secret),
        ]),
        ..Sources::default()
    })
    .unwrap();
    assert_eq!(settings.server.node_id.as_deref(), Some("007"));
    assert_eq!(settings.auth.hmac_secret.unwrap().expose(), secret);

    for value in [
        "-1.0",
        "-5.5",
        "false",
        "-1",
        "1e30",
        "20000.5",
        "99999999999999999999999",
    ] {
        let err = refusal(None, &[("TICKER__SERVER__MAX_CONNECTIONS", value)]);
        let text = err.to_string();
        assert!(
            matches!(&err, SettingsError::Invalid { key, origin, .. }
                if key == "server.max_connections"
                    && origin == "environment variable TICKER__SERVER__MAX_CONNECTIONS"),
            "{value}: {text}"
        );
        assert!(text.contains("whole number"), "{text}");
    }
    for text in [
        "[server]\nmax_connections = -0.4\n",
        "[server]\nport = 19001.6\n",
        "[server]\nport = 1e30\n",
        "[server]\nport = true\n",
        "[server]\nport = 70000\n",
    ] {
        let err = refusal(Some(text), &[]);
        assert!(
            matches!(&err, SettingsError::Invalid { origin, .. } if origin.contains("bad.toml")),
            "{text}: {err}"
        );
    }
}

/// What `serve` could not use, `check-config` refuses first (exit 2, key and source named):
/// too many workers, a log filter that logs nothing, a host that is no address, and market
/// values that would print nonsense prices.
#[test]
fn check_config_refuses_what_serve_cannot_use() {
    let cases: &[(&str, &str, &str)] = &[
        ("TICKER__SERVER__WORKERS", "1000", "server.workers"),
        ("TICKER__LOG__LEVEL", "loud", "log.level"),
        ("TICKER__LOG__FORMAT", "xml", "log.format"),
        ("TICKER__SERVER__HOST", "not an address", "server.host"),
        ("TICKER__FEED__TIME_SCALE", "1e300", "feed.time_scale"),
        ("TICKER__FEED__SPREAD_BPS", "1000000", "feed.spread_bps"),
        (
            "TICKER__FEED__TICK_INTERVAL_MS",
            "86400001",
            "feed.tick_interval_ms",
        ),
    ];
    for (var, value, key) in cases {
        let output = bare_ticker()
            .env(var, value)
            .arg("check-config")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.contains(&format!("`{key}`")) && stderr.contains(var),
            "{var}={value}: {stderr}"
        );
    }
    let stderr = String::from_utf8(
        bare_ticker()
            .env("TICKER__LOG__LEVEL", "loud")
            .arg("check-config")
            .output()
            .unwrap()
            .stderr,
    )
    .unwrap();
    assert!(
        stderr.contains("trace, debug, info, warn, error, off"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "huge.toml",
        "[[feed.symbols]]\nsymbol = \"HUGE\"\nname = \"Huge\"\nprice = 1e308\nvolatility = 0.2\n",
    );
    let output = bare_ticker()
        .arg("check-config")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("feed.symbols[0].price") && stderr.contains("huge.toml"),
        "{stderr}"
    );
}

/// `--config` must name a regular file: a directory, a device or a missing path each get
/// their own message.
#[test]
fn config_path_must_be_a_file() {
    let dir = tempfile::tempdir().unwrap();
    for (path, needle) in [
        (dir.path().to_owned(), "is a directory"),
        ("/dev/null".into(), "is not a regular file"),
        (dir.path().join("absent.toml"), "no such file"),
    ] {
        let output = bare_ticker()
            .arg("check-config")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{path:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(needle), "{path:?}: {stderr}");
    }
}

/// The fields a settings table has, as serde names them: read from the error for a key that
/// no table has (`unknown field ..., expected one of `a`, `b``), so the list comes from the
/// struct itself.
fn struct_fields(section: &str) -> Vec<String> {
    let header = if section.is_empty() {
        String::new()
    } else {
        format!("[{section}]\n")
    };
    let err = refusal(Some(&format!("{header}no_such_key_ = 1\n")), &[]).to_string();
    let expected = err.split("expected").nth(1).unwrap_or_default();
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// `config/default.toml` and the settings structs agree on every key: each field has its line
/// in the file (optional ones as a commented example), and every line is a field.
#[test]
fn default_toml_and_struct_agree() {
    let text = include_str!("../config/default.toml");
    let defaults: toml::Table = toml::from_str(text).unwrap();
    let mut sections = struct_fields("");
    sections.retain(|s| !s.is_empty());
    assert!(sections.len() >= 6, "{sections:?}");
    for section in &sections {
        let in_struct = struct_fields(section);
        assert!(!in_struct.is_empty(), "[{section}] has fields");
        // The lines of this section, active or commented out.
        let body = text
            .split(&format!("\n[{section}]\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("config/default.toml has [{section}]"));
        let body = body.split("\n[").next().unwrap_or(body);
        for field in &in_struct {
            let active = defaults[section.as_str()].get(field).is_some();
            let commented = body.lines().any(|l| {
                l.trim_start_matches("# ")
                    .starts_with(&format!("{field} = "))
            });
            assert!(
                active || commented,
                "{section}.{field} is a field but has no line in config/default.toml"
            );
        }
        for key in defaults[section.as_str()].as_table().unwrap().keys() {
            assert!(
                in_struct.contains(key),
                "{section}.{key} is in config/default.toml but no field"
            );
        }
    }
}

/// `ticker check-config` prints the effective settings, variables applied.
#[test]
fn check_config_prints_effective_settings() {
    let output = bare_ticker()
        .arg("check-config")
        .env("TICKER__SERVER__PORT", "0")
        .env("TICKER__FEED__SEED", "99")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed: Settings = toml::from_str(&String::from_utf8(output.stdout).unwrap()).unwrap();
    assert_eq!(printed.server.port, 0);
    assert_eq!(printed.feed.seed, Some(99));
    assert_eq!(
        printed.feed.symbols.len(),
        Settings::defaults().unwrap().feed.symbols.len()
    );
}

/// Invalid settings stop the binary with exit code 2 and a message naming the key, whether it
/// serves or only checks.
#[test]
fn invalid_settings_exit_with_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bad.toml", "[feed]\ntick_interval_ms = 0\n");
    for args in [vec!["check-config"], vec!["serve"], vec![]] {
        let output = bare_ticker()
            .args(&args)
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("feed.tick_interval_ms"), "{stderr}");
    }
    let output = bare_ticker()
        .env("TICKER__WS__IDLE_TIMEOUT_MS", "100")
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("ws.heartbeat_interval_ms")
    );
}

/// `ticker token` prints an HS256 JWT with the claims asked for (`--sub`, `--symbols`,
/// `--ttl-secs`, the configured audience), and refuses without a secret.
#[test]
fn token_command_signs_with_the_secret() {
    let secret = "0123456789abcdef0123456789abcdef";
    let output = bare_ticker()
        .env("TICKER__AUTH__HMAC_SECRET", secret)
        .env("TICKER__AUTH__AUDIENCE", "ticker-test")
        .args(["token", "--ttl-secs", "120", "--sub", "alice"])
        .args(["--symbols", "AAPL,M*"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap();
    let token = token.trim();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut auth = Settings::defaults().unwrap().auth;
    auth.hmac_secret = Some(Secret::new(secret));
    auth.audience = vec!["ticker-test".into()];
    auth.leeway_secs = 0;
    let granted = ticker::access::auth::Auth::new(&auth)
        .unwrap()
        .verify(token)
        .unwrap_or_else(|e| panic!("{token}: {e}"));
    assert_eq!(granted.subject.as_deref(), Some("alice"));
    assert_eq!(granted.symbols.describe(), ["AAPL", "M*"]);
    let expires = granted.expires_at.unwrap();
    assert!(
        (now + 119..=now + 121).contains(&expires),
        "{expires} {now}"
    );
    auth.audience = vec!["another-service".into()];
    assert!(
        ticker::access::auth::Auth::new(&auth)
            .unwrap()
            .verify(token)
            .is_err(),
        "minted for the configured audience only"
    );

    let output = bare_ticker().arg("token").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("auth.hmac_secret")
    );
}

/// `TICKER_ENV` picks `config/{env}.toml`, and a missing one is an error, not silently ignored.
#[test]
fn ticker_env_selects_a_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    write(
        &dir.path().join("config"),
        "demo.toml",
        "[ws]\nmax_subscriptions = 5\n",
    );
    let output = bare_ticker()
        .current_dir(dir.path())
        .env("TICKER_ENV", "demo")
        .arg("check-config")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8(output.stdout)
            .unwrap()
            .contains("max_subscriptions = 5")
    );
    let output = bare_ticker()
        .current_dir(dir.path())
        .env("TICKER_ENV", "absent")
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
