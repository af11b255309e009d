//! One RTP session as a recorder receives it: a set of tracks, each fed the RTP
//! and RTCP datagrams of its transport, out come track descriptions, frames on
//! one clock, RTCP feedback to send and the next deadline. Sans-IO: no sockets,
//! no clock; the caller passes `now`.
//!
//! Timing: RTP timestamps are per-track with random origins. A track is put on
//! the session clock once, at its first frame, by its sender report (NTP ↔ RTP,
//! so audio and video line up as the sender captured them) or, when no sender
//! report has come within [`SYNC_WAIT`], by arrival time. The choice is made once
//! per session so tracks never mix clocks. After that a track's time is its
//! unwrapped RTP timestamp plus a fixed offset: never re-synced, so never jumps.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use edgerec_media::decode_time::DecodeTimes;
use edgerec_media::time::Unwrapper;
use edgerec_media::{Codec, Frame, MediaKind, MediaTime, Timescale, TrackId, TrackInfo};

use crate::depacketize::{aac::Aac, g711, h264::H264, opus, DepacketizeError, Depacketizer, Unit};
use crate::jitter::JitterBuffer;
use crate::packet::RtpPacket;
use crate::rtcp::{self, ReportBlock, SenderReport};
use crate::srtp::{Decryptor, SrtpKey};

/// How long a session waits for sender reports before it goes by arrival time.
pub const SYNC_WAIT: Duration = Duration::from_millis(700);
/// Receiver reports, per track.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Key frame requests, at most this often.
const PLI_INTERVAL: Duration = Duration::from_millis(500);
/// Frames held per track while the clock is being chosen.
const MAX_PENDING: usize = 256;

/// What a track is expected to carry (from an SDP or the API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackSpec {
    pub codec: Codec,
    pub payload_type: u8,
    pub clock_rate: u32,
    pub channels: Option<u8>,
    /// The SDP's `a=fmtp` value for this payload type.
    pub fmtp: Option<String>,
    /// Accept only this SSRC; otherwise the first one seen (and a new one replaces it
    /// when the sender restarts).
    pub ssrc: Option<u32>,
}

/// Which RTCP feedback the sender understands (RFC 4585 `a=rtcp-fb`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Feedback {
    pub nack: bool,
    pub pli: bool,
}

#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// How long a hole is waited for (0 for TCP, where nothing reorders).
    pub jitter_delay: Duration,
    pub feedback: Feedback,
    pub srtp: Option<SrtpKey>,
    /// Our SSRC in the RTCP we send.
    pub local_ssrc: u32,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            jitter_delay: Duration::from_millis(200),
            feedback: Feedback::default(),
            srtp: None,
            local_ssrc: 0x6564_6772, // "edgr"
        }
    }
}

#[derive(Debug)]
pub enum Event {
    /// A track is described or its description changed.
    Track(TrackInfo),
    Frame(Frame),
    /// Something was dropped; the session goes on. `track` is the index in the
    /// specs; the caller logs `reason` with its connection.
    Dropped {
        track: usize,
        reason: String,
    },
    /// The sender said BYE on this track.
    Bye {
        track: usize,
    },
}

