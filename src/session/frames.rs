//! The client's frames, parsed from the connection's bytes by actix-http's WebSocket codec
//! (which checks masking, opcodes and `ws.max_message_bytes`), text checked as UTF-8.
//!
//! This is what actix-ws's `MessageStream` does. It is written here because actix-ws hands out
//! its stream only together with an outbound channel (32 slots, allocated at once) and a body
//! that the session, writing through its own body, never uses: about 2 KiB a connection
//! (docs/benchmarks.md §14). The item type is actix-ws's, so the rest of the session reads
//! frames as before.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_http::ws::{Codec, Frame};
use actix_web::dev::Payload;
use actix_web::web::BytesMut;
use actix_ws::{Message, ProtocolError};
use bytestring::ByteString;
use futures_util::Stream;
use tokio_util::codec::Decoder;

/// The client's messages, one frame at a time.
pub struct Frames {
    payload: Payload,
    /// Bytes received and not yet parsed: at most a frame's worth, as the frame guard bounds.
    buf: BytesMut,
    codec: Codec,
    ended: bool,
}

impl Frames {
    /// Frames from `payload`, none longer than `max_size` bytes.
    pub fn new(payload: Payload, max_size: usize) -> Self {
        Self {
            payload,
            buf: BytesMut::new(),
            codec: Codec::new().max_size(max_size),
            ended: false,
        }
    }

    /// The next frame, an error, or `None` once the connection has ended.
    pub async fn recv(&mut self) -> Option<Result<Message, ProtocolError>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, ProtocolError>>> {
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => return Poll::Ready(Some(message(frame))),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
            if self.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) if self.buf.is_empty() => {
                    self.buf = BytesMut::from(bytes);
                }
                Poll::Ready(Some(Ok(bytes))) => self.buf.extend_from_slice(&bytes),
                Poll::Ready(Some(Err(e))) => {
                    self.ended = true;
                    return Poll::Ready(Some(Err(ProtocolError::Io(io::Error::other(e)))));
                }
                Poll::Ready(None) => self.ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

fn message(frame: Frame) -> Result<Message, ProtocolError> {
    Ok(match frame {
        Frame::Text(bytes) => Message::Text(
            ByteString::try_from(bytes)
                .map_err(|e| ProtocolError::Io(io::Error::new(io::ErrorKind::InvalidData, e)))?,
        ),
        Frame::Binary(bytes) => Message::Binary(bytes),
        Frame::Continuation(item) => Message::Continuation(item),
        Frame::Ping(bytes) => Message::Ping(bytes),
        Frame::Pong(bytes) => Message::Pong(bytes),
        Frame::Close(reason) => Message::Close(reason),
    })
}

#[cfg(test)]
mod tests {
    use actix_http::ws::Message as Out;
    use actix_web::error::PayloadError;
    use actix_web::web::Bytes;
    use futures_util::stream;
    use tokio_util::codec::Encoder;

    use super::*;

    /// What a client sends: masked frames (actix's client codec).
    fn client_frames(messages: Vec<Out>) -> Bytes {
        let mut codec = Codec::new().client_mode();
        let mut out = BytesMut::new();
        for m in messages {
            codec.encode(m, &mut out).expect("encodes");
        }
        out.freeze()
    }

    fn frames(chunks: Vec<Result<Bytes, PayloadError>>, max: usize) -> Frames {
        let stream: Pin<Box<dyn Stream<Item = _>>> = Box::pin(stream::iter(chunks));
        Frames::new(Payload::Stream { payload: stream }, max)
    }

    /// Frames split across chunks anywhere come out whole and in order, then the end.
    #[tokio::test]
    async fn frames_across_chunks() {
        let bytes = client_frames(vec![
            Out::Text("hello".into()),
            Out::Ping(Bytes::from_static(b"p")),
            Out::Close(None),
        ]);
        let chunks = bytes
            .chunks(3)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let mut f = frames(chunks, 1024);
        assert!(matches!(f.recv().await, Some(Ok(Message::Text(t))) if t == "hello"));
        assert!(matches!(f.recv().await, Some(Ok(Message::Ping(p))) if p == "p"));
        assert!(matches!(f.recv().await, Some(Ok(Message::Close(None)))));
        assert!(f.recv().await.is_none());
    }

    /// Bad UTF-8, an oversized frame and an unmasked frame are errors, as actix-ws reports them.
    #[tokio::test]
    async fn errors() {
        let mut bad = client_frames(vec![Out::Text("ab".into())]).to_vec();
        // Unmask, corrupt, mask again: the key is bytes 2..6 of a short frame.
        let key = [bad[2], bad[3], bad[4], bad[5]];
        bad[6] = 0xff ^ key[0];
        let mut f = frames(vec![Ok(Bytes::from(bad))], 1024);
        assert!(
            matches!(f.recv().await, Some(Err(ProtocolError::Io(e))) if e.kind() == io::ErrorKind::InvalidData)
        );

        let big = client_frames(vec![Out::Text("x".repeat(100).into())]);
        let mut f = frames(vec![Ok(big)], 10);
        assert!(matches!(f.recv().await, Some(Err(ProtocolError::Overflow))));

        let mut server = Codec::new();
        let mut unmasked = BytesMut::new();
        server.encode(Out::Text("x".into()), &mut unmasked).unwrap();
        let mut f = frames(vec![Ok(unmasked.freeze())], 10);
        assert!(matches!(
            f.recv().await,
            Some(Err(ProtocolError::UnmaskedFrame))
        ));
    }

    /// A failed connection is one `Io` error carrying the payload error, then the end.
    #[tokio::test]
    async fn connection_failure() {
        let mut f = frames(vec![Err(PayloadError::Incomplete(None))], 10);
        assert!(matches!(f.recv().await, Some(Err(ProtocolError::Io(_)))));
        assert!(f.recv().await.is_none());
    }
}
