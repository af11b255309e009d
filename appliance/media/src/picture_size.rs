//! Picture size from the bitstream, for codecs whose MP4 configuration record does
//! not carry it: VP9 (a key frame's uncompressed header), AV1 (the sequence
//! header OBU in `av1C`) and H.265 (the SPS in `hvcC`). The size goes into the MP4 visual sample entry and the
//! API; decoders do not need it.
//!
//! Hand-written: each is a short run of fixed-width fields.

/// MSB-first bit reader over a byte slice; `None` past the end.
pub(crate) struct Bits<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) pos: usize,
}

impl Bits<'_> {
    pub(crate) fn read(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }

    pub(crate) fn flag(&mut self) -> Option<bool> {
        self.read(1).map(|b| b == 1)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        self.pos += n;
        (self.pos <= self.data.len() * 8).then_some(())
    }

    /// Exp-Golomb ue(v), up to 31 leading zeros.
    pub(crate) fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.read(zeros)?)
    }
}

/// Width and height from the first SPS in an `hvcC` (ISO/IEC 14496-15 8.3.3.1;
/// H.265 7.3.2.2), after the conformance window crop.
pub fn hevc_config(hvcc: &[u8]) -> Option<(u32, u32)> {
    let sps = crate::hevc::first_nal(hvcc, crate::hevc::NAL_SPS)?;
    crate::hevc::Sps::parse(sps).map(|s| (s.width, s.height))
}

/// Width and height of a VP8 key frame (RFC 6386 9.1: a 3-byte frame tag whose
/// low bit is 0 on key frames, the start code 9d 01 2a, then 14-bit
/// little-endian width and height), `None` for an inter frame or a truncated
/// header.
pub fn vp8_key_frame(frame: &[u8]) -> Option<(u32, u32)> {
    let h = frame.get(..10)?;
    if h[0] & 1 != 0 || h[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let dim = |lo: u8, hi: u8| u32::from(u16::from_le_bytes([lo, hi]) & 0x3fff);
    Some((dim(h[6], h[7]), dim(h[8], h[9])))
}

/// Width and height of a VP9 key frame (VP9 bitstream spec 6.2), `None` for an
/// inter frame or a truncated header.
pub fn vp9_key_frame(frame: &[u8]) -> Option<(u32, u32)> {
    let mut b = Bits {
        data: frame,
        pos: 0,
    };
    if b.read(2)? != 2 {
        return None; // frame_marker
    }
    let low = b.read(1)?;
    let high = b.read(1)?;
    let profile = (high << 1) | low;
    if profile == 3 {
        b.read(1)?;
    }
    if b.flag()? {
        return None; // show_existing_frame
    }
    if b.read(1)? != 0 {
        return None; // not a key frame
    }
    b.read(2)?; // show_frame, error_resilient_mode
    if b.read(24)? != 0x49_83_42 {
        return None;
    }
    if profile >= 2 {
        b.read(1)?; // ten_or_twelve_bit
    }
    let color_space = b.read(3)?;
    if color_space != 7 {
        b.read(1)?; // color_range
        if profile == 1 || profile == 3 {
            b.read(3)?; // subsampling_x, subsampling_y, reserved_zero
        }
    } else if profile == 1 || profile == 3 {
        b.read(1)?;
    }
    let w = b.read(16)? + 1;
    let h = b.read(16)? + 1;
    Some((w, h))
}

/// Maximum frame size from an AV1CodecConfigurationRecord's sequence header OBU
/// (AV1 spec 5.5), `None` without one.
pub fn av1_config(av1c: &[u8]) -> Option<(u32, u32)> {
    let obu =
        crate::av1::obus(av1c.get(4..)?).find(|o| o.obu_type == crate::av1::OBU_SEQUENCE_HEADER)?;
    let h = crate::av1::sequence_header(obu.payload)?;
    Some((h.max_width, h.max_height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp9_key_frame_from_ffmpeg9() {
        // The first bytes of the key frame ffmpeg 9 / libvpx-vp9 sent for 320x240.
        let f = [
            0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xf0, 0x0e, 0xf6, 0x06, 0x38,
        ];
        assert_eq!(vp9_key_frame(&f), Some((320, 240)));
        // An inter frame (frame_type 1) and a truncated header.
        assert_eq!(vp9_key_frame(&[0x86, 0x00, 0x40]), None);
        assert_eq!(vp9_key_frame(&f[..6]), None);
        assert_eq!(vp9_key_frame(&[]), None);
    }

    #[test]
    fn hevc_config_from_ffmpeg9() {
        // hvcC ffmpeg 9 / libx265 sent for 320x240 (header and VPS/SPS/PPS arrays;
        // the SEI array after them is left out).
        let c = hex(
            "0101600000009000000000003cf000fcfdf8f800000f0320000100184001\
            0c01ffff01600000030090000003000003003c9590092100010\
            02a42010101600000030090000003000003003ca00a080f16595924932bc05a02000003\
            000200000300321022000100074401c172b46240",
        );
        assert_eq!(hevc_config(&c), Some((320, 240)));
        for n in 0..c.len() {
            assert!(hevc_config(&c[..n]).is_none_or(|s| s == (320, 240)), "{n}");
        }
        assert_eq!(hevc_config(&[]), None);
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn av1_config_from_ffmpeg9() {
        // av1C ffmpeg 9 / libsvtav1 sent for 320x240 (its sequence start, whole).
        let c = [
            0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0b, 0x02, 0x00, 0x00, 0x05, 0x21, 0xe7, 0xfd, 0xe0,
            0x17, 0xc0, 0x02,
        ];
        assert_eq!(av1_config(&c), Some((320, 240)));
        // Cut anywhere: no size, no panic.
        for n in 0..c.len() {
            assert_eq!(av1_config(&c[..n]), None, "{n}");
        }
        // Without a sequence header OBU.
        assert_eq!(av1_config(&c[..4]), None);
    }

    #[test]
    fn vp8_key_frame_size() {
        // The first 10 bytes of a 640x480 key frame, laid out as RFC 6386 9.1 says.
        let key = [0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01];
        assert_eq!(vp8_key_frame(&key), Some((640, 480)));
        let mut inter = key;
        inter[0] |= 1;
        assert_eq!(vp8_key_frame(&inter), None);
        assert_eq!(vp8_key_frame(&key[..9]), None);
    }
}
