//! One recording: frames in; parts named, rotated, muxed, written and indexed.
//!
//! A recorder is a task on the shard that owns the stream's connection. The
//! connection sends it frames and track changes over a bounded channel (so a slow
//! disk slows the publisher instead of dropping frames) and a final stop. The
//! recorder owns its muxer and its open file; it touches the index only when a
//! part starts or ends, after the data it describes is durable.

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use edgerec_media::{Frame, MediaKind, MediaTime, Timescale, TrackInfo};
use edgerec_mux::{FileConfig, FileMuxer, Format, PushOutcome, Unsupported, WriteBatch};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};
use ulid::Ulid;

use crate::config::{Container, Rotation, SyncPolicy};
use crate::hooks::HookQueue;
use crate::index::{FrameCounts, Part, PartState, Recording, RecordingState, TrackRecord};
use crate::metrics::DropReason;
use crate::naming::{NameFacts, Template};
use crate::registry::LiveStream;
use crate::writer::{rename_durable, timed, PartFile, WriterOptions, DIRECT_ALIGN};
use crate::{EngineError, Shared};

/// Reads (batches of frames) queued ahead of a slow disk before the connection stops
/// reading and TCP pushes back on the publisher: an RTMP read takes at most 64 KiB,
/// so at most 4 MiB, about 13 s of a 2.5 Mbit/s feed.
const CHANNEL_BATCHES: usize = 64;

/// Per-call overrides of the configured recording settings (REST body).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingRequest {
    pub template: Option<String>,
    pub rotation: Option<Rotation>,
    pub container: Option<Container>,
}

/// Settings of one recording, resolved from the config and a request.
#[derive(Clone)]
pub struct Settings {
    pub template: Template,
    pub rotation: Rotation,
    pub container: Container,
}

impl Settings {
    pub fn resolve(shared: &Shared, req: &RecordingRequest) -> Result<Settings, EngineError> {
        let template = match &req.template {
            Some(t) => {
                Template::parse(t).map_err(|e| EngineError::BadRequest(format!("template: {e}")))?
            }
            None => shared.default_template.clone(),
        };
        Ok(Settings {
            template,
            rotation: req.rotation.unwrap_or(shared.config.recording.rotation),
            container: req.container.unwrap_or(shared.config.recording.container),
        })
    }
}

enum Msg {
    /// The frames of one read, in order.
    Frames(Vec<Frame>),
    Tracks(Vec<TrackInfo>),
    Stop {
        reason: &'static str,
        reply: oneshot::Sender<Recording>,
    },
}

/// The connection's side of a recorder.
pub struct RecorderHandle {
    pub id: String,
    tx: mpsc::Sender<Msg>,
}

impl RecorderHandle {
    /// Hands frames over; `false` if the recorder has ended (error or low disk).
    pub async fn frames(&self, f: Vec<Frame>) -> bool {
        self.tx.send(Msg::Frames(f)).await.is_ok()
    }

    pub async fn tracks(&self, t: Vec<TrackInfo>) -> bool {
        self.tx.send(Msg::Tracks(t)).await.is_ok()
    }

    /// Whether the recorder has ended on its own.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Stops and finalizes; the finished record, or `None` if the recorder had
    /// already ended (its record is in the index).
    pub async fn stop(self, reason: &'static str) -> Option<Recording> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Msg::Stop { reason, reply }).await.ok()?;
        rx.await.ok()
    }
}

/// Starts recording `stream`: checks free space, writes the index row, spawns the
/// task on the current shard.
pub async fn start(
    shared: Arc<Shared>,
    stream: Arc<LiveStream>,
    tracks: Vec<TrackInfo>,
    settings: Settings,
) -> Result<(RecorderHandle, Recording), EngineError> {
    if let Err(why) = shared.space.check() {
        shared
            .metrics
            .recordings_refused_disk_total
            .fetch_add(1, Relaxed);
        return Err(EngineError::DiskLow(why));
    }
    let id = Ulid::new().to_string();
    let now = Utc::now();
    let rec = Recording {
        id: id.clone(),
        stream: stream.name.clone(),
        protocol: stream.protocol.to_owned(),
        session_id: stream.session_id.clone(),
        state: RecordingState::Recording,
        stop_reason: None,
        error: None,
        started_at: now,
        ended_at: None,
        duration_ms: 0,
        size_bytes: 0,
        container: settings.container,
        template: settings.template.source().to_owned(),
        rotation: settings.rotation,
        tracks: tracks
            .iter()
            .map(|t| TrackRecord::from_info(t, true, None))
            .collect(),
        tags: Default::default(),
        parts: Vec::new(),
        hooks: Vec::new(),
    };
    shared.index.put(&rec)?;
    shared.index.flush().await?;
    shared
        .metrics
        .recordings_started_total
        .fetch_add(1, Relaxed);
    shared.metrics.active_recordings.fetch_add(1, Relaxed);
    stream.set_recording(Some(id.clone()));
    stream.set_blocked(None);
    info!(recording = %id, stream = %stream.name, template = %settings.template.source(), "recording started");
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    let r = Recorder {
        shared,
        stream,
        settings,
        tracks,
        rec: rec.clone(),
        part: None,
        origin: None,
        preroll: Vec::new(),
    };
    tokio_uring::spawn(r.run(rx));
    Ok((RecorderHandle { id, tx }, rec))
}

