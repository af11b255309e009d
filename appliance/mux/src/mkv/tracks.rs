//! Track entries per codec: the Matroska codec ID and CodecPrivate for each
//! codec edgerec records (which codecs WebM admits is `Format::holds`).
//!
//! Adding a codec means adding an arm to [`codec`]; nothing else in the muxer
//! knows codecs.

use bytes::Bytes;
use edgerec_media::{Codec, TrackInfo};

use super::ebml::{id, Writer};

/// Matroska's codec ID and CodecPrivate for a track.
struct CodecEntry {
    id: &'static str,
    private: Option<Bytes>,
}

fn codec(info: &TrackInfo) -> CodecEntry {
    let config = || (!info.config.is_empty()).then(|| info.config.clone());
    let (id, private) = match info.codec {
        Codec::H264 => ("V_MPEG4/ISO/AVC", config()),
        Codec::H265 => ("V_MPEGH/ISO/HEVC", config()),
        Codec::Av1 => ("V_AV1", config()),
        Codec::Vp8 => ("V_VP8", None),
        Codec::Vp9 => ("V_VP9", None),
        Codec::Aac => ("A_AAC", config()),
        Codec::Mp3 => ("A_MPEG/L3", None),
        Codec::Opus => ("A_OPUS", Some(opus_head(&info.config, channels(info)))),
        // G.711 has no native Matroska ID; the VfW compatibility ID carries a
        // WAVEFORMATEX, as ffmpeg and MKVToolNix write it.
        Codec::Pcma => ("A_MS/ACM", Some(waveformatex(6, info))),
        Codec::Pcmu => ("A_MS/ACM", Some(waveformatex(7, info))),
    };
    CodecEntry { id, private }
}

fn channels(info: &TrackInfo) -> u8 {
    info.audio().map_or(1, |a| a.channels.max(1))
}

/// Pre-skip of an Opus track, in 48 kHz samples (from its `dOps`).
pub fn opus_pre_skip(dops: &[u8]) -> u16 {
    dops.get(2..4)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
}

/// The OpusHead (RFC 7845 5.1) Matroska wants from the `dOps` the track carries:
/// the same fields, little-endian, version 1.
fn opus_head(dops: &[u8], channels: u8) -> Bytes {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    if dops.len() >= 11 {
        h.push(dops[1]);
        h.extend_from_slice(&u16::from_be_bytes([dops[2], dops[3]]).to_le_bytes());
        h.extend_from_slice(
            &u32::from_be_bytes([dops[4], dops[5], dops[6], dops[7]]).to_le_bytes(),
        );
        h.extend_from_slice(&i16::from_be_bytes([dops[8], dops[9]]).to_le_bytes());
        h.push(dops[10]);
        h.extend_from_slice(&dops[11..]);
    } else {
        h.extend_from_slice(&[channels, 0, 0]);
        h.extend_from_slice(&48_000u32.to_le_bytes());
        h.extend_from_slice(&[0, 0, 0]);
    }
    Bytes::from(h)
}

/// WAVEFORMATEX for 8-bit G.711 (`tag` 6: A-law, 7: µ-law).
fn waveformatex(tag: u16, info: &TrackInfo) -> Bytes {
    let ch = u16::from(channels(info));
    let rate = info.audio().map_or(8000, |a| a.sample_rate);
    let mut w = Vec::with_capacity(18);
    w.extend_from_slice(&tag.to_le_bytes());
    w.extend_from_slice(&ch.to_le_bytes());
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&(rate * u32::from(ch)).to_le_bytes());
    w.extend_from_slice(&ch.to_le_bytes()); // block align
    w.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    w.extend_from_slice(&0u16.to_le_bytes());
    Bytes::from(w)
}

/// Writes one TrackEntry.
pub fn write_entry(w: &mut Writer<'_>, info: &TrackInfo, number: u64) {
    let c = codec(info);
    w.start(id::TRACK_ENTRY);
    w.uint(id::TRACK_NUMBER, number);
    w.uint(id::TRACK_UID, number);
    w.uint(id::TRACK_TYPE, if info.video().is_some() { 1 } else { 2 });
    w.uint(id::FLAG_LACING, 0);
    w.string(id::CODEC_ID, c.id);
    if let Some(p) = &c.private {
        w.bytes(id::CODEC_PRIVATE, p);
    }
    if info.codec == Codec::Opus {
        // RFC 7845 / Matroska codec mappings: CodecDelay is the pre-skip in ns,
        // and a decoder needs 80 ms of pre-roll after a seek.
        let ns = u64::from(opus_pre_skip(&info.config)) * 1_000_000_000 / 48_000;
        w.uint(id::CODEC_DELAY, ns);
        w.uint(id::SEEK_PRE_ROLL, 80_000_000);
    }
    if let Some(v) = info.video() {
        w.start(id::VIDEO);
        w.uint(id::PIXEL_WIDTH, u64::from(v.width));
        w.uint(id::PIXEL_HEIGHT, u64::from(v.height));
        w.end();
    }
    if let Some(a) = info.audio() {
        w.start(id::AUDIO);
        // Opus always decodes at 48 kHz, whatever the input rate was.
        let rate = if info.codec == Codec::Opus {
            48_000
        } else {
            a.sample_rate
        };
        w.float(id::SAMPLING_FREQUENCY, f64::from(rate));
        w.uint(id::CHANNELS, u64::from(channels(info)));
        if matches!(info.codec, Codec::Pcma | Codec::Pcmu) {
            w.uint(id::BIT_DEPTH, 8);
        }
        w.end();
    }
    w.end();
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgerec_media::opus::OpusHead;

    #[test]
    fn opus_head_is_the_inverse_of_dops() {
        let head = [
            b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0,
            0, 0,
        ];
        let dops = OpusHead::parse(&head).unwrap().dops;
        assert_eq!(opus_pre_skip(&dops), 312);
        assert_eq!(&opus_head(&dops, 2)[..], &head[..]);
    }
}
