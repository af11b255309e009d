//! The demuxer: packets → PSI and PES → tracks and frames, with damage counted.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use edgerec_media::aac::{AacError, AdtsHeader, AudioSpecificConfig};
use edgerec_media::annexb;
use edgerec_media::avc::AvcConfig;
use edgerec_media::mp3::{Mp3Error, Mp3Header};
use edgerec_media::time::Unwrapper;
use edgerec_media::{
    AudioParams, Codec, Frame, MediaTime, Timescale, TrackId, TrackInfo, TrackParams, VideoParams,
};

use crate::packet::{self, PACKET_LEN, SYNC};
use crate::pes;
use crate::psi::{self, EsInfo, Sections};

/// A forward jump of the decode clock larger than this (or any backward jump larger
/// than [`MAX_BACKWARD`]) is a discontinuity: the source restarted or looped.
const MAX_FORWARD: i64 = 10 * 90_000;
const MAX_BACKWARD: i64 = 45_000;
/// PES payloads larger than this are damage (a 4K I-frame is a few MB at most).
const MAX_PES: usize = 16 << 20;

/// What the demuxer produced or saw.
#[derive(Clone, Debug)]
pub enum Event {
    /// A new or changed track; precedes its first frame.
    Track(TrackInfo),
    Frame(Frame),
    /// Damage that was counted and skipped; `offset` is the byte offset in the
    /// input of the packet where it was seen.
    Skipped {
        reason: String,
        pid: Option<u16>,
        offset: u64,
    },
    /// The clock jumped (source restart, loop, splice); output timestamps continue
    /// smoothly from before the jump.
    Discontinuity {
        pid: u16,
        offset: u64,
    },
}

/// Damage counters, for the stream's API view and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TsStats {
    pub packets: u64,
    /// TS packets missing according to the continuity counters.
    pub packets_lost: u64,
    /// Packets flagged by transport_error_indicator.
    pub transport_errors: u64,
    /// Access units not delivered because part of them was lost or damaged.
    pub units_dropped: u64,
    pub discontinuities: u64,
    /// Times the sync byte was lost and searched for, and the bytes skipped.
    pub resyncs: u64,
    pub bytes_skipped: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EsKind {
    H264,
    H265,
    Aac,
    /// MPEG-1/2 audio (layer III and friends).
    Mp3,
    /// Opus behind its control headers (stream type 0x06, "Opus" registration).
    Opus,
}

/// One audio frame found at the start of a buffer.
struct AudioUnit {
    /// Where the coded frame starts and ends within the buffer.
    start: usize,
    end: usize,
    /// Its duration on the 90 kHz clock.
    step: i64,
    /// The track it implies (compared with the announced one).
    codec: Codec,
    params: AudioParams,
    config: Bytes,
    codec_string: String,
}

enum UnitError {
    /// The frame continues past the buffer.
    Truncated,
    Bad(String),
}

/// ADTS header → raw AAC frame.
fn adts_unit(d: &[u8]) -> Result<AudioUnit, UnitError> {
    let h = match AdtsHeader::parse(d) {
        Ok(h) => h,
        Err(AacError::Truncated) => return Err(UnitError::Truncated),
        Err(e) => return Err(UnitError::Bad(format!("ADTS: {e}"))),
    };
    if h.frame_len > d.len() {
        return Err(if h.frame_len <= 8192 {
            UnitError::Truncated
        } else {
            UnitError::Bad("ADTS frame too long".into())
        });
    }
    let asc = h.audio_specific_config();
    let cfg = AudioSpecificConfig::parse(&asc)
        .map_err(|e| UnitError::Bad(format!("ADTS config: {e}")))?;
    Ok(AudioUnit {
        start: h.header_len,
        end: h.frame_len,
        step: 1024 * 90_000 / i64::from(h.sample_rate.max(1)),
        codec: Codec::Aac,
        params: AudioParams {
            sample_rate: cfg.sample_rate,
            channels: cfg.channels.max(1),
            samples_per_frame: Some(cfg.frame_length),
        },
        config: Bytes::copy_from_slice(&asc),
        codec_string: cfg.codec_string(),
    })
}

/// MPEG audio frame (header kept: MP4 stores MP3 frames whole).
fn mp3_unit(d: &[u8]) -> Result<AudioUnit, UnitError> {
    let h = match Mp3Header::parse(d) {
        Ok(h) => h,
        Err(Mp3Error::Truncated) => return Err(UnitError::Truncated),
        Err(e) => return Err(UnitError::Bad(format!("MPEG audio: {e}"))),
    };
    let len = h
        .frame_len
        .ok_or_else(|| UnitError::Bad("free-format MPEG audio".into()))?;
    if len > d.len() {
        return Err(UnitError::Truncated);
    }
    Ok(AudioUnit {
        start: 0,
        end: len,
        step: i64::from(h.samples_per_frame) * 90_000 / i64::from(h.sample_rate.max(1)),
        codec: Codec::Mp3,
        codec_string: if h.sample_rate >= 32_000 {
            "mp4a.6b".into()
        } else {
            "mp4a.69".into()
        },
        params: AudioParams {
            sample_rate: h.sample_rate,
            channels: h.channels,
            samples_per_frame: Some(h.samples_per_frame),
        },
        config: Bytes::new(),
    })
}

