//! The RTMP server session: one publisher connection as a pure state machine.
//!
//! Feed bytes with [`ServerSession::handle_input`]; drain what to send with
//! [`ServerSession::poll_transmit`] and what happened with [`ServerSession::poll_event`].
//! A publish request pauses input processing until the owner calls
//! [`ServerSession::accept_publish`] or [`ServerSession::reject_publish`], so no media
//! of a refused publish is ever parsed. No clock, no I/O; errors carry the connection
//! byte offset, chunk stream and message type where they happened.

use std::collections::{HashSet, VecDeque};

use bytes::{Bytes, BytesMut};
use edgerec_media::time::Unwrapper;
use edgerec_media::{Frame, TrackInfo};
use thiserror::Error;

use crate::amf0::{self, Amf0Error, Amf0Limits, Amf0Value};
use crate::chunk::{ChunkDecoder, ChunkErrorKind, ChunkLimits, RawMessage};
use crate::flv::{FlvDemuxer, FlvError, FlvOutput, Skipped};
use crate::handshake::{Handshake, HandshakeError, HANDSHAKE_LEN};
use crate::message::{self as msg, user_control, Writer};

/// Limits and the values the server announces.
#[derive(Clone, Copy, Debug)]
pub struct ServerConfig {
    pub chunk: ChunkLimits,
    pub amf: Amf0Limits,
    /// Chunk size for what we send (announced right after connect).
    pub out_chunk_size: u32,
    /// Window Acknowledgement Size we ask of the client.
    pub window_ack_size: u32,
    pub peer_bandwidth: u32,
    /// Longest app or stream name accepted.
    pub max_name_len: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            chunk: ChunkLimits::default(),
            amf: Amf0Limits::default(),
            out_chunk_size: 4096,
            window_ack_size: 2_500_000,
            peer_bandwidth: 2_500_000,
            max_name_len: 255,
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq)]
pub enum RtmpErrorKind {
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    #[error("{0}")]
    Chunk(#[from] ChunkErrorKind),
    #[error("{0}")]
    Amf(#[from] Amf0Error),
    #[error("{0}")]
    Flv(#[from] FlvError),
    #[error("{0}")]
    Protocol(String),
}

/// A fatal session error and where in the connection's byte stream it happened.
#[derive(Debug, Error, Clone, PartialEq)]
pub struct RtmpError {
    pub kind: RtmpErrorKind,
    /// Connection byte offset of the chunk header or message at fault.
    pub offset: u64,
    pub chunk_stream: Option<u32>,
    pub message_type: Option<u8>,
}

impl std::fmt::Display for RtmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)?;
        if let Some(cs) = self.chunk_stream {
            write!(f, ", chunk stream {cs}")?;
        }
        if let Some(t) = self.message_type {
            write!(f, ", message type {t}")?;
        }
        Ok(())
    }
}

/// A publisher's request to publish; answer it with `accept_publish`/`reject_publish`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishRequest {
    /// The application from `connect` (without any query string).
    pub app: String,
    /// The stream name from `publish` (without any query string).
    pub name: String,
    /// Query string from the stream name or app (`?token=...`), for authorisation.
    pub query: Option<String>,
    /// `live`, `record` or `append`, as the client sent it.
    pub publish_type: String,
}

#[derive(Clone, Debug)]
pub enum Event {
    Connected {
        app: String,
        tc_url: Option<String>,
        flash_ver: Option<String>,
    },
    PublishRequested(PublishRequest),
    /// `onMetaData` properties (from `@setDataFrame` or sent directly).
    Metadata(Vec<(String, Amf0Value)>),
    /// A track appeared or changed (new sequence header).
    Track(TrackInfo),
    Frame(Frame),
    /// The publisher stopped publishing (FCUnpublish, deleteStream or closeStream).
    Unpublished,
    /// Media skipped for a reason worth logging once (reported once per kind).
    Skipped {
        reason: Skipped,
        offset: u64,
    },
}

/// The publish request by a client on this connection.
struct Publishing {
    stream_id: u32,
    accepted: bool,
}

enum Phase {
    Handshake(Handshake),
    Chunks(Box<ChunkDecoder>),
}

