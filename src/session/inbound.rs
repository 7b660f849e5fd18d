//! Turns raw frames (`frames`) into what a session acts on: whole text messages (fragments
//! reassembled up to the size limit), control frames, or a protocol violation with its RFC 6455
//! close code. With permessage-deflate agreed, messages the client compressed are inflated,
//! the size limit applying to both the compressed and the inflated size.

use actix_web::error::PayloadError;
use actix_web::web::{Bytes, BytesMut};
use actix_ws::{CloseCode, CloseReason, Item, Message, ProtocolError};
use bytestring::ByteString;

use crate::session::deflate::{InflateError, Inflater};
use crate::session::frame_guard::{Mark, Marks};

#[derive(Debug, PartialEq)]
pub enum Inbound {
    Text(ByteString),
    Ping(Bytes),
    Pong,
    /// The client started the close handshake.
    Close(Option<CloseReason>),
    /// The client broke the protocol; close with this reason.
    Violation(CloseReason),
    /// The TCP connection ended (FIN or reset) without a Close: nothing more can be sent.
    Lost,
}

/// Reassembles fragmented text messages, refusing anything that would exceed `max_bytes`.
#[derive(Debug)]
pub struct Reassembly {
    max_bytes: usize,
    /// The text message being reassembled, if a fragmented one is in progress.
    partial: Option<BytesMut>,
    /// Whether that message is compressed.
    partial_deflated: bool,
    /// permessage-deflate, when agreed: the frame guard's marks and the inflater.
    deflate: Option<(Marks, Inflater)>,
}

impl Reassembly {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            partial: None,
            partial_deflated: false,
            deflate: None,
        }
    }

    /// Inflates the messages the frame guard marked compressed.
    pub fn with_deflate(mut self, marks: Marks, inflater: Inflater) -> Self {
        self.deflate = Some((marks, inflater));
        self
    }

    /// How the next data message arrived.
    fn mark(&self) -> Mark {
        self.deflate
            .as_ref()
            .map_or(Mark::Plain, |(marks, _)| marks.next())
    }

    /// A whole message's text, inflated if it was compressed.
    fn finish(&mut self, bytes: Bytes, deflated: bool) -> Inbound {
        let bytes = if deflated {
            let Some((_, inflater)) = self.deflate.as_mut() else {
                return violation(CloseCode::Protocol, "compressed without permessage-deflate");
            };
            match inflater.inflate(&bytes, self.max_bytes) {
                Ok(inflated) => Bytes::from(inflated),
                Err(InflateError::TooBig) => return too_big(),
                Err(InflateError::Invalid) => {
                    return violation(CloseCode::Protocol, "invalid compressed data");
                }
            }
        } else {
            bytes
        };
        match ByteString::try_from(bytes) {
            Ok(text) => Inbound::Text(text),
            Err(_) => invalid_utf8(),
        }
    }

    /// Classifies one item from the frame stream; `None` while a fragmented message is incomplete.
    pub fn accept(&mut self, item: Result<Message, ProtocolError>) -> Option<Inbound> {
        let message = match item {
            Ok(message) => message,
            Err(error) if connection_lost(&error) => return Some(Inbound::Lost),
            Err(error) => return Some(Inbound::Violation(violation_for(&error))),
        };
        match message {
            Message::Text(_) if self.partial.is_some() => Some(violation(
                CloseCode::Protocol,
                "text frame inside a fragmented message",
            )),
            Message::Text(_) if self.mark() != Mark::Plain => {
                Some(violation(CloseCode::Protocol, "message marks out of step"))
            }
            Message::Text(text) if text.len() > self.max_bytes => Some(too_big()),
            Message::Text(text) => Some(Inbound::Text(text)),
            Message::Binary(bytes)
                if self.partial.is_none() && self.mark() == Mark::DeflatedText =>
            {
                Some(self.finish(bytes, true))
            }
            Message::Continuation(Item::FirstBinary(bytes))
                if self.partial.is_none() && self.mark() == Mark::DeflatedText =>
            {
                self.partial_deflated = true;
                self.continuation(Item::FirstText(bytes))
            }
            Message::Binary(_) | Message::Continuation(Item::FirstBinary(_)) => Some(violation(
                CloseCode::Unsupported,
                "binary messages are not supported",
            )),
            Message::Continuation(Item::FirstText(bytes)) => {
                self.mark();
                self.partial_deflated = false;
                self.continuation(Item::FirstText(bytes))
            }
            Message::Continuation(item) => self.continuation(item),
            Message::Ping(payload) => Some(Inbound::Ping(payload)),
            Message::Pong(_) => Some(Inbound::Pong),
            Message::Close(Some(reason)) if !may_be_sent(u16::from(reason.code)) => Some(
                violation(CloseCode::Protocol, "close code not allowed on the wire"),
            ),
            Message::Close(reason) => Some(Inbound::Close(reason)),
            Message::Nop => None,
        }
    }

    fn continuation(&mut self, item: Item) -> Option<Inbound> {
        let (bytes, last) = match item {
            Item::FirstText(bytes) => {
                if self.partial.is_some() {
                    return Some(violation(
                        CloseCode::Protocol,
                        "new message before the last ended",
                    ));
                }
                self.partial = Some(BytesMut::new());
                (bytes, false)
            }
            Item::Continue(bytes) => (bytes, false),
            Item::Last(bytes) => (bytes, true),
            Item::FirstBinary(_) => unreachable!("binary continuations are refused by the caller"),
        };
        let Some(partial) = self.partial.as_mut() else {
            return Some(violation(
                CloseCode::Protocol,
                "continuation without a first frame",
            ));
        };
        if partial.len() + bytes.len() > self.max_bytes {
            self.partial = None;
            return Some(too_big());
        }
        partial.extend_from_slice(&bytes);
        if !last {
            return None;
        }
        let whole = self.partial.take().expect("checked above").freeze();
        let deflated = std::mem::take(&mut self.partial_deflated);
        Some(self.finish(whole, deflated))
    }
}

