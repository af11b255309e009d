//! RTMP chunk streams: reassembling messages from interleaved chunks, and writing
//! messages as chunks.
//!
//! The decoder copies each chunk's payload once, into the message's own buffer, which
//! is then frozen into the `Bytes` that travels (sliced, never copied again) to the
//! muxer. Memory per connection is bounded: a message is never longer than
//! [`ChunkLimits::max_message_len`], buffers grow with what actually arrives rather
//! than with the length a header claims, and only [`ChunkLimits::max_chunk_streams`]
//! chunk streams may exist.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Default chunk size until the peer sets one (RTMP spec 5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest chunk size a peer may set (the top bit must be zero).
pub const MAX_CHUNK_SIZE: u32 = 0x7fff_ffff;
/// Longest chunk header: 3-byte basic header, 11-byte type-0 header, extended timestamp.
const MAX_HEADER_LEN: usize = 3 + 11 + 4;
/// A message's payload is allocated up to this much ahead of the bytes that arrived.
const INITIAL_ALLOC_CAP: usize = 256 * 1024;
/// Small messages (audio, most video frames) are carved out of shared blocks of this
/// size: one allocation per block instead of one per message.
const ARENA_BLOCK: usize = 64 * 1024;
const ARENA_MAX_MESSAGE: usize = ARENA_BLOCK / 4;

#[derive(Clone, Copy, Debug)]
pub struct ChunkLimits {
    pub max_message_len: u32,
    pub max_chunk_streams: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits {
            max_message_len: 8 * 1024 * 1024,
            max_chunk_streams: 32,
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChunkErrorKind {
    #[error("message length {len} exceeds the limit of {max} bytes")]
    MessageTooLong { len: u32, max: u32 },
    #[error("more than {0} chunk streams in use")]
    TooManyChunkStreams(usize),
    #[error("chunk header type {fmt} on a chunk stream with no previous message header")]
    NoPreviousHeader { fmt: u8 },
    #[error("invalid chunk size {0} (valid: 1..=2147483647)")]
    InvalidChunkSize(u32),
}

/// A chunk-layer error, with the connection byte offset of the offending chunk header.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{kind}")]
pub struct ChunkError {
    pub kind: ChunkErrorKind,
    pub offset: u64,
    pub chunk_stream: Option<u32>,
}

/// A reassembled RTMP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage {
    pub chunk_stream: u32,
    /// Absolute timestamp in milliseconds, as the 32-bit wire value (it wraps).
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Bytes,
    /// Connection byte offset of the message's first chunk header.
    pub offset: u64,
}

#[derive(Default)]
struct ChunkStream {
    id: u32,
    has_header: bool,
    timestamp: u32,
    /// The last header's timestamp field: a delta for types 1-2, the absolute time for
    /// type 0 (type-3 headers that start a new message add it, as ffmpeg does).
    ts_field: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The last type 0-2 header carried an extended timestamp.
    extended: bool,
    partial: Option<Partial>,
}

struct Partial {
    buf: BytesMut,
    offset: u64,
}

enum State {
    Header,
    Payload { stream: usize, remaining: u32 },
}

/// Reassembles messages from the chunk streams of one connection.
pub struct ChunkDecoder {
    chunk_size: u32,
    limits: ChunkLimits,
    streams: Vec<ChunkStream>,
    state: State,
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    /// Connection byte offset of the next byte to consume.
    offset: u64,
    /// Partial messages dropped because a new header arrived before they completed.
    discarded_partials: u64,
    /// Unused capacity of the current block for small messages.
    arena: BytesMut,
}

struct Header {
    len: usize,
    stream: usize,
}

impl ChunkDecoder {
    /// `start_offset` is the connection offset of the first chunk byte (after the handshake).
    pub fn new(limits: ChunkLimits, start_offset: u64) -> ChunkDecoder {
        ChunkDecoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
            limits,
            streams: Vec::new(),
            state: State::Header,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            offset: start_offset,
            discarded_partials: 0,
            arena: BytesMut::new(),
        }
    }

