//! Property tests (proptest) for the two parsers that take input from outside: the client
//! request parser and the settings loader. Each runs a bounded number of cases; a failing case
//! is shrunk and kept under `proptest-regressions/` as a regression test.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Value, json};
use ticker::protocol::history::Interval;
use ticker::protocol::{ClientMessage, Request};
use ticker::settings::{Settings, SettingsError, Sources};

/// Any JSON value, nested a few levels, with the protocol's own words over-represented.
fn json_value() -> impl Strategy<Value = Value> {
    let word = prop_oneof![
        Just("op".to_owned()),
        Just("subscribe".to_owned()),
        Just("unsubscribe".to_owned()),
        Just("ping".to_owned()),
        Just("symbols".to_owned()),
        Just("id".to_owned()),
        Just("*".to_owned()),
        "[A-Z.]{0,6}",
        ".{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        word.clone().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(word.clone(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A well-formed request.
fn request() -> impl Strategy<Value = Request> {
    let symbols = prop::collection::vec("[A-Z.*]{1,6}", 0..8);
    let since = prop::option::of(
        prop::collection::btree_map("[A-Z]{1,5}", any::<u64>(), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, json!(v))).collect())),
    );
    let message = prop_oneof![
        (symbols.clone(), since)
            .prop_map(|(symbols, since)| ClientMessage::Subscribe { symbols, since }),
        symbols.prop_map(|symbols| ClientMessage::Unsubscribe { symbols }),
        Just(ClientMessage::Ping),
        (
            "[A-Z]{1,5}",
            prop_oneof![Just(Interval::Second), Just(Interval::Minute)],
            prop::option::of(0..5000usize)
        )
            .prop_map(|(symbol, interval, limit)| ClientMessage::History {
                symbol,
                interval,
                limit
            }),
    ];
    (prop::option::of(json_value()), message).prop_map(|(id, message)| Request { id, message })
}

/// A request as a client writes it: the op's fields and its `id`, if any.
fn text_of(request: &Request) -> String {
    let mut value = serde_json::to_value(&request.message).unwrap();
    if let Some(id) = &request.id {
        value["id"] = id.clone();
    }
    value.to_string()
}

/// Where shrunk failing cases are kept; proptest replays them first on every run.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/properties.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Any text at all is either a request or a `bad_request` explanation; never a panic.
    #[test]
    fn parser_takes_any_text(text in ".{0,200}") {
        if let Err(unreadable) = Request::parse(&text) {
            prop_assert!(!unreadable.reason.is_empty());
        }
    }

    /// Any JSON value parses only when it is an object whose `op` is a known request.
    #[test]
    fn parser_accepts_only_known_ops(value in json_value()) {
        let parsed = Request::parse(&value.to_string());
        let op = value.get("op").and_then(Value::as_str);
        match parsed {
            Ok(request) => {
                prop_assert!(matches!(op, Some("subscribe" | "unsubscribe" | "ping" | "history")), "{value}");
                prop_assert_eq!(request.id.as_ref(), value.get("id"));
            }
            // A readable object's id comes back with the error, so the reply can carry it.
            Err(unreadable) => if value.is_object() {
                prop_assert_eq!(unreadable.id.as_ref(), value.get("id"));
            },
        }
    }

    /// Every well-formed request survives serialization and parsing unchanged.
    #[test]
    fn requests_round_trip(request in request()) {
        prop_assert_eq!(Request::parse(&text_of(&request)).unwrap(), request);
    }
}

/// Every environment key of the settings tree.
const KEYS: &[&str] = &[
    "SERVER__HOST",
    "SERVER__PORT",
    "SERVER__WORKERS",
    "SERVER__SHUTDOWN_GRACE_MS",
    "SERVER__SHUTDOWN_TIMEOUT_MS",
    "SERVER__SEND_BUFFER_BYTES",
    "SERVER__MAX_CONNECTIONS",
    "SERVER__MAX_CONNECTIONS_PER_IP",
    "SERVER__CONNECT_RATE_PER_IP",
    "SERVER__CONNECT_BURST_PER_IP",
    "SERVER__TRUSTED_PROXIES",
    "SERVER__ALLOWED_ORIGINS",
    "SERVER__HANDSHAKE_TIMEOUT_MS",
    "FEED__SOURCE",
    "FEED__TICK_INTERVAL_MS",
    "FEED__SEED",
    "FEED__SPREAD_BPS",
    "FEED__TIME_SCALE",
    "FEED__UPDATE_PROBABILITY",
    "FEED__MAX_QUIET_TICKS",
    "HISTORY__RESUME_UPDATES",
    "HISTORY__MAX_RESUME_QUOTES",
    "HISTORY__BARS_1S",
    "HISTORY__BARS_1M",
    "HISTORY__GENERATE_PAST",
    "WS__HEARTBEAT_INTERVAL_MS",
    "WS__IDLE_TIMEOUT_MS",
    "WS__MAX_MESSAGE_BYTES",
    "WS__MAX_SUBSCRIPTIONS",
    "WS__SLOW_CLIENT_TIMEOUT_MS",
    "WS__MAX_CLIENT_MESSAGES_PER_SEC",
    "WS__CLIENT_MESSAGE_BURST",
    "WS__MAX_EXCESS_MESSAGES",
    "WS__MAX_SYMBOLS_PER_REQUEST",
    "NATS__URL",
    "NATS__SUBJECT_PREFIX",
    "LOG__LEVEL",
    "LOG__FORMAT",
    "AUTH__TOKENS",
    "AUTH__HMAC_SECRET",
];

