//! The timing rules every muxer shares, so a recording's frames land on the same
//! timeline whatever the container: one decode-time origin for all tracks (the
//! file's first frame, which keeps A/V sync exactly as the source had it), video
//! starting on a key frame, audio clocked from its sample count, decode times kept
//! strictly increasing, and fragments cut at a video key frame after half the
//! target (or at the target at the latest).

use edgerec_media::{Frame, MediaKind, MediaTime, Timescale, TrackInfo};

use crate::PushOutcome;

/// The file's clock: its origin and whether video has started.
#[derive(Debug, Default)]
pub(crate) struct FileClock {
    origin: Option<MediaTime>,
    video_started: bool,
    /// Decode times moved forward to keep them strictly increasing.
    fixes: u64,
}

/// A frame placed on its track's timeline.
pub(crate) struct Placed {
    /// Decode time, in the track's timescale, from the file's origin.
    pub dts: i64,
    pub cts: i32,
    /// `dts` as a time.
    pub now: MediaTime,
    /// Whether the frame may begin a fragment (video, or any frame of a file
    /// without video).
    pub candidate: bool,
    pub video_key: bool,
}

impl FileClock {
    /// The frame's decode time from the file's origin, or why it cannot be written
    /// yet (video before the first key frame).
    pub fn admit(&mut self, video: bool, frame: &Frame) -> Result<MediaTime, PushOutcome> {
        if video && !self.video_started {
            if !frame.key {
                return Err(PushOutcome::DroppedBeforeKey);
            }
            self.video_started = true;
        }
        let origin = *self.origin.get_or_insert(frame.dts);
        Ok(frame.dts.saturating_sub(origin))
    }

    /// Places `frame` on `track`'s timeline (see [`FileClock::admit`] and
    /// [`TrackClock::place`]).
    pub fn place(
        &mut self,
        track: &mut TrackClock,
        has_video: bool,
        frame: &Frame,
    ) -> Result<Placed, PushOutcome> {
        let rel = self.admit(track.video, frame)?;
        let cts = track.cts(frame);
        let (dts, fixed) = track.place(rel);
        self.fixes += u64::from(fixed);
        Ok(Placed {
            dts,
            cts,
            now: MediaTime::new(dts, track.timescale),
            candidate: !has_video || track.video,
            video_key: track.video && frame.key,
        })
    }

    /// Timestamps moved forward to keep decode order strictly increasing.
    pub fn fixes(&self) -> u64 {
        self.fixes
    }

    /// Time of `frame` on this file's clock, or `None` before the first frame.
    pub fn position_of(&self, frame: &Frame) -> Option<MediaTime> {
        Some(frame.dts.saturating_sub(self.origin?))
    }
}

/// One track's decode clock in its own timescale.
#[derive(Debug)]
pub(crate) struct TrackClock {
    pub timescale: Timescale,
    pub video: bool,
    pub samples_per_frame: Option<u32>,
    last_dts: Option<i64>,
    next_audio_dts: Option<i64>,
}

impl TrackClock {
    pub fn new(info: &TrackInfo) -> TrackClock {
        TrackClock {
            timescale: info.media_timescale(),
            video: info.kind() == MediaKind::Video,
            samples_per_frame: info.audio().and_then(|a| a.samples_per_frame),
            last_dts: None,
            next_audio_dts: None,
        }
    }

    /// Places a decode time (from the file's origin) on this track: audio snapped
    /// to its sample count (source timestamps in whole milliseconds jitter by a
    /// tick or two; a real gap, over one frame, is kept), then made strictly
    /// increasing. Returns the ticks and whether the time had to be moved forward.
    pub fn place(&mut self, rel: MediaTime) -> (i64, bool) {
        let mut dts = rel.rescale(self.timescale).ticks().max(0);
        if let (Some(spf), Some(expected)) = (self.samples_per_frame, self.next_audio_dts) {
            if (dts - expected).abs() < spf as i64 {
                dts = expected;
            }
        }
        let mut fixed = false;
        if let Some(last) = self.last_dts {
            if dts <= last {
                dts = last + 1;
                fixed = true;
            }
        }
        self.last_dts = Some(dts);
        if let Some(spf) = self.samples_per_frame {
            self.next_audio_dts = Some(dts + spf as i64);
        }
        (dts, fixed)
    }

    /// Composition offset of `frame` in this track's ticks.
    pub fn cts(&self, frame: &Frame) -> i32 {
        (frame.pts.rescale(self.timescale).ticks() - frame.dts.rescale(self.timescale).ticks())
            .clamp(i32::MIN as i64, i32::MAX as i64) as i32
    }

    /// Duration of a last frame whose successor never came.
    pub fn last_duration(&self, previous: u32) -> u32 {
        match (previous, self.samples_per_frame) {
            (d, _) if d > 0 => d,
            (_, Some(spf)) => spf,
            // A lone video frame: show it for one 25 fps frame.
            _ => self.timescale.hz() / 25,
        }
    }
}

