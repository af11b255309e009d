//! One RTMP connection on a shard: socket ⇄ [`ServerSession`], events → registry and
//! recorder. All protocol logic lives in `edgerec-rtmp`; this loop only does I/O,
//! timeouts and bookkeeping.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use edgerec_media::{Frame, MediaKind, TrackInfo};
use edgerec_rtmp::chunk::ChunkLimits;
use edgerec_rtmp::{Event, ServerConfig, ServerSession};
use tokio::sync::mpsc;
use tokio_uring::net::TcpStream;
use tracing::{debug, info, warn, Instrument};
use ulid::Ulid;

use crate::recorder::{self, RecorderHandle, RecordingRequest, Settings};
use crate::registry::{LiveStream, StreamCommand};
use crate::{EngineError, Shared};

const READ_BUF: usize = 64 * 1024;
/// Bytes a coalesced read aims for (half the read buffer).
const READ_TARGET: usize = 32 * 1024;

/// Coalesced reads wake on a shared grid, so one wake-up of the shard serves many
/// connections and submits their reads to the ring together.
const READ_TICK: Duration = Duration::from_millis(10);

/// `t` rounded up to the next [`READ_TICK`] boundary.
fn on_tick(t: tokio::time::Instant) -> tokio::time::Instant {
    static EPOCH: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(tokio::time::Instant::now);
    let since = t.saturating_duration_since(epoch).as_nanos();
    let tick = READ_TICK.as_nanos();
    epoch + Duration::from_nanos((since.div_ceil(tick) * tick) as u64)
}

/// Serves one accepted connection until it closes.
pub async fn serve(shared: Arc<Shared>, socket: TcpStream, peer: SocketAddr) {
    let session_id = Ulid::new().to_string();
    let span = tracing::info_span!("rtmp", conn = %session_id, %peer);
    let m = shared.metrics.clone();
    m.connections.fetch_add(1, Relaxed);
    m.connections_total.fetch_add(1, Relaxed);
    let _ = socket.set_nodelay(true);
    let mut conn = Conn::new(shared.clone(), peer, session_id);
    let r = conn.run(&socket).instrument(span.clone()).await;
    // A read may still be in flight on the ring, holding the fd open; shutting the
    // socket down completes it, so the descriptor is really closed.
    let _ = socket.shutdown(std::net::Shutdown::Both);
    let reason = match &r {
        Ok(reason) => *reason,
        Err(_) => "protocol_error",
    };
    conn.end_publish(reason).instrument(span.clone()).await;
    let _enter = span.enter();
    match r {
        Ok(reason) => info!(
            reason,
            bytes = conn.session.bytes_received(),
            "connection closed"
        ),
        Err(e) => {
            m.connection_errors_total.fetch_add(1, Relaxed);
            warn!(error = %e, "connection closed");
        }
    }
    m.connections.fetch_sub(1, Relaxed);
}

struct Conn {
    shared: Arc<Shared>,
    peer: SocketAddr,
    session_id: String,
    session: ServerSession,
    live: Option<Arc<LiveStream>>,
    tracks: Vec<TrackInfo>,
    recorder: Option<RecorderHandle>,
    /// Frames of the current read, for the recorder.
    batch: Vec<Frame>,
    /// Whether this stream should be recorded (policy or API), and with what.
    wanted: Option<RecordingRequest>,
    commands_tx: mpsc::Sender<StreamCommand>,
    commands: mpsc::Receiver<StreamCommand>,
    window_start: Instant,
    window_bytes: u64,
    /// A publish was accepted on this connection (later silence is idleness, not a
    /// handshake that never finished).
    published: bool,
}

/// Why the read loop ended (when not by error).
type EndReason = &'static str;

impl Conn {
    fn new(shared: Arc<Shared>, peer: SocketAddr, session_id: String) -> Conn {
        let r = &shared.config.rtmp;
        let cfg = ServerConfig {
            chunk: ChunkLimits {
                max_message_len: r.max_message_size.0.min(0x00ff_ffff) as u32,
                ..ChunkLimits::default()
            },
            out_chunk_size: r.chunk_size.clamp(128, 65_536),
            ..ServerConfig::default()
        };
        let seed = Ulid::new().random() as u64;
        let (commands_tx, commands) = mpsc::channel(8);
        Conn {
            session: ServerSession::new(cfg, seed),
            shared,
            peer,
            session_id,
            live: None,
            tracks: Vec::new(),
            recorder: None,
            batch: Vec::new(),
            wanted: None,
            commands_tx,
            commands,
            window_start: Instant::now(),
            window_bytes: 0,
            published: false,
        }
    }

