//! Loading: the layers merged by the `config` crate, read strictly into the typed tree, then
//! every field's bounds and the relations between fields checked. Every error names the key
//! and where its value came from (a file, an environment variable, the defaults).

use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat, Value, ValueKind};
use validator::{ValidationError, ValidationErrors, ValidationErrorsKind};

use super::Settings;
use super::strict::Strict;

/// The defaults, compiled in so the binary runs from any working directory.
const DEFAULT_TOML: &str = include_str!("../../config/default.toml");
/// How the compiled-in defaults are named in messages.
const DEFAULTS: &str = "config/default.toml";
/// The prefix of settings variables: `TICKER__SECTION__KEY`.
const ENV_PREFIX: &str = "TICKER";
const ENV_SEPARATOR: &str = "__";

/// Why settings could not be loaded; every variant says what is wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A layer could not be read at all: a missing file, TOML syntax.
    #[error("cannot load settings: {0}")]
    Load(#[from] config::ConfigError),
    /// A settings file given by path that is no file.
    #[error("cannot load settings: {}: {reason}", .path.display())]
    File { path: PathBuf, reason: &'static str },
    /// The file `TICKER_ENV` selects, looked up in the `config` folder of the working directory.
    #[error(
        "cannot load settings: TICKER_ENV={env} selects {path}: {reason} (looked up relative to \
         the working directory; or pass the file with --config PATH)",
        path = .path.display()
    )]
    EnvironmentFile {
        env: String,
        path: PathBuf,
        reason: &'static str,
    },
    /// A value that does not fit its setting.
    #[error("invalid setting `{key}` (from {origin}): {reason}")]
    Invalid {
        key: String,
        /// Where the value came from: a file, an environment variable, the defaults.
        origin: String,
        reason: String,
    },
}

/// Where the layers come from; tests point these at temporary files and variables.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Folder holding `{TICKER_ENV}.toml`; `config` relative to the working directory by default.
    pub config_dir: Option<PathBuf>,
    /// The value of `TICKER_ENV`.
    pub environment: Option<String>,
    /// The file given by `--config PATH`.
    pub file: Option<PathBuf>,
    /// Variables to read instead of the process environment (tests only).
    pub env_vars: Option<Vec<(String, String)>>,
    /// Command-line flags, the last layer: (`section.key`, value, the flag as typed).
    pub flags: Vec<(&'static str, String, &'static str)>,
}

impl Sources {
    /// The sources a real process uses: `TICKER_ENV`, `--config`, and its environment.
    pub fn from_process(file: Option<PathBuf>) -> Self {
        Self {
            config_dir: None,
            environment: std::env::var("TICKER_ENV").ok().filter(|v| !v.is_empty()),
            file,
            env_vars: None,
            flags: Vec::new(),
        }
    }
}

/// The command-line flags as a `config` layer, each value remembering its flag for messages.
#[derive(Debug, Clone)]
struct Flags(Vec<(&'static str, String, &'static str)>);

impl config::Source for Flags {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<config::Map<String, Value>, config::ConfigError> {
        Ok(self
            .0
            .iter()
            .map(|(key, value, flag)| {
                let origin = format!("the command line ({flag})");
                ((*key).to_owned(), Value::new(Some(&origin), value.as_str()))
            })
            .collect())
    }
}

pub(super) fn load(sources: &Sources) -> Result<Settings, SettingsError> {
    let mut builder = Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
    if let Some(env) = &sources.environment {
        let dir = sources
            .config_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("config"));
        let path = dir.join(format!("{env}.toml"));
        let file = settings_file(&path).map_err(|e| match e {
            SettingsError::File { path, reason } => SettingsError::EnvironmentFile {
                env: env.clone(),
                path,
                reason,
            },
            other => other,
        })?;
        builder = builder.add_source(file);
    }
    if let Some(path) = &sources.file {
        builder = builder.add_source(settings_file(path)?);
    }
    // Variables stay text: the strict reader gives each the type of its setting.
    let mut env = Environment::with_prefix(ENV_PREFIX).separator(ENV_SEPARATOR);
    if let Some(vars) = &sources.env_vars {
        env = env.source(Some(vars.iter().cloned().collect()));
    }
    let tree = builder
        .add_source(env)
        .add_source(Flags(sources.flags.clone()))
        .build()?
        .cache;
    let settings: Settings =
        serde_path_to_error::deserialize(Strict(tree.clone())).map_err(|e| {
            let key = e.path().to_string();
            invalid(&tree, key, e.into_inner().0)
        })?;
    settings
        .check()
        .map_err(|(key, reason)| invalid(&tree, key, reason))?;
    Ok(settings)
}

