//! A sans-IO RTMP publisher: handshake, connect/createStream/publish, then media
//! messages chunked into the caller's buffer. Bytes in via [`Publisher::handle_input`],
//! bytes out via [`Publisher::take_output`]; the caller owns the socket and the clock.

use bytes::{BufMut, Bytes, BytesMut};
use edgerec_rtmp::amf0::{self, Amf0Limits, Amf0Value};
use edgerec_rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits};
use edgerec_rtmp::message;
use thiserror::Error;

use crate::source::{Tag, TagKind};

const HANDSHAKE_LEN: usize = 1536;
/// Chunk size announced to the server (what OBS and ffmpeg use).
pub const CHUNK_SIZE: u32 = 4096;

const CS_COMMAND: u32 = 3;
const CS_AUDIO: u32 = 4;
const CS_VIDEO: u32 = 6;
const CS_DATA: u32 = 5;

const TX_CONNECT: f64 = 1.0;
const TX_CREATE_STREAM: f64 = 4.0;
const TX_PUBLISH: f64 = 5.0;

#[derive(Debug, Error)]
pub enum PublishError {
    #[error("server's handshake has version {0}, expected 3")]
    Version(u8),
    #[error("chunk stream from the server: {0}")]
    Chunk(#[from] edgerec_rtmp::chunk::ChunkError),
    #[error("AMF0 from the server: {0}")]
    Amf0(#[from] amf0::Amf0Error),
    #[error("server refused {what}: {detail}")]
    Refused { what: &'static str, detail: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshake,
    Connecting,
    CreatingStream,
    Publishing,
    Live,
}

pub struct Publisher {
    app: String,
    name: String,
    tc_url: String,
    state: State,
    inbuf: Vec<u8>,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    out: BytesMut,
    stream_id: u32,
}

impl Publisher {
    /// Starts a publish of `app/name`; C0 and C1 are ready in [`Publisher::take_output`].
    pub fn new(app: &str, name: &str, tc_url: &str, seed: u64) -> Publisher {
        let mut out = BytesMut::with_capacity(1 + HANDSHAKE_LEN);
        out.put_u8(3);
        out.put_u32(0); // time
        out.put_u32(0); // zero: the plain (non-digest) handshake
        let mut x = seed | 1;
        for _ in 0..(HANDSHAKE_LEN - 8) / 8 {
            // xorshift: C1 only needs to be unpredictable enough to echo.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.put_u64(x);
        }
        Publisher {
            app: app.into(),
            name: name.into(),
            tc_url: tc_url.into(),
            state: State::Handshake,
            inbuf: Vec::new(),
            decoder: ChunkDecoder::new(ChunkLimits::default(), (1 + 2 * HANDSHAKE_LEN) as u64),
            encoder: ChunkEncoder::default(),
            out,
            stream_id: 0,
        }
    }

    /// The server accepted the publish: media may flow.
    pub fn is_live(&self) -> bool {
        self.state == State::Live
    }

    /// Bytes to send, if any.
    pub fn take_output(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    pub fn handle_input(&mut self, mut data: &[u8]) -> Result<(), PublishError> {
        if self.state == State::Handshake {
            let need = 1 + 2 * HANDSHAKE_LEN - self.inbuf.len();
            let n = need.min(data.len());
            self.inbuf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.inbuf.len() < 1 + 2 * HANDSHAKE_LEN {
                return Ok(());
            }
            if self.inbuf[0] != 3 {
                return Err(PublishError::Version(self.inbuf[0]));
            }
            // C2 echoes S1.
            self.out
                .extend_from_slice(&self.inbuf[1..1 + HANDSHAKE_LEN]);
            self.inbuf = Vec::new();
            self.send_chunk_size();
            self.send_connect();
            self.state = State::Connecting;
        }
        while let Some(m) = self.decoder.decode(&mut data)? {
            match m.type_id {
                message::SET_CHUNK_SIZE => {
                    if let Some(size) = message::be_u32(&m.payload) {
                        // An invalid size from the server is its problem to report.
                        let _ = self.decoder.set_chunk_size(size);
                    }
                }
                message::USER_CONTROL if m.payload.len() >= 6 => {
                    let event = u16::from_be_bytes([m.payload[0], m.payload[1]]);
                    if event == message::user_control::PING_REQUEST {
                        let mut p = message::user_control::PING_RESPONSE.to_be_bytes().to_vec();
                        p.extend_from_slice(&m.payload[2..6]);
                        self.encoder
                            .write(&mut self.out, 2, 0, message::USER_CONTROL, 0, &p);
                    }
                }
                message::COMMAND_AMF0 => {
                    let values = amf0::decode_all(&m.payload, Amf0Limits::default())?;
                    self.on_command(&values)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn on_command(&mut self, v: &[Amf0Value]) -> Result<(), PublishError> {
        let name = v.first().and_then(Amf0Value::as_str).unwrap_or("");
        let tx = v.get(1).and_then(Amf0Value::as_f64).unwrap_or(0.0);
        let describe = || {
            v.iter()
                .filter_map(|x| x.get("code").or(x.get("description")))
                .filter_map(Amf0Value::as_str)
                .collect::<Vec<_>>()
                .join(": ")
        };
        match (name, self.state) {
            ("_result", State::Connecting) if tx == TX_CONNECT => {
                self.command("releaseStream", 2.0, true);
                self.command("FCPublish", 3.0, true);
                self.command("createStream", TX_CREATE_STREAM, false);
                self.state = State::CreatingStream;
            }
            ("_result", State::CreatingStream) if tx == TX_CREATE_STREAM => {
                self.stream_id = v.get(3).and_then(Amf0Value::as_f64).unwrap_or(1.0) as u32;
                let p = amf(&[
                    Amf0Value::String("publish".into()),
                    Amf0Value::Number(TX_PUBLISH),
                    Amf0Value::Null,
                    Amf0Value::String(self.name.clone()),
                    Amf0Value::String("live".into()),
                ]);
                self.encoder.write(
                    &mut self.out,
                    CS_DATA,
                    0,
                    message::COMMAND_AMF0,
                    self.stream_id,
                    &p,
                );
                self.state = State::Publishing;
            }
            ("_error", _) => {
                return Err(PublishError::Refused {
                    what: "a command",
                    detail: describe(),
                })
            }
            ("onStatus", State::Publishing) => {
                let level = v
                    .iter()
                    .find_map(|x| x.get("level"))
                    .and_then(Amf0Value::as_str);
                let code = describe();
                if level == Some("error") {
                    return Err(PublishError::Refused {
                        what: "the publish",
                        detail: code,
                    });
                }
                if code.contains("Publish.Start") {
                    self.state = State::Live;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn send_chunk_size(&mut self) {
        self.encoder.write(
            &mut self.out,
            2,
            0,
            message::SET_CHUNK_SIZE,
            0,
            &CHUNK_SIZE.to_be_bytes(),
        );
        self.encoder.set_chunk_size(CHUNK_SIZE);
    }

    fn send_connect(&mut self) {
        let obj = amf0::object([
            ("app", Amf0Value::String(self.app.clone())),
            ("type", Amf0Value::String("nonprivate".into())),
            (
                "flashVer",
                Amf0Value::String("FMLE/3.0 (compatible; edgerec-loadgen)".into()),
            ),
            ("tcUrl", Amf0Value::String(self.tc_url.clone())),
        ]);
        let p = amf(&[
            Amf0Value::String("connect".into()),
            Amf0Value::Number(TX_CONNECT),
            obj,
        ]);
        self.encoder
            .write(&mut self.out, CS_COMMAND, 0, message::COMMAND_AMF0, 0, &p);
    }

    /// `name(tx, null[, stream name])` on the connection.
    fn command(&mut self, name: &str, tx: f64, with_name: bool) {
        let mut p = amf(&[
            Amf0Value::String(name.into()),
            Amf0Value::Number(tx),
            Amf0Value::Null,
        ]);
        if with_name {
            amf0::encode(&mut p, &Amf0Value::String(self.name.clone()));
        }
        self.encoder
            .write(&mut self.out, CS_COMMAND, 0, message::COMMAND_AMF0, 0, &p);
    }

    /// Chunks one tag, stamped `ts_ms`, into `out` (script data as `@setDataFrame`).
    pub fn write_tag(&self, out: &mut BytesMut, tag: &Tag, ts_ms: u32) {
        let cs = match tag.kind {
            TagKind::Audio => CS_AUDIO,
            TagKind::Video => CS_VIDEO,
            TagKind::Script => CS_DATA,
        };
        if tag.kind == TagKind::Script {
            let mut p = BytesMut::new();
            amf0::encode(&mut p, &Amf0Value::String("@setDataFrame".into()));
            p.extend_from_slice(&tag.data);
            self.encoder
                .write(out, cs, ts_ms, tag.kind.message_type(), self.stream_id, &p);
        } else {
            self.encoder.write(
                out,
                cs,
                ts_ms,
                tag.kind.message_type(),
                self.stream_id,
                &tag.data,
            );
        }
    }

    /// FCUnpublish and deleteStream: the end of the feed.
    pub fn unpublish(&mut self) {
        self.command("FCUnpublish", 6.0, true);
        let p = amf(&[
            Amf0Value::String("deleteStream".into()),
            Amf0Value::Number(7.0),
            Amf0Value::Null,
            Amf0Value::Number(self.stream_id as f64),
        ]);
        self.encoder
            .write(&mut self.out, CS_COMMAND, 0, message::COMMAND_AMF0, 0, &p);
    }
}

/// A command payload: the values in AMF0, one after another.
fn amf(values: &[Amf0Value]) -> BytesMut {
    let mut p = BytesMut::new();
    for v in values {
        amf0::encode(&mut p, v);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgerec_rtmp::{Event, ServerConfig, ServerSession};

    /// Drives the publisher against edgerec's own server session until it is live.
    #[test]
    fn publishes_to_the_edgerec_session() {
        let mut p = Publisher::new("live", "feed7", "rtmp://127.0.0.1/live", 42);
        let mut s = ServerSession::new(ServerConfig::default(), 9);
        let mut published = None;
        for _ in 0..20 {
            if let Some(b) = p.take_output() {
                s.handle_input(&b).unwrap();
            }
            while let Some(e) = s.poll_event() {
                if let Event::PublishRequested(req) = e {
                    published = Some(format!("{}/{}", req.app, req.name));
                    s.accept_publish().unwrap();
                }
            }
            while let Some(b) = s.poll_transmit() {
                p.handle_input(&b).unwrap();
            }
            if p.is_live() {
                break;
            }
        }
        assert!(p.is_live());
        assert_eq!(published.as_deref(), Some("live/feed7"));
    }
}
