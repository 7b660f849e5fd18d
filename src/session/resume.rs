//! Resume: what a `subscribe` with `since` replays. For each newly subscribed symbol whose
//! updates after the client's seq are all still in the feed's history, those updates up to the
//! snapshot the subscription starts from, in order, as ordinary `quotes` frames; every other
//! symbol gets the snapshot. Live ticks continue from that same snapshot (each entry's seq), so
//! across the boundary no update is sent twice or skipped.
//!
//! What one request replays is bounded by `history.max_resume_quotes`: a symbol that would go
//! past it gets a snapshot instead, so a reconnecting client costs the server a bounded amount
//! of work and memory.

use std::collections::{HashMap, HashSet};

use bytestring::ByteString;

use crate::feed::Snapshot;
use crate::feed::history::{History, Replay};
use crate::feed::symbols::{SymbolId, Universe};
use crate::protocol::{QuotesKind, quotes_frame};

/// Quotes per replayed frame (about 200 bytes each): frames stay well under the message size
/// limits clients set by default (1 MiB and up).
pub const REPLAY_FRAME_QUOTES: usize = 500;

/// What to send for a resume.
#[derive(Debug, Default)]
pub struct Plan {
    /// Recovered symbols, sorted by id: no snapshot for them.
    pub recovered: Vec<SymbolId>,
    /// The replayed updates, oldest first, in frames.
    pub frames: Vec<ByteString>,
    pub quotes: usize,
    /// Why some `since` entries were not used, for one `bad_request` error, and the symbols.
    pub problems: Vec<String>,
    pub problem_symbols: Vec<String>,
}

/// Plans the resume of `since` (symbol, last seq the client has) for a subscribe of `requested`
/// of which `new` (sorted) are not subscribed yet, as of `snapshot`.
pub fn plan(
    since: &[(String, u64)],
    requested: &[SymbolId],
    new: &[SymbolId],
    snapshot: &Snapshot,
    history: &History,
    universe: &Universe,
) -> Plan {
    let mut plan = Plan::default();
    if since.is_empty() {
        return plan;
    }
    let mut wanted: HashMap<SymbolId, u64> = HashMap::with_capacity(since.len());
    let mut strangers = Vec::new();
    // `"*"` requests the whole universe: look names up in a set, not a list.
    let requested: HashSet<SymbolId> = requested.iter().copied().collect();
    for (name, seq) in since {
        match universe.lookup(name) {
            Some(id) if requested.contains(&id) => {
                wanted.insert(id, *seq);
            }
            _ => strangers.push(name.clone()),
        }
    }
    if !strangers.is_empty() {
        plan.problems.push(format!(
            "since names symbols this subscribe does not: {}",
            strangers.join(", ")
        ));
        plan.problem_symbols.extend(strangers);
    }
    let budget = history.limits().max_resume_quotes;
    let mut replayed: Vec<(u64, SymbolId, String)> = Vec::new();
    for &id in new {
        let Some(&after) = wanted.get(&id) else {
            continue;
        };
        let through = snapshot.quotes[id].seq;
        match history.replay(id, after, through) {
            Replay::Updates(updates) if replayed.len() + updates.len() <= budget => {
                plan.recovered.push(id);
                replayed.extend(updates.into_iter().map(|(ts, json)| (ts, id, json)));
            }
            Replay::Updates(_) | Replay::Gone => {}
            Replay::Ahead { latest } => {
                let name = universe.name(id);
                plan.problems.push(format!(
                    "since.{name} = {after} is ahead of its latest seq {latest} (a client of another run?); it got a snapshot"
                ));
                plan.problem_symbols.push(name.to_owned());
            }
        }
    }
    // In the order they happened; a symbol's own updates keep their seq order (stable sort).
    replayed.sort_by_key(|(ts, id, _)| (*ts, *id));
    plan.quotes = replayed.len();
    plan.frames = replayed
        .chunks(REPLAY_FRAME_QUOTES)
        .map(|chunk| {
            quotes_frame(
                QuotesKind::Quotes,
                chunk.iter().map(|(_, _, json)| json.as_str()),
            )
        })
        .collect();
    plan
}