    /// Connection byte offset of the next byte the decoder will consume.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Messages dropped because the peer started a new one on the same chunk stream
    /// before finishing the last (a protocol violation some encoders commit on reconnect).
    pub fn discarded_partials(&self) -> u64 {
        self.discarded_partials
    }

    /// Applies the peer's Set Chunk Size.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkErrorKind> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(ChunkErrorKind::InvalidChunkSize(size));
        }
        // Messages are at most 2^24-1 bytes; a larger chunk size changes nothing.
        self.chunk_size = size.min(0x00ff_ffff);
        Ok(())
    }

    /// Applies the peer's Abort Message: drops the partial message on `chunk_stream`.
    pub fn abort(&mut self, chunk_stream: u32) {
        if let Some(s) = self.streams.iter_mut().find(|s| s.id == chunk_stream) {
            s.partial = None;
            if let State::Payload { stream, .. } = self.state {
                if self.streams[stream].id == chunk_stream {
                    self.state = State::Header;
                }
            }
        }
    }

    /// Consumes bytes from the front of `input` until a message completes or the input
    /// runs out. Call again while it returns `Some`.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<RawMessage>, ChunkError> {
        loop {
            match self.state {
                State::Payload { stream, remaining } => {
                    // Bytes stashed while deciding a header can turn out to be payload
                    // (see `read_header`): they come first.
                    let stashed = self.header_len > 0;
                    let available = if stashed {
                        self.header_len
                    } else {
                        input.len()
                    };
                    if available == 0 {
                        return Ok(None);
                    }
                    let n = (remaining as usize).min(available);
                    let s = &mut self.streams[stream];
                    if stashed {
                        if let Some(p) = s.partial.as_mut() {
                            p.buf.extend_from_slice(&self.header[..n]);
                        }
                        self.header.copy_within(n..self.header_len, 0);
                        self.header_len -= n;
                    } else {
                        if let Some(p) = s.partial.as_mut() {
                            p.buf.extend_from_slice(&input[..n]);
                        }
                        *input = &input[n..];
                        self.offset += n as u64;
                    }
                    let remaining = remaining - n as u32;
                    if remaining > 0 {
                        self.state = State::Payload { stream, remaining };
                        continue;
                    }
                    self.state = State::Header;
                    if let Some(m) = self.take_if_complete(stream) {
                        return Ok(Some(m));
                    }
                }
                State::Header => {
                    let Some(h) = self.read_header(input)? else {
                        return Ok(None);
                    };
                    let _ = h.len;
                    if let Some(m) = self.take_if_complete(h.stream) {
                        return Ok(Some(m));
                    }
                    let s = &self.streams[h.stream];
                    let have = s.partial.as_ref().map_or(0, |p| p.buf.len()) as u32;
                    let remaining = (s.length - have).min(self.chunk_size);
                    self.state = State::Payload {
                        stream: h.stream,
                        remaining,
                    };
                }
            }
        }
    }

    fn take_if_complete(&mut self, stream: usize) -> Option<RawMessage> {
        let s = &mut self.streams[stream];
        let done = s
            .partial
            .as_ref()
            .is_some_and(|p| p.buf.len() as u32 >= s.length);
        if !done {
            return None;
        }
        let p = s.partial.take()?;
        Some(RawMessage {
            chunk_stream: s.id,
            timestamp: s.timestamp,
            type_id: s.type_id,
            stream_id: s.stream_id,
            payload: p.buf.freeze(),
            offset: p.offset,
        })
    }

    /// Parses one chunk header from the stashed bytes plus `input`. On success the
    /// header's bytes are consumed and the chunk stream's state is updated.
    fn read_header(&mut self, input: &mut &[u8]) -> Result<Option<Header>, ChunkError> {
        // Work on a contiguous view: the stash (a header split across reads) + input.
        let mut scratch = [0u8; MAX_HEADER_LEN];
        let stashed = self.header_len;
        scratch[..stashed].copy_from_slice(&self.header[..stashed]);
        let take = (MAX_HEADER_LEN - stashed).min(input.len());
        scratch[stashed..stashed + take].copy_from_slice(&input[..take]);
        let view = &scratch[..stashed + take];
        let header_offset = self.offset - stashed as u64;

        match self.parse_header(view, header_offset)? {
            None => {
                // Incomplete: everything we saw is header bytes; keep them.
                self.header[stashed..stashed + take].copy_from_slice(&input[..take]);
                self.header_len += take;
                self.offset += take as u64;
                *input = &input[take..];
                Ok(None)
            }
            Some(h) if h.len >= stashed => {
                let from_input = h.len - stashed;
                *input = &input[from_input..];
                self.offset += from_input as u64;
                self.header_len = 0;
                Ok(Some(h))
            }
            Some(h) => {
                // The header was shorter than the bytes stashed to decide it (an
                // omitted extended timestamp): the rest is payload, kept in order.
                self.header.copy_within(h.len..stashed, 0);
                self.header_len = stashed - h.len;
                Ok(Some(h))
            }
        }
    }

    fn parse_header(&mut self, b: &[u8], offset: u64) -> Result<Option<Header>, ChunkError> {
        let Some(&b0) = b.first() else {
            return Ok(None);
        };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3f {
            0 => match b.get(1) {
                Some(&x) => (64 + x as u32, 2),
                None => return Ok(None),
            },
            1 => match (b.get(1), b.get(2)) {
                (Some(&x), Some(&y)) => (64 + x as u32 + ((y as u32) << 8), 3),
                _ => return Ok(None),
            },
            n => (n as u32, 1),
        };
        let err = |kind| ChunkError {
            kind,
            offset,
            chunk_stream: Some(csid),
        };
        let msg_header_len = [11, 7, 3, 0][fmt as usize];
        if b.len() < pos + msg_header_len {
            return Ok(None);
        }
        let idx = match self.streams.iter().position(|s| s.id == csid) {
            Some(i) => i,
            None => {
                if fmt != 0 {
                    return Err(err(ChunkErrorKind::NoPreviousHeader { fmt }));
                }
                if self.streams.len() >= self.limits.max_chunk_streams {
                    return Err(err(ChunkErrorKind::TooManyChunkStreams(
                        self.limits.max_chunk_streams,
                    )));
                }
                self.streams.push(ChunkStream {
                    id: csid,
                    ..ChunkStream::default()
                });
                self.streams.len() - 1
            }
        };
        let s = &self.streams[idx];
        if fmt != 0 && !s.has_header {
            return Err(err(ChunkErrorKind::NoPreviousHeader { fmt }));
        }
        let u24 = |p: usize| u32::from_be_bytes([0, b[p], b[p + 1], b[p + 2]]);

        let mut ts_field = s.ts_field;
        let mut length = s.length;
        let mut type_id = s.type_id;
        let mut stream_id = s.stream_id;
        let mut extended = s.extended;
        if fmt <= 2 {
            ts_field = u24(pos);
            extended = ts_field == 0x00ff_ffff;
        }
        if fmt <= 1 {
            length = u24(pos + 3);
            type_id = b[pos + 6];
        }
        if fmt == 0 {
            stream_id = u32::from_le_bytes([b[pos + 7], b[pos + 8], b[pos + 9], b[pos + 10]]);
        }
        pos += msg_header_len;
        let continuation = fmt == 3 && s.partial.is_some();
        if extended {
            if b.len() < pos + 4 {
                return Ok(None);
            }
            let ext = u32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]);
            if fmt <= 2 || !continuation {
                ts_field = ext;
                pos += 4;
            } else if ext == s.ts_field {
                // Spec: a type-3 continuation repeats the extended timestamp. Some
                // encoders omit it; like SRS we consume it only when it matches.
                pos += 4;
            }
        }
        if length > self.limits.max_message_len {
            return Err(err(ChunkErrorKind::MessageTooLong {
                len: length,
                max: self.limits.max_message_len,
            }));
        }

        let s = &mut self.streams[idx];
        if !continuation {
            if s.partial.take().is_some() {
                self.discarded_partials += 1;
            }
            s.timestamp = match fmt {
                0 => ts_field,
                _ => s.timestamp.wrapping_add(ts_field),
            };
            s.ts_field = ts_field;
            s.length = length;
            s.type_id = type_id;
            s.stream_id = stream_id;
            s.extended = extended;
            s.has_header = true;
            let len = length as usize;
            let buf = if len <= ARENA_MAX_MESSAGE {
                if self.arena.capacity() < len {
                    self.arena = BytesMut::with_capacity(ARENA_BLOCK);
                }
                // The message gets exactly `len` bytes of the block; the block keeps
                // the rest. Frames share the block until the last one is dropped.
                let rest = self.arena.split_off(len);
                std::mem::replace(&mut self.arena, rest)
            } else {
                BytesMut::with_capacity(len.min(INITIAL_ALLOC_CAP))
            };
            s.partial = Some(Partial { buf, offset });
        }
        Ok(Some(Header {
            len: pos,
            stream: idx,
        }))
    }
}

