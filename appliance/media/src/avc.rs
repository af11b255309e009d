//! H.264 decoder configuration (AVCDecoderConfigurationRecord, ISO/IEC 14496-15).
//!
//! Parsing of the record and its SPS is delegated to `h264-reader`; this module only
//! extracts what the recorder and the API need.

use bytes::Bytes;
use thiserror::Error;

use h264_reader::avcc::AvcDecoderConfigurationRecord;
use h264_reader::nal::sps::{ChromaFormat, SeqParameterSet};
use h264_reader::nal::{Nal, RefNal};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AvcError {
    #[error("invalid AVCDecoderConfigurationRecord: {0}")]
    Record(String),
    #[error("AVCDecoderConfigurationRecord has no SPS")]
    NoSps,
}

/// What we read from an AVCDecoderConfigurationRecord.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcConfig {
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
    /// Bytes in each NAL unit length prefix (1, 2 or 4).
    pub nal_length_size: u8,
    /// Picture size from the SPS; 0x0 when the SPS uses something the parser does not
    /// understand (the record is still valid and decoders will cope).
    pub width: u32,
    pub height: u32,
    /// Why the SPS could not be read, when it could not.
    pub sps_error: Option<String>,
}

/// The SPS and PPS NAL units of an AVCDecoderConfigurationRecord, in order
/// (what an Annex B stream repeats before each IDR); empty if it is malformed.
pub fn parameter_sets(record: &[u8]) -> Vec<&[u8]> {
    let Ok(rec) = AvcDecoderConfigurationRecord::try_from(record) else {
        return Vec::new();
    };
    let sps = rec.sequence_parameter_sets().filter_map(Result::ok);
    let pps = rec.picture_parameter_sets().filter_map(Result::ok);
    sps.chain(pps).filter(|p| !p.is_empty()).collect()
}

impl AvcConfig {
    /// Parses the record (as carried in an FLV AVC sequence header or an MP4 avcC box).
    pub fn parse(record: &[u8]) -> Result<AvcConfig, AvcError> {
        let rec = AvcDecoderConfigurationRecord::try_from(record)
            .map_err(|e| AvcError::Record(format!("{e:?}")))?;
        let sps_bytes = rec
            .sequence_parameter_sets()
            .next()
            .ok_or(AvcError::NoSps)?
            .map_err(|e| AvcError::Record(format!("{e:?}")))?;
        // h264-reader panics on an empty NAL (RefNal::new); a record may
        // announce a zero-length SPS.
        let dims = match sps_bytes {
            [] => Err("the SPS is empty".to_owned()),
            _ => SeqParameterSet::from_bits(RefNal::new(sps_bytes, &[], true).rbsp_bits())
                .and_then(|sps| sps.pixel_dimensions())
                .map_err(|e| format!("{e:?}")),
        };
        let ((width, height), sps_error) = match dims {
            Ok(d) => (d, None),
            Err(e) => ((0, 0), Some(e)),
        };
        Ok(AvcConfig {
            profile_idc: record[1],
            constraint_flags: record[2],
            level_idc: record[3],
            nal_length_size: (record[4] & 0b11) + 1,
            width,
            height,
            sps_error,
        })
    }

