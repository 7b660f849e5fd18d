//! A guard on the bytes a WebSocket client sends, in front of actix-ws's parser: it reads each
//! frame header as it arrives and refuses a frame longer than `ws.max_message_bytes` at once.
//!
//! actix's parser checks the size limit only after the whole frame is buffered, and actix-ws
//! reads everything the socket has into that buffer; a client announcing a 4 GiB frame could
//! make the server hold everything it sends until the frame ends. The guard costs a few
//! arithmetic operations per chunk: it never copies or parses payloads.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;

/// The longest frame header: 2 bytes, a 64-bit length and a masking key.
const MAX_HEADER: usize = 14;

/// Passes a client's byte stream through, failing with `PayloadError::Overflow` (then ending)
/// as soon as a frame header announces more than `max` payload bytes.
pub struct FrameGuard<S> {
    inner: S,
    scanner: HeaderScanner,
    failed: bool,
}

impl<S> FrameGuard<S> {
    pub fn new(inner: S, max: usize) -> Self {
        Self {
            inner,
            scanner: HeaderScanner::new(max as u64),
            failed: false,
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
                if this.scanner.scan(&bytes).is_err() {
                    this.failed = true;
                    return Poll::Ready(Some(Err(PayloadError::Overflow)));
                }
                Poll::Ready(Some(Ok(bytes)))
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
}

impl HeaderScanner {
    fn new(max: u64) -> Self {
        Self {
            max,
            header: [0; MAX_HEADER],
            have: 0,
            remaining: 0,
        }
    }

    fn scan(&mut self, mut data: &[u8]) -> Result<(), TooLong> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let skip = self.remaining.min(data.len() as u64);
                self.remaining -= skip;
                data = &data[skip as usize..];
                continue;
            }
            let want = header_len(&self.header[..self.have]).unwrap_or(2);
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
            s.scan(&stream[..cut]).unwrap();
            s.scan(&stream[cut..]).unwrap();
            assert_eq!((s.have, s.remaining), (0, 0), "cut at {cut}");
        }
        let mut s = HeaderScanner::new(70_000);
        for byte in &stream {
            s.scan(std::slice::from_ref(byte)).unwrap();
        }
        assert_eq!((s.have, s.remaining), (0, 0));
    }

    /// A header announcing too much is refused before any of its payload arrives.
    #[test]
    fn refuses_oversized_frames_from_the_header() {
        for len in [70_001, u64::from(u32::MAX), 1 << 63, u64::MAX] {
            let mut s = HeaderScanner::new(70_000);
            let header = &frame(len, true)[..14];
            assert_eq!(s.scan(header), Err(TooLong(len)));
        }
        let mut s = HeaderScanner::new(70_000);
        let big = frame(100_000, true);
        let mut stream = frame(10, true);
        stream.extend_from_slice(&big[..3]);
        s.scan(&stream).unwrap();
        assert_eq!(s.scan(&big[3..14]), Err(TooLong(100_000)));
    }
}
