//! AAC over RTP as `mpeg4-generic` (RFC 3640) in the AAC-hbr and AAC-lbr modes
//! (what ffmpeg, GStreamer and most cameras send): an AU-header section, then
//! the access units back to back. The AudioSpecificConfig is the SDP's `config`.
//! Units fragmented over several packets (larger than the MTU) are not supported.

use bytes::Bytes;
use edgerec_media::aac::AudioSpecificConfig;
use edgerec_media::{AudioParams, Codec, TrackParams};

use super::{fmtp_get, fmtp_params, DepacketizeError, Depacketizer, Description, Unit};

pub struct Aac {
    size_length: u32,
    index_length: u32,
    index_delta_length: u32,
    samples_per_frame: u32,
    units: Vec<Bytes>,
    pending: Option<Description>,
}

impl Aac {
    pub fn new(fmtp: Option<&str>) -> Result<Aac, DepacketizeError> {
        let p = fmtp_params(fmtp.unwrap_or(""));
        let num = |k: &str, default: u32| -> Result<u32, DepacketizeError> {
            match fmtp_get(&p, k) {
                Some(v) => v
                    .parse()
                    .map_err(|_| DepacketizeError::Fmtp(format!("{k}={v}"))),
                None => Ok(default),
            }
        };
        let (size_length, index_length, index_delta_length) = (
            num("sizelength", 0)?,
            num("indexlength", 0)?,
            num("indexdeltalength", 0)?,
        );
        if !(1..=16).contains(&size_length) || index_length > 8 || index_delta_length > 8 {
            return Err(DepacketizeError::Fmtp(format!(
                "sizelength={size_length} indexlength={index_length} (AAC-hbr/lbr expected)"
            )));
        }
        let config = fmtp_get(&p, "config")
            .ok_or_else(|| DepacketizeError::Fmtp("no config".into()))
            .and_then(|c| {
                (0..c.len() / 2)
                    .map(|i| u8::from_str_radix(c.get(2 * i..2 * i + 2).unwrap_or(""), 16))
                    .collect::<Result<Vec<u8>, _>>()
                    .map_err(|_| DepacketizeError::Fmtp(format!("config={c}")))
            })?;
        let asc = AudioSpecificConfig::parse(&config)
            .map_err(|e| DepacketizeError::Fmtp(format!("config: {e}")))?;
        let samples_per_frame = asc.frame_length;
        Ok(Aac {
            size_length,
            index_length,
            index_delta_length,
            samples_per_frame,
            units: Vec::new(),
            pending: Some(Description {
                codec: Codec::Aac,
                params: TrackParams::Audio(AudioParams {
                    sample_rate: asc.sample_rate,
                    channels: asc.channels,
                    samples_per_frame: Some(samples_per_frame),
                }),
                codec_string: asc.codec_string(),
                config: Bytes::from(config),
            }),
        })
    }
}

impl Depacketizer for Aac {
    fn push(&mut self, p: &Bytes) -> Result<(), DepacketizeError> {
        let header_bits = usize::from(u16::from_be_bytes([
            *p.first().ok_or(DepacketizeError::Short(p.len()))?,
            *p.get(1).ok_or(DepacketizeError::Short(p.len()))?,
        ]));
        let header_bytes = header_bits.div_ceil(8);
        let headers = p
            .get(2..2 + header_bytes)
            .ok_or(DepacketizeError::Short(p.len()))?;
        let mut at = 2 + header_bytes;
        let mut bit = 0usize;
        let mut first = true;
        while bit < header_bits {
            let index = if first {
                self.index_length
            } else {
                self.index_delta_length
            };
            let need = (self.size_length + index) as usize;
            if bit + need > header_bits {
                break;
            }
            let size = read_bits(headers, bit, self.size_length) as usize;
            bit += need;
            // Index and index-delta are 0 in non-interleaved streams; not read.
            first = false;
            let unit = p
                .get(at..at + size)
                .ok_or(DepacketizeError::Aggregate { at, len: size })?;
            self.units.push(p.slice_ref(unit));
            at += size;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<Unit>) -> Result<(), DepacketizeError> {
        for (i, data) in self.units.drain(..).enumerate() {
            out.push(Unit {
                data,
                key: true,
                offset: i as u32 * self.samples_per_frame,
            });
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.units.clear();
    }

    fn take_description(&mut self) -> Option<Description> {
        self.pending.take()
    }
}

/// `n` (≤ 16) bits at bit offset `at`, MSB first; the caller keeps `at + n` in range.
fn read_bits(b: &[u8], at: usize, n: u32) -> u32 {
    let mut v = 0u32;
    for i in 0..n as usize {
        let bit = at + i;
        let byte = b.get(bit / 8).copied().unwrap_or(0);
        v = (v << 1) | u32::from((byte >> (7 - bit % 8)) & 1);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ffmpeg 5.1's SDP for 44.1 kHz mono AAC-LC.
    const FMTP: &str = "profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=120856E500";

    #[test]
    fn splits_units_after_the_au_headers() {
        let mut d = Aac::new(Some(FMTP)).unwrap();
        let desc = d.take_description().unwrap();
        assert_eq!(desc.codec_string, "mp4a.40.2");
        assert_eq!(
            desc.params,
            TrackParams::Audio(AudioParams {
                sample_rate: 44_100,
                channels: 1,
                samples_per_frame: Some(1024)
            })
        );
        // Two AU headers (16 bits each: size 3, size 2), then the units.
        let p = [0, 32, 0, 3 << 3, 0, 2 << 3, 1, 2, 3, 4, 5];
        d.push(&Bytes::copy_from_slice(&p)).unwrap();
        let mut out = Vec::new();
        d.finish(&mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(&out[0].data[..], &[1, 2, 3]);
        assert_eq!((&out[1].data[..], out[1].offset), (&[4, 5][..], 1024));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(Aac::new(Some("mode=AAC-hbr;sizelength=13")).is_err());
        assert!(Aac::new(Some("sizelength=13;config=zz")).is_err());
        let mut d = Aac::new(Some(FMTP)).unwrap();
        assert!(d.push(&Bytes::from_static(&[0])).is_err());
        assert!(d.push(&Bytes::from_static(&[0, 16, 0, 0xf8, 1])).is_err());
        assert!(d.push(&Bytes::from_static(&[0xff, 0xff, 0])).is_err());
    }
}
