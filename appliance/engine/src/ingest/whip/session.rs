//! A WHIP session on str0m (the `whip` feature): the offer answered, ICE-lite
//! and DTLS-SRTP driven from the shard, str0m's frames put on one clock.
//!
//! str0m is sans-IO like the rest of our protocol code (we drive its sockets
//! and clock from the shard), ICE-lite as a server should be, with a pure-Rust
//! crypto backend. webrtc-rs was the alternative; its async design owns
//! sockets and tasks.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Once};
use std::time::Instant;

use bytes::Bytes;
use edgerec_media::annexb::nal_units;
use edgerec_media::{
    Codec, Frame, MediaKind, MediaTime, Timescale, TrackId, TrackInfo, TrackParams, VideoParams,
};
use edgerec_rtp::depacketize::h264::H264;
use edgerec_rtp::depacketize::{opus, Depacketizer, Description};
use str0m::change::SdpOffer;
use str0m::format::{Codec as WebrtcCodec, CodecExtra};
use str0m::media::{KeyframeRequestKind, MediaData, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn, Instrument};
use ulid::Ulid;

use super::{Entry, WhipAnswer, WhipView};
use crate::config::check_stream_name;
use crate::ingest::publication::{next_command, Origin, Publication};
use crate::ingest::rtp_feed::{bind, sleep_until};
use crate::{EngineError, Shared};

/// The recorder's key frame requests go out at most this often.
const PLI_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

static CRYPTO: Once = Once::new();

/// The address a peer at `peer` reaches us by: the configured one, or the
/// source address the kernel would route to it from.
fn candidate_ip(configured: IpAddr, peer: IpAddr) -> IpAddr {
    if !configured.is_unspecified() {
        return configured;
    }
    let any: IpAddr = if peer.is_ipv4() {
        [0, 0, 0, 0].into()
    } else {
        [0u16; 8].into()
    };
    UdpSocket::bind((any, 0))
        .and_then(|s| s.connect((peer, 9)).map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .unwrap_or(peer)
}

/// [`super::offer`] with str0m.
pub(super) async fn offer(
    shared: &Arc<Shared>,
    stream: String,
    offer: &str,
    peer: IpAddr,
) -> Result<WhipAnswer, EngineError> {
    check_stream_name(&stream).map_err(|e| EngineError::BadRequest(format!("stream: {e}")))?;
    let video = preferred_video(offer);
    let offer = SdpOffer::from_sdp_string(offer)
        .map_err(|e| EngineError::BadRequest(format!("SDP offer: {e}")))?;
    CRYPTO.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
    let mut ports = bind(shared, 1, true)?;
    let socket = ports
        .pop()
        .ok_or_else(|| EngineError::Unavailable("no port".into()))?
        .rtp;
    let port = socket.local_addr()?.port();
    let local = SocketAddr::new(candidate_ip(shared.config.rtp.listen_ip, peer), port);
    let mut rtc = RtcConfig::new()
        .set_ice_lite(true)
        .clear_codecs()
        .enable_h264(video.is_none_or(|v| v == Codec::H264))
        .enable_vp8(video.is_none_or(|v| v == Codec::Vp8))
        .enable_vp9(video.is_none_or(|v| v == Codec::Vp9))
        .enable_av1(video.is_none_or(|v| v == Codec::Av1))
        .enable_opus(true, false)
        .build(Instant::now());
    let candidate = Candidate::host(local, "udp")
        .map_err(|e| EngineError::Unavailable(format!("ICE candidate {local}: {e}")))?;
    rtc.add_local_candidate(candidate);
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| EngineError::BadRequest(format!("SDP offer: {e}")))?;
    let id = Ulid::new().to_string();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (claimed_tx, claimed_rx) = oneshot::channel();
    shared.whip.lock().insert(
        id.clone(),
        Entry {
            view: WhipView {
                id: id.clone(),
                stream: stream.clone(),
                remote: peer.to_string(),
                state: "connecting",
            },
            stop: stop_tx,
        },
    );
    let s = shared.clone();
    let (sid, name) = (id.clone(), stream.clone());
    let spawned = shared.jobs.spawn(move |shutdown| {
        let span = tracing::info_span!("whip", session = %sid, stream = %name);
        run(
            s, sid, name, rtc, socket, local, peer, claimed_tx, stop_rx, shutdown,
        )
        .instrument(span)
    });
    if !(spawned && claimed_rx.await.unwrap_or(false)) {
        shared.whip.lock().remove(&id);
        return Err(if spawned {
            EngineError::Conflict(format!("stream {stream} is already live"))
        } else {
            EngineError::Unavailable("shutting down".into())
        });
    }
    info!(session = %id, %stream, %local, "WHIP session answered");
    Ok(WhipAnswer {
        id,
        sdp: answer.to_sdp_string(),
    })
}

