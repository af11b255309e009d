//! Matroska and WebM as written while recording.
//!
//! Layout of a file: the EBML header, a Segment of unknown size holding a
//! SeekHead, Info and Tracks, then one Cluster per fragment (each appended whole
//! and made durable, so a crash loses at most the cluster being built), then —
//! once finalized — Cues, with the Segment size, Duration and the Cues' Seek
//! entry patched into slots the header reserved ([`layout`]). Blocks are
//! SimpleBlocks in decode order with presentation timestamps at 1 ms, which is
//! what Matroska stores and what ffmpeg and browsers read.
//!
//! Hand-written: no Rust Matroska crate writes incrementally with durable
//! cluster boundaries, reserved patch slots and zero-copy payloads; the subset
//! used is a few dozen element IDs ([`ebml`]).

pub mod ebml;
pub mod layout;
pub mod muxer;
pub mod recover;
pub mod tracks;

pub use layout::{Cue, Layout, TrackEnd};
pub use muxer::{MkvConfig, MkvMuxer};
pub use recover::{scan, RecoveredMkv};

/// Which Matroska flavour a file is: WebM admits only VP8/VP9/AV1 and Opus (the
/// codecs browsers play), Matroska everything edgerec records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocType {
    Matroska,
    Webm,
}

impl DocType {
    pub fn name(self) -> &'static str {
        self.format().name()
    }

    pub fn format(self) -> crate::Format {
        match self {
            DocType::Matroska => crate::Format::Mkv,
            DocType::Webm => crate::Format::Webm,
        }
    }
}
