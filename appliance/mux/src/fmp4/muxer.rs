//! The fMP4 muxer: frames in, fragments out.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use edgerec_media::{Frame, MediaTime, Timescale, TrackInfo};

use super::finalize::{self, InitLayout, TfraEntry, TrackTotals};
use super::init::{self, InitTrack};
use super::{FLAGS_NON_SYNC, FLAGS_SYNC};
use crate::bmff::BoxWriter;
use crate::timeline::{FileClock, FragmentClock, Placed, TrackClock};
use crate::TracksFixed;
use crate::{
    admit_tracks, same_tracks, Finish, Format, FragmentMeta, PushOutcome, Unsupported, WriteBatch,
};

#[derive(Clone, Copy, Debug)]
pub struct Fmp4Config {
    /// A fragment ends at the first video key frame after half of this, or at this
    /// duration at the latest: the most media a crash can lose.
    pub fragment_target: MediaTime,
    /// Pad every fragment with a `free` box so it ends on a multiple of this many bytes
    /// (for O_DIRECT writes). `None`: no padding.
    pub alignment: Option<u32>,
    /// Creation time for mvhd/tkhd/mdhd, in seconds since the Unix epoch.
    pub creation_unix_secs: u64,
}

impl Default for Fmp4Config {
    fn default() -> Self {
        Fmp4Config {
            fragment_target: MediaTime::new(1000, Timescale::MILLIS),
            alignment: None,
            creation_unix_secs: 0,
        }
    }
}

struct Sample {
    dts: i64,
    duration: u32,
    cts: i32,
    key: bool,
    data: Bytes,
}

struct Track {
    info: TrackInfo,
    track_id: u32,
    clock: TrackClock,
    pending: Vec<Sample>,
    /// The newest sample: its duration is known when the next one arrives.
    held: Option<Sample>,
    last_duration: u32,
    /// Decode time (on the shared clock) that is zero on this track's own timeline:
    /// its first sample's, so tfdt starts at 0 and the edit list carries the offset.
    base: i64,
    totals: TrackTotals,
}

impl Track {
    fn new(info: TrackInfo, track_id: u32) -> Track {
        Track {
            track_id,
            clock: TrackClock::new(&info),
            info,
            pending: Vec::new(),
            held: None,
            last_duration: 0,
            base: 0,
            totals: TrackTotals {
                track_id,
                ..TrackTotals::default()
            },
        }
    }
}

/// Muxes one file. See the module docs of [`crate::fmp4`].
pub struct Fmp4Muxer {
    config: Fmp4Config,
    tracks: Vec<Track>,
    clock: FileClock,
    has_video: bool,
    fragment: FragmentClock,
    layout: Option<InitLayout>,
    position: u64,
    sequence: u32,
    out: VecDeque<WriteBatch>,
    /// Bytes of frames accepted but not yet emitted.
    pending_bytes: u64,
}

/// Zeros for `free` padding boxes.
static ZEROS: [u8; 4096] = [0; 4096];

impl Fmp4Muxer {
    /// A muxer for `tracks`; tracks whose codec MP4 cannot hold are left out and
    /// returned, so the caller can say so.
    pub fn new(tracks: &[TrackInfo], config: Fmp4Config) -> (Fmp4Muxer, Vec<Unsupported>) {
        let (admitted, left_out) = admit_tracks(tracks, Format::Mp4);
        let kept: Vec<Track> = admitted
            .into_iter()
            .enumerate()
            .map(|(i, t)| Track::new(t.clone(), i as u32 + 1))
            .collect();
        let has_video = kept.iter().any(|t| t.clock.video);
        let m = Fmp4Muxer {
            config,
            tracks: kept,
            clock: FileClock::default(),
            has_video,
            fragment: FragmentClock::new(config.fragment_target),
            layout: None,
            position: 0,
            sequence: 0,
            out: VecDeque::new(),
            pending_bytes: 0,
        };
        (m, left_out)
    }

