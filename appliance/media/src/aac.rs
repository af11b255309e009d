//! AAC AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1).
//!
//! Hand-written: the fields we need are a handful of bit fields, and the crates that
//! parse them pull in whole decoders.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AacError {
    #[error("AudioSpecificConfig truncated")]
    Truncated,
    #[error("no ADTS sync word")]
    NoAdtsSync,
    #[error("ADTS frame length {0} is shorter than its header")]
    AdtsLength(usize),
    #[error("AudioSpecificConfig has reserved sampling frequency index {0}")]
    BadFrequencyIndex(u8),
}

/// The parts of an AudioSpecificConfig a container needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    pub object_type: u8,
    /// Core sampling rate (the rate of one coded frame of `frame_length` samples).
    pub sample_rate: u32,
    /// 0 means "defined by a program config element"; containers then say 2.
    pub channels: u8,
    /// 1024, or 960 when the frameLengthFlag is set.
    pub frame_length: u32,
}

const FREQUENCIES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Result<u32, AacError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8).ok_or(AacError::Truncated)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }
}

impl AudioSpecificConfig {
    pub fn parse(data: &[u8]) -> Result<AudioSpecificConfig, AacError> {
        let mut b = Bits { data, pos: 0 };
        let mut object_type = b.read(5)? as u8;
        if object_type == 31 {
            object_type = 32 + b.read(6)? as u8;
        }
        let freq_index = b.read(4)? as u8;
        let sample_rate = if freq_index == 0xf {
            b.read(24)?
        } else {
            *FREQUENCIES
                .get(freq_index as usize)
                .ok_or(AacError::BadFrequencyIndex(freq_index))?
        };
        let channels = b.read(4)? as u8;
        // Explicit SBR/PS signalling (HE-AAC v1/v2): the extension rate follows, then
        // the core object type. The core rate stays the frame clock.
        let mut core_type = object_type;
        if object_type == 5 || object_type == 29 {
            let ext_index = b.read(4)?;
            if ext_index == 0xf {
                b.read(24)?;
            }
            core_type = b.read(5)? as u8;
            if core_type == 31 {
                core_type = 32 + b.read(6)? as u8;
            }
        }
        // GASpecificConfig starts with frameLengthFlag for the general-audio types.
        let general_audio = matches!(core_type, 1..=4 | 6 | 7 | 17 | 19..=23);
        let frame_length = if general_audio && b.read(1)? == 1 {
            960
        } else {
            1024
        };
        Ok(AudioSpecificConfig {
            object_type,
            sample_rate,
            channels,
            frame_length,
        })
    }

    /// RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

/// An ADTS frame header (ISO/IEC 13818-7 6.2), as AAC arrives in MPEG-TS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdtsHeader {
    /// Audio object type (profile + 1: 2 for AAC-LC).
    pub object_type: u8,
    pub frequency_index: u8,
    pub sample_rate: u32,
    pub channel_config: u8,
    /// 7, or 9 with a CRC.
    pub header_len: usize,
    /// Header and payload.
    pub frame_len: usize,
}

impl AdtsHeader {
    pub fn parse(h: &[u8]) -> Result<AdtsHeader, AacError> {
        let h = h.get(..7).ok_or(AacError::Truncated)?;
        if h[0] != 0xff || h[1] & 0xf6 != 0xf0 {
            return Err(AacError::NoAdtsSync);
        }
        let protection_absent = h[1] & 1 == 1;
        let object_type = (h[2] >> 6) + 1;
        let frequency_index = (h[2] >> 2) & 0x0f;
        let sample_rate = *FREQUENCIES
            .get(frequency_index as usize)
            .ok_or(AacError::BadFrequencyIndex(frequency_index))?;
        let channel_config = ((h[2] & 1) << 2) | (h[3] >> 6);
        let frame_len =
            (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        let header_len = if protection_absent { 7 } else { 9 };
        if frame_len < header_len {
            return Err(AacError::AdtsLength(frame_len));
        }
        Ok(AdtsHeader {
            object_type,
            frequency_index,
            sample_rate,
            channel_config,
            header_len,
            frame_len,
        })
    }

    /// The two-byte AudioSpecificConfig this header describes.
    pub fn audio_specific_config(&self) -> [u8; 2] {
        [
            (self.object_type << 3) | (self.frequency_index >> 1),
            ((self.frequency_index & 1) << 7) | (self.channel_config << 3),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adts_header_from_ffmpeg_ts() {
        // First ADTS header in the ts crate's fixture (ffmpeg 5.1, `-f lavfi -i
        // sine=sample_rate=48000 -c:a aac -b:a 128k -ac 2 -f mpegts`): AAC-LC,
        // 48 kHz, stereo, no CRC, 295-byte frame.
        let h = AdtsHeader::parse(&[0xff, 0xf1, 0x4c, 0x80, 0x24, 0xff, 0xfc]).unwrap();
        assert_eq!(h.object_type, 2);
        assert_eq!(h.sample_rate, 48000);
        assert_eq!(h.channel_config, 2);
        assert_eq!(h.header_len, 7);
        assert_eq!(h.frame_len, 295);
        let asc = h.audio_specific_config();
        assert_eq!(asc, [0x11, 0x90]);
        let c = AudioSpecificConfig::parse(&asc).unwrap();
        assert_eq!(
            (c.sample_rate, c.channels, c.frame_length),
            (48000, 2, 1024)
        );
        assert_eq!(AdtsHeader::parse(&[0xff, 0xf1]), Err(AacError::Truncated));
        assert_eq!(
            AdtsHeader::parse(&[0x47, 0xf1, 0x4c, 0x80, 0x2e, 0x7f, 0xfc]),
            Err(AacError::NoAdtsSync)
        );
    }

    #[test]
    fn aac_lc_44100_stereo() {
        // The AAC sequence header ffmpeg 5.1 writes for 44.1 kHz stereo (from the FLV fixture).
        let c = AudioSpecificConfig::parse(&[0x12, 0x10, 0x56, 0xe5, 0x00]).unwrap();
        assert_eq!(c.object_type, 2);
        assert_eq!(c.sample_rate, 44100);
        assert_eq!(c.channels, 2);
        assert_eq!(c.frame_length, 1024);
        assert_eq!(c.codec_string(), "mp4a.40.2");
    }

    #[test]
    fn aac_lc_48000_mono_with_sbr_signalling() {
        let c = AudioSpecificConfig::parse(&[0x11, 0x88, 0x56, 0xe5, 0x00]).unwrap();
        assert_eq!(c.sample_rate, 48000);
        assert_eq!(c.channels, 1);
    }

    #[test]
    fn errors_not_panics() {
        assert_eq!(AudioSpecificConfig::parse(&[]), Err(AacError::Truncated));
        assert_eq!(
            AudioSpecificConfig::parse(&[0x12]),
            Err(AacError::Truncated)
        );
        assert_eq!(
            AudioSpecificConfig::parse(&[0x16, 0x90]),
            Err(AacError::BadFrequencyIndex(13))
        );
    }
}
