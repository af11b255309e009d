//! H.264 over RTP (RFC 6184): single NAL unit, STAP-A and FU-A packets, in
//! non-interleaved mode (what ffmpeg, GStreamer, browsers and cameras send).
//! Access units come out length-prefixed (4 bytes), parameter sets kept in-band,
//! access unit delimiters dropped; the avcC is built from the SDP's
//! `sprop-parameter-sets` and rebuilt whenever in-band SPS/PPS change.

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use edgerec_media::avc::AvcConfig;
use edgerec_media::{Codec, TrackParams, VideoParams};

use super::{fmtp_get, fmtp_params, DepacketizeError, Depacketizer, Description, Unit, MAX_UNIT};

#[derive(Default)]
pub struct H264 {
    nals: Vec<Bytes>,
    size: usize,
    fragment: Option<BytesMut>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    described: Option<(Bytes, Bytes)>,
    pending: Option<Description>,
}

impl H264 {
    /// `fmtp`: the SDP's format parameters, if any (`sprop-parameter-sets`).
    pub fn new(fmtp: Option<&str>) -> Result<H264, DepacketizeError> {
        let mut d = H264::default();
        if let Some(sets) = fmtp
            .map(fmtp_params)
            .and_then(|p| fmtp_get(&p, "sprop-parameter-sets").map(str::to_owned))
        {
            for s in sets.split(',').filter(|s| !s.is_empty()) {
                let nal = base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .map_err(|e| DepacketizeError::Fmtp(format!("sprop-parameter-sets: {e}")))?;
                d.parameter_set(Bytes::from(nal));
            }
            d.describe();
        }
        Ok(d)
    }

    fn parameter_set(&mut self, nal: Bytes) {
        match nal.first().map(|b| b & 0x1f) {
            Some(7) => self.sps = Some(nal),
            Some(8) => self.pps = Some(nal),
            _ => {}
        }
    }

    fn describe(&mut self) {
        let (Some(sps), Some(pps)) = (&self.sps, &self.pps) else {
            return;
        };
        if self.described.as_ref() == Some(&(sps.clone(), pps.clone())) {
            return;
        }
        // A bad SPS leaves the previous description (or none) in place.
        if let Ok((config, avc)) = AvcConfig::from_parameter_sets(sps, &[pps]) {
            self.described = Some((sps.clone(), pps.clone()));
            self.pending = Some(Description {
                codec: Codec::H264,
                params: TrackParams::Video(VideoParams {
                    width: avc.width,
                    height: avc.height,
                }),
                codec_string: avc.codec_string(),
                config,
            });
        }
    }

    fn nal(&mut self, nal: Bytes) -> Result<(), DepacketizeError> {
        self.size += nal.len() + 4;
        if self.size > MAX_UNIT {
            return Err(DepacketizeError::TooLarge(MAX_UNIT));
        }
        self.nals.push(nal);
        Ok(())
    }
}

impl Depacketizer for H264 {
    fn push(&mut self, p: &Bytes) -> Result<(), DepacketizeError> {
        let Some(&h) = p.first() else {
            return Err(DepacketizeError::Short(0));
        };
        match h & 0x1f {
            1..=23 => self.nal(p.clone()),
            24 => {
                let mut at = 1;
                while at < p.len() {
                    let len = p
                        .get(at..at + 2)
                        .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
                        .ok_or(DepacketizeError::Aggregate { at, len: 2 })?;
                    let nal = p
                        .get(at + 2..at + 2 + len)
                        .ok_or(DepacketizeError::Aggregate { at, len })?;
                    if !nal.is_empty() {
                        self.nal(p.slice_ref(nal))?;
                    }
                    at += 2 + len;
                }
                Ok(())
            }
            28 => {
                let fu = *p.get(1).ok_or(DepacketizeError::Short(p.len()))?;
                let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
                if start {
                    let mut b = BytesMut::with_capacity(p.len() * 8);
                    b.put_u8((h & 0xe0) | (fu & 0x1f));
                    self.fragment = Some(b);
                }
                let b = self
                    .fragment
                    .as_mut()
                    .ok_or(DepacketizeError::FragmentWithoutStart)?;
                if b.len() + p.len() > MAX_UNIT {
                    return Err(DepacketizeError::TooLarge(MAX_UNIT));
                }
                b.extend_from_slice(&p[2..]);
                if end {
                    let nal = self.fragment.take().unwrap_or_default().freeze();
                    self.nal(nal)?;
                }
                Ok(())
            }
            25 => Err(DepacketizeError::Unsupported("STAP-B (interleaved mode)")),
            26 | 27 => Err(DepacketizeError::Unsupported("MTAP (interleaved mode)")),
            29 => Err(DepacketizeError::Unsupported("FU-B (interleaved mode)")),
            _ => Err(DepacketizeError::Unsupported("NAL unit type 0/30/31")),
        }
    }

