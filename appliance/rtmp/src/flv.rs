//! FLV tag bodies (the payload of RTMP audio and video messages) to tracks and frames.
//!
//! Legacy FLV codecs: H.264 (AVC sequence header + length-prefixed NAL units with a
//! composition time offset), AAC (AudioSpecificConfig + raw frames), MP3 and G.711.
//! Enhanced RTMP (FourCC): H.265 `hvc1`, AV1 `av01`, VP9 `vp09` video and Opus
//! audio, whose sequence starts carry the MP4 configuration records (OpusHead is
//! turned into `dOps`).
//! Frame payloads are slices of the message buffer: no copy.

use bytes::Bytes;
use edgerec_media::aac::AudioSpecificConfig;
use edgerec_media::avc::AvcConfig;
use edgerec_media::mp3::Mp3Header;
use edgerec_media::{
    AudioParams, Codec, Frame, MediaTime, Timescale, TrackId, TrackInfo, TrackParams, VideoParams,
};
use thiserror::Error;

/// Track id of the video track of an FLV/RTMP stream.
pub const VIDEO_TRACK: TrackId = TrackId(1);
/// Track id of the audio track of an FLV/RTMP stream.
pub const AUDIO_TRACK: TrackId = TrackId(2);

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FlvError {
    #[error("{0} tag truncated ({1} bytes)")]
    Truncated(&'static str, usize),
    #[error("invalid AVC sequence header: {0}")]
    AvcConfig(String),
    #[error("invalid AAC sequence header: {0}")]
    AacConfig(String),
    #[error("{0} sequence start of {1} bytes is too short")]
    VideoConfig(&'static str, usize),
}

/// Media the demuxer skips, and why. Reported once per kind per session, not fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skipped {
    /// A legacy codec nobody records (Sorenson, VP6, screen video, Speex, Nellymoser, PCM).
    UnsupportedVideoCodec(u8),
    UnsupportedAudioFormat(u8),
    /// Enhanced RTMP (FourCC) video or audio in a codec not recorded (recorded:
    /// hvc1, av01, vp09, Opus).
    EnhancedVideo([u8; 4]),
    EnhancedAudio,
    /// An Opus sequence start without a valid OpusHead.
    BadOpusHead,
    /// A coded frame before the sequence header describing it.
    FrameBeforeConfig(Codec),
    /// The MP3 payload does not start with a frame header.
    BadMp3Header,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skipped::UnsupportedVideoCodec(c) => write!(f, "unsupported FLV video codec id {c}"),
            Skipped::UnsupportedAudioFormat(c) => write!(f, "unsupported FLV audio format {c}"),
            Skipped::EnhancedVideo(cc) => write!(
                f,
                "enhanced RTMP video '{}' is not recorded",
                String::from_utf8_lossy(cc)
            ),
            Skipped::EnhancedAudio => {
                write!(f, "enhanced RTMP audio other than Opus is not recorded")
            }
            Skipped::BadOpusHead => write!(f, "Opus sequence start without a valid OpusHead"),
            Skipped::FrameBeforeConfig(c) => {
                write!(f, "{} frame before its sequence header", c.name())
            }
            Skipped::BadMp3Header => write!(f, "MP3 payload without a frame header"),
        }
    }
}

/// What one tag produced.
#[derive(Debug, Clone)]
pub enum FlvOutput {
    /// A new or changed track description.
    Track(TrackInfo),
    Frame(Frame),
    Skipped(Skipped),
}

/// Per-stream FLV tag demuxer.
#[derive(Default)]
pub struct FlvDemuxer {
    video: Option<TrackInfo>,
    audio: Option<TrackInfo>,
}

impl FlvDemuxer {
    pub fn video_track(&self) -> Option<&TrackInfo> {
        self.video.as_ref()
    }

    pub fn audio_track(&self) -> Option<&TrackInfo> {
        self.audio.as_ref()
    }

