//! The recording engine.
//!
//! Data flow: shard threads ([`shard`]) accept connections and drive sans-IO ingest
//! sessions ([`ingest`]); frames go to per-recording tasks ([`recorder`]) that mux
//! (edgerec-mux) and write through the shard's io_uring ([`writer`]); parts are
//! committed to the sled [`index`] once durable. The control plane talks to all of it
//! through [`Engine`], whose calls reach a stream's shard over channels.

pub mod config;
pub mod disk;
pub mod index;
pub mod ingest;
pub mod metrics;
pub mod naming;
pub mod policy;
pub mod recorder;
pub mod recovery;
pub mod registry;
pub mod shard;
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
}

pub struct Engine {
    shared: Arc<Shared>,
    shards: Vec<std::thread::JoinHandle<()>>,
    stop: watch::Sender<bool>,
    rtmp_addr: SocketAddr,
    orphans: Arc<RwLock<Option<Vec<String>>>>,
}

impl Engine {
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
        let recovered = recovery::recover_all(&index, &root, &sanitizer)?;
        if recovered > 0 {
            warn!(
                recovered,
                "recovered recordings left open by a crash or power cut"
            );
        }
        let config_sources = config.rtsp.sources.clone();
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
        });

        let n = shared.config.shard_count();
        let listeners = shard::bind_listeners(shared.config.rtmp.listen, n)?;
        let rtmp_addr = listeners[0].local_addr()?;
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
        for (((i, l), ts), pulls) in listeners.into_iter().enumerate().zip(ts).zip(pulls) {
            let s = shared.clone();
            let rx = stop_rx.clone();
            let inputs = shard::Inputs { ts, pulls };
            shards.push(
                std::thread::Builder::new()
                    .name(format!("shard-{i}"))
                    .spawn(move || shard::run(i, s, l, inputs, rx))?,
            );
        }
        info!(shards = n, rtmp = %rtmp_addr, root = %shared.root.display(), "engine started");

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
            shards,
            stop,
            rtmp_addr,
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

    pub fn metrics_text(&self) -> String {
        self.shared
            .metrics
            .render(disk::free_bytes(&self.shared.root).ok())
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
        Ok(self.shared.root.join(&part.path))
    }

    /// Finalizes every recording, then stops the shards.
    pub async fn shutdown(self) {
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
        let shards = self.shards;
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
