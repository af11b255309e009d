//! PES packet headers (ISO/IEC 13818-1 2.4.3.6): where the payload starts, how
//! long the packet is, and its 33-bit timestamps.

#[derive(Debug, PartialEq, Eq)]
pub struct PesHeader {
    /// Bytes from the start of the PES packet to its payload.
    pub header_len: usize,
    /// Payload bytes announced by PES_packet_length (`None`: unbounded, as video
    /// usually is in TS; the packet ends where the next one starts).
    pub payload_len: Option<usize>,
    pub pts: Option<u64>,
    pub dts: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PesError {
    /// Fewer bytes than the header needs (the first TS packet holds every header
    /// a muxer writes, so this is damage).
    Truncated,
    NoStartCode,
    BadTimestamp,
}

/// Parses the header at the start of a PES packet.
pub fn parse(d: &[u8]) -> Result<PesHeader, PesError> {
    if d.len() < 6 {
        return Err(PesError::Truncated);
    }
    if d[..3] != [0, 0, 1] {
        return Err(PesError::NoStartCode);
    }
    let stream_id = d[3];
    let packet_len = usize::from(u16::from_be_bytes([d[4], d[5]]));
    // Streams without the optional header (padding, private_stream_2, ECM/EMM, ...).
    let plain = matches!(
        stream_id,
        0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xf2 | 0xf8 | 0xff
    );
    if plain {
        return Ok(PesHeader {
            header_len: 6,
            payload_len: (packet_len > 0).then_some(packet_len),
            pts: None,
            dts: None,
        });
    }
    if d.len() < 9 {
        return Err(PesError::Truncated);
    }
    let flags = d[7] >> 6;
    let header_len = 9 + usize::from(d[8]);
    if d.len() < header_len {
        return Err(PesError::Truncated);
    }
    let opt = &d[9..header_len];
    let (pts, dts) = match flags {
        0b10 => (Some(timestamp(opt.get(..5))?), None),
        0b11 => (
            Some(timestamp(opt.get(..5))?),
            Some(timestamp(opt.get(5..10))?),
        ),
        _ => (None, None),
    };
    let payload_len = match packet_len {
        0 => None,
        n => Some(n.checked_sub(header_len - 6).ok_or(PesError::Truncated)?),
    };
    Ok(PesHeader {
        header_len,
        payload_len,
        pts,
        dts,
    })
}

fn timestamp(b: Option<&[u8]>) -> Result<u64, PesError> {
    let b = b.ok_or(PesError::BadTimestamp)?;
    // Marker bits sit after each of the three parts.
    if b[0] & 1 != 1 || b[2] & 1 != 1 || b[4] & 1 != 1 {
        return Err(PesError::BadTimestamp);
    }
    Ok((u64::from(b[0] >> 1 & 0x07) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes a PES timestamp with the given 4-bit prefix, as muxers do.
    pub fn ts(prefix: u8, t: u64) -> [u8; 5] {
        [
            (prefix << 4) | ((t >> 29) as u8 & 0x0e) | 1,
            (t >> 22) as u8,
            ((t >> 14) as u8 & 0xfe) | 1,
            (t >> 7) as u8,
            ((t << 1) as u8) | 1,
        ]
    }

    #[test]
    fn video_header_with_pts_and_dts() {
        let mut d = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10];
        d.extend_from_slice(&ts(3, 0x1_2345_6789));
        d.extend_from_slice(&ts(1, 126_000));
        d.extend_from_slice(&[0, 0, 0, 1, 9]);
        let h = parse(&d).unwrap();
        assert_eq!(h.header_len, 19);
        assert_eq!(h.payload_len, None);
        assert_eq!(h.pts, Some(0x1_2345_6789));
        assert_eq!(h.dts, Some(126_000));
    }

    #[test]
    fn audio_header_with_length() {
        let mut d = vec![0, 0, 1, 0xc0, 0x01, 0x7b, 0x80, 0x80, 5];
        d.extend_from_slice(&ts(2, 0x1_ffff_ffff));
        let h = parse(&d).unwrap();
        assert_eq!(h.pts, Some(0x1_ffff_ffff));
        assert_eq!(h.payload_len, Some(0x17b - 8));
    }

    #[test]
    fn damage() {
        assert_eq!(parse(&[0, 0, 1, 0xe0]), Err(PesError::Truncated));
        assert_eq!(
            parse(&[0, 1, 1, 0xe0, 0, 0, 0x80, 0, 0]),
            Err(PesError::NoStartCode)
        );
        let mut d = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5];
        d.extend_from_slice(&[0x20, 0, 0, 0, 0]); // marker bits missing
        assert_eq!(parse(&d), Err(PesError::BadTimestamp));
        // header_data_length says 5 but the flags want PTS and DTS (10 bytes).
        let mut d = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 5];
        d.extend_from_slice(&ts(3, 1));
        assert_eq!(parse(&d), Err(PesError::BadTimestamp));
        // PES_packet_length shorter than its own header.
        let mut d = vec![0, 0, 1, 0xc0, 0, 4, 0x80, 0x80, 5];
        d.extend_from_slice(&ts(2, 1));
        assert_eq!(parse(&d), Err(PesError::Truncated));
    }
}