    /// Demuxes one video tag body with decode time `dts_ms` (already unwrapped),
    /// appending what it yields to `out`.
    pub fn video(
        &mut self,
        dts_ms: i64,
        data: Bytes,
        out: &mut Vec<FlvOutput>,
    ) -> Result<(), FlvError> {
        let r = self.video_one(dts_ms, data)?;
        // VP9's record has no picture size; its first key frame does.
        if let (Some(FlvOutput::Frame(f)), Some(v)) = (&r, &self.video) {
            let unsized_vp9 = v.codec == Codec::Vp9 && v.video().is_some_and(|p| p.width == 0);
            if unsized_vp9 && f.key {
                if let Some((width, height)) = edgerec_media::picture_size::vp9_key_frame(&f.data) {
                    let mut info = v.clone();
                    info.params = TrackParams::Video(VideoParams { width, height });
                    out.extend(self.set_track(info, true));
                }
            }
        }
        out.extend(r);
        Ok(())
    }

    fn video_one(&mut self, dts_ms: i64, data: Bytes) -> Result<Option<FlvOutput>, FlvError> {
        let Some(&b0) = data.first() else {
            return Ok(None);
        };
        if b0 & 0x80 != 0 {
            return self.enhanced_video(b0, dts_ms, data);
        }
        let frame_type = b0 >> 4;
        let codec_id = b0 & 0x0f;
        if codec_id != 7 {
            return Ok(Some(FlvOutput::Skipped(Skipped::UnsupportedVideoCodec(
                codec_id,
            ))));
        }
        if frame_type == 5 {
            return Ok(None); // video info / command frame
        }
        if data.len() < 5 {
            return Err(FlvError::Truncated("AVC video", data.len()));
        }
        let cts = i32::from_be_bytes([data[2], data[3], data[4], 0]) >> 8;
        match data[1] {
            0 => {
                let record = data.slice(5..);
                let c =
                    AvcConfig::parse(&record).map_err(|e| FlvError::AvcConfig(e.to_string()))?;
                let info = TrackInfo {
                    id: VIDEO_TRACK,
                    codec: Codec::H264,
                    params: TrackParams::Video(VideoParams {
                        width: c.width,
                        height: c.height,
                    }),
                    codec_string: c.codec_string(),
                    config: record,
                };
                Ok(self.set_track(info, true))
            }
            1 => {
                if self.video.is_none() {
                    return Ok(Some(FlvOutput::Skipped(Skipped::FrameBeforeConfig(
                        Codec::H264,
                    ))));
                }
                if data.len() == 5 {
                    return Ok(None);
                }
                let dts = MediaTime::new(dts_ms, Timescale::MILLIS);
                Ok(Some(FlvOutput::Frame(Frame {
                    track: VIDEO_TRACK,
                    dts,
                    pts: MediaTime::new(dts_ms + cts as i64, Timescale::MILLIS),
                    key: frame_type == 1 || frame_type == 4,
                    data: data.slice(5..),
                })))
            }
            _ => Ok(None), // end of sequence
        }
    }

