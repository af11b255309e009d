//! RFC 6381 codec strings from the MP4 configuration records of H.265, AV1 and
//! VP9 (for the API and file-name tags; containers store the records verbatim).
//!
//! Hand-written: each is a few fixed-position fields.

/// `hvc1.<profile>.<compat>.<tier><level>[.<constraints>]` (ISO/IEC 14496-15 E.3)
/// from an HEVCDecoderConfigurationRecord; `None` if it is too short.
pub fn hevc(hvcc: &[u8]) -> Option<String> {
    let r = hvcc.get(..13)?;
    let space = ["", "A", "B", "C"][usize::from(r[1] >> 6)];
    let tier = if r[1] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = r[1] & 0x1f;
    let compat = u32::from_be_bytes([r[2], r[3], r[4], r[5]]).reverse_bits();
    let mut s = format!("hvc1.{space}{profile}.{compat:X}.{tier}{}", r[12]);
    let constraints = &r[6..12];
    let used = constraints
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1);
    for b in &constraints[..used] {
        s.push_str(&format!(".{b:X}"));
    }
    Some(s)
}

/// `av01.<profile>.<level><tier>.<bitdepth>` (AV1 ISOBMFF binding, Codecs
/// Parameter String) from an AV1CodecConfigurationRecord.
pub fn av1(av1c: &[u8]) -> Option<String> {
    let r = av1c.get(..3)?;
    let profile = r[1] >> 5;
    let level = r[1] & 0x1f;
    let tier = if r[2] & 0x80 != 0 { 'H' } else { 'M' };
    let depth = match (r[2] & 0x40 != 0, r[2] & 0x20 != 0) {
        (true, true) => 12,
        (true, false) => 10,
        _ => 8,
    };
    Some(format!("av01.{profile}.{level:02}{tier}.{depth:02}"))
}

/// `vp09.<profile>.<level>.<bitdepth>` from a `vpcC` payload (version and flags
/// first, as in the box).
pub fn vp9(vpcc: &[u8]) -> Option<String> {
    let r = vpcc.get(..7)?;
    Some(format!("vp09.{:02}.{:02}.{:02}", r[4], r[5], r[6] >> 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_ffmpeg9_enhanced_rtmp_sequence_starts() {
        // Sequence-start payloads ffmpeg 9 sends over enhanced RTMP (320x240, see
        // the rtmp crate's fixtures).
        let vpcc = [
            0x01, 0, 0, 0, 0x00, 0x14, 0x82, 0x02, 0x02, 0x02, 0x00, 0x00,
        ];
        assert_eq!(vp9(&vpcc).as_deref(), Some("vp09.00.20.08"));
        let av1c = [0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0b];
        assert_eq!(av1(&av1c).as_deref(), Some("av01.0.00M.08"));
        // x265 Main, level 2 (60 = 2.0 * 30), progressive + frame-only constraints.
        let hvcc = [
            0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3c,
        ];
        assert_eq!(hevc(&hvcc).as_deref(), Some("hvc1.1.6.L60.90"));
        assert_eq!(hevc(&hvcc[..12]), None);
        assert_eq!(av1(&av1c[..2]), None);
        assert_eq!(vp9(&vpcc[..6]), None);
    }
}
