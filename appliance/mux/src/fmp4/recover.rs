//! Scanning a fragmented MP4 left open by a crash.
//!
//! Walks the top-level boxes: `ftyp`, `moov`, then `moof`+`mdat` pairs. The file is
//! valid up to the end of the last complete pair; anything after it (a torn fragment,
//! a half-written `mfra`) is cut. The `moov` gives the [`InitLayout`] and each `moof`
//! the per-track totals, so [`super::finalize::tail`] can finish the file as a clean
//! stop would have. Only box headers and `moof`s are read, never media data.

use std::io;

use super::finalize::{EditLayout, InitLayout, TfraEntry, TrackLayout, TrackTotals};
use crate::bmff::{child, children, parse_header};
use crate::{ScanError, Source};

/// What a scan found.
#[derive(Debug, Clone)]
pub struct RecoveredFile {
    pub layout: InitLayout,
    pub totals: Vec<TrackTotals>,
    /// Length of the valid prefix: everything after it is to be cut.
    pub valid_len: u64,
    /// Bytes after the valid prefix (a torn fragment or tail).
    pub torn_bytes: u64,
    pub fragments: u64,
    /// The file already ended in an mfra (it was finalized or nearly so).
    pub had_mfra: bool,
}

/// The largest moof we accept (a fragment of a 4K stream has a few hundred samples).
const MAX_MOOF: u64 = 16 * 1024 * 1024;
const MAX_MOOV: u64 = 16 * 1024 * 1024;
/// The most samples one `trun` may claim. A run with no per-sample fields is
/// only its count, so without this cap a foreign 4-byte count would walk four
/// billion samples (a hang found by the `recover` fuzz target); a fragment of
/// seconds holds thousands.
const MAX_TRUN_SAMPLES: u32 = 1 << 20;

fn header_at(
    src: &mut dyn Source,
    offset: u64,
    file_len: u64,
) -> io::Result<Option<([u8; 4], u64, u64)>> {
    let avail = file_len.saturating_sub(offset).min(16) as usize;
    if avail < 8 {
        return Ok(None);
    }
    let mut h = [0u8; 16];
    src.read_exact_at(offset, &mut h[..avail])?;
    Ok(parse_header(&h[..avail]).map(|(kind, hl, size)| {
        let size = if size == u64::MAX {
            file_len - offset
        } else {
            size
        };
        (kind, hl as u64, size)
    }))
}

pub fn scan(src: &mut dyn Source, file_len: u64) -> Result<RecoveredFile, ScanError> {
    let mut pos = 0u64;
    let Some((kind, _, size)) = header_at(src, pos, file_len)? else {
        return Err(ScanError::NoHeader("ftyp+moov"));
    };
    if &kind != b"ftyp" || size > file_len {
        return Err(ScanError::NoHeader("ftyp+moov"));
    }
    pos += size;
    let Some((kind, _, size)) = header_at(src, pos, file_len)? else {
        return Err(ScanError::NoHeader("ftyp+moov"));
    };
    // Box sizes are read from the file: add them saturating (a 64-bit size can
    // overflow; found by the `recover` fuzz target).
    if &kind != b"moov" || pos.saturating_add(size) > file_len || size > MAX_MOOV {
        return Err(ScanError::NoHeader("ftyp+moov"));
    }
    let mut moov = vec![0u8; size as usize];
    src.read_exact_at(pos, &mut moov)?;
    let layout = parse_moov(&moov, pos)?;
    pos += size;

    let mut totals: Vec<TrackTotals> = layout
        .tracks
        .iter()
        .map(|t| TrackTotals {
            track_id: t.track_id,
            ..TrackTotals::default()
        })
        .collect();
    let mut valid_len = pos;
    let mut fragments = 0;
    let mut had_mfra = false;
    while let Some((kind, _, size)) = header_at(src, pos, file_len)? {
        if pos.saturating_add(size) > file_len {
            break;
        }
        match &kind {
            b"moof" if size <= MAX_MOOF => {
                let Some((mk, _, msize)) = header_at(src, pos + size, file_len)? else {
                    break;
                };
                if &mk != b"mdat" || (pos + size).saturating_add(msize) > file_len {
                    break;
                }
                let mut moof = vec![0u8; size as usize];
                src.read_exact_at(pos, &mut moof)?;
                if !apply_moof(&moof, pos, &mut totals) {
                    break;
                }
                fragments += 1;
                pos += size + msize;
                valid_len = pos;
            }
            b"free" | b"skip" => {
                pos += size;
                valid_len = pos;
            }
            b"mfra" => {
                had_mfra = true;
                break;
            }
            _ => break,
        }
    }
    Ok(RecoveredFile {
        layout,
        totals,
        valid_len,
        torn_bytes: file_len - valid_len,
        fragments,
        had_mfra,
    })
}

