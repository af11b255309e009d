//! Live streams, by name. Touched when a publish starts or ends and when the API
//! looks — never per frame: per-frame counters are atomics on [`LiveStream`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use edgerec_media::TrackInfo;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::index::{Recording, TrackRecord};
use crate::recorder::RecordingRequest;
use crate::EngineError;

/// A command for the connection that owns a live stream.
pub enum StreamCommand {
    /// Start a recording (stopping the current one first).
    StartRecording {
        request: RecordingRequest,
        reply: oneshot::Sender<Result<Recording, EngineError>>,
    },
    /// Stop recording `id` (finalized when the reply comes).
    StopRecording {
        id: String,
        reply: oneshot::Sender<Result<Recording, EngineError>>,
    },
    /// Finalize and disconnect (shutdown).
    Shutdown { reply: oneshot::Sender<()> },
}

/// Counters updated by the owning shard with relaxed atomics.
#[derive(Default)]
pub struct StreamStats {
    pub bytes_in: AtomicU64,
    pub video_frames: AtomicU64,
    pub audio_frames: AtomicU64,
    pub bitrate_bps: AtomicU64,
    /// Protocol units skipped as malformed (RTMP messages, TS packets, ...).
    pub skipped: AtomicU64,
    /// Packets the transport lost (TS continuity gaps, RTP sequence gaps).
    pub packets_lost: AtomicU64,
    /// Packets that arrived out of order and were put back in order.
    pub packets_reordered: AtomicU64,
    /// Frames not recorded because part of them was lost or damaged.
    pub frames_dropped: AtomicU64,
    /// Clock jumps in the source (restarts, loops, splices), smoothed over.
    pub discontinuities: AtomicU64,
}

/// Damage counters of a live stream, as the API shows them.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct StreamCounters {
    pub skipped: u64,
    pub packets_lost: u64,
    pub packets_reordered: u64,
    pub frames_dropped: u64,
    pub discontinuities: u64,
}

impl StreamStats {
    pub fn counters(&self) -> StreamCounters {
        StreamCounters {
            skipped: self.skipped.load(Relaxed),
            packets_lost: self.packets_lost.load(Relaxed),
            packets_reordered: self.packets_reordered.load(Relaxed),
            frames_dropped: self.frames_dropped.load(Relaxed),
            discontinuities: self.discontinuities.load(Relaxed),
        }
    }
}

pub struct LiveStream {
    pub name: String,
    pub protocol: &'static str,
    /// The sender's address (for relayed RTP: known at the first packet).
    pub remote: RwLock<SocketAddr>,
    pub session_id: String,
    pub started_at: DateTime<Utc>,
    pub tracks: RwLock<Vec<TrackInfo>>,
    pub stats: StreamStats,
    /// The recording being written, if any.
    pub recording: RwLock<Option<String>>,
    /// Why the stream is not being recorded although it should be (low disk).
    pub blocked: RwLock<Option<String>>,
    pub commands: mpsc::Sender<StreamCommand>,
    /// The recorder waits for a video key frame (a part to begin or a rotation
    /// due); ingests that can ask the sender for one (WebRTC, relayed RTP) do.
    pub key_frame_wanted: AtomicBool,
}

/// What the API shows for a live stream.
#[derive(Serialize)]
pub struct StreamView {
    pub name: String,
    pub protocol: &'static str,
    pub remote_addr: String,
    pub session_id: String,
    pub started_at: DateTime<Utc>,
    pub tracks: Vec<TrackRecord>,
    pub bitrate_bps: u64,
    pub bytes_received: u64,
    pub frames: crate::index::FrameCounts,
    pub counters: StreamCounters,
    pub recording_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_blocked: Option<String>,
}

impl LiveStream {
    /// Asks the ingest to request a video key frame from the sender.
    pub fn want_key_frame(&self) {
        self.key_frame_wanted.store(true, Relaxed);
    }

    /// Whether a key frame was wanted since the last call.
    pub fn take_key_frame_request(&self) -> bool {
        self.key_frame_wanted.load(Relaxed) && self.key_frame_wanted.swap(false, Relaxed)
    }

    pub fn set_remote(&self, remote: SocketAddr) {
        *self.remote.write().unwrap_or_else(|e| e.into_inner()) = remote;
    }

    pub fn view(&self) -> StreamView {
        let read = |l: &RwLock<Option<String>>| l.read().unwrap_or_else(|e| e.into_inner()).clone();
        StreamView {
            name: self.name.clone(),
            protocol: self.protocol,
            remote_addr: self
                .remote
                .read()
                .map(|r| r.to_string())
                .unwrap_or_default(),
            session_id: self.session_id.clone(),
            started_at: self.started_at,
            tracks: self
                .tracks
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|t| TrackRecord::from_info(t, true, None))
                .collect(),
            bitrate_bps: self.stats.bitrate_bps.load(Relaxed),
            bytes_received: self.stats.bytes_in.load(Relaxed),
            frames: crate::index::FrameCounts {
                video: self.stats.video_frames.load(Relaxed),
                audio: self.stats.audio_frames.load(Relaxed),
            },
            counters: self.stats.counters(),
            recording_id: read(&self.recording),
            recording_blocked: read(&self.blocked),
        }
    }

    pub fn set_recording(&self, id: Option<String>) {
        *self.recording.write().unwrap_or_else(|e| e.into_inner()) = id;
    }

    pub fn set_blocked(&self, why: Option<String>) {
        *self.blocked.write().unwrap_or_else(|e| e.into_inner()) = why;
    }

    pub fn set_tracks(&self, tracks: Vec<TrackInfo>) {
        *self.tracks.write().unwrap_or_else(|e| e.into_inner()) = tracks;
    }
}

#[derive(Default)]
pub struct Registry {
    streams: Mutex<HashMap<String, Arc<LiveStream>>>,
}

impl Registry {
    /// Registers `stream` under its name; `false` if the name is already live.
    pub fn claim(&self, stream: Arc<LiveStream>) -> bool {
        let mut m = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if m.contains_key(&stream.name) {
            return false;
        }
        m.insert(stream.name.clone(), stream);
        true
    }

    /// Removes `stream` if it is the one registered under its name; `true` if it was.
    pub fn release(&self, stream: &Arc<LiveStream>) -> bool {
        let mut m = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let ours = m.get(&stream.name).is_some_and(|s| Arc::ptr_eq(s, stream));
        if ours {
            m.remove(&stream.name);
        }
        ours
    }

    pub fn get(&self, name: &str) -> Option<Arc<LiveStream>> {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<LiveStream>> {
        let mut v: Vec<_> = self
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The live stream writing recording `id`, if any.
    pub fn by_recording(&self, id: &str) -> Option<Arc<LiveStream>> {
        self.all().into_iter().find(|s| {
            s.recording
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .as_deref()
                == Some(id)
        })
    }
}