    /// Enhanced RTMP video (the FourCC extension, E-RTMP v1/v2): `b0` holds the
    /// frame type (bits 4-6) and the packet type (bits 0-3); the FourCC follows.
    fn enhanced_video(
        &mut self,
        b0: u8,
        dts_ms: i64,
        data: Bytes,
    ) -> Result<Option<FlvOutput>, FlvError> {
        let frame_type = (b0 >> 4) & 0x07;
        let packet_type = b0 & 0x0f;
        let cc: [u8; 4] = data
            .get(1..5)
            .and_then(|s| s.try_into().ok())
            .ok_or(FlvError::Truncated("enhanced video", data.len()))?;
        let codec = match &cc {
            b"avc1" => Codec::H264,
            b"hvc1" => Codec::H265,
            b"av01" => Codec::Av1,
            b"vp09" => Codec::Vp9,
            _ => return Ok(Some(FlvOutput::Skipped(Skipped::EnhancedVideo(cc)))),
        };
        if frame_type == 5 {
            return Ok(None); // command frame
        }
        match packet_type {
            // SequenceStart: the codec's MP4 configuration record.
            0 => {
                let record = data.slice(5..);
                if codec == Codec::H264 {
                    let c = AvcConfig::parse(&record)
                        .map_err(|e| FlvError::AvcConfig(e.to_string()))?;
                    let info = TrackInfo {
                        id: VIDEO_TRACK,
                        codec,
                        params: TrackParams::Video(VideoParams {
                            width: c.width,
                            height: c.height,
                        }),
                        codec_string: c.codec_string(),
                        config: record,
                    };
                    return Ok(self.set_track(info, true));
                }
                let codec_string = match codec {
                    Codec::H265 => edgerec_media::codec_string::hevc(&record),
                    Codec::Av1 => edgerec_media::codec_string::av1(&record),
                    _ => edgerec_media::codec_string::vp9(&record),
                }
                .ok_or_else(|| FlvError::VideoConfig(codec.name(), record.len()))?;
                // AV1's record holds the sequence header and H.265's the SPS; VP9's
                // size comes with its first key frame.
                let (width, height) = match codec {
                    Codec::Av1 => edgerec_media::picture_size::av1_config(&record),
                    Codec::H265 => edgerec_media::picture_size::hevc_config(&record),
                    _ => None,
                }
                .unwrap_or((0, 0));
                let info = TrackInfo {
                    id: VIDEO_TRACK,
                    codec,
                    params: TrackParams::Video(VideoParams { width, height }),
                    codec_string,
                    config: record,
                };
                Ok(self.set_track(info, true))
            }
            // CodedFrames (H.264/H.265 with a composition time offset) and CodedFramesX
            // (offset zero).
            1 | 3 => {
                if self.video.as_ref().is_none_or(|v| v.codec != codec) {
                    return Ok(Some(FlvOutput::Skipped(Skipped::FrameBeforeConfig(codec))));
                }
                let (cts, start) = if packet_type == 1 && matches!(codec, Codec::H264 | Codec::H265)
                {
                    let b = data
                        .get(5..8)
                        .ok_or(FlvError::Truncated("enhanced video", data.len()))?;
                    (i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8, 8)
                } else {
                    (0, 5)
                };
                let mut payload = data.slice(start..);
                // AV1 in MP4 carries no temporal delimiter OBUs.
                if codec == Codec::Av1 && payload.starts_with(&[0x12, 0x00]) {
                    payload = payload.slice(2..);
                }
                if payload.is_empty() {
                    return Ok(None);
                }
                Ok(Some(FlvOutput::Frame(Frame {
                    track: VIDEO_TRACK,
                    dts: MediaTime::new(dts_ms, Timescale::MILLIS),
                    pts: MediaTime::new(dts_ms + i64::from(cts), Timescale::MILLIS),
                    key: frame_type == 1 || frame_type == 4,
                    data: payload,
                })))
            }
            // SequenceEnd, Metadata (colour info), MPEG-2 TS sequence start,
            // multitrack and ModEx are not media.
            _ => Ok(None),
        }
    }

    /// Enhanced RTMP audio (E-RTMP v2, SoundFormat 9): packet type in the low four
    /// bits, then the FourCC. Opus is recorded; others are reported once.
    fn enhanced_audio(&mut self, dts_ms: i64, data: Bytes, out: &mut Vec<FlvOutput>) {
        let packet_type = data[0] & 0x0f;
        let Some(cc) = data.get(1..5) else {
            out.push(FlvOutput::Skipped(Skipped::EnhancedAudio));
            return;
        };
        if cc != b"Opus" {
            out.push(FlvOutput::Skipped(Skipped::EnhancedAudio));
            return;
        }
        match packet_type {
            0 => match edgerec_media::opus::OpusHead::parse(&data[5..]) {
                Ok(h) => {
                    let info = TrackInfo {
                        id: AUDIO_TRACK,
                        codec: Codec::Opus,
                        params: TrackParams::Audio(AudioParams {
                            sample_rate: 48_000,
                            channels: h.channels.max(1),
                            samples_per_frame: None,
                        }),
                        codec_string: "opus".into(),
                        config: h.dops,
                    };
                    out.extend(self.set_track(info, false));
                }
                Err(_) => out.push(FlvOutput::Skipped(Skipped::BadOpusHead)),
            },
            1 => {
                if self.audio.as_ref().is_none_or(|a| a.codec != Codec::Opus) {
                    out.push(FlvOutput::Skipped(Skipped::FrameBeforeConfig(Codec::Opus)));
                } else if data.len() > 5 {
                    let t = MediaTime::new(dts_ms, Timescale::MILLIS);
                    out.push(FlvOutput::Frame(Frame {
                        track: AUDIO_TRACK,
                        dts: t,
                        pts: t,
                        key: true,
                        data: data.slice(5..),
                    }));
                }
            }
            // SequenceEnd, MultichannelConfig (the OpusHead says it), multitrack.
            _ => {}
        }
    }

