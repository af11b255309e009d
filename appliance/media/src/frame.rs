//! One coded media access unit, as every ingest produces it and every muxer consumes it.

use bytes::Bytes;
use serde::Serialize;

use crate::time::MediaTime;

/// Identifies a track within one stream. Ingests number tracks from 1 (MP4 track ids
/// are used as-is by the fMP4 muxer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TrackId(pub u32);

/// A coded frame (access unit).
///
/// `data` is in the codec's MP4 sample format (length-prefixed NAL units for
/// H.264/H.265, raw AAC frames, ...), so muxers store it without touching it; it is a
/// refcounted slice of the buffer the parser filled, never copied on the way.
#[derive(Clone, Debug)]
pub struct Frame {
    pub track: TrackId,
    /// Decode time.
    pub dts: MediaTime,
    /// Presentation time (`>= dts` for well-formed input; muxers must not assume it).
    pub pts: MediaTime,
    /// A random access point (IDR for video; every audio frame is one).
    pub key: bool,
    pub data: Bytes,
}
