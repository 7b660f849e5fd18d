//! The bytes a WebSocket client sends, on their way from the connection's task (which reads the
//! socket, `http::upgraded`) to its session (which parses them): a bounded queue of chunks on
//! one worker thread. The session sees it as the upgrade request's payload, so actix-ws and the
//! frame guard read it as they read any payload.
//!
//! Bounded: past `limit` bytes unread the writer stops reading the socket, so a client that
//! sends faster than its session reads fills its own TCP window, not the server's memory.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;

/// What both ends share.
#[derive(Default)]
struct Shared {
    chunks: VecDeque<Bytes>,
    /// Bytes in `chunks`.
    len: usize,
    /// The client closed its side, or the connection failed.
    ended: Option<End>,
    reader_gone: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

#[derive(Clone, Copy)]
enum End {
    Eof,
    Failed,
}

/// The connection's end: what it read goes in here.
pub struct Writer {
    shared: Rc<RefCell<Shared>>,
    limit: usize,
}

/// The session's end: the payload its parser reads.
pub struct Reader(Rc<RefCell<Shared>>);

/// A pipe that holds up to `limit` unread bytes (more only in the chunk that crosses it).
pub fn pipe(limit: usize) -> (Writer, Reader) {
    let shared = Rc::new(RefCell::new(Shared::default()));
    (
        Writer {
            shared: Rc::clone(&shared),
            limit,
        },
        Reader(shared),
    )
}

impl Writer {
    /// Whether the reader can take more now; if not, the writer is woken when it can.
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut shared = self.shared.borrow_mut();
        if shared.reader_gone || shared.len < self.limit {
            return Poll::Ready(());
        }
        shared.writer = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Hands `chunk` to the reader; dropped if the reader is gone.
    pub fn send(&self, chunk: Bytes) {
        let mut shared = self.shared.borrow_mut();
        if shared.reader_gone || chunk.is_empty() {
            return;
        }
        shared.len += chunk.len();
        shared.chunks.push_back(chunk);
        shared.wake_reader();
    }

    /// The client closed its side: the reader ends after what it has.
    pub fn eof(&self) {
        self.end(End::Eof);
    }

    /// The connection failed: the reader fails after what it has.
    pub fn fail(&self) {
        self.end(End::Failed);
    }

    fn end(&self, end: End) {
        let mut shared = self.shared.borrow_mut();
        shared.ended.get_or_insert(end);
        shared.wake_reader();
    }
}

impl Shared {
    fn wake_reader(&mut self) {
        if let Some(waker) = self.reader.take() {
            waker.wake();
        }
    }
}

/// Without a writer (the connection's task is gone), the reader fails.
impl Drop for Writer {
    fn drop(&mut self) {
        self.end(End::Failed);
    }
}

impl Stream for Reader {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut shared = self.0.borrow_mut();
        if let Some(chunk) = shared.chunks.pop_front() {
            shared.len -= chunk.len();
            if let Some(writer) = shared.writer.take() {
                writer.wake();
            }
            return Poll::Ready(Some(Ok(chunk)));
        }
        match shared.ended.take() {
            Some(End::Eof) => {
                shared.ended = Some(End::Eof);
                Poll::Ready(None)
            }
            Some(End::Failed) => {
                // Once: the stream ends after its error.
                shared.ended = Some(End::Eof);
                Poll::Ready(Some(Err(PayloadError::Incomplete(None))))
            }
            None => {
                shared.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Without a reader (the session ended), the writer reads only to see the client go.
impl Drop for Reader {
    fn drop(&mut self) {
        let mut shared = self.0.borrow_mut();
        shared.reader_gone = true;
        shared.chunks.clear();
        shared.len = 0;
        if let Some(writer) = shared.writer.take() {
            writer.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use futures_util::task::noop_waker;

    use super::*;

    fn poll(reader: &mut Reader) -> Poll<Option<Result<Bytes, PayloadError>>> {
        let waker = noop_waker();
        reader.poll_next_unpin(&mut Context::from_waker(&waker))
    }

    fn room(writer: &Writer) -> bool {
        let waker = noop_waker();
        writer
            .poll_room(&mut Context::from_waker(&waker))
            .is_ready()
    }

    /// Chunks arrive in order; past the limit the writer waits until the reader takes some.
    #[test]
    fn chunks_in_order_and_bounded() {
        let (writer, mut reader) = pipe(4);
        assert!(room(&writer));
        writer.send(Bytes::from_static(b"abc"));
        assert!(room(&writer), "3 of 4");
        writer.send(Bytes::from_static(b"de"));
        assert!(!room(&writer), "5 of 4: full");
        assert!(matches!(poll(&mut reader), Poll::Ready(Some(Ok(b))) if b == "abc"));
        assert!(room(&writer));
        assert!(matches!(poll(&mut reader), Poll::Ready(Some(Ok(b))) if b == "de"));
        assert!(poll(&mut reader).is_pending());
    }

    /// EOF ends the reader after the data; a failure is one error, then the end.
    #[test]
    fn eof_and_failure() {
        let (writer, mut reader) = pipe(16);
        writer.send(Bytes::from_static(b"x"));
        writer.eof();
        assert!(matches!(poll(&mut reader), Poll::Ready(Some(Ok(_)))));
        assert!(matches!(poll(&mut reader), Poll::Ready(None)));
        let (writer, mut reader) = pipe(16);
        drop(writer);
        assert!(matches!(poll(&mut reader), Poll::Ready(Some(Err(_)))));
        assert!(matches!(poll(&mut reader), Poll::Ready(None)));
    }

    /// Without a reader, the writer always has room and keeps nothing.
    #[test]
    fn no_reader_no_memory() {
        let (writer, reader) = pipe(2);
        drop(reader);
        writer.send(Bytes::from_static(b"abcdef"));
        assert!(room(&writer));
        assert_eq!(writer.shared.borrow().len, 0);
    }
}
