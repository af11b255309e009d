//! RTMP message type ids and the server's outgoing control and command messages.

use bytes::BytesMut;

use crate::amf0::{self, Amf0Value};
use crate::chunk::ChunkEncoder;

pub const SET_CHUNK_SIZE: u8 = 1;
pub const ABORT: u8 = 2;
pub const ACKNOWLEDGEMENT: u8 = 3;
pub const USER_CONTROL: u8 = 4;
pub const WINDOW_ACK_SIZE: u8 = 5;
pub const SET_PEER_BANDWIDTH: u8 = 6;
pub const AUDIO: u8 = 8;
pub const VIDEO: u8 = 9;
pub const DATA_AMF3: u8 = 15;
pub const COMMAND_AMF3: u8 = 17;
pub const DATA_AMF0: u8 = 18;
pub const COMMAND_AMF0: u8 = 20;
pub const AGGREGATE: u8 = 22;

/// User control event types (RTMP spec 7.1.7).
pub mod user_control {
    pub const STREAM_BEGIN: u16 = 0;
    pub const PING_REQUEST: u16 = 6;
    pub const PING_RESPONSE: u16 = 7;
}

/// Chunk streams the server writes on (as nginx-rtmp and SRS do).
const CS_CONTROL: u32 = 2;
const CS_COMMAND: u32 = 3;
const CS_STREAM: u32 = 5;

/// Writes the server's messages into an output buffer.
#[derive(Default)]
pub struct Writer {
    pub(crate) chunks: ChunkEncoder,
}

impl Writer {
    fn control(&self, out: &mut BytesMut, type_id: u8, payload: &[u8]) {
        self.chunks.write(out, CS_CONTROL, 0, type_id, 0, payload);
    }

    pub fn set_chunk_size(&mut self, out: &mut BytesMut, size: u32) {
        self.control(out, SET_CHUNK_SIZE, &size.to_be_bytes());
        self.chunks.set_chunk_size(size);
    }

    pub fn window_ack_size(&self, out: &mut BytesMut, size: u32) {
        self.control(out, WINDOW_ACK_SIZE, &size.to_be_bytes());
    }

    pub fn set_peer_bandwidth(&self, out: &mut BytesMut, size: u32) {
        let mut p = size.to_be_bytes().to_vec();
        p.push(2); // dynamic
        self.control(out, SET_PEER_BANDWIDTH, &p);
    }

    pub fn acknowledgement(&self, out: &mut BytesMut, sequence: u32) {
        self.control(out, ACKNOWLEDGEMENT, &sequence.to_be_bytes());
    }

    pub fn user_control(&self, out: &mut BytesMut, event: u16, data: u32) {
        let mut p = event.to_be_bytes().to_vec();
        p.extend_from_slice(&data.to_be_bytes());
        self.control(out, USER_CONTROL, &p);
    }

    /// A command on the connection (message stream 0).
    pub fn command(&self, out: &mut BytesMut, values: &[Amf0Value]) {
        self.command_on(out, CS_COMMAND, 0, values);
    }

    /// A command on a message stream (onStatus for publish).
    pub fn stream_command(&self, out: &mut BytesMut, stream_id: u32, values: &[Amf0Value]) {
        self.command_on(out, CS_STREAM, stream_id, values);
    }

    fn command_on(&self, out: &mut BytesMut, cs: u32, stream_id: u32, values: &[Amf0Value]) {
        let mut p = BytesMut::new();
        for v in values {
            amf0::encode(&mut p, v);
        }
        self.chunks.write(out, cs, 0, COMMAND_AMF0, stream_id, &p);
    }

    /// `onStatus(0, null, {level, code, description})` on a message stream.
    pub fn on_status(
        &self,
        out: &mut BytesMut,
        stream_id: u32,
        level: &str,
        code: &str,
        description: &str,
    ) {
        self.stream_command(
            out,
            stream_id,
            &[
                Amf0Value::String("onStatus".into()),
                Amf0Value::Number(0.0),
                Amf0Value::Null,
                amf0::object([
                    ("level", Amf0Value::String(level.into())),
                    ("code", Amf0Value::String(code.into())),
                    ("description", Amf0Value::String(description.into())),
                ]),
            ],
        );
    }
}

/// Reads a big-endian u32 from the start of a control message payload.
pub fn be_u32(p: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(p.get(..4)?.try_into().ok()?))
}
