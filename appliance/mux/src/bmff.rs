//! Writing and walking ISO BMFF boxes.
//!
//! Hand-written rather than built on the `mp4` crate: that crate writes progressive
//! MP4 only (moov at the end), has no sample entries for Opus or AV1, and cannot tell
//! where a field landed — and finalize must patch durations in place.

use bytes::{BufMut, BytesMut};

/// Appends boxes to a buffer, filling in each box's size when it is closed.
pub struct BoxWriter<'a> {
    pub buf: &'a mut BytesMut,
    open: Vec<usize>,
}

impl<'a> BoxWriter<'a> {
    pub fn new(buf: &'a mut BytesMut) -> BoxWriter<'a> {
        BoxWriter {
            buf,
            open: Vec::new(),
        }
    }

    pub fn start(&mut self, kind: &[u8; 4]) {
        self.open.push(self.buf.len());
        self.buf.put_u32(0);
        self.buf.put_slice(kind);
    }

    pub fn start_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) {
        self.start(kind);
        self.buf
            .put_u32((version as u32) << 24 | (flags & 0x00ff_ffff));
    }

    pub fn end(&mut self) {
        if let Some(start) = self.open.pop() {
            let size = (self.buf.len() - start) as u32;
            self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
        }
    }

    /// Position (within the buffer) of the next byte written.
    pub fn pos(&self) -> usize {
        self.buf.len()
    }
}

/// One box found while walking a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxRef<'a> {
    pub kind: [u8; 4],
    /// Offset of the box within the walked buffer.
    pub offset: usize,
    pub header_len: usize,
    /// The box's payload (after the header).
    pub body: &'a [u8],
}

/// Parses a box header: (kind, header length, total size). `None` if truncated or the
/// size is impossible. A size of 0 ("to end of file") yields `u64::MAX`.
pub fn parse_header(b: &[u8]) -> Option<([u8; 4], usize, u64)> {
    let size32 = u32::from_be_bytes(b.get(0..4)?.try_into().ok()?);
    let kind: [u8; 4] = b.get(4..8)?.try_into().ok()?;
    match size32 {
        0 => Some((kind, 8, u64::MAX)),
        1 => {
            let size = u64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
            (size >= 16).then_some((kind, 16, size))
        }
        n if n >= 8 => Some((kind, 8, n as u64)),
        _ => None,
    }
}

/// Iterates the boxes packed in `buf`; stops at the first malformed or truncated one.
pub fn children(buf: &[u8]) -> impl Iterator<Item = BoxRef<'_>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let (kind, header_len, size) = parse_header(buf.get(pos..)?)?;
        let size = if size == u64::MAX {
            (buf.len() - pos) as u64
        } else {
            size
        };
        let end = pos.checked_add(usize::try_from(size).ok()?)?;
        if end > buf.len() {
            return None;
        }
        let r = BoxRef {
            kind,
            offset: pos,
            header_len,
            body: &buf[pos + header_len..end],
        };
        pos = end;
        Some(r)
    })
}

/// The first child of kind `kind`.
pub fn child<'a>(buf: &'a [u8], kind: &[u8; 4]) -> Option<BoxRef<'a>> {
    children(buf).find(|b| &b.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_nested_sizes_and_walks_them() {
        let mut b = BytesMut::new();
        let mut w = BoxWriter::new(&mut b);
        w.start(b"moov");
        w.start_full(b"mvhd", 1, 0);
        w.buf.put_u64(7);
        w.end();
        w.start(b"trak");
        w.end();
        w.end();
        let top: Vec<_> = children(&b).collect();
        assert_eq!(top.len(), 1);
        assert_eq!(&top[0].kind, b"moov");
        let kids: Vec<_> = children(top[0].body).map(|c| c.kind).collect();
        assert_eq!(kids, vec![*b"mvhd", *b"trak"]);
        assert_eq!(child(top[0].body, b"mvhd").unwrap().body.len(), 12);
    }

    #[test]
    fn walking_stops_at_truncation() {
        let data = [0, 0, 0, 16, b'f', b'r', b'e', b'e', 0, 0];
        assert_eq!(children(&data).count(), 0);
        let data = [0, 0, 0, 4, b'f', b'r', b'e', b'e'];
        assert_eq!(children(&data).count(), 0);
    }
}
