//! Program-specific information: section reassembly across packets, the PAT and
//! the PMT (ISO/IEC 13818-1 2.4.4).

/// Reassembles the sections carried on one PSI PID.
#[derive(Default)]
pub struct Sections {
    buf: Vec<u8>,
    active: bool,
}

/// Longest section a PAT/PMT may have (1021 bytes of section_length + 3).
const MAX_SECTION: usize = 1024;

impl Sections {
    /// Feeds one packet's payload; returns the sections it completed.
    pub fn push(&mut self, unit_start: bool, payload: &[u8]) -> Vec<Vec<u8>> {
        let mut done = Vec::new();
        let mut rest = payload;
        if unit_start {
            let Some((&pointer, after)) = rest.split_first() else {
                return done;
            };
            let pointer = usize::from(pointer);
            if pointer > after.len() {
                self.reset();
                return done;
            }
            if self.active {
                self.buf.extend_from_slice(&after[..pointer]);
                self.take_complete(&mut done);
            }
            self.reset();
            self.active = true;
            rest = &after[pointer..];
        } else if !self.active {
            return done;
        }
        self.buf.extend_from_slice(rest);
        // Several sections may follow each other in one packet; 0xff is stuffing.
        loop {
            if !self.take_complete(&mut done) {
                break;
            }
            let leftover = std::mem::take(&mut self.buf);
            if leftover.first().is_none_or(|&b| b == 0xff) {
                self.active = false;
                break;
            }
            self.buf = leftover;
        }
        if self.buf.len() > MAX_SECTION {
            self.reset();
        }
        done
    }

    /// Moves a complete section at the front of the buffer to `done`.
    fn take_complete(&mut self, done: &mut Vec<Vec<u8>>) -> bool {
        if self.buf.len() < 3 {
            return false;
        }
        let len = 3 + ((usize::from(self.buf[1] & 0x0f) << 8) | usize::from(self.buf[2]));
        if self.buf.len() < len {
            return false;
        }
        let rest = self.buf.split_off(len);
        done.push(std::mem::replace(&mut self.buf, rest));
        true
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.active = false;
    }
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, not reflected, no final xor): zero over a
/// whole section including its CRC.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Why a section was not used.
#[derive(Debug, PartialEq, Eq)]
pub enum SectionError {
    Crc,
    Short,
    Table(u8),
}

/// The long-form section body between the 8-byte header and the CRC, after checks.
fn body(section: &[u8], table_id: u8) -> Result<&[u8], SectionError> {
    if section.len() < 12 {
        return Err(SectionError::Short);
    }
    if section[0] != table_id {
        return Err(SectionError::Table(section[0]));
    }
    if crc32_mpeg2(section) != 0 {
        return Err(SectionError::Crc);
    }
    // current_next_indicator 0: a table announced for later; not ours yet.
    if section[5] & 1 == 0 {
        return Err(SectionError::Short);
    }
    Ok(&section[8..section.len() - 4])
}

/// The PMT PID of the first program in a PAT section.
pub fn parse_pat(section: &[u8]) -> Result<Option<u16>, SectionError> {
    let body = body(section, 0x00)?;
    Ok(body.chunks_exact(4).find_map(|e| {
        let program = u16::from_be_bytes([e[0], e[1]]);
        let pid = (u16::from(e[2] & 0x1f) << 8) | u16::from(e[3]);
        (program != 0).then_some(pid)
    }))
}

/// One elementary stream of a PMT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EsInfo {
    pub stream_type: u8,
    pub pid: u16,
    /// The registration descriptor's format identifier (`Opus`, `HEVC`, ...), if any.
    pub registration: Option<[u8; 4]>,
}

pub fn parse_pmt(section: &[u8]) -> Result<Vec<EsInfo>, SectionError> {
    let body = body(section, 0x02)?;
    if body.len() < 4 {
        return Err(SectionError::Short);
    }
    let info_len = (usize::from(body[2] & 0x0f) << 8) | usize::from(body[3]);
    let mut rest = body.get(4 + info_len..).ok_or(SectionError::Short)?;
    let mut out = Vec::new();
    while rest.len() >= 5 {
        let stream_type = rest[0];
        let pid = (u16::from(rest[1] & 0x1f) << 8) | u16::from(rest[2]);
        let es_len = (usize::from(rest[3] & 0x0f) << 8) | usize::from(rest[4]);
        let descriptors = rest.get(5..5 + es_len).ok_or(SectionError::Short)?;
        out.push(EsInfo {
            stream_type,
            pid,
            registration: registration(descriptors),
        });
        rest = &rest[5 + es_len..];
    }
    Ok(out)
}

fn registration(mut d: &[u8]) -> Option<[u8; 4]> {
    while d.len() >= 2 {
        let (tag, len) = (d[0], usize::from(d[1]));
        let body = d.get(2..2 + len)?;
        if tag == 0x05 && len >= 4 {
            return Some([body[0], body[1], body[2], body[3]]);
        }
        d = &d[2 + len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PAT and PMT sections as ffmpeg 5.1's mpegts muxer writes them (program 1,
    /// PMT on PID 0x1000; H.264 on 0x100, ADTS AAC on 0x101).
    pub const FFMPEG_PAT: &[u8] = &[
        0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1, 0x04,
        0xb2,
    ];
    pub const FFMPEG_PMT: &[u8] = &[
        0x02, 0xb0, 0x17, 0x00, 0x01, 0xc1, 0x00, 0x00, 0xe1, 0x00, 0xf0, 0x00, 0x1b, 0xe1, 0x00,
        0xf0, 0x00, 0x0f, 0xe1, 0x01, 0xf0, 0x00, 0x2f, 0x44, 0xb9, 0x9b,
    ];

    #[test]
    fn crc_of_a_whole_section_is_zero() {
        assert_eq!(crc32_mpeg2(FFMPEG_PAT), 0);
        assert_eq!(crc32_mpeg2(FFMPEG_PMT), 0);
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
    }

    #[test]
    fn pat_and_pmt() {
        assert_eq!(parse_pat(FFMPEG_PAT), Ok(Some(0x1000)));
        let es = parse_pmt(FFMPEG_PMT).unwrap();
        assert_eq!(
            es.iter()
                .map(|e| (e.stream_type, e.pid))
                .collect::<Vec<_>>(),
            vec![(0x1b, 0x100), (0x0f, 0x101)]
        );
        let mut bad = FFMPEG_PMT.to_vec();
        bad[14] ^= 1;
        assert_eq!(parse_pmt(&bad), Err(SectionError::Crc));
        assert_eq!(parse_pat(FFMPEG_PMT), Err(SectionError::Table(2)));
    }

    #[test]
    fn sections_across_packets_and_pointer_fields() {
        let mut s = Sections::default();
        let mut first = vec![0u8];
        first.extend_from_slice(&FFMPEG_PMT[..10]);
        assert!(s.push(true, &first).is_empty());
        let mut second = FFMPEG_PMT[10..].to_vec();
        second.extend_from_slice(&[0xff; 20]);
        assert_eq!(s.push(false, &second), vec![FFMPEG_PMT.to_vec()]);
        // A continuation with no section started is ignored.
        assert!(Sections::default().push(false, FFMPEG_PAT).is_empty());
        // Two sections in one payload.
        let mut both = vec![0u8];
        both.extend_from_slice(FFMPEG_PAT);
        both.extend_from_slice(FFMPEG_PAT);
        assert_eq!(s.push(true, &both).len(), 2);
        // A pointer field past the payload.
        assert!(s.push(true, &[200, 1, 2]).is_empty());
    }
}