/// Close codes an endpoint may put in a Close frame (RFC 6455 §7.4 and the IANA registry):
/// the defined ones, and the ranges for libraries (3000–3999) and applications (4000–4999).
/// 1004–1006 and 1015 are reserved and must never appear on the wire.
fn may_be_sent(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The connection's pipe (`http::pipe`) ends with `PayloadError::Incomplete` when the peer
/// goes away (a read or write error), and `frames` wraps that in
/// `ProtocolError::Io`. It is no protocol violation: there is nobody left to send 1002 to.
fn connection_lost(error: &ProtocolError) -> bool {
    let ProtocolError::Io(e) = error else {
        return false;
    };
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<PayloadError>())
        .is_some_and(|p| matches!(p, PayloadError::Incomplete(_) | PayloadError::Io(_)))
}

fn violation_for(error: &ProtocolError) -> CloseReason {
    match error {
        ProtocolError::Overflow => reason(CloseCode::Size, "message too big"),
        // `FrameGuard` refused a frame from its header.
        ProtocolError::Io(e)
            if e.get_ref()
                .and_then(|inner| inner.downcast_ref::<PayloadError>())
                .is_some_and(|p| matches!(p, PayloadError::Overflow)) =>
        {
            reason(CloseCode::Size, "message too big")
        }
        // actix reports both bad UTF-8 and set reserved bits as `InvalidData`; only the first
        // carries a `Utf8Error`, and only it is 1007.
        ProtocolError::Io(e)
            if e.get_ref()
                .is_some_and(|inner| inner.is::<std::str::Utf8Error>()) =>
        {
            reason(CloseCode::Invalid, "text is not valid UTF-8")
        }
        other => reason(CloseCode::Protocol, &other.to_string()),
    }
}

fn too_big() -> Inbound {
    violation(CloseCode::Size, "message too big")
}

fn invalid_utf8() -> Inbound {
    violation(CloseCode::Invalid, "text is not valid UTF-8")
}

fn violation(code: CloseCode, description: &str) -> Inbound {
    Inbound::Violation(reason(code, description))
}

