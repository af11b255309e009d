//! Opus over RTP (RFC 7587): one Opus packet per RTP packet, always on a 48 kHz
//! clock. RTP carries no OpusHead, so the `dOps` is written for the SDP's channel
//! count with no pre-skip — what ffmpeg writes when it remuxes RTP Opus.

use edgerec_media::{AudioParams, Codec, TrackParams};

use super::{Description, FramePerPacket};

/// An Opus track with `channels` (1 or 2).
pub fn description(channels: u8) -> Description {
    let channels = channels.clamp(1, 2);
    Description {
        codec: Codec::Opus,
        params: TrackParams::Audio(AudioParams {
            sample_rate: 48_000,
            channels,
            samples_per_frame: None,
        }),
        config: edgerec_media::opus::dops_without_head(channels),
        codec_string: "opus".into(),
    }
}

pub fn depacketizer(channels: u8) -> FramePerPacket {
    FramePerPacket::new("Opus", description(channels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::depacketize::Depacketizer;
    use bytes::Bytes;

    #[test]
    fn one_packet_one_frame_with_a_dops() {
        let mut d = depacketizer(2);
        let desc = d.take_description().unwrap();
        assert_eq!(&desc.config[..], &[0, 2, 0, 0, 0, 0, 0xbb, 0x80, 0, 0, 0]);
        // A 20 ms CELT frame as libopus sends it (TOC 0xfc).
        d.push(&Bytes::from_static(&[0xfc, 0xff, 0xfe])).unwrap();
        assert!(d.push(&Bytes::from_static(&[0xfc])).is_err());
        let mut out = Vec::new();
        d.finish(&mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert!(out[0].key);
        assert!(d.push(&Bytes::new()).is_err());
    }
}
