//! The MPEG-TS muxer: frames in, fragments of 188-byte packets out.

use std::collections::VecDeque;

use bytes::{BufMut, BytesMut};
use edgerec_media::{Frame, MediaTime, Timescale, TrackInfo};
use edgerec_ts::crc32_mpeg2;

use super::es::{self, Stream};
use super::{FIRST_ES_PID, MARK_MAGIC, NULL_PID, PACKET, PAT_PID, PMT_PID, PTS_OFFSET};
use crate::timeline::{FileClock, FragmentClock, Placed, TrackClock, TrackEnd};
use crate::{
    admit_tracks, same_tracks, Finish, Format, FragmentMeta, PushOutcome, TracksFixed, Unsupported,
    WriteBatch,
};

#[derive(Clone, Copy, Debug)]
pub struct TsConfig {
    /// A fragment ends at the first video key frame after half of this, or at
    /// this duration at the latest: the most media a crash can lose.
    pub fragment_target: MediaTime,
}

impl Default for TsConfig {
    fn default() -> Self {
        TsConfig {
            fragment_target: MediaTime::new(1000, Timescale::MILLIS),
        }
    }
}

struct Track {
    info: TrackInfo,
    es: Stream,
    pid: u16,
    cc: u8,
    clock: TrackClock,
    end: TrackEnd,
}

/// Totals a fragment mark carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub duration_ms: i64,
    pub video_frames: u64,
    pub audio_frames: u64,
}

/// Muxes one file. See the module docs of [`crate::ts`].
pub struct TsMuxer {
    tracks: Vec<Track>,
    clock: FileClock,
    has_video: bool,
    fragment: FragmentClock,
    /// The fragment being built, from its PAT on.
    buf: BytesMut,
    frag_start_ms: i64,
    frag_end_ms: i64,
    frag_key: bool,
    pat_cc: u8,
    pmt_cc: u8,
    null_cc: u8,
    totals: Totals,
    scratch: BytesMut,
    position: u64,
    out: VecDeque<WriteBatch>,
}

impl TsMuxer {
    /// A muxer for `tracks`; tracks TS cannot carry are left out and returned.
    pub fn new(tracks: &[TrackInfo], config: TsConfig) -> (TsMuxer, Vec<Unsupported>) {
        let mut m = TsMuxer {
            tracks: Vec::new(),
            clock: FileClock::default(),
            has_video: false,
            fragment: FragmentClock::new(config.fragment_target),
            buf: BytesMut::new(),
            frag_start_ms: 0,
            frag_end_ms: 0,
            frag_key: false,
            pat_cc: 0,
            pmt_cc: 0,
            null_cc: 0,
            totals: Totals::default(),
            scratch: BytesMut::new(),
            position: 0,
            out: VecDeque::new(),
        };
        let left_out = m.update_tracks(tracks).unwrap_or_default();
        (m, left_out)
    }

    /// Adopts a new track set until the first PAT is written; afterwards
    /// [`TracksFixed`] unless the set is the same.
    pub fn update_tracks(&mut self, tracks: &[TrackInfo]) -> Result<Vec<Unsupported>, TracksFixed> {
        let (kept, left_out) = admit_tracks(tracks, Format::Ts);
        if self.position > 0 || !self.buf.is_empty() {
            return same_tracks(&kept, self.tracks.iter().map(|t| &t.info));
        }
        // `Format::holds` and `es::stream` list the same codecs.
        let streams = kept.into_iter().filter_map(|t| Some((t, es::stream(t)?)));
        self.tracks = streams
            .enumerate()
            .map(|(i, (info, es))| Track {
                clock: TrackClock::new(info),
                info: info.clone(),
                es,
                pid: FIRST_ES_PID + i as u16,
                cc: 0,
                end: TrackEnd::default(),
            })
            .collect();
        self.has_video = self.tracks.iter().any(|t| t.clock.video);
        Ok(left_out)
    }

    pub fn size_estimate(&self) -> u64 {
        self.position + self.out.iter().map(|b| b.len).sum::<u64>() + self.buf.len() as u64
    }

    pub fn duration(&self) -> MediaTime {
        MediaTime::new(self.duration_ms(), Timescale::MILLIS)
    }

    fn duration_ms(&self) -> i64 {
        TrackEnd::span_ms(self.tracks.iter().map(|t| &t.end))
    }

    /// The PID that carries the PCR: the video track's, else the first.
    fn pcr_pid(&self) -> u16 {
        self.tracks
            .iter()
            .find(|t| t.clock.video)
            .or(self.tracks.first())
            .map_or(NULL_PID, |t| t.pid)
    }

