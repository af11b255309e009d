//! Puts one SSRC's packets back in sequence order.
//!
//! UDP reorders and loses. Packets are held by extended sequence number; the next
//! expected one is released at once, and a hole is waited for at most `max_delay`
//! (or until `max_packets` are held) before it is declared lost and skipped. Holes
//! are also reported once for NACK, so a sender that retransmits can fill them in
//! time. A jump of more than [`RESYNC`] packets is a restarted sender: the buffer
//! flushes and starts over rather than waiting for 30 000 packets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use edgerec_media::time::Unwrapper;

use crate::packet::RtpPacket;

/// Sequence jump treated as a restart rather than loss.
pub const RESYNC: i64 = 3000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    /// Sequence numbers skipped after waiting.
    pub lost: u64,
    /// Packets that arrived after a later one.
    pub reordered: u64,
    /// Duplicates and packets that came after their slot was given up.
    pub dropped_late: u64,
    /// Restarts (large sequence jumps).
    pub resyncs: u64,
}

/// A packet released in order; `gap` when packets before it were lost.
#[derive(Debug)]
pub struct Released {
    pub packet: RtpPacket,
    pub gap: bool,
}

pub struct JitterBuffer {
    max_delay: Duration,
    max_packets: usize,
    unwrap: Unwrapper,
    next: Option<i64>,
    highest: Option<i64>,
    held: BTreeMap<i64, (RtpPacket, Instant)>,
    /// Holes not yet reported for NACK.
    missing: Vec<u16>,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(max_delay: Duration, max_packets: usize) -> JitterBuffer {
        JitterBuffer {
            max_delay,
            max_packets: max_packets.max(1),
            unwrap: Unwrapper::new(16),
            next: None,
            highest: None,
            held: BTreeMap::new(),
            missing: Vec::new(),
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    pub fn handle_packet(&mut self, p: RtpPacket, now: Instant) {
        self.stats.received += 1;
        let ext = self.unwrap.unwrap(u64::from(p.sequence));
        let (next, highest) = match (self.next, self.highest) {
            (Some(n), Some(h)) => (n, h),
            _ => {
                self.next = Some(ext);
                self.highest = Some(ext);
                self.held.insert(ext, (p, now));
                return;
            }
        };
        if ext - highest > RESYNC || next - ext > RESYNC {
            // Restarted sender: what is held is released as is, then start over here.
            self.stats.resyncs += 1;
            self.next = self.held.keys().next().copied().or(Some(ext));
            self.flush_into_order(ext);
            self.held.insert(ext, (p, now));
            self.highest = Some(ext);
            self.missing.clear();
            return;
        }
        if ext < next || self.held.contains_key(&ext) {
            self.stats.dropped_late += 1;
            return;
        }
        if ext < highest {
            self.stats.reordered += 1;
            self.missing.retain(|&s| s != p.sequence);
        } else {
            for s in highest + 1..ext {
                if self.missing.len() < 512 {
                    self.missing.push(s as u16);
                }
            }
            self.highest = Some(ext);
        }
        self.held.insert(ext, (p, now));
    }

    /// Re-keys held packets after a resync so that they come out before `ext`.
    fn flush_into_order(&mut self, ext: i64) {
        let held = std::mem::take(&mut self.held);
        let n = held.len() as i64;
        for (i, (_, v)) in held.into_iter().enumerate() {
            self.held.insert(ext - n + i as i64, v);
        }
        self.next = Some(ext - n);
    }

    /// The next packet in order, if it is here or its predecessors are given up.
    pub fn poll_packet(&mut self, now: Instant) -> Option<Released> {
        let next = self.next?;
        let (&first, (_, arrived)) = self.held.iter().next()?;
        let gap = first != next;
        if gap && now < *arrived + self.max_delay && self.held.len() < self.max_packets {
            return None;
        }
        let (packet, _) = self.held.remove(&first)?;
        if gap {
            self.stats.lost += (first - next) as u64;
        }
        self.next = Some(first + 1);
        Some(Released { packet, gap })
    }

    /// When [`Self::poll_packet`] will give up on a hole.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let next = self.next?;
        let (&first, (_, arrived)) = self.held.iter().next()?;
        (first != next).then_some(*arrived + self.max_delay)
    }

    /// Holes seen since the last call, for a NACK.
    pub fn take_missing(&mut self) -> Vec<u16> {
        std::mem::take(&mut self.missing)
    }

    /// Extended highest sequence number, for receiver reports.
    pub fn highest(&self) -> Option<i64> {
        self.highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn pkt(seq: u16) -> RtpPacket {
        RtpPacket {
            marker: false,
            payload_type: 96,
            sequence: seq,
            timestamp: 0,
            ssrc: 1,
            payload: Bytes::new(),
        }
    }

    fn drain(j: &mut JitterBuffer, now: Instant) -> Vec<(u16, bool)> {
        std::iter::from_fn(|| j.poll_packet(now).map(|r| (r.packet.sequence, r.gap))).collect()
    }

    #[test]
    fn releases_in_order_and_waits_for_a_reordered_packet() {
        let t = Instant::now();
        let mut j = JitterBuffer::new(Duration::from_millis(100), 64);
        for s in [10, 11, 13] {
            j.handle_packet(pkt(s), t);
        }
        assert_eq!(drain(&mut j, t), vec![(10, false), (11, false)]);
        assert_eq!(j.take_missing(), vec![12]);
        assert_eq!(j.poll_timeout(), Some(t + Duration::from_millis(100)));
        j.handle_packet(pkt(12), t + Duration::from_millis(5));
        assert_eq!(drain(&mut j, t), vec![(12, false), (13, false)]);
        assert_eq!(j.stats().reordered, 1);
        assert_eq!(j.stats().lost, 0);
    }

    #[test]
    fn gives_up_on_a_hole_after_max_delay() {
        let t = Instant::now();
        let mut j = JitterBuffer::new(Duration::from_millis(100), 64);
        for s in [1, 3, 4] {
            j.handle_packet(pkt(s), t);
        }
        assert_eq!(drain(&mut j, t), vec![(1, false)]);
        assert_eq!(
            drain(&mut j, t + Duration::from_millis(100)),
            vec![(3, true), (4, false)]
        );
        assert_eq!(j.stats().lost, 1);
        // The lost packet turning up late is dropped.
        j.handle_packet(pkt(2), t);
        assert_eq!(drain(&mut j, t), vec![]);
        assert_eq!(j.stats().dropped_late, 1);
    }

    #[test]
    fn wraps_around_and_gives_up_when_full() {
        let t = Instant::now();
        let mut j = JitterBuffer::new(Duration::from_secs(10), 3);
        for s in [65534, 65535, 1, 2, 3] {
            j.handle_packet(pkt(s), t);
        }
        assert_eq!(
            drain(&mut j, t),
            vec![
                (65534, false),
                (65535, false),
                (1, true),
                (2, false),
                (3, false)
            ]
        );
        assert_eq!(j.stats().lost, 1);
    }

    #[test]
    fn a_restarted_sender_is_not_thirty_thousand_losses() {
        let t = Instant::now();
        let mut j = JitterBuffer::new(Duration::from_millis(100), 64);
        for s in [100, 101, 40000, 40001] {
            j.handle_packet(pkt(s), t);
        }
        assert_eq!(
            drain(&mut j, t),
            vec![(100, false), (101, false), (40000, false), (40001, false)]
        );
        assert_eq!(j.stats().resyncs, 1);
        assert_eq!(j.stats().lost, 0);
    }

    #[test]
    fn duplicates_are_dropped() {
        let t = Instant::now();
        let mut j = JitterBuffer::new(Duration::from_millis(100), 64);
        for s in [5, 5, 6] {
            j.handle_packet(pkt(s), t);
        }
        assert_eq!(drain(&mut j, t), vec![(5, false), (6, false)]);
        assert_eq!(j.stats().dropped_late, 1);
    }
}
