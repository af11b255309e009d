//! Scanning a Matroska/WebM file left open by a crash.
//!
//! Walks the Segment's children: SeekHead, Info and Tracks (for the slots and
//! the track types), then whole Clusters. The file is valid up to the end of the
//! last complete cluster (or alignment Void); a torn cluster, garbage or a
//! half-written Cues after it is cut. Each cluster's block headers give the
//! cues, track ends and frame counts, so [`super::layout::tail`] finishes the
//! file exactly as a clean stop would have.

use super::ebml::{id, read_id, read_vint};
use super::layout::{Cue, Layout, TrackEnd};
use crate::{ScanError, Source};

/// What a scan found.
#[derive(Debug, Clone)]
pub struct RecoveredMkv {
    pub layout: Layout,
    pub cues: Vec<Cue>,
    /// Per track, in TrackEntry order: whether it is video, and its end.
    pub tracks: Vec<(bool, TrackEnd)>,
    pub valid_len: u64,
    pub torn_bytes: u64,
    pub clusters: u64,
}

impl RecoveredMkv {
    pub fn duration_ms(&self) -> i64 {
        super::layout::duration_ms(self.tracks.iter().map(|t| &t.1))
    }
}

/// The largest header (EBML, SeekHead, Info, Tracks) and cluster accepted.
const MAX_HEADER: u64 = 1 << 20;
const MAX_CLUSTER: u64 = 256 << 20;

/// An element header in `b`: (id, header length, data size).
fn element(b: &[u8]) -> Option<(u32, usize, u64)> {
    let (eid, il) = read_id(b)?;
    let (size, sl) = read_vint(b.get(il..)?)?;
    Some((eid, il + sl, size))
}

/// Children of a master element's data: (id, offset of the child, its data).
fn children(data: &[u8]) -> impl Iterator<Item = (u32, usize, &[u8])> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let (eid, hl, size) = element(data.get(pos..)?)?;
        let at = pos;
        let start = pos + hl;
        let end = start.checked_add(usize::try_from(size).ok()?)?;
        let body = data.get(start..end)?;
        pos = end;
        Some((eid, at, body))
    })
}

fn uint(b: &[u8]) -> u64 {
    b.iter().take(8).fold(0, |a, &x| a << 8 | u64::from(x))
}