/// Writes messages as chunks (the server's replies: control messages and commands).
pub struct ChunkEncoder {
    chunk_size: u32,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        ChunkEncoder {
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

impl ChunkEncoder {
    /// Takes effect for messages written after the Set Chunk Size message announcing it.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, 0x00ff_ffff);
    }

    pub fn write(
        &self,
        out: &mut BytesMut,
        chunk_stream: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
    ) {
        let extended = timestamp >= 0x00ff_ffff;
        let ts_field = if extended { 0x00ff_ffff } else { timestamp };
        let mut first = true;
        let mut rest = payload;
        loop {
            put_basic_header(out, if first { 0 } else { 3 }, chunk_stream);
            if first {
                out.put_uint(ts_field as u64, 3);
                out.put_uint(payload.len() as u64, 3);
                out.put_u8(type_id);
                out.put_u32_le(stream_id);
            }
            if extended {
                out.put_u32(timestamp);
            }
            let n = rest.len().min(self.chunk_size as usize);
            out.put_slice(&rest[..n]);
            rest = &rest[n..];
            first = false;
            if rest.is_empty() {
                break;
            }
        }
    }
}

fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    match csid {
        2..=63 => out.put_u8(fmt << 6 | csid as u8),
        64..=319 => {
            out.put_u8(fmt << 6);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            let v = csid.clamp(64, 65599) - 64;
            out.put_u8(fmt << 6 | 1);
            out.put_u16_le(v as u16);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(d: &mut ChunkDecoder, mut input: &[u8]) -> Vec<RawMessage> {
        let mut out = Vec::new();
        while let Some(m) = d.decode(&mut input).unwrap() {
            out.push(m);
        }
        assert!(input.is_empty());
        out
    }

    fn encode(chunk_size: u32, msgs: &[(u32, u32, u8, u32, Vec<u8>)]) -> Vec<u8> {
        let mut e = ChunkEncoder::default();
        e.set_chunk_size(chunk_size);
        let mut out = BytesMut::new();
        for (cs, ts, ty, sid, p) in msgs {
            e.write(&mut out, *cs, *ts, *ty, *sid, p);
        }
        out.to_vec()
    }

    /// ffmpeg 5.1's connect command: 140 bytes split over two 128-byte chunks (the
    /// second with a type-3 header), as captured from a real publish.
    #[test]
    fn reassembles_ffmpeg_connect() {
        let bytes = include_bytes!("../tests/data/ffmpeg51_connect_chunks.bin");
        let mut d = ChunkDecoder::new(ChunkLimits::default(), 3073);
        let msgs = decode_all(&mut d, bytes);
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        assert_eq!(
            (m.chunk_stream, m.type_id, m.stream_id, m.offset),
            (3, 20, 0, 3073)
        );
        assert_eq!(
            &m.payload[..],
            include_bytes!("../tests/data/ffmpeg51_connect.amf0")
        );
        assert_eq!(d.offset(), 3073 + bytes.len() as u64);
    }

    #[test]
    fn every_split_point_gives_the_same_messages() {
        let msgs = vec![
            (3, 0, 20, 0, vec![1u8; 300]),
            (4, 40, 9, 1, vec![2u8; 129]),
            (6, 0x0100_0000, 8, 1, vec![3u8; 260]),
            (70, 5, 18, 1, vec![]),
            (400, 7, 8, 1, vec![4u8; 5]),
        ];
        let wire = encode(128, &msgs);
        for split in 0..wire.len() {
            let mut d = ChunkDecoder::new(ChunkLimits::default(), 0);
            let mut got = decode_all(&mut d, &wire[..split]);
            got.extend(decode_all(&mut d, &wire[split..]));
            let got: Vec<_> = got
                .into_iter()
                .map(|m| {
                    (
                        m.chunk_stream,
                        m.timestamp,
                        m.type_id,
                        m.stream_id,
                        m.payload.to_vec(),
                    )
                })
                .collect();
            assert_eq!(got, msgs, "split at {split}");
        }
    }

    #[test]
    fn interleaved_chunk_streams() {
        // Two 200-byte messages on chunk streams 4 and 6, chunks alternating.
        let mut w = BytesMut::new();
        for (cs, fill) in [(4u8, 0xaa), (6u8, 0xbb)] {
            w.put_u8(cs); // fmt 0
            w.put_uint(10, 3);
            w.put_uint(200, 3);
            w.put_u8(9);
            w.put_u32_le(1);
            w.put_slice(&[fill; 128]);
        }
        for (cs, fill) in [(4u8, 0xaa), (6u8, 0xbb)] {
            w.put_u8(0xc0 | cs);
            w.put_slice(&[fill; 72]);
        }
        let mut d = ChunkDecoder::new(ChunkLimits::default(), 0);
        let msgs = decode_all(&mut d, &w);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].chunk_stream, 4);
        assert!(msgs[0].payload.iter().all(|&b| b == 0xaa));
        assert_eq!(msgs[1].chunk_stream, 6);
        assert!(msgs[1].payload.iter().all(|&b| b == 0xbb));
        assert_eq!(msgs[1].offset, 140);
    }

