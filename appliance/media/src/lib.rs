//! Media types shared by every ingest protocol and every muxer.
//!
//! Ingest sessions (RTMP today; RTSP, MPEG-TS and WebRTC next) turn their wire format
//! into [`Frame`]s on [`TrackInfo`]s; recorders and muxers consume only these types, so a
//! recording feature written once works for every protocol.
//!
//! Time is typed: a [`MediaTime`] always carries its [`Timescale`], and wrapping wire
//! timestamps are unwrapped once, by [`time::Unwrapper`], at the protocol boundary.

pub mod aac;
pub mod annexb;
pub mod av1;
pub mod avc;
pub mod codec;
pub mod codec_string;
pub mod decode_time;
pub mod frame;
pub mod hevc;
pub mod mp3;
pub mod opus;
pub mod picture_size;
pub mod time;

pub use codec::{AudioParams, Codec, MediaKind, TrackInfo, TrackParams, VideoParams};
pub use frame::{Frame, TrackId};
pub use time::{MediaTime, Timescale};
