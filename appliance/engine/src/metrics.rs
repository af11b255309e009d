//! Prometheus metrics.
//!
//! Hand-written: counters are plain atomics bumped on the media path (a relaxed
//! `fetch_add`, no lock, no registry lookup) and rendered in the text exposition
//! format at scrape time; the client crates put a mutex in their histograms.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the write-latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&b| s <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, c) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += c.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Why frames were not recorded.
#[derive(Clone, Copy, Debug)]
pub enum DropReason {
    /// Video before the first key frame of a recording or part.
    BeforeKeyFrame,
    /// A track the container cannot hold.
    UnsupportedTrack,
    /// The recording had stopped (write error, low disk).
    RecordingStopped,
}

#[derive(Default)]
pub struct Metrics {
    pub live_streams: AtomicI64,
    pub active_recordings: AtomicI64,
    pub connections: AtomicI64,
    pub connections_total: AtomicU64,
    pub connection_errors_total: AtomicU64,
    pub bytes_received_total: AtomicU64,
    pub frames_received_video: AtomicU64,
    pub frames_received_audio: AtomicU64,
    pub bytes_written_total: AtomicU64,
    pub fragments_written_total: AtomicU64,
    pub recordings_started_total: AtomicU64,
    pub recordings_failed_total: AtomicU64,
    pub recordings_refused_disk_total: AtomicU64,
    pub publishes_refused_total: AtomicU64,
    dropped_before_key: AtomicU64,
    dropped_unsupported: AtomicU64,
    dropped_stopped: AtomicU64,
    /// Time to write one fragment and make it durable.
    pub write_latency: Histogram,
}

impl Metrics {
    pub fn dropped(&self, reason: DropReason) {
        match reason {
            DropReason::BeforeKeyFrame => &self.dropped_before_key,
            DropReason::UnsupportedTrack => &self.dropped_unsupported,
            DropReason::RecordingStopped => &self.dropped_stopped,
        }
        .fetch_add(1, Relaxed);
    }

    /// Renders every metric; `disk_free` is sampled by the caller at scrape time.
    pub fn render(&self, disk_free: Option<u64>) -> String {
        let mut o = String::with_capacity(4096);
        let mut gauge = |name: &str, help: &str, v: i64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            "edgerec_live_streams",
            "Streams being published.",
            self.live_streams.load(Relaxed),
        );
        gauge(
            "edgerec_active_recordings",
            "Recordings being written.",
            self.active_recordings.load(Relaxed),
        );
        gauge(
            "edgerec_connections",
            "Open ingest connections.",
            self.connections.load(Relaxed),
        );
        if let Some(free) = disk_free {
            gauge(
                "edgerec_disk_free_bytes",
                "Free space on the recordings file system.",
                free.min(i64::MAX as u64) as i64,
            );
        }
        let mut counter = |name: &str, help: &str, labels: &str, v: u64, header: bool| {
            if header {
                let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
            }
            let _ = writeln!(o, "{name}{labels} {v}");
        };
        let c = |a: &AtomicU64| a.load(Relaxed);
        counter(
            "edgerec_connections_total",
            "Ingest connections accepted.",
            "",
            c(&self.connections_total),
            true,
        );
        counter(
            "edgerec_connection_errors_total",
            "Ingest connections closed for a protocol error.",
            "",
            c(&self.connection_errors_total),
            true,
        );
        counter(
            "edgerec_bytes_received_total",
            "Ingest bytes received.",
            "",
            c(&self.bytes_received_total),
            true,
        );
        counter(
            "edgerec_frames_received_total",
            "Frames received.",
            "{kind=\"video\"}",
            c(&self.frames_received_video),
            true,
        );
        counter(
            "edgerec_frames_received_total",
            "",
            "{kind=\"audio\"}",
            c(&self.frames_received_audio),
            false,
        );
        counter(
            "edgerec_frames_dropped_total",
            "Frames not recorded, by reason.",
            "{reason=\"before_key_frame\"}",
            c(&self.dropped_before_key),
            true,
        );
        counter(
            "edgerec_frames_dropped_total",
            "",
            "{reason=\"unsupported_track\"}",
            c(&self.dropped_unsupported),
            false,
        );
        counter(
            "edgerec_frames_dropped_total",
            "",
            "{reason=\"recording_stopped\"}",
            c(&self.dropped_stopped),
            false,
        );
        counter(
            "edgerec_bytes_written_total",
            "Bytes written to recordings.",
            "",
            c(&self.bytes_written_total),
            true,
        );
        counter(
            "edgerec_fragments_written_total",
            "Fragments written and synced.",
            "",
            c(&self.fragments_written_total),
            true,
        );
        counter(
            "edgerec_recordings_started_total",
            "Recordings started.",
            "",
            c(&self.recordings_started_total),
            true,
        );
        counter(
            "edgerec_recordings_failed_total",
            "Recordings stopped by an error.",
            "",
            c(&self.recordings_failed_total),
            true,
        );
        counter(
            "edgerec_recordings_refused_total",
            "Recordings not started for lack of disk space.",
            "{reason=\"disk_low\"}",
            c(&self.recordings_refused_disk_total),
            true,
        );
        counter(
            "edgerec_publishes_refused_total",
            "Publish requests refused (name already live).",
            "",
            c(&self.publishes_refused_total),
            true,
        );
        self.write_latency.render(
            &mut o,
            "edgerec_write_latency_seconds",
            "Time to write one fragment and make it durable.",
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.live_streams.fetch_add(2, Relaxed);
        m.write_latency.observe(Duration::from_millis(3));
        m.write_latency.observe(Duration::from_secs(10));
        m.dropped(DropReason::BeforeKeyFrame);
        let t = m.render(Some(5 << 30));
        assert!(t.contains("edgerec_live_streams 2\n"));
        assert!(t.contains("edgerec_disk_free_bytes 5368709120\n"));
        assert!(t.contains("edgerec_write_latency_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(t.contains("edgerec_write_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(t.contains("edgerec_write_latency_seconds_count 2\n"));
        assert!(t.contains("edgerec_frames_dropped_total{reason=\"before_key_frame\"} 1\n"));
        // Each metric family has one TYPE line.
        assert_eq!(t.matches("# TYPE edgerec_frames_dropped_total").count(), 1);
    }
}