    pub fn push(&mut self, frame: Frame) -> PushOutcome {
        let Some(ti) = self.tracks.iter().position(|t| t.info.id == frame.track) else {
            return PushOutcome::DroppedTrack;
        };
        let t = &mut self.tracks[ti];
        let p = match self.clock.place(&mut t.clock, self.has_video, &frame) {
            Ok(p) => p,
            Err(outcome) => return outcome,
        };
        let Placed {
            dts,
            cts,
            now,
            candidate,
            video_key,
        } = p;
        let video = t.clock.video;
        let ts = t.clock.timescale;
        let dts90 = now.rescale(Timescale::HZ_90K).ticks();
        let pts = MediaTime::new(dts + i64::from(cts), ts);
        let pts90 = pts.rescale(Timescale::HZ_90K).ticks().max(0);
        let pts_ms = pts.rescale(Timescale::MILLIS).ticks().max(0);

        if self.fragment.cut_due(now, candidate, video_key) {
            self.flush_fragment();
        }
        // After the cut: the mark's totals end with the fragment they close,
        // not with this frame, the next fragment's first (which put a recovered
        // file's listed duration up to 80 ms past what it holds).
        self.tracks[ti].end.observe(pts_ms);
        self.fragment.begin(now);
        if self.buf.is_empty() {
            self.write_tables();
            self.frag_start_ms = pts_ms;
            self.frag_end_ms = pts_ms;
            self.frag_key = video_key || !self.has_video;
        }
        self.frag_end_ms = self.frag_end_ms.max(pts_ms);
        if video {
            self.totals.video_frames += 1;
        } else {
            self.totals.audio_frames += 1;
        }
        let pcr = (self.tracks[ti].pid == self.pcr_pid()).then_some(dts90.max(0) as u64);
        let t = &mut self.tracks[ti];
        // PES header, then the access unit, in the scratch buffer.
        let s = &mut self.scratch;
        s.clear();
        let with_dts = video && cts != 0;
        s.put_slice(&[0, 0, 1, t.es.stream_id, 0, 0, 0x80]);
        s.put_u8(if with_dts { 0xc0 } else { 0x80 });
        s.put_u8(if with_dts { 10 } else { 5 });
        put_timestamp(s, if with_dts { 3 } else { 2 }, pts90 + PTS_OFFSET);
        if with_dts {
            put_timestamp(s, 1, dts90.max(0) + PTS_OFFSET);
        }
        t.es.access_unit(&frame.data, frame.key, s);
        // Video PES packets may exceed the 16-bit length: 0 means "unbounded".
        let pes_len = s.len() - 6;
        if !video && pes_len <= 0xffff {
            s[4..6].copy_from_slice(&(pes_len as u16).to_be_bytes());
        }
        packetize(&mut self.buf, t.pid, &mut t.cc, s, pcr, frame.key);
        PushOutcome::Accepted
    }

    pub fn poll_write(&mut self) -> Option<WriteBatch> {
        self.out.pop_front()
    }

    /// Ends the file: the last fragment. TS needs no index and no patches.
    pub fn finish(&mut self) -> Finish {
        if self.buf.is_empty() && self.position == 0 && self.out.is_empty() {
            // No media at all: still a valid (empty) stream.
            self.write_tables();
        }
        self.flush_fragment();
        let append_offset = self.out.front().map_or(self.position, |b| b.offset);
        let append = self.out.drain(..).flat_map(|b| b.chunks).collect();
        Finish {
            append_offset,
            append,
            patches: Vec::new(),
            duration: self.duration(),
            len: self.position,
        }
    }

    /// PAT and PMT, at the start of every fragment.
    fn write_tables(&mut self) {
        let mut pat = Vec::with_capacity(16);
        pat.extend_from_slice(&[0x00, 0xb0, 0, 0x00, 0x01, 0xc1, 0, 0]);
        pat.extend_from_slice(&[0x00, 0x01]);
        pat.extend_from_slice(&(0xe000 | PMT_PID).to_be_bytes());
        section(&mut self.buf, PAT_PID, &mut self.pat_cc, pat);
        let mut pmt = vec![0x02, 0xb0, 0, 0x00, 0x01, 0xc1, 0, 0];
        pmt.extend_from_slice(&(0xe000 | self.pcr_pid()).to_be_bytes());
        pmt.extend_from_slice(&[0xf0, 0x00]);
        for t in &self.tracks {
            pmt.push(t.es.stream_type);
            pmt.extend_from_slice(&(0xe000 | t.pid).to_be_bytes());
            pmt.extend_from_slice(&(0xf000 | t.es.descriptors.len() as u16).to_be_bytes());
            pmt.extend_from_slice(&t.es.descriptors);
        }
        section(&mut self.buf, PMT_PID, &mut self.pmt_cc, pmt);
    }

    fn flush_fragment(&mut self) {
        self.fragment.reset();
        if self.buf.is_empty() {
            return;
        }
        self.totals.duration_ms = self.duration_ms();
        let len = self.buf.len() as u64 + PACKET as u64;
        put_mark(&mut self.buf, &mut self.null_cc, len, self.totals);
        let chunk = self.buf.split().freeze();
        let fragment = FragmentMeta {
            start: MediaTime::new(self.frag_start_ms, Timescale::MILLIS),
            duration: MediaTime::new(self.frag_end_ms - self.frag_start_ms, Timescale::MILLIS),
            offset: self.position,
            size: len,
            starts_with_key: self.frag_key,
        };
        self.out.push_back(WriteBatch {
            offset: self.position,
            chunks: vec![chunk],
            len,
            durable: true,
            fragment: Some(fragment),
        });
        self.position += len;
    }
}