struct OpenPart {
    file: PartFile,
    rel: PathBuf,
    format: Format,
    muxer: FileMuxer,
    frames: FrameCounts,
    /// The part's frames until its first write: while nothing is on disk, a
    /// track that arrives late (WebRTC audio a few ms after the first video
    /// frame, G.711 after the first key frame) begins the part again, with
    /// every track and in the container `auto` now picks.
    unwritten: Option<Vec<Frame>>,
}

struct Recorder {
    shared: Arc<Shared>,
    stream: Arc<LiveStream>,
    settings: Settings,
    tracks: Vec<TrackInfo>,
    rec: Recording,
    part: Option<OpenPart>,
    /// Decode time of the recording's first frame.
    origin: Option<MediaTime>,
    /// Audio that came before the first video key frame of a part, kept if it is
    /// at most [`PREROLL`] ahead of it (senders interleave audio a little early).
    preroll: Vec<Frame>,
}

/// How far audio may precede the video key frame a part starts with and still be
/// recorded (with the video track starting after an empty edit).
const PREROLL: MediaTime = MediaTime::new(200, Timescale::MILLIS);
/// Audio frames held while waiting for a key frame (older ones are dropped).
const PREROLL_FRAMES: usize = 64;

/// Why a recorder ended early.
enum Halt {
    /// Free space fell below the minimum; finalized cleanly.
    DiskLow(String),
    /// A write or sync failed.
    Failed(String),
}

impl Recorder {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut stop: Option<(&'static str, Option<oneshot::Sender<Recording>>)> = None;
        while let Some(msg) = rx.recv().await {
            let r = match msg {
                Msg::Frames(frames) => {
                    let mut r = Ok(());
                    for f in frames {
                        r = self.on_frame(f).await;
                        if r.is_err() {
                            break;
                        }
                    }
                    r
                }
                Msg::Tracks(t) => self.on_tracks(t).await,
                Msg::Stop { reason, reply } => {
                    stop = Some((reason, Some(reply)));
                    break;
                }
            };
            if let Err(h) = r {
                self.halt(h).await;
                return;
            }
        }
        let (reason, reply) = stop.unwrap_or(("unpublished", None));
        let r = self.close_part(PartState::Finalized).await;
        if let Err(h) = r {
            self.halt(h).await;
            if let (Some(reply), Ok(Some(rec))) = (reply, self.shared.index.get(&self.rec.id)) {
                let _ = reply.send(rec);
            }
            return;
        }
        self.rec.state = RecordingState::Finalized;
        self.rec.stop_reason = Some(reason.to_owned());
        self.end().await;
        info!(
            recording = %self.rec.id, stream = %self.rec.stream, reason,
            duration_ms = self.rec.duration_ms, size = self.rec.size_bytes,
            parts = self.rec.parts.len(), "recording finalized"
        );
        if let Some(reply) = reply {
            let _ = reply.send(self.rec.clone());
        }
    }

    /// Common end: record the end, update the stream, commit the row.
    async fn end(&mut self) {
        self.rec.ended_at = Some(Utc::now());
        self.rec.sum_parts();
        self.shared.metrics.active_recordings.fetch_sub(1, Relaxed);
        {
            let mut cur = self
                .stream
                .recording
                .write()
                .unwrap_or_else(|e| e.into_inner());
            if cur.as_deref() == Some(self.rec.id.as_str()) {
                *cur = None;
            }
        }
        if let Err(e) = self.commit().await {
            error!(recording = %self.rec.id, error = %e, "could not update the index");
        }
    }

