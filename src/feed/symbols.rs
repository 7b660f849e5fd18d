//! The symbol universe, fixed at start-up: lookup, request resolution and search.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::settings::SymbolSettings;

/// Index of a symbol in the universe; cheap to copy and to use as an array index.
pub type SymbolId = usize;

/// What `GET /api/symbols` lists for each symbol.
#[derive(Debug, Clone, Serialize)]
pub struct SymbolInfo {
    pub symbol: String,
    pub name: String,
    /// The configured starting price (the day's open).
    pub price: f64,
}

/// Every symbol the service knows, in configuration order.
#[derive(Debug)]
pub struct Universe {
    infos: Vec<SymbolInfo>,
    index: HashMap<String, SymbolId>,
    /// Each symbol's name in lower case, for search without allocating per request.
    lower_names: Vec<String>,
}

/// How well a symbol matches a search, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Match {
    Symbol,
    SymbolPrefix,
    NameWordPrefix,
    NameContains,
}

/// The result of resolving names from a request: the known ids and the names that are not.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    pub ids: Vec<SymbolId>,
    pub unknown: Vec<String>,
}

impl Universe {
    pub fn new(symbols: &[SymbolSettings]) -> Self {
        let infos: Vec<SymbolInfo> = symbols
            .iter()
            .map(|s| SymbolInfo {
                symbol: s.symbol.clone(),
                name: s.name.clone(),
                price: s.price,
            })
            .collect();
        let index = infos
            .iter()
            .enumerate()
            .map(|(id, info)| (info.symbol.clone(), id))
            .collect();
        let lower_names = infos.iter().map(|i| i.name.to_lowercase()).collect();
        Self {
            infos,
            index,
            lower_names,
        }
    }

    /// Symbols matching `query` (case-insensitive), best matches first: the symbol itself, then
    /// symbols starting with it, then names with a word starting with it, then names containing
    /// it; in universe order within each. Returns how many match and the page
    /// `offset..offset + limit` of them. One pass over the universe, no allocation per symbol.
    pub fn search(&self, query: &str, offset: usize, limit: usize) -> (usize, Vec<&SymbolInfo>) {
        self.search_among(query, offset, limit, |_| true)
    }

    /// `search` among the symbols `open` says yes to (a token's rights), so that counts and pages
    /// are of those only.
    pub fn search_among(
        &self,
        query: &str,
        offset: usize,
        limit: usize,
        open: impl Fn(&str) -> bool,
    ) -> (usize, Vec<&SymbolInfo>) {
        let upper = query.trim().to_ascii_uppercase();
        let lower = query.trim().to_lowercase();
        let mut hits: Vec<(Match, SymbolId)> = Vec::new();
        for (id, info) in self.infos.iter().enumerate() {
            if !open(&info.symbol) {
                continue;
            }
            let name = &self.lower_names[id];
            let found = if info.symbol == upper {
                Some(Match::Symbol)
            } else if info.symbol.starts_with(&upper) {
                Some(Match::SymbolPrefix)
            } else if name
                .split(|c: char| !c.is_alphanumeric())
                .any(|word| word.starts_with(&lower))
            {
                Some(Match::NameWordPrefix)
            } else if name.contains(&lower) {
                Some(Match::NameContains)
            } else {
                None
            };
            if let Some(kind) = found {
                hits.push((kind, id));
            }
        }
        hits.sort_unstable();
        let page = hits
            .iter()
            .skip(offset)
            .take(limit)
            .map(|&(_, id)| &self.infos[id])
            .collect();
        (hits.len(), page)
    }