/// Finds the duration fields in a moov at file offset `at`.
fn parse_moov(moov: &[u8], at: u64) -> Result<InitLayout, ScanError> {
    let foreign = |why| ScanError::Foreign {
        at,
        what: "moov",
        why,
    };
    let body = &moov[8..];
    let body_at = at + 8;
    let mvhd = child(body, b"mvhd").ok_or(foreign("no mvhd"))?;
    if mvhd.body.first() != Some(&1) {
        return Err(foreign("mvhd is not version 1"));
    }
    let mvhd_duration_at = body_at + mvhd.offset as u64 + mvhd.header_len as u64 + 4 + 8 + 8 + 4;
    let mehd_duration_at = child(body, b"mvex").and_then(|mvex| {
        let mehd = child(mvex.body, b"mehd")?;
        (mehd.body.first() == Some(&1)).then(|| {
            body_at
                + mvex.offset as u64
                + mvex.header_len as u64
                + mehd.offset as u64
                + mehd.header_len as u64
                + 4
        })
    });
    let mut tracks = Vec::new();
    for trak in children(body).filter(|b| &b.kind == b"trak") {
        let trak_at = body_at + trak.offset as u64 + trak.header_len as u64;
        let tkhd = child(trak.body, b"tkhd").ok_or(foreign("trak without tkhd"))?;
        let mdia = child(trak.body, b"mdia").ok_or(foreign("trak without mdia"))?;
        let mdhd = child(mdia.body, b"mdhd").ok_or(foreign("mdia without mdhd"))?;
        if tkhd.body.first() != Some(&1) || mdhd.body.first() != Some(&1) {
            return Err(foreign("tkhd/mdhd not version 1"));
        }
        if tkhd.body.len() < 32 || mdhd.body.len() < 32 {
            return Err(foreign("tkhd/mdhd truncated"));
        }
        let track_id = u32::from_be_bytes(tkhd.body[20..24].try_into().unwrap_or_default());
        let timescale = u32::from_be_bytes(mdhd.body[20..24].try_into().unwrap_or_default());
        let mdia_at = trak_at + mdia.offset as u64 + mdia.header_len as u64;
        let edit = child(trak.body, b"edts").and_then(|edts| {
            let elst = child(edts.body, b"elst")?;
            if elst.body.first() != Some(&1) {
                return None;
            }
            let elst_at = trak_at
                + edts.offset as u64
                + edts.header_len as u64
                + elst.offset as u64
                + elst.header_len as u64;
            let count = be32(elst.body, 4)? as usize;
            let mut empty = 0;
            for i in 0..count.min(2) {
                let at = 8 + i * 20;
                let e = elst.body.get(at..at + 20)?;
                let duration = u64::from_be_bytes(e[0..8].try_into().ok()?);
                let media_time = i64::from_be_bytes(e[8..16].try_into().ok()?);
                if media_time == -1 {
                    empty = duration;
                } else {
                    return Some(EditLayout {
                        empty,
                        media_time,
                        segment_duration_at: elst_at + at as u64,
                    });
                }
            }
            None
        });
        let handler = child(mdia.body, b"hdlr")
            .and_then(|h| h.body.get(8..12))
            .and_then(|b| b.try_into().ok())
            .unwrap_or(*b"    ");
        tracks.push(TrackLayout {
            track_id,
            handler,
            timescale,
            tkhd_duration_at: trak_at + tkhd.offset as u64 + tkhd.header_len as u64 + 28,
            mdhd_duration_at: mdia_at + mdhd.offset as u64 + mdhd.header_len as u64 + 24,
            edit,
        });
    }
    Ok(InitLayout {
        mvhd_duration_at,
        mehd_duration_at,
        tracks,
    })
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Adds a moof's samples to the totals; `false` if the moof is malformed.
fn apply_moof(moof: &[u8], moof_offset: u64, totals: &mut [TrackTotals]) -> bool {
    let trafs = children(&moof[8..]).filter(|b| &b.kind == b"traf");
    for (traf_number, traf) in (1u32..).zip(trafs) {
        let Some(tfhd) = child(traf.body, b"tfhd") else {
            return false;
        };
        let Some(flags) = be32(tfhd.body, 0) else {
            return false;
        };
        let Some(track_id) = be32(tfhd.body, 4) else {
            return false;
        };
        let mut p = 8;
        if flags & 0x01 != 0 {
            p += 8;
        }
        if flags & 0x02 != 0 {
            p += 4;
        }
        let default_duration = if flags & 0x08 != 0 {
            let v = be32(tfhd.body, p);
            p += 4;
            v
        } else {
            None
        };
        if flags & 0x10 != 0 {
            p += 4;
        }
        let default_flags = if flags & 0x20 != 0 {
            be32(tfhd.body, p)
        } else {
            None
        };

        let base = match child(traf.body, b"tfdt") {
            Some(t) if t.body.first() == Some(&1) => t
                .body
                .get(4..12)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes),
            Some(t) => be32(t.body, 4).map(u64::from),
            None => None,
        };
        let Some(total) = totals.iter_mut().find(|t| t.track_id == track_id) else {
            continue;
        };
        let mut dts = base.unwrap_or(total.end_ticks);
        let mut sample_index = 0u32;
        let mut first_sync: Option<(u64, u32)> = None;

        for trun in children(traf.body).filter(|b| &b.kind == b"trun") {
            let b = trun.body;
            let Some(tflags) = be32(b, 0) else {
                return false;
            };
            let Some(count) = be32(b, 4).filter(|&c| c <= MAX_TRUN_SAMPLES) else {
                return false;
            };
            let mut p = 8;
            if tflags & 0x001 != 0 {
                p += 4;
            }
            let first_flags = if tflags & 0x004 != 0 {
                let v = be32(b, p);
                p += 4;
                v
            } else {
                None
            };
            let per = [0x100, 0x200, 0x400, 0x800]
                .iter()
                .filter(|&&f| tflags & f != 0)
                .count()
                * 4;
            if b.len() < p + per * count as usize {
                return false;
            }
            for i in 0..count {
                let mut q = p + per * i as usize;
                let duration = if tflags & 0x100 != 0 {
                    let v = be32(b, q);
                    q += 4;
                    v
                } else {
                    default_duration
                }
                .unwrap_or(0);
                if tflags & 0x200 != 0 {
                    q += 4;
                }
                let sflags = if tflags & 0x400 != 0 {
                    be32(b, q)
                } else if i == 0 && first_flags.is_some() {
                    first_flags
                } else {
                    default_flags
                };

                sample_index += 1;
                let sync = sflags.is_none_or(|f| f & 0x0001_0000 == 0);
                if sync && first_sync.is_none() {
                    first_sync = Some((dts, sample_index));
                }
                dts = dts.saturating_add(u64::from(duration));
            }
            total.samples += count as u64;
        }
        if let Some((time, sample_number)) = first_sync {
            total.tfra.push(TfraEntry {
                time,
                moof_offset,
                traf_number,
                sample_number,
            });
        }
        total.end_ticks = total.end_ticks.max(dts);
    }
    true
}
