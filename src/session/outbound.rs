//! Server-to-client WebSocket frames (RFC 6455 §5.2), encoded once into one buffer each: a
//! FIN+opcode byte, an unmasked 7/16/64-bit length, the payload. The frames of a tick are
//! built once and shared as `Bytes` by every client that takes them.
//!
//! A frame built for one client (its part of a tick, a reply) is written, then dropped; its
//! buffer goes back to a small per-thread pool (`recycle`) for the next frame, instead of to
//! the allocator: with thousands of clients each watching its own symbols, allocating and
//! freeing those buffers was an eighth of the server's CPU (docs/benchmarks.md §10).

use std::cell::RefCell;

use bytes::{BufMut, Bytes, BytesMut};

use crate::feed::Tick;
use crate::protocol::{QUOTES_TAIL, QuotesKind, quotes_frame};
use crate::session::deflate::{self, Deflater, MIN_COMPRESSED};
use crate::session::extension::Deflate;

/// Buffers kept for reuse per thread, and the largest kept.
const SPARE_BUFFERS: usize = 64;
const SPARE_CAPACITY: usize = 64 * 1024;

thread_local! {
    static SPARE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer for at least `len` bytes: a recycled one if this thread has one.
fn buffer(len: usize) -> BytesMut {
    match SPARE.with(|spare| spare.borrow_mut().pop()) {
        Some(mut buf) => {
            buf.reserve(len);
            buf
        }
        None => BytesMut::with_capacity(len),
    }
}

/// Takes back a frame's buffer once it is written, if nobody else holds it (a tick's shared
/// frame is freed as usual by its last holder).
pub fn recycle(frame: Bytes) {
    let Ok(mut buf) = frame.try_into_mut() else {
        return;
    };
    buf.clear();
    if buf.capacity() > SPARE_CAPACITY {
        return;
    }
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < SPARE_BUFFERS {
            spare.push(buf);
        }
    });
}

/// RFC 6455 §5.5: a control frame's payload is at most 125 bytes.
const MAX_CONTROL_PAYLOAD: usize = 125;
const FIN: u8 = 0x80;
/// RFC 7692 §6: set on a message's first frame, "this message is compressed".
const RSV1: u8 = 0x40;

/// The frame opcodes a server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Text = 0x1,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

/// The header of an unfragmented, unmasked frame carrying `len` payload bytes.
fn put_header(out: &mut BytesMut, first: u8, len: usize) {
    out.put_u8(first);
    if len < 126 {
        out.put_u8(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.put_u8(126);
        out.put_u16(len);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
}

/// One whole frame: header and payload in one buffer.
pub fn frame(opcode: OpCode, payload: &[u8]) -> Bytes {
    whole(FIN | opcode as u8, payload)
}

fn whole(first: u8, payload: &[u8]) -> Bytes {
    let mut out = buffer(payload.len() + 10);
    put_header(&mut out, first, payload.len());
    out.put_slice(payload);
    out.freeze()
}

/// A `quotes` message as a whole uncompressed frame, joined straight into the buffer it is
/// sent from (one allocation, one copy of each quote).
pub fn quotes_text<'a, I>(quotes: I) -> Bytes
where
    I: Iterator<Item = &'a str> + Clone,
{
    let head = QuotesKind::Quotes.head();
    let (count, bytes) = quotes
        .clone()
        .fold((0usize, 0usize), |(n, len), q| (n + 1, len + q.len()));
    let len = head.len() + bytes + count.saturating_sub(1) + QUOTES_TAIL.len();
    let mut out = buffer(len + 10);
    put_header(&mut out, FIN | OpCode::Text as u8, len);
    out.put_slice(head.as_bytes());
    for (i, quote) in quotes.enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(quote.as_bytes());
    }
    out.put_slice(QUOTES_TAIL.as_bytes());
    out.freeze()
}

/// A compressed text message (permessage-deflate): RSV1 set, `deflated` its payload.
pub fn deflated_text(deflated: &[u8]) -> Bytes {
    whole(FIN | RSV1 | OpCode::Text as u8, deflated)
}

/// A text frame (the caller guarantees UTF-8: protocol messages are JSON strings).
pub fn text(payload: &str) -> Bytes {
    frame(OpCode::Text, payload.as_bytes())
}

/// How one connection's text messages go on the wire: as they are, or compressed as agreed.
/// Control frames are never compressed.
pub enum Encoder {
    Plain,
    /// Each message deflated alone; a whole tick's frame is deflated once and shared.
    NoContext,
    /// One compressor for the connection, fed every compressed message in the order sent.
    Context(Box<Deflater>),
}

impl Encoder {
    pub fn new(deflate: Option<Deflate>) -> Self {
        match deflate {
            None => Self::Plain,
            Some(d) if d.server_no_context_takeover => Self::NoContext,
            Some(_) => Self::Context(Box::default()),
        }
    }

    /// One text message; called in the order the frames are written.
    pub fn text(&mut self, payload: &[u8]) -> Bytes {
        if payload.len() < MIN_COMPRESSED {
            return frame(OpCode::Text, payload);
        }
        match self {
            Self::Plain => frame(OpCode::Text, payload),
            Self::NoContext => deflated_text(&deflate::alone(payload)),
            Self::Context(deflater) => deflated_text(&deflater.deflate(payload)),
        }
    }

    /// A `quotes` message of these quotes; uncompressed, joined straight into its frame.
    pub fn quotes<'a, I>(&mut self, quotes: I) -> Bytes
    where
        I: Iterator<Item = &'a str> + Clone,
    {
        match self {
            Self::Plain => quotes_text(quotes),
            _ => self.text(quotes_frame(QuotesKind::Quotes, quotes).as_bytes()),
        }
    }

    /// A tick's whole frame: without per-connection context, encoded once and shared.
    pub fn tick(&mut self, tick: &Tick) -> Bytes {
        let payload = tick.frame().as_bytes();
        match self {
            Self::NoContext if payload.len() >= MIN_COMPRESSED => tick
                .deflated
                .get_or_init(|| deflated_text(&deflate::alone(payload)))
                .clone(),
            Self::Context(_) => self.text(payload),
            _ => tick.wire.get_or_init(|| text(tick.frame())).clone(),
        }
    }
}

/// A Ping or Pong; a payload over the control-frame limit is cut to it.
pub fn control(opcode: OpCode, payload: &[u8]) -> Bytes {
    frame(opcode, &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)])
}