pub fn scan(src: &mut dyn Source, file_len: u64) -> Result<RecoveredMkv, ScanError> {
    let no_header = || ScanError::NoHeader("EBML+Segment+Tracks");
    let mut head = vec![0u8; file_len.min(MAX_HEADER) as usize];
    src.read_exact_at(0, &mut head)?;
    let (eid, hl, size) = element(&head).ok_or(ScanError::NoHeader("EBML"))?;
    if eid != id::EBML {
        return Err(ScanError::NoHeader("EBML"));
    }
    let seg = hl + usize::try_from(size).map_err(|_| ScanError::NoHeader("EBML"))?;
    let (eid, hl, _) = head
        .get(seg..)
        .and_then(element)
        .ok_or(ScanError::NoHeader("Segment"))?;
    if eid != id::SEGMENT || hl != 12 {
        return Err(ScanError::Foreign {
            at: seg as u64,
            what: "Segment",
            why: "not a Segment with an 8-byte size",
        });
    }
    let mut layout = Layout {
        segment_size_at: seg as u64 + 4,
        segment_data_start: (seg + hl) as u64,
        ..Layout::default()
    };
    let mut pos = layout.segment_data_start;
    let mut tracks: Vec<(u64, bool, TrackEnd)> = Vec::new();
    let mut seen_tracks = false;
    let mut cues = Vec::new();
    let mut clusters = 0;
    let mut buf = Vec::new();
    loop {
        let mut h = [0u8; 12];
        let n = file_len.saturating_sub(pos).min(12) as usize;
        src.read_exact_at(pos, &mut h[..n])?;
        let Some((eid, hl, size)) = element(&h[..n]) else {
            break;
        };
        let data_at = pos + hl as u64;
        let Some(end) = data_at.checked_add(size).filter(|&e| e <= file_len) else {
            break;
        };
        match eid {
            id::SEEK_HEAD | id::INFO | id::TRACKS if !seen_tracks => {
                let body = head
                    .get(data_at as usize..end as usize)
                    .ok_or_else(no_header)?;
                read_header_element(eid, body, data_at, &mut layout, &mut tracks);
                seen_tracks |= eid == id::TRACKS;
            }
            id::VOID => {}
            id::CLUSTER if seen_tracks && size <= MAX_CLUSTER => {
                buf.resize(size as usize, 0);
                src.read_exact_at(data_at, &mut buf)?;
                let has_video = tracks.iter().any(|t| t.1);
                let mut time = 0i64;
                let mut first = true;
                for (eid, _, body) in children(&buf) {
                    match eid {
                        id::TIMESTAMP => time = uint(body) as i64,
                        id::SIMPLE_BLOCK if body.len() >= 4 => {
                            let Some((number, nl)) = read_vint(body) else {
                                continue;
                            };
                            let Some(b) = body.get(nl..nl + 3) else {
                                continue;
                            };
                            let rel = i16::from_be_bytes([b[0], b[1]]);
                            let key = b[2] & 0x80 != 0;
                            let Some(t) = tracks.iter_mut().find(|t| t.0 == number) else {
                                continue;
                            };
                            if first && key && (t.1 || !has_video) {
                                cues.push(Cue {
                                    time: time.max(0) as u64,
                                    track: number,
                                    cluster: pos - layout.segment_data_start,
                                });
                            }
                            first = false;
                            t.2.observe(time + i64::from(rel));
                        }
                        _ => {}
                    }
                }
                clusters += 1;
            }
            // Cues (a finalize cut short), a torn cluster, garbage: cut here.
            _ => break,
        }
        pos = end;
    }
    if !seen_tracks || layout.duration_at == 0 || layout.cues_seek_at == 0 {
        return Err(no_header());
    }
    Ok(RecoveredMkv {
        layout,
        cues,
        tracks: tracks.into_iter().map(|t| (t.1, t.2)).collect(),
        valid_len: pos,
        torn_bytes: file_len - pos,
        clusters,
    })
}

/// Picks the slots and track types out of SeekHead, Info and Tracks.
fn read_header_element(
    eid: u32,
    body: &[u8],
    at: u64,
    layout: &mut Layout,
    tracks: &mut Vec<(u64, bool, TrackEnd)>,
) {
    for (child, off, data) in children(body) {
        let child_at = at + off as u64;
        match (eid, child) {
            // The third SeekHead child is the Cues slot (a Void, or the Seek a
            // finalize already wrote).
            (id::SEEK_HEAD, id::VOID) if data.len() == 19 => layout.cues_seek_at = child_at,
            (id::SEEK_HEAD, id::SEEK) if seek_target(data) == Some(id::CUES) => {
                layout.cues_seek_at = child_at
            }
            (id::INFO, id::VOID | id::DURATION) if data.len() == 9 || data.len() == 8 => {
                layout.duration_at = child_at;
            }
            (id::TRACKS, id::TRACK_ENTRY) => {
                let mut number = 0;
                let mut video = false;
                for (f, _, v) in children(data) {
                    match f {
                        id::TRACK_NUMBER => number = uint(v),
                        id::TRACK_TYPE => video = uint(v) == 1,
                        _ => {}
                    }
                }
                tracks.push((number, video, TrackEnd::default()));
            }
            _ => {}
        }
    }
}

fn seek_target(seek: &[u8]) -> Option<u32> {
    children(seek)
        .find(|c| c.0 == id::SEEK_ID)
        .map(|c| uint(c.2) as u32)
}
