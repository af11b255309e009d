//! One publisher's RTSP connection as a state machine: OPTIONS, ANNOUNCE (SDP),
//! SETUP per track (TCP interleaved or UDP), RECORD, then media until TEARDOWN.
//!
//! Decisions that need the outside world come out as [`Action`]s and are
//! answered by a call back: whether the stream name may be claimed
//! ([`ServerSession::announce_result`]) and which UDP ports were bound
//! ([`ServerSession::setup_udp_result`]). Until then nothing further is read.

use std::collections::VecDeque;

use bytes::Bytes;
use rtsp_types::{headers, Method, Request, Response, StatusCode, Version};

use crate::auth::{self, Credentials};
use crate::framing::{Framing, FramingError, Item};
use crate::sdp::{self, AnnouncedTrack};

/// How a track's packets travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportChoice {
    Interleaved { rtp_channel: u8, rtcp_channel: u8 },
    Udp { client_rtp: u16, client_rtcp: u16 },
}

#[derive(Debug)]
pub enum Action {
    /// Bytes to write to the connection (responses).
    Send(Bytes),
    /// Claim `path` as the stream name, then call [`ServerSession::announce_result`].
    Announce {
        path: String,
    },
    /// Bind an RTP/RTCP port pair for `track`, then call
    /// [`ServerSession::setup_udp_result`].
    SetupUdp {
        track: usize,
        client_rtp: u16,
        client_rtcp: u16,
    },
    /// RECORD accepted: these tracks (in this order, the index used by `Rtp`/`Rtcp`).
    Record {
        tracks: Vec<(AnnouncedTrack, TransportChoice)>,
    },
    Rtp {
        track: usize,
        data: Bytes,
    },
    Rtcp {
        track: usize,
        data: Bytes,
    },
    Teardown,
    /// The connection must end: unreadable input or a refused request.
    Close {
        reason: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Init,
    Announced,
    Recording,
    Done,
}

enum Pending {
    Announce {
        cseq: String,
    },
    SetupUdp {
        cseq: String,
        track: usize,
        client_rtp: u16,
        client_rtcp: u16,
    },
}

pub struct ServerSession {
    framing: Framing,
    actions: VecDeque<Action>,
    state: State,
    pending: Option<Pending>,
    credentials: Option<Credentials>,
    nonce: String,
    session_id: String,
    path: String,
    tracks: Vec<AnnouncedTrack>,
    transports: Vec<Option<TransportChoice>>,
    /// Interleaved channel → index among recorded tracks, and RTCP or not.
    channels: [Option<(usize, bool)>; 256],
    unknown_channel_packets: u64,
}

const PUBLIC: &str = "OPTIONS, ANNOUNCE, SETUP, RECORD, TEARDOWN, GET_PARAMETER, SET_PARAMETER";

impl ServerSession {
    /// `nonce` and `session_id` are the caller's random strings.
    pub fn new(
        credentials: Option<Credentials>,
        nonce: String,
        session_id: String,
    ) -> ServerSession {
        ServerSession {
            framing: Framing::default(),
            actions: VecDeque::new(),
            state: State::Init,
            pending: None,
            credentials,
            nonce,
            session_id,
            path: String::new(),
            tracks: Vec::new(),
            transports: Vec::new(),
            channels: [None; 256],
            unknown_channel_packets: 0,
        }
    }

