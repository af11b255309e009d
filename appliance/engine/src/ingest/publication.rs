//! A live feed as every ingest sees it, whatever its protocol: claimed in the
//! registry under its name, recorded by policy or by the API, fed tracks and frames,
//! ended with a reason.
//!
//! Protocol glue (RTMP, MPEG-TS, ...) turns its sessions' events into calls here, so
//! recording, counters and API commands behave the same for every protocol and the
//! recorder never learns where frames came from.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use edgerec_media::{Frame, MediaKind, TrackInfo};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::index::Recording;
use crate::recorder::{self, RecorderHandle, RecordingRequest, Settings};
use crate::registry::{LiveStream, StreamCommand};
use crate::{EngineError, Shared};

/// Who is publishing: the facts the registry and the index keep about a feed.
pub struct Origin {
    pub protocol: &'static str,
    pub remote: SocketAddr,
    pub session_id: String,
}

/// A claimed live stream and its recorder.
pub struct Publication {
    shared: Arc<Shared>,
    live: Arc<LiveStream>,
    tracks: Vec<TrackInfo>,
    recorder: Option<RecorderHandle>,
    /// Frames since the last [`Publication::send_frames`], for the recorder.
    batch: Vec<Frame>,
    /// Whether this stream should be recorded (policy or API), and with what.
    wanted: Option<RecordingRequest>,
    commands: mpsc::Receiver<StreamCommand>,
    window_start: Instant,
    window_bytes: u64,
}

impl Publication {
    /// Claims `name`; `None` if it is already live (the caller refuses the publish).
    /// Starts recording when the policy says so (a disk too full is logged and
    /// retried on later key frames, not an error).
    pub async fn open(shared: &Arc<Shared>, name: String, origin: Origin) -> Option<Publication> {
        let (commands_tx, commands) = mpsc::channel(8);
        let live = Arc::new(LiveStream {
            name: name.clone(),
            protocol: origin.protocol,
            remote: RwLock::new(origin.remote),
            session_id: origin.session_id,
            started_at: Utc::now(),
            tracks: RwLock::new(Vec::new()),
            stats: Default::default(),
            recording: RwLock::new(None),
            blocked: RwLock::new(None),
            commands: commands_tx,
            key_frame_wanted: Default::default(),
        });
        if !shared.registry.claim(live.clone()) {
            warn!(stream = %name, "refused: the stream is already being published");
            shared.metrics.publishes_refused_total.fetch_add(1, Relaxed);
            return None;
        }
        info!(stream = %name, protocol = origin.protocol, "publishing");
        shared.metrics.live_streams.fetch_add(1, Relaxed);
        let mut p = Publication {
            shared: shared.clone(),
            live,
            tracks: Vec::new(),
            recorder: None,
            batch: Vec::new(),
            wanted: None,
            commands,
            window_start: Instant::now(),
            window_bytes: 0,
        };
        if shared.policy.records(&name) {
            p.wanted = Some(RecordingRequest::default());
            p.start_recording().await.ok();
        }
        Some(p)
    }

    pub fn live(&self) -> &Arc<LiveStream> {
        &self.live
    }

    pub fn tracks(&self) -> &[TrackInfo] {
        &self.tracks
    }

    /// The next API command for this stream (pending forever if there is none).
    pub async fn command(&mut self) -> Option<StreamCommand> {
        self.commands.recv().await
    }

    /// A new or changed track (replaces the track with the same id).
    pub async fn track(&mut self, t: TrackInfo) {
        info!(track = t.id.0, codec = %t.codec_string, params = ?t.params, "track");
        match self.tracks.iter_mut().find(|x| x.id == t.id) {
            Some(x) => *x = t,
            None => self.tracks.push(t),
        }
        self.live.set_tracks(self.tracks.clone());
        // Frames before the change belong to the old track set.
        self.send_frames().await;
        if let Some(r) = &self.recorder {
            if !r.tracks(self.tracks.clone()).await {
                self.recorder = None;
            }
        }
    }

