//! Sans-IO MPEG transport stream demuxer (ISO/IEC 13818-1).
//!
//! [`TsDemuxer::handle_input`] takes bytes as they arrive (any split: UDP
//! datagrams, TCP reads, SRT messages); [`TsDemuxer::poll_event`] yields tracks,
//! frames and the damage it saw. No clock, no I/O, no panics: a transport stream is
//! meant to survive loss, so damage is counted and skipped, never fatal — a lost
//! packet costs the access unit it belonged to and nothing after it.
//!
//! Hand-written rather than on `mpeg2ts-reader`: that crate hands PES pieces to
//! callbacks through a macro-built filter enum and reports continuity errors through
//! a `log` warning, while a recorder needs counted, located damage (byte offset,
//! PID) and whole access units as one `Bytes`; the container layer is small.

mod demux;
mod packet;
mod pes;
mod psi;
mod reorder;

pub use demux::{Event, TsDemuxer, TsStats};
pub use packet::PACKET_LEN;
pub use psi::crc32_mpeg2;
pub use reorder::Reorder;
