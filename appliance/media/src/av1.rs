//! AV1 bitstream pieces a recorder needs: OBUs in the low-overhead format
//! (AV1 spec 5.2, what MP4 samples and WebRTC depacketizers carry), the
//! sequence header (5.5), and the `av1C` record (AV1-ISOBMFF 2.3) built from
//! it for sources that send no configuration out of band (WebRTC).
//! Hand-written: no maintained crate parses sequence headers without pulling
//! in a decoder, and these are a few dozen bits.

use bytes::Bytes;

use crate::picture_size::Bits;

/// OBU types used here (AV1 spec 6.2.2).
pub const OBU_SEQUENCE_HEADER: u8 = 1;
pub const OBU_TEMPORAL_DELIMITER: u8 = 2;

/// One OBU of a low-overhead bitstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Obu<'a> {
    pub obu_type: u8,
    /// The whole OBU: header, size field, payload.
    pub bytes: &'a [u8],
    pub payload: &'a [u8],
}

/// The OBUs of `data`, in order; stops at the first one that does not parse
/// (an OBU without a size field is taken to run to the end).
pub fn obus(mut data: &[u8]) -> impl Iterator<Item = Obu<'_>> {
    std::iter::from_fn(move || {
        let &header = data.first()?;
        let extension = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        let mut pos = 1 + usize::from(extension);
        let size = if has_size {
            let (v, n) = leb128(data.get(pos..)?)?;
            pos += n;
            v
        } else {
            data.len().checked_sub(pos)?
        };
        let end = pos.checked_add(size)?;
        let obu = Obu {
            obu_type: (header >> 3) & 0x0f,
            bytes: data.get(..end)?,
            payload: data.get(pos..end)?,
        };
        data = &data[end..];
        Some(obu)
    })
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

/// What a sequence header says that a container needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceHeader {
    pub profile: u8,
    /// seq_level_idx and seq_tier of operating point 0.
    pub level: u8,
    pub tier: u8,
    pub max_width: u32,
    pub max_height: u32,
    pub high_bitdepth: bool,
    pub twelve_bit: bool,
    pub monochrome: bool,
    pub subsampling_x: bool,
    pub subsampling_y: bool,
    pub chroma_sample_position: u8,
}

/// Parses a sequence header OBU's payload (AV1 spec 5.5.1, up to and with
/// color_config); `None` when it is cut short.
pub fn sequence_header(p: &[u8]) -> Option<SequenceHeader> {
    let mut b = Bits { data: p, pos: 0 };
    let profile = b.read(3)? as u8;
    b.read(1)?; // still_picture
    let reduced = b.flag()?;
    let (level, tier);
    if reduced {
        level = b.read(5)? as u8;
        tier = 0;
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
        let mut first = None;
        for _ in 0..ops {
            b.read(12)?; // operating_point_idc
            let l = b.read(5)? as u8;
            let t = if l > 7 { b.read(1)? as u8 } else { 0 };
            first.get_or_insert((l, t));
            if decoder_model_info && b.flag()? {
                b.read(buffer_delay_len)?; // decoder_buffer_delay
                b.read(buffer_delay_len)?; // encoder_buffer_delay
                b.read(1)?; // low_delay_mode_flag
            }
            if initial_display_delay && b.flag()? {
                b.read(4)?;
            }
        }
        (level, tier) = first?;
    }
    let wbits = b.read(4)? + 1;
    let hbits = b.read(4)? + 1;
    let max_width = b.read(wbits)? + 1;
    let max_height = b.read(hbits)? + 1;
    if !reduced && b.flag()? {
        // frame_id_numbers_present: delta and additional frame id lengths
        b.read(7)?;
    }
    b.read(3)?; // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    if !reduced {
        // interintra, masked compound, warped motion, dual filter
        b.read(4)?;
        let order_hint = b.flag()?;
        if order_hint {
            b.read(2)?; // enable_jnt_comp, enable_ref_frame_mvs
        }
        let force_screen_content_tools = if b.flag()? { 2 } else { b.read(1)? };
        if force_screen_content_tools > 0 && !b.flag()? {
            b.read(1)?; // seq_force_integer_mv
        }
        if order_hint {
            b.read(3)?; // order_hint_bits_minus_1
        }
    }
    b.read(3)?; // enable_superres, enable_cdef, enable_restoration
                // color_config (5.5.2)
    let high_bitdepth = b.flag()?;
    let twelve_bit = profile == 2 && high_bitdepth && b.flag()?;
    let monochrome = profile != 1 && b.flag()?;
    let (mut primaries, mut transfer, mut matrix) = (2, 2, 2);
    if b.flag()? {
        primaries = b.read(8)?;
        transfer = b.read(8)?;
        matrix = b.read(8)?;
    }
    let (subsampling_x, subsampling_y, mut chroma_sample_position) = if monochrome {
        b.read(1)?; // color_range
        (true, true, 0)
    } else if primaries == 1 && transfer == 13 && matrix == 0 {
        (false, false, 0)
    } else {
        b.read(1)?; // color_range
        let (x, y) = match profile {
            0 => (true, true),
            1 => (false, false),
            _ if twelve_bit => {
                let x = b.flag()?;
                (x, x && b.flag()?)
            }
            _ => (true, false),
        };
        (x, y, 0)
    };
    if subsampling_x && subsampling_y && !monochrome {
        chroma_sample_position = b.read(2)? as u8;
    }
    Some(SequenceHeader {
        profile,
        level,
        tier,
        max_width,
        max_height,
        high_bitdepth,
        twelve_bit,
        monochrome,
        subsampling_x,
        subsampling_y,
        chroma_sample_position,
    })
}

