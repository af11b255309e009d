//! The 188-byte transport packet header and adaptation field.

pub const PACKET_LEN: usize = 188;
pub const SYNC: u8 = 0x47;

/// What the demuxer needs from one packet.
#[derive(Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub pid: u16,
    pub transport_error: bool,
    /// payload_unit_start_indicator: a PES packet or PSI section starts here.
    pub unit_start: bool,
    pub continuity: u8,
    pub has_payload: bool,
    /// The adaptation field's discontinuity_indicator: timestamps and continuity
    /// counters may jump here, legitimately.
    pub discontinuity: bool,
    pub payload: &'a [u8],
}

/// Parses a packet (`p` is exactly [`PACKET_LEN`] bytes starting with the sync byte);
/// `None` if its adaptation field overruns the packet.
pub fn parse(p: &[u8; PACKET_LEN]) -> Option<Packet<'_>> {
    let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
    let afc = (p[3] >> 4) & 0b11;
    let has_adaptation = afc & 0b10 != 0;
    let has_payload = afc & 0b01 != 0;
    let mut start = 4;
    let mut discontinuity = false;
    if has_adaptation {
        let len = usize::from(p[4]);
        if 5 + len > PACKET_LEN {
            return None;
        }
        if len > 0 {
            discontinuity = p[5] & 0x80 != 0;
        }
        start = 5 + len;
    }
    Some(Packet {
        pid,
        transport_error: p[1] & 0x80 != 0,
        unit_start: p[1] & 0x40 != 0,
        continuity: p[3] & 0x0f,
        has_payload,
        discontinuity,
        payload: if has_payload { &p[start..] } else { &[] },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(header: [u8; 4], rest: &[u8]) -> [u8; PACKET_LEN] {
        let mut p = [0xffu8; PACKET_LEN];
        p[..4].copy_from_slice(&header);
        p[4..4 + rest.len()].copy_from_slice(rest);
        p
    }

    #[test]
    fn payload_only() {
        let p = packet([0x47, 0x41, 0x00, 0x17], &[0, 0, 1, 0xe0]);
        let h = parse(&p).unwrap();
        assert_eq!(h.pid, 0x100);
        assert!(h.unit_start && h.has_payload && !h.transport_error && !h.discontinuity);
        assert_eq!(h.continuity, 7);
        assert_eq!(h.payload.len(), 184);
        assert_eq!(&h.payload[..4], &[0, 0, 1, 0xe0]);
    }

    #[test]
    fn adaptation_field_with_discontinuity() {
        let p = packet(
            [0x47, 0x01, 0x00, 0x30],
            &[7, 0x80 | 0x10, 0, 0, 0, 0, 0, 0],
        );
        let h = parse(&p).unwrap();
        assert!(h.discontinuity);
        assert_eq!(h.payload.len(), 184 - 8);
        // An adaptation field longer than the packet.
        let bad = packet([0x47, 0x01, 0x00, 0x30], &[184]);
        assert_eq!(parse(&bad), None);
        // Adaptation only, no payload.
        let p = packet([0x47, 0x01, 0x00, 0x20], &[183, 0]);
        let h = parse(&p).unwrap();
        assert!(!h.has_payload && h.payload.is_empty());
    }
}