fn env_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        Just(String::new()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("true".to_owned()),
        "[a-z0-9.:/_-]{0,12}",
        ".{0,12}",
    ]
}

/// Every dotted key the default settings have, for checking that errors name a real one.
fn known_keys() -> Vec<String> {
    let toml: toml::Value = toml::from_str(&Settings::defaults().unwrap().to_toml()).unwrap();
    let mut keys = Vec::new();
    for (section, table) in toml.as_table().unwrap() {
        keys.push(section.clone());
        if let Some(table) = table.as_table() {
            keys.extend(table.keys().map(|k| format!("{section}.{k}")));
        }
    }
    keys
}

proptest! {
    #![proptest_config(config(256))]

    /// Any values in any of the settings' environment variables load, or are refused with an
    /// error; a refusal by validation names a real key. Never a panic.
    #[test]
    fn settings_loader_takes_any_environment(
        vars in prop::collection::vec((prop::sample::select(KEYS), env_value()), 0..4)
    ) {
        let env_vars = vars
            .into_iter()
            .map(|(k, v)| (format!("TICKER__{k}"), v))
            .collect();
        let sources = Sources { env_vars: Some(env_vars), ..Sources::default() };
        match Settings::load(&sources) {
            Ok(settings) => prop_assert!(settings.check().is_ok()),
            Err(SettingsError::Invalid { key, .. }) => {
                let known = known_keys();
                prop_assert!(
                    known.iter().any(|k| key == *k || key.starts_with(&format!("{k}."))
                        || key.starts_with(&format!("{k}["))),
                    "unknown key {key}"
                );
            }
            Err(_) => {}
        }
    }

    /// Any text as a `--config` file loads or is refused; never a panic.
    #[test]
    fn settings_loader_takes_any_file(
        text in prop_oneof![
            ".{0,300}",
            json_value().prop_map(|v| format!("[ws]\nmax_subscriptions = {v}\n")),
            (0u32..2000).prop_map(|n| format!("[feed]\ntick_interval_ms = {n}\nsymbols = []\n")),
        ]
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("any.toml");
        std::fs::write(&path, text).unwrap();
        let sources = Sources {
            file: Some(path),
            env_vars: Some(Vec::new()),
            ..Sources::default()
        };
        let _ = Settings::load(&sources);
    }
}

/// Found by `requests_round_trip`: a float `id` came back from the parser as a neighbouring
/// float (serde_json's fast float parsing), so a `pong` would not echo the client's id exactly.
#[test]
fn float_ids_survive_parsing() {
    let id = -1.616_712_835_449_366_3e66_f64;
    let text = json!({"op": "ping", "id": id}).to_string();
    let parsed = Request::parse(&text).unwrap();
    assert_eq!(parsed.message, ClientMessage::Ping);
    assert_eq!(parsed.id.and_then(|id| id.as_f64()), Some(id));
}

/// The shapes the request parser must keep accepting (a regression anchor for the above).
#[test]
fn documented_requests_parse() {
    for request in [
        json!({"op": "subscribe", "symbols": ["AAPL", "MSFT"]}),
        json!({"op": "unsubscribe", "symbols": ["*"]}),
        json!({"op": "ping", "id": 7}),
        json!({"op": "ping"}),
        json!({"op": "subscribe", "symbols": ["AAPL"], "since": {"AAPL": 12}, "id": "r1"}),
        json!({"op": "history", "symbol": "AAPL", "interval": "1m", "limit": 300, "id": 2}),
        json!({"op": "history", "symbol": "AAPL", "interval": "1s"}),
    ] {
        assert!(Request::parse(&request.to_string()).is_ok(), "{request}");
    }
}
