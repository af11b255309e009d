//! The Matroska/WebM muxer: frames in, clusters out.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use edgerec_media::{Frame, MediaTime, Timescale, TrackInfo};

use super::ebml::{self, id, Writer};
use super::layout::{self, Cue, Layout, TrackEnd};
use super::DocType;
use crate::timeline::{FileClock, FragmentClock, Placed, TrackClock};
use crate::{
    admit_tracks, same_tracks, Finish, FragmentMeta, PushOutcome, TracksFixed, Unsupported,
    WriteBatch,
};

#[derive(Clone, Copy, Debug)]
pub struct MkvConfig {
    pub doc: DocType,
    /// A cluster ends at the first video key frame after half of this, or at this
    /// duration at the latest: the most media a crash can lose.
    pub fragment_target: MediaTime,
    /// Pad every cluster with a Void element so it ends on a multiple of this
    /// many bytes (for O_DIRECT writes). `None`: no padding.
    pub alignment: Option<u32>,
    /// Creation time (DateUTC), in seconds since the Unix epoch.
    pub creation_unix_secs: u64,
}

impl Default for MkvConfig {
    fn default() -> Self {
        MkvConfig {
            doc: DocType::Matroska,
            fragment_target: MediaTime::new(1000, Timescale::MILLIS),
            alignment: None,
            creation_unix_secs: 0,
        }
    }
}

struct Track {
    info: TrackInfo,
    number: u64,
    clock: TrackClock,
    end: TrackEnd,
    /// The last decode time written, in milliseconds.
    last_dts_ms: Option<i64>,
}

impl Track {
    fn new(info: TrackInfo, number: u64) -> Track {
        Track {
            clock: TrackClock::new(&info),
            info,
            number,
            end: TrackEnd::default(),
            last_dts_ms: None,
        }
    }
}

/// The cluster being built: block headers in one buffer, payloads as they came.
struct Cluster {
    /// Cluster timestamp (ms from the file's origin).
    time: i64,
    /// Block headers back to back; `blocks` says where each ends.
    heads: BytesMut,
    blocks: Vec<(usize, Bytes)>,
    data_len: u64,
    starts_with_key: bool,
    /// Track whose key frame starts the cluster (for its cue).
    cue_track: Option<u64>,
    end: i64,
    /// Earliest presentation time in the cluster.
    min_pts: i64,
}

/// Muxes one file. See the module docs of [`crate::mkv`].
pub struct MkvMuxer {
    config: MkvConfig,
    tracks: Vec<Track>,
    clock: FileClock,
    has_video: bool,
    fragment: FragmentClock,
    layout: Option<Layout>,
    /// Subtracted from every timestamp so the file's earliest presented frame
    /// is at 0 (as ffmpeg's Matroska muxer does): the first cluster's earliest
    /// presentation time.
    shift: Option<i64>,
    cluster: Option<Cluster>,
    cues: Vec<Cue>,
    position: u64,
    out: VecDeque<WriteBatch>,
    pending_bytes: u64,
}

impl MkvMuxer {
    /// A muxer for `tracks`; tracks whose codec the doc type cannot hold are left
    /// out and returned, so the caller can say so.
    pub fn new(tracks: &[TrackInfo], config: MkvConfig) -> (MkvMuxer, Vec<Unsupported>) {
        let mut m = MkvMuxer {
            config,
            tracks: Vec::new(),
            clock: FileClock::default(),
            has_video: false,
            fragment: FragmentClock::new(config.fragment_target),
            layout: None,
            shift: None,
            cluster: None,
            cues: Vec::new(),
            position: 0,
            out: VecDeque::new(),
            pending_bytes: 0,
        };
        let left_out = m.update_tracks(tracks).unwrap_or_default();
        (m, left_out)
    }

    /// Adopts a new track set while the header is not written yet; afterwards
    /// [`TracksFixed`] unless the set is the same.
    pub fn update_tracks(&mut self, tracks: &[TrackInfo]) -> Result<Vec<Unsupported>, TracksFixed> {
        let (kept, left_out) = admit_tracks(tracks, self.config.doc.format());
        if self.layout.is_some() || self.cluster.is_some() {
            return same_tracks(&kept, self.tracks.iter().map(|t| &t.info));
        }
        self.tracks = kept
            .into_iter()
            .enumerate()
            .map(|(i, t)| Track::new(t.clone(), i as u64 + 1))
            .collect();
        self.has_video = self.tracks.iter().any(|t| t.clock.video);
        Ok(left_out)
    }

    /// Bytes emitted so far plus frame bytes waiting for their cluster.
    pub fn size_estimate(&self) -> u64 {
        self.position + self.out.iter().map(|b| b.len).sum::<u64>() + self.pending_bytes
    }

    /// Media duration so far (end of the longest track, from the first
    /// presented frame).
    pub fn duration(&self) -> MediaTime {
        let end = layout::duration_ms(self.tracks.iter().map(|t| &t.end));
        MediaTime::new((end - self.shift()).max(0), Timescale::MILLIS)
    }