/// str0m's frames to ours: track ids per mid, descriptions, one clock.
struct Tracks {
    by_mid: Vec<(Mid, TrackState)>,
    epoch: Option<Instant>,
}

struct TrackState {
    id: TrackId,
    rate: u32,
    info: Option<TrackInfo>,
    /// H.264: the RTP depacketizer, fed the frame's NAL units as single-NAL
    /// packets (parameter sets, key frames and the avcC are handled there once).
    h264: H264,
    /// (first RTP time, offset in ticks from the session epoch).
    origin: Option<(u64, i64)>,
    seen_key: bool,
}

impl TrackState {
    /// Announces `desc` if it differs from the track's current description.
    fn describe(&mut self, desc: Description, out: &mut Vec<Out>) {
        let info = TrackInfo {
            id: self.id,
            codec: desc.codec,
            params: desc.params,
            config: desc.config,
            codec_string: desc.codec_string,
        };
        if self.info.as_ref() != Some(&info) {
            self.info = Some(info.clone());
            out.push(Out::Track(info));
        }
    }

    /// Video: asks for a key frame when one is needed; whether a frame with
    /// `key` can be recorded (described, and a key frame seen).
    fn admit_video(&mut self, key: bool, d: &MediaData, out: &mut Vec<Out>) -> bool {
        if !key && (!self.seen_key || !d.contiguous) {
            out.push(Out::WantKey(d.mid));
        }
        if !self.seen_key && !key || self.info.is_none() {
            return false;
        }
        self.seen_key = true;
        true
    }
}

enum Out {
    Track(TrackInfo),
    Frame(Frame),
    /// Ask this mid for a key frame.
    WantKey(Mid),
}

