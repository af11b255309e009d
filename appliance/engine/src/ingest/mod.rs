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