/// RTCP to send back on a track's transport.
#[derive(Debug)]
pub struct Transmit {
    pub track: usize,
    pub data: Bytes,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub packets_received: u64,
    pub packets_lost: u64,
    pub packets_reordered: u64,
    /// Damaged or undescribable access units, malformed or undecryptable packets.
    pub frames_dropped: u64,
    /// Restarted senders (new SSRC or a sequence jump).
    pub discontinuities: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clock {
    Undecided,
    /// Sender reports; `anchor` maps arrival to NTP for tracks without their own.
    Ntp {
        anchor_ntp_ns: i128,
        anchor_at: Instant,
    },
    Arrival,
}

struct Track {
    spec: TrackSpec,
    id: TrackId,
    kind: MediaKind,
    ssrc: Option<u32>,
    jitter: JitterBuffer,
    depack: Box<dyn Depacketizer>,
    /// Timestamp of the access unit being assembled, and whether it lost a packet.
    unit_ts: Option<u32>,
    damaged: bool,
    units: Vec<Unit>,
    ts: Unwrapper,
    described: bool,
    seen_key: bool,
    decode: Option<DecodeTimes>,
    /// Ticks added to the unwrapped RTP timestamp: session time in track ticks.
    offset: Option<i64>,
    /// Units waiting for the clock: (unwrapped ts, arrival, unit).
    pending: VecDeque<(i64, Instant, Unit)>,
    first_packet_at: Option<Instant>,
    sender_report: Option<(SenderReport, Instant)>,
    decrypt: Option<Decryptor>,
    next_report: Option<Instant>,
    want_key: bool,
    last_pli: Option<Instant>,
}

pub struct RtpSession {
    tracks: Vec<Track>,
    options: SessionOptions,
    clock: Clock,
    /// Session time zero, in ns on the chosen clock.
    origin_ns: Option<i128>,
    epoch: Option<Instant>,
    events: VecDeque<Event>,
    transmits: VecDeque<Transmit>,
    stats: SessionStats,
}

/// A track spec no depacketizer here can take.
#[derive(Debug, thiserror::Error)]
#[error("track {track} ({codec:?}): {reason}")]
pub struct SpecError {
    pub track: usize,
    pub codec: Codec,
    pub reason: String,
}

fn depacketizer(spec: &TrackSpec) -> Result<Box<dyn Depacketizer>, String> {
    let fmtp = spec.fmtp.as_deref();
    let e = |e: DepacketizeError| e.to_string();
    Ok(match spec.codec {
        Codec::H264 => Box::new(H264::new(fmtp).map_err(e)?),
        Codec::Opus => Box::new(opus::depacketizer(spec.channels.unwrap_or(2))),
        Codec::Aac => Box::new(Aac::new(fmtp).map_err(e)?),
        Codec::Pcma | Codec::Pcmu => {
            Box::new(g711::depacketizer(spec.codec, spec.channels.unwrap_or(1)))
        }
        other => return Err(format!("{} over RTP is not supported yet", other.name())),
    })
}

impl RtpSession {
    /// Track `i` of `specs` becomes `TrackId(i + 1)`.
    pub fn new(specs: Vec<TrackSpec>, options: SessionOptions) -> Result<RtpSession, SpecError> {
        let mut tracks = Vec::with_capacity(specs.len());
        for (i, spec) in specs.into_iter().enumerate() {
            let err = |reason: String| SpecError {
                track: i,
                codec: spec.codec,
                reason,
            };
            if spec.clock_rate == 0 {
                return Err(err("clock rate 0".into()));
            }
            let depack = depacketizer(&spec).map_err(err)?;
            let decrypt = match &options.srtp {
                Some(k) => Some(Decryptor::new(k).map_err(err)?),
                None => None,
            };
            let kind = spec.codec.kind();
            tracks.push(Track {
                id: TrackId(i as u32 + 1),
                kind,
                ssrc: spec.ssrc,
                jitter: JitterBuffer::new(options.jitter_delay, 512),
                depack,
                unit_ts: None,
                damaged: false,
                units: Vec::new(),
                ts: Unwrapper::new(32),
                described: false,
                seen_key: false,
                decode: (kind == MediaKind::Video).then(DecodeTimes::new),
                offset: None,
                pending: VecDeque::new(),
                first_packet_at: None,
                sender_report: None,
                decrypt,
                next_report: None,
                want_key: false,
                last_pli: None,
                spec,
            });
        }
        Ok(RtpSession {
            tracks,
            options,
            clock: Clock::Undecided,
            origin_ns: None,
            epoch: None,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            stats: SessionStats::default(),
        })
    }

    pub fn stats(&self) -> SessionStats {
        let mut s = self.stats;
        for t in &self.tracks {
            let j = t.jitter.stats();
            s.packets_received += j.received;
            s.packets_lost += j.lost;
            s.packets_reordered += j.reordered;
            s.discontinuities += j.resyncs;
        }
        s
    }

    pub fn track_count(&self) -> usize {
        self.tracks.len()
    }

    fn dropped(&mut self, track: usize, reason: String) {
        self.stats.frames_dropped += 1;
        self.events.push_back(Event::Dropped { track, reason });
    }