/// When the fragment (fMP4 `moof`, Matroska cluster, TS durable batch) in
/// progress should end: the most media a crash can lose.
#[derive(Debug)]
pub(crate) struct FragmentClock {
    target: MediaTime,
    start: Option<MediaTime>,
}

impl FragmentClock {
    pub fn new(target: MediaTime) -> FragmentClock {
        FragmentClock {
            target,
            start: None,
        }
    }

    /// Whether a frame at `now` should begin a new fragment. `candidate`: the
    /// frame may start one (video, or any frame of a file without video).
    pub fn cut_due(&self, now: MediaTime, candidate: bool, video_key: bool) -> bool {
        let Some(start) = self.start.filter(|_| candidate) else {
            return false;
        };
        let elapsed = now.saturating_sub(start);
        let half = MediaTime::new(self.target.ticks() / 2, self.target.timescale());
        (video_key && elapsed >= half) || elapsed >= self.target
    }

    /// Marks `now` as the start of the fragment in progress if none is.
    pub fn begin(&mut self, now: MediaTime) {
        self.start.get_or_insert(now);
    }

    pub fn reset(&mut self) {
        self.start = None;
    }
}

/// The end of a track, from its frames' timestamps (ms) in file order: the
/// latest plus one frame's duration (Matroska blocks and TS PES packets carry
/// none). Finalize and recovery reckon it the same way.
///
/// A frame's duration is the smallest forward step among the last
/// [`STEPS`] from one frame to the next. Not the last step: with B-frames the
/// timestamps in file (decode) order jump forward by two or three frames at
/// each reference frame, and a file cut there overstated its end by 80 ms
/// (the CI flake of `kill_9_mid_feed_recovers_a_ts_file`). A window, not the
/// smallest ever, so one odd timestamp ages out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackEnd {
    earliest: Option<i64>,
    latest: Option<i64>,
    previous: Option<i64>,
    steps: [i64; STEPS],
    next_step: usize,
    pub blocks: u64,
}

/// Forward steps remembered per track (see [`TrackEnd`]).
const STEPS: usize = 8;

impl TrackEnd {
    pub fn observe(&mut self, ms: i64) {
        if let Some(p) = self.previous {
            if ms > p {
                // Saturating: timestamps come from files being recovered, so any
                // i64 may turn up (a fuzz find: i64::MIN then a positive one).
                self.steps[self.next_step] = ms.saturating_sub(p);
                self.next_step = (self.next_step + 1) % STEPS;
            }
        }
        self.previous = Some(ms);
        self.latest = Some(self.latest.map_or(ms, |l| l.max(ms)));
        self.earliest = Some(self.earliest.map_or(ms, |e| e.min(ms)));
        self.blocks += 1;
    }

    pub fn end(&self) -> Option<i64> {
        let step = self
            .steps
            .iter()
            .copied()
            .filter(|&s| s > 0)
            .min()
            .unwrap_or(0);
        self.latest.map(|l| l.saturating_add(step))
    }

    /// The presentation span of several tracks: from the earliest timestamp of
    /// any to the latest end (what ffprobe reports for a transport stream).
    pub fn span_ms<'a>(ends: impl Iterator<Item = &'a TrackEnd> + Clone) -> i64 {
        let start = ends.clone().filter_map(|e| e.earliest).min().unwrap_or(0);
        let end = ends.filter_map(TrackEnd::end).max().unwrap_or(0);
        end.saturating_sub(start).max(0)
    }
}

#[cfg(test)]
mod track_end_tests {
    use super::TrackEnd;

    fn end_of(ms: &[i64]) -> Option<i64> {
        let mut end = TrackEnd::default();
        for &t in ms {
            end.observe(t);
        }
        end.end()
    }

    #[test]
    fn b_frames_in_decode_order_end_one_frame_after_the_latest() {
        // x264 at 25 fps with two B-frames, in file order: I0 P3 B1 B2 P6 B4 B5 P9,
        // the file cut right after a reference frame.
        let pts = [0, 120, 40, 80, 240, 160, 200, 360];
        assert_eq!(end_of(&pts), Some(400));
        // And cut after its B-frames.
        assert_eq!(end_of(&pts[..7]), Some(280));
    }

    #[test]
    fn a_steady_track_ends_one_step_after_its_last_frame() {
        let aac: Vec<i64> = (0..50).map(|i| i * 1024 * 1000 / 48000).collect();
        assert_eq!(end_of(&aac), Some(aac[49] + 21));
        assert_eq!(end_of(&[500]), Some(500));
        assert_eq!(end_of(&[]), None);
    }

    #[test]
    fn one_odd_step_ages_out() {
        let mut pts: Vec<i64> = vec![0, 40, 41];
        pts.extend((2..20).map(|i| i * 40 + 1));
        assert_eq!(end_of(&pts), Some(19 * 40 + 1 + 40));
    }
}