/// A settings file named by path (`--config`, `TICKER_ENV`), which must be a regular file.
fn settings_file(path: &Path) -> Result<File<config::FileSourceFile, FileFormat>, SettingsError> {
    let reason = match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => None,
        Ok(meta) if meta.is_dir() => Some("is a directory, not a settings file"),
        Ok(_) => Some("is not a regular file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("no such file"),
        Err(_) => Some("cannot be read"),
    };
    match reason {
        Some(reason) => Err(SettingsError::File {
            path: path.to_owned(),
            reason,
        }),
        None => Ok(File::from(path).format(FileFormat::Toml).required(true)),
    }
}

fn invalid(tree: &Value, key: String, reason: String) -> SettingsError {
    let origin = origin_of(tree, &key);
    SettingsError::Invalid {
        key,
        origin,
        reason,
    }
}

/// Where the value at `key` (`server.port`, `feed.symbols[2].price`) came from: the deepest
/// value on the way that exists, so a missing key is blamed on the table that lacks it.
fn origin_of(tree: &Value, key: &str) -> String {
    let mut value = tree;
    for part in key.split('.') {
        let (name, indices) = part.split_once('[').unwrap_or((part, ""));
        let ValueKind::Table(table) = &value.kind else {
            break;
        };
        let Some(next) = table.get(name) else {
            break;
        };
        value = next;
        for index in indices
            .split('[')
            .filter_map(|i| i.trim_end_matches(']').parse::<usize>().ok())
        {
            match &value.kind {
                ValueKind::Array(items) if index < items.len() => value = &items[index],
                _ => break,
            }
        }
    }
    match value.origin() {
        None => DEFAULTS.to_owned(),
        Some("the environment") => {
            let path = key.split('[').next().unwrap_or(key);
            let variable: Vec<String> = path.split('.').map(str::to_ascii_uppercase).collect();
            format!(
                "environment variable {ENV_PREFIX}{ENV_SEPARATOR}{}",
                variable.join(ENV_SEPARATOR)
            )
        }
        Some(file) => file.to_owned(),
    }
}

/// The first failed bound, by key in a fixed order, with its reason in words.
pub(super) fn first_error(errors: &ValidationErrors) -> (String, String) {
    let mut all = Vec::new();
    flatten("", errors, &mut all);
    all.sort();
    all.into_iter()
        .next()
        .expect("validation failed, so some field has an error")
}

fn flatten(prefix: &str, errors: &ValidationErrors, out: &mut Vec<(String, String)>) {
    for (field, kind) in errors.errors() {
        let key = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Struct(inner) => flatten(&key, inner, out),
            ValidationErrorsKind::List(items) => {
                for (i, inner) in items {
                    flatten(&format!("{key}[{i}]"), inner, out);
                }
            }
            ValidationErrorsKind::Field(list) => {
                out.extend(list.iter().map(|e| (key.clone(), describe(e))));
            }
        }
    }
}

/// A bound in words: the rule's own message, or one built from `range`/`length` parameters.
fn describe(error: &ValidationError) -> String {
    if let Some(message) = &error.message {
        return message.to_string();
    }
    let param = |name: &str| error.params.get(name).map(ToString::to_string);
    let unit = if error.code == "length" {
        " entries"
    } else {
        ""
    };
    let bound = match (param("min"), param("exclusive_min"), param("max")) {
        (Some(min), _, Some(max)) => format!("must be from {min} to {max}{unit}"),
        (None, Some(min), Some(max)) => format!("must be above {min} and at most {max}{unit}"),
        (Some(min), _, None) => format!("must be at least {min}{unit}"),
        (None, Some(min), None) => format!("must be above {min}{unit}"),
        (None, None, Some(max)) => format!("must be at most {max}{unit}"),
        (None, None, None) => format!("fails the `{}` rule", error.code),
    };
    match param("value") {
        Some(value) => format!("{bound}, not {value}"),
        None => bound,
    }
}
