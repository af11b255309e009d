//! The benchmark's own code: a pre-encoded FLV source held in memory ([`source`]) and
//! a sans-IO RTMP publisher ([`publisher`]) that the load generator drives; for the
//! MPEG-TS ingests (UDP, TCP, SRT), a TS file cut into timed packets ([`ts_source`]);
//! for the relayed-RTP ingest, the FLV's frames cut into RTP payloads ([`rtp_source`]).
//!
//! The publisher is written here rather than taken from a crate because the load
//! generator must cost far less CPU than the system under test: one shared copy of the
//! source, no per-feed decoding, chunking straight into the socket buffer.

pub mod publisher;
pub mod rtp_source;
pub mod source;
pub mod ts_source;
