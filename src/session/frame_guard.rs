//! A guard on the bytes a WebSocket client sends, in front of actix-ws's parser: it reads each
//! frame header as it arrives and refuses a frame longer than `ws.max_message_bytes` at once.
//!
//! actix's parser checks the size limit only after the whole frame is buffered, and actix-ws
//! reads everything the socket has into that buffer; a client announcing a 4 GiB frame could
//! make the server hold everything it sends until the frame ends. The guard costs a few
//! arithmetic operations per chunk: it never copies or parses payloads.
//!
//! With permessage-deflate agreed, it also hides RSV1 from actix's parser, which refuses any
//! reserved bit: a compressed message's first frame goes on with RSV1 clear and the binary
//! opcode (so actix-ws does not check its compressed bytes as UTF-8), and the guard notes, for
//! every data message in order, whether it was a compressed text or binary message
//! ([`Marks`]), for `inbound::Reassembly` to inflate it. RSV1 anywhere else (a continuation,
//! a control frame) or without the extension is left for actix to refuse with 1002.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use actix_web::error::PayloadError;
use actix_web::web::{Bytes, BytesMut};
use futures_util::Stream;

/// The longest frame header: 2 bytes, a 64-bit length and a masking key.
const MAX_HEADER: usize = 14;
const RSV1: u8 = 0x40;
const OPCODE: u8 = 0x0F;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;

/// How a data message arrived (one per text or binary opcode frame, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Plain,
    /// Compressed text, handed on as a binary message.
    DeflatedText,
    DeflatedBinary,
}

/// The marks of the data messages the guard has passed and the parser has not yet handed out;
/// shared by the guard and the session's reassembly (one worker thread).
#[derive(Debug, Clone, Default)]
pub struct Marks(Rc<RefCell<VecDeque<Mark>>>);

impl Marks {
    fn push(&self, mark: Mark) {
        self.0.borrow_mut().push_back(mark);
    }

    /// The mark of the next data message.
    pub fn next(&self) -> Mark {
        self.0.borrow_mut().pop_front().unwrap_or(Mark::Plain)
    }
}

/// Passes a client's byte stream through, failing with `PayloadError::Overflow` (then ending)
/// as soon as a frame header announces more than `max` payload bytes.
pub struct FrameGuard<S> {
    inner: S,
    scanner: HeaderScanner,
    failed: bool,
    /// First header bytes to rewrite in the current chunk: (offset, new byte).
    edits: Vec<(usize, u8)>,
}

impl<S> FrameGuard<S> {
    /// `deflate`: permessage-deflate was agreed; the marks go to the reassembly.
    pub fn new(inner: S, max: usize, deflate: Option<Marks>) -> Self {
        let mut scanner = HeaderScanner::new(max as u64);
        scanner.marks = deflate;
        Self {
            inner,
            scanner,
            failed: false,
            edits: Vec::new(),
        }
    }
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
            Some(Ok(bytes)) => {
                this.edits.clear();
                if this.scanner.scan(&bytes, &mut this.edits).is_err() {
                    this.failed = true;
                    return Poll::Ready(Some(Err(PayloadError::Overflow)));
                }
                if this.edits.is_empty() {
                    return Poll::Ready(Some(Ok(bytes)));
                }
                let mut edited = BytesMut::from(&bytes[..]);
                for &(at, byte) in &this.edits {
                    edited[at] = byte;
                }
                Poll::Ready(Some(Ok(edited.freeze())))
            }
            other => Poll::Ready(other),
        }
    }
}

/// A frame announced more payload than allowed.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLong(pub u64);

/// Follows frame boundaries through a byte stream cut anywhere.
#[derive(Debug)]
struct HeaderScanner {
    max: u64,
    header: [u8; MAX_HEADER],
    /// Header bytes collected so far.
    have: usize,
    /// Payload bytes of the current frame still to skip.
    remaining: u64,
    /// Set when permessage-deflate was agreed.
    marks: Option<Marks>,
}

impl HeaderScanner {
    fn new(max: u64) -> Self {
        Self {
            max,
            header: [0; MAX_HEADER],
            have: 0,
            remaining: 0,
            marks: None,
        }
    }

    fn scan(&mut self, mut data: &[u8], edits: &mut Vec<(usize, u8)>) -> Result<(), TooLong> {
        let total = data.len();
        while !data.is_empty() {
            if self.remaining > 0 {
                let skip = self.remaining.min(data.len() as u64);
                self.remaining -= skip;
                data = &data[skip as usize..];
                continue;
            }
            let want = header_len(&self.header[..self.have]).unwrap_or(2);
            if self.have == 0
                && let Some(byte) = self.first_byte(data[0])
            {
                edits.push((total - data.len(), byte));
            }
            let take = (want - self.have).min(data.len());
            self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
            self.have += take;
            data = &data[take..];
            if header_len(&self.header[..self.have]) == Some(self.have) {
                let len = payload_len(&self.header[..self.have]);
                if len > self.max {
                    return Err(TooLong(len));
                }
                self.remaining = len;
                self.have = 0;
            }
        }
        Ok(())
    }

