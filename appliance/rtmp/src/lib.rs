//! Sans-IO RTMP server for publishers (OBS, ffmpeg, hardware encoders).
//!
//! Layers, each a pure state machine fed bytes and drained of output:
//! [`handshake`] → [`chunk`] (messages from interleaved chunk streams) →
//! [`session`] (control messages, [`amf0`] commands, publish flow) → [`flv`] (tag
//! bodies to [`edgerec_media::Frame`]s). The engine's connection task only moves bytes
//! between a socket and [`ServerSession`].

pub mod amf0;
pub mod chunk;
pub mod flv;
pub mod handshake;
pub mod message;
pub mod session;

pub use session::{Event, PublishRequest, RtmpError, RtmpErrorKind, ServerConfig, ServerSession};
