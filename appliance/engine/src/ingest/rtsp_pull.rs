//! RTSP pull: each `[[rtsp.sources]]` entry is played on a shard with retina (RTSP
//! client, RTP depacketizing, camera quirks) and recorded as a named stream. A
//! source that drops or cannot be reached is retried with backoff; its state and
//! last error are kept for `GET /v1/sources`.
//!
//! RTP carries presentation times only: video goes through [`DecodeTimes`] for
//! MP4 decode times. Streams are put on one clock by the `rtptime` of the PLAY
//! response's RTP-Info (retina's permissive policy: when a server gives it for
//! every stream; otherwise each stream starts at zero).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use edgerec_media::aac::AudioSpecificConfig;
use edgerec_media::decode_time::DecodeTimes;
use edgerec_media::{
    AudioParams, Codec, Frame, MediaTime, Timescale, TrackId, TrackInfo, TrackParams, VideoParams,
};
use futures::StreamExt;
use retina::client::{
    Credentials, InitialSequenceNumberPolicy, InitialTimestampPolicy, PlayOptions, Session,
    SessionGroup, SessionIdPolicy, SessionOptions, SetupOptions, TeardownPolicy, Transport,
    UnassignedChannelDataPolicy, UnknownRtcpSsrcPolicy,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use serde::Serialize;
use tokio::sync::watch;
use tracing::{info, warn, Instrument};
use ulid::Ulid;

use super::publication::{next_command, Origin, Publication};
use crate::config::{RtspQuirk, RtspSource, RtspTransport};
use crate::Shared;

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A source that sent no media frame this long (RTCP does not count) is
/// dropped and reconnected.
const SILENCE: Duration = Duration::from_secs(10);

/// What the API shows about a source.
#[derive(Clone, Debug, Serialize)]
pub struct SourceStatus {
    pub stream: String,
    /// The URL without credentials.
    pub url: String,
    /// `connecting`, `playing` or `retrying`.
    pub state: &'static str,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Sessions that reached PLAY.
    pub sessions: u64,
}

/// Every source's status, by index in the configuration.
#[derive(Default)]
pub struct SourceTable(Mutex<Vec<SourceStatus>>);

impl SourceTable {
    pub fn new(sources: &[RtspSource]) -> SourceTable {
        SourceTable(Mutex::new(
            sources
                .iter()
                .map(|s| SourceStatus {
                    stream: s.stream.clone(),
                    url: redact(&s.url),
                    state: "connecting",
                    last_error: None,
                    last_error_at: None,
                    sessions: 0,
                })
                .collect(),
        ))
    }

    pub fn all(&self) -> Vec<SourceStatus> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, i: usize, f: impl FnOnce(&mut SourceStatus)) {
        if let Some(s) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get_mut(i) {
            f(s);
        }
    }
}

fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

