//! A pre-encoded MPEG-TS file (as `ffmpeg -f mpegts` writes it) held in memory, for
//! publishers that replay it over UDP, TCP or SRT at real-time pace, each feed with
//! its own timestamps.
//!
//! Hand-written rather than built on `edgerec-ts`: the generator sends the file's own
//! packets, touching only PTS/DTS, PCR and continuity counters, which a demuxer does
//! not give back; and it must stay far cheaper than the system under test.
//!
//! Timing: every packet is sent at the decode time of the latest PES that began at or
//! before it in the file (the file's mux order is kept). A frame is a PES on an
//! elementary stream (stream id 0xE0–0xEF video, 0xC0–0xDF audio); audio must carry
//! one AAC frame per PES (`-pes_payload_size 0`), so that frames sent can be counted
//! against the frames a recording holds.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::source::TagKind;

pub const PACKET: usize = 188;
/// PTS, DTS and PCR base wrap at 2^33 ticks of 90 kHz.
const WRAP: u64 = 1 << 33;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TsSourceError {
    #[error("not an MPEG-TS file: no sync byte at byte {0}")]
    NoSync(usize),
    #[error("the file's length is not a whole number of 188-byte packets")]
    Truncated,
    #[error("PES on PID {pid:#x} at byte {offset}: {what}")]
    Pes {
        pid: u16,
        offset: usize,
        what: &'static str,
    },
    #[error("audio PES at byte {0} carries more than one AAC frame (make the file with -pes_payload_size 0)")]
    SeveralFramesPerPes(usize),
    #[error("the file has no video or audio PES")]
    Empty,
}

/// One packet of the file: where it starts and when it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TsPacket {
    /// Byte offset in the file.
    pub offset: u32,
    /// Send time in ms from the loop's start.
    pub at_ms: u32,
    /// The frame whose PES this packet begins, if it begins one.
    pub starts: Option<TagKind>,
    /// Decode time (ms from the loop's start) of the PES this packet begins.
    pub dts_ms: u32,
}

/// A whole TS source in memory. Publishers loop it: `period_ms` is one loop's length.
#[derive(Clone, Debug)]
pub struct TsSource {
    data: Bytes,
    pub packets: Vec<TsPacket>,
    pub period_ms: u32,
}

/// Where the packet's payload begins, and whether it has one.
fn payload_start(p: &[u8]) -> Option<usize> {
    let afc = (p[3] >> 4) & 3;
    if afc & 1 == 0 {
        return None;
    }
    let start = if afc & 2 != 0 { 5 + p[4] as usize } else { 4 };
    (start < PACKET).then_some(start)
}

/// The packet's PID.
pub fn pid(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
}

fn read_ts(b: &[u8]) -> u64 {
    (u64::from(b[0] & 0x0e) << 29)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] & 0xfe) << 14)
        | (u64::from(b[3]) << 7)
        | (u64::from(b[4]) >> 1)
}

fn write_ts(b: &mut [u8], ts: u64) {
    let ts = ts % WRAP;
    b[0] = (b[0] & 0xf0) | ((ts >> 29) as u8 & 0x0e) | 1;
    b[1] = (ts >> 22) as u8;
    b[2] = ((ts >> 14) as u8 & 0xfe) | 1;
    b[3] = (ts >> 7) as u8;
    b[4] = ((ts << 1) as u8 & 0xfe) | 1;
}

/// A PES header at the start of a payload: (stream kind, PTS offset in the packet,
/// DTS offset if present, PTS, DTS).
struct PesHeader {
    kind: Option<TagKind>,
    /// Offsets of the 5-byte PTS and DTS fields in the packet.
    pts_at: Option<usize>,
    dts_at: Option<usize>,
    dts: Option<u64>,
    /// Payload bytes after the header, from PES_packet_length (0: unbounded).
    payload_len: Option<usize>,
    payload_at: usize,
}

fn pes_header(p: &[u8], at: usize) -> Result<PesHeader, &'static str> {
    let h = &p[at..];
    if h.len() < 9 || h[..3] != [0, 0, 1] {
        return Err("no PES start code where the payload unit starts");
    }
    let kind = match h[3] {
        0xe0..=0xef => Some(TagKind::Video),
        0xc0..=0xdf => Some(TagKind::Audio),
        _ => None,
    };
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let flags = h[7] >> 6;
    let hdr_len = usize::from(h[8]);
    if 9 + hdr_len > h.len() {
        return Err("PES header longer than its packet");
    }
    let (pts_at, dts_at) = match flags {
        2 => (Some(at + 9), None),
        3 => (Some(at + 9), Some(at + 14)),
        _ => (None, None),
    };
    let need = match flags {
        2 => 5,
        3 => 10,
        _ => 0,
    };
    if need > hdr_len {
        return Err("PTS/DTS flags with a header too short for them");
    }
    let ts_at = dts_at.or(pts_at);
    Ok(PesHeader {
        kind,
        pts_at,
        dts_at,
        dts: ts_at.map(|o| read_ts(&p[o..o + 5])),
        payload_len: (len > 0).then(|| len.saturating_sub(3 + hdr_len)),
        payload_at: at + 9 + hdr_len,
    })
}

