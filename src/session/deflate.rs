//! permessage-deflate's compression (RFC 7692 §7.2): raw deflate ending in a sync flush whose
//! `00 00 ff ff` tail is left off the wire, and the inflation of what a client compressed,
//! bounded by the message size limit.
//!
//! A message compressed without context takeover needs no state of its connection: it is
//! deflated on one compressor per worker thread, reset after each message ([`alone`]).

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Messages with a shorter payload go uncompressed (RSV1 clear): deflate saves little on them.
pub const MIN_COMPRESSED: usize = 128;
/// zlib's default level: on quote JSON, nearly the ratio of level 9 at a fraction of the cost.
const LEVEL: u32 = 6;
/// What a sync flush ends with and the wire leaves off.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

thread_local! {
    static ALONE: RefCell<Compress> = RefCell::new(compressor());
}

fn compressor() -> Compress {
    Compress::new(Compression::new(LEVEL), false)
}

/// Deflates one message with an empty window (no context takeover).
pub fn alone(payload: &[u8]) -> Vec<u8> {
    ALONE.with(|c| {
        let mut c = c.borrow_mut();
        let out = deflate(&mut c, payload);
        c.reset();
        out
    })
}

/// A connection's own compressor: each message may refer back to the ones before it.
pub struct Deflater(Compress);

impl Deflater {
    pub fn new() -> Self {
        Self(compressor())
    }

    /// Deflates the next message; messages must be deflated in the order they are sent.
    pub fn deflate(&mut self, payload: &[u8]) -> Vec<u8> {
        deflate(&mut self.0, payload)
    }
}

impl Default for Deflater {
    fn default() -> Self {
        Self::new()
    }
}

fn deflate(c: &mut Compress, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 2 + 64);
    let start = c.total_in();
    loop {
        let consumed = (c.total_in() - start) as usize;
        c.compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
            .expect("deflating into a growing buffer cannot fail");
        let consumed = (c.total_in() - start) as usize;
        if consumed == input.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(64));
    }
    debug_assert!(out.ends_with(&TAIL), "a sync flush ends with 00 00 ff ff");
    out.truncate(out.len().saturating_sub(TAIL.len()));
    out
}

/// Why a compressed message was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum InflateError {
    /// It inflates to more than the limit (1009).
    TooBig,
    /// It is no valid deflate data (1002).
    Invalid,
}

/// A connection's decompressor, made on its first compressed message.
#[derive(Debug)]
pub struct Inflater {
    state: Option<Decompress>,
    /// The client promised no context takeover: its window is forgotten after each message.
    reset_each: bool,
}

impl Inflater {
    pub fn new(client_no_context_takeover: bool) -> Self {
        Self {
            state: None,
            reset_each: client_no_context_takeover,
        }
    }

    /// Inflates one message's payload (without the tail), refusing more than `max` bytes out
    /// before producing them.
    pub fn inflate(&mut self, payload: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
        let d = self.state.get_or_insert_with(|| Decompress::new(false));
        let result = inflate(d, payload, max);
        if self.reset_each || result.as_ref().is_err_and(|e| *e == InflateError::Invalid) {
            d.reset(false);
        }
        result
    }
}

fn inflate(d: &mut Decompress, payload: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
    let input = [payload, &TAIL].concat();
    let limit = max + 1;
    let mut out = Vec::with_capacity((input.len() * 4).clamp(64, limit));
    let start_in = d.total_in();
    loop {
        let consumed = (d.total_in() - start_in) as usize;
        let before = (consumed, out.len());
        let status = d
            .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
            .map_err(|_| InflateError::Invalid)?;
        if out.len() > max {
            return Err(InflateError::TooBig);
        }
        let consumed = (d.total_in() - start_in) as usize;
        if status == Status::StreamEnd {
            // A final block: the next message starts a new stream.
            d.reset(false);
            return Ok(out);
        }
        if consumed == input.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        if out.len() == out.capacity() {
            let more = out.capacity().min(limit - out.len());
            out.reserve_exact(more);
        } else if before == (consumed, out.len()) {
            return Err(InflateError::Invalid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(n: usize) -> String {
        let quotes: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"symbol":"S{i}","bid":101.25,"ask":101.27,"seq":{i}}}"#))
            .collect();
        format!(r#"{{"type":"quotes","quotes":[{}]}}"#, quotes.join(","))
    }

    /// What one compressor deflates, alone or with context, inflates back, message by message.
    #[test]
    fn round_trips() {
        let mut with_context = Deflater::new();
        let mut inflater = Inflater::new(false);
        for n in [1, 10, 500] {
            let message = json(n);
            let shared = alone(message.as_bytes());
            assert!(shared.len() < message.len());
            assert!(!shared.ends_with(&TAIL));
            assert_eq!(
                Inflater::new(true).inflate(&shared, 1 << 20).unwrap(),
                message.as_bytes()
            );
            let own = with_context.deflate(message.as_bytes());
            assert_eq!(inflater.inflate(&own, 1 << 20).unwrap(), message.as_bytes());
        }
        // Context takeover pays: the same message again costs a few bytes.
        let again = with_context.deflate(json(10).as_bytes());
        assert!(again.len() < 40, "{}", again.len());
        assert_eq!(
            inflater.inflate(&again, 1 << 20).unwrap(),
            json(10).as_bytes()
        );
        assert_eq!(alone(json(10).as_bytes()), alone(json(10).as_bytes()));
    }

    /// A bomb is refused once it inflates past the limit; garbage is invalid.
    #[test]
    fn bombs_and_garbage_are_refused() {
        let bomb = alone(&vec![b'a'; 10_000_000]);
        assert!(bomb.len() < 20_000);
        assert_eq!(
            Inflater::new(false).inflate(&bomb, 4096),
            Err(InflateError::TooBig)
        );
        let exact = alone(&[b'a'; 4096]);
        assert_eq!(
            Inflater::new(false).inflate(&exact, 4096).unwrap().len(),
            4096
        );
        assert_eq!(
            Inflater::new(false).inflate(&[0xff; 16], 4096),
            Err(InflateError::Invalid)
        );
    }
}