    /// Bytes read so far (for error reports).
    pub fn offset(&self) -> u64 {
        self.framing.offset()
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Tracks the ANNOUNCE listed (set up or not).
    pub fn announced_tracks(&self) -> usize {
        self.tracks.len()
    }

    /// The announced index of the track with this control.
    pub fn announced_index(&self, control: &str) -> Option<usize> {
        self.tracks.iter().position(|t| t.control == control)
    }

    pub fn unknown_channel_packets(&self) -> u64 {
        self.unknown_channel_packets
    }

    pub fn handle_input(&mut self, data: &[u8]) {
        self.framing.handle_input(data);
        self.pump();
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn pump(&mut self) {
        // While a decision is pending nothing more is read: what follows stays
        // buffered until the answer (a client that pipelines loses nothing).
        while self.pending.is_none() && self.state != State::Done {
            match self.framing.poll_item() {
                None => return,
                Some(Err(e)) => return self.close(e),
                Some(Ok(Item::Request(r))) => self.request(r),
                Some(Ok(Item::Interleaved { channel, data })) => {
                    match self.channels[usize::from(channel)] {
                        Some((track, false)) => self.actions.push_back(Action::Rtp { track, data }),
                        Some((track, true)) => self.actions.push_back(Action::Rtcp { track, data }),
                        None => self.unknown_channel_packets += 1,
                    }
                }
            }
        }
    }

    fn close(&mut self, e: FramingError) {
        self.state = State::Done;
        self.actions.push_back(Action::Close {
            reason: e.to_string(),
        });
    }

    fn respond(
        &mut self,
        cseq: &str,
        status: StatusCode,
        extra: &[(rtsp_types::HeaderName, String)],
        body: &[u8],
    ) {
        let mut b = Response::builder(Version::V1_0, status)
            .header(headers::CSEQ, cseq.to_owned())
            .header(headers::SERVER, "edgerec".to_owned());
        if matches!(self.state, State::Announced | State::Recording)
            && self.transports.iter().any(Option::is_some)
        {
            b = b.header(headers::SESSION, format!("{};timeout=60", self.session_id));
        }
        for (k, v) in extra {
            b = b.header(k.clone(), v.clone());
        }
        let r = b.build(body.to_vec());
        let mut out = Vec::with_capacity(256);
        if r.write(&mut out).is_ok() {
            self.actions.push_back(Action::Send(Bytes::from(out)));
        }
    }

    fn authorized(&mut self, req: &Request<Vec<u8>>, cseq: &str) -> bool {
        let Some(creds) = &self.credentials else {
            return true;
        };
        let method: &str = req.method().into();
        let ok = req
            .header(&headers::AUTHORIZATION)
            .is_some_and(|h| auth::verify(h.as_str(), creds, method, &self.nonce));
        if !ok {
            let [digest, basic] = auth::challenges(&self.nonce);
            let mut b = Response::builder(Version::V1_0, StatusCode::Unauthorized)
                .header(headers::CSEQ, cseq.to_owned())
                .header(headers::WWW_AUTHENTICATE, digest);
            b = b.header(headers::WWW_AUTHENTICATE, basic);
            let mut out = Vec::new();
            if b.empty().write(&mut out).is_ok() {
                self.actions.push_back(Action::Send(Bytes::from(out)));
            }
        }
        ok
    }

    fn request(&mut self, req: Request<Vec<u8>>) {
        let cseq = req
            .header(&headers::CSEQ)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| "0".into());
        match req.method() {
            Method::Options => self.respond(
                &cseq,
                StatusCode::Ok,
                &[(headers::PUBLIC, PUBLIC.into())],
                b"",
            ),
            Method::GetParameter | Method::SetParameter => {
                self.respond(&cseq, StatusCode::Ok, &[], b"")
            }
            Method::Announce => {
                if !self.authorized(&req, &cseq) {
                    return;
                }
                if self.state != State::Init {
                    return self.respond(&cseq, StatusCode::MethodNotValidInThisState, &[], b"");
                }
                let path = req
                    .request_uri()
                    .map(|u| u.path().trim_matches('/').to_owned())
                    .unwrap_or_default();
                match sdp::tracks(req.body()) {
                    Ok(t) => {
                        self.transports = vec![None; t.len()];
                        self.tracks = t;
                        self.path = path.clone();
                        self.pending = Some(Pending::Announce { cseq });
                        self.actions.push_back(Action::Announce { path });
                    }
                    Err(e) => {
                        self.respond(&cseq, StatusCode::UnsupportedMediaType, &[], e.as_bytes());
                        self.state = State::Done;
                        self.actions.push_back(Action::Close {
                            reason: format!("ANNOUNCE refused: {e}"),
                        });
                    }
                }
            }
            Method::Setup => {
                if !self.authorized(&req, &cseq) {
                    return;
                }
                if self.state != State::Announced {
                    return self.respond(&cseq, StatusCode::MethodNotValidInThisState, &[], b"");
                }
                let uri = req
                    .request_uri()
                    .map(|u| u.as_str().trim_end_matches('/').to_owned())
                    .unwrap_or_default();
                let Some(track) = self.tracks.iter().position(|t| {
                    let c = t.control.trim_end_matches('/');
                    uri == c || uri.ends_with(&format!("/{c}"))
                }) else {
                    return self.respond(&cseq, StatusCode::NotFound, &[], b"no such track");
                };
                let transport = req
                    .header(&headers::TRANSPORT)
                    .map(|h| h.as_str().to_owned())
                    .unwrap_or_default();
                match parse_transport(&transport, track) {
                    Some(
                        c @ TransportChoice::Interleaved {
                            rtp_channel,
                            rtcp_channel,
                        },
                    ) => {
                        self.transports[track] = Some(c);
                        let t = format!("RTP/AVP/TCP;unicast;interleaved={rtp_channel}-{rtcp_channel};mode=record");
                        self.respond(&cseq, StatusCode::Ok, &[(headers::TRANSPORT, t)], b"");
                    }
                    Some(TransportChoice::Udp {
                        client_rtp,
                        client_rtcp,
                    }) => {
                        self.pending = Some(Pending::SetupUdp {
                            cseq,
                            track,
                            client_rtp,
                            client_rtcp,
                        });
                        self.actions.push_back(Action::SetupUdp {
                            track,
                            client_rtp,
                            client_rtcp,
                        });
                    }
                    None => self.respond(&cseq, StatusCode::UnsupportedTransport, &[], b""),
                }
            }
            Method::Record => {
                if !self.authorized(&req, &cseq) {
                    return;
                }
                if self.state != State::Announced || self.transports.iter().all(Option::is_none) {
                    return self.respond(&cseq, StatusCode::MethodNotValidInThisState, &[], b"");
                }
                let mut recorded = Vec::new();
                for (t, c) in self.tracks.iter().zip(&self.transports) {
                    if let Some(c) = c {
                        if let TransportChoice::Interleaved {
                            rtp_channel,
                            rtcp_channel,
                        } = c
                        {
                            self.channels[usize::from(*rtp_channel)] =
                                Some((recorded.len(), false));
                            self.channels[usize::from(*rtcp_channel)] =
                                Some((recorded.len(), true));
                        }
                        recorded.push((t.clone(), *c));
                    }
                }
                self.respond(&cseq, StatusCode::Ok, &[], b"");
                self.state = State::Recording;
                self.actions.push_back(Action::Record { tracks: recorded });
            }
            Method::Teardown => {
                self.respond(&cseq, StatusCode::Ok, &[], b"");
                self.state = State::Done;
                self.actions.push_back(Action::Teardown);
            }
            _ => self.respond(
                &cseq,
                StatusCode::MethodNotAllowed,
                &[(headers::ALLOW, PUBLIC.into())],
                b"",
            ),
        }
    }

    /// The answer to [`Action::Announce`]: `Err(reason)` refuses it (the name is
    /// live) and ends the connection.
    pub fn announce_result(&mut self, r: Result<(), String>) {
        let Some(Pending::Announce { cseq }) = self.pending.take() else {
            return;
        };
        match r {
            Ok(()) => {
                self.state = State::Announced;
                self.respond(&cseq, StatusCode::Ok, &[], b"");
            }
            Err(e) => {
                self.respond(&cseq, StatusCode::Forbidden, &[], e.as_bytes());
                self.state = State::Done;
                self.actions.push_back(Action::Close { reason: e });
            }
        }
        self.pump();
    }

    /// The answer to [`Action::SetupUdp`]: the RTP and RTCP ports bound.
    pub fn setup_udp_result(&mut self, r: Result<(u16, u16), String>) {
        let Some(Pending::SetupUdp {
            cseq,
            track,
            client_rtp,
            client_rtcp,
        }) = self.pending.take()
        else {
            return;
        };
        match r {
            Ok((rtp, rtcp)) => {
                self.transports[track] = Some(TransportChoice::Udp {
                    client_rtp,
                    client_rtcp,
                });
                let t = format!("RTP/AVP;unicast;client_port={client_rtp}-{client_rtcp};server_port={rtp}-{rtcp};mode=record");
                self.respond(&cseq, StatusCode::Ok, &[(headers::TRANSPORT, t)], b"");
            }
            Err(e) => self.respond(&cseq, StatusCode::ServiceUnavailable, &[], e.as_bytes()),
        }
        self.pump();
    }
}

/// The first transport in the header we can do: TCP interleaved (channels given
/// or 2k/2k+1) or unicast UDP with client ports.
fn parse_transport(header: &str, track: usize) -> Option<TransportChoice> {
    for t in header.split(',') {
        let mut parts = t.trim().split(';');
        let spec = parts.next()?.trim().to_ascii_uppercase();
        let params: Vec<&str> = parts.map(str::trim).collect();
        let get = |k: &str| {
            params
                .iter()
                .find_map(|p| p.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
        };
        let pair = |v: &str| -> Option<(u16, u16)> {
            let (a, b) = v.split_once('-').unwrap_or((v, ""));
            let a: u16 = a.parse().ok()?;
            Some((a, b.parse().unwrap_or(a.wrapping_add(1))))
        };
        match spec.as_str() {
            "RTP/AVP/TCP" => {
                let (a, b) = match get("interleaved").and_then(pair) {
                    Some(p) => p,
                    None => ((2 * track) as u16, (2 * track + 1) as u16),
                };
                if a > 255 || b > 255 {
                    continue;
                }
                return Some(TransportChoice::Interleaved {
                    rtp_channel: a as u8,
                    rtcp_channel: b as u8,
                });
            }
            "RTP/AVP" | "RTP/AVP/UDP" => {
                if params.iter().any(|p| p.eq_ignore_ascii_case("multicast")) {
                    continue;
                }
                if let Some((a, b)) = get("client_port").and_then(pair) {
                    return Some(TransportChoice::Udp {
                        client_rtp: a,
                        client_rtcp: b,
                    });
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:streamid=0\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 opus/48000/2\r\na=control:streamid=1\r\n";

    fn req(method: &str, uri: &str, cseq: u32, extra: &str, body: &str) -> Vec<u8> {
        let len = if body.is_empty() {
            String::new()
        } else {
            format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n",
                body.len()
            )
        };
        format!("{method} {uri} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}{len}\r\n{body}").into_bytes()
    }

    fn drain(s: &mut ServerSession) -> (Vec<String>, Vec<Action>) {
        let (mut sent, mut other) = (Vec::new(), Vec::new());
        while let Some(a) = s.poll_action() {
            match a {
                Action::Send(b) => sent.push(String::from_utf8_lossy(&b).into_owned()),
                a => other.push(a),
            }
        }
        (sent, other)
    }

    #[test]
    fn ffmpeg_tcp_publish_sequence() {
        let mut s = ServerSession::new(None, "n".into(), "sess1".into());
        let base = "rtsp://127.0.0.1:8554/live/cam";
        s.handle_input(&req("OPTIONS", base, 1, "", ""));
        s.handle_input(&req("ANNOUNCE", base, 2, "", SDP));
        let (sent, acts) = drain(&mut s);
        assert!(
            sent[0].starts_with("RTSP/1.0 200 ") && sent[0].contains("ANNOUNCE"),
            "{sent:?} {acts:?}"
        );
        assert!(matches!(&acts[..], [Action::Announce { path }] if path == "live/cam"));
        // SETUP is held until the announce is decided.
        s.handle_input(&req(
            "SETUP",
            &format!("{base}/streamid=0"),
            3,
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n",
            "",
        ));
        assert!(drain(&mut s).0.is_empty());
        s.announce_result(Ok(()));
        let (sent, _) = drain(&mut s);
        assert!(sent[0].contains("CSeq: 2"));
        assert!(
            sent[1].contains("interleaved=0-1") && sent[1].contains("Session: sess1"),
            "{}",
            sent[1]
        );
        s.handle_input(&req(
            "SETUP",
            &format!("{base}/streamid=1"),
            4,
            "Transport: RTP/AVP/TCP;unicast;interleaved=2-3;mode=record\r\nSession: sess1\r\n",
            "",
        ));
        s.handle_input(&req("RECORD", base, 5, "Session: sess1\r\n", ""));
        let (sent, acts) = drain(&mut s);
        assert_eq!(sent.len(), 2);
        let Action::Record { tracks } = &acts[0] else {
            panic!("{acts:?}")
        };
        assert_eq!(tracks.len(), 2);
        let mut media = vec![b'$', 2, 0, 2, 0xaa, 0xbb, b'$', 1, 0, 1, 0xcc];
        media.extend_from_slice(&req("TEARDOWN", base, 6, "Session: sess1\r\n", ""));
        s.handle_input(&media);
        let (_, acts) = drain(&mut s);
        assert!(matches!(&acts[0], Action::Rtp { track: 1, data } if data[..] == [0xaa, 0xbb]));
        assert!(matches!(&acts[1], Action::Rtcp { track: 0, .. }));
        assert!(matches!(&acts[2], Action::Teardown));
    }

    #[test]
    fn udp_setup_waits_for_ports() {
        let mut s = ServerSession::new(None, "n".into(), "s".into());
        let base = "rtsp://h/live/cam";
        s.handle_input(&req("ANNOUNCE", base, 1, "", SDP));
        s.announce_result(Ok(()));
        drain(&mut s);
        s.handle_input(&req(
            "SETUP",
            &format!("{base}/streamid=0"),
            2,
            "Transport: RTP/AVP/UDP;unicast;client_port=5000-5001;mode=record\r\n",
            "",
        ));
        let (_, acts) = drain(&mut s);
        assert!(matches!(
            acts[0],
            Action::SetupUdp {
                track: 0,
                client_rtp: 5000,
                client_rtcp: 5001
            }
        ));
        s.setup_udp_result(Ok((40000, 40001)));
        let (sent, _) = drain(&mut s);
        assert!(sent[0].contains("server_port=40000-40001"), "{}", sent[0]);
    }

    #[test]
    fn auth_refusals_and_bad_input() {
        let creds = Credentials {
            user: "u".into(),
            password: "p".into(),
        };
        let mut s = ServerSession::new(Some(creds), "nonce1".into(), "s".into());
        s.handle_input(&req("ANNOUNCE", "rtsp://h/a/b", 1, "", SDP));
        let (sent, acts) = drain(&mut s);
        assert!(sent[0].starts_with("RTSP/1.0 401"));
        assert!(sent[0].contains("Digest realm=\"edgerec\", nonce=\"nonce1\""));
        assert!(acts.is_empty());
        // Basic works too.
        let b = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "u:p");
        s.handle_input(&req(
            "ANNOUNCE",
            "rtsp://h/a/b",
            2,
            &format!("Authorization: Basic {b}\r\n"),
            SDP,
        ));
        assert!(matches!(&drain(&mut s).1[..], [Action::Announce { .. }]));
        // Refused name closes.
        s.announce_result(Err("stream a/b is already live".into()));
        let (sent, acts) = drain(&mut s);
        assert!(sent[0].starts_with("RTSP/1.0 403"));
        assert!(matches!(&acts[..], [Action::Close { .. }]));
        // Garbage closes with an offset.
        let mut s = ServerSession::new(None, "n".into(), "s".into());
        s.handle_input(b"\x00\x01\x02garbage\r\n\r\n");
        assert!(
            matches!(&drain(&mut s).1[..], [Action::Close { reason }] if reason.contains("byte 0"))
        );
        // RECORD before SETUP is refused, not a panic.
        let mut s = ServerSession::new(None, "n".into(), "s".into());
        s.handle_input(&req("RECORD", "rtsp://h/a/b", 1, "", ""));
        assert!(drain(&mut s).0[0].starts_with("RTSP/1.0 455"));
    }
}
