//! MPEG-TS over HTTP: `POST /v1/ingest/mpegts/{app}/{name}` with a (chunked)
//! body of TS, as `ffmpeg -f mpegts -method POST http://...` and hardware
//! encoders with an "HTTP push" output send it. The URL names the stream.
//!
//! The HTTP server runs on the control plane's runtime; the feed (demuxer,
//! publication, recorder) runs on a shard like every other feed, fed the body's
//! chunks through a bounded channel — a slow disk slows the upload, never
//! buffers it unboundedly.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, Instrument};

use super::publication::next_command;
use super::ts::Feed;
use crate::config::check_stream_name;
use crate::{EngineError, Shared};

/// Body chunks in flight to the shard.
const QUEUE: usize = 64;

/// An accepted upload: send the body's chunks, drop the sender at its end, then
/// await `done` (the recording is finalized by then).
pub struct Upload {
    pub chunks: mpsc::Sender<Bytes>,
    pub done: oneshot::Receiver<&'static str>,
}

/// Claims `stream` for an upload from `peer`.
pub async fn open(
    shared: &Arc<Shared>,
    stream: String,
    peer: SocketAddr,
) -> Result<Upload, EngineError> {
    check_stream_name(&stream).map_err(|e| EngineError::BadRequest(format!("stream: {e}")))?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
    let (claimed_tx, claimed_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let s = shared.clone();
    let name = stream.clone();
    let spawned = shared.jobs.spawn(move |mut shutdown| {
        let span = tracing::info_span!("mpegts-http", %peer, stream = %name);
        async move {
            let Some(mut feed) = Feed::open(&s, name, "mpegts-http", peer).await else {
                let _ = claimed_tx.send(false);
                return;
            };
            let _ = claimed_tx.send(true);
            let idle = s.config.mpegts.idle_timeout.0;
            let reason = loop {
                tokio::select! {
                    c = rx.recv() => match c {
                        Some(c) => {
                            s.metrics.bytes_received_total.fetch_add(c.len() as u64, Relaxed);
                            feed.input(&c).await;
                        }
                        None => break "disconnected",
                    },
                    Some(cmd) = next_command(Some(feed.publication())) => {
                        if feed.on_command(cmd).await {
                            let _ = done_tx.send("shutdown");
                            return;
                        }
                    }
                    _ = tokio::time::sleep(idle) => break "idle",
                    _ = shutdown.changed() => break "shutdown",
                }
            };
            feed.end(reason).await;
            info!(reason, "upload ended");
            let _ = done_tx.send(reason);
        }
        .instrument(span)
    });
    if !(spawned && claimed_rx.await.unwrap_or(false)) {
        return Err(if spawned {
            EngineError::Conflict(format!("stream {stream} is already live"))
        } else {
            EngineError::Unavailable("shutting down".into())
        });
    }
    Ok(Upload {
        chunks: tx,
        done: done_rx,
    })
}
