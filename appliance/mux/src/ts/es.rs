//! Elementary streams: what each codec's frames become in PES payloads, and how
//! the PMT describes them.

use bytes::{BufMut, BytesMut};
use edgerec_media::{avc, hevc, Codec, TrackInfo};

/// One track as an elementary stream.
pub struct Stream {
    pub stream_type: u8,
    pub stream_id: u8,
    /// ES_info descriptors for the PMT.
    pub descriptors: Vec<u8>,
    kind: Kind,
}

enum Kind {
    /// H.264 / H.265: the AUD, then (on key frames) the parameter sets, in
    /// Annex B; `length_size` of the frames' NAL length prefixes.
    AnnexB {
        aud: &'static [u8],
        params: Vec<Vec<u8>>,
        length_size: usize,
    },
    /// AAC: an ADTS header per frame, from the AudioSpecificConfig.
    Adts {
        profile: u8,
        freq: u8,
        channels: u8,
    },
    Mp3,
    Opus,
}

/// The elementary stream for `info`, or `None` if TS cannot carry its codec.
pub fn stream(info: &TrackInfo) -> Option<Stream> {
    let c = &info.config;
    let (stream_type, stream_id, descriptors, kind) = match info.codec {
        Codec::H264 => (
            0x1b,
            0xe0,
            Vec::new(),
            Kind::AnnexB {
                aud: &[0, 0, 0, 1, 0x09, 0xf0],
                params: avc::parameter_sets(c)
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect(),
                length_size: usize::from(c.get(4).map_or(3, |b| b & 3)) + 1,
            },
        ),
        Codec::H265 => (
            0x24,
            0xe0,
            Vec::new(),
            Kind::AnnexB {
                aud: &[0, 0, 0, 1, 0x46, 0x01, 0x50],
                params: [32, 33, 34]
                    .iter()
                    .filter_map(|&k| hevc::first_nal(c, k))
                    .map(<[u8]>::to_vec)
                    .collect(),
                length_size: usize::from(c.get(21).map_or(3, |b| b & 3)) + 1,
            },
        ),
        Codec::Aac => {
            let object = c.first().map_or(2, |b| b >> 3);
            (
                0x0f,
                0xc0,
                Vec::new(),
                Kind::Adts {
                    // ADTS carries the core profile; HE-AAC signals SBR in-band.
                    profile: if (1..=4).contains(&object) {
                        object - 1
                    } else {
                        1
                    },
                    freq: c.get(..2).map_or(4, |b| ((b[0] & 7) << 1) | (b[1] >> 7)),
                    channels: c.get(1).map_or(2, |b| (b >> 3) & 0xf),
                },
            )
        }
        Codec::Mp3 => (0x03, 0xc0, Vec::new(), Kind::Mp3),
        Codec::Opus => {
            let channels = info.audio().map_or(2, |a| a.channels.clamp(1, 2));
            // Registration descriptor "Opus" and the DVB extension descriptor
            // with the channel configuration.
            let mut d = vec![0x05, 4, b'O', b'p', b'u', b's'];
            d.extend_from_slice(&[0x7f, 2, 0x80, channels]);
            (0x06, 0xbd, d, Kind::Opus)
        }
        _ => return None,
    };
    Some(Stream {
        stream_type,
        stream_id,
        descriptors,
        kind,
    })
}

impl Stream {
    pub fn is_video(&self) -> bool {
        self.stream_id == 0xe0
    }

    /// Appends the PES payload for one frame.
    pub fn access_unit(&self, data: &[u8], key: bool, out: &mut BytesMut) {
        match &self.kind {
            Kind::AnnexB {
                aud,
                params,
                length_size,
            } => {
                out.put_slice(aud);
                if key {
                    for p in params {
                        out.put_slice(&[0, 0, 0, 1]);
                        out.put_slice(p);
                    }
                }
                let mut rest = data;
                while rest.len() > *length_size {
                    let (len, tail) = rest.split_at(*length_size);
                    let n = len.iter().fold(0usize, |a, &b| a << 8 | usize::from(b));
                    let nal = &tail[..n.min(tail.len())];
                    out.put_slice(&[0, 0, 0, 1]);
                    out.put_slice(nal);
                    rest = &tail[nal.len()..];
                }
            }
            Kind::Adts {
                profile,
                freq,
                channels,
            } => {
                let len = data.len() + 7;
                out.put_slice(&[
                    0xff,
                    0xf1,
                    profile << 6 | freq << 2 | channels >> 2,
                    (channels & 3) << 6 | ((len >> 11) & 3) as u8,
                    (len >> 3) as u8,
                    ((len & 7) << 5) as u8 | 0x1f,
                    0xfc,
                ]);
                out.put_slice(data);
            }
            Kind::Mp3 => out.put_slice(data),
            Kind::Opus => {
                // opus_control_header: prefix 0x3ff, no trim or extension
                // flags, then the size as 0xff bytes and a remainder.
                out.put_slice(&[0x7f, 0xe0]);
                let mut n = data.len();
                while n >= 255 {
                    out.put_u8(0xff);
                    n -= 255;
                }
                out.put_u8(n as u8);
                out.put_slice(data);
            }
        }
    }
}