    pub fn len(&self) -> usize {
        self.infos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    pub fn infos(&self) -> &[SymbolInfo] {
        &self.infos
    }

    pub fn name(&self, id: SymbolId) -> &str {
        &self.infos[id].symbol
    }

    pub fn names(&self) -> Vec<String> {
        self.infos.iter().map(|i| i.symbol.clone()).collect()
    }

    /// Looks a symbol up case-insensitively, ignoring surrounding white space.
    pub fn lookup(&self, name: &str) -> Option<SymbolId> {
        let trimmed = name.trim();
        self.index
            .get(trimmed)
            .or_else(|| self.index.get(&trimmed.to_ascii_uppercase()))
            .copied()
    }

    /// Resolves requested names; `*` stands for every symbol. Ids come out deduplicated, in
    /// request order; unknown names are kept as given so the error can quote them. Linear in
    /// the number of names: duplicates are found by index or hash, never by scanning.
    pub fn resolve<S: AsRef<str>>(&self, names: &[S]) -> Resolved {
        let mut seen = vec![false; self.len()];
        let mut unknown_seen = HashSet::new();
        let mut resolved = Resolved::default();
        let mut push = |id: SymbolId, ids: &mut Vec<SymbolId>| {
            if !std::mem::replace(&mut seen[id], true) {
                ids.push(id);
            }
        };
        let mut star_seen = false;
        for name in names {
            let name = name.as_ref();
            if name.trim() == "*" {
                // Every symbol, once however often `*` repeats.
                if !std::mem::replace(&mut star_seen, true) {
                    (0..self.len()).for_each(|id| push(id, &mut resolved.ids));
                }
            } else if let Some(id) = self.lookup(name) {
                push(id, &mut resolved.ids);
            } else if unknown_seen.insert(name) {
                resolved.unknown.push(name.to_owned());
            }
        }
        resolved
    }

    /// Splits a `?symbols=A,B` query value into names, skipping empty pieces.
    pub fn split_list(list: &str) -> Vec<&str> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Search ranks the symbol, then symbol prefixes, then name words, then name substrings,
    /// and pages through them.
    #[test]
    fn search_ranks_and_pages() {
        let settings: Vec<SymbolSettings> = [
            ("APPX", "Something Else"),
            ("AAPL", "Apple Inc."),
            ("APP", "AppLovin Corporation"),
            ("MSFT", "Microsoft"),
            ("ZZZ", "Pineapple Farms"),
            ("APPL", "Applied Things"),
        ]
        .iter()
        .map(|(symbol, name)| SymbolSettings {
            symbol: (*symbol).to_owned(),
            name: (*name).to_owned(),
            price: 1.0,
            volatility: 0.1,
            drift: 0.0,
        })
        .collect();
        let universe = Universe::new(&settings);
        let symbols = |hits: Vec<&SymbolInfo>| -> Vec<String> {
            hits.iter().map(|i| i.symbol.clone()).collect()
        };
        let (total, page) = universe.search("app", 0, 10);
        assert_eq!(total, 5);
        assert_eq!(symbols(page), ["APP", "APPX", "APPL", "AAPL", "ZZZ"]);
        let (total, page) = universe.search("APP", 1, 2);
        assert_eq!(
            (total, symbols(page)),
            (5, vec!["APPX".into(), "APPL".into()])
        );
        assert_eq!(universe.search("micro", 0, 10).1[0].symbol, "MSFT");
        assert_eq!(universe.search("nothing", 0, 10).0, 0);
        assert_eq!(universe.search("", 0, 3).0, 6, "an empty query matches all");
    }

    fn universe() -> Universe {
        let sym = |s: &str| SymbolSettings {
            symbol: s.into(),
            name: s.into(),
            price: 10.0,
            volatility: 0.2,
            drift: 0.0,
        };
        Universe::new(&[sym("AAPL"), sym("MSFT"), sym("BRK.B")])
    }

    /// Names resolve case-insensitively, `*` expands to all, duplicates collapse, unknowns are kept.
    #[test]
    fn resolve_handles_case_star_duplicates_and_unknowns() {
        let u = universe();
        let r = u.resolve(&["msft", " AAPL ", "MSFT", "NOPE", "NOPE"]);
        assert_eq!(r.ids, vec![1, 0]);
        assert_eq!(r.unknown, vec!["NOPE".to_string()]);
        assert_eq!(u.resolve(&["brk.b", "*"]).ids, vec![2, 0, 1]);
    }

    /// 16,000 distinct unknown names, each repeated, and 1,000 stars: every unknown is kept once
    /// in request order and `*` expands once (one pass, no scan of what came before).
    #[test]
    fn resolve_handles_many_names_in_one_pass() {
        let u = universe();
        let unknown: Vec<String> = (0..16_000).map(|i| format!("X{i}")).collect();
        let names: Vec<&str> = unknown
            .iter()
            .map(String::as_str)
            .chain(["*"; 1000])
            .chain(unknown.iter().map(String::as_str))
            .collect();
        let r = u.resolve(&names);
        assert_eq!(r.unknown, unknown);
        assert_eq!(r.ids, vec![0, 1, 2]);
    }
}
