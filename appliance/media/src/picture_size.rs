//! Picture size from the bitstream, for codecs whose MP4 configuration record does
//! not carry it: VP9 (a key frame's uncompressed header) and AV1 (the sequence
//! header OBU in `av1C`). The size goes into the MP4 visual sample entry and the
//! API; decoders do not need it.
//!
//! Hand-written: each is a short run of fixed-width fields.

/// MSB-first bit reader over a byte slice; `None` past the end.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }

    fn flag(&mut self) -> Option<bool> {
        self.read(1).map(|b| b == 1)
    }
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
    let mut obus = av1c.get(4..)?;
    while let Some(&header) = obus.first() {
        let obu_type = (header >> 3) & 0x0f;
        let extension = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        let mut pos = 1 + usize::from(extension);
        let size = if has_size {
            let (v, n) = leb128(obus.get(pos..)?)?;
            pos += n;
            v
        } else {
            obus.len() - pos
        };
        let payload = obus.get(pos..pos.checked_add(size)?)?;
        if obu_type == 1 {
            return av1_sequence_header(payload);
        }
        obus = &obus[pos + size..];
    }
    None
}

fn leb128(d: &[u8]) -> Option<(usize, usize)> {
    let mut v = 0usize;
    for (i, &b) in d.iter().take(8).enumerate() {
        v |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn av1_sequence_header(p: &[u8]) -> Option<(u32, u32)> {
    let mut b = Bits { data: p, pos: 0 };
    b.read(3)?; // seq_profile
    b.read(1)?; // still_picture
    let reduced = b.flag()?;
    if reduced {
        b.read(5)?; // seq_level_idx[0]
    } else {
        let timing_info = b.flag()?;
        let mut decoder_model_info = false;
        let mut buffer_delay_len = 0;
        if timing_info {
            b.read(32)?; // num_units_in_display_tick
            b.read(32)?; // time_scale
            if b.flag()? {
                // equal_picture_interval: num_ticks_per_picture_minus_1 (uvlc)
                let mut zeros = 0;
                while !b.flag()? {
                    zeros += 1;
                    if zeros >= 32 {
                        return None;
                    }
                }
                b.read(zeros)?;
            }
            decoder_model_info = b.flag()?;
            if decoder_model_info {
                buffer_delay_len = b.read(5)? + 1;
                b.read(32)?; // num_units_in_decoding_tick
                b.read(5)?; // buffer_removal_time_length_minus_1
                b.read(5)?; // frame_presentation_time_length_minus_1
            }
        }
        let initial_display_delay = b.flag()?;
        let ops = b.read(5)? + 1;
        for _ in 0..ops {
            b.read(12)?; // operating_point_idc
            if b.read(5)? > 7 {
                b.read(1)?; // seq_tier
            }
            if decoder_model_info && b.flag()? {
                b.read(buffer_delay_len)?; // decoder_buffer_delay
                b.read(buffer_delay_len)?; // encoder_buffer_delay
                b.read(1)?; // low_delay_mode_flag
            }
            if initial_display_delay && b.flag()? {
                b.read(4)?;
            }
        }
    }
    let wbits = b.read(4)? + 1;
    let hbits = b.read(4)? + 1;
    let w = b.read(wbits)? + 1;
    let h = b.read(hbits)? + 1;
    Some((w, h))
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
}
