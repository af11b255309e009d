//! G.711 over RTP (RFC 3551 4.5.14, PCMU payload type 0 and PCMA 8): each packet
//! is a run of 8-bit samples, one frame per packet. MP4 has no sample entry the
//! players agree on, so the recorder reports the track as not recorded; the
//! depacketizer exists so a camera's G.711 audio does not stop its video from
//! being received (the RTSP ANNOUNCE is accepted, the track described).

use bytes::Bytes;
use edgerec_media::{AudioParams, Codec, TrackParams};

use super::{Description, FramePerPacket};

/// `codec`: [`Codec::Pcmu`] or [`Codec::Pcma`].
pub fn depacketizer(codec: Codec, channels: u8) -> FramePerPacket {
    FramePerPacket::new(
        "G.711",
        Description {
            codec,
            params: TrackParams::Audio(AudioParams {
                sample_rate: 8000,
                channels: channels.max(1),
                samples_per_frame: None,
            }),
            config: Bytes::new(),
            codec_string: if codec == Codec::Pcma { "alaw" } else { "ulaw" }.into(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::depacketize::Depacketizer;

    #[test]
    fn one_packet_one_frame() {
        let mut d = depacketizer(Codec::Pcma, 1);
        assert_eq!(d.take_description().unwrap().codec_string, "alaw");
        d.push(&Bytes::from_static(&[0xd5; 160])).unwrap();
        let mut out = Vec::new();
        d.finish(&mut out).unwrap();
        assert_eq!(out[0].data.len(), 160);
        assert!(d.push(&Bytes::new()).is_err());
    }
}
