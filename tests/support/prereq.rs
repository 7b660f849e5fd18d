//! Tests that need a program this machine may lack (a browser, a broker, Node.js, Python and
//! its packages) run under `libtest-mimic` (`harness = false`), so a missing program shows as
//! `ignored`, with the reason printed once, instead of a pass; under `CI=true` the test fails
//! instead.

use std::future::Future;
use std::path::PathBuf;

use libtest_mimic::{Arguments, Failed, Trial};

/// A program a test needs: found on `PATH` (or at the path in an environment variable).
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// Names to look for on `PATH`, first found wins.
    pub names: &'static [&'static str],
    /// A variable that may name the program's path instead.
    pub env: Option<&'static str>,
    /// How to get it, for the message.
    pub install: &'static str,
}

pub const NATS_SERVER: Program = Program {
    names: &["nats-server"],
    env: None,
    install: "apt-get install nats-server",
};
pub const NODE: Program = Program {
    names: &["node", "nodejs"],
    env: None,
    install: "apt-get install npm",
};
pub const NPM: Program = Program {
    names: &["npm"],
    env: None,
    install: "apt-get install npm",
};
pub const CHROMIUM: Program = Program {
    names: &["chromium", "chromium-browser", "google-chrome"],
    env: Some("CHROMIUM"),
    install: "apt-get install chromium, or set CHROMIUM",
};
pub const CHROMEDRIVER: Program = Program {
    names: &["chromedriver"],
    env: Some("CHROMEDRIVER"),
    install: "apt-get install chromium-driver, or set CHROMEDRIVER",
};

pub const PYTHON3: Program = Program {
    names: &["python3"],
    env: None,
    install: "apt-get install python3-pip",
};

impl Program {
    /// Where the program is, if anywhere.
    pub fn find(&self) -> Option<PathBuf> {
        if let Some(path) = self.env.and_then(std::env::var_os) {
            return Some(PathBuf::from(path));
        }
        let dirs = std::env::var_os("PATH")?;
        std::env::split_paths(&dirs)
            .flat_map(|dir| self.names.iter().map(move |n| dir.join(n)))
            .find(|p| p.is_file())
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// One test that needs `programs`: ignored (outside CI) or failed (in CI) when one is missing.
pub fn trial<F>(name: &str, programs: &[Program], test: fn() -> F) -> Trial
where
    F: Future<Output = ()> + 'static,
{
    let missing: Vec<String> = programs
        .iter()
        .filter(|p| p.find().is_none())
        .map(|p| format!("{} ({})", p.names[0], p.install))
        .collect();
    trial_unless_missing(name, missing, test)
}

/// What `python3` lacks of `modules` (import names), as one entry for `trial_unless_missing`:
/// nothing when it imports them all.
pub fn missing_python_modules(modules: &[&str], install: &str) -> Vec<String> {
    let imports = |module: &&str| {
        std::process::Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let lacking: Vec<&str> = modules.iter().filter(|m| !imports(m)).copied().collect();
    if lacking.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "the Python modules {} ({install})",
        lacking.join(", ")
    )]
}

/// One test that needs what `missing` names nothing of: ignored (outside CI) or failed (in CI)
/// otherwise.
pub fn trial_unless_missing<F>(name: &str, missing: Vec<String>, test: fn() -> F) -> Trial
where
    F: Future<Output = ()> + 'static,
{
    if missing.is_empty() {
        return Trial::test(name, move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime")
                .block_on(test());
            Ok(())
        });
    }
    let reason = format!("needs {}", missing.join(", "));
    if in_ci() {
        let message = format!("CI must run this test, but it {reason}");
        return Trial::test(name, move || Err(Failed::from(message)));
    }
    let message = format!("cannot run: it {reason}");
    Trial::test(name, move || Err(Failed::from(message)))
        .with_ignored_flag(true)
        .with_kind(reason)
}

/// Runs the trials like `cargo test` would, after saying once why any are ignored.
pub fn run(trials: Vec<Trial>) -> ! {
    let args = Arguments::from_args();
    for trial in trials
        .iter()
        .filter(|t| t.has_ignored_flag() && !t.kind().is_empty())
    {
        eprintln!("ignored {}: {}", trial.name(), trial.kind());
    }
    libtest_mimic::run(&args, trials).exit()
}