    /// Adopts a new track set if the init segment is not written yet (new tracks are
    /// added, changed ones replaced). Returns the tracks left out for their codec, or
    /// [`TracksFixed`] when the file is already committed to its tracks (start a new
    /// file).
    pub fn update_tracks(&mut self, tracks: &[TrackInfo]) -> Result<Vec<Unsupported>, TracksFixed> {
        let (kept, left_out) = admit_tracks(tracks, Format::Mp4);
        if self.layout.is_some() {
            return same_tracks(&kept, self.tracks.iter().map(|t| &t.info));
        }
        for info in kept {
            match self.tracks.iter_mut().find(|t| t.info.id == info.id) {
                Some(t) if t.info == *info => {}
                Some(t) => {
                    // A changed config before anything was written: samples so far
                    // belong to the old config, so drop them with the track state.
                    self.pending_bytes -= t
                        .pending
                        .iter()
                        .chain(t.held.iter())
                        .map(|s| s.data.len() as u64)
                        .sum::<u64>();
                    let id = t.track_id;
                    *t = Track::new(info.clone(), id);
                }
                None => {
                    let id = self.tracks.len() as u32 + 1;
                    self.tracks.push(Track::new(info.clone(), id));
                }
            }
        }
        self.has_video = self.tracks.iter().any(|t| t.clock.video);
        Ok(left_out)
    }

    /// Tracks in the file.
    pub fn tracks(&self) -> impl Iterator<Item = &TrackInfo> {
        self.tracks.iter().map(|t| &t.info)
    }

    /// Bytes emitted so far plus frame bytes waiting for their fragment.
    pub fn size_estimate(&self) -> u64 {
        self.position + self.out.iter().map(|b| b.len).sum::<u64>() + self.pending_bytes
    }

    /// Media duration so far (end of the longest track, including waiting frames).
    pub fn duration(&self) -> MediaTime {
        self.tracks
            .iter()
            .map(|t| {
                let written = t.totals.end_ticks as i64 + t.base;
                let end = t
                    .held
                    .as_ref()
                    .map_or(written, |h| h.dts + h.duration.max(t.last_duration) as i64)
                    .max(written);
                MediaTime::new(end, t.clock.timescale)
            })
            .max()
            .unwrap_or(MediaTime::new(0, Timescale::MILLIS))
            .rescale(Timescale::MILLIS)
    }

    /// Time of `frame` on this file's clock (from its first frame), or `None` before
    /// the first frame.
    pub fn position_of(&self, frame: &Frame) -> Option<MediaTime> {
        self.clock.position_of(frame)
    }

