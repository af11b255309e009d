//! Opus identification header (RFC 7845 5.1, `OpusHead`) to the MP4 `dOps` box
//! payload (Opus in ISOBMFF 4.3.2): the same fields, big-endian, version 0.
//!
//! Hand-written: a fixed 19-byte header plus an optional channel mapping table.

use bytes::Bytes;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum OpusError {
    #[error("OpusHead truncated ({0} bytes)")]
    Truncated(usize),
    #[error("not an OpusHead")]
    Magic,
}

/// What a container needs from an OpusHead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpusHead {
    pub channels: u8,
    pub pre_skip: u16,
    pub input_sample_rate: u32,
    /// The `dOps` payload.
    pub dops: Bytes,
}

impl OpusHead {
    pub fn parse(h: &[u8]) -> Result<OpusHead, OpusError> {
        if h.len() < 19 {
            return Err(OpusError::Truncated(h.len()));
        }
        if &h[..8] != b"OpusHead" {
            return Err(OpusError::Magic);
        }
        let channels = h[9];
        let pre_skip = u16::from_le_bytes([h[10], h[11]]);
        let input_sample_rate = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        let gain = i16::from_le_bytes([h[16], h[17]]);
        let family = h[18];
        let mut d = Vec::with_capacity(11 + 2 + usize::from(channels));
        d.push(0); // dOps version
        d.push(channels);
        d.extend_from_slice(&pre_skip.to_be_bytes());
        d.extend_from_slice(&input_sample_rate.to_be_bytes());
        d.extend_from_slice(&gain.to_be_bytes());
        d.push(family);
        if family != 0 {
            let table = h
                .get(19..21 + usize::from(channels))
                .ok_or(OpusError::Truncated(h.len()))?;
            d.extend_from_slice(table);
        }
        Ok(OpusHead {
            channels,
            pre_skip,
            input_sample_rate,
            dops: Bytes::from(d),
        })
    }
}

/// The `dOps` payload for an Opus stream whose OpusHead never arrives (RTP,
/// MPEG-TS): `channels`, 48 kHz, no pre-skip or gain, mapping family 0.
pub fn dops_without_head(channels: u8) -> Bytes {
    let mut d = vec![0, channels.clamp(1, 2), 0, 0];
    d.extend_from_slice(&48_000u32.to_be_bytes());
    d.extend_from_slice(&[0, 0, 0]);
    Bytes::from(d)
}

/// Samples (at 48 kHz) in one Opus packet, from its TOC byte and frame count
/// (RFC 6716 3.1–3.2); `None` for an empty or malformed packet.
pub fn packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    let total = frame * frames;
    (1..=5760).contains(&total).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_durations() {
        assert_eq!(packet_samples(&[0xfc, 0xff]), Some(960)); // CELT FB 20 ms, 1 frame
        assert_eq!(packet_samples(&[0x78 | 1]), Some(1920)); // hybrid 20 ms, 2 frames
        assert_eq!(packet_samples(&[0x18 | 3, 3]), None); // SILK 60 ms x3: over 120 ms
        assert_eq!(packet_samples(&[0x08 | 3, 2]), Some(1920)); // SILK 20 ms x2 (code 3)
        assert_eq!(packet_samples(&[]), None);
        assert_eq!(packet_samples(&[0x03]), None); // code 3 without its count byte
    }

    #[test]
    fn ffmpeg9_mono_head() {
        // The OpusHead ffmpeg 9 sends in its enhanced-RTMP audio sequence start
        // (`-c:a libopus`, 48 kHz mono).
        let h = [
            0x4f, 0x70, 0x75, 0x73, 0x48, 0x65, 0x61, 0x64, 0x01, 0x01, 0x38, 0x01, 0x80, 0xbb,
            0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        let o = OpusHead::parse(&h).unwrap();
        assert_eq!(
            (o.channels, o.pre_skip, o.input_sample_rate),
            (1, 312, 48000)
        );
        assert_eq!(&o.dops[..], &[0, 1, 0x01, 0x38, 0, 0, 0xbb, 0x80, 0, 0, 0]);
        assert_eq!(OpusHead::parse(&h[..18]), Err(OpusError::Truncated(18)));
        let mut bad = h;
        bad[0] = b'X';
        assert_eq!(OpusHead::parse(&bad), Err(OpusError::Magic));
        // Mapping family 1 needs its table.
        let mut fam1 = h.to_vec();
        fam1[18] = 1;
        assert_eq!(OpusHead::parse(&fam1), Err(OpusError::Truncated(19)));
        fam1.extend_from_slice(&[1, 0, 0]);
        assert_eq!(OpusHead::parse(&fam1).unwrap().dops.len(), 11 + 3);
    }
}