    /// An RTP (or SRTP) datagram that arrived on track `track`'s transport.
    pub fn handle_rtp(&mut self, track: usize, datagram: Bytes, now: Instant) {
        let Some(t) = self.tracks.get_mut(track) else {
            return;
        };
        let datagram = match &mut t.decrypt {
            Some(d) => match d.rtp(&datagram) {
                Ok(p) => p,
                Err(e) => return self.dropped(track, e),
            },
            None => datagram,
        };
        let p = match RtpPacket::parse(datagram) {
            Ok(p) => p,
            Err(e) => return self.dropped(track, e.to_string()),
        };
        if p.payload_type != t.spec.payload_type {
            let reason = format!(
                "payload type {} where {} was negotiated",
                p.payload_type, t.spec.payload_type
            );
            return self.dropped(track, reason);
        }
        match (t.spec.ssrc, t.ssrc) {
            (Some(want), _) if want != p.ssrc => {
                let reason = format!("SSRC {:#010x}, expected {want:#010x}", p.ssrc);
                return self.dropped(track, reason);
            }
            (None, Some(cur)) if cur != p.ssrc => {
                // A restarted sender: start this track over (its description stays).
                self.stats.discontinuities += 1;
                self.restart_track(track, now);
            }
            _ => {}
        }
        let t = &mut self.tracks[track];
        t.ssrc = Some(p.ssrc);
        t.first_packet_at.get_or_insert(now);
        self.epoch.get_or_insert(now);
        t.jitter.handle_packet(p, now);
        self.drain_jitter(track, now);
        self.release(now);
        self.schedule_rtcp(now);
    }

    fn restart_track(&mut self, track: usize, now: Instant) {
        // Flush what the old sender left, then forget its numbering and clock.
        self.finish_unit(track, now);
        self.release(now);
        let t = &mut self.tracks[track];
        t.jitter = JitterBuffer::new(self.options.jitter_delay, 512);
        t.ts = Unwrapper::new(32);
        t.unit_ts = None;
        t.offset = None;
        t.sender_report = None;
        t.first_packet_at = None;
        t.depack.reset();
        if let Some(d) = &mut t.decode {
            while let Some(f) = d.pop_end() {
                self.events.push_back(Event::Frame(f));
            }
        }
    }

    /// An RTCP (or SRTCP) datagram that arrived on track `track`'s transport.
    pub fn handle_rtcp(&mut self, track: usize, datagram: &[u8], now: Instant) {
        let Some(t) = self.tracks.get_mut(track) else {
            return;
        };
        let plain;
        let data = match &mut t.decrypt {
            Some(d) => match d.rtcp(datagram) {
                Ok(p) => {
                    plain = p;
                    &plain[..]
                }
                Err(e) => return self.dropped(track, e),
            },
            None => datagram,
        };
        let c = match rtcp::parse(data) {
            Ok(c) => c,
            Err(e) => return self.dropped(track, e),
        };
        for sr in c.sender_reports {
            if t.ssrc.is_none_or(|s| s == sr.ssrc) {
                t.sender_report = Some((sr, now));
            }
        }
        if c.bye.iter().any(|b| t.ssrc == Some(*b)) {
            self.finish_unit(track, now);
            self.events.push_back(Event::Bye { track });
        }
        self.release(now);
    }

    /// Asks the senders of video tracks for a key frame (a PLI with the next
    /// RTCP, if the sender takes PLI), until one comes.
    pub fn request_key_frame(&mut self) {
        for t in &mut self.tracks {
            t.want_key |= t.kind == MediaKind::Video;
        }
    }

