//! The fixed parts of a file this muxer writes, which finalize and recovery both
//! need: the header with its reserved slots, the Cues, and how a track's end is
//! reckoned from its block timestamps.
//!
//! The header reserves, as Void elements of the exact size, a Duration in Info
//! and a Cues entry in the SeekHead; the Segment's size is written as "unknown"
//! (as live WebM is). Finalize appends the Cues and overwrites those three slots,
//! so a file is playable at every moment and finalizing costs the same for any
//! length.

use bytes::{BufMut, Bytes, BytesMut};
use edgerec_media::TrackInfo;

use super::ebml::{self, id, Writer};
use super::{tracks, DocType};
pub use crate::timeline::TrackEnd;
use crate::Patch;

/// Offsets of the header's patchable slots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// The Segment's 8-byte size.
    pub segment_size_at: u64,
    /// Where the Segment's children begin (SeekHead and Cues positions count from
    /// here).
    pub segment_data_start: u64,
    /// An 11-byte Void in Info, for the Duration.
    pub duration_at: u64,
    /// A 21-byte Void in the SeekHead, for the Cues' Seek entry.
    pub cues_seek_at: u64,
}

/// One CuePoint: a cluster starting with a key frame of `track`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cue {
    /// Cluster timestamp, ms.
    pub time: u64,
    pub track: u64,
    /// Cluster position from the Segment's data start.
    pub cluster: u64,
}

/// The file's duration: the latest track end.
pub fn duration_ms<'a>(ends: impl Iterator<Item = &'a TrackEnd>) -> i64 {
    ends.filter_map(TrackEnd::end).max().unwrap_or(0)
}

/// Seconds from the Unix epoch to Matroska's (2001-01-01T00:00:00Z).
const MATROSKA_EPOCH_UNIX: i64 = 978_307_200;

/// A Seek entry of exactly 21 bytes (4-byte ID, 8-byte position).
fn seek_entry(buf: &mut BytesMut, target: u32, position: u64) {
    ebml::put_id(buf, id::SEEK);
    ebml::put_size(buf, 18, 1);
    ebml::put_id(buf, id::SEEK_ID);
    ebml::put_size(buf, 4, 1);
    buf.put_u32(target);
    ebml::put_id(buf, id::SEEK_POSITION);
    ebml::put_size(buf, 8, 1);
    buf.put_u64(position);
}

/// The 11-byte Duration element (a 64-bit float, in ms at the 1 ms scale).
fn duration_element(ms: i64) -> Vec<u8> {
    let mut b = BytesMut::new();
    Writer::new(&mut b).float(id::DURATION, ms as f64);
    b.to_vec()
}

/// Writes the EBML header, the Segment start, SeekHead, Info and Tracks.
pub fn write_header<'a>(
    buf: &mut BytesMut,
    doc: DocType,
    tracks: impl Iterator<Item = (&'a TrackInfo, u64)>,
    creation_unix_secs: u64,
) -> Layout {
    let base = buf.len();
    let at = |buf: &BytesMut| (buf.len() - base) as u64;
    let mut w = Writer::new(buf);
    w.start(id::EBML);
    w.uint(id::EBML_VERSION, 1);
    w.uint(id::EBML_READ_VERSION, 1);
    w.uint(id::EBML_MAX_ID_LENGTH, 4);
    w.uint(id::EBML_MAX_SIZE_LENGTH, 8);
    w.string(id::DOC_TYPE, doc.name());
    w.uint(id::DOC_TYPE_VERSION, 4);
    w.uint(id::DOC_TYPE_READ_VERSION, 2);
    w.end();
    ebml::put_id(w.buf, id::SEGMENT);
    let segment_size_at = at(w.buf);
    w.buf.put_slice(&ebml::size8(ebml::UNKNOWN_SIZE));
    let segment_data_start = at(w.buf);

    w.start(id::SEEK_HEAD);
    let seeks_at = w.pos();
    seek_entry(w.buf, id::INFO, 0);
    seek_entry(w.buf, id::TRACKS, 0);
    let cues_seek_at = at(w.buf);
    w.void(21);
    w.end();

    let info_at = at(w.buf);
    w.start(id::INFO);
    w.uint(id::TIMESTAMP_SCALE, 1_000_000);
    w.string(id::MUXING_APP, "edgerec");
    w.string(id::WRITING_APP, "edgerec");
    let since = (creation_unix_secs as i64 - MATROSKA_EPOCH_UNIX).max(0);
    w.int(id::DATE_UTC, since.saturating_mul(1_000_000_000));
    let duration_at = at(w.buf);
    w.void(11);
    w.end();

    let tracks_at = at(w.buf);
    w.start(id::TRACKS);
    for (info, number) in tracks {
        tracks::write_entry(&mut w, info, number);
    }
    w.end();

    let mut seeks = BytesMut::new();
    seek_entry(&mut seeks, id::INFO, info_at - segment_data_start);
    seek_entry(&mut seeks, id::TRACKS, tracks_at - segment_data_start);
    buf[seeks_at..seeks_at + seeks.len()].copy_from_slice(&seeks);
    Layout {
        segment_size_at,
        segment_data_start,
        duration_at,
        cues_seek_at,
    }
}

/// What finalizing takes, given the file ends at `position`: the Cues to append
/// there (empty when no cluster starts with a key frame), then the patches.
pub fn tail(layout: &Layout, cues: &[Cue], position: u64, duration_ms: i64) -> (Bytes, Vec<Patch>) {
    let mut buf = BytesMut::new();
    let mut patches = Vec::new();
    if !cues.is_empty() {
        let mut w = Writer::new(&mut buf);
        w.start(id::CUES);
        for c in cues {
            w.start(id::CUE_POINT);
            w.uint(id::CUE_TIME, c.time);
            w.start(id::CUE_TRACK_POSITIONS);
            w.uint(id::CUE_TRACK, c.track);
            w.uint(id::CUE_CLUSTER_POSITION, c.cluster);
            w.end();
            w.end();
        }
        w.end();
        let mut seek = BytesMut::new();
        seek_entry(&mut seek, id::CUES, position - layout.segment_data_start);
        patches.push(Patch {
            offset: layout.cues_seek_at,
            bytes: seek.to_vec(),
        });
    }
    patches.push(Patch {
        offset: layout.duration_at,
        bytes: duration_element(duration_ms),
    });
    let end = position + buf.len() as u64;
    patches.push(Patch {
        offset: layout.segment_size_at,
        bytes: ebml::size8(end - layout.segment_data_start).to_vec(),
    });
    (buf.freeze(), patches)
}