    async fn commit(&self) -> Result<(), EngineError> {
        self.shared.index.put(&self.rec)?;
        self.shared.index.flush().await?;
        Ok(())
    }

    async fn halt(&mut self, h: Halt) {
        match h {
            Halt::DiskLow(why) => {
                warn!(recording = %self.rec.id, stream = %self.rec.stream, %why, "stopping recording: low disk space");
                if let Err(Halt::Failed(e)) = self.close_part(PartState::Finalized).await {
                    self.fail_part(&e).await;
                    self.rec.state = RecordingState::Failed;
                    self.rec.error = Some(e);
                } else {
                    self.rec.state = RecordingState::Finalized;
                }
                self.rec.stop_reason = Some("disk_low".into());
                self.stream.set_blocked(Some(why));
            }
            Halt::Failed(e) => {
                error!(recording = %self.rec.id, stream = %self.rec.stream, error = %e, "recording failed; keeping what was written");
                self.fail_part(&e).await;
                self.shared
                    .metrics
                    .recordings_failed_total
                    .fetch_add(1, Relaxed);
                self.rec.state = RecordingState::Failed;
                self.rec.stop_reason = Some("write_error".into());
                self.rec.error = Some(e);
            }
        }
        self.end().await;
    }

    /// After a write or sync error: drop the unsynced tail (its contents are
    /// unknown), then make what is durable playable, as recovery would.
    async fn fail_part(&mut self, why: &str) {
        let Some(mut p) = self.part.take() else {
            return;
        };
        let kept = p.file.abandon_unsynced();
        let path = p.file.path().to_path_buf();
        let _ = p.file.close().await;
        let last = self.rec.parts.last_mut();
        let Some(part) = last else { return };
        part.state = PartState::Failed;
        match (kept, crate::recovery::repair_file(&path)) {
            (Ok(_), Ok(r)) => {
                part.duration_ms = r.duration_ms;
                part.size_bytes = r.size;
                part.frames = r.frames;
                warn!(path = %path.display(), kept_ms = r.duration_ms, "failed part repaired up to its last durable fragment");
            }
            (k, r) => {
                error!(path = %path.display(), truncate = ?k.err(), repair = ?r.err(), why, "failed part could not be repaired");
            }
        }
    }

    async fn on_tracks(&mut self, tracks: Vec<TrackInfo>) -> Result<(), Halt> {
        if tracks == self.tracks {
            return Ok(());
        }
        self.tracks = tracks;
        let containers = &self.shared.config.recording.containers;
        let format = self.settings.container.resolve(&self.tracks, containers);
        if self
            .part
            .as_ref()
            .is_some_and(|p| p.format != format && p.unwritten.is_some())
        {
            return self.reopen_part().await;
        }
        if let Some(p) = self.part.as_mut() {
            match p.muxer.update_tracks(&self.tracks) {
                Ok(left_out) => self.note_tracks(&left_out),
                // A muxer fixes its track list at its first frame (Matroska) or
                // its first write (MP4, TS). While nothing is on disk the part
                // is begun again with every track: a WebRTC sender's audio
                // arrives a few ms after its first video frame.
                Err(edgerec_mux::TracksFixed) if p.unwritten.is_some() => {
                    return self.reopen_part().await;
                }
                Err(edgerec_mux::TracksFixed) => {
                    // Sample entries are fixed once written: a new part begins.
                    info!(recording = %self.rec.id, "tracks changed; starting a new part");
                    self.close_part(PartState::Finalized).await?;
                }
            }
        } else {
            self.note_tracks(&[]);
        }
        Ok(())
    }

    fn note_tracks(&mut self, left_out: &[Unsupported]) {
        self.rec.tracks = self
            .tracks
            .iter()
            .map(|t| {
                let why = left_out.iter().find(|u| u.track == t.id);
                TrackRecord::from_info(t, why.is_none(), why.map(|u| u.to_string()))
            })
            .collect();
    }

