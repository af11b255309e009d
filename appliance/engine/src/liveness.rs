//! Liveness: whether the daemon is still doing its work, as `/v1/health`
//! reports it to the appliance's watchdog and to orchestrators.
//!
//! A process that answers HTTP is not necessarily recording: a shard thread
//! blocked in a call that never returns, or the index stuck in a flush (sled's
//! `flush_async` deadlock was one), leaves the API up while every feed on it
//! stalls. Each shard ticks a heartbeat from its own runtime every [`BEAT`];
//! the index stamps when its running flush began. A heartbeat or a flush older
//! than [`STALL`] makes the daemon unhealthy, so it is restarted rather than
//! left answering while it records nothing.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a shard ticks.
pub const BEAT: Duration = Duration::from_secs(1);

/// A shard that has not ticked, or a flush that has not returned, for this
/// long is stalled. Generous: an fdatasync on a busy disk can take seconds.
pub const STALL: Duration = Duration::from_secs(15);

/// The shards' heartbeats: milliseconds after `base`, plus one (0: none yet).
/// Atomics, so a tick never contends with anything.
pub struct Liveness {
    base: Instant,
    beats: Box<[AtomicU64]>,
}

/// Why the daemon is unhealthy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Shard `shard` has not run its heartbeat for `for_` (never, if it has
    /// not run since the engine started that long ago).
    ShardStalled { shard: usize, for_: Duration },
    /// The index's running flush has taken `for_` so far.
    IndexFlushStuck { for_: Duration },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::ShardStalled { shard, for_ } => {
                write!(
                    f,
                    "shard {shard} has not run for {:.1} s",
                    for_.as_secs_f64()
                )
            }
            Problem::IndexFlushStuck { for_ } => write!(
                f,
                "an index flush has been running for {:.1} s",
                for_.as_secs_f64()
            ),
        }
    }
}

impl Liveness {
    pub fn new(shards: usize, base: Instant) -> Liveness {
        Liveness {
            base,
            beats: (0..shards).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Shard `shard` ran at `now`.
    pub fn beat(&self, shard: usize, now: Instant) {
        if let Some(b) = self.beats.get(shard) {
            let ms = now.saturating_duration_since(self.base).as_millis() as u64;
            b.store(ms + 1, Ordering::Relaxed);
        }
    }

    /// What is wrong at `now`, given how long the index's running flush has
    /// taken (`None`: none is running). Empty: healthy.
    pub fn check(&self, now: Instant, flush_running: Option<Duration>) -> Vec<Problem> {
        let since_base = now.saturating_duration_since(self.base);
        let mut out: Vec<Problem> = self
            .beats
            .iter()
            .enumerate()
            .filter_map(|(shard, b)| {
                let last = match b.load(Ordering::Relaxed) {
                    0 => Duration::ZERO,
                    ms => Duration::from_millis(ms - 1),
                };
                let for_ = since_base.saturating_sub(last);
                (for_ > STALL).then_some(Problem::ShardStalled { shard, for_ })
            })
            .collect();
        if let Some(for_) = flush_running.filter(|d| *d > STALL) {
            out.push(Problem::IndexFlushStuck { for_ });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn ticking_shards_are_healthy() {
        let t0 = Instant::now();
        let l = Liveness::new(2, t0);
        for s in 0..60 {
            l.beat(0, t0 + S(s));
            l.beat(1, t0 + S(s));
            assert!(l.check(t0 + S(s) + BEAT, None).is_empty());
        }
    }

    #[test]
    fn a_shard_that_stops_ticking_is_named() {
        let t0 = Instant::now();
        let l = Liveness::new(3, t0);
        for s in 0..=40 {
            l.beat(0, t0 + S(s));
            l.beat(2, t0 + S(s));
            if s <= 10 {
                l.beat(1, t0 + S(s));
            }
        }
        assert!(
            l.check(t0 + S(25), None).is_empty(),
            "15 s is not yet stalled"
        );
        let p = l.check(t0 + S(40), None);
        assert_eq!(
            p,
            vec![Problem::ShardStalled {
                shard: 1,
                for_: S(30)
            }]
        );
        assert_eq!(p[0].to_string(), "shard 1 has not run for 30.0 s");
    }

    #[test]
    fn a_shard_that_never_started_is_stalled_after_the_grace() {
        let t0 = Instant::now();
        let l = Liveness::new(1, t0);
        assert!(l.check(t0 + S(5), None).is_empty());
        assert_eq!(
            l.check(t0 + S(16), None),
            vec![Problem::ShardStalled {
                shard: 0,
                for_: S(16)
            }]
        );
    }

    #[test]
    fn a_flush_that_does_not_return_is_a_problem() {
        let t0 = Instant::now();
        let l = Liveness::new(1, t0);
        l.beat(0, t0 + S(30));
        assert!(l.check(t0 + S(30), Some(S(3))).is_empty());
        let p = l.check(t0 + S(30), Some(S(20)));
        assert_eq!(p, vec![Problem::IndexFlushStuck { for_: S(20) }]);
        assert!(p[0].to_string().contains("20.0 s"));
    }

    #[test]
    fn a_clock_before_the_base_or_an_unknown_shard_does_not_panic() {
        let t0 = Instant::now() + S(100);
        let l = Liveness::new(1, t0);
        l.beat(7, t0);
        l.beat(0, t0 - S(50));
        assert!(l.check(t0 - S(60), None).is_empty());
    }
}