    /// Demuxes one audio tag body with decode time `dts_ms` (already unwrapped),
    /// appending what it yields to `out` (a changed track comes before its frame).
    pub fn audio(
        &mut self,
        dts_ms: i64,
        data: Bytes,
        out: &mut Vec<FlvOutput>,
    ) -> Result<(), FlvError> {
        let Some(&b0) = data.first() else {
            return Ok(());
        };
        let format = b0 >> 4;
        let stereo = b0 & 1 == 1;
        let time = MediaTime::new(dts_ms, Timescale::MILLIS);
        let frame = |data: Bytes| {
            FlvOutput::Frame(Frame {
                track: AUDIO_TRACK,
                dts: time,
                pts: time,
                key: true,
                data,
            })
        };
        match format {
            10 => {
                if data.len() < 2 {
                    return Err(FlvError::Truncated("AAC audio", data.len()));
                }
                if data[1] == 0 {
                    let asc = data.slice(2..);
                    let c = AudioSpecificConfig::parse(&asc)
                        .map_err(|e| FlvError::AacConfig(e.to_string()))?;
                    let info = TrackInfo {
                        id: AUDIO_TRACK,
                        codec: Codec::Aac,
                        params: TrackParams::Audio(AudioParams {
                            sample_rate: c.sample_rate,
                            channels: if c.channels == 0 { 2 } else { c.channels },
                            samples_per_frame: Some(c.frame_length),
                        }),
                        codec_string: c.codec_string(),
                        config: asc,
                    };
                    out.extend(self.set_track(info, false));
                } else if self.audio.is_none() {
                    out.push(FlvOutput::Skipped(Skipped::FrameBeforeConfig(Codec::Aac)));
                } else if data.len() > 2 {
                    out.push(frame(data.slice(2..)));
                }
            }
            2 | 14 => {
                let payload = data.slice(1..);
                if payload.is_empty() {
                    return Ok(());
                }
                let Ok(h) = Mp3Header::parse(&payload) else {
                    out.push(FlvOutput::Skipped(Skipped::BadMp3Header));
                    return Ok(());
                };
                let info = TrackInfo {
                    id: AUDIO_TRACK,
                    codec: Codec::Mp3,
                    params: TrackParams::Audio(AudioParams {
                        sample_rate: h.sample_rate,
                        channels: h.channels,
                        samples_per_frame: Some(h.samples_per_frame),
                    }),
                    codec_string: if h.sample_rate >= 32_000 {
                        "mp4a.6b".into()
                    } else {
                        "mp4a.69".into()
                    },
                    config: Bytes::new(),
                };
                out.extend(self.set_track(info, false));
                out.push(frame(payload));
            }
            7 | 8 => {
                let payload = data.slice(1..);
                let info = TrackInfo {
                    id: AUDIO_TRACK,
                    codec: if format == 7 {
                        Codec::Pcma
                    } else {
                        Codec::Pcmu
                    },
                    params: TrackParams::Audio(AudioParams {
                        sample_rate: 8000,
                        channels: if stereo { 2 } else { 1 },
                        samples_per_frame: None,
                    }),
                    codec_string: if format == 7 {
                        "alaw".into()
                    } else {
                        "ulaw".into()
                    },
                    config: Bytes::new(),
                };
                out.extend(self.set_track(info, false));
                if !payload.is_empty() {
                    out.push(frame(payload));
                }
            }
            9 => self.enhanced_audio(dts_ms, data, out),
            other => out.push(FlvOutput::Skipped(Skipped::UnsupportedAudioFormat(other))),
        }
        Ok(())
    }