    async fn on_frame(&mut self, f: Frame) -> Result<(), Halt> {
        let video_track = self
            .tracks
            .iter()
            .find(|t| t.id == f.track)
            .map(|t| t.kind() == MediaKind::Video);
        let Some(is_video) = video_track else {
            self.shared.metrics.dropped(DropReason::UnsupportedTrack);
            return Ok(());
        };
        let has_video = self.tracks.iter().any(|t| t.kind() == MediaKind::Video);
        let cut_point = if has_video { is_video && f.key } else { true };

        if let Some(p) = &self.part {
            if (cut_point || is_video) && self.rotation_due(p) {
                if cut_point {
                    self.close_part(PartState::Finalized).await?;
                } else {
                    // A WebRTC sender makes key frames only when asked.
                    self.stream.want_key_frame();
                }
            }
        }
        let mut preroll = Vec::new();
        if self.part.is_none() {
            if has_video && !cut_point {
                // A part starts with a key frame; audio just before it is held.
                if !is_video {
                    if self.preroll.len() == PREROLL_FRAMES {
                        self.preroll.remove(0);
                        self.shared.metrics.dropped(DropReason::BeforeKeyFrame);
                    }
                    self.preroll.push(f);
                } else {
                    self.shared.metrics.dropped(DropReason::BeforeKeyFrame);
                    self.stream.want_key_frame();
                }
                return Ok(());
            }
            // Held audio later than the key frame belongs to the part too: it came
            // first because the sender's video is delayed (RTP video waits for its
            // decode times) or interleaved late.
            let earliest = f.dts.saturating_sub(PREROLL);
            for a in self.preroll.drain(..) {
                if a.dts >= earliest {
                    preroll.push(a);
                } else {
                    self.shared.metrics.dropped(DropReason::BeforeKeyFrame);
                }
            }
            let on_key = is_video && f.key;
            // The part starts at the earliest decode time, so no frame of it
            // lands before its origin.
            let first = preroll
                .iter()
                .chain(std::iter::once(&f))
                .min_by_key(|a| a.dts);
            self.open_part(first.unwrap_or(&f), on_key).await?;
        }
        // In decode order: held audio before the key frame, then the key frame,
        // then held audio after it.
        let (before, after): (Vec<Frame>, Vec<Frame>) =
            preroll.into_iter().partition(|a| a.dts <= f.dts);
        for a in before {
            self.push_to_part(a, false).await?;
        }
        self.push_to_part(f, is_video).await?;
        for a in after {
            self.push_to_part(a, false).await?;
        }
        Ok(())
    }

    /// Begins the open part again, in the container its tracks now call for:
    /// nothing of it is on disk yet, so its empty file is removed and its frames
    /// go to the new one.
    async fn reopen_part(&mut self) -> Result<(), Halt> {
        let Some(p) = self.part.take() else {
            return Ok(());
        };
        let frames = p.unwritten.unwrap_or_default();
        let path = p.file.path().to_path_buf();
        let _ = p.file.close().await;
        if let Err(e) = std::fs::remove_file(&path) {
            warn!(path = %path.display(), error = %e, "could not remove an unused part file");
        }
        let on_key = self
            .rec
            .parts
            .pop()
            .is_some_and(|part| part.first_keyframe_at.is_some());
        let Some(first) = frames.iter().min_by_key(|f| f.dts).cloned() else {
            return Ok(());
        };
        info!(recording = %self.rec.id, from = %path.display(), "tracks changed before the first write; part begun again");
        self.open_part(&first, on_key).await?;
        for f in frames {
            let video = self
                .tracks
                .iter()
                .any(|t| t.id == f.track && t.kind() == MediaKind::Video);
            self.push_to_part(f, video).await?;
        }
        Ok(())
    }

    /// Hands a frame to the open part's muxer and writes what it completes.
    async fn push_to_part(&mut self, f: Frame, is_video: bool) -> Result<(), Halt> {
        let Some(p) = self.part.as_mut() else {
            return Ok(());
        };
        if let Some(u) = p.unwritten.as_mut() {
            u.push(f.clone());
        }
        match p.muxer.push(f) {
            PushOutcome::Accepted => {
                if is_video {
                    p.frames.video += 1;
                } else {
                    p.frames.audio += 1;
                }
            }
            PushOutcome::DroppedBeforeKey => {
                self.shared.metrics.dropped(DropReason::BeforeKeyFrame);
                if is_video {
                    self.stream.want_key_frame();
                }
            }
            PushOutcome::DroppedTrack => self.shared.metrics.dropped(DropReason::UnsupportedTrack),
        }
        while let Some(b) = self.part.as_mut().and_then(|p| p.muxer.poll_write()) {
            self.write(b).await?;
        }
        Ok(())
    }

    fn rotation_due(&self, p: &OpenPart) -> bool {
        let r = &self.settings.rotation;
        r.duration.is_some_and(|d| {
            p.muxer.duration() >= MediaTime::new(d.0.as_millis() as i64, Timescale::MILLIS)
        }) || r.size.is_some_and(|s| p.muxer.size_estimate() >= s.0)
    }