pub fn reason(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Result<Message, ProtocolError> {
        Ok(Message::Text(s.into()))
    }

    fn cont(item: Item) -> Result<Message, ProtocolError> {
        Ok(Message::Continuation(item))
    }

    fn code(inbound: Option<Inbound>) -> CloseCode {
        match inbound {
            Some(Inbound::Violation(r)) => r.code,
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    /// Fragments are reassembled into one text message.
    #[test]
    fn reassembles_fragments() {
        let mut r = Reassembly::new(64);
        assert_eq!(
            r.accept(cont(Item::FirstText(Bytes::from_static(b"{\"op\":")))),
            None
        );
        assert_eq!(
            r.accept(Ok(Message::Ping(Bytes::new()))),
            Some(Inbound::Ping(Bytes::new()))
        );
        assert_eq!(
            r.accept(cont(Item::Continue(Bytes::from_static(b"\"ping\"")))),
            None
        );
        assert_eq!(
            r.accept(cont(Item::Last(Bytes::from_static(b"}")))),
            Some(Inbound::Text("{\"op\":\"ping\"}".into()))
        );
        assert_eq!(r.accept(text("x")), Some(Inbound::Text("x".into())));
    }

    /// Each misuse maps to its RFC 6455 close code.
    #[test]
    fn violations_get_their_close_codes() {
        let mut r = Reassembly::new(8);
        assert_eq!(code(r.accept(text("123456789"))), CloseCode::Size);
        assert_eq!(
            code(r.accept(Ok(Message::Binary(Bytes::new())))),
            CloseCode::Unsupported
        );
        assert_eq!(
            code(r.accept(cont(Item::Continue(Bytes::new())))),
            CloseCode::Protocol
        );
        assert_eq!(
            code(r.accept(Err(ProtocolError::Overflow))),
            CloseCode::Size
        );
        let lone_lead_byte = vec![0xC0];
        let not_utf8 = std::str::from_utf8(&lone_lead_byte).unwrap_err();
        let utf8 = std::io::Error::new(std::io::ErrorKind::InvalidData, not_utf8);
        assert_eq!(
            code(r.accept(Err(ProtocolError::Io(utf8)))),
            CloseCode::Invalid
        );
        let rsv = std::io::Error::new(std::io::ErrorKind::InvalidData, "non-zero reserved bits");
        assert_eq!(
            code(r.accept(Err(ProtocolError::Io(rsv)))),
            CloseCode::Protocol
        );
        assert_eq!(
            code(r.accept(Err(ProtocolError::UnmaskedFrame))),
            CloseCode::Protocol
        );
        // How actix-ws reports a peer that went away: no violation, the connection is lost.
        let gone = std::io::Error::other(PayloadError::Incomplete(None));
        assert_eq!(r.accept(Err(ProtocolError::Io(gone))), Some(Inbound::Lost));

        r.accept(cont(Item::FirstText(Bytes::from_static(b"12345"))));
        assert_eq!(
            code(r.accept(cont(Item::Last(Bytes::from_static(b"6789"))))),
            CloseCode::Size
        );

        // Invalid UTF-8 split across fragments: each piece alone is not the problem.
        r.accept(cont(Item::FirstText(Bytes::from_static(b"a\xE2"))));
        assert_eq!(
            code(r.accept(cont(Item::Last(Bytes::from_static(b"\x28"))))),
            CloseCode::Invalid
        );

        r.accept(cont(Item::FirstText(Bytes::from_static(b"a"))));
        assert_eq!(code(r.accept(text("b"))), CloseCode::Protocol);
    }

    /// A Close with a code that must not be sent is a protocol error; valid codes are echoed.
    #[test]
    fn close_codes_are_checked() {
        let mut r = Reassembly::new(8);
        let close = |code: u16| {
            Ok(Message::Close(Some(CloseReason {
                code: CloseCode::from(code),
                description: None,
            })))
        };
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            assert_eq!(code(r.accept(close(bad))), CloseCode::Protocol, "{bad}");
        }
        for good in [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4408, 4999] {
            assert!(
                matches!(r.accept(close(good)), Some(Inbound::Close(Some(_)))),
                "{good}"
            );
        }
        assert_eq!(
            r.accept(Ok(Message::Close(None))),
            Some(Inbound::Close(None))
        );
    }
}
