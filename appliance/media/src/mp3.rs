//! MPEG audio frame headers (for MP3 carried in FLV, where the FLV rate field is too
//! coarse to describe the stream).
//!
//! Hand-written: a 4-byte header with lookup tables.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Mp3Error {
    #[error("MPEG audio frame header truncated")]
    Truncated,
    #[error("no MPEG audio frame sync")]
    NoSync,
    #[error("reserved MPEG audio version, layer or sample rate")]
    Reserved,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mp3Header {
    pub sample_rate: u32,
    pub channels: u8,
    pub samples_per_frame: u32,
    /// Whole frame length in bytes, header included; `None` for free-format
    /// streams (bitrate index 0), whose frames cannot be delimited by the header.
    pub frame_len: Option<usize>,
}

/// kbit/s by bitrate index: MPEG-1 layers I, II, III; MPEG-2/2.5 layer I, layers II/III.
const BITRATES: [[u16; 15]; 5] = [
    [
        0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
    ],
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
    ],
    [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ],
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
    ],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];

impl Mp3Header {
    pub fn parse(data: &[u8]) -> Result<Mp3Header, Mp3Error> {
        let h: [u8; 4] = data
            .get(..4)
            .ok_or(Mp3Error::Truncated)?
            .try_into()
            .map_err(|_| Mp3Error::Truncated)?;
        if h[0] != 0xff || h[1] & 0xe0 != 0xe0 {
            return Err(Mp3Error::NoSync);
        }
        let version = (h[1] >> 3) & 0b11; // 0: 2.5, 1: reserved, 2: 2, 3: 1
        let layer = (h[1] >> 1) & 0b11; // 1: III, 2: II, 3: I
        let rate_index = (h[2] >> 2) & 0b11;
        if version == 1 || layer == 0 || rate_index == 3 {
            return Err(Mp3Error::Reserved);
        }
        let base = [44100, 48000, 32000][rate_index as usize];
        let sample_rate = match version {
            3 => base,
            2 => base / 2,
            _ => base / 4,
        };
        let samples_per_frame = match (version, layer) {
            (_, 3) => 384,
            (_, 2) => 1152,
            (3, 1) => 1152,
            _ => 576,
        };
        let channels = if (h[3] >> 6) == 0b11 { 1 } else { 2 };
        let bitrate_index = usize::from(h[2] >> 4);
        if bitrate_index == 15 {
            return Err(Mp3Error::Reserved);
        }
        let table = match (version, layer) {
            (3, 3) => 0,
            (3, 2) => 1,
            (3, _) => 2,
            (_, 3) => 3,
            _ => 4,
        };
        let kbps = usize::from(BITRATES[table][bitrate_index]);
        let padding = usize::from((h[2] >> 1) & 1);
        let frame_len = (kbps > 0).then(|| {
            let bps = kbps * 1000;
            let rate = sample_rate as usize;
            match layer {
                3 => (12 * bps / rate + padding) * 4,
                // Layer III in MPEG-2/2.5 has half the samples per frame.
                1 if version != 3 => 72 * bps / rate + padding,
                _ => 144 * bps / rate + padding,
            }
        });
        Ok(Mp3Header {
            sample_rate,
            channels,
            samples_per_frame,
            frame_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpeg1_layer3_44100_stereo() {
        let h = Mp3Header::parse(&[0xff, 0xfb, 0x90, 0x64]).unwrap();
        assert_eq!(h.sample_rate, 44100);
        assert_eq!(h.channels, 2);
        assert_eq!(h.samples_per_frame, 1152);
        // 128 kbit/s, no padding: 417 bytes.
        assert_eq!(h.frame_len, Some(417));
    }

    #[test]
    fn mpeg2_layer3_22050_mono() {
        let h = Mp3Header::parse(&[0xff, 0xf3, 0x90, 0xc4]).unwrap();
        assert_eq!(h.sample_rate, 22050);
        assert_eq!(h.channels, 1);
        assert_eq!(h.samples_per_frame, 576);
        // MPEG-2 layer III, bitrate index 9: 80 kbit/s.
        assert_eq!(h.frame_len, Some(72 * 80_000 / 22050));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Mp3Header::parse(&[0xff]), Err(Mp3Error::Truncated));
        assert_eq!(Mp3Header::parse(&[0, 0, 0, 0]), Err(Mp3Error::NoSync));
        assert_eq!(
            Mp3Header::parse(&[0xff, 0xe9, 0x90, 0x64]),
            Err(Mp3Error::Reserved)
        );
    }
}
