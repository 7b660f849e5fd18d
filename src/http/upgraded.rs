//! An upgraded connection's one task: it writes what the 101's body yields straight to the
//! socket and hands what the client sends to the session through the inbound
//! [`pipe`](super::pipe). Its socket is a [`Wire`] it shares with the session's outbox: a
//! tick's frame, encoded once for every client that wants it, goes to the kernel from the
//! shared buffer, never copied, and for a session that waits for nothing it goes there from the
//! thread's listener without waking this task at all (`session::wire`); the task writes what
//! the body yields and whatever part of a frame the socket did not take at once.
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

use std::cell::RefCell;
use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::body::{BoxBody, MessageBody};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Sleep, sleep};

use super::connection::Connection;
use super::pipe::Writer;
use crate::session::body::Attach;
use crate::session::wire::Wire;

/// How long a client has to close its side after the server finished.
pub const LINGER: Duration = Duration::from_secs(1);
/// The most read from the socket at once (on the stack).
const READ_CHUNK: usize = 4096;

/// The connection after its 101, as one future.
pub struct Upgraded {
    /// The socket and the frame being written; shared with the session's outbox, whose
    /// ticks the thread's listener may write to it directly (`session::wire`).
    wire: Rc<RefCell<Wire<Connection>>>,
    /// What the 101's body yields; `None` once it ended.
    body: Option<BoxBody>,
    inbound: Writer,
    /// Until the client closes its side or the connection fails.
    reading: bool,
    /// Armed once everything is written and the write side shut down.
    linger: Option<Pin<Box<Sleep>>>,
}

impl Upgraded {
    /// Serves `io`, first writing `head` (the 101's head), then the body's frames; `attach`
    /// joins the socket to the session the body is from.
    pub fn new(
        io: Connection,
        head: Bytes,
        inbound: Writer,
        body: BoxBody,
        attach: Option<Attach>,
    ) -> Self {
        let wire = Rc::new(RefCell::new(Wire::new(io, head)));
        if let Some(attach) = attach {
            attach.wire(Rc::clone(&wire));
        }
        Self {
            wire,
            body: Some(body),
            inbound,
            reading: true,
            linger: None,
        }
    }

    /// Reads what the client sent while the session has room for it. Err: the connection failed.
    fn read(&mut self, cx: &mut Context<'_>) -> Result<(), ()> {
        let mut chunk = [const { MaybeUninit::<u8>::uninit() }; READ_CHUNK];
        let mut wire = self.wire.borrow_mut();
        let io = wire.io();
        // Readiness first: it is what a tick's wake-up touches, and the connection's only.
        while self.reading
            && io.poll_read_ready(cx).is_ready()
            && self.inbound.poll_room(cx).is_ready()
        {
            let mut buf = ReadBuf::uninit(&mut chunk);
            match Pin::new(&mut *io).poll_read(cx, &mut buf) {
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
            match self.wire.borrow_mut().poll_frame(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Err(()),
                Poll::Pending => return Ok(()),
            }
            let Some(body) = self.body.as_mut() else {
                return Ok(());
            };
            // The wire is not borrowed while the body runs.
            match Pin::new(body).poll_next(cx) {
                Poll::Ready(Some(Ok(frame))) => self.wire.borrow_mut().start(frame),
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
            match Pin::new(self.wire.borrow_mut().io()).poll_shutdown(cx) {
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
        if this.body.is_none() && this.wire.borrow().is_idle() {
            // Discards what the client still sends (its Close) while waiting for it to go.
            if this.read(cx).is_err() {
                return Poll::Ready(());
            }
            return this.finish(cx);
        }
        Poll::Pending
    }
}