    async fn run(&mut self, socket: &TcpStream) -> Result<EndReason, String> {
        let handshake = self.shared.config.rtmp.handshake_timeout.0;
        let idle = self.shared.config.rtmp.idle_timeout.0;
        let coalesce = self.shared.config.rtmp.read_coalesce.0;
        let mut buf = vec![0u8; READ_BUF];
        // One timer for the whole connection, pushed back lazily: it fires at the old
        // deadline and is re-armed from the last data if data came since.
        let mut last_data = Instant::now();
        let timer = tokio::time::sleep_until((last_data + handshake).into());
        tokio::pin!(timer);
        let mut full = false;
        loop {
            // A live feed's bytes gather in the socket buffer between reads: fewer,
            // larger reads, and the frames of one read go to the recorder together.
            if let Some(wait) = self.coalesce_wait(coalesce).filter(|_| !full) {
                let until = on_tick(tokio::time::Instant::now() + wait);
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => break,
                        Some(cmd) = self.commands.recv() => {
                            if self.on_command(cmd).await {
                                return Ok("shutdown");
                            }
                        }
                    }
                }
            }
            let read = socket.read(buf);
            tokio::pin!(read);
            let (res, b) = loop {
                tokio::select! {
                    r = &mut read => break r,
                    Some(cmd) = self.commands.recv() => {
                        if self.on_command(cmd).await {
                            return Ok("shutdown");
                        }
                    }
                    _ = &mut timer => {
                        let limit = if self.published { idle } else { handshake };
                        if self.published && last_data.elapsed() < limit {
                            timer.as_mut().reset((last_data + limit).into());
                            continue;
                        }
                        if self.published && self.live.is_none() {
                            return Ok("idle after unpublish");
                        }
                        return Err(if self.live.is_some() {
                            format!("no data for {}", humantime::format_duration(idle))
                        } else {
                            format!("no publish within {}", humantime::format_duration(handshake))
                        });
                    }
                }
            };
            buf = b;
            let n = res.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Ok(if self.live.is_some() {
                    "disconnected"
                } else {
                    "closed"
                });
            }
            full = n == buf.len();
            if self.published {
                last_data = Instant::now();
            }
            self.shared
                .metrics
                .bytes_received_total
                .fetch_add(n as u64, Relaxed);
            self.count_bytes(n as u64);
            let was_published = self.published;
            let fed = self.session.handle_input(&buf[..n]);
            self.flush(socket).await?;
            fed.map_err(|e| e.to_string())?;
            self.drain_events(socket).await?;
            if self.published && !was_published {
                timer.as_mut().reset((last_data + idle).into());
            }
        }
    }

    /// How long to let a live feed's data gather before the next read: `max`, or
    /// less for a fast feed, so that a read takes about [`READ_TARGET`] bytes and the
    /// socket buffer (autotuned from 128 KiB) never throttles the publisher.
    fn coalesce_wait(&self, max: Duration) -> Option<Duration> {
        let live = self.live.as_ref()?;
        let bps = live.stats.bitrate_bps.load(Relaxed);
        let wait = if bps == 0 {
            max / 4
        } else {
            Duration::from_secs_f64(READ_TARGET as f64 * 8.0 / bps as f64).min(max)
        };
        (wait >= Duration::from_millis(1)).then_some(wait)
    }

    async fn flush(&mut self, socket: &TcpStream) -> Result<(), String> {
        while let Some(out) = self.session.poll_transmit() {
            let (r, _) = socket.write_all(out).await;
            r.map_err(|e| format!("write: {e}"))?;
        }
        Ok(())
    }

    async fn drain_events(&mut self, socket: &TcpStream) -> Result<(), String> {
        while let Some(ev) = self.session.poll_event() {
            match ev {
                Event::Connected {
                    app,
                    tc_url,
                    flash_ver,
                } => {
                    info!(
                        app,
                        tc_url = tc_url.as_deref().unwrap_or(""),
                        client = flash_ver.as_deref().unwrap_or(""),
                        "connected"
                    );
                }
                Event::PublishRequested(req) => {
                    let name = format!("{}/{}", req.app, req.name);
                    let live = Arc::new(LiveStream {
                        name: name.clone(),
                        protocol: "rtmp",
                        remote: self.peer,
                        session_id: self.session_id.clone(),
                        started_at: Utc::now(),
                        tracks: RwLock::new(Vec::new()),
                        stats: Default::default(),
                        recording: RwLock::new(None),
                        blocked: RwLock::new(None),
                        commands: self.commands_tx.clone(),
                    });
                    let r = if self.shared.registry.claim(live.clone()) {
                        info!(stream = %name, publish_type = %req.publish_type, "publishing");
                        self.shared.metrics.live_streams.fetch_add(1, Relaxed);
                        self.live = Some(live);
                        self.published = true;
                        if self.shared.policy.records(&name) {
                            self.wanted = Some(RecordingRequest::default());
                            self.start_recording().await.ok();
                        }
                        self.session.accept_publish()
                    } else {
                        warn!(stream = %name, "refused: the stream is already being published");
                        self.shared
                            .metrics
                            .publishes_refused_total
                            .fetch_add(1, Relaxed);
                        self.session.reject_publish(
                            "NetStream.Publish.BadName",
                            &format!("stream {name} is already being published"),
                        )
                    };
                    self.flush(socket).await?;
                    r.map_err(|e| e.to_string())?;
                }
                Event::Metadata(props) => {
                    debug!(?props, "onMetaData");
                }
                Event::Track(t) => {
                    info!(track = t.id.0, codec = %t.codec_string, params = ?t.params, "track");
                    match self.tracks.iter_mut().find(|x| x.id == t.id) {
                        Some(x) => *x = t,
                        None => self.tracks.push(t),
                    }
                    if let Some(live) = &self.live {
                        live.set_tracks(self.tracks.clone());
                    }
                    self.send_frames().await;
                    if let Some(r) = &self.recorder {
                        if !r.tracks(self.tracks.clone()).await {
                            self.recorder = None;
                        }
                    }
                }
                Event::Frame(f) => {
                    if let Some(live) = &self.live {
                        let video = self
                            .tracks
                            .iter()
                            .any(|t| t.id == f.track && t.kind() == MediaKind::Video);
                        if video {
                            live.stats.video_frames.fetch_add(1, Relaxed);
                            self.shared
                                .metrics
                                .frames_received_video
                                .fetch_add(1, Relaxed);
                        } else {
                            live.stats.audio_frames.fetch_add(1, Relaxed);
                            self.shared
                                .metrics
                                .frames_received_audio
                                .fetch_add(1, Relaxed);
                        }
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
                Event::Unpublished => {
                    self.send_frames().await;
                    self.end_publish("unpublished").await;
                }
                Event::Skipped { reason, offset } => {
                    warn!(offset, "{reason}");
                    if let Some(live) = &self.live {
                        live.stats.skipped.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        self.send_frames().await;
        Ok(())
    }

    /// Hands the frames of this read to the recorder in one message.
    async fn send_frames(&mut self) {
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

    fn count_bytes(&mut self, n: u64) {
        let Some(live) = &self.live else { return };
        live.stats.bytes_in.fetch_add(n, Relaxed);
        self.window_bytes += n;
        let el = self.window_start.elapsed();
        if el >= Duration::from_secs(1) {
            live.stats.bitrate_bps.store(
                (self.window_bytes as f64 * 8.0 / el.as_secs_f64()) as u64,
                Relaxed,
            );
            self.window_bytes = 0;
            self.window_start = Instant::now();
        }
    }

    async fn start_recording(&mut self) -> Result<crate::index::Recording, EngineError> {
        let (Some(live), Some(req)) = (self.live.clone(), self.wanted.clone()) else {
            return Err(EngineError::Unavailable("stream is not live".into()));
        };
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

    /// Handles an API command; `true` to close the connection.
    async fn on_command(&mut self, cmd: StreamCommand) -> bool {
        match cmd {
            StreamCommand::StartRecording { request, reply } => {
                if let Some(r) = self.recorder.take() {
                    r.stop("restarted").await;
                }
                self.wanted = Some(request);
                let _ = reply.send(self.start_recording().await);
                false
            }
            StreamCommand::StopRecording { id, reply } => {
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
                self.end_publish("shutdown").await;
                let _ = reply.send(());
                true
            }
        }
    }

    async fn end_publish(&mut self, reason: &'static str) {
        if let Some(r) = self.recorder.take() {
            r.stop(reason).await;
        }
        self.wanted = None;
        if let Some(live) = self.live.take() {
            self.shared.registry.release(&live);
            self.shared.metrics.live_streams.fetch_sub(1, Relaxed);
            info!(stream = %live.name, reason, "stream ended");
        }
        self.tracks.clear();
    }
}
