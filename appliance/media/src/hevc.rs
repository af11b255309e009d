//! H.265 parameter sets: the SPS fields a container needs (picture size, chroma
//! format, bit depths, profile/tier/level), and the `hvcC` record built from
//! in-band VPS/SPS/PPS (MPEG-TS, RTP) the way the AVC one is for H.264.
//!
//! Hand-written: h264-reader has no H.265 side and the fields are a short
//! prefix of the SPS.

use bytes::Bytes;

use crate::picture_size::Bits;

pub const NAL_VPS: u8 = 32;
pub const NAL_SPS: u8 = 33;
pub const NAL_PPS: u8 = 34;

/// The NAL unit type of an H.265 NAL unit (its 2-byte header's bits 1..7).
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|h| (h >> 1) & 0x3f)
}

/// The first NAL unit of `kind` in an `hvcC`'s arrays.
pub fn first_nal(hvcc: &[u8], kind: u8) -> Option<&[u8]> {
    let arrays = *hvcc.get(22)?;
    let mut at = 23;
    for _ in 0..arrays {
        let k = hvcc.get(at)? & 0x3f;
        let n = u16::from_be_bytes([*hvcc.get(at + 1)?, *hvcc.get(at + 2)?]);
        at += 3;
        for _ in 0..n {
            let len = usize::from(u16::from_be_bytes([*hvcc.get(at)?, *hvcc.get(at + 1)?]));
            let nal = hvcc.get(at + 2..at + 2 + len)?;
            if k == kind {
                return Some(nal);
            }
            at += 2 + len;
        }
    }
    None
}

/// What an SPS says that a container needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    pub width: u32,
    pub height: u32,
    pub chroma_format_idc: u8,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
    /// general_profile_space … general_level_idc: the 12 bytes the `hvcC` repeats.
    pub general_ptl: [u8; 12],
    pub max_sub_layers: u8,
    pub temporal_id_nesting: bool,
}

impl Sps {
    /// Parses an SPS NAL unit (with its 2-byte header).
    pub fn parse(nal: &[u8]) -> Option<Sps> {
        // RBSP: drop the NAL header and emulation prevention bytes.
        let mut rbsp = Vec::with_capacity(nal.len());
        let mut zeros = 0;
        for &b in nal.get(2..)? {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            rbsp.push(b);
        }
        let general_ptl: [u8; 12] = rbsp.get(1..13)?.try_into().ok()?;
        let mut b = Bits {
            data: &rbsp,
            pos: 0,
        };
        b.read(4)?; // sps_video_parameter_set_id
        let sub_layers = b.read(3)? as usize; // sps_max_sub_layers_minus1
        let nesting = b.flag()?;
        // profile_tier_level: the general part, then per sub-layer presence flags.
        b.skip(88 + 8)?;
        let mut present = [(false, false); 8];
        for p in present.iter_mut().take(sub_layers) {
            *p = (b.flag()?, b.flag()?);
        }
        if sub_layers > 0 {
            b.skip(2 * (8 - sub_layers))?;
        }
        for &(profile, level) in present.iter().take(sub_layers) {
            if profile {
                b.skip(88)?;
            }
            if level {
                b.skip(8)?;
            }
        }
        b.ue()?; // sps_seq_parameter_set_id
        let chroma = b.ue()?;
        if chroma > 3 {
            return None;
        }
        let separate = chroma == 3 && b.flag()?;
        let (width, height) = (b.ue()?, b.ue()?);
        let (mut w, mut h) = (width, height);
        if b.flag()? {
            let (l, r, t, bo) = (b.ue()?, b.ue()?, b.ue()?, b.ue()?);
            let (sw, sh) = match (chroma, separate) {
                (1, false) => (2, 2),
                (2, false) => (2, 1),
                _ => (1, 1),
            };
            // Offsets are ue(v) up to 2^32 - 2: a sender's garbage must not overflow.
            w = width.checked_sub(l.checked_add(r)?.checked_mul(sw)?)?;
            h = height.checked_sub(t.checked_add(bo)?.checked_mul(sh)?)?;
        }
        let (luma, chroma_depth) = (b.ue()?, b.ue()?);
        if w == 0 || h == 0 || luma > 8 || chroma_depth > 8 {
            return None;
        }
        Some(Sps {
            width: w,
            height: h,
            chroma_format_idc: chroma as u8,
            bit_depth_luma_minus8: luma as u8,
            bit_depth_chroma_minus8: chroma_depth as u8,
            general_ptl,
            max_sub_layers: sub_layers as u8 + 1,
            temporal_id_nesting: nesting,
        })
    }
}

