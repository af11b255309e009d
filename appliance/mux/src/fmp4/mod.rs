//! Fragmented MP4 (ISO/IEC 14496-12) as written while recording.
//!
//! Layout of a file: `ftyp`, `moov` (with `mvex`, no samples), then `moof`+`mdat`
//! fragments, then — once finalized — an `mfra` random-access index. The file plays
//! at every moment; a crash loses at most the fragment being built.
//!
//! Boxes that carry a duration (`mvhd`, `mehd`, `tkhd`, `mdhd`, `elst`) are written
//! as version 1 (64-bit) with zero, and their offsets recorded in an [`InitLayout`],
//! so [`finalize::tail`] can patch them in place.
//!
//! Timing: all tracks share one decode-time origin (the first frame), which keeps
//! A/V sync exactly as the source had it. Edit lists then start the presentation at
//! the earliest presented sample of any track, as ffmpeg's MP4 muxer does: a track
//! that starts later gets an empty edit, and video's media edit skips the B-frame
//! delay, so durations read like the source's. [`recover::scan`] rebuilds the same
//! layout and totals from a file on disk, so recovery ends exactly like finalize.

pub mod finalize;
pub mod init;
pub mod muxer;
pub mod recover;
pub mod sample_entry;

pub use crate::{ScanError, Source, TracksFixed};
pub use finalize::{EditLayout, InitLayout, TfraEntry, TrackLayout, TrackTotals};
pub use muxer::{Fmp4Config, Fmp4Muxer};
pub use recover::{scan, RecoveredFile};

/// Seconds between the MP4 epoch (1904-01-01) and the Unix epoch.
pub const MP4_EPOCH_OFFSET: u64 = 2_082_844_800;

/// The movie timescale (mvhd, tkhd, mehd): milliseconds.
pub const MOVIE_TIMESCALE: u32 = 1000;

/// Sample flags: a sync sample (depends on no other).
pub const FLAGS_SYNC: u32 = 0x0200_0000;
/// Sample flags: a non-sync sample (depends on others).
pub const FLAGS_NON_SYNC: u32 = 0x0101_0000;