/// An Opus access unit behind its control header (the "Encapsulation of Opus in
/// MPEG-2 TS" spec: 0x7FE0 | flags, the size as 0xFF-continued bytes, optional
/// trim and extension fields). Stereo is assumed (RTP-style: the
/// decoder handles mono sources in a stereo stream).
fn opus_unit(d: &[u8]) -> Result<AudioUnit, UnitError> {
    if d.len() < 2 {
        return Err(UnitError::Truncated);
    }
    if d[0] != 0x7f || d[1] & 0xe0 != 0xe0 {
        return Err(UnitError::Bad("no Opus control header".into()));
    }
    let flags = d[1];
    let mut at = 2;
    let mut size = 0usize;
    loop {
        let b = *d.get(at).ok_or(UnitError::Truncated)?;
        at += 1;
        size += usize::from(b);
        if b != 0xff {
            break;
        }
    }
    if flags & 0x10 != 0 {
        at += 2; // start trim
    }
    if flags & 0x08 != 0 {
        at += 2; // end trim
    }
    if flags & 0x04 != 0 {
        at += 1 + usize::from(*d.get(at).ok_or(UnitError::Truncated)?);
    }
    if at + size > d.len() {
        return Err(UnitError::Truncated);
    }
    let samples = edgerec_media::opus::packet_samples(&d[at..at + size])
        .ok_or_else(|| UnitError::Bad("malformed Opus packet".into()))?;
    Ok(AudioUnit {
        start: at,
        end: at + size,
        step: i64::from(samples) * 90_000 / 48_000,
        codec: Codec::Opus,
        params: AudioParams {
            sample_rate: 48_000,
            channels: 2,
            samples_per_frame: None,
        },
        config: edgerec_media::opus::dops_without_head(2),
        codec_string: "opus".into(),
    })
}

struct Es {
    pid: u16,
    kind: EsKind,
    track: TrackId,
    cc: Option<u8>,
    /// The PES packet being assembled.
    pes: BytesMut,
    in_pes: bool,
    /// Where in `pes` data went missing: bytes before it are intact.
    damaged_at: Option<usize>,
    pts: Option<u64>,
    dts: Option<u64>,
    payload_len: Option<usize>,
    unwrap: Unwrapper,
    last_out: Option<i64>,
    last_step: i64,
    /// The track as last announced.
    info: Option<TrackInfo>,
    /// H.264/H.265: the parameter sets of `info` (H.265's VPS too).
    sps: Bytes,
    pps: Vec<Bytes>,
    vps: Bytes,
    /// Audio: a frame cut by the end of its PES, completed by the next one.
    adts_carry: BytesMut,
}

impl Es {
    fn new(pid: u16, kind: EsKind, track: TrackId) -> Es {
        Es {
            pid,
            kind,
            track,
            cc: None,
            pes: BytesMut::new(),
            in_pes: false,
            damaged_at: None,
            pts: None,
            dts: None,
            payload_len: None,
            unwrap: Unwrapper::new(33),
            last_out: None,
            last_step: 3600,
            info: None,
            sps: Bytes::new(),
            vps: Bytes::new(),
            pps: Vec::new(),
            adts_carry: BytesMut::new(),
        }
    }
}

/// A sans-IO MPEG-TS demuxer for one transport stream (the first program in it).
pub struct TsDemuxer {
    /// A packet cut by the end of the last input (starts with the sync byte).
    carry: Vec<u8>,
    /// Input offset of the next byte not yet consumed.
    offset: u64,
    pat: Sections,
    pmt_pid: Option<u16>,
    pmt: Sections,
    pmt_streams: Vec<EsInfo>,
    streams: Vec<Es>,
    /// Added to every elementary stream's unwrapped DTS (moved on discontinuities,
    /// the same for all streams so they stay in sync).
    clock_offset: i64,
    next_track: u32,
    events: VecDeque<Event>,
    stats: TsStats,
    warned_unsupported: Vec<u16>,
}

impl Default for TsDemuxer {
    fn default() -> Self {
        TsDemuxer::new()
    }
}

impl TsDemuxer {
    pub fn new() -> TsDemuxer {
        TsDemuxer {
            carry: Vec::with_capacity(PACKET_LEN),
            offset: 0,
            pat: Sections::default(),
            pmt_pid: None,
            pmt: Sections::default(),
            pmt_streams: Vec::new(),
            streams: Vec::new(),
            clock_offset: 0,
            next_track: 1,
            events: VecDeque::new(),
            stats: TsStats::default(),
            warned_unsupported: Vec::new(),
        }
    }

