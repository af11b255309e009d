//! WebRTC ingest by WHIP (RFC 9725): a browser or encoder POSTs an SDP offer
//! for a stream, gets an answer and a session URL, sends media over ICE-lite +
//! DTLS-SRTP, and DELETEs the session to end it.
//!
//! What is recorded: H.264, VP8, VP9, AV1 and Opus (the answer offers only
//! those, so a browser picks among them; a VP9 `vpcC` and VP8/VP9 picture sizes
//! are read from the first key frame, an AV1 `av1C` from the sequence header
//! every AV1 key frame carries; `container = "auto"` puts VP8 in WebM, since
//! MP4 has no VP8 binding). str0m hands over whole frames (H.264 in Annex B) with extended
//! RTP times; tracks are put on one clock by arrival time of their first frame
//! (browsers send audio and video within a few ms of capture). WebRTC encoders
//! do not reorder frames, so decode time = presentation time. A key frame is
//! asked for (PLI) when video starts on a delta frame or after loss.
//!
//! The session itself ([`session`], str0m) is the `whip` cargo feature, on by
//! default; a build without it (the benchmark's, docs/design/benchmark.md)
//! answers every offer with "not in this build".

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::watch;

use crate::{EngineError, Shared};

#[cfg(feature = "whip")]
mod session;

/// What the API shows about a WHIP session.
#[derive(Clone, Debug, Serialize)]
pub struct WhipView {
    pub id: String,
    pub stream: String,
    pub remote: String,
    /// `connecting`, `connected`.
    pub state: &'static str,
}

struct Entry {
    view: WhipView,
    stop: watch::Sender<bool>,
}

#[derive(Default)]
pub struct WhipTable(Mutex<HashMap<String, Entry>>);

impl WhipTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn all(&self) -> Vec<WhipView> {
        let mut v: Vec<WhipView> = self.lock().values().map(|e| e.view.clone()).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }
}

/// The answer to a WHIP offer.
pub struct WhipAnswer {
    pub id: String,
    pub sdp: String,
}

/// Accepts an offer for `stream` from `peer`: binds a port, answers, and starts
/// the session on a shard (the name is claimed before the answer goes out).
pub async fn offer(
    shared: &Arc<Shared>,
    stream: String,
    offer: &str,
    peer: IpAddr,
) -> Result<WhipAnswer, EngineError> {
    #[cfg(feature = "whip")]
    return session::offer(shared, stream, offer, peer).await;
    #[cfg(not(feature = "whip"))]
    {
        let _ = (shared, stream, offer, peer);
        Err(EngineError::NotBuilt(
            "WHIP is not in this build of edgerec (cargo feature `whip`)",
        ))
    }
}

/// Ends a WHIP session (its recording is finalized).
pub async fn delete(shared: &Shared, id: &str) -> Result<(), EngineError> {
    let stop = shared
        .whip
        .lock()
        .get(id)
        .map(|e| e.stop.clone())
        .ok_or_else(|| EngineError::NotFound(format!("WHIP session {id} not found")))?;
    let _ = stop.send(true);
    for _ in 0..100 {
        if !shared.whip.lock().contains_key(id) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}
