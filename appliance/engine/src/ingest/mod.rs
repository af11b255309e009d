//! Ingest glue: the thin I/O loops that move bytes between sockets and the sans-IO
//! protocol sessions, and hand the sessions' frames to recorders.

pub mod publication;
pub mod rtmp;
mod rtp_feed;
pub mod rtp_relay;
pub mod rtsp_pull;
pub mod rtsp_push;
pub mod srt;
pub mod ts;
pub mod ts_http;
pub mod whip;

/// The receive buffer every UDP ingest socket asks for (TS, RTP, SRT): a key
/// frame arrives as a burst of hundreds of datagrams, and a shard busy with other
/// feeds must not let the kernel drop them before it reads. Linux caps the ask at
/// `net.core.rmem_max`.
pub(crate) const UDP_RECV_BUFFER: usize = 4 << 20;

/// Where Linux keeps the cap on what a socket may ask for.
const RMEM_MAX: &str = "/proc/sys/net/core/rmem_max";

/// Warns, once per process, when the kernel will grant a UDP ingest less than
/// [`UDP_RECV_BUFFER`]: the appliance image raises the cap at boot, another host
/// may not, and the symptom (datagrams dropped under load) says nothing of why.
pub(crate) fn warn_if_udp_buffer_capped() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let cap = std::fs::read_to_string(RMEM_MAX)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if let Some(why) = cap.and_then(udp_buffer_capped) {
            tracing::warn!("{why}");
        }
    });
}

/// What is wrong with `rmem_max` for the UDP ingests, if anything.
fn udp_buffer_capped(rmem_max: u64) -> Option<String> {
    let want = UDP_RECV_BUFFER as u64;
    (rmem_max < want).then(|| {
        format!(
            "net.core.rmem_max is {rmem_max}: UDP ingests (MPEG-TS, SRT, RTP) get that \
             receive buffer instead of {want} and may drop bursts under load; raise it \
             with `sysctl -w net.core.rmem_max={want}`"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_default_rmem_max_is_reported_and_the_image_setting_is_not() {
        let why = udp_buffer_capped(212_992).expect("Linux's default caps the buffer");
        assert!(why.contains("212992") && why.contains("4194304"), "{why}");
        assert_eq!(udp_buffer_capped(4 << 20), None);
        assert_eq!(udp_buffer_capped(16 << 20), None);
    }
}