/// A 33-bit PES timestamp with its 4-bit prefix and marker bits.
fn put_timestamp(s: &mut BytesMut, prefix: u8, ts: i64) {
    let t = (ts as u64) & 0x1_ffff_ffff;
    s.put_u8(prefix << 4 | ((t >> 29) as u8 & 0x0e) | 1);
    s.put_u16(((t >> 14) as u16 & 0xfffe) | 1);
    s.put_u16(((t << 1) as u16 & 0xfffe) | 1);
}

/// A PSI section (`s` from table_id to last_section_number; the length and CRC
/// are filled in) in one packet.
fn section(buf: &mut BytesMut, pid: u16, cc: &mut u8, mut s: Vec<u8>) {
    let len = s.len() - 3 + 4;
    s[1] = 0xb0 | (len >> 8) as u8;
    s[2] = len as u8;
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    let start = buf.len();
    buf.put_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10 | *cc]);
    *cc = (*cc + 1) & 0xf;
    buf.put_u8(0); // pointer_field
    buf.put_slice(&s);
    buf.put_bytes(0xff, start + PACKET - buf.len());
}

/// Splits one PES packet into TS packets on `pid`; the first carries the PCR
/// and the random-access flag, the last is padded with adaptation stuffing.
fn packetize(buf: &mut BytesMut, pid: u16, cc: &mut u8, pes: &[u8], pcr: Option<u64>, key: bool) {
    let mut pos = 0;
    let mut first = true;
    while pos < pes.len() {
        // Adaptation field contents after its length byte.
        let mut af = [0u8; 184];
        let mut af_len = 0usize; // bytes of `af` used
        let mut has_af = false;
        if first && (pcr.is_some() || key) {
            has_af = true;
            af[0] = if key { 0x40 } else { 0 };
            af_len = 1;
            if let Some(p) = pcr {
                af[0] |= 0x10;
                let base = p & 0x1_ffff_ffff;
                af[1..5].copy_from_slice(&((base >> 1) as u32).to_be_bytes());
                af[5] = ((base & 1) as u8) << 7 | 0x7e;
                af[6] = 0;
                af_len = 7;
            }
        }
        let remaining = pes.len() - pos;
        let mut space = 184 - if has_af { 1 + af_len } else { 0 };
        if remaining < space {
            let stuff = space - remaining;
            if !has_af {
                has_af = true;
                if stuff >= 2 {
                    af[0] = 0;
                    af[1..stuff - 1].fill(0xff);
                    af_len = stuff - 1;
                }
            } else {
                af[af_len..af_len + stuff].fill(0xff);
                af_len += stuff;
            }
            space = remaining;
        }
        let afc = if has_af { 0x30 } else { 0x10 };
        let pusi = if first { 0x40 } else { 0 };
        buf.put_slice(&[0x47, pusi | (pid >> 8) as u8, pid as u8, afc | *cc]);
        *cc = (*cc + 1) & 0xf;
        if has_af {
            buf.put_u8(af_len as u8);
            buf.put_slice(&af[..af_len]);
        }
        buf.put_slice(&pes[pos..pos + space]);
        pos += space;
        first = false;
    }
}

/// The fragment mark: a null packet whose payload says the fragment's length
/// (mark included) and the file's totals at its end.
fn put_mark(buf: &mut BytesMut, cc: &mut u8, len: u64, t: Totals) {
    let start = buf.len();
    buf.put_slice(&[0x47, (NULL_PID >> 8) as u8, NULL_PID as u8, 0x10 | *cc]);
    *cc = (*cc + 1) & 0xf;
    buf.put_slice(MARK_MAGIC);
    buf.put_u64(len);
    buf.put_i64(t.duration_ms);
    buf.put_u64(t.video_frames);
    buf.put_u64(t.audio_frames);
    buf.put_bytes(0xff, start + PACKET - buf.len());
}

/// Reads a fragment mark: (fragment length, totals).
pub(crate) fn read_mark(p: &[u8]) -> Option<(u64, Totals)> {
    let pid = u16::from_be_bytes([*p.get(1)?, *p.get(2)?]) & 0x1fff;
    if p.len() < PACKET || p[0] != 0x47 || pid != NULL_PID || p.get(4..20)? != MARK_MAGIC {
        return None;
    }
    let u = |at: usize| u64::from_be_bytes(p[at..at + 8].try_into().unwrap_or([0; 8]));
    Some((
        u(20),
        Totals {
            duration_ms: u(28) as i64,
            video_frames: u(36),
            audio_frames: u(44),
        },
    ))
}
