//! Ingest glue: the thin I/O loops that move bytes between sockets and the sans-IO
//! protocol sessions, and hand the sessions' frames to recorders.

pub mod publication;
pub mod rtmp;
pub mod rtsp_pull;
pub mod srt;
pub mod ts;