pub struct ServerSession {
    config: ServerConfig,
    phase: Phase,
    writer: Writer,
    out: BytesMut,
    events: VecDeque<Event>,
    /// Input held back: a partial handshake, or everything after a publish request
    /// until it is answered.
    stash: BytesMut,
    app: Option<String>,
    app_query: Option<String>,
    next_stream_id: u32,
    publishing: Option<Publishing>,
    awaiting_decision: bool,
    flv: FlvDemuxer,
    flv_out: Vec<FlvOutput>,
    video_clock: Unwrapper,
    audio_clock: Unwrapper,
    received: u64,
    peer_window: u32,
    acked: u64,
    reported: HashSet<Skipped>,
    failed: Option<RtmpError>,
}

impl ServerSession {
    /// `seed` fills the handshake's random bytes.
    pub fn new(config: ServerConfig, seed: u64) -> ServerSession {
        ServerSession {
            config,
            phase: Phase::Handshake(Handshake::new(seed)),
            writer: Writer::default(),
            out: BytesMut::new(),
            events: VecDeque::new(),
            stash: BytesMut::new(),
            app: None,
            app_query: None,
            next_stream_id: 1,
            publishing: None,
            awaiting_decision: false,
            flv: FlvDemuxer::default(),
            flv_out: Vec::new(),
            video_clock: Unwrapper::new(32),
            audio_clock: Unwrapper::new(32),
            received: 0,
            peer_window: 0,
            acked: 0,
            reported: HashSet::new(),
            failed: None,
        }
    }

    /// Bytes received so far.
    pub fn bytes_received(&self) -> u64 {
        self.received
    }

    /// Whether a publish request is waiting for an answer.
    pub fn awaiting_decision(&self) -> bool {
        self.awaiting_decision
    }

    /// Whether the connection is publishing (a publish was accepted and not ended).
    pub fn is_publishing(&self) -> bool {
        self.publishing.as_ref().is_some_and(|p| p.accepted)
    }

