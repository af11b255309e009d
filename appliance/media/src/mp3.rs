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
}

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
        Ok(Mp3Header {
            sample_rate,
            channels,
            samples_per_frame,
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
    }

    #[test]
    fn mpeg2_layer3_22050_mono() {
        let h = Mp3Header::parse(&[0xff, 0xf3, 0x90, 0xc4]).unwrap();
        assert_eq!(h.sample_rate, 22050);
        assert_eq!(h.channels, 1);
        assert_eq!(h.samples_per_frame, 576);
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