    /// Timestamps adjusted to keep decode order strictly increasing.
    pub fn timestamp_fixes(&self) -> u64 {
        self.clock.fixes()
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
            candidate: cut_candidate,
            video_key,
        } = p;
        if let Some(mut h) = t.held.take() {
            h.duration = (dts - h.dts).clamp(1, u32::MAX as i64) as u32;
            t.last_duration = h.duration;
            t.pending.push(h);
        }
        if self.fragment.cut_due(now, cut_candidate, video_key) {
            self.flush_fragment();
        }
        self.fragment.begin(now);
        self.pending_bytes += frame.data.len() as u64;
        self.tracks[ti].held = Some(Sample {
            dts,
            duration: 0,
            cts,
            key: frame.key,
            data: frame.data,
        });
        PushOutcome::Accepted
    }

    /// The next batch to append, if a fragment is complete.
    pub fn poll_write(&mut self) -> Option<WriteBatch> {
        let b = self.out.pop_front()?;
        Some(b)
    }

    /// Ends the file: the last fragment (with everything not yet polled) and the
    /// `mfra` to append, and the duration patches. The muxer is spent afterwards.
    pub fn finish(&mut self) -> Finish {
        for t in &mut self.tracks {
            if let Some(mut h) = t.held.take() {
                h.duration = t.clock.last_duration(t.last_duration);
                t.pending.push(h);
            }
        }
        self.flush_fragment();
        if self.layout.is_none() {
            // No media at all: still a valid (empty) file.
            let mut buf = BytesMut::new();
            self.layout = Some(self.write_init(&mut buf));
            let len = buf.len() as u64;
            self.out.push_back(WriteBatch {
                offset: 0,
                chunks: vec![buf.freeze()],
                len,
                durable: true,
                fragment: None,
            });
            self.position = len;
        }
        let append_offset = self.out.front().map_or(self.position, |b| b.offset);
        let mut append: Vec<Bytes> = self.out.drain(..).flat_map(|b| b.chunks).collect();
        let totals: Vec<TrackTotals> = self.tracks.iter().map(|t| t.totals.clone()).collect();
        let layout = self.layout.clone().unwrap_or(InitLayout {
            mvhd_duration_at: 0,
            mehd_duration_at: None,
            tracks: Vec::new(),
        });
        let (mfra, patches, duration) = finalize::tail(&layout, &totals);
        self.position += mfra.len() as u64;
        append.push(mfra);
        Finish {
            append_offset,
            append,
            patches,
            duration,
            len: self.position,
        }
    }

    /// Writes the init segment; called with the first fragment's samples pending, so
    /// each track's first presentation time is known for its edit list.
    fn write_init(&mut self, buf: &mut BytesMut) -> InitLayout {
        for t in &mut self.tracks {
            if let Some(first) = t.pending.first().or(t.held.as_ref()) {
                t.base = first.dts;
            }
        }
        let first_pts: Vec<Option<i64>> = self
            .tracks
            .iter()
            .map(|t| {
                t.pending
                    .iter()
                    .chain(t.held.iter())
                    .map(|s| s.dts + s.cts as i64)
                    .min()
            })
            .collect();
        let in_ms = |t: &Track, ticks: i64| {
            MediaTime::new(ticks, t.clock.timescale)
                .rescale(Timescale::MILLIS)
                .ticks()
        };
        let start_ms = self
            .tracks
            .iter()
            .zip(&first_pts)
            .filter_map(|(t, p)| p.map(|p| in_ms(t, p)))
            .min()
            .unwrap_or(0);
        let tracks: Vec<InitTrack<'_>> = self
            .tracks
            .iter()
            .zip(&first_pts)
            .map(|(t, p)| InitTrack {
                info: &t.info,
                track_id: t.track_id,
                timescale: t.clock.timescale.hz(),
                edit: p.map(|p| ((in_ms(t, p) - start_ms).max(0) as u64, p - t.base)),
            })
            .collect();
        init::write(
            buf,
            &tracks,
            self.config.creation_unix_secs + super::MP4_EPOCH_OFFSET,
        )
    }

    fn flush_fragment(&mut self) {
        self.fragment.reset();
        if self.tracks.iter().all(|t| t.pending.is_empty()) {
            return;
        }
        let mut head = BytesMut::new();
        if self.layout.is_none() {
            self.layout = Some(self.write_init(&mut head));
        }
        let moof_offset = self.position + head.len() as u64;
        let moof_start = head.len();
        self.sequence += 1;

        let mut w = BoxWriter::new(&mut head);
        w.start(b"moof");
        w.start_full(b"mfhd", 0, 0);
        w.buf.put_u32(self.sequence);
        w.end();
        // (position of the trun data_offset field, byte offset of the track's data in mdat)
        let mut offsets = Vec::new();
        let mut data_len = 0u64;
        let mut traf_number = 0;
        let mut frag_start: Option<MediaTime> = None;
        let mut frag_end: Option<MediaTime> = None;
        let mut starts_with_key = true;
        for t in &mut self.tracks {
            if t.pending.is_empty() {
                continue;
            }
            traf_number += 1;
            let first = &t.pending[0];
            let last = &t.pending[t.pending.len() - 1];
            let ts = t.clock.timescale;
            let start = MediaTime::new(first.dts, ts);
            let end = MediaTime::new(last.dts + last.duration as i64, ts);
            frag_start = Some(frag_start.map_or(start, |s| s.min(start)));
            frag_end = Some(frag_end.map_or(end, |e| e.max(end)));
            if t.clock.video && !first.key {
                starts_with_key = false;
            }
            w.start(b"traf");
            let tfhd_flags = 0x02_0000 | if t.clock.video { 0 } else { 0x20 };
            w.start_full(b"tfhd", 0, tfhd_flags);
            w.buf.put_u32(t.track_id);
            if !t.clock.video {
                w.buf.put_u32(FLAGS_SYNC);
            }
            w.end();
            w.start_full(b"tfdt", 1, 0);
            w.buf.put_u64((first.dts - t.base).max(0) as u64);
            w.end();
            let trun_flags = 0x001 | 0x100 | 0x200 | if t.clock.video { 0x400 | 0x800 } else { 0 };
            w.start_full(b"trun", 1, trun_flags);
            w.buf.put_u32(t.pending.len() as u32);
            offsets.push((w.pos(), data_len));
            w.buf.put_i32(0);
            for s in &t.pending {
                w.buf.put_u32(s.duration);
                w.buf.put_u32(s.data.len() as u32);
                if t.clock.video {
                    w.buf
                        .put_u32(if s.key { FLAGS_SYNC } else { FLAGS_NON_SYNC });
                    w.buf.put_i32(s.cts);
                }
                data_len += s.data.len() as u64;
            }
            w.end();
            w.end();
            // Random access points for the mfra: the first sync sample of the fragment.
            if let Some(i) = t.pending.iter().position(|s| s.key) {
                t.totals.tfra.push(TfraEntry {
                    time: (t.pending[i].dts - t.base).max(0) as u64,
                    moof_offset,
                    traf_number,
                    sample_number: i as u32 + 1,
                });
            }
            let end = (last.dts + last.duration as i64 - t.base).max(0) as u64;
            t.totals.end_ticks = t.totals.end_ticks.max(end);
            t.totals.samples += t.pending.len() as u64;
        }
        w.end(); // moof
        let moof_len = head.len() - moof_start;
        let mdat_header = 8u64;
        for (at, data_offset) in offsets {
            let v = (moof_len as u64 + mdat_header + data_offset) as u32;
            head[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        head.put_u32((mdat_header + data_len) as u32);
        head.put_slice(b"mdat");

        let mut chunks =
            Vec::with_capacity(1 + self.tracks.iter().map(|t| t.pending.len()).sum::<usize>());
        let mut len = head.len() as u64 + data_len;
        chunks.push(head.freeze());
        for t in &mut self.tracks {
            chunks.extend(t.pending.drain(..).map(|s| s.data));
        }
        self.pending_bytes = self.pending_bytes.saturating_sub(data_len);
        if let Some(a) = self.config.alignment.filter(|&a| a >= 16) {
            let a = a as u64;
            let end = self.position + len;
            let mut pad = (a - end % a) % a;
            if pad != 0 && pad < 8 {
                pad += a;
            }
            if pad > 0 {
                let mut free = BytesMut::with_capacity(8);
                free.put_u32(pad as u32);
                free.put_slice(b"free");
                chunks.push(free.freeze());
                let mut left = pad as usize - 8;
                while left > 0 {
                    let n = left.min(ZEROS.len());
                    chunks.push(Bytes::from_static(&ZEROS[..n]));
                    left -= n;
                }
                len += pad;
            }
        }
        let ms = |t: Option<MediaTime>| {
            t.unwrap_or(MediaTime::new(0, Timescale::MILLIS))
                .rescale(Timescale::MILLIS)
        };
        let start = ms(frag_start);
        self.out.push_back(WriteBatch {
            offset: self.position,
            chunks,
            len,
            durable: true,
            fragment: Some(FragmentMeta {
                start,
                duration: ms(frag_end).saturating_sub(start),
                offset: moof_offset,
                size: len - (moof_offset - self.position),
                starts_with_key: starts_with_key || !self.has_video,
            }),
        });
        self.position += len;
    }
}