    /// Counts a frame and queues it for the recorder (sent by [`Self::send_frames`]).
    pub async fn frame(&mut self, f: Frame) {
        let video = self
            .tracks
            .iter()
            .any(|t| t.id == f.track && t.kind() == MediaKind::Video);
        let m = &self.shared.metrics;
        if video {
            self.live.stats.video_frames.fetch_add(1, Relaxed);
            m.frames_received_video.fetch_add(1, Relaxed);
        } else {
            self.live.stats.audio_frames.fetch_add(1, Relaxed);
            m.frames_received_audio.fetch_add(1, Relaxed);
        }
        if self.recorder.as_ref().is_some_and(|r| r.is_closed()) {
            // It ended itself (low disk, write error): its row says why.
            self.recorder = None;
            self.batch.clear();
        }
        if self.recorder.is_none() && self.wanted.is_some() && f.key {
            // Resume once space is back (checked at most once a second).
            if self.shared.space.check().is_ok() {
                self.start_recording().await.ok();
            }
        }
        if self.recorder.is_some() {
            self.batch.push(f);
        }
    }

    /// Hands the queued frames to the recorder in one message (once per read).
    pub async fn send_frames(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let frames = std::mem::take(&mut self.batch);
        if let Some(r) = &self.recorder {
            if !r.frames(frames).await {
                self.recorder = None;
            }
        }
    }

    /// Counts received bytes and keeps the stream's bitrate (1 s windows).
    pub fn count_bytes(&mut self, n: u64) {
        self.live.stats.bytes_in.fetch_add(n, Relaxed);
        self.window_bytes += n;
        let el = self.window_start.elapsed();
        if el >= Duration::from_secs(1) {
            self.live.stats.bitrate_bps.store(
                (self.window_bytes as f64 * 8.0 / el.as_secs_f64()) as u64,
                Relaxed,
            );
            self.window_bytes = 0;
            self.window_start = Instant::now();
        }
    }

    async fn start_recording(&mut self) -> Result<Recording, EngineError> {
        let Some(req) = self.wanted.clone() else {
            return Err(EngineError::Unavailable("recording not wanted".into()));
        };
        let live = &self.live;
        let settings = Settings::resolve(&self.shared, &req)?;
        match recorder::start(
            self.shared.clone(),
            live.clone(),
            self.tracks.clone(),
            settings,
        )
        .await
        {
            Ok((h, rec)) => {
                self.recorder = Some(h);
                Ok(rec)
            }
            Err(e) => {
                if let EngineError::DiskLow(why) = &e {
                    if live.blocked.read().map(|b| b.is_none()).unwrap_or(true) {
                        warn!(stream = %live.name, %why, "not recording");
                    }
                    live.set_blocked(Some(why.clone()));
                } else {
                    warn!(stream = %live.name, error = %e, "could not start recording");
                }
                Err(e)
            }
        }
    }

    /// Handles an API command; `true` when the feed must end (shutdown), in which
    /// case the publication has already ended.
    pub async fn on_command(&mut self, cmd: StreamCommand) -> bool {
        match cmd {
            StreamCommand::StartRecording { request, reply } => {
                self.send_frames().await;
                if let Some(r) = self.recorder.take() {
                    r.stop("restarted").await;
                }
                self.wanted = Some(request);
                let _ = reply.send(self.start_recording().await);
                false
            }
            StreamCommand::StopRecording { id, reply } => {
                self.send_frames().await;
                let r = match self.recorder.take() {
                    Some(r) if r.id == id => {
                        self.wanted = None;
                        match r.stop("api").await {
                            Some(rec) => Ok(rec),
                            None => self
                                .shared
                                .index
                                .get(&id)
                                .map_err(EngineError::from)
                                .and_then(|r| r.ok_or(EngineError::RecordingNotFound(id))),
                        }
                    }
                    other => {
                        self.recorder = other;
                        Err(EngineError::NotRecording(id))
                    }
                };
                let _ = reply.send(r);
                false
            }
            StreamCommand::Shutdown { reply } => {
                self.end_inner("shutdown").await;
                let _ = reply.send(());
                true
            }
        }
    }

    /// Finalizes the recording and releases the name.
    pub async fn end(mut self, reason: &'static str) {
        self.end_inner(reason).await;
    }

    async fn end_inner(&mut self, reason: &'static str) {
        self.send_frames().await;
        if let Some(r) = self.recorder.take() {
            r.stop(reason).await;
        }
        self.wanted = None;
        if self.shared.registry.release(&self.live) {
            self.shared.metrics.live_streams.fetch_sub(1, Relaxed);
            info!(stream = %self.live.name, reason, "stream ended");
        }
    }
}

/// Waits for the next command of an optional publication (never, without one).
pub async fn next_command(p: Option<&mut Publication>) -> Option<StreamCommand> {
    match p {
        Some(p) => p.command().await,
        None => std::future::pending().await,
    }
}