impl Tracks {
    fn video_mids(&self) -> impl Iterator<Item = Mid> + '_ {
        self.by_mid
            .iter()
            .filter(|(_, t)| {
                t.info
                    .as_ref()
                    .is_some_and(|i| i.kind() == MediaKind::Video)
            })
            .map(|(m, _)| *m)
    }

    fn handle(&mut self, d: MediaData, out: &mut Vec<Out>) {
        let codec = match d.params.spec().codec {
            WebrtcCodec::H264 => Codec::H264,
            WebrtcCodec::Vp8 => Codec::Vp8,
            WebrtcCodec::Vp9 => Codec::Vp9,
            WebrtcCodec::Av1 => Codec::Av1,
            WebrtcCodec::Opus => Codec::Opus,
            other => return debug!(?other, "codec not recorded"),
        };
        let epoch = *self.epoch.get_or_insert(d.network_time);
        let n = self.by_mid.len();
        let t = match self.by_mid.iter_mut().find(|(m, _)| *m == d.mid) {
            Some((_, t)) => t,
            None => {
                self.by_mid.push((
                    d.mid,
                    TrackState {
                        id: TrackId(n as u32 + 1),
                        rate: d.time.frequency().get(),
                        info: None,
                        h264: H264::default(),
                        origin: None,
                        seen_key: false,
                    },
                ));
                &mut self.by_mid[n].1
            }
        };
        let frame = Bytes::from_owner(d.data.clone());
        let (data, key) = match codec {
            Codec::H264 => {
                let mut units = Vec::new();
                let fed = nal_units(&frame).try_for_each(|nal| t.h264.push(&frame.slice_ref(nal)));
                if let Err(e) = fed.and_then(|()| t.h264.finish(&mut units)) {
                    t.h264.reset();
                    warn!("H.264 frame dropped: {e}");
                    out.push(Out::WantKey(d.mid));
                    return;
                }
                if let Some(desc) = t.h264.take_description() {
                    t.describe(desc, out);
                }
                let Some(unit) = units.pop() else { return };
                if !t.admit_video(unit.key, &d, out) {
                    return;
                }
                (unit.data, unit.key)
            }
            Codec::Vp8 | Codec::Vp9 => {
                let size = if codec == Codec::Vp8 {
                    edgerec_media::picture_size::vp8_key_frame(&frame)
                } else {
                    edgerec_media::picture_size::vp9_key_frame(&frame)
                };
                if let Some((width, height)) = size {
                    t.describe(vpx_description(codec, frame[0], width, height), out);
                }
                if !t.admit_video(size.is_some(), &d, out) {
                    return;
                }
                (frame, size.is_some())
            }
            Codec::Av1 => {
                // A key frame starts a coded video sequence: it carries the
                // sequence header the av1C is made of (and str0m sees the
                // aggregation header's N bit).
                let config = edgerec_media::av1::config_record(&frame);
                let new_sequence = matches!(d.codec_extra, CodecExtra::Av1(e) if e.is_keyframe);
                let key = config.is_some() || new_sequence;
                if let Some((config, h)) = config {
                    t.describe(
                        Description {
                            codec,
                            params: TrackParams::Video(VideoParams {
                                width: h.max_width,
                                height: h.max_height,
                            }),
                            codec_string: edgerec_media::codec_string::av1(&config)
                                .unwrap_or_default(),
                            config,
                        },
                        out,
                    );
                }
                if !t.admit_video(key, &d, out) {
                    return;
                }
                (without_temporal_delimiter(frame), key)
            }
            _ => {
                if t.info.is_none() {
                    t.describe(opus::description(2), out);
                }
                (frame, true)
            }
        };
        let numer = d.time.numer();
        let rate = t.rate;
        let (first, offset) = *t.origin.get_or_insert_with(|| {
            let since = d.network_time.saturating_duration_since(epoch);
            (
                numer,
                (since.as_secs_f64() * f64::from(rate)).round() as i64,
            )
        });
        let Some(scale) = Timescale::new(rate) else {
            return;
        };
        let at = MediaTime::new(numer.wrapping_sub(first) as i64 + offset, scale);
        out.push(Out::Frame(Frame {
            track: t.id,
            dts: at,
            pts: at,
            key,
            data,
        }));
    }
}

/// The first video codec we record in the offer's order of preference (the
/// `m=video` payload type list): the answer offers only it, so the client's
/// choice wins (str0m would otherwise answer in its own order).
fn preferred_video(offer: &str) -> Option<Codec> {
    let lines: Vec<&str> = offer.lines().map(str::trim).collect();
    let start = lines.iter().position(|l| l.starts_with("m=video"))?;
    let pts: Vec<&str> = lines[start].split_whitespace().skip(3).collect();
    let section = lines[start + 1..]
        .iter()
        .take_while(|l| !l.starts_with("m="));
    let names: Vec<(&str, String)> = section
        .filter_map(|l| l.strip_prefix("a=rtpmap:"))
        .filter_map(|r| {
            let (pt, enc) = r.split_once(' ')?;
            Some((pt, enc.split('/').next()?.to_ascii_uppercase()))
        })
        .collect();
    pts.iter()
        .find_map(|pt| match names.iter().find(|(p, _)| p == pt)?.1.as_str() {
            "H264" => Some(Codec::H264),
            "VP8" => Some(Codec::Vp8),
            "VP9" => Some(Codec::Vp9),
            "AV1" => Some(Codec::Av1),
            _ => None,
        })
}