    /// Builds an AVCDecoderConfigurationRecord (4-byte NAL lengths) from parameter
    /// sets delivered in-band (Annex B streams: MPEG-TS, RTP), and parses it back.
    pub fn from_parameter_sets(sps: &[u8], pps: &[&[u8]]) -> Result<(Bytes, AvcConfig), AvcError> {
        if sps.len() < 4 || sps.len() > 0xffff {
            return Err(AvcError::Record(format!("SPS of {} bytes", sps.len())));
        }
        if pps.is_empty() || pps.len() > 31 || pps.iter().any(|p| p.is_empty() || p.len() > 0xffff)
        {
            return Err(AvcError::Record("no usable PPS".into()));
        }
        let mut r =
            Vec::with_capacity(11 + sps.len() + pps.iter().map(|p| 2 + p.len()).sum::<usize>());
        // version, profile, constraint flags, level (from the SPS), 4-byte lengths.
        r.extend_from_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
        r.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        r.extend_from_slice(sps);
        r.push(pps.len() as u8);
        for p in pps {
            r.extend_from_slice(&(p.len() as u16).to_be_bytes());
            r.extend_from_slice(p);
        }
        // High profiles carry chroma format and bit depths (14496-15 5.3.3.1.2).
        if matches!(sps[1], 100 | 110 | 122 | 144) {
            let nal = RefNal::new(sps, &[], true);
            let sps = SeqParameterSet::from_bits(nal.rbsp_bits())
                .map_err(|e| AvcError::Record(format!("SPS: {e:?}")))?;
            let c = &sps.chroma_info;
            let idc = match c.chroma_format {
                ChromaFormat::Monochrome => 0,
                ChromaFormat::YUV420 | ChromaFormat::Invalid(_) => 1,
                ChromaFormat::YUV422 => 2,
                ChromaFormat::YUV444 => 3,
            };
            r.extend_from_slice(&[
                0xfc | idc,
                0xf8 | (c.bit_depth_luma_minus8 & 7),
                0xf8 | (c.bit_depth_chroma_minus8 & 7),
                0,
            ]);
        }
        let cfg = AvcConfig::parse(&r)?;
        Ok((Bytes::from(r), cfg))
    }

    /// RFC 6381 codec string, e.g. `avc1.64001f`.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// avcC from the AVC sequence header of a real FLV written by ffmpeg 5.1/libx264:
    /// `ffmpeg -f lavfi -i testsrc=size=320x240:rate=25 -t 1 -pix_fmt yuv420p
    /// -c:v libx264 -g 25 -bf 2 -f flv` (the same file is the rtmp crate's FLV fixture).
    pub const X264_320X240_AVCC: &[u8] = &[
        0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41,
        0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1,
        0x42, 0x99, 0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8, 0xf8,
        0x00,
    ];

    #[test]
    fn parses_x264_record() {
        let c = AvcConfig::parse(X264_320X240_AVCC).unwrap();
        assert_eq!((c.width, c.height), (320, 240));
        assert_eq!(c.nal_length_size, 4);
        assert_eq!(c.codec_string(), "avc1.64000d");
        assert_eq!(c.sps_error, None);
    }

    #[test]
    fn record_from_in_band_parameter_sets_matches_ffmpeg() {
        let sps = &X264_320X240_AVCC[8..8 + 0x19];
        let pps = &X264_320X240_AVCC[8 + 0x19 + 3..8 + 0x19 + 3 + 6];
        let (rec, cfg) = AvcConfig::from_parameter_sets(sps, &[pps]).unwrap();
        assert_eq!(&rec[..], X264_320X240_AVCC);
        assert_eq!((cfg.width, cfg.height), (320, 240));
        assert!(AvcConfig::from_parameter_sets(&sps[..3], &[pps]).is_err());
        assert!(AvcConfig::from_parameter_sets(sps, &[]).is_err());
    }

    #[test]
    fn unreadable_sps_keeps_the_record() {
        let mut rec = X264_320X240_AVCC.to_vec();
        // Cut the SPS short (its length stays valid by shrinking the NAL to 2 bytes).
        rec.splice(6..8 + 0x19, [0x00, 0x02, 0x67, 0x64]);
        let c = AvcConfig::parse(&rec).unwrap();
        assert_eq!((c.width, c.height), (0, 0));
        assert!(c.sps_error.is_some());
    }

    /// The fuzzer's find (regressions/flv/empty-sps-in-avc-record): a record
    /// announcing one SPS of zero bytes panicked inside h264-reader.
    #[test]
    fn an_empty_sps_keeps_the_record_without_a_panic() {
        let rec = [
            0x01, 0x05, 0x0c, 0x00, 0x09, 0x01, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf1, 0xa5,
            0x28, 0x1e, 0xbd, 0x9d,
        ];
        let c = AvcConfig::parse(&rec).unwrap();
        assert_eq!((c.width, c.height), (0, 0));
        assert_eq!(c.sps_error.as_deref(), Some("the SPS is empty"));
        assert!(parameter_sets(&rec).iter().all(|p| !p.is_empty()));
    }

    #[test]
    fn rejects_truncated_record() {
        for n in 0..X264_320X240_AVCC.len() - 8 {
            assert!(
                AvcConfig::parse(&X264_320X240_AVCC[..n]).is_err(),
                "len {n}"
            );
        }
    }
}
