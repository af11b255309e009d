//! Sans-IO RTP reception for every RTP-based ingest (relayed RTP from SFUs, RTSP
//! push; WebRTC brings its own stack): datagrams and `now` in; track
//! descriptions, frames on one clock, RTCP feedback and deadlines out.
//!
//! The data flow inside a [`session::RtpSession`]: [`srtp`] decrypts,
//! [`packet`] parses, [`jitter`] reorders per SSRC, [`depacketize`] turns a
//! timestamp's packets into access units, and the session puts them on one
//! clock from [`rtcp`] sender reports.

pub mod depacketize;
pub mod jitter;
pub mod packet;
pub mod rtcp;
pub mod session;
pub mod srtp;

pub use session::{Event, Feedback, RtpSession, SessionOptions, SessionStats, TrackSpec, Transmit};