impl TsSource {
    pub fn parse(file: Bytes) -> Result<TsSource, TsSourceError> {
        if !file.len().is_multiple_of(PACKET) {
            return Err(TsSourceError::Truncated);
        }
        // First pass: every PES start's decode time, for the file's origin.
        struct Start {
            index: usize,
            kind: TagKind,
            dts: u64,
            pid: u16,
        }
        let mut starts = Vec::new();
        for (index, p) in file.chunks_exact(PACKET).enumerate() {
            let offset = index * PACKET;
            if p[0] != 0x47 {
                return Err(TsSourceError::NoSync(offset));
            }
            if p[1] & 0x40 == 0 {
                continue;
            }
            let Some(at) = payload_start(p) else { continue };
            if pid(p) < 0x20 || p[at..].len() < 4 || p[at..at + 3] != [0, 0, 1] {
                continue; // PSI: PAT, PMT, SDT
            }
            let h = pes_header(p, at).map_err(|what| TsSourceError::Pes {
                pid: pid(p),
                offset,
                what,
            })?;
            let (Some(kind), Some(dts)) = (h.kind, h.dts) else {
                continue;
            };
            if kind == TagKind::Audio {
                // One ADTS frame filling the whole PES.
                let a = &p[h.payload_at.min(PACKET)..];
                if let (Some(len), [0xff, b1, _, b3, b4, b5, ..]) = (h.payload_len, a) {
                    if b1 & 0xf0 == 0xf0 {
                        let frame = (usize::from(b3 & 3) << 11)
                            | (usize::from(*b4) << 3)
                            | (usize::from(*b5) >> 5);
                        if frame != len {
                            return Err(TsSourceError::SeveralFramesPerPes(offset));
                        }
                    }
                }
            }
            starts.push(Start {
                index,
                kind,
                dts,
                pid: pid(p),
            });
        }
        let origin = starts
            .iter()
            .map(|s| s.dts)
            .min()
            .ok_or(TsSourceError::Empty)?;
        let ms = |dts: u64| ((dts.wrapping_sub(origin) % WRAP) / 90) as u32;
        // One loop lasts until the last video frame's end (a frame's worth past it).
        let video: Vec<u32> = starts
            .iter()
            .filter(|s| s.kind == TagKind::Video)
            .map(|s| ms(s.dts))
            .collect();
        let mut sorted = video.clone();
        sorted.sort_unstable();
        let period_ms = match sorted.as_slice() {
            [.., a, b] => b + b.saturating_sub(*a).max(1),
            [a] => a + 40,
            [] => starts.iter().map(|s| ms(s.dts)).max().unwrap_or(0) + 40,
        };
        // Second pass: send times; a PES at or past the loop's end is left out with
        // every packet of it (it would overlap the next loop's first frames).
        let mut packets = Vec::with_capacity(file.len() / PACKET);
        let mut next = starts.iter().peekable();
        let mut dropping: Vec<u16> = Vec::new();
        let mut at_ms = 0u32;
        for (index, p) in file.chunks_exact(PACKET).enumerate() {
            let pid = pid(p);
            let mut starts_frame = None;
            let mut dts_ms = at_ms;
            if let Some(s) = next.next_if(|s| s.index == index) {
                let t = ms(s.dts);
                dropping.retain(|&d| d != s.pid);
                if t >= period_ms {
                    dropping.push(s.pid);
                } else {
                    at_ms = at_ms.max(t);
                    starts_frame = Some(s.kind);
                    dts_ms = t;
                }
            }
            if dropping.contains(&pid) {
                continue;
            }
            packets.push(TsPacket {
                offset: (index * PACKET) as u32,
                at_ms,
                starts: starts_frame,
                dts_ms,
            });
        }
        Ok(TsSource {
            data: file,
            packets,
            period_ms,
        })
    }

    /// Frames (video, audio) a publisher sends in `duration_ms` from its start.
    pub fn frames_in(&self, duration_ms: u64) -> (u64, u64) {
        let (mut v, mut a) = (0, 0);
        let period = u64::from(self.period_ms);
        for p in &self.packets {
            let Some(kind) = p.starts else { continue };
            let ts = u64::from(p.dts_ms);
            if ts >= duration_ms {
                continue;
            }
            let n = (duration_ms - ts).div_ceil(period);
            match kind {
                TagKind::Video => v += n,
                _ => a += n,
            }
        }
        (v, a)
    }

