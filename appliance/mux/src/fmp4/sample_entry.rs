//! Sample entries (`stsd` children) per codec.
//!
//! Adding a codec to MP4 means adding an arm here (H.265 `hvc1`/`hvcC`, AV1
//! `av01`/`av1C`, VP9 `vp09`/`vpcC`, Opus `Opus`/`dOps`); nothing else in the muxer
//! knows codecs.

use bytes::BufMut;
use edgerec_media::{Codec, TrackInfo};

use crate::bmff::BoxWriter;
use crate::{Format, Unsupported};

/// Whether a track's codec can be stored in MP4 by this muxer.
pub fn supported(info: &TrackInfo) -> Result<(), Unsupported> {
    Unsupported::check(info, Format::Mp4)
}

pub fn write(w: &mut BoxWriter<'_>, info: &TrackInfo) -> Result<(), Unsupported> {
    supported(info)?;
    match info.codec {
        Codec::H264 | Codec::H265 | Codec::Av1 | Codec::Vp9 => {
            let v = info.video().cloned().unwrap_or(edgerec_media::VideoParams {
                width: 0,
                height: 0,
            });
            // The config is the configuration box's payload as the codec's MP4
            // binding defines it (for vpcC that includes its version and flags).
            let (entry, config) = match info.codec {
                Codec::H264 => (b"avc1", b"avcC"),
                Codec::H265 => (b"hvc1", b"hvcC"),
                Codec::Av1 => (b"av01", b"av1C"),
                _ => (b"vp09", b"vpcC"),
            };
            w.start(entry);
            visual_sample_entry(w, v.width, v.height);
            w.start(config);
            w.buf.put_slice(&info.config);
            w.end();
            w.end();
        }
        Codec::Opus => {
            let channels = info.audio().map_or(2, |a| a.channels);
            w.start(b"Opus");
            // Opus in MP4 always runs at 48 kHz (RFC 7845 / Opus-in-ISOBMFF 4.3).
            audio_sample_entry(w, channels, 48_000);
            w.start(b"dOps");
            w.buf.put_slice(&info.config);
            w.end();
            w.end();
        }
        Codec::Aac | Codec::Mp3 => {
            let a = info.audio().cloned().unwrap_or(edgerec_media::AudioParams {
                sample_rate: 0,
                channels: 2,
                samples_per_frame: None,
            });
            w.start(b"mp4a");
            audio_sample_entry(w, a.channels, a.sample_rate);
            let oti = match info.codec {
                Codec::Aac => 0x40,
                _ if a.sample_rate >= 32_000 => 0x6b,
                _ => 0x69,
            };
            esds(w, oti, &info.config);
            w.end();
        }
        // `Format::holds` said yes to a codec with no sample entry here.
        codec => {
            return Err(Unsupported {
                track: info.id,
                codec,
                container: "mp4",
            })
        }
    }
    Ok(())
}

fn visual_sample_entry(w: &mut BoxWriter<'_>, width: u32, height: u32) {
    w.buf.put_bytes(0, 6); // reserved
    w.buf.put_u16(1); // data_reference_index
    w.buf.put_bytes(0, 16); // pre_defined, reserved
    w.buf.put_u16(width.min(u16::MAX as u32) as u16);
    w.buf.put_u16(height.min(u16::MAX as u32) as u16);
    w.buf.put_u32(0x0048_0000); // 72 dpi
    w.buf.put_u32(0x0048_0000);
    w.buf.put_u32(0);
    w.buf.put_u16(1); // frame_count
    let mut name = [0u8; 32];
    let label = b"edgerec";
    name[0] = label.len() as u8;
    name[1..1 + label.len()].copy_from_slice(label);
    w.buf.put_slice(&name);
    w.buf.put_u16(0x0018); // depth
    w.buf.put_i16(-1);
}

fn audio_sample_entry(w: &mut BoxWriter<'_>, channels: u8, rate: u32) {
    w.buf.put_bytes(0, 6);
    w.buf.put_u16(1);
    w.buf.put_bytes(0, 8);
    w.buf.put_u16(channels.max(1) as u16);
    w.buf.put_u16(16);
    w.buf.put_u32(0);
    // 16.16 fixed point; rates above 65535 Hz do not fit and are given by the config.
    w.buf.put_u32(if rate <= 0xffff { rate << 16 } else { 0 });
}

/// `esds` with an ES_Descriptor for MPEG-4 audio (`oti` 0x40) or MPEG-1/2 audio.
fn esds(w: &mut BoxWriter<'_>, oti: u8, specific: &[u8]) {
    w.start_full(b"esds", 0, 0);
    let dsi_len = if specific.is_empty() {
        0
    } else {
        2 + specific.len()
    };
    let dcd_len = 13 + dsi_len;
    let es_len = 3 + (2 + dcd_len) + 3;
    descriptor_header(w, 0x03, es_len);
    w.buf.put_u16(0); // ES_ID
    w.buf.put_u8(0); // flags
    descriptor_header(w, 0x04, dcd_len);
    w.buf.put_u8(oti);
    w.buf.put_u8(0x15); // audio stream, reserved bit
    w.buf.put_uint(0, 3); // bufferSizeDB
    w.buf.put_u32(0); // maxBitrate
    w.buf.put_u32(0); // avgBitrate
    if !specific.is_empty() {
        descriptor_header(w, 0x05, specific.len());
        w.buf.put_slice(specific);
    }
    descriptor_header(w, 0x06, 1);
    w.buf.put_u8(0x02);
    w.end();
}

/// Descriptor tag + length; lengths here are < 128 except pathological configs, for
/// which the 4-byte form is used.
fn descriptor_header(w: &mut BoxWriter<'_>, tag: u8, len: usize) {
    w.buf.put_u8(tag);
    if len < 0x80 {
        w.buf.put_u8(len as u8);
    } else {
        let len = len.min(0x0fff_ffff) as u32;
        w.buf.put_u8(0x80 | ((len >> 21) & 0x7f) as u8);
        w.buf.put_u8(0x80 | ((len >> 14) & 0x7f) as u8);
        w.buf.put_u8(0x80 | ((len >> 7) & 0x7f) as u8);
        w.buf.put_u8((len & 0x7f) as u8);
    }
}