/// An HEVCDecoderConfigurationRecord (4-byte NAL lengths) from in-band
/// parameter sets, with the SPS it was built from.
pub fn config_from_parameter_sets(vps: &[u8], sps: &[u8], pps: &[&[u8]]) -> Option<(Bytes, Sps)> {
    let s = Sps::parse(sps)?;
    if vps.is_empty() || pps.is_empty() || pps.len() > 64 {
        return None;
    }
    let mut r = Vec::with_capacity(
        64 + vps.len() + sps.len() + pps.iter().map(|p| p.len() + 2).sum::<usize>(),
    );
    r.push(1);
    r.extend_from_slice(&s.general_ptl);
    r.extend_from_slice(&[0xf0, 0x00, 0xfc]); // min_spatial_segmentation 0, parallelism unknown
    r.push(0xfc | s.chroma_format_idc);
    r.push(0xf8 | s.bit_depth_luma_minus8);
    r.push(0xf8 | s.bit_depth_chroma_minus8);
    r.extend_from_slice(&[0, 0]); // avgFrameRate unknown
    r.push((s.max_sub_layers.min(7) << 3) | (u8::from(s.temporal_id_nesting) << 2) | 3);
    r.push(3);
    for (kind, nals) in [
        (NAL_VPS, vec![vps]),
        (NAL_SPS, vec![sps]),
        (NAL_PPS, pps.to_vec()),
    ] {
        r.push(0x80 | kind); // array_completeness: all of them are here
        r.extend_from_slice(&(nals.len() as u16).to_be_bytes());
        for n in nals {
            r.extend_from_slice(&u16::try_from(n.len()).ok()?.to_be_bytes());
            r.extend_from_slice(n);
        }
    }
    Some((Bytes::from(r), s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hvcC ffmpeg 9 / libx265 sent for 320x240 over enhanced RTMP (header and
    /// VPS/SPS/PPS arrays; its SEI array left out).
    const HVCC: &str = "0101600000009000000000003cf000fcfdf8f800000f0320000100184001\
        0c01ffff01600000030090000003000003003c9590092100010\
        02a42010101600000030090000003000003003ca00a080f16595924932bc05a02000003\
        000200000300321022000100074401c172b46240";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rebuilds_libx265_record_from_its_parameter_sets() {
        let c = hex(HVCC);
        let (vps, sps, pps) = (
            first_nal(&c, NAL_VPS).unwrap(),
            first_nal(&c, NAL_SPS).unwrap(),
            first_nal(&c, NAL_PPS).unwrap(),
        );
        let s = Sps::parse(sps).unwrap();
        assert_eq!((s.width, s.height, s.chroma_format_idc), (320, 240, 1));
        let (rebuilt, _) = config_from_parameter_sets(vps, sps, &[pps]).unwrap();
        // Same profile/tier/level and format fields as x265's own record, the
        // same parameter sets (x265 writes parallelismType and frame rate too).
        assert_eq!(rebuilt[..13], c[..13]);
        assert_eq!(rebuilt[16..19], c[16..19]);
        assert_eq!(
            crate::codec_string::hevc(&rebuilt),
            crate::codec_string::hevc(&c)
        );
        assert_eq!(first_nal(&rebuilt, NAL_SPS), Some(sps));
        assert_eq!(first_nal(&rebuilt, NAL_PPS), Some(pps));
        // Cut anywhere: no panic.
        for n in 0..sps.len() {
            let _ = Sps::parse(&sps[..n]);
        }
    }

    /// MSB-first bit writer for hand-made parameter sets.
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl BitWriter {
        fn put(&mut self, n: u32, v: u64) {
            for i in (0..n).rev() {
                if self.bits.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                let bit = ((v >> i) & 1) as u8;
                *self.bytes.last_mut().unwrap() |= bit << (7 - self.bits % 8);
                self.bits += 1;
            }
        }

        fn ue(&mut self, v: u64) {
            let zeros = 63 - (v + 1).leading_zeros();
            self.put(zeros, 0);
            self.put(zeros + 1, v + 1);
        }
    }

    /// A 320x240 4:2:0 SPS whose conformance window has the given offsets.
    fn sps_with_crop(left: u64, right: u64) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.put(16, 0x4201); // NAL header: SPS
        w.put(4, 0); // sps_video_parameter_set_id
        w.put(3, 0); // sps_max_sub_layers_minus1
        w.put(1, 1); // sps_temporal_id_nesting_flag
        w.put(8, 0x01); // profile space/tier/idc: Main
        w.put(32, 0x6000_0000);
        w.put(48, 0x9000_0000_0000);
        w.put(8, 60); // general_level_idc
        w.ue(0); // sps_seq_parameter_set_id
        w.ue(1); // chroma_format_idc 4:2:0
        w.ue(320);
        w.ue(240);
        w.put(1, 1); // conformance_window_flag
        for v in [left, right, 0, 0] {
            w.ue(v);
        }
        w.ue(0); // bit_depth_luma_minus8
        w.ue(0); // bit_depth_chroma_minus8
        w.put(1, 1); // rbsp stop bit
                     // Emulation prevention, as an encoder writes it.
        let mut nal = Vec::new();
        let mut zeros = 0;
        for b in w.bytes {
            if zeros >= 2 && b <= 3 {
                nal.push(3);
                zeros = 0;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            nal.push(b);
        }
        nal
    }

    #[test]
    fn conformance_window_crops_by_chroma_units() {
        let s = Sps::parse(&sps_with_crop(4, 6)).unwrap();
        assert_eq!((s.width, s.height), (300, 240));
    }

    /// Found by the codec_config fuzz target: offsets of 2^31 overflowed the
    /// 4:2:0 crop multiply (a panic in a debug build, a wrong size in release).
    #[test]
    fn huge_conformance_window_is_refused_not_overflowed() {
        assert_eq!(Sps::parse(&sps_with_crop(1 << 31, 0)), None);
        assert_eq!(Sps::parse(&sps_with_crop(u64::from(u32::MAX) - 1, 1)), None);
    }
}
