//! EBML (RFC 8794) as the Matroska muxer writes and recovery reads it: element
//! IDs, variable-size integers, and a writer for the few element types used.

use bytes::{BufMut, BytesMut};

/// Element IDs (RFC 9559), with their length marker bits, as written.
pub mod id {
    pub const EBML: u32 = 0x1A45_DFA3;
    pub const EBML_VERSION: u32 = 0x4286;
    pub const EBML_READ_VERSION: u32 = 0x42F7;
    pub const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
    pub const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
    pub const DOC_TYPE: u32 = 0x4282;
    pub const DOC_TYPE_VERSION: u32 = 0x4287;
    pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub const SEGMENT: u32 = 0x1853_8067;
    pub const SEEK_HEAD: u32 = 0x114D_9B74;
    pub const SEEK: u32 = 0x4DBB;
    pub const SEEK_ID: u32 = 0x53AB;
    pub const SEEK_POSITION: u32 = 0x53AC;
    pub const INFO: u32 = 0x1549_A966;
    pub const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
    pub const DURATION: u32 = 0x4489;
    pub const DATE_UTC: u32 = 0x4461;
    pub const MUXING_APP: u32 = 0x4D80;
    pub const WRITING_APP: u32 = 0x5741;
    pub const TRACKS: u32 = 0x1654_AE6B;
    pub const TRACK_ENTRY: u32 = 0xAE;
    pub const TRACK_NUMBER: u32 = 0xD7;
    pub const TRACK_UID: u32 = 0x73C5;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const FLAG_LACING: u32 = 0x9C;
    pub const CODEC_ID: u32 = 0x86;
    pub const CODEC_PRIVATE: u32 = 0x63A2;
    pub const CODEC_DELAY: u32 = 0x56AA;
    pub const SEEK_PRE_ROLL: u32 = 0x56BB;
    pub const VIDEO: u32 = 0xE0;
    pub const PIXEL_WIDTH: u32 = 0xB0;
    pub const PIXEL_HEIGHT: u32 = 0xBA;
    pub const AUDIO: u32 = 0xE1;
    pub const SAMPLING_FREQUENCY: u32 = 0xB5;
    pub const CHANNELS: u32 = 0x9F;
    pub const BIT_DEPTH: u32 = 0x6264;
    pub const CLUSTER: u32 = 0x1F43_B675;
    pub const TIMESTAMP: u32 = 0xE7;
    pub const SIMPLE_BLOCK: u32 = 0xA3;
    pub const CUES: u32 = 0x1C53_BB6B;
    pub const CUE_POINT: u32 = 0xBB;
    pub const CUE_TIME: u32 = 0xB3;
    pub const CUE_TRACK_POSITIONS: u32 = 0xB7;
    pub const CUE_TRACK: u32 = 0xF7;
    pub const CUE_CLUSTER_POSITION: u32 = 0xF1;
    pub const VOID: u32 = 0xEC;
}

/// The size of a Segment still being written (all ones: "unknown").
pub const UNKNOWN_SIZE: u64 = 0x00FF_FFFF_FFFF_FFFF;

/// Bytes an ID occupies (its marker bits are part of it).
pub fn id_len(id: u32) -> usize {
    match id {
        0..=0xFF => 1,
        0x100..=0xFFFF => 2,
        0x1_0000..=0xFF_FFFF => 3,
        _ => 4,
    }
}

pub fn put_id(buf: &mut BytesMut, id: u32) {
    let n = id_len(id);
    buf.put_slice(&id.to_be_bytes()[4 - n..]);
}

/// A size as a variable-size integer of exactly `len` bytes (1..=8).
pub fn put_size(buf: &mut BytesMut, size: u64, len: usize) {
    let marker = 1u64 << (7 * len);
    let v = (size | marker).to_be_bytes();
    buf.put_slice(&v[8 - len..]);
}

/// Bytes of the shortest variable-size integer holding `size` (all-ones values
/// are reserved for "unknown", so a value needs one more bit than it has).
pub fn size_len(size: u64) -> usize {
    (1..=8).find(|&n| size < (1u64 << (7 * n)) - 1).unwrap_or(8)
}

/// An 8-byte size, for sizes patched after the fact.
pub fn size8(size: u64) -> [u8; 8] {
    (size | 1u64 << 56).to_be_bytes()
}

