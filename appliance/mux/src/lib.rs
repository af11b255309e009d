//! Muxers: frames in; bytes to append, durability points and finalize patches out.
//!
//! A muxer is a pure state machine, like the protocol code: it never touches a file.
//! It tracks the file position of everything it emits, so the writer can append
//! batches in order, make each [`WriteBatch`] with `durable` set a sync point, and
//! apply [`Finish`] (an append, then small in-place patches) without reading back.
//! Finalizing never rewrites media data: its cost does not depend on the file size.

pub mod bmff;
pub mod fmp4;

use bytes::Bytes;
use edgerec_media::{Codec, MediaTime, TrackId};

/// A contiguous run of bytes to append at `offset` (the muxer's idea of the file end).
#[derive(Debug, Clone)]
pub struct WriteBatch {
    pub offset: u64,
    /// Pieces in order: headers the muxer built, and frame payloads as they arrived.
    pub chunks: Vec<Bytes>,
    pub len: u64,
    /// A point the writer should make durable (the batch completes a fragment).
    pub durable: bool,
    /// The fragment this batch completes, for the fragment index.
    pub fragment: Option<FragmentMeta>,
}

/// Where one fragment sits, by media time, for time-range lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentMeta {
    /// Media time of the fragment's first sample, from the part's start.
    pub start: MediaTime,
    pub duration: MediaTime,
    /// File offset of the fragment (its moof).
    pub offset: u64,
    pub size: u64,
    /// Whether the fragment starts with a video key frame (or has no video).
    pub starts_with_key: bool,
}

/// An in-place overwrite of already-written bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// What closing a file takes: append `append` at `append_offset`, make it durable,
/// then apply `patches` (order matters for crash safety: a crash between the two
/// leaves a valid file that recovery finishes the same way).
#[derive(Debug, Clone)]
pub struct Finish {
    pub append_offset: u64,
    pub append: Vec<Bytes>,
    pub patches: Vec<Patch>,
    /// Media duration of the file.
    pub duration: MediaTime,
    /// Final file length.
    pub len: u64,
}

/// What became of a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Accepted,
    /// The frame's track is not in this file (unknown, or its codec cannot be held).
    DroppedTrack,
    /// A video frame before the file's first key frame (a file must start decodable).
    DroppedBeforeKey,
}

/// Why a track cannot go into a container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{codec:?} cannot be recorded in {container}")]
pub struct Unsupported {
    pub track: TrackId,
    pub codec: Codec,
    pub container: &'static str,
}
