//! Decode times for video whose transport carries presentation times only (RTP:
//! RTSP, WebRTC, relayed RTP), so that B-frame streams can be stored in MP4.
//!
//! Frames arrive in decode order with their presentation times. With a reorder
//! depth of at most `D` frames, the k-th frame's decode time is the (k−D)-th
//! smallest presentation time seen: that sequence rises, and never passes the
//! frame's own presentation time. The first `D` frames extrapolate backwards by
//! the frame interval. A stream without B-frames just gets a constant composition
//! offset of `D` frames, which the MP4 edit list absorbs. Costs `D` frames of
//! latency; no bitstream parsing, so it works for every codec.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::frame::Frame;
use crate::time::MediaTime;

/// Reorder depth covered: x264's default (3 B-frames, pyramid) needs 2.
pub const DEPTH: usize = 3;

#[derive(Default)]
pub struct DecodeTimes {
    /// Frames waiting for `DEPTH` successors, in decode order.
    waiting: VecDeque<Frame>,
    /// Presentation ticks seen and not yet used as a decode time.
    unused: BinaryHeap<Reverse<i64>>,
    released: usize,
    /// Decode time of the first frame and the frame interval, for the first `DEPTH`.
    lead: Option<(i64, i64)>,
    last_dts: Option<i64>,
}

impl DecodeTimes {
    pub fn new() -> DecodeTimes {
        DecodeTimes::default()
    }

    /// A frame in decode order; its `dts` is ignored (set from `pts`).
    pub fn push(&mut self, f: Frame) {
        self.unused.push(Reverse(f.pts.ticks()));
        self.waiting.push_back(f);
    }

    /// The next frame with its decode time, once it is known.
    pub fn pop(&mut self) -> Option<Frame> {
        if self.waiting.len() > DEPTH {
            self.release()
        } else {
            None
        }
    }

    /// The remaining frames, at the end of the stream.
    pub fn pop_end(&mut self) -> Option<Frame> {
        if self.waiting.is_empty() {
            None
        } else {
            self.release()
        }
    }

    fn release(&mut self) -> Option<Frame> {
        let mut f = self.waiting.pop_front()?;
        let k = self.released;
        self.released += 1;
        let dts = if k < DEPTH {
            let (first, step) = *self.lead.get_or_insert_with(|| {
                // The smallest presentation times of the first DEPTH+1 frames.
                let mut v: Vec<i64> = self.unused.iter().map(|r| r.0).collect();
                v.sort_unstable();
                v.truncate(DEPTH + 1);
                // The frame interval: the smallest gap between them.
                let step = v
                    .windows(2)
                    .map(|w| w[1] - w[0])
                    .filter(|&d| d > 0)
                    .min()
                    .unwrap_or(1);
                (v.first().copied().unwrap_or(0) - DEPTH as i64 * step, step)
            });
            first + k as i64 * step
        } else {
            self.unused.pop().map_or(f.pts.ticks(), |r| r.0)
        };
        // Never backwards, never after the presentation time.
        let dts = dts
            .max(self.last_dts.map_or(i64::MIN, |d| d + 1))
            .min(f.pts.ticks());
        self.last_dts = Some(dts);
        f.dts = MediaTime::new(dts, f.pts.timescale());
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::TrackId;
    use crate::time::Timescale;
    use bytes::Bytes;

    fn frame(pts: i64) -> Frame {
        let t = MediaTime::new(pts, Timescale::HZ_90K);
        Frame {
            track: TrackId(1),
            dts: t,
            pts: t,
            key: false,
            data: Bytes::new(),
        }
    }

    fn run(pts: &[i64]) -> Vec<(i64, i64)> {
        let mut d = DecodeTimes::new();
        let mut out = Vec::new();
        for &p in pts {
            d.push(frame(p));
            while let Some(f) = d.pop() {
                out.push((f.dts.ticks(), f.pts.ticks()));
            }
        }
        while let Some(f) = d.pop_end() {
            out.push((f.dts.ticks(), f.pts.ticks()));
        }
        out
    }

    fn check(out: &[(i64, i64)]) {
        assert!(
            out.windows(2).all(|w| w[1].0 > w[0].0),
            "dts rises: {out:?}"
        );
        assert!(out.iter().all(|(d, p)| d <= p), "dts <= pts: {out:?}");
    }

    #[test]
    fn b_frames_with_pyramid() {
        // x264 -bf 3 -b-pyramid normal, in decode order: I0 P4 B2 b1 b3 P8 B6 b5 b7.
        let pts: Vec<i64> = [0, 4, 2, 1, 3, 8, 6, 5, 7]
            .iter()
            .map(|n| n * 3600)
            .collect();
        let out = run(&pts);
        assert_eq!(out.len(), pts.len());
        check(&out);
        // One frame interval apart, DEPTH frames behind the sorted presentation times.
        let dts: Vec<i64> = out.iter().map(|o| o.0 / 3600).collect();
        assert_eq!(dts, vec![-3, -2, -1, 0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn no_b_frames_and_gaps() {
        let pts = [1000, 4600, 8200, 19000, 22600, 26200];
        let out = run(&pts);
        check(&out);
        assert_eq!(out.len(), 6);
        // Short streams still come out.
        assert_eq!(run(&[5]).len(), 1);
        assert!(run(&[]).is_empty());
    }
}