    pub fn stats(&self) -> &TsStats {
        &self.stats
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Feeds bytes in any split.
    pub fn handle_input(&mut self, mut data: &[u8]) {
        if !self.carry.is_empty() {
            let take = (PACKET_LEN - self.carry.len()).min(data.len());
            self.carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.carry.len() < PACKET_LEN {
                return;
            }
            let p = std::mem::take(&mut self.carry);
            self.process(&p);
            self.carry = p;
            self.carry.clear();
        }
        let used = self.process(data);
        self.carry.extend_from_slice(&data[used..]);
    }

    /// Ends the input: the last PES packets are complete now.
    pub fn handle_end(&mut self) {
        for i in 0..self.streams.len() {
            self.finish_pes(i);
        }
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Consumes whole packets (searching for sync where it is lost); returns how
    /// many bytes were used. What is left is shorter than a packet and starts with
    /// the sync byte.
    fn process(&mut self, data: &[u8]) -> usize {
        let mut pos = 0;
        while pos < data.len() {
            if data[pos] == SYNC {
                let Some(p) = data.get(pos..pos + PACKET_LEN) else {
                    break;
                };
                let Ok(p) = <&[u8; PACKET_LEN]>::try_from(p) else {
                    break;
                };
                self.packet(p);
                pos += PACKET_LEN;
                self.offset += PACKET_LEN as u64;
                continue;
            }
            // Lost sync: the next sync byte that has another one a packet later
            // (or the end of the data after it).
            let found = (pos + 1..data.len())
                .find(|&i| data[i] == SYNC && data.get(i + PACKET_LEN).is_none_or(|&b| b == SYNC));
            let to = found.unwrap_or(data.len());
            let skipped = (to - pos) as u64;
            self.stats.resyncs += 1;
            self.stats.bytes_skipped += skipped;
            self.skipped(format!("lost sync: skipped {skipped} bytes"), None);
            self.offset += skipped;
            pos = to;
        }
        pos
    }

    fn skipped(&mut self, reason: String, pid: Option<u16>) {
        self.events.push_back(Event::Skipped {
            reason,
            pid,
            offset: self.offset,
        });
    }

    fn packet(&mut self, raw: &[u8; PACKET_LEN]) {
        self.stats.packets += 1;
        let Some(p) = packet::parse(raw) else {
            self.skipped("adaptation field longer than the packet".into(), None);
            return;
        };
        if p.transport_error {
            self.stats.transport_errors += 1;
            if let Some(es) = self.streams.iter_mut().find(|e| e.pid == p.pid) {
                es.damaged_at.get_or_insert(es.pes.len());
            }
            return;
        }
        if p.pid == 0 {
            for s in self.pat.push(p.unit_start, p.payload) {
                match psi::parse_pat(&s) {
                    Ok(Some(pid)) if self.pmt_pid != Some(pid) => {
                        self.pmt_pid = Some(pid);
                        self.pmt = Sections::default();
                    }
                    Ok(_) => {}
                    Err(e) => self.skipped(format!("PAT: {e:?}"), Some(0)),
                }
            }
        } else if Some(p.pid) == self.pmt_pid {
            for s in self.pmt.push(p.unit_start, p.payload) {
                match psi::parse_pmt(&s) {
                    Ok(es) => self.on_pmt(es),
                    Err(e) => self.skipped(format!("PMT: {e:?}"), Some(p.pid)),
                }
            }
        } else if let Some(i) = self.streams.iter().position(|e| e.pid == p.pid) {
            self.es_packet(i, &p);
        }
    }

    fn on_pmt(&mut self, es: Vec<EsInfo>) {
        if es == self.pmt_streams {
            return;
        }
        for e in &es {
            let kind = match e.stream_type {
                0x1b => Some(EsKind::H264),
                0x24 => Some(EsKind::H265),
                0x0f => Some(EsKind::Aac),
                0x03 | 0x04 => Some(EsKind::Mp3),
                0x06 if e.registration == Some(*b"Opus") => Some(EsKind::Opus),
                _ => None,
            };
            let Some(kind) = kind else {
                if !self.warned_unsupported.contains(&e.pid) {
                    self.warned_unsupported.push(e.pid);
                    self.skipped(
                        format!(
                            "stream type {:#04x}{} is not recorded",
                            e.stream_type,
                            e.registration
                                .map(|r| format!(" ({})", String::from_utf8_lossy(&r)))
                                .unwrap_or_default()
                        ),
                        Some(e.pid),
                    );
                }
                continue;
            };
            // A PID keeps its track across PMT versions while its codec stays.
            if self
                .streams
                .iter()
                .any(|s| s.pid == e.pid && s.kind == kind)
            {
                continue;
            }
            self.streams.retain(|s| s.pid != e.pid);
            let track = TrackId(self.next_track);
            self.next_track += 1;
            self.streams.push(Es::new(e.pid, kind, track));
        }
        self.pmt_streams = es;
    }

    fn es_packet(&mut self, i: usize, p: &packet::Packet<'_>) {
        if p.has_payload {
            let es = &mut self.streams[i];
            if let Some(last) = es.cc {
                if p.continuity == last && !p.discontinuity {
                    return; // a duplicate packet (allowed once by the standard)
                }
                let expected = (last + 1) & 0x0f;
                if p.continuity != expected && !p.discontinuity {
                    let lost = u64::from(p.continuity.wrapping_sub(expected) & 0x0f);
                    es.damaged_at.get_or_insert(es.pes.len());
                    self.stats.packets_lost += lost;
                    let pid = es.pid;
                    self.skipped(format!("continuity gap: {lost} packets lost"), Some(pid));
                }
            }
            self.streams[i].cc = Some(p.continuity);
        }
        if p.unit_start {
            self.finish_pes(i);
            match pes::parse(p.payload) {
                Ok(h) => {
                    let es = &mut self.streams[i];
                    es.pes.clear();
                    es.pes.extend_from_slice(&p.payload[h.header_len..]);
                    es.in_pes = true;
                    es.damaged_at = None;
                    es.pts = h.pts;
                    es.dts = h.dts;
                    es.payload_len = h.payload_len;
                }
                Err(e) => {
                    let pid = self.streams[i].pid;
                    self.streams[i].in_pes = false;
                    self.stats.units_dropped += 1;
                    self.skipped(format!("PES header: {e:?}"), Some(pid));
                    return;
                }
            }
        } else if self.streams[i].in_pes {
            let es = &mut self.streams[i];
            es.pes.extend_from_slice(p.payload);
            if es.pes.len() > MAX_PES {
                es.in_pes = false;
                es.pes.clear();
                let pid = es.pid;
                self.stats.units_dropped += 1;
                self.skipped(format!("PES packet over {MAX_PES} bytes"), Some(pid));
                return;
            }
        }
        let es = &self.streams[i];
        if es.in_pes && es.payload_len.is_some_and(|n| es.pes.len() >= n) {
            self.finish_pes(i);
        }
    }

    /// Delivers the PES packet being assembled on stream `i`, if any.
    fn finish_pes(&mut self, i: usize) {
        let es = &mut self.streams[i];
        if !es.in_pes {
            return;
        }
        es.in_pes = false;
        let mut data = es.pes.split().freeze();
        if let Some(n) = es.payload_len {
            data.truncate(n);
        }
        let intact = match es.damaged_at.take() {
            None => data.len(),
            // Audio frames before the damage are whole and kept; a video access
            // unit with a hole is not.
            Some(at) if !matches!(es.kind, EsKind::H264 | EsKind::H265) => {
                self.stats.units_dropped += 1;
                at.min(data.len())
            }
            Some(_) => {
                self.stats.units_dropped += 1;
                return;
            }
        };
        let intact_all = intact == data.len();
        data.truncate(intact);
        let es = &self.streams[i];
        let pid = es.pid;
        let Some(pts) = es.pts else {
            self.skipped("PES without a PTS".into(), Some(pid));
            self.stats.units_dropped += 1;
            return;
        };
        let dts = es.dts.unwrap_or(pts);
        let (dts, pts) = self.map_time(i, dts, pts);
        match self.streams[i].kind {
            EsKind::H264 => self.h264(i, data, dts, pts),
            EsKind::H265 => self.h265(i, data, dts, pts),
            EsKind::Aac => self.audio(i, data, pts, intact_all, adts_unit),
            EsKind::Mp3 => self.audio(i, data, pts, intact_all, mp3_unit),
            EsKind::Opus => self.audio(i, data, pts, intact_all, opus_unit),
        }
    }

    /// Unwraps a stream's 33-bit timestamps and maps them onto the output clock,
    /// moving the clock over discontinuities.
    fn map_time(&mut self, i: usize, dts: u64, pts: u64) -> (i64, i64) {
        let es = &mut self.streams[i];
        let unwrapped = es.unwrap.unwrap(dts);
        let mut out = unwrapped + self.clock_offset;
        if let Some(last) = es.last_out {
            let step = out - last;
            if !(-MAX_BACKWARD..=MAX_FORWARD).contains(&step) {
                // Continue after everything any stream delivered so far.
                let latest = self
                    .streams
                    .iter()
                    .filter_map(|s| s.last_out)
                    .max()
                    .unwrap_or(last);
                let es = &self.streams[i];
                self.clock_offset = latest + es.last_step - unwrapped;
                out = unwrapped + self.clock_offset;
                self.stats.discontinuities += 1;
                let pid = es.pid;
                self.events.push_back(Event::Discontinuity {
                    pid,
                    offset: self.offset,
                });
            } else if step > 0 {
                self.streams[i].last_step = step;
            }
        }
        let es = &mut self.streams[i];
        es.last_out = Some(out);
        // PTS - DTS, as a signed 33-bit difference.
        let mut cto = (pts.wrapping_sub(dts) & ((1 << 33) - 1)) as i64;
        if cto >= 1 << 32 {
            cto -= 1 << 33;
        }
        (out, out + cto)
    }

    fn h264(&mut self, i: usize, data: Bytes, dts: i64, pts: i64) {
        let es = &mut self.streams[i];
        let mut out = BytesMut::with_capacity(data.len() + 16);
        let mut key = false;
        let mut sps: Option<&[u8]> = None;
        let mut pps: Vec<&[u8]> = Vec::new();
        for nal in annexb::nal_units(&data) {
            match nal[0] & 0x1f {
                7 => sps = Some(nal),
                8 => pps.push(nal),
                // Access unit delimiters, filler: not stored in MP4 samples.
                9 | 12 => {}
                t => {
                    key |= t == 5;
                    annexb::put_length_prefixed(&mut out, nal);
                }
            }
        }
        if let Some(sps) = sps {
            let changed = es.sps[..] != *sps
                || es.pps.len() != pps.len()
                || es.pps.iter().zip(&pps).any(|(a, b)| a[..] != **b);
            if changed && !pps.is_empty() {
                match AvcConfig::from_parameter_sets(sps, &pps) {
                    Ok((record, cfg)) => {
                        es.sps = data.slice_ref(sps);
                        es.pps = pps.iter().map(|p| data.slice_ref(p)).collect();
                        let info = TrackInfo {
                            id: es.track,
                            codec: Codec::H264,
                            params: TrackParams::Video(VideoParams {
                                width: cfg.width,
                                height: cfg.height,
                            }),
                            config: record,
                            codec_string: cfg.codec_string(),
                        };
                        es.info = Some(info.clone());
                        self.events.push_back(Event::Track(info));
                    }
                    Err(e) => {
                        let pid = es.pid;
                        self.skipped(format!("H.264 parameter sets: {e}"), Some(pid));
                    }
                }
            }
        }
        let es = &self.streams[i];
        if es.info.is_none() || out.is_empty() {
            // Nothing decodable yet (no SPS/PPS seen), or only parameter sets.
            return;
        }
        self.events.push_back(Event::Frame(Frame {
            track: es.track,
            dts: MediaTime::new(dts, Timescale::HZ_90K),
            pts: MediaTime::new(pts, Timescale::HZ_90K),
            key,
            data: out.freeze(),
        }));
    }

    fn h265(&mut self, i: usize, data: Bytes, dts: i64, pts: i64) {
        use edgerec_media::hevc;
        let es = &mut self.streams[i];
        let mut out = BytesMut::with_capacity(data.len() + 16);
        let mut key = false;
        let (mut vps, mut sps): (Option<&[u8]>, Option<&[u8]>) = (None, None);
        let mut pps: Vec<&[u8]> = Vec::new();
        for nal in annexb::nal_units(&data) {
            match hevc::nal_type(nal) {
                Some(hevc::NAL_VPS) => vps = Some(nal),
                Some(hevc::NAL_SPS) => sps = Some(nal),
                Some(hevc::NAL_PPS) => pps.push(nal),
                // Access unit delimiters, end of sequence/stream, filler.
                Some(35..=38) | None => {}
                Some(t) => {
                    // IRAP pictures (BLA, IDR, CRA) are random access points.
                    key |= (16..=21).contains(&t);
                    annexb::put_length_prefixed(&mut out, nal);
                }
            }
        }
        if let (Some(vps), Some(sps)) = (vps, sps) {
            let changed = es.sps[..] != *sps
                || es.vps[..] != *vps
                || es.pps.len() != pps.len()
                || es.pps.iter().zip(&pps).any(|(a, b)| a[..] != **b);
            if changed && !pps.is_empty() {
                match hevc::config_from_parameter_sets(vps, sps, &pps) {
                    Some((record, s)) => {
                        es.vps = data.slice_ref(vps);
                        es.sps = data.slice_ref(sps);
                        es.pps = pps.iter().map(|p| data.slice_ref(p)).collect();
                        let info = TrackInfo {
                            id: es.track,
                            codec: Codec::H265,
                            params: TrackParams::Video(VideoParams {
                                width: s.width,
                                height: s.height,
                            }),
                            codec_string: edgerec_media::codec_string::hevc(&record)
                                .unwrap_or_default(),
                            config: record,
                        };
                        es.info = Some(info.clone());
                        self.events.push_back(Event::Track(info));
                    }
                    None => {
                        let pid = es.pid;
                        self.skipped("H.265 parameter sets unreadable".into(), Some(pid));
                    }
                }
            }
        }
        let es = &self.streams[i];
        if es.info.is_none() || out.is_empty() {
            return;
        }
        self.events.push_back(Event::Frame(Frame {
            track: es.track,
            dts: MediaTime::new(dts, Timescale::HZ_90K),
            pts: MediaTime::new(pts, Timescale::HZ_90K),
            key,
            data: out.freeze(),
        }));
    }

    /// Splits a PES of audio into frames with `unit`. `whole`: the PES arrived
    /// complete, so a frame cut by its end continues in the next one (after
    /// damage, the cut frame is lost instead).
    fn audio(
        &mut self,
        i: usize,
        data: Bytes,
        pts: i64,
        whole: bool,
        unit: fn(&[u8]) -> Result<AudioUnit, UnitError>,
    ) {
        let es = &mut self.streams[i];
        // A frame cut by the previous PES comes first, one frame before this PTS.
        let (data, mut carried) = if es.adts_carry.is_empty() {
            (data, false)
        } else {
            es.adts_carry.extend_from_slice(&data);
            (es.adts_carry.split().freeze(), true)
        };
        let mut pos = 0;
        let mut t = pts;
        while pos < data.len() {
            let u = match unit(&data[pos..]) {
                Ok(u) => u,
                Err(UnitError::Truncated) => {
                    if whole && data.len() - pos <= 16_384 {
                        self.streams[i].adts_carry.extend_from_slice(&data[pos..]);
                    }
                    break;
                }
                Err(UnitError::Bad(e)) => {
                    let pid = self.streams[i].pid;
                    self.stats.units_dropped += 1;
                    self.skipped(format!("{e} at PES byte {pos}"), Some(pid));
                    break;
                }
            };
            if std::mem::take(&mut carried) {
                t = pts - u.step;
            }
            let es = &mut self.streams[i];
            let changed = es.info.as_ref().is_none_or(|x| {
                x.codec != u.codec
                    || x.config != u.config
                    || x.params != TrackParams::Audio(u.params.clone())
            });
            if changed {
                let info = TrackInfo {
                    id: es.track,
                    codec: u.codec,
                    params: TrackParams::Audio(u.params.clone()),
                    config: u.config.clone(),
                    codec_string: u.codec_string.clone(),
                };
                es.info = Some(info.clone());
                self.events.push_back(Event::Track(info));
            }
            let es = &mut self.streams[i];
            // The stream's clock is where its last frame is, not where its PES began
            // (a discontinuity continues after it).
            es.last_out = Some(es.last_out.map_or(t, |l| l.max(t)));
            es.last_step = u.step;
            self.events.push_back(Event::Frame(Frame {
                track: es.track,
                dts: MediaTime::new(t, Timescale::HZ_90K),
                pts: MediaTime::new(t, Timescale::HZ_90K),
                key: true,
                data: data.slice(pos + u.start..pos + u.end),
            }));
            t += u.step;
            pos += u.end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::PACKET_LEN;

    /// `ffmpeg -f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i
    /// sine=frequency=440:sample_rate=48000 -t 1 -pix_fmt yuv420p -c:v libx264 -g 25
    /// -bf 2 -c:a aac -b:a 128k -ac 2 -f mpegts` (ffmpeg 5.1): ffprobe counts 25
    /// H.264 and 48 AAC packets.
    const FIXTURE: &[u8] = include_bytes!("../tests/fixtures/ffmpeg_h264_aac_1s.ts");

    #[derive(Default, Debug)]
    struct Out {
        tracks: Vec<TrackInfo>,
        video: Vec<Frame>,
        audio: Vec<Frame>,
        skipped: Vec<String>,
        discontinuities: usize,
    }

    fn drain(d: &mut TsDemuxer, out: &mut Out) {
        while let Some(ev) = d.poll_event() {
            match ev {
                Event::Track(t) => out.tracks.push(t),
                Event::Frame(f) if f.track == TrackId(1) => out.video.push(f),
                Event::Frame(f) => out.audio.push(f),
                Event::Skipped { reason, .. } => out.skipped.push(reason),
                Event::Discontinuity { .. } => out.discontinuities += 1,
            }
        }
    }

    fn demux_in_chunks(data: &[u8], sizes: impl Fn(usize) -> usize) -> (Out, TsStats) {
        let mut d = TsDemuxer::new();
        let mut out = Out::default();
        let (mut pos, mut i) = (0, 0);
        while pos < data.len() {
            let n = sizes(i).clamp(1, data.len() - pos);
            d.handle_input(&data[pos..pos + n]);
            drain(&mut d, &mut out);
            pos += n;
            i += 1;
        }
        d.handle_end();
        drain(&mut d, &mut out);
        (out, d.stats().clone())
    }

    fn demux(data: &[u8]) -> (Out, TsStats) {
        demux_in_chunks(data, |_| 1316)
    }

    /// The same picture with MP3 (libmp3lame 128k, 44.1 kHz) and Opus (libopus
    /// 64k, 48 kHz) audio: ffprobe counts 40 MP3 and 51 Opus packets.
    /// libx265 (B-frames, GOP 25) + AAC, 1 s: ffprobe counts 25 HEVC packets.
    #[test]
    fn h265_in_ts_gives_every_frame() {
        let file = include_bytes!("../tests/fixtures/ffmpeg_h265_aac_1s.ts");
        let (out, stats) = demux(file);
        assert!(out.skipped.is_empty(), "{:?}", out.skipped);
        assert_eq!(stats.units_dropped, 0);
        assert_eq!(out.video.len(), 25);
        let v = &out.tracks[0];
        assert_eq!(v.codec, Codec::H265);
        assert_eq!(v.video().map(|v| (v.width, v.height)), Some((320, 240)));
        assert!(
            v.codec_string.starts_with("hvc1.1.6.L"),
            "{}",
            v.codec_string
        );
        assert!(out.video[0].key);
        assert!(out.video.iter().all(|f| f.pts >= f.dts));
        assert!(
            out.video.windows(2).any(|w| w[1].pts < w[0].pts),
            "B-frames reorder"
        );
    }

    #[test]
    fn mp3_and_opus_in_ts_give_every_frame() {
        for (file, codec, frames, step, cs) in [
            (
                &include_bytes!("../tests/fixtures/ffmpeg_h264_mp3_1s.ts")[..],
                Codec::Mp3,
                40,
                2351,
                "mp4a.6b",
            ),
            (
                &include_bytes!("../tests/fixtures/ffmpeg_h264_opus_1s.ts")[..],
                Codec::Opus,
                51,
                1800,
                "opus",
            ),
        ] {
            let (whole, stats) = demux(file);
            assert!(whole.skipped.is_empty(), "{codec:?}: {:?}", whole.skipped);
            assert_eq!(stats.units_dropped, 0);
            assert_eq!(whole.video.len(), 25);
            assert_eq!(whole.audio.len(), frames, "{codec:?}");
            let a = whole.tracks.iter().find(|t| t.codec == codec).unwrap();
            assert_eq!(a.codec_string, cs);
            // Frame spacing on the 90 kHz clock (PES time stamps round to a tick).
            for w in whole.audio.windows(2) {
                let d: i64 = w[1].dts.ticks() - w[0].dts.ticks();
                assert!((d - step).abs() <= 1, "{codec:?} frame spacing {d}");
            }
            if codec == Codec::Mp3 {
                assert!(
                    whole.audio.iter().all(|f| f.data[0] == 0xff),
                    "MP3 frames start with their sync"
                );
            }
            // Any read size gives the same frames.
            let (chunked, _) = demux_in_chunks(file, |i| (i * 7919) % 977);
            assert_eq!(chunked.audio.len(), frames);
            assert!(chunked
                .audio
                .iter()
                .zip(&whole.audio)
                .all(|(a, b)| a.data == b.data && a.dts == b.dts));
        }
    }

    #[test]
    fn ffmpeg_capture_gives_every_frame() {
        let (out, stats) = demux(FIXTURE);
        assert!(out.skipped.is_empty(), "{:?}", out.skipped);
        assert_eq!(out.video.len(), 25);
        assert_eq!(out.audio.len(), 48);
        assert_eq!(out.tracks.len(), 2);
        let v = &out.tracks[0];
        assert_eq!(v.codec, Codec::H264);
        assert_eq!(v.video().map(|v| (v.width, v.height)), Some((320, 240)));
        assert!(v.codec_string.starts_with("avc1.64"));
        let a = &out.tracks[1];
        assert_eq!(a.codec, Codec::Aac);
        assert_eq!(a.codec_string, "mp4a.40.2");
        assert_eq!(
            a.audio().map(|a| (a.sample_rate, a.channels)),
            Some((48000, 2))
        );
        assert_eq!(stats.packets as usize, FIXTURE.len() / PACKET_LEN);
        assert_eq!(stats.packets_lost, 0);
        // Key frames where the GOP says, samples in MP4 form (4-byte lengths that
        // add up), decode times rising, presentation never before decode.
        assert!(out.video[0].key);
        assert_eq!(out.video.iter().filter(|f| f.key).count(), 1);
        for f in &out.video {
            let mut rest = &f.data[..];
            while !rest.is_empty() {
                let n = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                assert!(n > 0 && 4 + n <= rest.len());
                assert!(
                    !matches!(rest[4] & 0x1f, 7..=9),
                    "parameter sets stay in avcC"
                );
                rest = &rest[4 + n..];
            }
            assert!(f.pts >= f.dts);
        }
        assert!(out.video.windows(2).all(|w| w[1].dts > w[0].dts));
        // 25 fps and 1024-sample AAC frames at 48 kHz, on the 90 kHz clock.
        assert_eq!(out.video[1].dts.ticks() - out.video[0].dts.ticks(), 3600);
        assert!(out
            .audio
            .windows(2)
            .all(|w| w[1].dts.ticks() - w[0].dts.ticks() == 1920));
        // ffprobe's start times: video 1.48 s (PTS), audio 1.458667 s.
        assert_eq!(out.video[0].pts.ticks(), 133_200);
        assert_eq!(out.audio[0].pts.ticks(), 131_280);
    }

    #[test]
    fn any_split_gives_the_same_frames() {
        let (whole, _) = demux(FIXTURE);
        for seed in [1usize, 7, 188, 1000] {
            let (out, stats) = demux_in_chunks(FIXTURE, |i| (i * 7919 + seed) % 977);
            assert_eq!(stats.packets_lost, 0);
            assert_eq!(out.video.len(), whole.video.len());
            assert_eq!(out.audio.len(), whole.audio.len());
            for (a, b) in out.video.iter().zip(&whole.video) {
                assert_eq!(
                    (a.dts, a.pts, a.key, &a.data),
                    (b.dts, b.pts, b.key, &b.data)
                );
            }
        }
    }

    /// The index of the `n`th packet on `pid` in the fixture.
    fn nth_packet(pid: u16, n: usize) -> usize {
        FIXTURE
            .chunks_exact(PACKET_LEN)
            .enumerate()
            .filter(|(_, p)| (u16::from(p[1] & 0x1f) << 8 | u16::from(p[2])) == pid)
            .nth(n)
            .map(|(i, _)| i)
            .unwrap()
    }

    #[test]
    fn a_lost_packet_costs_one_frame_and_is_counted() {
        let i = nth_packet(0x100, 23); // inside the PES that starts at 22
        let mut data = FIXTURE.to_vec();
        data.drain(i * PACKET_LEN..(i + 1) * PACKET_LEN);
        let (out, stats) = demux(&data);
        assert_eq!(stats.packets_lost, 1);
        assert_eq!(stats.units_dropped, 1);
        assert_eq!(out.video.len(), 24);
        assert_eq!(out.audio.len(), 48);
        assert!(
            out.skipped[0].contains("continuity gap"),
            "{:?}",
            out.skipped
        );
    }

    #[test]
    fn garbage_between_packets_is_skipped_without_loss() {
        let i = nth_packet(0x100, 20);
        let mut data = FIXTURE.to_vec();
        let junk: Vec<u8> = (0..100u8).map(|b| b.wrapping_mul(31) | 1).collect();
        data.splice(i * PACKET_LEN..i * PACKET_LEN, junk);
        let (out, stats) = demux(&data);
        assert_eq!(stats.resyncs, 1);
        assert_eq!(stats.bytes_skipped, 100);
        assert_eq!(out.video.len(), 25);
        assert_eq!(out.audio.len(), 48);
    }

    #[test]
    fn corrupt_and_flagged_packets_are_dropped_not_fatal() {
        let mut data = FIXTURE.to_vec();
        // transport_error_indicator on one video packet.
        let i = nth_packet(0x100, 33); // inside the PES that starts at 32
        data[i * PACKET_LEN + 1] |= 0x80;
        // A PES header without its start code.
        let j = FIXTURE
            .chunks_exact(PACKET_LEN)
            .enumerate()
            .filter(|(_, p)| {
                p[1] & 0x40 != 0 && (u16::from(p[1] & 0x1f) << 8 | u16::from(p[2])) == 0x101
            })
            .nth(5)
            .map(|(i, _)| i)
            .unwrap();
        let p = &mut data[j * PACKET_LEN..(j + 1) * PACKET_LEN];
        let start = if p[3] & 0x20 != 0 {
            5 + usize::from(p[4])
        } else {
            4
        };
        p[start + 2] = 0x07;
        let (out, stats) = demux(&data);
        assert_eq!(stats.transport_errors, 1);
        assert!(stats.units_dropped >= 2);
        assert_eq!(out.video.len(), 24);
        assert!(
            out.audio.len() < 48 && out.audio.len() >= 36,
            "{} audio, {:?}",
            out.audio.len(),
            out.skipped
        );
    }

    #[test]
    fn a_restarted_source_continues_the_clock() {
        // The same second twice: timestamps jump back 1 s where the copy starts.
        let mut data = FIXTURE.to_vec();
        data.extend_from_slice(FIXTURE);
        let (out, stats) = demux(&data);
        assert!(stats.discontinuities >= 1, "{stats:?}");
        assert!(out.discontinuities >= 1);
        assert!(out.video.windows(2).all(|w| w[1].dts > w[0].dts));
        let a: Vec<i64> = out.audio.iter().map(|f| f.dts.ticks()).collect();
        assert!(a.windows(2).all(|w| w[1] > w[0]), "{a:?}");
        // At most the frame at the join is lost per track.
        assert!(
            out.video.len() >= 49 && out.audio.len() >= 95,
            "{} video, {} audio, {stats:?}",
            out.video.len(),
            out.audio.len()
        );
        // Audio and video moved by the same amount: both span two seconds.
        let span = |f: &[Frame]| f[f.len() - 1].dts.ticks() - f[0].dts.ticks();
        let (v, a) = (span(&out.video), span(&out.audio));
        assert!((v - a).abs() < 9000, "video spans {v}, audio {a}");
        assert!((v - 2 * 90_000).abs() < 9000, "video spans {v}");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            let mut data = FIXTURE[..(x as usize % FIXTURE.len())].to_vec();
            for _ in 0..50 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = x as usize % data.len().max(1);
                if let Some(b) = data.get_mut(i) {
                    *b = (x >> 32) as u8;
                }
            }
            let _ = demux_in_chunks(&data, |i| 100 + i % 300);
        }
    }
}
