//! The edge's ordering rule: which quotes from the broker clients may see, and with what `seq`.
//!
//! Core NATS may deliver a message twice (a republish, a reconnect) or late, and a restarted
//! publisher numbers every symbol from zero again. Clients must only ever see a symbol's `seq`
//! rise, so the edge maps each publisher `(epoch, seq)` to a client `seq`:
//!
//! - within one epoch, client seq = offset + publisher seq, and anything not above the last
//!   client seq sent for that symbol is dropped (a duplicate or out of order);
//! - a larger epoch (a new publisher run) moves every symbol's offset past the last client seq
//!   sent, so the new run continues where the old one stopped; a smaller epoch (a late message of
//!   an old run) is dropped.
//!
//! Edges that saw the same runs compute the same offsets, so they agree on every `seq`.

use crate::feed::symbols::SymbolId;

/// Per-symbol ordering state for one edge.
#[derive(Debug, Clone)]
pub struct Sequencer {
    epoch: Option<u64>,
    offsets: Vec<u64>,
    /// The last client seq accepted per symbol; `None` until the publisher sent one.
    last: Vec<Option<u64>>,
}

/// What became of one quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequenced {
    /// Show it with this client seq.
    Accept(u64),
    /// Not newer than what clients have: drop it.
    Stale,
}

impl Sequencer {
    pub fn new(symbols: usize) -> Self {
        Self {
            epoch: None,
            offsets: vec![0; symbols],
            last: vec![None; symbols],
        }
    }

    /// The publisher run this edge follows.
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// Whether `epoch` is a run after the current one (or the first one seen).
    pub fn is_new_epoch(&self, epoch: u64) -> bool {
        self.epoch.is_none_or(|current| epoch > current)
    }

    /// The client seq of publisher seq `seq` of symbol `id` in run `epoch`, if that is the run
    /// this edge follows.
    pub fn client_seq(&self, epoch: u64, id: SymbolId, seq: u64) -> Option<u64> {
        (self.epoch == Some(epoch)).then(|| self.offsets[id].saturating_add(seq))
    }

    /// Decides on publisher seq `seq` of symbol `id` from run `epoch`.
    pub fn accept(&mut self, epoch: u64, id: SymbolId, seq: u64) -> Sequenced {
        match self.epoch {
            Some(current) if epoch < current => return Sequenced::Stale,
            Some(current) if epoch > current => self.start_epoch(epoch),
            None => self.start_epoch(epoch),
            Some(_) => {}
        }
        let client_seq = self.offsets[id].saturating_add(seq);
        match self.last[id] {
            Some(last) if client_seq <= last => Sequenced::Stale,
            _ => {
                self.last[id] = Some(client_seq);
                Sequenced::Accept(client_seq)
            }
        }
    }

    fn start_epoch(&mut self, epoch: u64) {
        if self.epoch.is_some() {
            // Seq 0 of the new run lands one above the last seq sent.
            for (offset, last) in self.offsets.iter_mut().zip(&self.last) {
                *offset = last.map_or(0, |l| l + 1);
            }
        }
        self.epoch = Some(epoch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Duplicates and out-of-order quotes are dropped; gaps are fine.
    #[test]
    fn duplicates_and_reordering_never_move_seq_back() {
        let mut s = Sequencer::new(2);
        assert_eq!(s.accept(10, 0, 5), Sequenced::Accept(5));
        assert_eq!(s.accept(10, 0, 5), Sequenced::Stale);
        assert_eq!(s.accept(10, 0, 4), Sequenced::Stale);
        assert_eq!(s.accept(10, 0, 8), Sequenced::Accept(8));
        assert_eq!(s.accept(10, 0, 7), Sequenced::Stale);
        assert_eq!(
            s.accept(10, 1, 0),
            Sequenced::Accept(0),
            "symbols are independent"
        );
    }

    /// A new run continues above the old one for every symbol; late messages of the old run
    /// are dropped; a third run continues above the second.
    #[test]
    fn a_new_epoch_continues_above_the_last_seq() {
        let mut s = Sequencer::new(3);
        assert_eq!(s.accept(100, 0, 40), Sequenced::Accept(40));
        assert_eq!(s.accept(100, 1, 7), Sequenced::Accept(7));
        assert!(s.is_new_epoch(200) && !s.is_new_epoch(100));
        assert_eq!(s.accept(200, 1, 1), Sequenced::Accept(9), "7 + 1 + 1");
        assert_eq!(s.accept(200, 0, 0), Sequenced::Accept(41));
        assert_eq!(
            s.accept(200, 2, 3),
            Sequenced::Accept(3),
            "never seen: no offset"
        );
        assert_eq!(s.accept(100, 0, 41), Sequenced::Stale, "old run");
        assert_eq!(s.epoch(), Some(200));
        assert_eq!(s.accept(300, 0, 0), Sequenced::Accept(42));
    }

    /// Two edges fed the same messages, in any duplicated or shuffled order within a run,
    /// hand out the same seqs for what both accept, and never a lower one.
    #[test]
    fn edges_agree_and_stay_monotonic_under_shuffling() {
        let stream: Vec<(u64, SymbolId, u64)> = (1..=50u64)
            .flat_map(|n| [(1, 0, n), (1, 1, n / 2)])
            .chain((0..=30u64).map(|n| (2, 0, n)))
            .collect();
        let mut a = Sequencer::new(2);
        let mut b = Sequencer::new(2);
        let mut last_b = [0u64; 2];
        let mut seen_a = Vec::new();
        for (i, &(epoch, id, seq)) in stream.iter().enumerate() {
            if let Sequenced::Accept(c) = a.accept(epoch, id, seq) {
                seen_a.push((epoch, id, seq, c));
            }
            // Edge b gets each message twice, and every third one after its successor.
            let mut batch = vec![(epoch, id, seq), (epoch, id, seq)];
            if i % 3 == 0 && i + 1 < stream.len() && stream[i + 1].0 == epoch {
                batch.insert(0, stream[i + 1]);
            }
            for (e, id, q) in batch {
                if let Sequenced::Accept(c) = b.accept(e, id, q) {
                    assert!(c > last_b[id] || last_b[id] == 0, "seq moved back");
                    last_b[id] = c;
                }
            }
        }
        assert_eq!(seen_a.last().map(|x| x.3), Some(last_b[0]));
    }
}