/// A Close frame with a code and a reason, the reason cut (at a character boundary) to fit the
/// control-frame limit; `None` sends an empty Close.
pub fn close(reason: Option<(u16, &str)>) -> Bytes {
    let Some((code, description)) = reason else {
        return frame(OpCode::Close, &[]);
    };
    let mut end = description.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !description.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&description.as_bytes()[..end]);
    frame(OpCode::Close, &payload)
}

#[cfg(test)]
mod tests {
    use actix_http::ws::{CloseCode, CloseReason, Codec, Message};
    use actix_web::web::Bytes as ActixBytes;
    use tokio_util::codec::Encoder;

    use super::*;

    fn actix(message: Message) -> Vec<u8> {
        let mut out = BytesMut::new();
        Codec::new()
            .encode(message, &mut out)
            .expect("actix encodes it");
        out.to_vec()
    }

    /// Text frames of every length encoding are byte for byte what actix-http's encoder writes.
    #[test]
    fn text_frames_match_actix_http() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 200_000] {
            let payload = "q".repeat(len);
            assert_eq!(
                text(&payload).to_vec(),
                actix(Message::Text(payload.clone().into())),
                "length {len}"
            );
        }
    }

    /// Ping, Pong and Close (with and without a reason) match actix-http's encoder.
    #[test]
    fn control_frames_match_actix_http() {
        let data = b"beat".as_slice();
        assert_eq!(
            control(OpCode::Ping, data).to_vec(),
            actix(Message::Ping(ActixBytes::from_static(b"beat")))
        );
        assert_eq!(
            control(OpCode::Pong, data).to_vec(),
            actix(Message::Pong(ActixBytes::from_static(b"beat")))
        );
        assert_eq!(close(None).to_vec(), actix(Message::Close(None)));
        let reason = CloseReason {
            code: CloseCode::Policy,
            description: Some("client too slow".to_owned()),
        };
        assert_eq!(
            close(Some((1008, "client too slow"))).to_vec(),
            actix(Message::Close(Some(reason)))
        );
    }

    /// A quotes frame joined in place is the frame of the joined message.
    #[test]
    fn quotes_text_is_the_frame_of_quotes_frame() {
        for n in [0, 1, 2, 50] {
            let quotes: Vec<String> = (0..n).map(|i| format!(r#"{{"s":{i}}}"#)).collect();
            let joined = crate::protocol::quotes_frame(
                QuotesKind::Quotes,
                quotes.iter().map(String::as_str),
            );
            assert_eq!(
                quotes_text(quotes.iter().map(String::as_str)),
                text(&joined),
                "{n} quotes"
            );
        }
    }

    /// A written frame's buffer serves the next frame; a shared one is left alone.
    #[test]
    fn buffers_are_recycled_when_unshared() {
        let first = text(&"x".repeat(1000));
        let at = first.as_ptr();
        recycle(first);
        let second = text("short");
        assert_eq!(second.as_ptr(), at, "the same allocation");
        let shared = second.clone();
        recycle(second);
        let third = text("other");
        assert_ne!(
            third.as_ptr(),
            shared.as_ptr(),
            "still held elsewhere: not reused"
        );
    }

    /// Control payloads are cut to 125 bytes, a Close reason at a character boundary.
    #[test]
    fn control_frames_respect_the_size_limit() {
        assert_eq!(control(OpCode::Pong, &[7; 300]).len(), 2 + 125);
        let long = "é".repeat(100);
        let frame = close(Some((1000, &long)));
        assert_eq!(frame[1] as usize, frame.len() - 2);
        assert!(frame.len() - 2 <= 125);
        assert!(std::str::from_utf8(&frame[4..]).is_ok());
    }
}