    #[test]
    fn chunk_size_change_mid_stream() {
        let mut d = ChunkDecoder::new(ChunkLimits::default(), 0);
        let a = encode(128, &[(4, 0, 9, 1, vec![1; 300])]);
        assert_eq!(decode_all(&mut d, &a).len(), 1);
        d.set_chunk_size(4096).unwrap();
        let b = encode(4096, &[(4, 40, 9, 1, vec![2; 5000])]);
        let m = decode_all(&mut d, &b);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].payload.len(), 5000);
        assert_eq!(m[0].timestamp, 40);
    }

    #[test]
    fn type_1_2_3_headers_accumulate_deltas() {
        let mut w = BytesMut::new();
        w.put_u8(0x04);
        w.put_uint(1000, 3);
        w.put_uint(1, 3);
        w.put_u8(8);
        w.put_u32_le(1);
        w.put_u8(0);
        w.put_u8(0x44); // fmt 1
        w.put_uint(23, 3);
        w.put_uint(2, 3);
        w.put_u8(8);
        w.put_slice(&[0, 0]);
        w.put_u8(0x84); // fmt 2
        w.put_uint(24, 3);
        w.put_slice(&[0, 0]);
        w.put_u8(0xc4); // fmt 3, new message, same delta
        w.put_slice(&[0, 0]);
        let mut d = ChunkDecoder::new(ChunkLimits::default(), 0);
        let ts: Vec<u32> = decode_all(&mut d, &w).iter().map(|m| m.timestamp).collect();
        assert_eq!(ts, vec![1000, 1023, 1047, 1071]);
    }

    #[test]
    fn extended_timestamp_in_continuations_optional() {
        let ts = 0x0123_4567u32;
        let with = encode(128, &[(4, ts, 9, 1, vec![7; 200])]);
        // The same message without the extended timestamp on its type-3 chunk.
        let mut without = with.clone();
        let cont = 1 + 11 + 4 + 128;
        without.drain(cont + 1..cont + 5);
        let next = encode(128, &[(5, 10, 8, 1, vec![9; 3])]);
        for wire in [with, without] {
            let mut wire = wire.clone();
            wire.extend_from_slice(&next);
            // Split everywhere, including inside the ambiguous 4 bytes.
            for split in 0..wire.len() {
                let mut d = ChunkDecoder::new(ChunkLimits::default(), 0);
                let mut m = decode_all(&mut d, &wire[..split]);
                m.extend(decode_all(&mut d, &wire[split..]));
                assert_eq!(m.len(), 2, "split {split}");
                assert_eq!(m[0].timestamp, ts);
                assert_eq!(&m[0].payload[..], &[7; 200][..], "split {split}");
                assert_eq!(&m[1].payload[..], &[9; 3][..], "split {split}");
                assert_eq!(d.offset(), wire.len() as u64);
            }
        }
    }

    #[test]
    fn rejects_oversized_message_before_buffering_it() {
        let mut w = BytesMut::new();
        w.put_u8(0x04);
        w.put_uint(0, 3);
        w.put_uint(0x00ff_ffff, 3);
        w.put_u8(9);
        w.put_u32_le(1);
        let mut d = ChunkDecoder::new(ChunkLimits::default(), 100);
        let e = d.decode(&mut &w[..]).unwrap_err();
        assert_eq!(
            e.kind,
            ChunkErrorKind::MessageTooLong {
                len: 0x00ff_ffff,
                max: 8 * 1024 * 1024
            }
        );
        assert_eq!(e.offset, 100);
        assert_eq!(e.chunk_stream, Some(4));
    }

    #[test]
    fn rejects_headers_without_context_and_bad_chunk_sizes() {
        let mut d = ChunkDecoder::new(ChunkLimits::default(), 0);
        let e = d.decode(&mut &[0xc5u8, 0, 0][..]).unwrap_err();
        assert_eq!(e.kind, ChunkErrorKind::NoPreviousHeader { fmt: 3 });
        assert_eq!(
            d.set_chunk_size(0),
            Err(ChunkErrorKind::InvalidChunkSize(0))
        );
        assert_eq!(
            d.set_chunk_size(0x8000_0000),
            Err(ChunkErrorKind::InvalidChunkSize(0x8000_0000))
        );
        assert!(d.set_chunk_size(MAX_CHUNK_SIZE).is_ok());
    }

    #[test]
    fn limits_chunk_streams() {
        let limits = ChunkLimits {
            max_chunk_streams: 4,
            ..ChunkLimits::default()
        };
        let msgs: Vec<_> = (3..10).map(|cs| (cs, 0, 9, 1, vec![0u8; 1])).collect();
        let wire = encode(128, &msgs);
        let mut d = ChunkDecoder::new(limits, 0);
        let mut input = &wire[..];
        let mut n = 0;
        let e = loop {
            match d.decode(&mut input) {
                Ok(Some(_)) => n += 1,
                Ok(None) => panic!("should fail"),
                Err(e) => break e,
            }
        };
        assert_eq!(n, 4);
        assert_eq!(e.kind, ChunkErrorKind::TooManyChunkStreams(4));
    }

    #[test]
    fn abort_drops_partial_message() {
        let wire = encode(128, &[(4, 0, 9, 1, vec![1; 200])]);
        let mut d = ChunkDecoder::new(ChunkLimits::default(), 0);
        assert!(d.decode(&mut &wire[..140]).unwrap().is_none());
        d.abort(4);
        let next = encode(128, &[(4, 0, 9, 1, vec![2; 10])]);
        let m = decode_all(&mut d, &next);
        assert_eq!(m.len(), 1);
        assert_eq!(&m[0].payload[..], &[2; 10]);
    }
}
