//! Typed media time.
//!
//! A timestamp without its clock rate is a bug waiting to happen (90 kHz RTP ticks
//! mixed with RTMP milliseconds). [`MediaTime`] pairs the tick count with its
//! [`Timescale`]; conversions round to nearest and use 128-bit intermediates, so they
//! never overflow.

use std::cmp::Ordering;
use std::fmt;
use std::num::NonZeroU32;

/// Ticks per second of a media clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timescale(NonZeroU32);

impl Timescale {
    /// Milliseconds: RTMP/FLV timestamps.
    pub const MILLIS: Timescale = Timescale(NonZeroU32::new(1_000).unwrap());
    /// 90 kHz: MPEG-TS PTS/DTS and RTP video; also our MP4 video track timescale.
    pub const HZ_90K: Timescale = Timescale(NonZeroU32::new(90_000).unwrap());

    /// A timescale of `hz` ticks per second; `None` for zero.
    pub const fn new(hz: u32) -> Option<Timescale> {
        match NonZeroU32::new(hz) {
            Some(v) => Some(Timescale(v)),
            None => None,
        }
    }

    pub const fn hz(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for Timescale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Hz", self.hz())
    }
}

/// A point (or span) on a media clock: `ticks / timescale` seconds. Equality and
/// order compare instants across timescales (1 s at 1 kHz == 90000 at 90 kHz).
#[derive(Clone, Copy, Debug, Eq)]
pub struct MediaTime {
    ticks: i64,
    scale: Timescale,
}

impl MediaTime {
    pub const fn new(ticks: i64, scale: Timescale) -> MediaTime {
        MediaTime { ticks, scale }
    }

    pub const fn ticks(self) -> i64 {
        self.ticks
    }

    pub const fn timescale(self) -> Timescale {
        self.scale
    }

    /// The same instant on another clock, rounded to the nearest tick.
    pub fn rescale(self, to: Timescale) -> MediaTime {
        if to == self.scale {
            return self;
        }
        MediaTime::new(rescale_ticks(self.ticks, self.scale, to), to)
    }

    /// Whole milliseconds, rounded to nearest.
    pub fn as_millis(self) -> i64 {
        self.rescale(Timescale::MILLIS).ticks
    }

    pub fn as_secs_f64(self) -> f64 {
        self.ticks as f64 / self.scale.hz() as f64
    }

    /// `self - other` on `self`'s clock.
    pub fn saturating_sub(self, other: MediaTime) -> MediaTime {
        let o = other.rescale(self.scale);
        MediaTime::new(self.ticks.saturating_sub(o.ticks), self.scale)
    }

    /// `self + other` on `self`'s clock.
    pub fn saturating_add(self, other: MediaTime) -> MediaTime {
        let o = other.rescale(self.scale);
        MediaTime::new(self.ticks.saturating_add(o.ticks), self.scale)
    }
}

/// Converts `ticks` from one clock to another, rounding to nearest (ties away from zero).
pub fn rescale_ticks(ticks: i64, from: Timescale, to: Timescale) -> i64 {
    let num = ticks as i128 * to.hz() as i128;
    let den = from.hz() as i128;
    let q = if num >= 0 {
        (num + den / 2) / den
    } else {
        (num - den / 2) / den
    };
    q.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

impl PartialEq for MediaTime {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl PartialOrd for MediaTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MediaTime {
    fn cmp(&self, other: &Self) -> Ordering {
        let a = self.ticks as i128 * other.scale.hz() as i128;
        let b = other.ticks as i128 * self.scale.hz() as i128;
        a.cmp(&b)
    }
}

impl fmt::Display for MediaTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}

/// Extends an N-bit wrapping timestamp (32-bit RTMP/RTP, 33-bit MPEG PTS) to i64.
///
/// Each new value is placed at the point nearest to the previous one modulo 2^N, so
/// small backward steps (B-frame reordering, RTP reordering) stay small and a wrap
/// continues forward. This is the one place wrap-around is handled.
#[derive(Clone, Debug)]
pub struct Unwrapper {
    bits: u32,
    last: Option<i64>,
}

impl Unwrapper {
    /// `bits` must be in 1..=62.
    pub fn new(bits: u32) -> Unwrapper {
        assert!((1..=62).contains(&bits), "unwrapper width out of range");
        Unwrapper { bits, last: None }
    }

    /// The unwrapped value of `raw` (its upper bits beyond `bits` are ignored).
    pub fn unwrap(&mut self, raw: u64) -> i64 {
        let modulus = 1i64 << self.bits;
        let raw = (raw & (modulus as u64 - 1)) as i64;
        let value = match self.last {
            None => raw,
            Some(last) => {
                let last_raw = last.rem_euclid(modulus);
                let mut diff = (raw - last_raw).rem_euclid(modulus);
                if diff >= modulus / 2 {
                    diff -= modulus;
                }
                last + diff
            }
        };
        self.last = Some(value);
        value
    }

    /// The last unwrapped value, if any.
    pub fn last(&self) -> Option<i64> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescale_rounds_to_nearest() {
        let t = MediaTime::new(1001, Timescale::MILLIS);
        assert_eq!(t.rescale(Timescale::HZ_90K).ticks(), 90_090);
        let a = MediaTime::new(23, Timescale::MILLIS);
        assert_eq!(a.rescale(Timescale::new(44_100).unwrap()).ticks(), 1014);
        let n = MediaTime::new(-3, Timescale::HZ_90K);
        assert_eq!(n.rescale(Timescale::MILLIS).ticks(), 0);
        let n = MediaTime::new(-46, Timescale::HZ_90K);
        assert_eq!(n.rescale(Timescale::MILLIS).ticks(), -1);
    }

    #[test]
    fn comparison_crosses_timescales() {
        let a = MediaTime::new(1000, Timescale::MILLIS);
        let b = MediaTime::new(90_000, Timescale::HZ_90K);
        assert_eq!(a, b);
        assert!(MediaTime::new(999, Timescale::MILLIS) < b);
    }

    #[test]
    fn unwrap_32_bit_forward_wrap() {
        let mut u = Unwrapper::new(32);
        assert_eq!(u.unwrap(0xFFFF_FF00), 0xFFFF_FF00);
        assert_eq!(u.unwrap(0x10), 0x1_0000_0010);
        assert_eq!(u.unwrap(0x20), 0x1_0000_0020);
    }

    #[test]
    fn unwrap_small_backward_step_stays_small() {
        let mut u = Unwrapper::new(32);
        assert_eq!(u.unwrap(10), 10);
        assert_eq!(u.unwrap(5), 5);
        let mut u = Unwrapper::new(32);
        u.unwrap(3);
        assert_eq!(u.unwrap(0xFFFF_FFFF), -1);
    }

    #[test]
    fn unwrap_33_bit_pts() {
        let mut u = Unwrapper::new(33);
        let max = (1u64 << 33) - 1;
        assert_eq!(u.unwrap(max - 3000), (max - 3000) as i64);
        assert_eq!(u.unwrap(3000), (1i64 << 33) + 3000);
    }
}
