//! The benchmark's own code: a pre-encoded FLV source held in memory ([`source`]) and
//! a sans-IO RTMP publisher ([`publisher`]) that the load generator drives.
//!
//! The publisher is written here rather than taken from a crate because the load
//! generator must cost far less CPU than the system under test: one shared copy of the
//! source, no per-feed decoding, chunking straight into the socket buffer.

pub mod publisher;
pub mod source;