/// An AV1 temporal unit as an MP4/WebM sample: without the temporal delimiter
/// OBU a sender may have kept (AV1-ISOBMFF 2.4), sliced, not copied.
fn without_temporal_delimiter(unit: Bytes) -> Bytes {
    let delimiter = match edgerec_media::av1::obus(&unit).next() {
        Some(o) if o.obu_type == edgerec_media::av1::OBU_TEMPORAL_DELIMITER => o.bytes.len(),
        _ => 0,
    };
    unit.slice(delimiter..)
}

/// A VP8 or VP9 track as its key frame describes it (VP8 needs no decoder
/// configuration; VP9 gets a `vpcC` for MP4).
fn vpx_description(codec: Codec, first: u8, width: u32, height: u32) -> Description {
    let params = TrackParams::Video(VideoParams { width, height });
    if codec == Codec::Vp8 {
        return Description {
            codec,
            params,
            config: Bytes::new(),
            codec_string: "vp8".into(),
        };
    }
    let config = vp9_config(first, width, height);
    Description {
        codec,
        params,
        codec_string: edgerec_media::codec_string::vp9(&config).unwrap_or_default(),
        config,
    }
}

/// A `vpcC` (VP codec ISO-BMFF binding, version 1) for an 8-bit 4:2:0 VP9
/// stream as browsers send it: profile from the key frame's first byte, the
/// level from the picture size, colour unspecified.
fn vp9_config(first: u8, width: u32, height: u32) -> Bytes {
    let profile = ((first >> 4) & 1) << 1 | ((first >> 5) & 1);
    let pixels = width * height;
    // VP9 levels by maximum luma picture size (VP9 spec annex A).
    const LEVELS: [(u32, u8); 8] = [
        (36_864, 10),
        (73_728, 11),
        (122_880, 20),
        (245_760, 21),
        (552_960, 30),
        (983_040, 31),
        (2_228_224, 40),
        (8_912_896, 50),
    ];
    let level = LEVELS
        .iter()
        .find(|(max, _)| pixels <= *max)
        .map_or(60, |(_, l)| *l);
    Bytes::from(vec![
        1,
        0,
        0,
        0,
        profile,
        level,
        (8 << 4) | (1 << 1),
        2,
        2,
        2,
        0,
        0,
    ])
}

