//! What the index stores about a recording (also what the API returns).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use edgerec_media::{MediaKind, TrackInfo, TrackParams};
use serde::{Deserialize, Serialize};

use crate::config::{Container, Rotation};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingState {
    /// Being written.
    Recording,
    /// Stopped and finalized cleanly.
    Finalized,
    /// Left open by a crash or power cut; repaired at the next start.
    Recovered,
    /// Could not be written (write or sync error); what was written is kept playable.
    Failed,
    /// Being deleted (files are being removed).
    Deleting,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartState {
    Recording,
    Finalized,
    Recovered,
    /// Recovery found no playable media in the file (it is kept, never deleted).
    Empty,
    /// The file was not found at recovery.
    Missing,
    Failed,
    /// Deleted by a hook (the row stays, so the recording's history does).
    Deleted,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameCounts {
    pub video: u64,
    pub audio: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// 1-based.
    pub index: u32,
    /// Relative to the recordings root, `/`-separated.
    pub path: String,
    pub state: PartState,
    pub started_at: DateTime<Utc>,
    /// Media time of the part's start from the recording's start.
    pub start_offset_ms: u64,
    pub duration_ms: u64,
    pub size_bytes: u64,
    /// Wall-clock time of the part's first video key frame (its first frame).
    pub first_keyframe_at: Option<DateTime<Utc>>,
    pub frames: FrameCounts,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackRecord {
    pub id: u32,
    pub kind: MediaKind,
    pub codec: edgerec_media::Codec,
    pub codec_string: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u8>,
    /// False when the container cannot hold the codec; `note` says so.
    pub recorded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl TrackRecord {
    pub fn from_info(t: &TrackInfo, recorded: bool, note: Option<String>) -> TrackRecord {
        let (mut width, mut height, mut sample_rate, mut channels) = (None, None, None, None);
        match &t.params {
            TrackParams::Video(v) => {
                width = Some(v.width);
                height = Some(v.height);
            }
            TrackParams::Audio(a) => {
                sample_rate = Some(a.sample_rate);
                channels = Some(a.channels);
            }
        }
        TrackRecord {
            id: t.id.0,
            kind: t.kind(),
            codec: t.codec,
            codec_string: t.codec_string.clone(),
            width,
            height,
            sample_rate,
            channels,
            recorded,
            note,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    /// ULID: sorts by start time.
    pub id: String,
    /// `app/name`.
    pub stream: String,
    pub protocol: String,
    pub session_id: String,
    pub state: RecordingState,
    /// Why it stopped: `unpublished`, `api`, `restarted`, `disk_low`, `shutdown`,
    /// `write_error`, `crash`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// The error behind a `failed` state or a recovery note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_ms: u64,
    pub size_bytes: u64,
    pub container: Container,
    pub template: String,
    pub rotation: Rotation,
    pub tracks: Vec<TrackRecord>,
    pub tags: BTreeMap<String, String>,
    pub parts: Vec<Part>,
    /// Hook runs on its parts, filled in on read (they are kept in the index's
    /// hook tree, not in this row).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<super::changes::HookRun>,
}

impl Recording {
    /// Recomputes the totals from the parts.
    pub fn sum_parts(&mut self) {
        self.duration_ms = self.parts.iter().map(|p| p.duration_ms).sum();
        self.size_bytes = self.parts.iter().map(|p| p.size_bytes).sum();
    }
}