/// Reads a variable-size integer: (value, bytes), or `None` if `b` is too short
/// or starts with a zero byte (no length marker within 8 bytes).
pub fn read_vint(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || b.len() < len {
        return None;
    }
    let mut v = u64::from(first) & (0xFF >> len);
    for &x in &b[1..len] {
        v = v << 8 | u64::from(x);
    }
    Some((v, len))
}

/// Reads an element ID (marker bits kept): (id, bytes).
pub fn read_id(b: &[u8]) -> Option<(u32, usize)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 4 || b.len() < len {
        return None;
    }
    let id = b[..len].iter().fold(0u32, |a, &x| a << 8 | u32::from(x));
    Some((id, len))
}

/// Builds elements into a buffer; masters get their size when they end.
pub struct Writer<'a> {
    pub buf: &'a mut BytesMut,
    open: Vec<usize>,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut BytesMut) -> Writer<'a> {
        Writer {
            buf,
            open: Vec::new(),
        }
    }

    pub fn pos(&self) -> usize {
        self.buf.len()
    }

    /// Opens a master element with an 8-byte size written at [`Writer::end`].
    pub fn start(&mut self, id: u32) {
        put_id(self.buf, id);
        self.open.push(self.buf.len());
        self.buf.put_u64(0);
    }

    pub fn end(&mut self) {
        if let Some(at) = self.open.pop() {
            let size = (self.buf.len() - at - 8) as u64;
            self.buf[at..at + 8].copy_from_slice(&size8(size));
        }
    }

    pub fn bytes(&mut self, id: u32, v: &[u8]) {
        put_id(self.buf, id);
        put_size(self.buf, v.len() as u64, size_len(v.len() as u64));
        self.buf.put_slice(v);
    }

    pub fn uint(&mut self, id: u32, v: u64) {
        let n = (8 - v.leading_zeros() as usize / 8).max(1);
        self.bytes(id, &v.to_be_bytes()[8 - n..]);
    }

    pub fn int(&mut self, id: u32, v: i64) {
        self.bytes(id, &v.to_be_bytes());
    }

    pub fn float(&mut self, id: u32, v: f64) {
        self.bytes(id, &v.to_be_bytes());
    }

    pub fn string(&mut self, id: u32, v: &str) {
        self.bytes(id, v.as_bytes());
    }

    /// A Void element of exactly `len` bytes (at least 2).
    pub fn void(&mut self, len: usize) {
        put_id(self.buf, id::VOID);
        if len <= 128 {
            put_size(self.buf, len.saturating_sub(2) as u64, 1);
            self.buf.put_bytes(0, len.saturating_sub(2));
        } else {
            put_size(self.buf, (len - 9) as u64, 8);
            self.buf.put_bytes(0, len - 9);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip() {
        for v in [0u64, 1, 126, 127, 128, 16_382, 16_383, 1 << 40] {
            let mut b = BytesMut::new();
            put_size(&mut b, v, size_len(v));
            assert_eq!(read_vint(&b), Some((v, size_len(v))), "{v}");
        }
        assert_eq!(size_len(126), 1);
        assert_eq!(size_len(127), 2);
        assert_eq!(read_vint(&size8(5)), Some((5, 8)));
        assert_eq!(read_vint(&[0]), None);
        assert_eq!(read_vint(&[0x40]), None);
    }

    #[test]
    fn ids_keep_their_marker() {
        let mut b = BytesMut::new();
        put_id(&mut b, id::CLUSTER);
        put_id(&mut b, id::SIMPLE_BLOCK);
        assert_eq!(&b[..], &[0x1F, 0x43, 0xB6, 0x75, 0xA3]);
        assert_eq!(read_id(&b), Some((id::CLUSTER, 4)));
        assert_eq!(read_id(&b[4..]), Some((id::SIMPLE_BLOCK, 1)));
        assert_eq!(read_id(&[0x08]), None);
    }

    #[test]
    fn voids_fill_exactly() {
        for len in [2usize, 3, 128, 129, 4095] {
            let mut b = BytesMut::new();
            Writer::new(&mut b).void(len);
            assert_eq!(b.len(), len);
        }
    }
}
