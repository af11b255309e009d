//! Start-up recovery and orphan reporting (fsck for recordings).
//!
//! Runs before the shards accept connections, with plain blocking I/O: every
//! recording the index still shows as being written is repaired — its open part is
//! scanned, a torn trailing fragment cut, the `mfra` and durations written exactly as
//! a clean finalize would — and marked `recovered`. Files under the recordings root
//! that no index row knows are reported, never deleted.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use chrono::Utc;
use edgerec_mux::fmp4::{finalize, scan};
use edgerec_mux::{mkv, ts, ScanError};
use thiserror::Error;

use crate::index::{FrameCounts, Index, PartState, Recording, RecordingState};
use crate::naming::{NameFacts, Sanitizer, Template};

#[derive(Debug, Error)]
pub enum RepairError {
    #[error("no playable media: {0}")]
    NoMedia(#[from] ScanError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// What repairing a file did.
#[derive(Debug, Clone)]
pub struct Repaired {
    pub size: u64,
    pub duration_ms: u64,
    pub torn_bytes: u64,
    pub fragments: u64,
    pub frames: FrameCounts,
}

/// Makes an unfinished recording file whole, whichever container it is (told by
/// its first bytes): cuts what follows the last complete fragment, appends the
/// index, patches durations, syncs. Never rewrites media.
pub fn repair_file(path: &Path) -> Result<Repaired, RepairError> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut magic = [0u8; 4];
    if len >= 4 {
        file.read_exact_at(&mut magic, 0)?;
    }
    if u32::from_be_bytes(magic) == mkv::ebml::id::EBML {
        return repair_mkv(file, len);
    }
    if magic[0] == 0x47 {
        return repair_ts(file, len);
    }
    let found = scan(&mut file, len)?;
    let (mfra, patches, duration) = finalize::tail(&found.layout, &found.totals);
    finish_in_place(&file, len, found.valid_len, &mfra, &patches)?;
    let mut frames = FrameCounts::default();
    for (t, l) in found.totals.iter().zip(&found.layout.tracks) {
        match &l.handler {
            b"vide" => frames.video += t.samples,
            _ => frames.audio += t.samples,
        }
    }
    Ok(Repaired {
        size: found.valid_len + mfra.len() as u64,
        duration_ms: duration.ticks().max(0) as u64,
        torn_bytes: found.torn_bytes,
        fragments: found.fragments,
        frames,
    })
}

/// Finishes a scanned file the way a clean stop would, in the durability order:
/// cut what follows the valid prefix, append the tail, sync, then patch and
/// sync (a crash between leaves a file the next scan finishes the same way).
fn finish_in_place(
    file: &std::fs::File,
    len: u64,
    valid_len: u64,
    tail: &[u8],
    patches: &[edgerec_mux::Patch],
) -> io::Result<()> {
    if valid_len < len {
        file.set_len(valid_len)?;
    }
    file.write_all_at(tail, valid_len)?;
    file.sync_data()?;
    for p in patches {
        file.write_all_at(&p.bytes, p.offset)?;
    }
    file.sync_all()
}

/// Matroska/WebM: cut after the last whole cluster, append the Cues, patch the
/// Duration, the Cues' Seek entry and the Segment size.
fn repair_mkv(mut file: std::fs::File, len: u64) -> Result<Repaired, RepairError> {
    let found = mkv::scan(&mut file, len)?;
    let duration_ms = found.duration_ms();
    let (cues, patches) =
        mkv::layout::tail(&found.layout, &found.cues, found.valid_len, duration_ms);
    finish_in_place(&file, len, found.valid_len, &cues, &patches)?;
    let mut frames = FrameCounts::default();
    for (video, end) in &found.tracks {
        if *video {
            frames.video += end.blocks;
        } else {
            frames.audio += end.blocks;
        }
    }
    Ok(Repaired {
        size: found.valid_len + cues.len() as u64,
        duration_ms: duration_ms.max(0) as u64,
        torn_bytes: found.torn_bytes,
        fragments: found.clusters,
        frames,
    })
}

/// MPEG-TS: cut after the last fragment mark, which also holds the totals.
fn repair_ts(mut file: std::fs::File, len: u64) -> Result<Repaired, RepairError> {
    let found = ts::scan(&mut file, len)?;
    finish_in_place(&file, len, found.valid_len, &[], &[])?;
    let t = found.totals;
    Ok(Repaired {
        size: found.valid_len,
        duration_ms: t.duration_ms.max(0) as u64,
        torn_bytes: found.torn_bytes,
        fragments: 0,
        frames: FrameCounts {
            video: t.video_frames,
            audio: t.audio_frames,
        },
    })
}

/// Recovers every open recording. Returns the recovered recordings (their
/// recovered parts get their hooks run).
pub fn recover_all(
    index: &Index,
    root: &Path,
    sanitizer: &Sanitizer,
) -> Result<Vec<Recording>, crate::EngineError> {
    let open = index.open_recordings()?;
    let mut done = Vec::new();
    for mut rec in open {
        if rec.state == RecordingState::Deleting {
            // A delete was interrupted: finish it.
            for p in &rec.parts {
                let _ = std::fs::remove_file(root.join(&p.path));
            }
            index.remove(&rec)?;
            tracing::info!(recording = %rec.id, "finished an interrupted delete");
            continue;
        }
        recover_one(&mut rec, root, sanitizer);
        index.put(&rec)?;
        done.push(rec);
    }
    index.flush_blocking()?;
    Ok(done)
}

fn recover_one(rec: &mut Recording, root: &Path, sanitizer: &Sanitizer) {
    let template = Template::parse(&rec.template).ok();
    let mut notes = Vec::new();
    for part in rec
        .parts
        .iter_mut()
        .filter(|p| p.state == PartState::Recording)
    {
        let path = root.join(&part.path);
        if !path.exists() {
            part.state = PartState::Missing;
            notes.push(format!("part {} missing", part.index));
            tracing::warn!(recording = %rec.id, part = part.index, path = %path.display(), "part file missing at recovery");
            continue;
        }
        match repair_file(&path) {
            Ok(r) => {
                part.state = PartState::Recovered;
                part.duration_ms = r.duration_ms;
                part.size_bytes = r.size;
                part.frames = r.frames;
                if r.torn_bytes > 0 {
                    notes.push(format!(
                        "part {}: cut a torn fragment of {} bytes",
                        part.index, r.torn_bytes
                    ));
                }
                tracing::info!(
                    recording = %rec.id, part = part.index, duration_ms = r.duration_ms,
                    fragments = r.fragments, torn_bytes = r.torn_bytes, "recovered part"
                );
                // Give it its final name if the template names files by their end.
                if let Some(t) = template.as_ref().filter(|t| t.needs_end()) {
                    let end =
                        part.started_at + chrono::Duration::milliseconds(r.duration_ms as i64);
                    let (app, name) = rec.stream.split_once('/').unwrap_or(("", &rec.stream));
                    let facts = NameFacts {
                        app,
                        stream_name: name,
                        start: part.started_at,
                        end: Some(end),
                        duration_ms: Some(r.duration_ms),
                        session_id: &rec.session_id,
                        media_session_id: &rec.id,
                        audio_codec: rec
                            .tracks
                            .iter()
                            .find(|t| t.kind == edgerec_media::MediaKind::Audio)
                            .map(|t| t.codec.name()),
                        video_codec: rec
                            .tracks
                            .iter()
                            .find(|t| t.kind == edgerec_media::MediaKind::Video)
                            .map(|t| t.codec.name()),
                        part: Some(part.index),
                    };
                    let current = PathBuf::from(&part.path);
                    let suffix = part_suffix(&current);
                    let ext = current
                        .extension()
                        .map(|e| e.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let target = sanitizer.path(&t.render(&facts), &suffix, &ext);
                    if target != current {
                        match crate::durable::move_durable(root, &current, &target) {
                            Ok(()) => part.path = target.to_string_lossy().into_owned(),
                            Err(e) => {
                                tracing::warn!(error = %e, "could not rename a recovered part")
                            }
                        }
                    }
                }
            }
            Err(RepairError::NoMedia(e)) => {
                part.state = PartState::Empty;
                part.duration_ms = 0;
                part.size_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
                notes.push(format!("part {}: {e}", part.index));
                tracing::warn!(recording = %rec.id, part = part.index, error = %e, "part has no playable media; file kept");
            }
            Err(RepairError::Io(e)) => {
                part.state = PartState::Failed;
                notes.push(format!("part {}: {e}", part.index));
                tracing::error!(recording = %rec.id, part = part.index, error = %e, "could not repair part");
            }
        }
    }
    rec.sum_parts();
    rec.state = RecordingState::Recovered;
    rec.stop_reason = Some("crash".into());
    let end = rec
        .parts
        .last()
        .map(|p| p.started_at + chrono::Duration::milliseconds(p.duration_ms as i64))
        .unwrap_or(rec.started_at);
    rec.ended_at = Some(end.min(Utc::now()).max(rec.started_at));
    if !notes.is_empty() {
        rec.error = Some(notes.join("; "));
    }
}

/// The `_N` part suffix of a file name, if it has one.
fn part_suffix(p: &Path) -> String {
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match stem.rsplit_once('_') {
        Some((_, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => format!("_{n}"),
        _ => String::new(),
    }
}

/// Files under `root` that no index row refers to (relative paths).
pub fn find_orphans(index: &Index, root: &Path) -> Result<Vec<String>, crate::EngineError> {
    let known = index.all_paths()?;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let path = e.path();
            if ft.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                let rel = rel.to_string_lossy().into_owned();
                if !known.contains(&rel) {
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}