/// The `av1C` for a temporal unit that carries a sequence header OBU: the
/// four fixed bytes from the header's fields, then the OBU itself as
/// configOBUs. `None` when the unit has none (or it does not parse).
pub fn config_record(temporal_unit: &[u8]) -> Option<(Bytes, SequenceHeader)> {
    let obu = obus(temporal_unit).find(|o| o.obu_type == OBU_SEQUENCE_HEADER)?;
    let h = sequence_header(obu.payload)?;
    let mut c = Vec::with_capacity(4 + obu.bytes.len() + 8);
    c.push(0x81); // marker, version 1
    c.push(h.profile << 5 | h.level);
    c.push(
        h.tier << 7
            | u8::from(h.high_bitdepth) << 6
            | u8::from(h.twelve_bit) << 5
            | u8::from(h.monochrome) << 4
            | u8::from(h.subsampling_x) << 3
            | u8::from(h.subsampling_y) << 2
            | h.chroma_sample_position,
    );
    c.push(0); // no initial_presentation_delay
    if obu.bytes[0] & 0x02 != 0 {
        c.extend_from_slice(obu.bytes);
    } else {
        // configOBUs are in the low-overhead format: give it a size field.
        let ext = usize::from(obu.bytes[0] & 0x04 != 0);
        c.push(obu.bytes[0] | 0x02);
        c.extend_from_slice(&obu.bytes[1..1 + ext]);
        let mut n = obu.payload.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                c.push(byte);
                break;
            }
            c.push(byte | 0x80);
        }
        c.extend_from_slice(obu.payload);
    }
    Some((Bytes::from(c), h))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The av1C ffmpeg 9 / libsvtav1 sent over enhanced RTMP for 320x240: its
    /// four fixed bytes, then the sequence header OBU.
    const FFMPEG9_AV1C: [u8; 17] = [
        0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0b, 0x02, 0x00, 0x00, 0x05, 0x21, 0xe7, 0xfd, 0xe0, 0x17,
        0xc0, 0x02,
    ];

    #[test]
    fn rebuilds_ffmpegs_own_av1c_from_its_sequence_header() {
        // A temporal unit as a WebRTC depacketizer hands it over: a temporal
        // delimiter, the sequence header, then a frame OBU.
        let mut unit = vec![0x12, 0x00];
        unit.extend_from_slice(&FFMPEG9_AV1C[4..]);
        unit.extend_from_slice(&[0x32, 0x03, 0xaa, 0xbb, 0xcc]);
        let types: Vec<u8> = obus(&unit).map(|o| o.obu_type).collect();
        assert_eq!(types, vec![OBU_TEMPORAL_DELIMITER, OBU_SEQUENCE_HEADER, 6]);
        let (c, h) = config_record(&unit).unwrap();
        assert_eq!(&c[..], &FFMPEG9_AV1C[..]);
        assert_eq!((h.max_width, h.max_height), (320, 240));
        assert_eq!((h.profile, h.level, h.tier), (0, 0, 0));
        assert!(h.subsampling_x && h.subsampling_y && !h.high_bitdepth);
    }

    #[test]
    fn a_sequence_header_without_size_field_gets_one() {
        let mut unit = vec![0x08];
        unit.extend_from_slice(&FFMPEG9_AV1C[6..]);
        let (c, _) = config_record(&unit).unwrap();
        assert_eq!(&c[..], &FFMPEG9_AV1C[..]);
    }

    #[test]
    fn cut_or_missing_headers_are_none_not_a_panic() {
        let whole = &FFMPEG9_AV1C[4..];
        for n in 0..whole.len() {
            assert_eq!(config_record(&whole[..n]), None, "{n}");
        }
        assert_eq!(config_record(&[0x32, 0x01, 0x00]), None);
        assert_eq!(config_record(&[]), None);
        // A size field that runs past the end, and one that never ends.
        assert_eq!(obus(&[0x0a, 0x7f, 0x00]).count(), 0);
        assert_eq!(
            obus(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).count(),
            0
        );
    }
}
