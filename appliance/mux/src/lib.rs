//! Muxers: frames in; bytes to append, durability points and finalize patches out.
//!
//! A muxer is a pure state machine, like the protocol code: it never touches a file.
//! It tracks the file position of everything it emits, so the writer can append
//! batches in order, make each [`WriteBatch`] with `durable` set a sync point, and
//! apply [`Finish`] (an append, then small in-place patches) without reading back.
//! Finalizing never rewrites media data: its cost does not depend on the file size.

pub mod bmff;
pub mod file;
pub mod fmp4;
pub mod mkv;
pub mod ts;

pub use file::{FileConfig, FileMuxer, Format};
mod timeline;

pub use timeline::TrackEnd;

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

/// The header is written: this file's tracks can no longer change (start a new
/// file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TracksFixed;

/// Random-access reads of a file being recovered.
pub trait Source {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl Source for std::fs::File {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

impl Source for &[u8] {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let eof = std::io::ErrorKind::UnexpectedEof;
        let start = usize::try_from(offset).map_err(|_| eof)?;
        let end = start.checked_add(buf.len()).ok_or(eof)?;
        buf.copy_from_slice(self.get(start..end).ok_or(eof)?);
        Ok(())
    }
}

/// Why a file left open by a crash cannot be recovered.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("no complete header ({0}): nothing playable")]
    NoHeader(&'static str),
    #[error("{what} at byte {at} is not one this muxer wrote ({why})")]
    Foreign {
        at: u64,
        what: &'static str,
        why: &'static str,
    },
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
}

/// Splits `tracks` into those `format` holds and why the others are left out.
pub(crate) fn admit_tracks(
    tracks: &[edgerec_media::TrackInfo],
    format: Format,
) -> (Vec<&edgerec_media::TrackInfo>, Vec<Unsupported>) {
    let mut kept = Vec::new();
    let mut left_out = Vec::new();
    for t in tracks {
        match Unsupported::check(t, format) {
            Ok(()) => kept.push(t),
            Err(e) => left_out.push(e),
        }
    }
    (kept, left_out)
}

/// Once a file's header is written, a new track set is accepted only if it is
/// the same (its kept tracks are the file's); otherwise [`TracksFixed`].
pub(crate) fn same_tracks<'a>(
    kept: &[&edgerec_media::TrackInfo],
    mut current: impl ExactSizeIterator<Item = &'a edgerec_media::TrackInfo>,
) -> Result<Vec<Unsupported>, TracksFixed> {
    if kept.len() == current.len() && current.all(|t| kept.contains(&t)) {
        Ok(Vec::new())
    } else {
        Err(TracksFixed)
    }
}

/// Why a track cannot go into a container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{codec:?} cannot be recorded in {container}")]
pub struct Unsupported {
    pub track: TrackId,
    pub codec: Codec,
    pub container: &'static str,
}

impl Unsupported {
    /// Whether `format` can hold the track.
    pub fn check(info: &edgerec_media::TrackInfo, format: Format) -> Result<(), Unsupported> {
        if format.holds(info.codec) {
            Ok(())
        } else {
            Err(Unsupported {
                track: info.id,
                codec: info.codec,
                container: format.name(),
            })
        }
    }
}