    fn set_track(&mut self, info: TrackInfo, video: bool) -> Option<FlvOutput> {
        let slot = if video {
            &mut self.video
        } else {
            &mut self.audio
        };
        // Encoders repeat identical sequence headers (OBS on every reconnect of its
        // output, some on every key frame): only a change is news.
        if slot.as_ref() == Some(&info) {
            return None;
        }
        *slot = Some(info.clone());
        Some(FlvOutput::Track(info))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks an FLV file's tags: (type, timestamp ms, body).
    fn tags(file: &[u8]) -> Vec<(u8, i64, Bytes)> {
        let file = Bytes::copy_from_slice(file);
        let mut pos = 9 + 4;
        let mut out = Vec::new();
        while pos + 11 <= file.len() {
            let t = file[pos];
            let size =
                u32::from_be_bytes([0, file[pos + 1], file[pos + 2], file[pos + 3]]) as usize;
            let ts =
                u32::from_be_bytes([file[pos + 7], file[pos + 4], file[pos + 5], file[pos + 6]]);
            out.push((t, ts as i64, file.slice(pos + 11..pos + 11 + size)));
            pos += 11 + size + 4;
        }
        out
    }

    /// Every tag of an FLV file through one demuxer: the demuxer, what it put out,
    /// and the tracks among that.
    fn demux_file(file: &[u8]) -> (FlvDemuxer, Vec<FlvOutput>, Vec<TrackInfo>) {
        let mut d = FlvDemuxer::default();
        let mut out = Vec::new();
        for (t, ts, body) in tags(file) {
            match t {
                8 => d.audio(ts, body, &mut out).unwrap(),
                9 => d.video(ts, body, &mut out).unwrap(),
                _ => {}
            }
        }
        let tracks = out
            .iter()
            .filter_map(|o| match o {
                FlvOutput::Track(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        (d, out, tracks)
    }

    /// A 1 s FLV written by ffmpeg 5.1 (libx264 320x240 25 fps with B-frames, AAC
    /// 44.1 kHz stereo): see tests/data/README.md.
    const FIXTURE: &[u8] = include_bytes!("../tests/data/x264_aac_320x240_1s.flv");

    #[test]
    fn demuxes_ffmpeg_flv() {
        let (d, out, tracks) = demux_file(FIXTURE);
        assert_eq!(tracks.len(), 2);
        let v = d.video_track().unwrap();
        assert_eq!(
            v.video(),
            Some(&VideoParams {
                width: 320,
                height: 240
            })
        );
        assert_eq!(v.codec_string, "avc1.64000d");
        let a = d.audio_track().unwrap();
        assert_eq!(a.audio().unwrap().sample_rate, 44100);
        assert_eq!(a.audio().unwrap().channels, 2);
        let frames: Vec<&Frame> = out
            .iter()
            .filter_map(|o| match o {
                FlvOutput::Frame(f) => Some(f),
                _ => None,
            })
            .collect();
        let video: Vec<_> = frames.iter().filter(|f| f.track == VIDEO_TRACK).collect();
        let audio: Vec<_> = frames.iter().filter(|f| f.track == AUDIO_TRACK).collect();
        // ffprobe -count_packets on the fixture: 25 video, 45 audio packets.
        assert_eq!(video.len(), 25);
        assert_eq!(audio.len(), 45);
        assert!(video[0].key);
        assert_eq!(video.iter().filter(|f| f.key).count(), 1);
        // B-frames: some frames are presented after later-decoded ones.
        assert!(video.iter().any(|f| f.pts > f.dts));
        // Payloads are AVCC: the first 4 bytes are a NAL length within the frame.
        let f = video[0];
        let n = u32::from_be_bytes([f.data[0], f.data[1], f.data[2], f.data[3]]) as usize;
        assert!(n + 4 <= f.data.len());
        assert!(!out.iter().any(|o| matches!(o, FlvOutput::Skipped(_))));
    }

    #[test]
    fn repeated_sequence_header_is_not_a_new_track() {
        let mut d = FlvDemuxer::default();
        let seq = tags(FIXTURE)
            .into_iter()
            .find(|(t, _, _)| *t == 9)
            .unwrap()
            .2;
        let mut out = Vec::new();
        d.video(0, seq.clone(), &mut out).unwrap();
        d.video(40, seq, &mut out).unwrap();
        assert_eq!(out.len(), 1);
    }

    /// Enhanced-RTMP FLVs written by ffmpeg 9 (imageio-ffmpeg 0.8.1's binary):
    /// 1 s of 320x240 25 fps, GOP 25, Opus 48 kHz mono (see tests/data/README.md).
    fn enhanced(file: &[u8], codec: Codec, cs: &str) {
        let (_, out, tracks) = demux_file(file);
        let v = tracks.iter().rev().find(|t| t.id == VIDEO_TRACK).unwrap();
        assert_eq!(v.video().map(|p| (p.width, p.height)), Some((320, 240)));
        assert_eq!((v.codec, v.codec_string.as_str()), (codec, cs));
        let a = tracks.iter().find(|t| t.id == AUDIO_TRACK).unwrap();
        assert_eq!(a.codec, Codec::Opus);
        assert_eq!(&a.config[..2], &[0, 1]); // dOps version 0, mono
        let video: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                FlvOutput::Frame(f) if f.track == VIDEO_TRACK => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(video.len(), 25);
        assert!(video[0].key);
        assert_eq!(video.iter().filter(|f| f.key).count(), 1);
        assert!(video.iter().all(|f| f.pts >= f.dts && !f.data.is_empty()));
        let audio = out
            .iter()
            .filter(|o| matches!(o, FlvOutput::Frame(f) if f.track == AUDIO_TRACK))
            .count();
        assert!(audio >= 48, "{audio} Opus packets");
        assert!(!out.iter().any(|o| matches!(o, FlvOutput::Skipped(_))));
    }

    #[test]
    fn enhanced_rtmp_hevc_av1_vp9_opus() {
        enhanced(
            include_bytes!("../tests/data/ffmpeg9_hevc_opus_1s.flv"),
            Codec::H265,
            "hvc1.1.6.L60.90",
        );
        enhanced(
            include_bytes!("../tests/data/ffmpeg9_av1_opus_1s.flv"),
            Codec::Av1,
            "av01.0.00M.08",
        );
        enhanced(
            include_bytes!("../tests/data/ffmpeg9_vp9_opus_1s.flv"),
            Codec::Vp9,
            "vp09.00.20.08",
        );
    }

    #[test]
    fn truncated_and_unsupported_tags() {
        let mut d = FlvDemuxer::default();
        let mut out = Vec::new();
        assert_eq!(
            d.video(0, Bytes::from_static(&[0x17, 0x00]), &mut out),
            Err(FlvError::Truncated("AVC video", 2))
        );
        assert!(d
            .video(0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]), &mut out)
            .is_err());
        d.video(
            0,
            Bytes::from_static(&[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41]),
            &mut out,
        )
        .unwrap();
        d.video(0, Bytes::from_static(&[0x22, 1, 2]), &mut out)
            .unwrap();
        d.video(
            0,
            Bytes::from_static(&[0x90, b'x', b'y', b'z', b'1']),
            &mut out,
        )
        .unwrap();
        d.audio(0, Bytes::from_static(&[0xaf, 0x01, 0x21]), &mut out)
            .unwrap();
        d.audio(0, Bytes::from_static(&[0x6f, 0x01]), &mut out)
            .unwrap();
        let skipped: Vec<_> = out
            .iter()
            .map(|o| match o {
                FlvOutput::Skipped(s) => *s,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            skipped,
            vec![
                Skipped::FrameBeforeConfig(Codec::H264),
                Skipped::UnsupportedVideoCodec(2),
                Skipped::EnhancedVideo(*b"xyz1"),
                Skipped::FrameBeforeConfig(Codec::Aac),
                Skipped::UnsupportedAudioFormat(6),
            ]
        );
    }

    #[test]
    fn g711_and_mp3_announce_then_record_the_first_frame() {
        let mut d = FlvDemuxer::default();
        let mut out = Vec::new();
        d.audio(0, Bytes::from_static(&[0x72, 1, 2, 3]), &mut out)
            .unwrap();
        d.audio(20, Bytes::from_static(&[0x72, 4, 5]), &mut out)
            .unwrap();
        assert!(matches!(&out[0], FlvOutput::Track(t) if t.codec == Codec::Pcma));
        assert!(matches!(&out[1], FlvOutput::Frame(f) if f.data.len() == 3));
        assert!(matches!(&out[2], FlvOutput::Frame(f) if f.data.len() == 2));
        out.clear();
        d.audio(
            40,
            Bytes::from_static(&[0x2f, 0xff, 0xfb, 0x90, 0x64, 0]),
            &mut out,
        )
        .unwrap();
        assert!(matches!(&out[0], FlvOutput::Track(t) if t.codec == Codec::Mp3));
        assert!(matches!(&out[1], FlvOutput::Frame(f) if f.data.len() == 5));
    }
}