    /// Tracks known so far on the published stream.
    pub fn tracks(&self) -> impl Iterator<Item = &TrackInfo> {
        self.flv
            .video_track()
            .into_iter()
            .chain(self.flv.audio_track())
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes to send to the client, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    /// Feeds bytes received from the client. After an error the session is dead:
    /// every later call returns the same error.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), RtmpError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.received += data.len() as u64;
        let r = if self.awaiting_decision {
            self.stash.extend_from_slice(data);
            Ok(())
        } else if !self.stash.is_empty() {
            self.stash.extend_from_slice(data);
            let stash = std::mem::take(&mut self.stash);
            self.process(&stash)
        } else {
            self.process(data)
        };
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    /// Accepts the pending publish request and resumes processing held input.
    pub fn accept_publish(&mut self) -> Result<(), RtmpError> {
        let Some(p) = self.publishing.as_mut().filter(|_| self.awaiting_decision) else {
            return Ok(());
        };
        p.accepted = true;
        let sid = p.stream_id;
        self.writer
            .user_control(&mut self.out, user_control::STREAM_BEGIN, sid);
        self.writer.on_status(
            &mut self.out,
            sid,
            "status",
            "NetStream.Publish.Start",
            "Start publishing",
        );
        self.resume()
    }

    /// Refuses the pending publish request with an `onStatus` error (`code` such as
    /// `NetStream.Publish.BadName`) and resumes processing held input.
    pub fn reject_publish(&mut self, code: &str, description: &str) -> Result<(), RtmpError> {
        let Some(p) = self.publishing.take().filter(|_| self.awaiting_decision) else {
            return Ok(());
        };
        self.writer
            .on_status(&mut self.out, p.stream_id, "error", code, description);
        self.resume()
    }

    fn resume(&mut self) -> Result<(), RtmpError> {
        self.awaiting_decision = false;
        let stash = std::mem::take(&mut self.stash);
        let r = self.process(&stash);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn process(&mut self, mut input: &[u8]) -> Result<(), RtmpError> {
        if let Phase::Handshake(h) = &mut self.phase {
            let hs_err = |e: HandshakeError| RtmpError {
                kind: e.into(),
                offset: 0,
                chunk_stream: None,
                message_type: None,
            };
            let p = h.handle(input).map_err(hs_err)?;
            if let Some(reply) = p.reply {
                self.out.extend_from_slice(&reply);
            }
            input = &input[p.consumed..];
            if !p.done {
                self.stash.extend_from_slice(input);
                return Ok(());
            }
            let start = (1 + 2 * HANDSHAKE_LEN) as u64;
            self.phase = Phase::Chunks(Box::new(ChunkDecoder::new(self.config.chunk, start)));
        }
        while !input.is_empty() {
            let Phase::Chunks(decoder) = &mut self.phase else {
                break;
            };
            let m = decoder.decode(&mut input).map_err(|e| RtmpError {
                kind: e.kind.into(),
                offset: e.offset,
                chunk_stream: e.chunk_stream,
                message_type: None,
            })?;
            let Some(m) = m else { break };
            let at = |kind: RtmpErrorKind| RtmpError {
                kind,
                offset: m.offset,
                chunk_stream: Some(m.chunk_stream),
                message_type: Some(m.type_id),
            };
            self.on_message(&m).map_err(at)?;
            if self.awaiting_decision {
                self.stash.extend_from_slice(input);
                break;
            }
        }
        self.maybe_ack();
        Ok(())
    }

    fn maybe_ack(&mut self) {
        if self.peer_window > 0 && self.received - self.acked >= self.peer_window as u64 {
            self.acked = self.received;
            // The sequence number is the byte count modulo 2^32.
            self.writer
                .acknowledgement(&mut self.out, self.received as u32);
        }
    }

    fn decoder(&mut self) -> Option<&mut ChunkDecoder> {
        match &mut self.phase {
            Phase::Chunks(d) => Some(d),
            Phase::Handshake(_) => None,
        }
    }

    fn on_message(&mut self, m: &RawMessage) -> Result<(), RtmpErrorKind> {
        let p = &m.payload;
        let short = |what: &str| RtmpErrorKind::Protocol(format!("{what} message truncated"));
        match m.type_id {
            msg::SET_CHUNK_SIZE => {
                let size = msg::be_u32(p).ok_or_else(|| short("Set Chunk Size"))?;
                if let Some(d) = self.decoder() {
                    d.set_chunk_size(size)?;
                }
            }
            msg::ABORT => {
                let cs = msg::be_u32(p).ok_or_else(|| short("Abort"))?;
                if let Some(d) = self.decoder() {
                    d.abort(cs);
                }
            }
            msg::WINDOW_ACK_SIZE => {
                self.peer_window = msg::be_u32(p).ok_or_else(|| short("Window Ack Size"))?;
            }
            msg::USER_CONTROL
                if p.len() >= 6 && p[..2] == user_control::PING_REQUEST.to_be_bytes() =>
            {
                let ts = msg::be_u32(&p[2..]).unwrap_or(0);
                self.writer
                    .user_control(&mut self.out, user_control::PING_RESPONSE, ts);
            }
            msg::ACKNOWLEDGEMENT | msg::SET_PEER_BANDWIDTH => {}
            msg::AUDIO | msg::VIDEO => {
                self.on_media(m.type_id, m.timestamp, m.stream_id, p.clone(), m.offset)?
            }
            msg::AGGREGATE => self.on_aggregate(m)?,
            msg::DATA_AMF0 | msg::DATA_AMF3 => {
                let body = amf_body(m.type_id, p);
                let values = amf0::decode_all(body, self.config.amf)?;
                self.on_data(values);
            }
            msg::COMMAND_AMF0 | msg::COMMAND_AMF3 => {
                let body = amf_body(m.type_id, p);
                let values = amf0::decode_all(body, self.config.amf)?;
                self.on_command(m.stream_id, values)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn on_media(
        &mut self,
        type_id: u8,
        timestamp: u32,
        stream_id: u32,
        payload: Bytes,
        offset: u64,
    ) -> Result<(), RtmpErrorKind> {
        let publishing = self
            .publishing
            .as_ref()
            .is_some_and(|p| p.accepted && p.stream_id == stream_id);
        if !publishing {
            return Ok(());
        }
        let mut out = std::mem::take(&mut self.flv_out);
        let r = if type_id == msg::VIDEO {
            let ts = self.video_clock.unwrap(timestamp as u64);
            self.flv.video(ts, payload, &mut out)
        } else {
            let ts = self.audio_clock.unwrap(timestamp as u64);
            self.flv.audio(ts, payload, &mut out)
        };
        for o in out.drain(..) {
            match o {
                FlvOutput::Track(t) => self.events.push_back(Event::Track(t)),
                FlvOutput::Frame(f) => self.events.push_back(Event::Frame(f)),
                FlvOutput::Skipped(reason) => {
                    if self.reported.insert(reason) {
                        self.events.push_back(Event::Skipped { reason, offset });
                    }
                }
            }
        }
        self.flv_out = out;
        r.map_err(RtmpErrorKind::Flv)
    }

    /// Aggregate messages carry FLV tags back to back (11-byte header, body, 4-byte
    /// back pointer); their timestamps are relative to the first tag's.
    fn on_aggregate(&mut self, m: &RawMessage) -> Result<(), RtmpErrorKind> {
        let p = &m.payload;
        let mut pos = 0;
        let mut first_ts: Option<u32> = None;
        while pos < p.len() {
            let h = p.get(pos..pos + 11).ok_or_else(|| {
                RtmpErrorKind::Protocol("aggregate sub-message header truncated".into())
            })?;
            let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
            let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
            let body_end = pos + 11 + size;
            if body_end > p.len() {
                return Err(RtmpErrorKind::Protocol(format!(
                    "aggregate sub-message of {size} bytes overruns the message"
                )));
            }
            let base = *first_ts.get_or_insert(ts);
            let abs = m.timestamp.wrapping_add(ts.wrapping_sub(base));
            if h[0] == msg::AUDIO || h[0] == msg::VIDEO {
                self.on_media(
                    h[0],
                    abs,
                    m.stream_id,
                    p.slice(pos + 11..body_end),
                    m.offset,
                )?;
            }
            pos = body_end + 4;
        }
        Ok(())
    }

    fn on_data(&mut self, values: Vec<Amf0Value>) {
        let mut it = values.into_iter().peekable();
        if it.peek().and_then(Amf0Value::as_str) == Some("@setDataFrame") {
            it.next();
        }
        if it.next().as_ref().and_then(Amf0Value::as_str) != Some("onMetaData") {
            return;
        }
        if let Some(props) = it.next().as_ref().and_then(Amf0Value::properties) {
            self.events.push_back(Event::Metadata(props.to_vec()));
        }
    }

    fn on_command(&mut self, stream_id: u32, values: Vec<Amf0Value>) -> Result<(), RtmpErrorKind> {
        let name = values.first().and_then(Amf0Value::as_str).unwrap_or("");
        let tx = values.get(1).and_then(Amf0Value::as_f64).unwrap_or(0.0);
        let arg = |i: usize| values.get(i);
        if self.app.is_none() && name != "connect" {
            return Err(RtmpErrorKind::Protocol(format!(
                "command '{}' before connect",
                truncate(name, 64)
            )));
        }
        match name {
            "connect" => {
                if self.app.is_some() {
                    return Err(RtmpErrorKind::Protocol("second connect".into()));
                }
                let obj = arg(2);
                let get = |k: &str| obj.and_then(|o| o.get(k)).and_then(Amf0Value::as_str);
                let (app, query) = split_query(get("app").unwrap_or(""));
                self.check_name("app", &app)?;
                self.app = Some(app.clone());
                self.app_query = query;
                self.writer
                    .window_ack_size(&mut self.out, self.config.window_ack_size);
                self.writer
                    .set_peer_bandwidth(&mut self.out, self.config.peer_bandwidth);
                self.writer
                    .set_chunk_size(&mut self.out, self.config.out_chunk_size);
                self.writer.command(
                    &mut self.out,
                    &[
                        Amf0Value::String("_result".into()),
                        Amf0Value::Number(tx),
                        amf0::object([
                            ("fmsVer", Amf0Value::String("FMS/3,0,1,123".into())),
                            ("capabilities", Amf0Value::Number(31.0)),
                        ]),
                        amf0::object([
                            ("level", Amf0Value::String("status".into())),
                            (
                                "code",
                                Amf0Value::String("NetConnection.Connect.Success".into()),
                            ),
                            (
                                "description",
                                Amf0Value::String("Connection succeeded.".into()),
                            ),
                            ("objectEncoding", Amf0Value::Number(0.0)),
                        ]),
                    ],
                );
                self.events.push_back(Event::Connected {
                    app,
                    tc_url: get("tcUrl").map(str::to_owned),
                    flash_ver: get("flashVer").map(str::to_owned),
                });
            }
            "createStream" => {
                let id = self.next_stream_id;
                self.next_stream_id = self.next_stream_id.saturating_add(1);
                self.result(tx, Amf0Value::Number(id as f64));
            }
            "releaseStream" | "FCPublish" | "getStreamLength" | "_checkbw" => {
                if tx > 0.0 {
                    self.result(tx, Amf0Value::Undefined);
                }
            }
            "publish" => self.on_publish(stream_id, arg(3), arg(4))?,
            "FCUnpublish" | "deleteStream" | "closeStream" => {
                let target = if name == "deleteStream" {
                    arg(3).and_then(Amf0Value::as_f64).map(|v| v as u32)
                } else {
                    None
                };
                if let Some(p) = &self.publishing {
                    if target.is_none_or(|t| t == p.stream_id) && p.accepted {
                        self.end_publish();
                    }
                }
            }
            "play" | "play2" => {
                self.writer.on_status(
                    &mut self.out,
                    stream_id,
                    "error",
                    "NetStream.Play.Failed",
                    "this server records; it does not play streams",
                );
            }
            _ => {
                if tx > 0.0 {
                    self.writer.command(
                        &mut self.out,
                        &[
                            Amf0Value::String("_error".into()),
                            Amf0Value::Number(tx),
                            Amf0Value::Null,
                            amf0::object([
                                ("level", Amf0Value::String("error".into())),
                                (
                                    "code",
                                    Amf0Value::String("NetConnection.Call.Failed".into()),
                                ),
                                (
                                    "description",
                                    Amf0Value::String(format!(
                                        "unknown command '{}'",
                                        truncate(name, 64)
                                    )),
                                ),
                            ]),
                        ],
                    );
                }
            }
        }
        Ok(())
    }

    fn result(&mut self, tx: f64, value: Amf0Value) {
        self.writer.command(
            &mut self.out,
            &[
                Amf0Value::String("_result".into()),
                Amf0Value::Number(tx),
                Amf0Value::Null,
                value,
            ],
        );
    }

    fn on_publish(
        &mut self,
        stream_id: u32,
        name: Option<&Amf0Value>,
        kind: Option<&Amf0Value>,
    ) -> Result<(), RtmpErrorKind> {
        if self.publishing.is_some() {
            self.writer.on_status(
                &mut self.out,
                stream_id,
                "error",
                "NetStream.Publish.BadConnection",
                "this connection is already publishing",
            );
            return Ok(());
        }
        let (name, query) = split_query(name.and_then(Amf0Value::as_str).unwrap_or(""));
        if let Err(why) = self.check_name("stream", &name) {
            let RtmpErrorKind::Protocol(why) = why else {
                return Ok(());
            };
            self.writer.on_status(
                &mut self.out,
                stream_id,
                "error",
                "NetStream.Publish.BadName",
                &why,
            );
            return Ok(());
        }
        self.publishing = Some(Publishing {
            stream_id,
            accepted: false,
        });
        self.awaiting_decision = true;
        self.events
            .push_back(Event::PublishRequested(PublishRequest {
                app: self.app.clone().unwrap_or_default(),
                name,
                query: query.or_else(|| self.app_query.clone()),
                publish_type: kind
                    .and_then(Amf0Value::as_str)
                    .unwrap_or("live")
                    .to_owned(),
            }));
        Ok(())
    }

    fn end_publish(&mut self) {
        self.publishing = None;
        self.flv = FlvDemuxer::default();
        self.video_clock = Unwrapper::new(32);
        self.audio_clock = Unwrapper::new(32);
        self.events.push_back(Event::Unpublished);
    }

    fn check_name(&self, what: &str, name: &str) -> Result<(), RtmpErrorKind> {
        let bad = if name.is_empty() {
            Some("is empty".to_owned())
        } else if name.len() > self.config.max_name_len {
            Some(format!("is longer than {} bytes", self.config.max_name_len))
        } else if name.chars().any(char::is_control) {
            Some("contains control characters".to_owned())
        } else {
            None
        };
        match bad {
            Some(b) => Err(RtmpErrorKind::Protocol(format!("{what} name {b}"))),
            None => Ok(()),
        }
    }
}

/// AMF3-typed messages (15, 17) prefix an AMF0 body with one format byte.
fn amf_body(type_id: u8, p: &[u8]) -> &[u8] {
    if (type_id == msg::DATA_AMF3 || type_id == msg::COMMAND_AMF3) && p.first() == Some(&0) {
        &p[1..]
    } else {
        p
    }
}

fn split_query(s: &str) -> (String, Option<String>) {
    match s.split_once('?') {
        Some((n, q)) => (n.to_owned(), Some(q.to_owned())),
        None => (s.to_owned(), None),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::ChunkEncoder;
    use crate::flv::{AUDIO_TRACK, VIDEO_TRACK};
    use edgerec_media::Codec;

    const FFMPEG_C0C1: &[u8] = include_bytes!("../tests/data/ffmpeg51_c0c1.bin");
    const FLV: &[u8] = include_bytes!("../tests/data/x264_aac_320x240_1s.flv");

    /// A scripted publisher: encodes commands and media the way ffmpeg does.
    struct Client {
        enc: ChunkEncoder,
        replies: ChunkDecoder,
    }

    impl Client {
        fn new() -> Client {
            Client {
                enc: ChunkEncoder::default(),
                replies: ChunkDecoder::new(ChunkLimits::default(), 0),
            }
        }

        fn command(&self, stream_id: u32, values: &[Amf0Value]) -> Vec<u8> {
            let mut p = BytesMut::new();
            for v in values {
                amf0::encode(&mut p, v);
            }
            let mut out = BytesMut::new();
            self.enc
                .write(&mut out, 3, 0, msg::COMMAND_AMF0, stream_id, &p);
            out.to_vec()
        }

        fn message(&self, cs: u32, ts: u32, type_id: u8, sid: u32, p: &[u8]) -> Vec<u8> {
            let mut out = BytesMut::new();
            self.enc.write(&mut out, cs, ts, type_id, sid, p);
            out.to_vec()
        }

        /// Decodes what the server sent (after the handshake reply).
        fn read(&mut self, s: &mut ServerSession) -> Vec<RawMessage> {
            let mut out = Vec::new();
            while let Some(b) = s.poll_transmit() {
                let mut input = &b[..];
                while let Some(m) = self.replies.decode(&mut input).unwrap() {
                    if m.type_id == msg::SET_CHUNK_SIZE {
                        self.replies
                            .set_chunk_size(msg::be_u32(&m.payload).unwrap())
                            .unwrap();
                    }
                    out.push(m);
                }
            }
            out
        }
    }

    fn s(v: &str) -> Amf0Value {
        Amf0Value::String(v.into())
    }
    fn n(v: f64) -> Amf0Value {
        Amf0Value::Number(v)
    }

    fn commands(msgs: &[RawMessage]) -> Vec<Vec<Amf0Value>> {
        msgs.iter()
            .filter(|m| m.type_id == msg::COMMAND_AMF0)
            .map(|m| amf0::decode_all(&m.payload, Amf0Limits::default()).unwrap())
            .collect()
    }

    fn events(s: &mut ServerSession) -> Vec<Event> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    fn handshake(srv: &mut ServerSession) {
        let mut input = FFMPEG_C0C1.to_vec();
        input.extend_from_slice(&[0u8; HANDSHAKE_LEN]);
        for piece in input.chunks(700) {
            srv.handle_input(piece).unwrap();
        }
        let hs = srv.poll_transmit().unwrap();
        assert_eq!(hs.len(), 1 + 2 * HANDSHAKE_LEN);
    }

    /// Handshake + connect + createStream + publish("cam1?token=x").
    fn connect_and_publish(c: &mut Client, srv: &mut ServerSession) {
        handshake(srv);
        let input = c.command(
            0,
            &[
                s("connect"),
                n(1.0),
                amf0::object([("app", s("live")), ("tcUrl", s("rtmp://box/live"))]),
            ],
        );
        // Feed in awkward pieces, as TCP may deliver them.
        for piece in input.chunks(7) {
            srv.handle_input(piece).unwrap();
        }
        let replies = c.read(srv);
        let kinds: Vec<u8> = replies.iter().map(|m| m.type_id).collect();
        assert_eq!(
            kinds,
            vec![
                msg::WINDOW_ACK_SIZE,
                msg::SET_PEER_BANDWIDTH,
                msg::SET_CHUNK_SIZE,
                msg::COMMAND_AMF0
            ]
        );
        let cmds = commands(&replies);
        assert_eq!(cmds[0][0], s("_result"));
        assert_eq!(
            cmds[0][3].get("code").and_then(Amf0Value::as_str),
            Some("NetConnection.Connect.Success")
        );
        let mut input = c.command(0, &[s("releaseStream"), n(2.0), Amf0Value::Null, s("cam1")]);
        input.extend(c.command(0, &[s("FCPublish"), n(3.0), Amf0Value::Null, s("cam1")]));
        input.extend(c.command(0, &[s("createStream"), n(4.0), Amf0Value::Null]));
        input.extend(c.command(
            1,
            &[
                s("publish"),
                n(5.0),
                Amf0Value::Null,
                s("cam1?token=x"),
                s("live"),
            ],
        ));
        srv.handle_input(&input).unwrap();
        let cmds = commands(&c.read(srv));
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[2], vec![s("_result"), n(4.0), Amf0Value::Null, n(1.0)]);
    }

    #[test]
    fn ffmpeg_style_publish_yields_tracks_and_every_frame() {
        let mut c = Client::new();
        let mut srv = ServerSession::new(ServerConfig::default(), 1);
        connect_and_publish(&mut c, &mut srv);
        let ev = events(&mut srv);
        assert!(matches!(&ev[0], Event::Connected { app, .. } if app == "live"));
        let Event::PublishRequested(req) = &ev[1] else {
            panic!("{ev:?}")
        };
        assert_eq!(req.app, "live");
        assert_eq!(req.name, "cam1");
        assert_eq!(req.query.as_deref(), Some("token=x"));

        // Media sent before the answer is held, then processed on accept.
        let mut media = c.message(4, 0, msg::DATA_AMF0, 1, &{
            let mut p = BytesMut::new();
            amf0::encode(&mut p, &s("@setDataFrame"));
            amf0::encode(&mut p, &s("onMetaData"));
            amf0::encode(
                &mut p,
                &Amf0Value::EcmaArray(vec![("width".into(), n(320.0))]),
            );
            p.to_vec()
        });
        let mut pos = 13;
        while pos + 11 <= FLV.len() {
            let t = FLV[pos];
            let size = u32::from_be_bytes([0, FLV[pos + 1], FLV[pos + 2], FLV[pos + 3]]) as usize;
            let ts = u32::from_be_bytes([FLV[pos + 7], FLV[pos + 4], FLV[pos + 5], FLV[pos + 6]]);
            if t == 8 || t == 9 {
                media.extend(c.message(
                    if t == 8 { 4 } else { 6 },
                    ts,
                    t,
                    1,
                    &FLV[pos + 11..pos + 11 + size],
                ));
            }
            pos += 11 + size + 4;
        }
        srv.handle_input(&media).unwrap();
        assert!(events(&mut srv).is_empty());
        srv.accept_publish().unwrap();
        let replies = c.read(&mut srv);
        let status = commands(&replies);
        assert_eq!(
            status[0][3].get("code").and_then(Amf0Value::as_str),
            Some("NetStream.Publish.Start")
        );
        let ev = events(&mut srv);
        assert!(matches!(&ev[0], Event::Metadata(p) if p[0].0 == "width"));
        let tracks: Vec<_> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Track(t) => Some(t.codec),
                _ => None,
            })
            .collect();
        assert_eq!(tracks, vec![Codec::H264, Codec::Aac]);
        let count = |id| {
            ev.iter()
                .filter(|e| matches!(e, Event::Frame(f) if f.track == id))
                .count()
        };
        assert_eq!(count(VIDEO_TRACK), 25);
        assert_eq!(count(AUDIO_TRACK), 45);

        // FCUnpublish + deleteStream end the publish once.
        let mut end = c.command(0, &[s("FCUnpublish"), n(6.0), Amf0Value::Null, s("cam1")]);
        end.extend(c.command(0, &[s("deleteStream"), n(7.0), Amf0Value::Null, n(1.0)]));
        srv.handle_input(&end).unwrap();
        let ev = events(&mut srv);
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, Event::Unpublished))
                .count(),
            1
        );
        assert!(!srv.is_publishing());
    }

