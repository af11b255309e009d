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