    fn shift(&self) -> i64 {
        self.shift
            .or(self.cluster.as_ref().map(|c| c.min_pts))
            .unwrap_or(0)
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
        let ts = t.clock.timescale;
        // Matroska counts in milliseconds: decode times the timeline keeps
        // strictly increasing in the track's own timescale (a frame moved one
        // tick forward) can still share a millisecond, which ffmpeg rejects as
        // non-monotonic. Here they are kept apart by a millisecond.
        let ms = |t: i64| MediaTime::new(t, ts).rescale(Timescale::MILLIS).ticks();
        let (dts_ms, offset_ms) = (ms(dts), ms(dts + i64::from(cts)) - ms(dts));
        let dts_ms = match t.last_dts_ms {
            Some(last) if dts_ms <= last => last + 1,
            _ => dts_ms,
        };
        t.last_dts_ms = Some(dts_ms);
        let pts = (dts_ms + offset_ms).max(0);
        let number = t.number;
        t.end.observe(pts);

        let out_of_range = self
            .cluster
            .as_ref()
            .is_some_and(|c| i16::try_from(pts - c.time).is_err());
        if self.fragment.cut_due(now, candidate, video_key) || out_of_range {
            self.flush_cluster();
        }
        self.fragment.begin(now);
        let c = self.cluster.get_or_insert_with(|| Cluster {
            time: pts,
            heads: BytesMut::new(),
            blocks: Vec::new(),
            data_len: 0,
            starts_with_key: video_key || !self.has_video,
            cue_track: (video_key || !self.has_video).then_some(number),
            end: pts,
            min_pts: pts,
        });
        c.min_pts = c.min_pts.min(pts);
        // SimpleBlock: track number, timestamp relative to the cluster, flags
        // (keyframe; every audio frame is one).
        let len = frame.data.len() as u64 + 4;
        ebml::put_id(&mut c.heads, id::SIMPLE_BLOCK);
        ebml::put_size(&mut c.heads, len, ebml::size_len(len).max(4));
        c.heads.put_u8(0x80 | number as u8);
        c.heads
            .put_i16(i16::try_from(pts - c.time).unwrap_or(i16::MAX));
        c.heads.put_u8(if frame.key { 0x80 } else { 0 });
        c.data_len += frame.data.len() as u64;
        c.end = c.end.max(pts);
        self.pending_bytes += frame.data.len() as u64;
        c.blocks.push((c.heads.len(), frame.data));
        PushOutcome::Accepted
    }

    /// The next batch to append, if a cluster is complete.
    pub fn poll_write(&mut self) -> Option<WriteBatch> {
        self.out.pop_front()
    }

    /// Ends the file: the last cluster and the Cues to append, then the Duration,
    /// the Cues' SeekHead entry and the Segment size as patches.
    pub fn finish(&mut self) -> Finish {
        self.flush_cluster();
        if self.layout.is_none() {
            let mut head = BytesMut::new();
            self.layout = Some(self.write_header(&mut head));
            self.emit(vec![head.freeze()], None);
        }
        let append_offset = self.out.front().map_or(self.position, |b| b.offset);
        let mut append: Vec<Bytes> = self.out.drain(..).flat_map(|b| b.chunks).collect();
        let duration = self.duration();
        let layout = self.layout.clone().unwrap_or_default();
        let (cues, patches) = layout::tail(&layout, &self.cues, self.position, duration.ticks());
        self.position += cues.len() as u64;
        append.push(cues);
        Finish {
            append_offset,
            append,
            patches,
            duration,
            len: self.position,
        }
    }

    fn write_header(&self, buf: &mut BytesMut) -> Layout {
        layout::write_header(
            buf,
            self.config.doc,
            self.tracks.iter().map(|t| (&t.info, t.number)),
            self.config.creation_unix_secs,
        )
    }

    fn flush_cluster(&mut self) {
        self.fragment.reset();
        let shift = self.shift();
        self.shift = Some(shift);
        let Some(c) = self.cluster.take() else {
            return;
        };
        let time = (c.time - shift).max(0);
        let mut head = BytesMut::new();
        if self.layout.is_none() {
            self.layout = Some(self.write_header(&mut head));
        }
        let data_start = self.layout.as_ref().map_or(0, |l| l.segment_data_start);
        let cluster_offset = self.position + head.len() as u64;
        let mut body = BytesMut::new();
        Writer::new(&mut body).uint(id::TIMESTAMP, time as u64);
        let size = body.len() as u64 + c.heads.len() as u64 + c.data_len;
        ebml::put_id(&mut head, id::CLUSTER);
        head.put_slice(&ebml::size8(size));
        head.put_slice(&body);
        let mut chunks = Vec::with_capacity(1 + 2 * c.blocks.len());
        chunks.push(head.freeze());
        let heads = c.heads.freeze();
        let mut from = 0;
        for (to, data) in c.blocks {
            chunks.push(heads.slice(from..to));
            chunks.push(data);
            from = to;
        }
        self.pending_bytes = self.pending_bytes.saturating_sub(c.data_len);
        if let Some(track) = c.cue_track {
            self.cues.push(Cue {
                time: time as u64,
                track,
                cluster: cluster_offset - data_start,
            });
        }
        let fragment = FragmentMeta {
            start: MediaTime::new(time, Timescale::MILLIS),
            duration: MediaTime::new(c.end - c.time, Timescale::MILLIS),
            offset: cluster_offset,
            size: 0,
            starts_with_key: c.starts_with_key,
        };
        self.emit(chunks, Some(fragment));
    }

    /// Queues `chunks` (padded to the alignment) as one durable batch.
    fn emit(&mut self, mut chunks: Vec<Bytes>, fragment: Option<FragmentMeta>) {
        let mut len: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        if let Some(a) = self.config.alignment.filter(|&a| a >= 16).map(u64::from) {
            let mut pad = (a - (self.position + len) % a) % a;
            if pad == 1 {
                pad += a;
            }
            if pad > 0 {
                let mut void = BytesMut::with_capacity(pad as usize);
                Writer::new(&mut void).void(pad as usize);
                chunks.push(void.freeze());
                len += pad;
            }
        }
        let fragment = fragment.map(|f| FragmentMeta {
            size: self.position + len - f.offset,
            ..f
        });
        self.out.push_back(WriteBatch {
            offset: self.position,
            chunks,
            len,
            durable: true,
            fragment,
        });
        self.position += len;
    }
}