/// Pulls source `i` until `stop`.
pub async fn pull(shared: Arc<Shared>, i: usize, src: RtspSource, mut stop: watch::Receiver<bool>) {
    let span = tracing::info_span!("rtsp", stream = %src.stream, url = %redact(&src.url));
    async move {
        let group = Arc::new(SessionGroup::default());
        let mut backoff = BACKOFF_MIN;
        loop {
            shared.sources.update(i, |s| s.state = "connecting");
            let started = Instant::now();
            match session(&shared, i, &src, &group, &mut stop).await {
                Ok("shutdown") => return,
                Ok(reason) => info!(reason, "source ended; reconnecting"),
                Err(e) => {
                    warn!(error = %e, retry_in = ?backoff, "source failed");
                    shared.sources.update(i, |s| {
                        s.last_error = Some(e);
                        s.last_error_at = Some(Utc::now());
                    });
                }
            }
            shared.sources.update(i, |s| s.state = "retrying");
            if started.elapsed() > BACKOFF_MAX {
                backoff = BACKOFF_MIN;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
    .instrument(span)
    .await
}

/// One RTSP session: DESCRIBE, SETUP, PLAY, record until it ends.
async fn session(
    shared: &Arc<Shared>,
    i: usize,
    src: &RtspSource,
    group: &Arc<SessionGroup>,
    stop: &mut watch::Receiver<bool>,
) -> Result<&'static str, String> {
    let mut url = url::Url::parse(&src.url).map_err(|e| format!("url: {e}"))?;
    let creds = match (&src.username, url.username()) {
        (Some(u), _) => Some(Credentials {
            username: u.clone(),
            password: src.password.clone().unwrap_or_default(),
        }),
        (None, "") => None,
        (None, u) => Some(Credentials {
            username: u.to_owned(),
            password: url.password().unwrap_or("").to_owned(),
        }),
    };
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let remote = remote_addr(&url).await;
    let q = |x: RtspQuirk| src.quirks.contains(&x);
    let mut options = SessionOptions::default()
        .creds(creds)
        .user_agent(format!("edgerec/{}", env!("CARGO_PKG_VERSION")))
        .session_group(group.clone());
    if q(RtspQuirk::FirstSessionId) {
        options = options.session_id(SessionIdPolicy::UseFirst);
    }
    if q(RtspQuirk::Live555StaleSession) {
        options = options.unassigned_channel_data(UnassignedChannelDataPolicy::AssumeStaleSession);
    }
    if q(RtspQuirk::NoTeardown) {
        options = options.teardown(TeardownPolicy::Never);
    }
    let mut described = Session::describe(url, options)
        .await
        .map_err(|e| e.to_string())?;

    // The first video and the first audio stream we can record.
    let mut chosen: Vec<(usize, TrackId)> = Vec::new();
    for kind in ["video", "audio"] {
        let found = described.streams().iter().position(|s| {
            s.media() == kind
                && matches!(
                    s.encoding_name(),
                    "h264" | "h265" | "mpeg4-generic" | "pcma" | "pcmu"
                )
        });
        match found {
            Some(s) => chosen.push((s, TrackId(chosen.len() as u32 + 1))),
            None => {
                let offered: Vec<_> = described
                    .streams()
                    .iter()
                    .filter(|s| s.media() == kind)
                    .map(|s| s.encoding_name().to_owned())
                    .collect();
                if !offered.is_empty() {
                    warn!(kind, ?offered, "no recordable {kind} stream offered");
                }
            }
        }
    }
    if chosen.is_empty() {
        return Err("the source offers no H.264, H.265, AAC or G.711 stream".into());
    }
    let transport = match src.transport {
        RtspTransport::Tcp => Transport::Tcp(Default::default()),
        RtspTransport::Udp => Transport::Udp(Default::default()),
    };
    for (s, _) in &chosen {
        let opts = SetupOptions::default()
            .transport(transport.clone())
            .frame_format(FrameFormat::MP4);
        described.setup(*s, opts).await.map_err(|e| e.to_string())?;
    }
    let mut play = PlayOptions::default().initial_timestamp(if q(RtspQuirk::IgnoreRtptime) {
        InitialTimestampPolicy::Ignore
    } else {
        InitialTimestampPolicy::Permissive
    });
    if q(RtspQuirk::IgnoreRtpInfoSeq) {
        play = play.initial_seq(InitialSequenceNumberPolicy::Ignore);
    }
    if q(RtspQuirk::AnyRtcpSsrc) {
        play = play.unknown_rtcp_ssrc(UnknownRtcpSsrcPolicy::ProcessPackets);
    }
    if q(RtspQuirk::MonotonicTimestamps) {
        play =
            play.enforce_timestamps_with_max_jump_secs(std::num::NonZeroU32::MIN.saturating_add(9));
    }
    let mut playing = described
        .play(play)
        .await
        .map_err(|e| e.to_string())?
        .demuxed()
        .map_err(|e| e.to_string())?;
    shared.sources.update(i, |s| {
        s.state = "playing";
        s.sessions += 1;
    });
    let origin = Origin {
        protocol: "rtsp-pull",
        remote,
        session_id: Ulid::new().to_string(),
    };
    let Some(publication) = Publication::open(shared, src.stream.clone(), origin).await else {
        return Err(format!("stream {} is already being published", src.stream));
    };
    let mut rec = Recorder {
        publication: Some(publication),
        encodings: playing
            .streams()
            .iter()
            .map(|s| s.encoding_name().to_owned())
            .collect(),
        chosen,
        announced: Vec::new(),
        video: DecodeTimes::new(),
        held_audio: Vec::new(),
        video_started: false,
    };
    for (s, _) in rec.chosen.clone() {
        if let Some(p) = playing.streams()[s].parameters() {
            rec.announce(s, p).await;
        }
    }
    // Silence is judged on media frames only: a camera whose encoder hung may
    // keep sending RTCP (and retina yields those), which must not keep a dead
    // session open.
    let mut last_media = Instant::now();
    let reason = loop {
        tokio::select! {
            _ = tokio::time::sleep_until((last_media + SILENCE).into()) => {
                break Err(format!("no media for {}s", SILENCE.as_secs()));
            }
            item = playing.next() => match item {
                None => break Ok("source ended"),
                Some(Err(e)) => break Err(e.to_string()),
                Some(Ok(CodecItem::VideoFrame(f))) => {
                    last_media = Instant::now();
                    let s = f.stream_id();
                    if f.has_new_parameters() {
                        if let Some(p) = playing.streams()[s].parameters() {
                            rec.announce(s, p).await;
                        }
                    }
                    let clock = playing.streams()[s].clock_rate_hz();
                    let pts = Recorder::time(f.timestamp().elapsed(), clock);
                    let key = f.is_random_access_point();
                    rec.video(s, pts, key, Bytes::from(f.into_data())).await;
                }
                Some(Ok(CodecItem::AudioFrame(f))) => {
                    last_media = Instant::now();
                    let s = f.stream_id();
                    let clock = playing.streams()[s].clock_rate_hz();
                    let pts = Recorder::time(f.timestamp().elapsed(), clock);
                    rec.audio(s, pts, Bytes::copy_from_slice(f.data())).await;
                }
                Some(Ok(_)) => {}
            },
            Some(cmd) = next_command(rec.publication.as_mut()) => {
                if let Some(p) = rec.publication.as_mut() {
                    if p.on_command(cmd).await {
                        rec.publication = None;
                        break Ok("shutdown");
                    }
                }
            }
            _ = stop.changed() => break Ok("shutdown"),
        }
    };
    let why = match &reason {
        Ok(r) => r,
        Err(_) => "source error",
    };
    rec.end(why).await;
    reason
}

async fn remote_addr(url: &url::Url) -> SocketAddr {
    let host = url.host_str().unwrap_or("0.0.0.0");
    let port = url.port().unwrap_or(554);
    match tokio::net::lookup_host((host, port)).await {
        Ok(mut a) => a.next(),
        Err(_) => None,
    }
    .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// Turns retina's frames into the recorder's.
struct Recorder {
    publication: Option<Publication>,
    /// (retina stream index, our track id).
    chosen: Vec<(usize, TrackId)>,
    /// Each retina stream's encoding name (`h264`, `pcma`, ...).
    encodings: Vec<String>,
    announced: Vec<(usize, TrackInfo)>,
    video: DecodeTimes,
    /// Audio that arrived while the first video frames wait in [`DecodeTimes`]:
    /// a recording starts on a video key frame, so it goes in after that frame.
    held_audio: Vec<Frame>,
    video_started: bool,
}

impl Recorder {
    fn track(&self, s: usize) -> Option<TrackId> {
        self.chosen.iter().find(|c| c.0 == s).map(|c| c.1)
    }

    async fn announce(&mut self, s: usize, p: ParametersRef<'_>) {
        let Some(id) = self.track(s) else { return };
        let info = match p {
            ParametersRef::Video(v) => {
                let codec = match v.rfc6381_codec().get(..4) {
                    Some("avc1") => Codec::H264,
                    Some("hvc1") => Codec::H265,
                    _ => return,
                };
                let (width, height) = v.pixel_dimensions();
                TrackInfo {
                    id,
                    codec,
                    params: TrackParams::Video(VideoParams { width, height }),
                    config: Bytes::copy_from_slice(v.extra_data()),
                    codec_string: v.rfc6381_codec().to_owned(),
                }
            }
            // G.711 (no MP4 mapping: the recorder lists it as not recorded).
            ParametersRef::Audio(a) if a.rfc6381_codec().is_none() && a.clock_rate() == 8000 => {
                let alaw = self.encodings.get(s).is_some_and(|e| e == "pcma");
                TrackInfo {
                    id,
                    codec: if alaw { Codec::Pcma } else { Codec::Pcmu },
                    params: TrackParams::Audio(AudioParams {
                        sample_rate: 8000,
                        channels: 1,
                        samples_per_frame: None,
                    }),
                    config: Bytes::new(),
                    codec_string: if alaw { "alaw" } else { "ulaw" }.into(),
                }
            }
            ParametersRef::Audio(a) => {
                let Ok(asc) = AudioSpecificConfig::parse(a.extra_data()) else {
                    warn!("audio stream without a usable AudioSpecificConfig");
                    return;
                };
                TrackInfo {
                    id,
                    codec: Codec::Aac,
                    params: TrackParams::Audio(AudioParams {
                        sample_rate: asc.sample_rate,
                        channels: asc.channels.max(1),
                        samples_per_frame: Some(asc.frame_length),
                    }),
                    config: Bytes::copy_from_slice(a.extra_data()),
                    codec_string: asc.codec_string(),
                }
            }
            _ => return,
        };
        if self.announced.iter().any(|(x, t)| *x == s && *t == info) {
            return;
        }
        self.announced.retain(|(x, _)| *x != s);
        self.announced.push((s, info.clone()));
        if let Some(p) = self.publication.as_mut() {
            p.track(info).await;
        }
    }

    /// A frame's time on the session clock (normal play time), in the stream's
    /// clock rate.
    fn time(elapsed: i64, clock: u32) -> MediaTime {
        MediaTime::new(elapsed, Timescale::new(clock).unwrap_or(Timescale::HZ_90K))
    }

    async fn video(&mut self, s: usize, pts: MediaTime, key: bool, data: Bytes) {
        let Some(track) = self.track(s) else { return };
        if !self.announced.iter().any(|(x, _)| *x == s) {
            return; // no parameters yet: nothing decodable
        }
        self.video.push(Frame {
            track,
            dts: pts,
            pts,
            key,
            data,
        });
        while let Some(f) = self.video.pop() {
            if let Some(p) = self.publication.as_mut() {
                p.frame(f).await;
                if !self.video_started {
                    self.video_started = true;
                    for a in self.held_audio.drain(..) {
                        p.frame(a).await;
                    }
                }
            }
        }
        if let Some(p) = self.publication.as_mut() {
            p.send_frames().await;
        }
    }

    async fn audio(&mut self, s: usize, pts: MediaTime, data: Bytes) {
        let Some(track) = self.track(s) else { return };
        if !self.announced.iter().any(|(x, _)| *x == s) {
            return;
        }
        let f = Frame {
            track,
            dts: pts,
            pts,
            key: true,
            data,
        };
        let has_video = self
            .announced
            .iter()
            .any(|(_, t)| t.kind() == edgerec_media::MediaKind::Video);
        if has_video && !self.video_started {
            // Bounded: a source whose video never starts still records audio.
            if self.held_audio.len() < 500 {
                self.held_audio.push(f);
                return;
            }
            self.video_started = true;
        }
        if let Some(p) = self.publication.as_mut() {
            for a in self.held_audio.drain(..) {
                p.frame(a).await;
            }
            p.frame(f).await;
            p.send_frames().await;
        }
    }

    async fn end(mut self, reason: &'static str) {
        let Some(mut p) = self.publication.take() else {
            return;
        };
        while let Some(f) = self.video.pop_end() {
            p.frame(f).await;
        }
        for a in self.held_audio.drain(..) {
            p.frame(a).await;
        }
        p.end(reason).await;
    }
}