    #[test]
    fn rejected_publish_parses_no_media() {
        let mut c = Client::new();
        let mut srv = ServerSession::new(ServerConfig::default(), 1);
        connect_and_publish(&mut c, &mut srv);
        events(&mut srv);
        srv.handle_input(&c.message(6, 0, msg::VIDEO, 1, &[0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]))
            .unwrap();
        srv.reject_publish(
            "NetStream.Publish.BadName",
            "stream live/cam1 is already publishing",
        )
        .unwrap();
        let status = commands(&c.read(&mut srv));
        assert_eq!(
            status[0][3].get("level").and_then(Amf0Value::as_str),
            Some("error")
        );
        assert_eq!(
            status[0][3].get("code").and_then(Amf0Value::as_str),
            Some("NetStream.Publish.BadName")
        );
        assert!(events(&mut srv).is_empty());
    }

    #[test]
    fn ping_and_acknowledgements() {
        let mut c = Client::new();
        let mut srv = ServerSession::new(ServerConfig::default(), 1);
        connect_and_publish(&mut c, &mut srv);
        srv.accept_publish().unwrap();
        c.read(&mut srv);
        let mut ping = 6u16.to_be_bytes().to_vec();
        ping.extend(77u32.to_be_bytes());
        let mut input = c.message(2, 0, msg::WINDOW_ACK_SIZE, 0, &1000u32.to_be_bytes());
        input.extend(c.message(2, 0, msg::USER_CONTROL, 0, &ping));
        srv.handle_input(&input).unwrap();
        let r = c.read(&mut srv);
        assert!(r
            .iter()
            .any(|m| m.type_id == msg::USER_CONTROL && m.payload[..] == [0, 7, 0, 0, 0, 77]));
        assert!(r.iter().any(|m| m.type_id == msg::ACKNOWLEDGEMENT));
    }

