//! The recording engine.
//!
//! Data flow: shard threads ([`shard`]) accept connections and drive sans-IO ingest
//! sessions ([`ingest`]); frames go to per-recording tasks ([`recorder`]) that mux
//! (edgerec-mux) and write through the shard's io_uring ([`writer`]); parts are
//! committed to the sled [`index`] once durable. The control plane talks to all of it
//! through [`Engine`], whose calls reach a stream's shard over channels.

pub mod config;
pub mod disk;
pub mod durable;
pub mod extensions;
pub mod hooks;
pub mod index;
pub mod ingest;
pub mod liveness;
pub mod metrics;
pub mod naming;
pub mod policy;
pub mod recorder;
pub mod recovery;
pub mod registry;
pub mod shard;
pub mod shard_jobs;
pub mod units;
pub mod writer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use crate::config::Config;
use crate::disk::SpaceGuard;
use crate::index::{Index, IndexError, Query, Recording, RecordingState};
use crate::metrics::Metrics;
use crate::naming::{Sanitizer, Template};
use crate::policy::RecordPolicy;
use crate::recorder::RecordingRequest;
use crate::registry::{Registry, StreamCommand, StreamView};

/// Errors the control plane turns into HTTP statuses.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("stream {0} is not live")]
    StreamNotLive(String),
    #[error("recording {0} not found")]
    RecordingNotFound(String),
    #[error("recording {0} is not being recorded")]
    NotRecording(String),
    #[error("part {1} of recording {0} not found")]
    PartNotFound(String, u32),
    #[error("{0}")]
    DiskLow(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// An extension refused at install (not a component, wrong world, imports
    /// outside its world, failed its self-test).
    #[error("{0}")]
    Refused(edgerec_ext::ExtError),
    /// A capability compiled out of this build (a cargo feature off).
    #[error("{0}")]
    NotBuilt(&'static str),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What every shard and the control plane share. Nothing here is locked on the
/// media path: the registry is touched at publish/unpublish, the index when parts
/// start and end, metrics are atomics.
pub struct Shared {
    pub config: Arc<Config>,
    pub index: Index,
    pub metrics: Arc<Metrics>,
    pub space: SpaceGuard,
    pub registry: Registry,
    pub policy: RecordPolicy,
    pub sanitizer: Sanitizer,
    pub default_template: Template,
    /// The recordings root (DATA_DIR/recordings).
    pub root: PathBuf,
    /// Pulled RTSP sources and their state.
    pub sources: ingest::rtsp_pull::SourceTable,
    /// RTP sessions opened through the API.
    pub relays: ingest::rtp_relay::RelayTable,
    /// WebRTC (WHIP) sessions.
    pub whip: ingest::whip::WhipTable,
    /// Hands run-time work to the shards.
    pub jobs: shard_jobs::ShardJobs,
    /// Wasm extensions and what they are bound to.
    pub extensions: extensions::Extensions,
    /// Hook runs queued for finalized parts.
    pub hooks: hooks::HookQueue,
    /// The shards' heartbeats, for health.
    pub liveness: liveness::Liveness,
}

pub struct Engine {
    shared: Arc<Shared>,
    /// Taken by [`Engine::shutdown`].
    shards: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    stop: watch::Sender<bool>,
    rtmp_addr: SocketAddr,
    rtsp_addr: Option<SocketAddr>,
    orphans: Arc<RwLock<Option<Vec<String>>>>,
}

impl Engine {
    /// The Wasm extensions and their bindings.
    pub fn extensions(&self) -> &extensions::Extensions {
        &self.shared.extensions
    }

    /// Opens the index, recovers open recordings, binds the listeners and starts the
    /// shards.
    pub fn start(config: Config) -> Result<Engine, EngineError> {
        config.validate().map_err(EngineError::BadRequest)?;
        let root = config.recordings_dir();
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(config.index_dir())?;
        let index = Index::open(&config.index_dir())?;
        let sanitizer = Sanitizer {
            excluded: config.naming.exclude.clone(),
            encoding: config.naming.encoding,
        };
        hooks::finish_interrupted(&index, &root)?;
        let recovered = recovery::recover_all(&index, &root, &sanitizer)?;
        if !recovered.is_empty() {
            warn!(
                recovered = recovered.len(),
                "recovered recordings left open by a crash or power cut"
            );
        }
        let extensions = extensions::Extensions::start(&config.extensions, &config.data_dir)?;
        let config_sources = config.rtsp.sources.clone();
        let (jobs, job_queues) = shard_jobs::ShardJobs::new(config.shard_count());
        let liveness = liveness::Liveness::new(config.shard_count(), std::time::Instant::now());
        let shared = Arc::new(Shared {
            policy: RecordPolicy::new(&config.recording).map_err(EngineError::BadRequest)?,
            default_template: Template::parse(&config.recording.template)
                .map_err(|e| EngineError::BadRequest(e.to_string()))?,
            space: SpaceGuard::new(&root, config.storage.min_free.0),
            config: Arc::new(config),
            index,
            metrics: Arc::new(Metrics::default()),
            registry: Registry::default(),
            sanitizer,
            root,
            sources: ingest::rtsp_pull::SourceTable::new(&config_sources),
            relays: Default::default(),
            whip: Default::default(),
            jobs,
            extensions,
            hooks: Default::default(),
            liveness,
        });
        // Recovered parts get their hooks, like finished ones.
        for rec in &recovered {
            for p in rec
                .parts
                .iter()
                .filter(|p| p.state == index::PartState::Recovered)
            {
                hooks::HookQueue::enqueue(&shared, rec, p.index, true)?;
            }
        }
        shared.index.flush_blocking()?;
        hooks::start(&shared)?;

        let n = shared.config.shard_count();
        let listeners = shard::bind_listeners(shared.config.rtmp.listen, n)?;
        let rtmp_addr = listeners[0].local_addr()?;
        let rtsp: Vec<Option<std::net::TcpListener>> = if shared.config.rtsp.push {
            shard::bind_listeners(shared.config.rtsp.listen, n)?
                .into_iter()
                .map(Some)
                .collect()
        } else {
            (0..n).map(|_| None).collect()
        };
        let rtmps: Vec<Option<(std::net::TcpListener, tokio_rustls::TlsAcceptor)>> =
            match &shared.config.rtmp.tls_listen {
                Some(addr) => {
                    let c = &shared.config.rtmp;
                    let (Some(cert), Some(key)) = (&c.tls_cert, &c.tls_key) else {
                        return Err(EngineError::BadRequest(
                            "rtmp.tls_listen needs tls_cert and tls_key".into(),
                        ));
                    };
                    let acceptor =
                        ingest::rtmp::tls_acceptor(cert, key).map_err(EngineError::BadRequest)?;
                    shard::bind_listeners(*addr, n)?
                        .into_iter()
                        .map(|l| Some((l, acceptor.clone())))
                        .collect()
                }
                None => (0..n).map(|_| None).collect(),
            };
        let rtsp_addr = rtsp
            .first()
            .and_then(|l| l.as_ref())
            .and_then(|l| l.local_addr().ok());
        // MPEG-TS inputs are dealt to the shards in turn.
        let mut ts: Vec<Vec<ingest::ts::Bound>> = (0..n).map(|_| Vec::new()).collect();
        for (i, b) in ingest::ts::bind(&shared.config.mpegts.inputs)?
            .into_iter()
            .enumerate()
        {
            ts[i % n].push(b);
        }
        // RTSP sources too, after them.
        let mut pulls: Vec<Vec<(usize, config::RtspSource)>> = (0..n).map(|_| Vec::new()).collect();
        for (i, src) in shared.config.rtsp.sources.iter().enumerate() {
            pulls[(i + shared.config.mpegts.inputs.len()) % n].push((i, src.clone()));
        }
        let (stop, stop_rx) = watch::channel(false);
        let mut shards = Vec::with_capacity(n);
        for ((((((i, l), ts), pulls), jobs), rtsp), rtmps) in listeners
            .into_iter()
            .enumerate()
            .zip(ts)
            .zip(pulls)
            .zip(job_queues)
            .zip(rtsp)
            .zip(rtmps)
        {
            let s = shared.clone();
            let rx = stop_rx.clone();
            let inputs = shard::Inputs {
                ts,
                pulls,
                rtmps,
                rtsp,
                jobs,
            };
            shards.push(
                std::thread::Builder::new()
                    .name(format!("shard-{i}"))
                    .spawn(move || shard::run(i, s, l, inputs, rx))?,
            );
        }
        info!(shards = n, rtmp = %rtmp_addr, rtsp = ?rtsp_addr, root = %shared.root.display(), "engine started");

        let orphans = Arc::new(RwLock::new(None));
        {
            let (shared, orphans) = (shared.clone(), orphans.clone());
            std::thread::Builder::new().name("orphan-scan".into()).spawn(move || {
                match recovery::find_orphans(&shared.index, &shared.root) {
                    Ok(found) => {
                        if !found.is_empty() {
                            warn!(count = found.len(), first = %found[0], "files in the recordings root that no recording refers to (kept; see GET /v1/orphans)");
                        }
                        *orphans.write().unwrap_or_else(|e| e.into_inner()) = Some(found);
                    }
                    Err(e) => warn!(error = %e, "orphan scan failed"),
                }
            })?;
        }
        Ok(Engine {
            shared,
            shards: std::sync::Mutex::new(shards),
            stop,
            rtmp_addr,
            rtsp_addr,
            orphans,
        })
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn rtmp_addr(&self) -> SocketAddr {
        self.rtmp_addr
    }

    /// The RTSP push server's address, when it is on.
    pub fn rtsp_addr(&self) -> Option<SocketAddr> {
        self.rtsp_addr
    }

    /// What keeps the daemon from doing its work now (empty: healthy): a
    /// shard whose runtime has stopped running, an index flush that does not
    /// return.
    pub fn liveness(&self) -> Vec<liveness::Problem> {
        let now = std::time::Instant::now();
        self.shared
            .liveness
            .check(now, self.shared.index.flush_running_for(now))
    }

    pub fn metrics_text(&self) -> String {
        self.shared
            .metrics
            .render(disk::free_bytes(&self.shared.root).ok())
    }

    /// Opens an RTP session for an SFU or media server to send a stream to.
    pub async fn open_rtp_session(
        &self,
        req: ingest::rtp_relay::RelayRequest,
    ) -> Result<ingest::rtp_relay::RelayView, EngineError> {
        ingest::rtp_relay::open(&self.shared, req).await
    }

    pub fn rtp_sessions(&self) -> Vec<ingest::rtp_relay::RelayView> {
        self.shared.relays.all()
    }

    pub fn rtp_session(&self, id: &str) -> Result<ingest::rtp_relay::RelayView, EngineError> {
        self.shared
            .relays
            .get(id)
            .ok_or_else(|| EngineError::NotFound(format!("RTP session {id} not found")))
    }

    /// Ends an RTP session (its recording is finalized) and frees its ports.
    pub async fn close_rtp_session(&self, id: &str) -> Result<(), EngineError> {
        ingest::rtp_relay::close(&self.shared, id).await
    }

    /// Answers a WHIP offer for `stream` from `peer`.
    pub async fn whip_offer(
        &self,
        stream: String,
        offer: &str,
        peer: std::net::IpAddr,
    ) -> Result<ingest::whip::WhipAnswer, EngineError> {
        ingest::whip::offer(&self.shared, stream, offer, peer).await
    }

    /// Claims `stream` for an MPEG-TS upload over HTTP.
    pub async fn mpegts_upload(
        &self,
        stream: String,
        peer: SocketAddr,
    ) -> Result<ingest::ts_http::Upload, EngineError> {
        ingest::ts_http::open(&self.shared, stream, peer).await
    }

    /// Ends a WHIP session.
    pub async fn whip_delete(&self, id: &str) -> Result<(), EngineError> {
        ingest::whip::delete(&self.shared, id).await
    }

    pub fn whip_sessions(&self) -> Vec<ingest::whip::WhipView> {
        self.shared.whip.all()
    }

    /// Pulled sources (RTSP) and their state.
    pub fn sources(&self) -> Vec<ingest::rtsp_pull::SourceStatus> {
        self.shared.sources.all()
    }

    pub fn streams(&self) -> Vec<StreamView> {
        self.shared
            .registry
            .all()
            .iter()
            .map(|s| s.view())
            .collect()
    }

    /// Files under the recordings root that no recording refers to (`None` while
    /// the scan started at boot is still running).
    pub fn orphans(&self) -> Option<Vec<String>> {
        self.orphans
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn recording(&self, id: &str) -> Result<Recording, EngineError> {
        self.shared
            .index
            .get(id)?
            .ok_or_else(|| EngineError::RecordingNotFound(id.to_owned()))
    }

    pub fn recordings(&self, q: &Query) -> Result<Vec<Recording>, EngineError> {
        Ok(self.shared.index.list(q)?)
    }

    /// Starts recording a live stream (stopping its current recording first).
    pub async fn start_recording(
        &self,
        stream: &str,
        request: RecordingRequest,
    ) -> Result<Recording, EngineError> {
        // Bad settings are a bad request whether or not the stream is live.
        recorder::Settings::resolve(&self.shared, &request)?;
        let live = self
            .shared
            .registry
            .get(stream)
            .ok_or_else(|| EngineError::StreamNotLive(stream.to_owned()))?;
        let (reply, rx) = oneshot::channel();
        live.commands
            .send(StreamCommand::StartRecording { request, reply })
            .await
            .map_err(|_| EngineError::StreamNotLive(stream.to_owned()))?;
        rx.await
            .map_err(|_| EngineError::StreamNotLive(stream.to_owned()))?
    }

    /// Stops a recording and returns it finalized. Stopping one that has already
    /// ended returns it as it is.
    pub async fn stop_recording(&self, id: &str) -> Result<Recording, EngineError> {
        let rec = self.recording(id)?;
        if rec.state != RecordingState::Recording {
            return Ok(rec);
        }
        let Some(live) = self.shared.registry.by_recording(id) else {
            return Err(EngineError::NotRecording(id.to_owned()));
        };
        let (reply, rx) = oneshot::channel();
        live.commands
            .send(StreamCommand::StopRecording {
                id: id.to_owned(),
                reply,
            })
            .await
            .map_err(|_| EngineError::NotRecording(id.to_owned()))?;
        match rx.await {
            Ok(r) => r,
            // The stream ended meanwhile; it finalized the recording itself.
            Err(_) => self.recording(id),
        }
    }

    /// Deletes a recording and its files (stopping it first if it is live). The row
    /// is marked first, files removed, then the row: a crash in between finishes the
    /// delete at the next start.
    pub async fn delete_recording(&self, id: &str) -> Result<(), EngineError> {
        let mut rec = self.recording(id)?;
        if rec.state == RecordingState::Recording {
            rec = self.stop_recording(id).await?;
        }
        rec.state = RecordingState::Deleting;
        self.shared.index.put(&rec)?;
        self.shared.index.flush().await?;
        let root = self.shared.root.clone();
        let paths: Vec<PathBuf> = rec.parts.iter().map(|p| root.join(&p.path)).collect();
        tokio::task::spawn_blocking(move || {
            let mut dirs = std::collections::BTreeSet::new();
            for p in paths {
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                if let Some(d) = p.parent() {
                    dirs.insert(d.to_path_buf());
                }
            }
            for d in dirs {
                std::fs::File::open(&d)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| EngineError::Unavailable(e.to_string()))??;
        self.shared.index.remove(&rec)?;
        self.shared.index.flush().await?;
        info!(recording = %id, "recording deleted");
        Ok(())
    }

    /// Absolute path of part `n` (1-based) of a recording.
    pub fn part_path(&self, id: &str, n: u32) -> Result<PathBuf, EngineError> {
        let rec = self.recording(id)?;
        let part = rec
            .parts
            .iter()
            .find(|p| p.index == n)
            .ok_or_else(|| EngineError::PartNotFound(id.to_owned(), n))?;
        if part.state == index::PartState::Deleted {
            return Err(EngineError::NotFound(format!(
                "part {n} of recording {id} was deleted by a hook"
            )));
        }
        Ok(self.shared.root.join(&part.path))
    }

    /// Finalizes every recording, then stops the shards. By reference: an HTTP
    /// connection task may still hold the engine for a moment after the server
    /// returned (axum drops its service after signalling it is done), and the
    /// recordings must be finalized all the same.
    pub async fn shutdown(&self) {
        let streams = self.shared.registry.all();
        info!(
            streams = streams.len(),
            "shutting down: finalizing recordings"
        );
        // Every stream finalizes at once (each on its own shard); wait for all.
        let mut waits = tokio::task::JoinSet::new();
        for s in streams {
            waits.spawn(async move {
                let (reply, rx) = oneshot::channel();
                if s.commands
                    .send(StreamCommand::Shutdown { reply })
                    .await
                    .is_ok()
                {
                    let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
                }
            });
        }
        waits.join_all().await;
        let _ = self.stop.send(true);
        let shards = std::mem::take(&mut *self.shards.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = tokio::task::spawn_blocking(move || {
            for s in shards {
                let _ = s.join();
            }
        })
        .await;
        let _ = self.shared.index.flush().await;
        info!("engine stopped");
    }
}