    /// Marks a data frame's first byte and, for a compressed message, the byte that replaces it.
    fn first_byte(&self, byte: u8) -> Option<u8> {
        let marks = self.marks.as_ref()?;
        let opcode = byte & OPCODE;
        if opcode != TEXT && opcode != BINARY {
            return None;
        }
        if byte & RSV1 == 0 {
            marks.push(Mark::Plain);
            return None;
        }
        marks.push(if opcode == TEXT {
            Mark::DeflatedText
        } else {
            Mark::DeflatedBinary
        });
        Some((byte & !(RSV1 | OPCODE)) | BINARY)
    }
}

/// The whole header's length, once its first two bytes are known.
fn header_len(header: &[u8]) -> Option<usize> {
    let second = *header.get(1)?;
    let extended = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    Some(2 + extended + mask)
}

fn payload_len(header: &[u8]) -> u64 {
    match header[1] & 0x7F {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => u64::from_be_bytes(header[2..10].try_into().expect("8 length bytes")),
        short => u64::from(short),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u64, masked: bool) -> Vec<u8> {
        let mask_bit = if masked { 0x80 } else { 0 };
        let mut out = vec![0x81];
        if len < 126 {
            out.push(mask_bit | len as u8);
        } else if len <= 0xFFFF {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
        if masked {
            out.extend_from_slice(&[1, 2, 3, 4]);
        }
        out.extend(std::iter::repeat_n(b'x', len.min(100_000) as usize));
        out
    }

    /// Frames of every length encoding, cut at every possible byte, pass while within the limit.
    #[test]
    fn follows_frames_cut_anywhere() {
        let stream: Vec<u8> = [frame(5, true), frame(300, true), frame(70_000, false)].concat();
        for cut in 0..stream.len().min(400) {
            let mut s = HeaderScanner::new(70_000);
            s.scan(&stream[..cut], &mut Vec::new()).unwrap();
            s.scan(&stream[cut..], &mut Vec::new()).unwrap();
            assert_eq!((s.have, s.remaining), (0, 0), "cut at {cut}");
        }
        let mut s = HeaderScanner::new(70_000);
        for byte in &stream {
            s.scan(std::slice::from_ref(byte), &mut Vec::new()).unwrap();
        }
        assert_eq!((s.have, s.remaining), (0, 0));
    }

    /// A header announcing too much is refused before any of its payload arrives.
    #[test]
    fn refuses_oversized_frames_from_the_header() {
        for len in [70_001, u64::from(u32::MAX), 1 << 63, u64::MAX] {
            let mut s = HeaderScanner::new(70_000);
            let header = &frame(len, true)[..14];
            assert_eq!(s.scan(header, &mut Vec::new()), Err(TooLong(len)));
        }
        let mut s = HeaderScanner::new(70_000);
        let big = frame(100_000, true);
        let mut stream = frame(10, true);
        stream.extend_from_slice(&big[..3]);
        s.scan(&stream, &mut Vec::new()).unwrap();
        assert_eq!(s.scan(&big[3..14], &mut Vec::new()), Err(TooLong(100_000)));
    }

    /// With deflate agreed, a compressed message's first frame loses RSV1 and becomes binary,
    /// wherever the chunk cuts it; continuations and control frames are left alone; every data
    /// message is marked in order.
    #[test]
    fn compressed_frames_are_rewritten_and_marked() {
        let mut stream = Vec::new();
        for first in [0xC1u8, 0x01, 0x80, 0xC2, 0x89, 0xC0, 0x81] {
            let mut f = frame(3, true);
            f[0] = first;
            stream.extend(f);
        }
        for cut in 0..stream.len() {
            let marks = Marks::default();
            let mut s = HeaderScanner::new(100);
            s.marks = Some(marks.clone());
            let mut edited = stream.clone();
            for (part, offset) in [(&stream[..cut], 0), (&stream[cut..], cut)] {
                let mut edits = Vec::new();
                s.scan(part, &mut edits).unwrap();
                for (at, byte) in edits {
                    edited[offset + at] = byte;
                }
            }
            let firsts: Vec<u8> = edited.chunks(9).map(|f| f[0]).collect();
            assert_eq!(
                firsts,
                [0x82, 0x01, 0x80, 0x82, 0x89, 0xC0, 0x81],
                "cut at {cut}"
            );
            let order: Vec<Mark> = (0..5).map(|_| marks.next()).collect();
            use Mark::*;
            assert_eq!(order, [DeflatedText, Plain, DeflatedBinary, Plain, Plain]);
        }
        let mut s = HeaderScanner::new(100);
        let mut edits = Vec::new();
        s.scan(&stream, &mut edits).unwrap();
        assert!(edits.is_empty(), "without deflate nothing changes");
    }
}
