//! A minimal WebSocket client that offers permessage-deflate (RFC 7692), for `push
//! --compression`: tokio-tungstenite, which the other clients use, does not implement the
//! extension and refuses frames with RSV1 set. It reads text messages (inflating compressed
//! ones, with or without the server's context takeover, as agreed), answers pings, and stops at
//! a Close. Only what a load generator needs: no fragmentation of its own messages, no TLS.

use std::io;

use flate2::{Decompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
/// What a sync flush ends with and the wire leaves off (RFC 7692 §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

pub struct RawWs<S> {
    stream: S,
    buf: Vec<u8>,
    /// Set when permessage-deflate was agreed.
    inflater: Option<Decompress>,
    /// The server compresses each message alone: reset the inflater after each.
    server_no_context_takeover: bool,
    /// The extension the server agreed to, as it answered.
    pub agreed: Option<String>,
}

/// What `next` read.
pub enum Received {
    /// A whole text message, inflated if it was compressed.
    Text(Vec<u8>),
    Closed,
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawWs<S> {
    /// The opening handshake for `path` on `host`, offering permessage-deflate when `deflate`.
    pub async fn connect(mut stream: S, host: &str, path: &str, deflate: bool) -> io::Result<Self> {
        let offer = if deflate {
            "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"
        } else {
            ""
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(1024);
        let end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        if !head.starts_with("HTTP/1.1 101") {
            let status = head.lines().next().unwrap_or("").to_owned();
            return Err(io::Error::other(format!("no upgrade: {status}")));
        }
        let agreed = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("sec-websocket-extensions")
                .then(|| value.trim().to_owned())
        });
        let server_no_context_takeover = agreed
            .as_deref()
            .is_some_and(|a| a.contains("server_no_context_takeover"));
        buf.drain(..end);
        Ok(Self {
            stream,
            buf,
            inflater: agreed.as_ref().map(|_| Decompress::new(false)),
            server_no_context_takeover,
            agreed,
        })
    }

    /// The next text message; pings are answered on the way.
    pub async fn next(&mut self) -> io::Result<Received> {
        let mut message: Vec<u8> = Vec::new();
        let mut compressed = false;
        loop {
            let (first, payload) = self.frame().await?;
            let opcode = first & 0x0F;
            match opcode {
                PING => self.send(PONG, &payload).await?,
                PONG => {}
                CLOSE => return Ok(Received::Closed),
                TEXT | CONTINUATION => {
                    if opcode == TEXT {
                        compressed = first & RSV1 != 0;
                    }
                    message.extend_from_slice(&payload);
                    if first & FIN != 0 {
                        if compressed {
                            message = self.inflate(&message)?;
                        }
                        return Ok(Received::Text(message));
                    }
                }
                _ => {}
            }
        }
    }

    /// One frame: its first byte and its payload (servers do not mask).
    async fn frame(&mut self) -> io::Result<(u8, Vec<u8>)> {
        self.fill(2).await?;
        let (first, short) = (self.buf[0], (self.buf[1] & 0x7F) as usize);
        let (header, len) = match short {
            126 => {
                self.fill(4).await?;
                (4, u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize)
            }
            127 => {
                self.fill(10).await?;
                let mut len = [0u8; 8];
                len.copy_from_slice(&self.buf[2..10]);
                (10, u64::from_be_bytes(len) as usize)
            }
            n => (2, n),
        };
        self.fill(header + len).await?;
        let payload = self.buf[header..header + len].to_vec();
        self.buf.drain(..header + len);
        Ok((first, payload))
    }

    async fn fill(&mut self, n: usize) -> io::Result<()> {
        while self.buf.len() < n {
            let mut chunk = [0u8; 16 * 1024];
            let read = self.stream.read(&mut chunk).await?;
            if read == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..read]);
        }
        Ok(())
    }

    fn inflate(&mut self, deflated: &[u8]) -> io::Result<Vec<u8>> {
        let inflater = self
            .inflater
            .as_mut()
            .ok_or_else(|| io::Error::other("RSV1 without permessage-deflate"))?;
        let mut input = deflated.to_vec();
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(deflated.len() * 4 + 64);
        let start = inflater.total_in();
        loop {
            let consumed = (inflater.total_in() - start) as usize;
            let status = inflater
                .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
                .map_err(io::Error::other)?;
            let consumed = (inflater.total_in() - start) as usize;
            if consumed == input.len() && out.len() < out.capacity() {
                break;
            }
            if status == Status::StreamEnd {
                break;
            }
            out.reserve(out.capacity().max(1024));
        }
        if self.server_no_context_takeover {
            inflater.reset(false);
        }
        Ok(out)
    }

    /// A masked control frame (payload under 126 bytes).
    async fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let payload = &payload[..payload.len().min(125)];
        let key = [0x12, 0x34, 0x56, 0x78];
        let mut frame = vec![FIN | opcode, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        self.stream.write_all(&frame).await
    }
}

#[cfg(test)]
mod tests {
    use flate2::{Compress, Compression, FlushCompress};

    use super::*;

    fn deflate(c: &mut Compress, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + 64);
        c.compress_vec(payload, &mut out, FlushCompress::Sync)
            .unwrap();
        assert!(out.ends_with(&TAIL));
        out.truncate(out.len() - 4);
        out
    }

    /// Messages compressed with context takeover inflate in order; plain ones pass through;
    /// a ping is answered with a masked pong.
    #[tokio::test]
    async fn reads_compressed_and_plain_messages() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let answer = tokio::spawn(async move {
            let mut request = vec![0u8; 4096];
            let n = server.read(&mut request).await.unwrap();
            assert!(String::from_utf8_lossy(&request[..n]).contains("permessage-deflate"));
            let mut out = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n".to_vec();
            let mut c = Compress::new(Compression::new(6), false);
            for text in [
                "{\"type\":\"quotes\",\"n\":1}",
                "{\"type\":\"quotes\",\"n\":2}",
            ] {
                let d = deflate(&mut c, text.as_bytes());
                out.extend_from_slice(&[FIN | RSV1 | TEXT, d.len() as u8]);
                out.extend_from_slice(&d);
            }
            out.extend_from_slice(&[FIN | PING, 1, b'p']);
            out.extend_from_slice(&[FIN | TEXT, 5]);
            out.extend_from_slice(b"plain");
            server.write_all(&out).await.unwrap();
            let mut pong = [0u8; 7];
            server.read_exact(&mut pong).await.unwrap();
            assert_eq!(pong[0], FIN | PONG);
            assert_eq!(pong[6] ^ pong[2], b'p');
            server
        });
        let mut ws = RawWs::connect(client, "x", "/ws", true).await.unwrap();
        assert_eq!(ws.agreed.as_deref(), Some("permessage-deflate"));
        for n in 1..=2 {
            let Received::Text(text) = ws.next().await.unwrap() else {
                panic!("text expected");
            };
            assert_eq!(
                text,
                format!("{{\"type\":\"quotes\",\"n\":{n}}}").as_bytes()
            );
        }
        let Received::Text(text) = ws.next().await.unwrap() else {
            panic!("text expected");
        };
        assert_eq!(text, b"plain");
        drop(answer.await.unwrap());
    }
}