    async fn write(&mut self, b: WriteBatch) -> Result<(), Halt> {
        let sync = self.shared.config.storage.sync == SyncPolicy::Fragment && b.durable;
        let Some(p) = self.part.as_mut() else {
            return Ok(());
        };
        p.unwritten = None;
        let len = b.len;
        let frag = b.fragment;
        let (r, took) = timed(async {
            p.file.append(b).await?;
            if sync {
                p.file.sync().await?;
            }
            Ok::<_, std::io::Error>(())
        })
        .await;
        r.map_err(|e| Halt::Failed(format!("writing {}: {e}", p.file.path().display())))?;
        let m = &self.shared.metrics;
        m.write_latency.observe(took);
        m.bytes_written_total.fetch_add(len, Relaxed);
        m.fragments_written_total.fetch_add(1, Relaxed);
        if let Some(f) = frag {
            let part = self.rec.parts.len() as u32;
            let start = f.start.ticks().max(0) as u64;
            if let Err(e) =
                self.shared
                    .index
                    .add_fragment(&self.rec.id, part, start, f.offset, f.size)
            {
                warn!(error = %e, "fragment index entry not written");
            }
        }
        self.shared.space.check().map_err(Halt::DiskLow)
    }

    fn facts<'a>(
        &'a self,
        start: DateTime<Utc>,
        end: Option<(DateTime<Utc>, u64)>,
        part: u32,
    ) -> NameFacts<'a> {
        let (app, name) = self
            .rec
            .stream
            .split_once('/')
            .unwrap_or(("", &self.rec.stream));
        let codec = |k| {
            self.tracks
                .iter()
                .find(|t| t.kind() == k)
                .map(|t| t.codec.name())
        };
        NameFacts {
            app,
            stream_name: name,
            start,
            end: end.map(|e| e.0),
            duration_ms: end.map(|e| e.1),
            session_id: &self.rec.session_id,
            media_session_id: &self.rec.id,
            audio_codec: codec(MediaKind::Audio),
            video_codec: codec(MediaKind::Video),
            part: Some(part),
        }
    }

    fn part_suffix(&self, index: u32) -> String {
        let r = &self.settings.rotation;
        if r.enabled() && r.numbering && !self.settings.template.uses(crate::naming::Tag::Part) {
            format!("_{index}")
        } else {
            String::new()
        }
    }

    /// The part's path from the naming extension bound to this stream, if any
    /// and if it answers; `None` falls back to the template (the failure is
    /// logged and counted on the extension).
    async fn extension_name(
        &self,
        index: u32,
        format: Format,
        started_at: DateTime<Utc>,
    ) -> Option<PathBuf> {
        let ext = self.shared.extensions.naming_for(&self.rec.stream)?;
        let tracks = self
            .tracks
            .iter()
            .enumerate()
            .map(|(i, t)| crate::extensions::ext_track(t, i as u32))
            .collect();
        let remote = Some(
            self.stream
                .remote
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .to_string(),
        );
        let mut input =
            crate::extensions::ext_recording(&self.rec, index, format.extension(), remote, tracks);
        input.attrs.push((
            "part-started-unix-ms".into(),
            started_at.timestamp_millis().to_string(),
        ));
        let id = ext.id().to_owned();
        // The call is bounded by the extension's deadline (10 ms by default);
        // it runs off the shard so the shard's other feeds are not held up.
        match tokio::task::spawn_blocking(move || ext.name(&input)).await {
            Ok(Ok(rel)) => Some(crate::extensions::sanitized(
                &self.shared.sanitizer,
                &rel,
                format.extension(),
            )),
            Ok(Err(e)) => {
                warn!(recording = %self.rec.id, extension = id, kind = e.kind(), error = %e, "naming extension failed; using the template");
                None
            }
            Err(e) => {
                warn!(recording = %self.rec.id, extension = id, error = %e, "naming extension task failed; using the template");
                None
            }
        }
    }

    /// Opens the next part; `first` is its first frame (pre-rolled audio or the
    /// key frame), `on_key` whether the part starts on a video key frame.
    async fn open_part(&mut self, first: &Frame, on_key: bool) -> Result<(), Halt> {
        let index = self.rec.parts.len() as u32 + 1;
        let started_at = Utc::now();
        let recording = &self.shared.config.recording;
        let format = self
            .settings
            .container
            .resolve(&self.tracks, &recording.containers);
        let ext = format.extension();
        let rel = match self.extension_name(index, format, started_at).await {
            Some(rel) => rel,
            None => {
                let rendered = self
                    .settings
                    .template
                    .render(&self.facts(started_at, None, index));
                self.shared
                    .sanitizer
                    .path(&rendered, &self.part_suffix(index), ext)
            }
        };
        let storage = &self.shared.config.storage;
        let opts = WriterOptions {
            o_direct: storage.o_direct && format.alignable(),
            preallocate: storage.preallocate.0,
        };
        let (file, rel) = PartFile::create(&self.shared.root, &rel, opts)
            .await
            .map_err(|e| Halt::Failed(format!("creating {}: {e}", rel.display())))?;
        let config = FileConfig {
            fragment_target: MediaTime::new(
                self.shared.config.recording.fragment.0.as_millis() as i64,
                Timescale::MILLIS,
            ),
            alignment: file.is_direct().then_some(DIRECT_ALIGN as u32),
            creation_unix_secs: started_at.timestamp().max(0) as u64,
        };
        let (muxer, left_out) = FileMuxer::new(format, &self.tracks, config);
        self.rec.container = Container::of(format);
        for u in &left_out {
            warn!(recording = %self.rec.id, "{u}: track not recorded");
        }
        self.note_tracks(&left_out);
        let origin = *self.origin.get_or_insert(first.dts);
        self.rec.parts.push(Part {
            index,
            path: rel.to_string_lossy().into_owned(),
            state: PartState::Recording,
            started_at,
            start_offset_ms: first.dts.saturating_sub(origin).as_millis().max(0) as u64,
            duration_ms: 0,
            size_bytes: 0,
            first_keyframe_at: on_key.then_some(started_at),
            frames: FrameCounts::default(),
        });
        self.part = Some(OpenPart {
            file,
            rel: rel.clone(),
            format,
            muxer,
            frames: FrameCounts::default(),
            unwritten: Some(Vec::new()),
        });
        // The file and its directory entry are durable; now the index may name it.
        self.commit()
            .await
            .map_err(|e| Halt::Failed(format!("index: {e}")))?;
        info!(recording = %self.rec.id, part = index, path = %rel.display(), "part started");
        Ok(())
    }

    async fn close_part(&mut self, state: PartState) -> Result<(), Halt> {
        let Some(mut p) = self.part.take() else {
            return Ok(());
        };
        let fin = p.muxer.finish();
        let duration_ms = fin.duration.ticks().max(0) as u64;
        let size = fin.len;
        let path = p.file.path().display().to_string();
        if let Err(e) = p.file.finish(fin).await {
            self.part = Some(p);
            return Err(Halt::Failed(format!("finalizing {path}: {e}")));
        }
        if let Err(e) = p.file.close().await {
            warn!(path, error = %e, "close failed after a successful sync");
        }
        let index = self.rec.parts.len() as u32;
        let mut rel = p.rel.clone();
        if self.settings.template.needs_end() {
            let (started, suffix) = match self.rec.parts.last() {
                Some(part) => (part.started_at, self.part_suffix(part.index)),
                None => (Utc::now(), String::new()),
            };
            let facts = self.facts(started, Some((Utc::now(), duration_ms)), index);
            let target = self.shared.sanitizer.path(
                &self.settings.template.render(&facts),
                &suffix,
                p.format.extension(),
            );
            if target != rel {
                match rename_durable(&self.shared.root, &rel, &target).await {
                    Ok(()) => rel = target,
                    Err(e) => {
                        warn!(from = %rel.display(), to = %target.display(), error = %e, "could not rename finished part; keeping its name")
                    }
                }
            }
        }
        if let Some(part) = self.rec.parts.last_mut() {
            part.state = state;
            part.duration_ms = duration_ms;
            part.size_bytes = size;
            part.frames = p.frames;
            part.path = rel.to_string_lossy().into_owned();
        }
        self.rec.sum_parts();
        // The part's hook runs are queued in the same commit as its end.
        let hooks = match HookQueue::enqueue(&self.shared, &self.rec, index, false) {
            Ok(queued) => queued,
            Err(e) => {
                error!(recording = %self.rec.id, part = index, error = %e, "hooks not queued");
                false
            }
        };
        self.commit()
            .await
            .map_err(|e| Halt::Failed(format!("index: {e}")))?;
        info!(recording = %self.rec.id, part = index, path = %rel.display(), duration_ms, size, "part finalized");
        if hooks {
            self.shared.hooks.wake(&self.rec.id, index);
        }
        Ok(())
    }
}
