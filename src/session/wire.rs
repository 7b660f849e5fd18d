//! The write end of a session's connection: the socket and the frame being written to it,
//! shared (one worker thread) by the connection's task (`http::upgraded`), which writes what the
//! session's body yields, and the thread's [`interest`](super::interest) listener, which writes
//! a tick's frame straight to a socket with nothing else to write, so that a client that keeps
//! up costs a tick one write and no task wake-up (`body::Outbox::send_now`).
//!
//! A write goes to the socket first without the runtime's readiness bookkeeping
//! ([`Socket::send_now`]): a socket that takes the frame is the usual case, and tokio's first
//! look at its readiness is a cache miss of its own per connection and tick. Only a socket that
//! does not take it all goes through tokio's `poll_write`, which registers the waker.
//!
//! One frame at a time, whoever started it: a frame the socket took in part stays here
//! ([`Wire::poll_frame`]) until the connection's task, woken when the socket has room, writes
//! the rest; nothing else is started before it is out, so frames never interleave.

use std::cell::RefCell;
use std::io::{self, ErrorKind};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::io::AsyncWrite;

use crate::session::outbound;

/// What a wire writes to.
pub trait Socket: AsyncWrite + Unpin {
    /// Writes what the socket takes of `buf` now, without registering for readiness: the
    /// caller follows a short write or `WouldBlock` with `poll_write`, which does.
    fn send_now(&self, buf: &[u8]) -> io::Result<usize>;
}

/// A socket and the frame being written to it.
pub struct Wire<W> {
    io: W,
    /// The frame being written, and how much of it the socket took.
    writing: Bytes,
    written: usize,
}

impl<W: Socket> Wire<W> {
    /// A wire that writes `first` (the 101's head) before anything else.
    pub fn new(io: W, first: Bytes) -> Self {
        Self {
            io,
            writing: first,
            written: 0,
        }
    }

    /// The socket, for the connection's task to read from and shut down.
    pub fn io(&mut self) -> &mut W {
        &mut self.io
    }

    /// Nothing is being written: a new frame may start.
    pub fn is_idle(&self) -> bool {
        self.writing.is_empty()
    }

    /// Starts writing `frame`; the wire was idle.
    pub fn start(&mut self, frame: Bytes) {
        debug_assert!(self.is_idle(), "a frame started over another");
        self.writing = frame;
        self.written = 0;
    }

    /// Writes what is left of the frame being written; `Ready(Ok)` once it is all out (its
    /// buffer recycled) or there is none, `Pending` with `cx` woken when the socket has room.
    pub fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.writing.len() {
            let rest = &self.writing[self.written..];
            let sent = match self.io.send_now(rest) {
                Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                    match Pin::new(&mut self.io).poll_write(cx, rest) {
                        Poll::Ready(Ok(0)) => Err(io::ErrorKind::WriteZero.into()),
                        Poll::Ready(sent) => sent,
                        Poll::Pending => return Poll::Pending,
                    }
                }
                sent => sent,
            };
            self.written += sent?;
        }
        if !self.writing.is_empty() {
            outbound::recycle(std::mem::take(&mut self.writing));
            self.written = 0;
        }
        Poll::Ready(Ok(()))
    }
}

/// A wire as a session sees it, whatever its socket.
pub trait Link {
    /// Nothing is being written, and nobody holds the wire now.
    fn is_idle(&self) -> bool;

    /// Starts `frame` on an idle wire and writes what the socket takes now. `Pending`: the
    /// rest stays on the wire, and `waker` (the connection's task) is woken when the socket has
    /// room. `Ready(Err)`: the connection failed; the frame stays, for the task to fail on.
    fn send(&self, frame: Bytes, waker: &Waker) -> Poll<io::Result<()>>;
}

impl<W: Socket> Link for RefCell<Wire<W>> {
    fn is_idle(&self) -> bool {
        self.try_borrow().is_ok_and(|wire| wire.is_idle())
    }

    fn send(&self, frame: Bytes, waker: &Waker) -> Poll<io::Result<()>> {
        let mut wire = self.borrow_mut();
        wire.start(frame);
        wire.poll_frame(&mut Context::from_waker(waker))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A socket that takes `room` bytes, then is full until given more.
    #[derive(Default)]
    pub struct TestSocket {
        pub taken: RefCell<Vec<u8>>,
        pub room: std::cell::Cell<usize>,
        /// Woken when given room, once `poll_write` found it full.
        pub waker: RefCell<Option<Waker>>,
    }

    impl TestSocket {
        pub fn with_room(room: usize) -> Self {
            Self {
                room: room.into(),
                ..Self::default()
            }
        }

        fn take(&self, buf: &[u8]) -> usize {
            let n = buf.len().min(self.room.get());
            self.room.set(self.room.get() - n);
            self.taken.borrow_mut().extend_from_slice(&buf[..n]);
            n
        }
    }

    impl Socket for TestSocket {
        fn send_now(&self, buf: &[u8]) -> io::Result<usize> {
            match self.take(buf) {
                0 => Err(ErrorKind::WouldBlock.into()),
                n => Ok(n),
            }
        }
    }

    impl AsyncWrite for TestSocket {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            match self.take(buf) {
                0 => {
                    *self.waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
                n => Poll::Ready(Ok(n)),
            }
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A frame the socket takes in part stays on the wire, which is busy until the rest is out.
    #[test]
    fn partial_write_keeps_the_rest() {
        let wire = RefCell::new(Wire::new(TestSocket::with_room(5), Bytes::new()));
        assert!(wire.is_idle());
        let waker = Waker::noop();
        assert!(
            wire.send(Bytes::from_static(b"0123456789"), waker)
                .is_pending()
        );
        assert!(!wire.is_idle(), "half a frame waits");
        assert!(
            wire.borrow().io.waker.borrow().is_some(),
            "woken when there is room"
        );
        wire.borrow().io.room.set(100);
        let mut cx = Context::from_waker(waker);
        assert!(matches!(
            wire.borrow_mut().poll_frame(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert!(wire.is_idle());
        assert!(wire.send(Bytes::from_static(b"ab"), waker).is_ready());
        assert_eq!(*wire.borrow().io.taken.borrow(), b"0123456789ab");
        // Borrowed by its task: not idle to anyone else.
        let held = wire.borrow_mut();
        assert!(!wire.is_idle());
        drop(held);
    }

    /// The first frame (the 101's head) goes before anything.
    #[test]
    fn first_frame_goes_first() {
        let wire = RefCell::new(Wire::new(
            TestSocket::with_room(100),
            Bytes::from_static(b"head"),
        ));
        assert!(!wire.is_idle());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(wire.borrow_mut().poll_frame(&mut cx).is_ready());
        assert_eq!(*wire.borrow().io.taken.borrow(), b"head");
    }
}
