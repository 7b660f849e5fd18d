//! An upgraded connection's one task: it writes what the 101's body yields straight to the
//! socket and hands what the client sends to the session through the inbound
//! [`pipe`](super::pipe). A tick wakes this task once per connection; its frame, encoded once
//! for every client that wants it, goes to the kernel from the shared buffer, never copied.
//!
//! No write buffer: the body is asked for the next frame only once the last one is in the
//! kernel. While the socket is full the body is not polled, which is what the session's
//! slow-client check watches (`session::body`). No read buffer either: reads land on the stack
//! and only what arrived is kept, until the session takes it. Hand-written (about a hundred
//! lines) because actix-http offers nothing between its full HTTP dispatcher and the raw
//! connection it hands to an upgrade service.
//!
//! The end: once the body has ended (after a Close) and its last bytes are out, the write side
//! is shut down and the client has [`LINGER`] to close its own; a connection that fails either
//! way ends at once, which the session learns as a gone body and a failed payload.

use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::body::{BoxBody, MessageBody};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Sleep, sleep};

use super::connection::Connection;
use super::pipe::Writer;
use crate::session::outbound;

/// How long a client has to close its side after the server finished.
pub const LINGER: Duration = Duration::from_secs(1);
/// The most read from the socket at once (on the stack).
const READ_CHUNK: usize = 4096;

/// The connection after its 101, as one future.
pub struct Upgraded {
    io: Connection,
    /// What the 101's body yields; `None` once it ended.
    body: Option<BoxBody>,
    /// The frame being written, and how much of it the socket took.
    writing: Bytes,
    written: usize,
    inbound: Writer,
    /// Until the client closes its side or the connection fails.
    reading: bool,
    /// Armed once everything is written and the write side shut down.
    linger: Option<Pin<Box<Sleep>>>,
}

impl Upgraded {
    /// Serves `io`, first writing `head` (the 101's head), then the body's frames.
    pub fn new(io: Connection, head: Bytes, inbound: Writer, body: BoxBody) -> Self {
        Self {
            io,
            body: Some(body),
            writing: head,
            written: 0,
            inbound,
            reading: true,
            linger: None,
        }
    }

    /// Reads what the client sent while the session has room for it. Err: the connection failed.
    fn read(&mut self, cx: &mut Context<'_>) -> Result<(), ()> {
        let mut chunk = [const { MaybeUninit::<u8>::uninit() }; READ_CHUNK];
        // Readiness first: it is what a tick's wake-up touches, and the connection's only.
        while self.reading
            && self.io.poll_read_ready(cx).is_ready()
            && self.inbound.poll_room(cx).is_ready()
        {
            let mut buf = ReadBuf::uninit(&mut chunk);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                    self.reading = false;
                    self.inbound.eof();
                }
                Poll::Ready(Ok(())) => self.inbound.send(Bytes::copy_from_slice(buf.filled())),
                Poll::Ready(Err(_)) => return Err(()),
                Poll::Pending => break,
            }
        }
        Ok(())
    }

    /// Writes frames until the socket is full or the body has nothing more now. Err: the
    /// connection failed.
    fn write(&mut self, cx: &mut Context<'_>) -> Result<(), ()> {
        loop {
            while self.written < self.writing.len() {
                match Pin::new(&mut self.io).poll_write(cx, &self.writing[self.written..]) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Err(()),
                    Poll::Ready(Ok(n)) => self.written += n,
                    Poll::Pending => return Ok(()),
                }
            }
            if !self.writing.is_empty() {
                outbound::recycle(std::mem::take(&mut self.writing));
                self.written = 0;
            }
            let Some(body) = self.body.as_mut() else {
                return Ok(());
            };
            match Pin::new(body).poll_next(cx) {
                Poll::Ready(Some(Ok(frame))) => self.writing = frame,
                Poll::Ready(Some(Err(_)) | None) => {
                    self.body = None;
                    return Ok(());
                }
                Poll::Pending => return Ok(()),
            }
        }
    }

    /// After the body ended and all is written: shuts the write side, then waits for the
    /// client to close its own, for at most `LINGER`.
    fn finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.linger.is_none() {
            match Pin::new(&mut self.io).poll_shutdown(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) => self.linger = Some(Box::pin(sleep(LINGER))),
            }
        }
        if !self.reading {
            return Poll::Ready(());
        }
        self.linger
            .as_mut()
            .map_or(Poll::Ready(()), |linger| linger.as_mut().poll(cx))
    }
}

impl Future for Upgraded {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.read(cx).is_err() || this.write(cx).is_err() {
            this.inbound.fail();
            return Poll::Ready(());
        }
        if this.body.is_none() && this.writing.is_empty() {
            // Discards what the client still sends (its Close) while waiting for it to go.
            if this.read(cx).is_err() {
                return Poll::Ready(());
            }
            return this.finish(cx);
        }
        Poll::Pending
    }
}
