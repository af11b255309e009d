//! MPEG-TS as written on request (`container = "ts"`), for operators whose
//! pipelines take transport streams.
//!
//! Layout: a sequence of fragments, each starting with a PAT and PMT (so any
//! fragment can be cut out and played) and ending with a fragment mark: one
//! null packet (PID 0x1FFF, which every demuxer discards) carrying the
//! fragment's length and the file's duration and frame counts so far. A crash
//! loses at most the fragment in flight; recovery cuts after the last mark and
//! reads the totals from it ([`recover`]), without parsing media. Finalizing
//! appends nothing and patches nothing: a TS file is complete at every mark.
//!
//! Hand-written: the muxing is a few hundred lines over `edgerec-ts`'s CRC, and
//! no Rust TS muxer emits durable fragments of zero-copy-sized batches; the
//! elementary streams are converted as ISO/IEC 13818-1 and the codec bindings
//! require (Annex B with AUD and parameter sets for H.264/H.265, ADTS for AAC,
//! Opus with its control header and registration descriptor, as ffmpeg writes
//! it).

pub mod es;
pub mod muxer;
pub mod recover;

pub use muxer::{TsConfig, TsMuxer};
pub use recover::{scan, RecoveredTs};

pub const PACKET: usize = 188;
const PAT_PID: u16 = 0;
const PMT_PID: u16 = 0x1000;
const FIRST_ES_PID: u16 = 0x100;
const NULL_PID: u16 = 0x1fff;
/// Opens the payload of a fragment mark.
const MARK_MAGIC: &[u8; 16] = b"edgerec fragment";
/// PTS/DTS = decode time from the file's start + this (1.4 s, as ffmpeg), so
/// the PCR (which starts at 0) stays behind them.
const PTS_OFFSET: i64 = 126_000;