#[allow(clippy::too_many_arguments)]
async fn run(
    shared: Arc<Shared>,
    id: String,
    stream: String,
    mut rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    peer: IpAddr,
    claimed: oneshot::Sender<bool>,
    mut stop: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let origin = Origin {
        protocol: "whip",
        remote: SocketAddr::new(peer, 0),
        session_id: id.clone(),
    };
    let Some(mut publication) = Publication::open(&shared, stream, origin).await else {
        let _ = claimed.send(false);
        return;
    };
    let _ = claimed.send(true);
    let socket = match tokio::net::UdpSocket::from_std(socket) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "WHIP socket");
            publication.end("error").await;
            shared.whip.lock().remove(&id);
            return;
        }
    };
    let idle = shared.config.rtp.idle_timeout.0;
    let mut last_data = Instant::now();
    let mut tracks = Tracks {
        by_mid: Vec::new(),
        epoch: None,
    };
    let mut out = Vec::new();
    let mut last_pli: Option<Instant> = None;
    let mut buf = vec![0u8; 2000];
    let reason: &'static str = 'session: loop {
        // Everything str0m has to say, up to its next deadline.
        let deadline = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Transmit(t)) => {
                    if let Err(e) = socket.send_to(&t.contents, t.destination).await {
                        debug!(error = %e, "send failed");
                    }
                }
                Ok(Output::Event(e)) => match e {
                    Event::MediaData(d) => tracks.handle(d, &mut out),
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        break 'session "disconnected"
                    }
                    Event::Connected => {
                        info!("connected");
                        if let Some(e) = shared.whip.lock().get_mut(&id) {
                            e.view.state = "connected";
                        }
                    }
                    Event::MediaAdded(m) => info!(mid = %m.mid, kind = ?m.kind, "media"),
                    _ => {}
                },
                Err(e) => {
                    warn!(error = %e, "WebRTC session failed");
                    break 'session "error";
                }
            }
        };
        for o in out.drain(..) {
            match o {
                Out::Track(t) => publication.track(t).await,
                Out::Frame(f) => publication.frame(f).await,
                Out::WantKey(mid) => {
                    if let Some(rx) = rtc.direct_api().stream_rx_by_mid(mid, None) {
                        rx.request_keyframe(KeyframeRequestKind::Pli);
                    }
                }
            }
        }
        publication.send_frames().await;
        if last_pli.is_none_or(|at| at.elapsed() >= PLI_INTERVAL)
            && publication.live().take_key_frame_request()
        {
            // The recorder waits for a key frame: Chromium makes one only
            // when asked (one in 8 s otherwise).
            last_pli = Some(Instant::now());
            for mid in tracks.video_mids() {
                if let Some(rx) = rtc.direct_api().stream_rx_by_mid(mid, None) {
                    rx.request_keyframe(KeyframeRequestKind::Pli);
                }
            }
        }
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, source)) => {
                    last_data = Instant::now();
                    publication.count_bytes(n as u64);
                    shared.metrics.bytes_received_total.fetch_add(n as u64, Relaxed);
                    let Ok(contents) = buf[..n].try_into() else {
                        continue;
                    };
                    let input = Input::Receive(Instant::now(), Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: local,
                        contents,
                    });
                    if let Err(e) = rtc.handle_input(input) {
                        warn!(error = %e, %source, "WebRTC input rejected");
                    }
                }
                Err(e) => {
                    debug!(error = %e, "receive failed");
                }
            },
            _ = sleep_until(Some(deadline)) => {
                if let Err(e) = rtc.handle_input(Input::Timeout(Instant::now())) {
                    warn!(error = %e, "WebRTC timeout handling failed");
                    break 'session "error";
                }
            }
            Some(cmd) = next_command(Some(&mut publication)) => {
                if publication.on_command(cmd).await {
                    shared.whip.lock().remove(&id);
                    return;
                }
            }
            _ = stop.changed() => break 'session "api",
            _ = shutdown.changed() => break 'session "shutdown",
            _ = tokio::time::sleep_until((last_data + idle).into()) => break 'session "idle",
        }
    };
    rtc.disconnect();
    info!(reason, "WHIP session ended");
    publication.end(reason).await;
    shared.whip.lock().remove(&id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_preference_follows_the_offer() {
        let offer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 98 96 102\r\na=rtpmap:96 VP8/90000\r\n\
            a=rtpmap:98 VP9/90000\r\na=rtpmap:102 H264/90000\r\n";
        assert_eq!(preferred_video(offer), Some(Codec::Vp9));
        let vp8_first = offer.replace("98 96 102", "96 98 102");
        assert_eq!(preferred_video(&vp8_first), Some(Codec::Vp8));
        let h264_first = offer.replace("98 96 102", "102 96 98");
        assert_eq!(preferred_video(&h264_first), Some(Codec::H264));
        assert_eq!(preferred_video("v=0\r\n"), None);
        assert_eq!(vp9_config(0x82, 640, 360)[4..7], [0, 21, 0x82]);
        let av1_first =
            format!("{offer}a=rtpmap:45 AV1/90000\r\n").replace("98 96 102", "45 98 96 102");
        assert_eq!(preferred_video(&av1_first), Some(Codec::Av1));
    }

    #[test]
    fn av1_samples_lose_a_temporal_delimiter_only() {
        let unit = Bytes::from_static(&[0x12, 0x00, 0x32, 0x01, 0xaa]);
        assert_eq!(&without_temporal_delimiter(unit)[..], &[0x32, 0x01, 0xaa]);
        let frame = Bytes::from_static(&[0x32, 0x01, 0xaa]);
        assert_eq!(without_temporal_delimiter(frame.clone()), frame);
        assert_eq!(without_temporal_delimiter(Bytes::new()), Bytes::new());
    }
}