    /// Gives up on holes whose time has come, sends due RTCP.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.tracks.len() {
            self.drain_jitter(i, now);
        }
        self.release(now);
        self.schedule_rtcp(now);
    }

    /// The next time [`Self::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for t in &self.tracks {
            at(t.jitter.poll_timeout());
            at(t.next_report);
            if t.offset.is_none() && !t.pending.is_empty() {
                at(t.first_packet_at.map(|f| f + SYNC_WAIT));
            }
        }
        next
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Ends the session: the frames still held come out.
    pub fn handle_end(&mut self, now: Instant) {
        for i in 0..self.tracks.len() {
            let far = now + Duration::from_secs(3600);
            self.drain_jitter(i, far);
            self.finish_unit(i, now);
        }
        // Whatever still waits for a clock gets one now.
        if self.clock == Clock::Undecided {
            self.decide_clock(true);
        }
        self.release_forced();
        for t in &mut self.tracks {
            if let Some(d) = &mut t.decode {
                while let Some(f) = d.pop_end() {
                    self.events.push_back(Event::Frame(f));
                }
            }
        }
    }

    fn drain_jitter(&mut self, track: usize, now: Instant) {
        while let Some(r) = self.tracks[track].jitter.poll_packet(now) {
            let t = &mut self.tracks[track];
            if r.gap {
                // The unit in progress lost packets; so may the next one's start.
                if t.unit_ts.is_some_and(|ts| ts != r.packet.timestamp) {
                    t.depack.reset();
                    t.unit_ts = None;
                    t.damaged = false;
                    self.dropped(track, "packets lost before the end of a frame".into());
                }
                let t = &mut self.tracks[track];
                if t.unit_ts.is_none() {
                    t.unit_ts = Some(r.packet.timestamp);
                    t.damaged = t.kind == MediaKind::Video;
                } else {
                    t.damaged = true;
                }
                if t.kind == MediaKind::Video {
                    t.want_key = true;
                }
            }
            let t = &mut self.tracks[track];
            if t.unit_ts.is_some_and(|ts| ts != r.packet.timestamp) {
                self.finish_unit(track, now);
            }
            let t = &mut self.tracks[track];
            t.unit_ts = Some(r.packet.timestamp);
            if !t.damaged {
                if let Err(e) = t.depack.push(&r.packet.payload) {
                    t.damaged = true;
                    t.depack.reset();
                    let reason = format!("seq {}: {e}", r.packet.sequence);
                    self.dropped(track, reason);
                }
            }
            let t = &self.tracks[track];
            if t.kind == MediaKind::Audio || r.packet.marker {
                self.finish_unit(track, now);
            }
        }
    }

    /// Completes the access unit in progress (if undamaged) into pending units.
    fn finish_unit(&mut self, track: usize, now: Instant) {
        let t = &mut self.tracks[track];
        let Some(ts) = t.unit_ts.take() else {
            return;
        };
        if std::mem::take(&mut t.damaged) {
            t.depack.reset();
            self.dropped(track, "frame damaged by packet loss".into());
            return;
        }
        let mut units = std::mem::take(&mut t.units);
        if let Err(e) = t.depack.finish(&mut units) {
            units.clear();
            t.units = units;
            return self.dropped(track, e.to_string());
        }
        if let Some(d) = t.depack.take_description() {
            t.described = true;
            let info = TrackInfo {
                id: t.id,
                codec: d.codec,
                params: d.params,
                config: d.config,
                codec_string: d.codec_string,
            };
            // Frames of the old description go first.
            if let Some(dt) = &mut t.decode {
                while let Some(f) = dt.pop_end() {
                    self.events.push_back(Event::Frame(f));
                }
            }
            self.events.push_back(Event::Track(info));
        }
        let t = &mut self.tracks[track];
        let ext = t.ts.unwrap(u64::from(ts));
        let mut dropped = 0;
        for u in units.drain(..) {
            let usable = t.described && (t.kind == MediaKind::Audio || t.seen_key || u.key);
            if !usable {
                t.want_key = t.kind == MediaKind::Video;
                dropped += 1;
                continue;
            }
            if u.key {
                t.seen_key = true;
                t.want_key = false;
            }
            if t.pending.len() >= MAX_PENDING {
                t.pending.pop_front();
                dropped += 1;
            }
            t.pending.push_back((ext + i64::from(u.offset), now, u));
        }
        t.units = units;
        for _ in 0..dropped {
            self.dropped(
                track,
                "frame before the track's parameters or first key frame".into(),
            );
        }
    }

    fn decide_clock(&mut self, force: bool) {
        if self.clock != Clock::Undecided {
            return;
        }
        let sr = self
            .tracks
            .iter()
            .filter_map(|t| t.sender_report)
            .min_by_key(|(_, at)| *at);
        if let Some((sr, at)) = sr {
            self.clock = Clock::Ntp {
                anchor_ntp_ns: ntp_ns(sr.ntp),
                anchor_at: at,
            };
        } else if force {
            self.clock = Clock::Arrival;
        }
    }

    fn release(&mut self, now: Instant) {
        for i in 0..self.tracks.len() {
            let t = &self.tracks[i];
            if t.offset.is_none() && !t.pending.is_empty() {
                let waited = t.first_packet_at.is_some_and(|f| now >= f + SYNC_WAIT);
                let ready = t.sender_report.is_some() || waited;
                if !ready {
                    continue;
                }
                self.decide_clock(waited);
                if self.clock == Clock::Undecided {
                    continue;
                }
                self.fix_offset(i);
            }
            self.emit(i);
        }
    }

    fn release_forced(&mut self) {
        for i in 0..self.tracks.len() {
            if self.tracks[i].offset.is_none() && !self.tracks[i].pending.is_empty() {
                self.fix_offset(i);
            }
            self.emit(i);
        }
    }

    /// Puts track `i` on the session clock by its first pending unit.
    fn fix_offset(&mut self, i: usize) {
        let epoch = self.epoch;
        let t = &mut self.tracks[i];
        let Some(&(ext, arrived, _)) = t.pending.front() else {
            return;
        };
        let rate = i128::from(t.spec.clock_rate);
        let wall_ns: i128 = match (self.clock, t.sender_report) {
            (Clock::Ntp { .. }, Some((sr, _))) => {
                // Ticks since the report: a wrapping 32-bit difference.
                let d = i128::from((ext as u32).wrapping_sub(sr.rtp_timestamp) as i32);
                ntp_ns(sr.ntp) + d * 1_000_000_000 / rate
            }
            (
                Clock::Ntp {
                    anchor_ntp_ns,
                    anchor_at,
                },
                None,
            ) => anchor_ntp_ns + signed_ns(arrived, anchor_at),
            _ => signed_ns(arrived, epoch.unwrap_or(arrived)),
        };
        let origin = *self.origin_ns.get_or_insert(wall_ns);
        let rel_ticks = ((wall_ns - origin) * rate / 1_000_000_000) as i64;
        t.offset = Some(rel_ticks - ext);
    }

    fn emit(&mut self, i: usize) {
        let t = &mut self.tracks[i];
        let Some(offset) = t.offset else {
            return;
        };
        let Some(scale) = Timescale::new(t.spec.clock_rate) else {
            return;
        };
        while let Some((ext, _, u)) = t.pending.pop_front() {
            let at = MediaTime::new(ext + offset, scale);
            let f = Frame {
                track: t.id,
                dts: at,
                pts: at,
                key: u.key,
                data: u.data,
            };
            match &mut t.decode {
                Some(d) => {
                    d.push(f);
                    while let Some(f) = d.pop() {
                        self.events.push_back(Event::Frame(f));
                    }
                }
                None => self.events.push_back(Event::Frame(f)),
            }
        }
    }

    fn schedule_rtcp(&mut self, now: Instant) {
        let local = self.options.local_ssrc;
        let fb = self.options.feedback;
        for (i, t) in self.tracks.iter_mut().enumerate() {
            let Some(ssrc) = t.ssrc else {
                continue;
            };
            let mut b = BytesMut::new();
            if t.next_report.is_none_or(|n| now >= n) {
                t.next_report = Some(now + REPORT_INTERVAL);
                let j = t.jitter.stats();
                let (last_sr, dlsr) = match t.sender_report {
                    Some((sr, at)) => (
                        (sr.ntp >> 16) as u32,
                        (now.saturating_duration_since(at).as_secs_f64() * 65536.0) as u32,
                    ),
                    None => (0, 0),
                };
                rtcp::receiver_report(
                    &mut b,
                    local,
                    &ReportBlock {
                        ssrc,
                        fraction_lost: 0,
                        cumulative_lost: j.lost.min(i32::MAX as u64) as i32,
                        highest_sequence: t.jitter.highest().unwrap_or(0) as u32,
                        jitter: 0,
                        last_sr,
                        delay_since_last_sr: dlsr,
                    },
                );
            }
            let missing = t.jitter.take_missing();
            if fb.nack && !missing.is_empty() {
                rtcp::nack(&mut b, local, ssrc, &missing);
            }
            if fb.pli && t.want_key && t.last_pli.is_none_or(|l| now >= l + PLI_INTERVAL) {
                t.last_pli = Some(now);
                rtcp::pli(&mut b, local, ssrc);
            }
            if !b.is_empty() {
                self.transmits.push_back(Transmit {
                    track: i,
                    data: b.freeze(),
                });
            }
        }
    }
}

/// NTP 32.32 fixed point to nanoseconds.
fn ntp_ns(ntp: u64) -> i128 {
    (i128::from(ntp) * 1_000_000_000) >> 32
}

fn signed_ns(a: Instant, b: Instant) -> i128 {
    if a >= b {
        (a - b).as_nanos() as i128
    } else {
        -((b - a).as_nanos() as i128)
    }
}