    #[test]
    fn malformed_input_fails_with_location() {
        // Chunk size 0, right after a valid connect.
        let mut c = Client::new();
        let mut srv = ServerSession::new(ServerConfig::default(), 1);
        connect_and_publish(&mut c, &mut srv);
        srv.accept_publish().unwrap();
        let at = srv.bytes_received();
        let e = srv
            .handle_input(&c.message(2, 0, msg::SET_CHUNK_SIZE, 0, &0u32.to_be_bytes()))
            .unwrap_err();
        assert_eq!(
            e.kind,
            RtmpErrorKind::Chunk(ChunkErrorKind::InvalidChunkSize(0))
        );
        assert_eq!(e.offset, at);
        assert_eq!((e.chunk_stream, e.message_type), (Some(2), Some(1)));
        assert!(e.to_string().contains(&format!("at byte {at}")), "{e}");
        // The session stays failed.
        assert!(srv.handle_input(&[0]).is_err());

        // Commands before connect.
        let mut srv = ServerSession::new(ServerConfig::default(), 1);
        let mut input = FFMPEG_C0C1.to_vec();
        input.extend_from_slice(&[0u8; HANDSHAKE_LEN]);
        input.extend(c.command(0, &[s("publish"), n(1.0)]));
        let e = srv.handle_input(&input).unwrap_err();
        assert!(matches!(e.kind, RtmpErrorKind::Protocol(_)));
        assert_eq!(e.offset, 3073);

        // Not RTMP at all.
        let mut srv = ServerSession::new(ServerConfig::default(), 1);
        let e = srv.handle_input(b"GET / HTTP/1.1\r\n").unwrap_err();
        assert!(matches!(e.kind, RtmpErrorKind::Handshake(_)));
    }

    #[test]
    fn bad_stream_names_are_refused_not_fatal() {
        let mut c = Client::new();
        let mut srv = ServerSession::new(ServerConfig::default(), 1);
        handshake(&mut srv);
        let mut input = c.command(
            0,
            &[s("connect"), n(1.0), amf0::object([("app", s("live"))])],
        );
        input.extend(c.command(
            1,
            &[s("publish"), n(2.0), Amf0Value::Null, s("bad\u{7}name")],
        ));
        srv.handle_input(&input).unwrap();
        let status = commands(&c.read(&mut srv));
        let last = status.last().unwrap();
        assert_eq!(
            last[3].get("code").and_then(Amf0Value::as_str),
            Some("NetStream.Publish.BadName")
        );
        assert!(!srv.awaiting_decision());
    }
}
