//! What a track carries: its codec and the parameters a muxer needs to describe it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::frame::TrackId;
use crate::time::Timescale;

/// Every codec some ingest can deliver. Which containers can hold which codec is the
/// muxers' business (see `edgerec_mux`), not the ingest's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    H264,
    H265,
    Av1,
    Vp8,
    Vp9,
    Aac,
    Opus,
    Mp3,
    /// G.711 A-law.
    Pcma,
    /// G.711 µ-law.
    Pcmu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Video,
    Audio,
}

impl Codec {
    pub fn kind(self) -> MediaKind {
        match self {
            Codec::H264 | Codec::H265 | Codec::Av1 | Codec::Vp8 | Codec::Vp9 => MediaKind::Video,
            Codec::Aac | Codec::Opus | Codec::Mp3 | Codec::Pcma | Codec::Pcmu => MediaKind::Audio,
        }
    }

    /// Lower-case name, as used in file-name templates and the API.
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
            Codec::Av1 => "av1",
            Codec::Vp8 => "vp8",
            Codec::Vp9 => "vp9",
            Codec::Aac => "aac",
            Codec::Opus => "opus",
            Codec::Mp3 => "mp3",
            Codec::Pcma => "pcma",
            Codec::Pcmu => "pcmu",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoParams {
    pub width: u32,
    pub height: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioParams {
    pub sample_rate: u32,
    pub channels: u8,
    /// Samples per coded frame when fixed by the codec (1024 for AAC-LC, 1152 for
    /// MPEG-1 layer III); muxers use it to give audio exact sample durations.
    pub samples_per_frame: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackParams {
    Video(VideoParams),
    Audio(AudioParams),
}

/// A track as an ingest announces it. A changed `TrackInfo` (new resolution, new
/// decoder config) makes the recorder start a new part, since MP4 sample entries are
/// fixed in the init segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackInfo {
    pub id: TrackId,
    pub codec: Codec,
    pub params: TrackParams,
    /// Decoder configuration in MP4 sample-entry form: the AVCDecoderConfigurationRecord
    /// for H.264, the AudioSpecificConfig for AAC; empty when the codec has none.
    pub config: Bytes,
    /// RFC 6381 codec string (`avc1.64001f`, `mp4a.40.2`).
    pub codec_string: String,
}

impl TrackInfo {
    pub fn kind(&self) -> MediaKind {
        self.codec.kind()
    }

    /// The clock a container should use for this track: 90 kHz for video, the sample
    /// rate for audio (so every AAC frame lasts exactly 1024 ticks).
    pub fn media_timescale(&self) -> Timescale {
        match &self.params {
            TrackParams::Audio(a) => Timescale::new(a.sample_rate).unwrap_or(Timescale::HZ_90K),
            TrackParams::Video(_) => Timescale::HZ_90K,
        }
    }

    pub fn video(&self) -> Option<&VideoParams> {
        match &self.params {
            TrackParams::Video(v) => Some(v),
            TrackParams::Audio(_) => None,
        }
    }

    pub fn audio(&self) -> Option<&AudioParams> {
        match &self.params {
            TrackParams::Audio(a) => Some(a),
            TrackParams::Video(_) => None,
        }
    }
}
