//! The FLV source as RTP, for the relayed-RTP ingest: every frame cut into RTP
//! payloads once at load (H.264 by the `rtp` crate's payloader: single NAL units,
//! FU-A, SPS and PPS as STAP-A before each IDR, as browsers and SFUs send them;
//! AAC as RFC 3640 AAC-hbr, one access unit per packet), so a publisher only writes
//! a 12-byte header per packet: its sequence number, timestamp and SSRC.
//!
//! The AAC payload and the RTP header are written here: `rtp` has no AAC payloader,
//! and its `Header` marshals through a trait of another crate for 12 fixed bytes.

use bytes::{BufMut, Bytes, BytesMut};
use rtp::codecs::h264::H264Payloader;
use rtp::packetizer::Payloader;
use thiserror::Error;

use crate::source::{Source, TagKind};

/// RTP payload size, below any path MTU (what browsers use).
pub const MTU: usize = 1200;
pub const VIDEO_PT: u8 = 96;
pub const AUDIO_PT: u8 = 97;
pub const VIDEO_CLOCK: u32 = 90_000;
/// Samples in an AAC-LC frame.
const AAC_FRAME: u32 = 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RtpSourceError {
    #[error("the source has no {0} sequence header")]
    NoConfig(&'static str),
    #[error("{what} at {ts_ms} ms is malformed")]
    Malformed { what: &'static str, ts_ms: u32 },
    #[error("audio is not AAC-LC in FLV (sound format {0})")]
    NotAac(u8),
}

/// One frame as RTP payloads.
#[derive(Clone, Debug)]
pub struct RtpFrame {
    pub kind: TagKind,
    /// When it is due, from the start of a loop (the FLV decode time).
    pub send_ms: u32,
    /// RTP timestamp from the start of a loop, in its track's clock.
    pub ts: u32,
    /// Payloads in order; the last one carries the marker bit.
    pub payloads: Vec<Bytes>,
}

/// The source cut into RTP payloads, and what the receiver must be told of it.
#[derive(Clone, Debug)]
pub struct RtpSource {
    pub frames: Vec<RtpFrame>,
    pub period_ms: u32,
    pub audio_rate: u32,
    pub audio_channels: u8,
    /// The AudioSpecificConfig, for the SDP's `config=`.
    pub audio_config: Bytes,
}

impl RtpSource {
    pub fn from_flv(src: &Source) -> Result<RtpSource, RtpSourceError> {
        let avc = src
            .header
            .iter()
            .find(|t| t.kind == TagKind::Video && t.config)
            .ok_or(RtpSourceError::NoConfig("AVC"))?;
        let (length_size, sps, pps) =
            avc_config(&avc.data[5.min(avc.data.len())..]).ok_or(RtpSourceError::Malformed {
                what: "the AVC sequence header",
                ts_ms: avc.ts_ms,
            })?;
        let aac = src
            .header
            .iter()
            .find(|t| t.kind == TagKind::Audio && t.config)
            .ok_or(RtpSourceError::NoConfig("AAC"))?;
        if aac.data[0] >> 4 != 10 {
            return Err(RtpSourceError::NotAac(aac.data[0] >> 4));
        }
        let audio_config = aac.data.slice(2..);
        let (audio_rate, audio_channels) =
            asc_rate_channels(&audio_config).ok_or(RtpSourceError::Malformed {
                what: "the AudioSpecificConfig",
                ts_ms: aac.ts_ms,
            })?;

        let mut h264 = H264Payloader::default();
        let mut frames = Vec::with_capacity(src.frames.len());
        let mut audio_index = 0u32;
        let first_audio_ms = src
            .frames
            .iter()
            .find(|t| t.kind == TagKind::Audio)
            .map_or(0, |t| t.ts_ms);
        for t in &src.frames {
            let bad = |what| RtpSourceError::Malformed {
                what,
                ts_ms: t.ts_ms,
            };
            let (ts, payloads) = match t.kind {
                TagKind::Video => {
                    let d = &t.data;
                    if d.len() < 5 {
                        return Err(bad("a video tag"));
                    }
                    let cts = i32::from_be_bytes([d[2], d[3], d[4], 0]) >> 8;
                    let pts_ms = i64::from(t.ts_ms) + i64::from(cts);
                    let key = d[0] >> 4 == 1;
                    // Annex B once at load: the payloader splits on start codes.
                    let mut annexb = BytesMut::with_capacity(d.len() + 64);
                    if key {
                        for ps in [&sps, &pps] {
                            annexb.put_slice(&[0, 0, 0, 1]);
                            annexb.put_slice(ps);
                        }
                    }
                    let mut rest = &d[5..];
                    while !rest.is_empty() {
                        let n = rest
                            .get(..length_size)
                            .ok_or(bad("a NAL unit length"))?
                            .iter()
                            .fold(0usize, |n, b| n << 8 | usize::from(*b));
                        let nal = rest
                            .get(length_size..length_size + n)
                            .ok_or(bad("a NAL unit"))?;
                        annexb.put_slice(&[0, 0, 0, 1]);
                        annexb.put_slice(nal);
                        rest = &rest[length_size + n..];
                    }
                    let payloads = h264
                        .payload(MTU, &annexb.freeze())
                        .map_err(|_| bad("a video frame"))?;
                    ((pts_ms.max(0) as u64 * 90) as u32, payloads)
                }
                TagKind::Audio => {
                    let unit = t.data.get(2..).ok_or(bad("an audio tag"))?;
                    if unit.len() >= 1 << 13 {
                        return Err(bad("an AAC frame (over 8191 bytes)"));
                    }
                    // AU-headers-length 16 bits, one AU-header: size 13, index 3.
                    let mut p = BytesMut::with_capacity(4 + unit.len());
                    p.put_u16(16);
                    p.put_u16((unit.len() as u16) << 3);
                    p.put_slice(unit);
                    let start = u64::from(first_audio_ms) * u64::from(audio_rate) / 1000;
                    let ts = start + u64::from(audio_index * AAC_FRAME);
                    audio_index += 1;
                    (ts as u32, vec![p.freeze()])
                }
                TagKind::Script => continue,
            };
            if payloads.is_empty() {
                return Err(bad("a frame with no NAL unit"));
            }
            frames.push(RtpFrame {
                kind: t.kind,
                send_ms: t.ts_ms,
                ts,
                payloads,
            });
        }
        Ok(RtpSource {
            frames,
            period_ms: src.period_ms,
            audio_rate,
            audio_channels,
            audio_config,
        })
    }

    /// A loop's length in `kind`'s RTP clock.
    pub fn period_ticks(&self, kind: TagKind) -> u32 {
        let rate = match kind {
            TagKind::Video => VIDEO_CLOCK,
            _ => self.audio_rate,
        };
        (u64::from(self.period_ms) * u64::from(rate) / 1000) as u32
    }

    /// The session request's `tracks`: H.264, then AAC-hbr with its config.
    pub fn tracks_json(&self) -> serde_json::Value {
        let config: String = self
            .audio_config
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        serde_json::json!([
            {"codec": "h264", "payload_type": VIDEO_PT, "fmtp": "packetization-mode=1"},
            {"codec": "aac", "payload_type": AUDIO_PT, "clock_rate": self.audio_rate,
             "channels": self.audio_channels,
             "fmtp": format!("streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;\
                              indexlength=3;indexdeltalength=3;config={config}")},
        ])
    }
}

/// Writes an RTP header (version 2, no padding, extension or CSRC).
pub fn write_header(out: &mut BytesMut, pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32) {
    out.put_u8(0x80);
    out.put_u8(pt | if marker { 0x80 } else { 0 });
    out.put_u16(seq);
    out.put_u32(ts);
    out.put_u32(ssrc);
}

/// An empty receiver report and a BYE from `ssrc`: the end of a sender's stream.
pub fn bye(ssrc: u32) -> Bytes {
    let mut b = BytesMut::with_capacity(16);
    b.put_slice(&[0x80, 201, 0, 1]);
    b.put_u32(ssrc);
    b.put_slice(&[0x81, 203, 0, 1]);
    b.put_u32(ssrc);
    b.freeze()
}

/// NAL length size, SPS and PPS of an AVCDecoderConfigurationRecord.
fn avc_config(r: &[u8]) -> Option<(usize, Bytes, Bytes)> {
    let length_size = usize::from(r.get(4)? & 3) + 1;
    let mut at = 6;
    let take = |at: &mut usize| -> Option<Bytes> {
        let n = usize::from(u16::from_be_bytes([*r.get(*at)?, *r.get(*at + 1)?]));
        let v = Bytes::copy_from_slice(r.get(*at + 2..*at + 2 + n)?);
        *at += 2 + n;
        Some(v)
    };
    if r.get(5)? & 0x1f == 0 {
        return None;
    }
    let sps = take(&mut at)?;
    // Further SPSs are skipped; the first PPS is taken.
    for _ in 1..(r[5] & 0x1f) {
        take(&mut at)?;
    }
    if *r.get(at)? == 0 {
        return None;
    }
    at += 1;
    let pps = take(&mut at)?;
    Some((length_size, sps, pps))
}

/// Sample rate and channels of an AAC AudioSpecificConfig (no explicit rate).
fn asc_rate_channels(asc: &[u8]) -> Option<(u32, u8)> {
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    let bits = u16::from_be_bytes([*asc.first()?, *asc.get(1)?]);
    let rate = *RATES.get(usize::from(bits >> 7 & 0x0f))?;
    let channels = (bits >> 3 & 0x0f) as u8;
    (channels > 0).then_some((rate, channels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_bye_are_what_rtp_says() {
        let mut b = BytesMut::new();
        write_header(&mut b, 96, true, 0x1234, 0x01020304, 0xaabbccdd);
        assert_eq!(
            &b[..],
            &[0x80, 0xe0, 0x12, 0x34, 1, 2, 3, 4, 0xaa, 0xbb, 0xcc, 0xdd]
        );
        let bye = bye(7);
        assert_eq!(&bye[..8], &[0x80, 201, 0, 1, 0, 0, 0, 7]);
        assert_eq!(&bye[8..], &[0x81, 203, 0, 1, 0, 0, 0, 7]);
    }

    #[test]
    fn audio_specific_config_gives_rate_and_channels() {
        // AAC-LC 48 kHz stereo, 44.1 kHz mono.
        assert_eq!(asc_rate_channels(&[0x11, 0x90]), Some((48000, 2)));
        assert_eq!(asc_rate_channels(&[0x12, 0x08]), Some((44100, 1)));
        assert_eq!(asc_rate_channels(&[0x11]), None);
        assert_eq!(asc_rate_channels(&[0x17, 0x80]), None);
    }

    #[test]
    fn avc_config_takes_the_first_sps_and_pps_and_refuses_short_records() {
        let rec = [
            1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 3, 0x67, 0x64, 0x00, 1, 0, 2, 0x68, 0xee,
        ];
        let (n, sps, pps) = avc_config(&rec).unwrap();
        assert_eq!(n, 4);
        assert_eq!(&sps[..], &[0x67, 0x64, 0]);
        assert_eq!(&pps[..], &[0x68, 0xee]);
        for cut in 0..rec.len() {
            assert!(avc_config(&rec[..cut]).is_none(), "cut at {cut}");
        }
    }
}
