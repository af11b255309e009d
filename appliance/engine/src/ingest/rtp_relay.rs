//! Relayed RTP: the API opens a session (`POST /v1/rtp-sessions`) with the
//! tracks an SFU or media server will send — codec, payload type, optional SSRC
//! and SRTP keys — and gets UDP ports back, as mediasoup's PlainTransport or
//! Janus's rtp_forward expect of a recorder. The stream name is claimed at once
//! (a name already live is a 409, not a silent drop later).
//!
//! Each track has an even RTP port and the odd RTCP port after it (or one port
//! with `rtcp_mux`). Datagrams go through [`edgerec_rtp::RtpSession`]; receiver
//! reports, and NACK/PLI when the request says the sender takes them, go back to
//! where the sender's RTCP (else its RTP) came from. The session ends on DELETE,
//! on BYE from every track (after a short linger for packets still in flight:
//! BYE travels on the RTCP port and can overtake the last RTP packets), on
//! `rtp.idle_timeout` of silence, or at shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use edgerec_media::Codec;
use edgerec_rtp::srtp::{CryptoSuite, SrtpKey};
use edgerec_rtp::{Feedback, RtpSession, SessionOptions, TrackSpec};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};
use tracing::{info, warn, Instrument};
use ulid::Ulid;

use super::publication::{next_command, Origin, Publication};
use super::rtp_feed::{bind, sleep_until, Ports, Receivers, RtpFeed};
use crate::config::check_stream_name;
use crate::registry::StreamCommand;
use crate::{EngineError, Shared};

