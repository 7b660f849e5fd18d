//! `SymbolRights`: which symbols a token opens, from its `symbols` claim: names (`AAPL`),
//! prefixes (`A*`) or `*`. Market data is licensed per symbol, so a session and a poll see only
//! these; a request naming others is told which ones it may not have.

use std::sync::Arc;

use crate::feed::symbols::{Resolved, SymbolId, Universe};
use crate::settings::is_valid_symbol;

/// The symbols a token opens; cheap to clone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SymbolRights {
    /// `None`: every symbol.
    patterns: Option<Arc<[Pattern]>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

/// A request resolved against the universe and the rights: what may be served, the names the
/// universe does not know, and the names the token does not open.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Entitled {
    pub ids: Vec<SymbolId>,
    pub unknown: Vec<String>,
    pub forbidden: Vec<String>,
}

impl SymbolRights {
    /// Every symbol.
    pub fn all() -> Self {
        Self::default()
    }

    /// Parses the entries of a `symbols` claim (case-insensitive); a `*` among them opens
    /// everything. The error names the first entry that is no name, prefix or `*`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut patterns = Vec::with_capacity(entries.len());
        for entry in entries {
            let entry = entry.as_ref().trim().to_ascii_uppercase();
            if entry == "*" {
                return Ok(Self::all());
            }
            let pattern = match entry.strip_suffix('*') {
                Some(prefix) if is_valid_symbol(prefix) => Pattern::Prefix(prefix.to_owned()),
                None if is_valid_symbol(&entry) => Pattern::Exact(entry),
                _ => return Err(format!("{entry:?} is no symbol, prefix (A*) or *")),
            };
            patterns.push(pattern);
        }
        Ok(Self {
            patterns: Some(patterns.into()),
        })
    }

    pub fn is_all(&self) -> bool {
        self.patterns.is_none()
    }

    /// Whether `symbol` (as the universe spells it) is open.
    pub fn allows(&self, symbol: &str) -> bool {
        let Some(patterns) = &self.patterns else {
            return true;
        };
        patterns.iter().any(|p| match p {
            Pattern::Exact(name) => name == symbol,
            Pattern::Prefix(prefix) => symbol.starts_with(prefix.as_str()),
        })
    }

    /// The claim's entries as given back to clients: `["*"]` or the names and prefixes.
    pub fn describe(&self) -> Vec<String> {
        match &self.patterns {
            None => vec!["*".to_owned()],
            Some(patterns) => patterns
                .iter()
                .map(|p| match p {
                    Pattern::Exact(name) => name.clone(),
                    Pattern::Prefix(prefix) => format!("{prefix}*"),
                })
                .collect(),
        }
    }

    /// Resolves requested names as `Universe::resolve` does, within these rights: `*` is every
    /// open symbol, a known name that is not open is `forbidden`, an unknown one `unknown`.
    pub fn resolve<S: AsRef<str>>(&self, universe: &Universe, names: &[S]) -> Entitled {
        if self.is_all() {
            let Resolved { ids, unknown } = universe.resolve(names);
            return Entitled {
                ids,
                unknown,
                forbidden: Vec::new(),
            };
        }
        let mut open = Vec::with_capacity(names.len());
        let mut forbidden: Vec<String> = Vec::new();
        for name in names {
            let name = name.as_ref().trim();
            match universe.lookup(name) {
                Some(id) if !self.allows(universe.name(id)) => {
                    let canonical = universe.name(id);
                    if !forbidden.iter().any(|f| f == canonical) {
                        forbidden.push(canonical.to_owned());
                    }
                }
                _ => open.push(name),
            }
        }
        let Resolved { mut ids, unknown } = universe.resolve(&open);
        ids.retain(|&id| self.allows(universe.name(id)));
        Entitled {
            ids,
            unknown,
            forbidden,
        }
    }

    /// Every open symbol of the universe, in its order.
    pub fn ids(&self, universe: &Universe) -> Vec<SymbolId> {
        (0..universe.len())
            .filter(|&id| self.allows(universe.name(id)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    fn universe() -> Universe {
        Universe::new(
            &Settings::defaults()
                .expect("defaults are valid")
                .feed
                .symbols,
        )
    }

    /// Names, prefixes and `*` parse case-insensitively; anything else is refused.
    #[test]
    fn parse_and_allow() {
        let rights = SymbolRights::parse(&["aapl", "M*", "BRK.B"]).unwrap();
        assert!(rights.allows("AAPL") && rights.allows("MSFT") && rights.allows("META"));
        assert!(rights.allows("BRK.B"));
        assert!(!rights.allows("AMZN") && !rights.allows("AAPLX"));
        assert_eq!(rights.describe(), ["AAPL", "M*", "BRK.B"]);
        assert!(SymbolRights::parse(&["AAPL", "*"]).unwrap().is_all());
        assert!(!SymbolRights::parse::<&str>(&[]).unwrap().allows("AAPL"));
        for bad in ["", "A B", "**", "A*B", "toolongsymbolname"] {
            assert!(SymbolRights::parse(&[bad]).is_err(), "{bad:?}");
        }
    }

    /// A request is split into what may be served, unknown names and forbidden names; `*` is
    /// every open symbol.
    #[test]
    fn resolve_within_rights() {
        let universe = universe();
        let rights = SymbolRights::parse(&["AAPL", "M*"]).unwrap();
        let got = rights.resolve(&universe, &["aapl", "AMZN", "NOPE", "MSFT", "AMZN"]);
        let names: Vec<&str> = got.ids.iter().map(|&id| universe.name(id)).collect();
        assert_eq!(names, ["AAPL", "MSFT"]);
        assert_eq!(got.unknown, ["NOPE"]);
        assert_eq!(got.forbidden, ["AMZN"]);
        let star = rights.resolve(&universe, &["*"]);
        let names: Vec<&str> = star.ids.iter().map(|&id| universe.name(id)).collect();
        assert_eq!(names, ["AAPL", "MSFT", "META", "MA"]);
        assert!(star.forbidden.is_empty());
        assert_eq!(rights.ids(&universe), star.ids);
        let all = SymbolRights::all().resolve(&universe, &["*"]);
        assert_eq!(all.ids.len(), universe.len());
    }
}
