//! Sans-IO RTSP server for publishers (RFC 2326 record mode): what `ffmpeg -f
//! rtsp` and GStreamer's rtspclientsink speak. Bytes in; requests answered,
//! interleaved RTP/RTCP and the decisions the I/O glue must make (claim the
//! stream, bind UDP ports) out.
//!
//! Message syntax is `rtsp-types` (sdroege's parser, also behind GStreamer's
//! Rust RTSP server). Written here: the `$` interleaved framing (so media stays
//! a zero-copy slice of the read buffer), the ANNOUNCE SDP reading (see
//! [`sdp`] for why), the record state machine, and digest/basic authentication.

pub mod auth;
pub mod framing;
pub mod sdp;
pub mod server;

pub use server::{Action, ServerSession, TransportChoice};
