//! `docker-compose.yml` is checked against what `tests/cluster.rs` runs, so the compose file is
//! proven by those tests even where no container engine exists.

mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};

use support::cluster::{COMMON_ENV, EDGE_COMMAND, EDGE_ENV, PUBLISHER_COMMAND};

/// `docker-compose.yml` runs what `tests/cluster.rs` runs: the same commands, `TICKER_ENV=docker`, the
/// edge's `feed.source`, two edge replicas behind a load balancer, and a health check on every
/// service. Where `docker compose` exists, it validates the file too.
#[test]
fn compose_file_runs_what_these_tests_run() {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/docker-compose.yml")).expect("compose file");
    let compose: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    let services = &compose["services"];
    let command = |name: &str| -> Vec<String> {
        serde_yaml::from_value(services[name]["command"].clone())
            .unwrap_or_else(|e| panic!("{name} has a command list: {e}"))
    };
    assert_eq!(command("publisher"), PUBLISHER_COMMAND);
    assert_eq!(command("edge"), EDGE_COMMAND);
    let env = |name: &str| -> HashMap<String, String> {
        serde_yaml::from_value(services[name]["environment"].clone())
            .unwrap_or_else(|e| panic!("{name} has an environment map: {e}"))
    };
    for (name, wanted) in [
        ("publisher", COMMON_ENV.to_vec()),
        ("edge", [COMMON_ENV, EDGE_ENV].concat()),
    ] {
        let env = env(name);
        for (key, value) in wanted {
            assert_eq!(
                env.get(key).map(String::as_str),
                Some(value),
                "{name}: {key}"
            );
        }
    }
    assert_eq!(services["edge"]["deploy"]["replicas"].as_u64(), Some(2));
    for name in ["nats", "publisher", "edge", "lb"] {
        assert!(
            services[name]["healthcheck"]["test"].is_sequence(),
            "{name} has a health check"
        );
    }
    assert_eq!(services["lb"]["ports"].as_sequence().map(Vec::len), Some(1));
    let docker = Command::new("docker")
        .args(["compose", "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if docker.is_ok_and(|s| s.success()) {
        let status = Command::new("docker")
            .args([
                "compose",
                "-f",
                &format!("{root}/docker-compose.yml"),
                "config",
                "-q",
            ])
            .status()
            .expect("docker compose runs");
        assert!(status.success(), "docker compose config rejects the file");
    } else {
        eprintln!("docker compose not available: checked the file's structure only");
    }
}

/// The load balancer passes WebSocket upgrades through and outwaits quiet connections; the image
/// is built in two stages and runs as an unprivileged user with `ticker` as its entry point.
#[test]
fn balancer_and_image_are_set_up_for_websockets() {
    let root = env!("CARGO_MANIFEST_DIR");
    let compose = std::fs::read_to_string(format!("{root}/docker-compose.yml")).unwrap();
    assert!(compose.contains("./deploy/nginx.conf:/etc/nginx/conf.d/default.conf"));
    let nginx = std::fs::read_to_string(format!("{root}/deploy/nginx.conf")).unwrap();
    for needle in [
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_read_timeout 1h;",
        "server edge:8080",
    ] {
        assert!(nginx.contains(needle), "deploy/nginx.conf lacks {needle}");
    }
    let dockerfile = std::fs::read_to_string(format!("{root}/Dockerfile")).unwrap();
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert_eq!(stages, 2, "a build stage and a runtime stage");
    assert!(
        dockerfile.contains("\nUSER ticker\n"),
        "runs as a non-root user"
    );
    assert!(dockerfile.contains(r#"ENTRYPOINT ["ticker"]"#));
}

/// The compose file follows the Compose Specification, checked by the typed model of the
/// `compose_spec` crate (every key known, every value of its shape, every network and volume a
/// service uses defined), which also refuses the same file with a misspelt key.
#[test]
fn compose_file_follows_the_specification() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml");
    let text = std::fs::read_to_string(path).expect("docker-compose.yml is readable");
    let compose = compose_spec::Compose::options()
        .from_yaml_str(&text)
        .unwrap_or_else(|e| panic!("docker-compose.yml does not follow the specification: {e}"));
    compose
        .validate_all()
        .expect("every resource a service uses is defined");
    for service in ["nats", "publisher", "edge", "lb"] {
        assert!(compose.services.contains_key(service), "service {service}");
    }
    let misspelt = text.replacen("healthcheck:", "healtcheck:", 1);
    assert!(
        compose_spec::Compose::options()
            .from_yaml_str(&misspelt)
            .is_err(),
        "the checker refuses unknown keys"
    );
}
