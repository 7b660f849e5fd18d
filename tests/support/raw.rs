//! A raw-frame WebSocket client (`RawClient`) that sends exactly the frames it is told to and
//! answers nothing by itself, for what a library will not do: stay silent, send invalid frames.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::PATIENCE;

/// A hand-rolled WebSocket client that sends exactly the frames it is told to, masked, and
/// never answers anything by itself.
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

impl RawClient {
    pub async fn connect(addr: SocketAddr, path: &str) -> Self {
        Self::connect_with(addr, path, "").await.0
    }

    /// Connects with `headers` (each line ending in `\r\n`) added to the upgrade request;
    /// returns the 101's status line and headers too.
    pub async fn connect_with(addr: SocketAddr, path: &str, headers: &str) -> (Self, String) {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{headers}\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut client = Self {
            stream,
            buf: Vec::new(),
        };
        let head = client.read_until_headers_end().await;
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        (client, head)
    }

    async fn read_until_headers_end(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 4);
                return head;
            }
            self.fill().await.expect("the server answers the upgrade");
        }
    }

    /// Reads more bytes; `None` at end of stream.
    async fn fill(&mut self) -> Option<usize> {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk))
            .await
            .expect("the server sends or closes in time")
            .unwrap_or(0);
        (n > 0).then(|| {
            self.buf.extend_from_slice(&chunk[..n]);
            n
        })
    }

    /// Sends one masked frame.
    pub async fn send_frame(&mut self, opcode: u8, payload: &[u8], fin: bool) {
        self.send_frame_with_first(u8::from(fin) << 7 | opcode, payload)
            .await;
    }

    /// Sends one masked frame whose first byte (FIN, RSV1–3, opcode) is `first`.
    pub async fn send_frame_with_first(&mut self, first: u8, payload: &[u8]) {
        let mut frame = vec![first];
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len <= 0xFFFF {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = [0x12, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        // The server may already have closed on an earlier frame; that is for the test to see.
        let _ = self.stream.write_all(&frame).await;
    }

    /// Makes dropping this client reset the connection (RST) instead of closing it (FIN).
    pub fn set_linger_zero(&mut self) {
        socket2::SockRef::from(&self.stream)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER can be set");
    }

    /// Writes bytes as they are, for frames no well-formed builder would produce.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Reads one server frame (unmasked, unfragmented): `(opcode, payload)`, or `None` at EOF.
    pub async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let (first, payload) = self.read_frame_with_first().await?;
        Some((first & 0x0F, payload))
    }

    /// Like `read_frame`, with the frame's whole first byte (FIN, RSV1–3, opcode).
    pub async fn read_frame_with_first(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some((first, payload, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Some((first, payload));
            }
            self.fill().await?;
        }
    }

    /// Reads frames until a Close; returns its code and the opcodes seen before it.
    pub async fn read_until_close(&mut self) -> (Option<u16>, Vec<u8>) {
        let mut seen = Vec::new();
        while let Some((opcode, payload)) = self.read_frame().await {
            if opcode == OP_CLOSE {
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                return (code, seen);
            }
            seen.push(opcode);
        }
        panic!("connection ended without a Close frame; saw opcodes {seen:?}");
    }

    /// True when the server has closed the TCP connection (EOF) with nothing more to read.
    pub async fn at_eof(&mut self) -> bool {
        self.buf.is_empty() && self.fill().await.is_none()
    }
}

fn parse_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let first = buf[0];
    assert_eq!(buf[1] & 0x80, 0, "server frames are never masked");
    let (len, header) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (usize::from(n), 2),
    };
    (buf.len() >= header + len).then(|| (first, buf[header..header + len].to_vec(), header + len))
}

/// Connects from `source`, another loopback address such as 127.0.0.2: a client with an address,
/// and so a per-address budget, of its own.
pub async fn connect_from(source: std::net::IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::new(source, 0))
        .expect("binds a loopback source address");
    socket.connect(addr).await.expect("connect")
}

/// A plain HTTP/1.1 client on one TCP connection, for what reqwest hides: the exact bytes of a
/// request, keep-alive, the source address, and the moment the server closes.
pub struct RawHttp {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// One answer read by [`RawHttp`].
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The status line and headers, header names in lowercase as the server sends them.
    pub head: String,
    pub body: String,
}

impl Answer {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl RawHttp {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::over(TcpStream::connect(addr).await.expect("connect"))
    }

    /// Connects from `source`, another loopback address (see [`connect_from`]).
    pub async fn connect_from(source: std::net::IpAddr, addr: SocketAddr) -> Self {
        Self::over(connect_from(source, addr).await)
    }

    pub fn over(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        // The server may have closed already; that is for the test to see.
        let _ = self.stream.write_all(bytes).await;
    }

    /// Sends `GET path` (keep-alive) and reads the answer.
    pub async fn get(&mut self, path: &str) -> Answer {
        let request = format!("GET {path} HTTP/1.1\r\nHost: ticker\r\n\r\n");
        self.send(request.as_bytes()).await;
        self.answer().await
    }

    /// Reads one answer, its body by `content-length`.
    pub async fn answer(&mut self) -> Answer {
        let end = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            assert!(self.fill().await > 0, "the server closed before answering");
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {head}"));
        let mut answer = Answer {
            status,
            head,
            body: String::new(),
        };
        let length: usize = answer
            .header("content-length")
            .map_or(0, |v| v.parse().expect("a numeric content-length"));
        while self.buf.len() < length {
            assert!(self.fill().await > 0, "the server closed inside a body");
        }
        answer.body = String::from_utf8_lossy(&self.buf[..length]).into_owned();
        self.buf.drain(..length);
        answer
    }

    /// Reads until the server closes the connection (end of stream or reset); returns what
    /// came. Panics after `PATIENCE`.
    pub async fn until_closed(&mut self) -> Vec<u8> {
        while self.fill().await > 0 {}
        std::mem::take(&mut self.buf)
    }

    /// Reads more bytes; 0 at end of stream or on a reset.
    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk))
            .await
            .expect("the server sends or closes in time")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }
}
