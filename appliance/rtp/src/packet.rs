//! RTP fixed header (RFC 3550 5.1) as a view over the received datagram.
//!
//! Hand-written: the `rtp` crate's `Packet::unmarshal` allocates a CSRC vector and
//! an extension list per packet; a recorder needs only the fixed fields and the
//! payload, which stays a zero-copy slice of the datagram.

use bytes::Bytes;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("RTP packet of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("RTP version {0}, expected 2")]
    Version(u8),
    #[error("RTP padding of {pad} bytes in a {len}-byte packet")]
    Padding { pad: usize, len: usize },
}

/// One RTP packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpPacket {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// After the header, CSRCs and extension, without padding.
    pub payload: Bytes,
}

impl RtpPacket {
    pub fn parse(data: Bytes) -> Result<RtpPacket, PacketError> {
        let len = data.len();
        if len < 12 {
            return Err(PacketError::Short(len));
        }
        let start = header_len(&data)?;
        let b0 = data[0];
        let mut end = len;
        if b0 & 0x20 != 0 {
            let pad = usize::from(data[len - 1]);
            if pad == 0 || pad > len {
                return Err(PacketError::Padding { pad, len });
            }
            end = len - pad;
        }
        if start > end {
            return Err(PacketError::Short(len));
        }
        Ok(RtpPacket {
            marker: data[1] & 0x80 != 0,
            payload_type: data[1] & 0x7f,
            sequence: u16::from_be_bytes([data[2], data[3]]),
            timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            payload: data.slice(start..end),
        })
    }
}

/// Length of the fixed header, CSRCs and header extension, checked against the
/// datagram (the payload, possibly encrypted, follows).
pub fn header_len(data: &[u8]) -> Result<usize, PacketError> {
    let len = data.len();
    let b0 = *data.first().ok_or(PacketError::Short(len))?;
    if len < 12 {
        return Err(PacketError::Short(len));
    }
    if b0 >> 6 != 2 {
        return Err(PacketError::Version(b0 >> 6));
    }
    let mut start = 12 + 4 * usize::from(b0 & 0x0f);
    if b0 & 0x10 != 0 {
        let ext = data.get(start..start + 4).ok_or(PacketError::Short(len))?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    if start > len {
        return Err(PacketError::Short(len));
    }
    Ok(start)
}

/// RTCP and RTP multiplexed on one port (RFC 5761 4): RTCP packet types 192–223
/// fall where RTP payload types 64–95 would, which no dynamic mapping uses.
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 2 && (192..=223).contains(&datagram[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet as ffmpeg's RTP muxer sends H.264 (PT 96, marker set).
    const FFMPEG_H264: [u8; 16] = [
        0x80, 0xe0, 0x12, 0x34, 0x00, 0x01, 0x5f, 0x90, 0xde, 0xad, 0xbe, 0xef, 0x65, 0x88, 0x80,
        0x40,
    ];

    #[test]
    fn parses_the_fixed_header() {
        let p = RtpPacket::parse(Bytes::from_static(&FFMPEG_H264)).unwrap();
        assert!(p.marker);
        assert_eq!(p.payload_type, 96);
        assert_eq!(p.sequence, 0x1234);
        assert_eq!(p.timestamp, 90_000);
        assert_eq!(p.ssrc, 0xdeadbeef);
        assert_eq!(&p.payload[..], &[0x65, 0x88, 0x80, 0x40]);
    }

    #[test]
    fn skips_csrcs_and_extension_and_strips_padding() {
        // CC=1, X=1, P=1: CSRC, one-word extension (Chrome's abs-send-time style), 2 bytes padding.
        let mut p = vec![0xb1, 0x6f, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        p.extend_from_slice(&[9, 9, 9, 9]); // CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x22, 1, 2, 3]); // extension
        p.extend_from_slice(&[0xaa, 0xbb, 0, 2]); // payload + padding
        let r = RtpPacket::parse(Bytes::from(p)).unwrap();
        assert_eq!(r.payload_type, 111);
        assert_eq!(&r.payload[..], &[0xaa, 0xbb]);
    }

    #[test]
    fn rejects_what_does_not_fit() {
        assert_eq!(
            RtpPacket::parse(Bytes::from_static(&[0x80; 11])),
            Err(PacketError::Short(11))
        );
        assert_eq!(
            RtpPacket::parse(Bytes::from_static(&[0x40; 12])),
            Err(PacketError::Version(1))
        );
        // CSRC count 15 in a 12-byte packet.
        let mut p = [0u8; 12];
        p[0] = 0x8f;
        assert!(RtpPacket::parse(Bytes::copy_from_slice(&p)).is_err());
        // Padding longer than the packet.
        p[0] = 0xa0;
        p[11] = 200;
        assert!(RtpPacket::parse(Bytes::copy_from_slice(&p)).is_err());
    }

    #[test]
    fn tells_rtcp_from_rtp() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(!is_rtcp(&FFMPEG_H264));
    }
}