    fn finish(&mut self, out: &mut Vec<Unit>) -> Result<(), DepacketizeError> {
        // An unfinished fragment at the end of the unit is a lost end packet.
        let partial = self.fragment.take().is_some();
        let nals = std::mem::take(&mut self.nals);
        self.size = 0;
        if partial {
            return Err(DepacketizeError::FragmentWithoutStart);
        }
        let mut key = false;
        let mut b = BytesMut::with_capacity(nals.iter().map(|n| n.len() + 4).sum());
        for nal in nals {
            match nal[0] & 0x1f {
                5 => key = true,
                7 | 8 => self.parameter_set(nal.clone()),
                9 => continue,
                _ => {}
            }
            b.put_u32(nal.len() as u32);
            b.extend_from_slice(&nal);
        }
        self.describe();
        if !b.is_empty() {
            out.push(Unit {
                data: b.freeze(),
                key,
                offset: 0,
            });
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.nals.clear();
        self.size = 0;
        self.fragment = None;
    }

    fn take_description(&mut self) -> Option<Description> {
        self.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SPS/PPS of libx264 at 320x240 25 fps, High profile, as ffmpeg 5.1's RTP muxer
    // writes them into sprop-parameter-sets.
    const SPROP: &str = "packetization-mode=1; sprop-parameter-sets=Z2QADazZQUH7ARAAAAMAEAAAAwMg8UKZYA==,aOvjyyLA; profile-level-id=64000D";

    fn finish(d: &mut H264) -> Vec<Unit> {
        let mut out = Vec::new();
        d.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn describes_from_sprop_parameter_sets() {
        let mut d = H264::new(Some(SPROP)).unwrap();
        let desc = d.take_description().unwrap();
        assert_eq!(desc.codec_string, "avc1.64000d");
        assert_eq!(
            desc.params,
            TrackParams::Video(VideoParams {
                width: 320,
                height: 240
            })
        );
        assert_eq!(desc.config[0], 1);
        assert!(d.take_description().is_none());
    }

    #[test]
    fn single_stap_a_and_fu_a_make_one_length_prefixed_unit() {
        let mut d = H264::new(None).unwrap();
        // STAP-A: AUD + SEI.
        d.push(&Bytes::from_static(&[24, 0, 2, 9, 0xf0, 0, 3, 6, 5, 1]))
            .unwrap();
        // IDR slice in three fragments.
        d.push(&Bytes::from_static(&[0x7c, 0x85, 1, 2])).unwrap();
        d.push(&Bytes::from_static(&[0x7c, 0x05, 3])).unwrap();
        d.push(&Bytes::from_static(&[0x7c, 0x45, 4])).unwrap();
        let out = finish(&mut d);
        assert_eq!(out.len(), 1);
        assert!(out[0].key);
        assert_eq!(
            &out[0].data[..],
            &[0, 0, 0, 3, 6, 5, 1, 0, 0, 0, 5, 0x65, 1, 2, 3, 4]
        );
        // A plain non-IDR slice.
        d.push(&Bytes::from_static(&[0x41, 0x9a, 0x02])).unwrap();
        let out = finish(&mut d);
        assert!(!out[0].key);
        assert_eq!(&out[0].data[..], &[0, 0, 0, 3, 0x41, 0x9a, 0x02]);
    }

    #[test]
    fn in_band_parameter_sets_describe_the_track() {
        let mut d = H264::new(None).unwrap();
        assert!(d.take_description().is_none());
        let sps = base64::engine::general_purpose::STANDARD
            .decode("Z2QADazZQUH7ARAAAAMAEAAAAwMg8UKZYA==")
            .unwrap();
        d.push(&Bytes::from(sps)).unwrap();
        d.push(&Bytes::from_static(&[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0]))
            .unwrap();
        d.push(&Bytes::from_static(&[0x65, 0x88])).unwrap();
        let out = finish(&mut d);
        assert!(out[0].key);
        assert_eq!(d.take_description().unwrap().codec_string, "avc1.64000d");
    }

    #[test]
    fn malformed_packets_are_errors_not_panics() {
        let mut d = H264::new(None).unwrap();
        assert!(d.push(&Bytes::from_static(&[24, 0, 5, 1])).is_err());
        assert!(d.push(&Bytes::from_static(&[24, 0])).is_err());
        assert!(d.push(&Bytes::from_static(&[28])).is_err());
        assert_eq!(
            d.push(&Bytes::from_static(&[0x7c, 0x05, 3])),
            Err(DepacketizeError::FragmentWithoutStart)
        );
        d.reset();
        d.push(&Bytes::from_static(&[0x7c, 0x85, 1])).unwrap();
        let mut out = Vec::new();
        assert!(d.finish(&mut out).is_err());
        assert!(out.is_empty());
        assert!(H264::new(Some("sprop-parameter-sets=!!!")).is_err());
    }
}