const MAX_TRACKS: usize = 8;
/// How long packets are still taken after every track said BYE.
const BYE_LINGER: std::time::Duration = std::time::Duration::from_millis(300);
/// How often a receiving session copies its counters into the registry's view
/// (a lock all shards share; once per batch was a lock per few datagrams).
const VIEW_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// `POST /v1/rtp-sessions`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayRequest {
    /// `app/name` the stream is published (and recorded) as.
    pub stream: String,
    pub tracks: Vec<RelayTrack>,
    /// SRTP keys the sender encrypts with (SDES style); plain RTP without.
    #[serde(default)]
    pub srtp: Option<SrtpRequest>,
    /// RTCP feedback the sender understands.
    #[serde(default)]
    pub feedback: Option<FeedbackRequest>,
    /// RTP and RTCP on one port per track (RFC 5761).
    #[serde(default)]
    pub rtcp_mux: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayTrack {
    pub codec: Codec,
    pub payload_type: u8,
    /// Defaults: 90000 for video, 48000 for Opus; required otherwise.
    #[serde(default)]
    pub clock_rate: Option<u32>,
    #[serde(default)]
    pub channels: Option<u8>,
    /// The SDP `a=fmtp` parameters (AAC's `config`, H.264's `sprop-parameter-sets`).
    #[serde(default)]
    pub fmtp: Option<String>,
    /// Accept only this SSRC (otherwise the first seen, replaced when the sender restarts).
    #[serde(default)]
    pub ssrc: Option<u32>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrtpRequest {
    /// `AES_CM_128_HMAC_SHA1_80` (default), `AES_CM_128_HMAC_SHA1_32`, `AEAD_AES_128_GCM`.
    #[serde(default)]
    pub crypto_suite: Option<String>,
    /// Master key ‖ master salt, base64 (as SDES `inline:` and mediasoup's keyBase64).
    pub key_base64: String,
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    #[serde(default)]
    pub nack: bool,
    #[serde(default)]
    pub pli: bool,
}

/// What the API shows about a session.
#[derive(Clone, Debug, Serialize)]
pub struct RelayView {
    pub id: String,
    pub stream: String,
    pub created_at: DateTime<Utc>,
    /// `waiting` (no packet yet) or `receiving`.
    pub state: &'static str,
    pub srtp: bool,
    pub rtcp_mux: bool,
    pub tracks: Vec<RelayTrackView>,
    pub packets_received: u64,
    pub packets_lost: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RelayTrackView {
    pub codec: Codec,
    pub payload_type: u8,
    pub rtp_port: u16,
    pub rtcp_port: u16,
}

struct Entry {
    view: RelayView,
    stop: watch::Sender<bool>,
}

/// Open sessions, and the next port to try (for every RTP ingest).
#[derive(Default)]
pub struct RelayTable {
    sessions: Mutex<HashMap<String, Entry>>,
    pub(super) port_cursor: Mutex<u16>,
}

impl RelayTable {
    pub fn all(&self) -> Vec<RelayView> {
        let mut v: Vec<RelayView> = self.lock().values().map(|e| e.view.clone()).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    pub fn get(&self, id: &str) -> Option<RelayView> {
        self.lock().get(id).map(|e| e.view.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut RelayView)) {
        if let Some(e) = self.lock().get_mut(id) {
            f(&mut e.view);
        }
    }
}

fn specs(req: &RelayRequest) -> Result<Vec<TrackSpec>, EngineError> {
    let bad = |m: String| EngineError::BadRequest(m);
    if req.tracks.is_empty() || req.tracks.len() > MAX_TRACKS {
        return Err(bad(format!("tracks: 1 to {MAX_TRACKS} expected")));
    }
    req.tracks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.payload_type > 127 || (req.rtcp_mux && (64..=95).contains(&t.payload_type)) {
                return Err(bad(format!(
                    "tracks[{i}]: payload type {} cannot be used{}",
                    t.payload_type,
                    if req.rtcp_mux {
                        " with rtcp_mux (64-95 clash with RTCP)"
                    } else {
                        ""
                    }
                )));
            }
            let clock_rate = match (t.clock_rate, t.codec) {
                (Some(r), _) => r,
                (None, Codec::Opus) => 48_000,
                (None, Codec::Pcma | Codec::Pcmu) => 8_000,
                (None, c) if c.kind() == edgerec_media::MediaKind::Video => 90_000,
                (None, c) => {
                    return Err(bad(format!(
                        "tracks[{i}]: clock_rate is required for {}",
                        c.name()
                    )))
                }
            };
            Ok(TrackSpec {
                codec: t.codec,
                payload_type: t.payload_type,
                clock_rate,
                channels: t.channels,
                fmtp: t.fmtp.clone(),
                ssrc: t.ssrc,
            })
        })
        .collect()
}

/// Validates the request, binds the ports, and starts the session on a shard.
pub async fn open(
    shared: &std::sync::Arc<Shared>,
    req: RelayRequest,
) -> Result<RelayView, EngineError> {
    check_stream_name(&req.stream).map_err(|e| EngineError::BadRequest(format!("stream: {e}")))?;
    let specs = specs(&req)?;
    let srtp = match &req.srtp {
        Some(s) => {
            let name = s
                .crypto_suite
                .as_deref()
                .unwrap_or("AES_CM_128_HMAC_SHA1_80");
            let suite = CryptoSuite::from_name(name).ok_or_else(|| {
                EngineError::BadRequest(format!("srtp: unknown crypto_suite {name}"))
            })?;
            Some(
                SrtpKey::new(suite, &s.key_base64)
                    .map_err(|e| EngineError::BadRequest(format!("srtp: {e}")))?,
            )
        }
        None => None,
    };
    let fb = req.feedback.unwrap_or_default();
    let options = SessionOptions {
        jitter_delay: shared.config.rtp.jitter.0,
        feedback: Feedback {
            nack: fb.nack,
            pli: fb.pli,
        },
        srtp,
        ..Default::default()
    };
    let session = RtpSession::new(specs, options)
        .map_err(|e| EngineError::BadRequest(format!("tracks[{}]: {}", e.track, e.reason)))?;
    let ports = bind(shared, req.tracks.len(), req.rtcp_mux)?;
    let id = Ulid::new().to_string();
    let view = RelayView {
        id: id.clone(),
        stream: req.stream.clone(),
        created_at: Utc::now(),
        state: "waiting",
        srtp: req.srtp.is_some(),
        rtcp_mux: req.rtcp_mux,
        tracks: req
            .tracks
            .iter()
            .zip(&ports)
            .map(|(t, p)| {
                let rtp_port = p.rtp.local_addr().map(|a| a.port()).unwrap_or(0);
                RelayTrackView {
                    codec: t.codec,
                    payload_type: t.payload_type,
                    rtp_port,
                    rtcp_port: p
                        .rtcp
                        .as_ref()
                        .map_or(rtp_port, |s| s.local_addr().map(|a| a.port()).unwrap_or(0)),
                }
            })
            .collect(),
        packets_received: 0,
        packets_lost: 0,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let (claimed_tx, claimed_rx) = oneshot::channel();
    shared.relays.lock().insert(
        id.clone(),
        Entry {
            view: view.clone(),
            stop: stop_tx,
        },
    );
    let s = shared.clone();
    let (sid, stream, mux) = (id.clone(), req.stream.clone(), req.rtcp_mux);
    let origin = Origin {
        protocol: if req.srtp.is_some() { "srtp" } else { "rtp" },
        remote: SocketAddr::new(shared.config.rtp.listen_ip, 0),
        session_id: id.clone(),
    };
    let spawned = shared.jobs.spawn(move |shutdown| {
        let span = tracing::info_span!("rtp", session = %sid, stream = %stream);
        run(
            s, sid, stream, origin, session, ports, mux, claimed_tx, stop_rx, shutdown,
        )
        .instrument(span)
    });
    let claimed = spawned && claimed_rx.await.unwrap_or(false);
    if !claimed {
        shared.relays.lock().remove(&id);
        return Err(if spawned {
            EngineError::Conflict(format!("stream {} is already live", req.stream))
        } else {
            EngineError::Unavailable("shutting down".into())
        });
    }
    info!(session = %id, stream = %req.stream, ports = ?view.tracks.iter().map(|t| t.rtp_port).collect::<Vec<_>>(), "RTP session opened");
    Ok(view)
}

/// Ends a session; its task finalizes the recording and removes the entry.
pub async fn close(shared: &Shared, id: &str) -> Result<(), EngineError> {
    let stop = shared
        .relays
        .lock()
        .get(id)
        .map(|e| e.stop.clone())
        .ok_or_else(|| EngineError::NotFound(format!("RTP session {id} not found")))?;
    let _ = stop.send(true);
    // Wait (briefly) until the recording is finalized, so a GET that follows sees it.
    for _ in 0..100 {
        if shared.relays.get(id).is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run(
    shared: std::sync::Arc<Shared>,
    id: String,
    stream: String,
    origin: Origin,
    session: RtpSession,
    ports: Vec<Ports>,
    mux: bool,
    claimed: oneshot::Sender<bool>,
    mut stop: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(mut publication) = Publication::open(&shared, stream, origin).await else {
        let _ = claimed.send(false);
        return;
    };
    let _ = claimed.send(true);
    let mut rx = Receivers::new();
    for (track, p) in ports.into_iter().enumerate() {
        if let Err(e) = rx.add(track, p) {
            warn!(error = %e, "could not register the session's sockets");
        }
    }
    let mut feed = RtpFeed::new(session);
    let n = feed.session.track_count();
    let mut rtp_from: Vec<Option<SocketAddr>> = vec![None; n];
    let mut rtcp_from: Vec<Option<SocketAddr>> = vec![None; n];
    let mut byes = vec![false; n];
    let idle = shared.config.rtp.idle_timeout.0;
    let mut last_data = Instant::now();
    let mut bye_at: Option<Instant> = None;
    let mut view_at = Instant::now();
    // Two timers for the session's life, moved when their deadline moves: one
    // made per round cost a timer-wheel insert and remove per datagram batch.
    let session_timer = tokio::time::sleep_until(last_data.into());
    let idle_timer = tokio::time::sleep_until((last_data + idle).into());
    tokio::pin!(session_timer, idle_timer);
    let mut armed: Option<Instant> = None;
    let reason: &'static str = loop {
        let deadline = feed.session.poll_timeout();
        if deadline != armed {
            if let Some(at) = deadline {
                session_timer.as_mut().reset(at.into());
            }
            armed = deadline;
        }
        tokio::select! {
            d = rx.recv() => {
                let Some(d) = d else { break "sockets closed" };
                let now = Instant::now();
                if rtp_from.iter().chain(&rtcp_from).all(Option::is_none) {
                    publication.live().set_remote(d.from);
                    shared.relays.update(&id, |v| v.state = "receiving");
                    info!(from = %d.from, "first packet");
                }
                last_data = now;
                // What else the receive loops have handed over goes in the same
                // round: the session's events, RTCP and stats once per batch.
                let mut bytes = 0;
                let mut next = Some(d);
                while let Some(d) = next {
                    bytes += d.data.len() as u64;
                    let (track, from) = (d.track, d.from);
                    if feed.handle_datagram(track, d, mux, now) {
                        rtcp_from[track] = Some(from);
                    } else {
                        rtp_from[track] = Some(from);
                    }
                    next = rx.try_recv();
                }
                publication.count_bytes(bytes);
                shared.metrics.bytes_received_total.fetch_add(bytes, Relaxed);
            }
            _ = &mut session_timer, if armed.is_some() => {
                armed = None;
                feed.session.handle_timeout(Instant::now());
            }
            Some(cmd) = next_command(Some(&mut publication)) => {
                if matches!(cmd, StreamCommand::Shutdown { .. }) {
                    take_queued(&mut feed, &mut rx, mux);
                }
                if feed.on_command(&mut publication, cmd).await {
                    // Shutdown: the publication has ended.
                    shared.relays.lock().remove(&id);
                    return;
                }
            }
            _ = stop.changed() => break "api",
            _ = shutdown.changed() => break "shutdown",
            _ = &mut idle_timer => {
                if last_data.elapsed() >= idle {
                    break "idle";
                }
                idle_timer.as_mut().reset((last_data + idle).into());
            }
            _ = sleep_until(bye_at), if bye_at.is_some() => break "bye",
        }
        feed.drain(&mut publication, &mut byes).await;
        while let Some(t) = feed.session.poll_transmit() {
            let to = rtcp_from[t.track].or_else(|| {
                rtp_from[t.track].map(|a| {
                    if mux {
                        a
                    } else {
                        SocketAddr::new(a.ip(), a.port().wrapping_add(1))
                    }
                })
            });
            if let Some(to) = to {
                rx.send(t.track, &t.data, to).await;
            }
        }
        if view_at.elapsed() >= VIEW_EVERY {
            view_at = Instant::now();
            let s = feed.session.stats();
            shared.relays.update(&id, |v| {
                v.packets_received = s.packets_received;
                v.packets_lost = s.packets_lost;
            });
        }
        if bye_at.is_none() && byes.iter().all(|b| *b) {
            bye_at = Some(Instant::now() + BYE_LINGER);
        }
    };
    take_queued(&mut feed, &mut rx, mux);
    feed.finish(publication, reason).await;
    drop(rx);
    shared.relays.lock().remove(&id);
}

/// What the channel and the sockets still hold goes to the session before it
/// ends.
fn take_queued(feed: &mut RtpFeed, rx: &mut Receivers, mux: bool) {
    let now = Instant::now();
    for d in rx.take_queued() {
        feed.handle_datagram(d.track, d, mux, now);
    }
}
