//! RTP payload formats to access units, one module per codec.
//!
//! A [`Depacketizer`] is fed the payloads of one access unit (one RTP timestamp) in
//! sequence order and then asked to [`finish`](Depacketizer::finish) it; a gap in
//! the sequence makes the caller [`reset`](Depacketizer::reset) it instead, so a
//! damaged unit is dropped whole rather than stored broken.
//!
//! Hand-written rather than the `rtp` crate's: its STAP-A walk indexes past the
//! end of a truncated packet (a panic on network input), it copies every NAL unit
//! once per packet, and it cannot say which parameter sets a unit carried.

pub mod aac;
pub mod g711;
pub mod h264;
pub mod opus;

use bytes::Bytes;
use edgerec_media::{Codec, TrackParams};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DepacketizeError {
    #[error("{0}-byte payload is too short")]
    Short(usize),
    #[error("{0} not supported")]
    Unsupported(&'static str),
    #[error("aggregation packet: unit of {len} bytes at byte {at} runs past the end")]
    Aggregate { at: usize, len: usize },
    #[error("two {0} packets with one timestamp")]
    TwoPackets(&'static str),
    #[error("fragment without its start")]
    FragmentWithoutStart,
    #[error("access unit of more than {0} bytes")]
    TooLarge(usize),
    #[error("bad fmtp parameters: {0}")]
    Fmtp(String),
}

/// Largest access unit accepted (a 4K intra frame at a high bitrate fits).
pub const MAX_UNIT: usize = 16 << 20;

/// One coded frame out of a finished access unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    /// In the codec's MP4 sample format.
    pub data: Bytes,
    pub key: bool,
    /// Ticks after the RTP timestamp (several AAC frames in one packet).
    pub offset: u32,
}

/// What a track is, once the stream (or its SDP) has said so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    pub codec: Codec,
    pub params: TrackParams,
    pub config: Bytes,
    pub codec_string: String,
}

pub trait Depacketizer: Send {
    /// One packet's payload of the current access unit.
    fn push(&mut self, payload: &Bytes) -> Result<(), DepacketizeError>;
    /// The access unit is complete: its frames are appended to `out`.
    fn finish(&mut self, out: &mut Vec<Unit>) -> Result<(), DepacketizeError>;
    /// Drops a partly received access unit.
    fn reset(&mut self);
    /// The track's description when it is known and has changed since last asked.
    fn take_description(&mut self) -> Option<Description>;
}

/// Payload formats that carry exactly one frame per packet (Opus, G.711): the
/// payload is the frame, the track's description is known from the start.
pub struct FramePerPacket {
    what: &'static str,
    frame: Option<Bytes>,
    pending: Option<Description>,
}

impl FramePerPacket {
    /// `what` names the format in errors.
    pub fn new(what: &'static str, description: Description) -> FramePerPacket {
        FramePerPacket {
            what,
            frame: None,
            pending: Some(description),
        }
    }
}

impl Depacketizer for FramePerPacket {
    fn push(&mut self, p: &Bytes) -> Result<(), DepacketizeError> {
        if p.is_empty() {
            return Err(DepacketizeError::Short(0));
        }
        if self.frame.is_some() {
            return Err(DepacketizeError::TwoPackets(self.what));
        }
        self.frame = Some(p.clone());
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<Unit>) -> Result<(), DepacketizeError> {
        if let Some(data) = self.frame.take() {
            out.push(Unit {
                data,
                key: true,
                offset: 0,
            });
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.frame = None;
    }

    fn take_description(&mut self) -> Option<Description> {
        self.pending.take()
    }
}

/// Parses `a=fmtp` parameters (`key=value;key=value`), keys lower-cased.
pub fn fmtp_params(fmtp: &str) -> Vec<(String, String)> {
    fmtp.split(';')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect()
}

pub(crate) fn fmtp_get<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}
