//! The RTCP a recorder reads and writes (RFC 3550 6, RFC 4585 6): it reads sender
//! reports (to put tracks on one clock) and BYE; it writes receiver reports, generic
//! NACKs and picture loss indications.
//!
//! Hand-written: the `rtcp` crate models every packet type as a boxed trait object
//! and pulls `webrtc-util`; the three packets a receiver sends and the one it reads
//! are a few fixed layouts.

use bytes::{BufMut, Bytes, BytesMut};

/// A sender report's clock pair: this RTP timestamp was sampled at this NTP time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderReport {
    pub ssrc: u32,
    /// NTP timestamp, 32.32 fixed point seconds since 1900.
    pub ntp: u64,
    pub rtp_timestamp: u32,
}

/// What a compound RTCP packet said that a receiver cares about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compound {
    pub sender_reports: Vec<SenderReport>,
    /// SSRCs that said goodbye.
    pub bye: Vec<u32>,
}

/// Reads a compound RTCP packet. Packets of unknown types are skipped; a length
/// that runs past the end stops the walk (what was read before is kept).
pub fn parse(mut data: &[u8]) -> Result<Compound, String> {
    let mut out = Compound::default();
    let mut offset = 0usize;
    while data.len() >= 4 {
        if data[0] >> 6 != 2 {
            return Err(format!("RTCP version {} at byte {offset}", data[0] >> 6));
        }
        let count = usize::from(data[0] & 0x1f);
        let pt = data[1];
        let len = 4 * (usize::from(u16::from_be_bytes([data[2], data[3]])) + 1);
        let Some(body) = data.get(4..len) else {
            return Err(format!(
                "RTCP packet of {len} bytes at byte {offset} runs past the {} left",
                data.len()
            ));
        };
        match pt {
            200 if body.len() >= 24 => out.sender_reports.push(SenderReport {
                ssrc: be32(body, 0),
                ntp: (u64::from(be32(body, 4)) << 32) | u64::from(be32(body, 8)),
                rtp_timestamp: be32(body, 12),
            }),
            203 => {
                for i in 0..count {
                    if body.len() >= 4 * i + 4 {
                        out.bye.push(be32(body, 4 * i));
                    }
                }
            }
            _ => {}
        }
        data = &data[len..];
        offset += len;
    }
    Ok(out)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One reception report block (RFC 3550 6.4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// Packets lost since the start (24-bit signed on the wire, clamped).
    pub cumulative_lost: i32,
    pub highest_sequence: u32,
    pub jitter: u32,
    /// Middle 32 bits of the last sender report's NTP time, 0 if none.
    pub last_sr: u32,
    /// Time since that report, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// A receiver report from `sender_ssrc` with one block.
pub fn receiver_report(out: &mut BytesMut, sender_ssrc: u32, block: &ReportBlock) {
    out.put_u8(0x81);
    out.put_u8(201);
    out.put_u16(7);
    out.put_u32(sender_ssrc);
    out.put_u32(block.ssrc);
    let lost = block.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
    out.put_u32((u32::from(block.fraction_lost) << 24) | lost);
    out.put_u32(block.highest_sequence);
    out.put_u32(block.jitter);
    out.put_u32(block.last_sr);
    out.put_u32(block.delay_since_last_sr);
}

/// A generic NACK (RFC 4585 6.2.1) for `lost` sequence numbers of `media_ssrc`,
/// packed into PID + bitmask pairs. `lost` must be ascending (mod 2^16).
pub fn nack(out: &mut BytesMut, sender_ssrc: u32, media_ssrc: u32, lost: &[u16]) {
    let mut pairs: Vec<(u16, u16)> = Vec::new();
    for &seq in lost {
        match pairs.last_mut() {
            Some((pid, mask)) if seq.wrapping_sub(*pid) >= 1 && seq.wrapping_sub(*pid) <= 16 => {
                *mask |= 1 << (seq.wrapping_sub(*pid) - 1);
            }
            _ => pairs.push((seq, 0)),
        }
    }
    if pairs.is_empty() {
        return;
    }
    out.put_u8(0x81);
    out.put_u8(205);
    out.put_u16(2 + pairs.len() as u16);
    out.put_u32(sender_ssrc);
    out.put_u32(media_ssrc);
    for (pid, mask) in pairs {
        out.put_u16(pid);
        out.put_u16(mask);
    }
}

/// A picture loss indication (RFC 4585 6.3.1): asks the sender for a key frame.
pub fn pli(out: &mut BytesMut, sender_ssrc: u32, media_ssrc: u32) {
    out.put_u8(0x81);
    out.put_u8(206);
    out.put_u16(2);
    out.put_u32(sender_ssrc);
    out.put_u32(media_ssrc);
}

/// Helper for tests and callers that build one packet at a time.
pub fn build(f: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    f(&mut b);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first RTCP packet ffmpeg's RTP muxer sends: an SR, then SDES with CNAME.
    fn ffmpeg_sr() -> Vec<u8> {
        let mut p = vec![0x80, 200, 0, 6];
        p.extend_from_slice(&0x1122_3344u32.to_be_bytes()); // SSRC
        p.extend_from_slice(&0xe9f0_0000u32.to_be_bytes()); // NTP seconds
        p.extend_from_slice(&0x8000_0000u32.to_be_bytes()); // NTP fraction
        p.extend_from_slice(&12345u32.to_be_bytes()); // RTP timestamp
        p.extend_from_slice(&[0; 8]); // packet and octet counts
        p.extend_from_slice(&[0x81, 202, 0, 3]);
        p.extend_from_slice(&0x1122_3344u32.to_be_bytes());
        p.extend_from_slice(&[1, 6, b'f', b'f', b'm', b'p', b'e', b'g']);
        p
    }

    #[test]
    fn reads_sender_report_and_skips_sdes() {
        let c = parse(&ffmpeg_sr()).unwrap();
        assert_eq!(
            c.sender_reports,
            vec![SenderReport {
                ssrc: 0x1122_3344,
                ntp: 0xe9f0_0000_8000_0000,
                rtp_timestamp: 12345
            }]
        );
        assert!(c.bye.is_empty());
    }

    #[test]
    fn reads_bye_and_rejects_overruns() {
        let c = parse(&[0x81, 203, 0, 1, 0, 0, 0, 7]).unwrap();
        assert_eq!(c.bye, vec![7]);
        assert!(parse(&[0x80, 200, 0, 6, 1, 2]).is_err());
        assert!(parse(&[0x40, 200, 0, 0]).is_err());
        // A truncated SR body is skipped, not read past.
        assert_eq!(
            parse(&[0x80, 200, 0, 1, 1, 2, 3, 4]).unwrap(),
            Compound::default()
        );
    }

    #[test]
    fn nack_packs_bitmasks() {
        let p = build(|b| nack(b, 1, 2, &[100, 101, 116, 117, 65535, 0]));
        // Header, SSRCs, then (100, bits 0 and 15) and (117, bits for 65535? no: new pair).
        assert_eq!(&p[..2], &[0x81, 205]);
        let pairs: Vec<(u16, u16)> = p[12..]
            .chunks(4)
            .map(|c| {
                (
                    u16::from_be_bytes([c[0], c[1]]),
                    u16::from_be_bytes([c[2], c[3]]),
                )
            })
            .collect();
        assert_eq!(pairs, vec![(100, 0x8001), (117, 0), (65535, 1)]);
        assert_eq!(
            usize::from(u16::from_be_bytes([p[2], p[3]])) * 4 + 4,
            p.len()
        );
    }

    #[test]
    fn receiver_report_and_pli_have_their_lengths() {
        let rr = build(|b| {
            receiver_report(
                b,
                9,
                &ReportBlock {
                    ssrc: 3,
                    cumulative_lost: -1,
                    ..Default::default()
                },
            )
        });
        assert_eq!(rr.len(), 32);
        assert_eq!(&rr[12..16], &[0, 0xff, 0xff, 0xff]);
        let p = build(|b| pli(b, 9, 3));
        assert_eq!(&p[..], &[0x81, 206, 0, 2, 0, 0, 0, 9, 0, 0, 0, 3]);
        assert_eq!(parse(&p).unwrap(), Compound::default());
    }
}
