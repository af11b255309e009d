//! Splits an RTSP connection's bytes into requests and `$`-framed interleaved
//! packets (RFC 2326 10.12), keeping the byte offset of each for error reports.

use bytes::{Buf, Bytes, BytesMut};
use rtsp_types::{Message, ParseError};
use thiserror::Error;

/// A request (headers and body) larger than this is refused.
pub const MAX_MESSAGE: usize = 64 * 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FramingError {
    #[error("malformed RTSP message at byte {0}")]
    Malformed(u64),
    #[error("RTSP message at byte {0} exceeds {MAX_MESSAGE} bytes")]
    TooLarge(u64),
    #[error("unexpected RTSP response from the client at byte {0}")]
    UnexpectedResponse(u64),
}

#[derive(Debug)]
pub enum Item {
    Request(rtsp_types::Request<Vec<u8>>),
    Interleaved { channel: u8, data: Bytes },
}

#[derive(Default)]
pub struct Framing {
    buf: BytesMut,
    offset: u64,
}

impl Framing {
    pub fn handle_input(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes consumed so far: where the next item starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn poll_item(&mut self) -> Option<Result<Item, FramingError>> {
        // Stray CR/LF between messages (keepalives) are skipped.
        while matches!(self.buf.first(), Some(b'\r' | b'\n')) {
            self.buf.advance(1);
            self.offset += 1;
        }
        let first = *self.buf.first()?;
        let at = self.offset;
        if first == b'$' {
            if self.buf.len() < 4 {
                return None;
            }
            let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
            if self.buf.len() < 4 + len {
                return None;
            }
            let channel = self.buf[1];
            let frame = self.buf.split_to(4 + len).freeze();
            self.offset += 4 + len as u64;
            return Some(Ok(Item::Interleaved {
                channel,
                data: frame.slice(4..),
            }));
        }
        match Message::<Vec<u8>>::parse(&self.buf[..]) {
            Ok((msg, consumed)) => {
                self.buf.advance(consumed);
                self.offset += consumed as u64;
                match msg {
                    Message::Request(r) => Some(Ok(Item::Request(r))),
                    Message::Response(_) => Some(Err(FramingError::UnexpectedResponse(at))),
                    Message::Data(d) => Some(Ok(Item::Interleaved {
                        channel: d.channel_id(),
                        data: Bytes::from(d.into_body()),
                    })),
                }
            }
            Err(ParseError::Incomplete(_)) if self.buf.len() > MAX_MESSAGE => {
                Some(Err(FramingError::TooLarge(at)))
            }
            Err(ParseError::Incomplete(_)) => None,
            Err(ParseError::Error) => Some(Err(FramingError::Malformed(at))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_interleaved_frames_in_any_split() {
        let mut wire = Vec::new();
        wire.extend_from_slice(b"OPTIONS rtsp://h/live/a RTSP/1.0\r\nCSeq: 1\r\n\r\n");
        wire.extend_from_slice(&[b'$', 2, 0, 3, 7, 8, 9]);
        wire.extend_from_slice(
            b"ANNOUNCE rtsp://h/live/a RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 4\r\n\r\nv=0\n",
        );
        for split in 1..wire.len() {
            let mut f = Framing::default();
            let mut items = Vec::new();
            for chunk in wire.chunks(split) {
                f.handle_input(chunk);
                while let Some(i) = f.poll_item() {
                    items.push(i.unwrap());
                }
            }
            assert_eq!(items.len(), 3, "split {split}");
            assert!(
                matches!(&items[1], Item::Interleaved { channel: 2, data } if data[..] == [7, 8, 9])
            );
            match &items[2] {
                Item::Request(r) => assert_eq!(r.body(), b"v=0\n"),
                other => panic!("{other:?}"),
            }
            assert_eq!(f.offset(), wire.len() as u64);
        }
    }

    #[test]
    fn garbage_and_oversize_are_errors_with_offsets() {
        let mut f = Framing::default();
        f.handle_input(b"OPTIONS rtsp://h/a RTSP/1.0\r\nCSeq: 1\r\n\r\n\x01\x02 nonsense\r\n\r\n");
        assert!(matches!(f.poll_item(), Some(Ok(Item::Request(_)))));
        assert_eq!(
            f.poll_item().unwrap().unwrap_err(),
            FramingError::Malformed(40)
        );
        let mut f = Framing::default();
        f.handle_input(b"ANNOUNCE rtsp://h/a RTSP/1.0\r\nX: ");
        f.handle_input(&vec![b'a'; MAX_MESSAGE]);
        assert_eq!(
            f.poll_item().unwrap().unwrap_err(),
            FramingError::TooLarge(0)
        );
    }
}