    /// The packet's 188 bytes.
    pub fn bytes(&self, p: &TsPacket) -> &[u8] {
        let o = p.offset as usize;
        &self.data[o..o + PACKET]
    }
}

/// One publisher's rewriting of the source's packets: its own timestamps (shifted by
/// a per-feed offset plus a period per loop) and continuity counters that run on
/// across loops and left-out packets.
pub struct TsRewriter {
    cc: Vec<(u16, u8)>,
}

impl Default for TsRewriter {
    fn default() -> Self {
        Self::new()
    }
}

impl TsRewriter {
    pub fn new() -> TsRewriter {
        TsRewriter { cc: Vec::new() }
    }

    /// Appends `packet` to `out` with its PCR, PTS and DTS moved by `shift_ms`.
    pub fn write(&mut self, out: &mut BytesMut, packet: &[u8], shift_ms: u64) {
        let start = out.len();
        out.put_slice(packet);
        let p = &mut out[start..start + PACKET];
        let shift = shift_ms * 90;
        let pid = pid(p);
        // PCR in the adaptation field.
        if (p[3] >> 4) & 2 != 0 && p[4] >= 7 && p[5] & 0x10 != 0 {
            let base = (u64::from(p[6]) << 25)
                | (u64::from(p[7]) << 17)
                | (u64::from(p[8]) << 9)
                | (u64::from(p[9]) << 1)
                | (u64::from(p[10]) >> 7);
            let base = (base + shift) % WRAP;
            p[6] = (base >> 25) as u8;
            p[7] = (base >> 17) as u8;
            p[8] = (base >> 9) as u8;
            p[9] = (base >> 1) as u8;
            p[10] = (p[10] & 0x7f) | (((base & 1) as u8) << 7);
        }
        let payload = payload_start(p);
        if let Some(at) = payload {
            if p[1] & 0x40 != 0 && pid >= 0x20 {
                if let Ok(h) = pes_header(p, at) {
                    for o in [h.pts_at, h.dts_at].into_iter().flatten() {
                        let ts = read_ts(&p[o..o + 5]) + shift;
                        write_ts(&mut p[o..o + 5], ts);
                    }
                }
            }
            let cc = match self.cc.iter_mut().find(|(q, _)| *q == pid) {
                Some((_, c)) => {
                    *c = (*c + 1) & 0x0f;
                    *c
                }
                None => {
                    self.cc.push((pid, p[3] & 0x0f));
                    p[3] & 0x0f
                }
            };
            p[3] = (p[3] & 0xf0) | cc;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet on `pid`: a PES start (stream id, PTS, optional DTS, payload) if
    /// `pes` is given, else a continuation; `pcr` in an adaptation field.
    fn packet(
        pid: u16,
        cc: u8,
        pes: Option<(u8, u64, Option<u64>, &[u8])>,
        pcr: Option<u64>,
    ) -> Vec<u8> {
        let mut p = vec![0x47, (pid >> 8) as u8, pid as u8, 0x10 | cc];
        if pes.is_some() {
            p[1] |= 0x40;
        }
        if let Some(base) = pcr {
            p[3] |= 0x20;
            p.extend_from_slice(&[7, 0x10, 0, 0, 0, 0, 0x7e, 0]);
            p[6] = (base >> 25) as u8;
            p[7] = (base >> 17) as u8;
            p[8] = (base >> 9) as u8;
            p[9] = (base >> 1) as u8;
            p[10] = 0x7e | (((base & 1) as u8) << 7);
        }
        if let Some((sid, pts, dts, body)) = pes {
            let hdr_len = if dts.is_some() { 10 } else { 5 };
            let len = if sid >= 0xe0 {
                0
            } else {
                3 + hdr_len + body.len()
            };
            p.extend_from_slice(&[0, 0, 1, sid, (len >> 8) as u8, len as u8, 0x80]);
            p.push(if dts.is_some() { 0xc0 } else { 0x80 });
            p.push(hdr_len as u8);
            let mut f = [0x20u8; 5];
            if dts.is_some() {
                f[0] = 0x30;
            }
            write_ts(&mut f, pts);
            p.extend_from_slice(&f);
            if let Some(d) = dts {
                let mut f = [0x10u8; 5];
                write_ts(&mut f, d);
                p.extend_from_slice(&f);
            }
            p.extend_from_slice(body);
        }
        p.resize(PACKET, 0xff);
        p
    }

    fn adts(len: usize) -> Vec<u8> {
        let mut a = vec![
            0xff,
            0xf1,
            0x50,
            0x80 | ((len >> 11) as u8 & 3),
            (len >> 3) as u8,
            ((len & 7) as u8) << 5 | 0x1f,
            0xfc,
        ];
        a.resize(len, 0);
        a
    }

    fn source(packets: &[Vec<u8>]) -> Bytes {
        Bytes::from(packets.concat())
    }

    #[test]
    fn times_packets_by_pes_and_leaves_out_the_tail_past_the_loop() {
        let o = 126_000; // ffmpeg's 1.4 s start
        let f = source(&[
            packet(0, 0, None, None), // a PAT-like PSI packet: sent at the start
            packet(
                0x100,
                0,
                Some((0xe0, o + 3600, Some(o), b"")),
                Some(o - 900),
            ),
            packet(0x100, 1, None, None),
            packet(0x101, 0, Some((0xc0, o, None, &adts(20))), None),
            packet(0x100, 2, Some((0xe0, o + 7200, Some(o + 3600), b"")), None),
            packet(0x101, 1, Some((0xc0, o + 1920, None, &adts(20))), None),
            // Audio at 80 ms: past the loop's end (40 + 40), left out.
            packet(0x101, 2, Some((0xc0, o + 7200, None, &adts(20))), None),
            packet(0x100, 3, None, None),
        ]);
        let s = TsSource::parse(f).unwrap();
        assert_eq!(s.period_ms, 80);
        let got: Vec<(u32, Option<TagKind>)> =
            s.packets.iter().map(|p| (p.at_ms, p.starts)).collect();
        assert_eq!(
            got,
            [
                (0, None),
                (0, Some(TagKind::Video)),
                (0, None),
                (0, Some(TagKind::Audio)),
                (40, Some(TagKind::Video)),
                (40, Some(TagKind::Audio)),
                (40, None),
            ]
        );
        // 200 ms: video at 0, 40 of loops at 0, 80, 160 → 5; audio at 0, 21 → 6.
        assert_eq!(s.frames_in(200), (5, 6));
    }

    #[test]
    fn rewrites_timestamps_pcr_and_continuity() {
        let o = 126_000;
        let v = packet(
            0x100,
            9,
            Some((0xe0, o + 3600, Some(o), b"x")),
            Some(o - 900),
        );
        let mut w = TsRewriter::new();
        let mut out = BytesMut::new();
        w.write(&mut out, &v, 1000);
        w.write(&mut out, &v, 1000);
        let (a, b) = out.split_at(PACKET);
        assert_eq!(a[3] & 0x0f, 9, "the first counter is the file's");
        assert_eq!(b[3] & 0x0f, 10, "then it counts on");
        let s = TsSource::parse(Bytes::copy_from_slice(a)).unwrap();
        assert_eq!(s.packets[0].starts, Some(TagKind::Video));
        let at = payload_start(a).unwrap();
        let h = pes_header(a, at).unwrap();
        assert_eq!(read_ts(&a[h.pts_at.unwrap()..]), o + 3600 + 90_000);
        assert_eq!(h.dts, Some(o + 90_000));
        let pcr = (u64::from(a[6]) << 25)
            | (u64::from(a[7]) << 17)
            | (u64::from(a[8]) << 9)
            | (u64::from(a[9]) << 1)
            | (u64::from(a[10]) >> 7);
        assert_eq!(pcr, o - 900 + 90_000);
        // Marker bits survive.
        assert_eq!(a[h.pts_at.unwrap()] & 0xf1, 0x31);
        // Wrap at 2^33.
        let mut out = BytesMut::new();
        let late = packet(0x100, 0, Some((0xe0, WRAP - 90, None, b"")), None);
        TsRewriter::new().write(&mut out, &late, 2);
        let h = pes_header(&out, payload_start(&out).unwrap()).unwrap();
        assert_eq!(h.dts, Some(90));
    }

    #[test]
    fn refuses_what_it_cannot_replay() {
        assert_eq!(
            TsSource::parse(Bytes::from(vec![0u8; PACKET])).unwrap_err(),
            TsSourceError::NoSync(0)
        );
        assert_eq!(
            TsSource::parse(Bytes::from(vec![0x47u8; 100])).unwrap_err(),
            TsSourceError::Truncated
        );
        // Two AAC frames in one PES.
        let mut two = adts(20);
        two.extend_from_slice(&adts(20));
        let f = source(&[packet(0x101, 0, Some((0xc0, 0, None, &two)), None)]);
        assert_eq!(
            TsSource::parse(f).unwrap_err(),
            TsSourceError::SeveralFramesPerPes(0)
        );
        assert_eq!(
            TsSource::parse(source(&[packet(0, 0, None, None)])).unwrap_err(),
            TsSourceError::Empty
        );
    }
}
