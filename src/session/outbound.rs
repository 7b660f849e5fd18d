//! Server-to-client WebSocket frames (RFC 6455 §5.2), encoded once into one buffer each: a
//! FIN+opcode byte, an unmasked 7/16/64-bit length, the payload. The frames of a tick are
//! built once and shared as `Bytes` by every client that takes them.

use bytes::{BufMut, Bytes, BytesMut};

use crate::feed::Tick;
use crate::session::deflate::{self, Deflater, MIN_COMPRESSED};
use crate::session::extension::Deflate;

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
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    put_header(&mut out, first, payload.len());
    out.put_slice(payload);
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

    /// A tick's whole frame: without per-connection context, encoded once and shared.
    pub fn tick(&mut self, tick: &Tick) -> Bytes {
        let payload = tick.frame.as_bytes();
        match self {
            Self::NoContext if payload.len() >= MIN_COMPRESSED => tick
                .deflated
                .get_or_init(|| deflated_text(&deflate::alone(payload)))
                .clone(),
            Self::Context(_) => self.text(payload),
            _ => tick.wire.get_or_init(|| text(&tick.frame)).clone(),
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
