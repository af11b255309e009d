//! AMF0 values (Action Message Format, as RTMP commands and onMetaData use it).
//!
//! Hand-written: the AMF crates on crates.io decode without depth or size limits,
//! and a publisher-controlled payload must not be able to exhaust the stack or memory.

use bytes::{BufMut, BytesMut};
use thiserror::Error;

/// An AMF0 value. Objects keep their key order (it is visible in logs and metadata).
#[derive(Clone, Debug, PartialEq)]
pub enum Amf0Value {
    Number(f64),
    Boolean(bool),
    String(String),
    Object(Vec<(String, Amf0Value)>),
    Null,
    Undefined,
    EcmaArray(Vec<(String, Amf0Value)>),
    StrictArray(Vec<Amf0Value>),
    Date {
        millis: f64,
        timezone: i16,
    },
    XmlDocument(String),
    TypedObject {
        class: String,
        properties: Vec<(String, Amf0Value)>,
    },
}

impl Amf0Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) | Amf0Value::XmlDocument(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// Properties of an object, ECMA array or typed object.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => Some(p),
            Amf0Value::TypedObject { properties, .. } => Some(properties),
            _ => None,
        }
    }

    /// The value of property `key`, if this is an object-like value that has it.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// Bounds on what a decoder accepts.
#[derive(Clone, Copy, Debug)]
pub struct Amf0Limits {
    /// Deepest nesting of objects/arrays.
    pub max_depth: u32,
    /// Most values (at any depth) in one payload.
    pub max_values: u32,
}

impl Default for Amf0Limits {
    fn default() -> Self {
        Amf0Limits {
            max_depth: 16,
            max_values: 4096,
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Amf0ErrorKind {
    #[error("truncated AMF0 value")]
    Truncated,
    #[error("unsupported AMF0 marker 0x{0:02x}")]
    UnsupportedMarker(u8),
    #[error("AMF0 nesting deeper than {0}")]
    TooDeep(u32),
    #[error("more than {0} AMF0 values")]
    TooManyValues(u32),
    #[error("AMF0 object end marker outside an object")]
    StrayObjectEnd,
}

/// A decode error and the byte offset (within the payload) where it was found.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{kind} at payload offset {offset}")]
pub struct Amf0Error {
    pub kind: Amf0ErrorKind,
    pub offset: usize,
}

mod marker {
    pub const NUMBER: u8 = 0x00;
    pub const BOOLEAN: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const OBJECT: u8 = 0x03;
    pub const MOVIECLIP: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const REFERENCE: u8 = 0x07;
    pub const ECMA_ARRAY: u8 = 0x08;
    pub const OBJECT_END: u8 = 0x09;
    pub const STRICT_ARRAY: u8 = 0x0a;
    pub const DATE: u8 = 0x0b;
    pub const LONG_STRING: u8 = 0x0c;
    pub const UNSUPPORTED: u8 = 0x0d;
    pub const XML_DOCUMENT: u8 = 0x0f;
    pub const TYPED_OBJECT: u8 = 0x10;
}

struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    limits: Amf0Limits,
    values: u32,
}

impl<'a> Decoder<'a> {
    fn err(&self, kind: Amf0ErrorKind) -> Amf0Error {
        Amf0Error {
            kind,
            offset: self.pos,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Amf0Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.err(Amf0ErrorKind::Truncated))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn utf8(&mut self, len: usize) -> Result<String, Amf0Error> {
        let b = self.take(len)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    fn short_string(&mut self) -> Result<String, Amf0Error> {
        let n = self.u16()? as usize;
        self.utf8(n)
    }

    fn value(&mut self, depth: u32) -> Result<Amf0Value, Amf0Error> {
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(self.err(Amf0ErrorKind::TooManyValues(self.limits.max_values)));
        }
        let start = self.pos;
        let m = self.u8()?;
        Ok(match m {
            marker::NUMBER => Amf0Value::Number(self.f64()?),
            marker::BOOLEAN => Amf0Value::Boolean(self.u8()? != 0),
            marker::STRING => Amf0Value::String(self.short_string()?),
            marker::OBJECT => Amf0Value::Object(self.properties(depth + 1)?),
            marker::NULL => Amf0Value::Null,
            marker::UNDEFINED | marker::UNSUPPORTED => Amf0Value::Undefined,
            marker::ECMA_ARRAY => {
                // The count is a hint that encoders get wrong; the end marker decides.
                self.u32()?;
                Amf0Value::EcmaArray(self.properties(depth + 1)?)
            }
            marker::STRICT_ARRAY => {
                let n = self.u32()?;
                self.enter(depth + 1)?;
                // Every value takes at least one byte: never trust `n` for allocation.
                let mut items = Vec::with_capacity((n as usize).min(self.data.len() - self.pos));
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Amf0Value::StrictArray(items)
            }
            marker::DATE => {
                let millis = self.f64()?;
                let timezone = self.u16()? as i16;
                Amf0Value::Date { millis, timezone }
            }
            marker::LONG_STRING => {
                let n = self.u32()? as usize;
                Amf0Value::String(self.utf8(n)?)
            }
            marker::XML_DOCUMENT => {
                let n = self.u32()? as usize;
                Amf0Value::XmlDocument(self.utf8(n)?)
            }
            marker::TYPED_OBJECT => {
                let class = self.short_string()?;
                Amf0Value::TypedObject {
                    class,
                    properties: self.properties(depth + 1)?,
                }
            }
            marker::OBJECT_END => {
                self.pos = start;
                return Err(self.err(Amf0ErrorKind::StrayObjectEnd));
            }
            other => {
                // MOVIECLIP and REFERENCE are reserved/unsupported by the spec itself;
                // 0x11 switches to AMF3, which RTMP publishers do not send in AMF0 messages.
                let _ = (marker::MOVIECLIP, marker::REFERENCE);
                self.pos = start;
                return Err(self.err(Amf0ErrorKind::UnsupportedMarker(other)));
            }
        })
    }

    fn enter(&self, depth: u32) -> Result<(), Amf0Error> {
        if depth > self.limits.max_depth {
            return Err(self.err(Amf0ErrorKind::TooDeep(self.limits.max_depth)));
        }
        Ok(())
    }

    fn properties(&mut self, depth: u32) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
        self.enter(depth)?;
        let mut props = Vec::new();
        loop {
            let key = self.short_string()?;
            if key.is_empty() && self.data.get(self.pos) == Some(&marker::OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            let v = self.value(depth)?;
            props.push((key, v));
        }
    }
}

/// Decodes every value in `data` (a command or data message payload).
pub fn decode_all(data: &[u8], limits: Amf0Limits) -> Result<Vec<Amf0Value>, Amf0Error> {
    let mut d = Decoder {
        data,
        pos: 0,
        limits,
        values: 0,
    };
    let mut out = Vec::new();
    while d.pos < data.len() {
        out.push(d.value(0)?);
    }
    Ok(out)
}

fn put_short_string(out: &mut BytesMut, s: &str) {
    // Keys and short strings longer than u16 cannot be AMF0-encoded; cut them on a
    // character boundary rather than emit a corrupt length.
    let end = s.floor_char_boundary(u16::MAX as usize);
    out.put_u16(end as u16);
    out.put_slice(&s.as_bytes()[..end]);
}

fn put_properties(out: &mut BytesMut, props: &[(String, Amf0Value)]) {
    for (k, v) in props {
        put_short_string(out, k);
        encode(out, v);
    }
    out.put_u16(0);
    out.put_u8(marker::OBJECT_END);
}

/// Appends the AMF0 encoding of `v` to `out`.
pub fn encode(out: &mut BytesMut, v: &Amf0Value) {
    match v {
        Amf0Value::Number(n) => {
            out.put_u8(marker::NUMBER);
            out.put_f64(*n);
        }
        Amf0Value::Boolean(b) => {
            out.put_u8(marker::BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Amf0Value::String(s) if s.len() <= u16::MAX as usize => {
            out.put_u8(marker::STRING);
            put_short_string(out, s);
        }
        Amf0Value::String(s) => {
            out.put_u8(marker::LONG_STRING);
            out.put_u32(s.len().min(u32::MAX as usize) as u32);
            out.put_slice(s.as_bytes());
        }
        Amf0Value::Object(p) => {
            out.put_u8(marker::OBJECT);
            put_properties(out, p);
        }
        Amf0Value::Null => out.put_u8(marker::NULL),
        Amf0Value::Undefined => out.put_u8(marker::UNDEFINED),
        Amf0Value::EcmaArray(p) => {
            out.put_u8(marker::ECMA_ARRAY);
            out.put_u32(p.len() as u32);
            put_properties(out, p);
        }
        Amf0Value::StrictArray(items) => {
            out.put_u8(marker::STRICT_ARRAY);
            out.put_u32(items.len() as u32);
            for i in items {
                encode(out, i);
            }
        }
        Amf0Value::Date { millis, timezone } => {
            out.put_u8(marker::DATE);
            out.put_f64(*millis);
            out.put_i16(*timezone);
        }
        Amf0Value::XmlDocument(s) => {
            out.put_u8(marker::XML_DOCUMENT);
            out.put_u32(s.len() as u32);
            out.put_slice(s.as_bytes());
        }
        Amf0Value::TypedObject { class, properties } => {
            out.put_u8(marker::TYPED_OBJECT);
            put_short_string(out, class);
            put_properties(out, properties);
        }
    }
}

/// Builds an AMF0 object from `(key, value)` pairs.
pub fn object<const N: usize>(props: [(&str, Amf0Value); N]) -> Amf0Value {
    Amf0Value::Object(props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: Amf0Value) {
        let mut b = BytesMut::new();
        encode(&mut b, &v);
        assert_eq!(decode_all(&b, Amf0Limits::default()).unwrap(), vec![v]);
    }

    #[test]
    fn roundtrips_every_type() {
        roundtrip(Amf0Value::Number(1.5));
        roundtrip(Amf0Value::Boolean(true));
        roundtrip(Amf0Value::String("publish".into()));
        roundtrip(Amf0Value::String("x".repeat(70_000)));
        roundtrip(Amf0Value::Null);
        roundtrip(Amf0Value::Undefined);
        roundtrip(object([
            ("app", Amf0Value::String("live".into())),
            ("nested", object([("a", Amf0Value::Number(1.0))])),
        ]));
        roundtrip(Amf0Value::EcmaArray(vec![(
            "width".into(),
            Amf0Value::Number(1280.0),
        )]));
        roundtrip(Amf0Value::StrictArray(vec![
            Amf0Value::Number(1.0),
            Amf0Value::Null,
        ]));
        roundtrip(Amf0Value::Date {
            millis: 1.0e12,
            timezone: -60,
        });
    }

    /// The connect command ffmpeg 5.1 sent to `rtmp://127.0.0.1:19350/live/cam1`,
    /// reassembled from its two chunks in `tests/data/ffmpeg51_connect_chunks.bin`.
    #[test]
    fn decodes_ffmpeg_connect() {
        let payload = include_bytes!("../tests/data/ffmpeg51_connect.amf0");
        let v = decode_all(payload, Amf0Limits::default()).unwrap();
        assert_eq!(v[0].as_str(), Some("connect"));
        assert_eq!(v[1].as_f64(), Some(1.0));
        assert_eq!(v[2].get("app").and_then(|a| a.as_str()), Some("live"));
        assert_eq!(
            v[2].get("tcUrl").and_then(|a| a.as_str()),
            Some("rtmp://127.0.0.1:19350/live")
        );
        assert_eq!(
            v[2].get("flashVer").and_then(|a| a.as_str()),
            Some("FMLE/3.0 (compatible; Lavf59.27.100)")
        );
    }

    #[test]
    fn rejects_deep_nesting() {
        let mut b = BytesMut::new();
        for _ in 0..100 {
            b.put_u8(marker::OBJECT);
            b.put_u16(1);
            b.put_u8(b'a');
        }
        let e = decode_all(&b, Amf0Limits::default()).unwrap_err();
        assert_eq!(e.kind, Amf0ErrorKind::TooDeep(16));
    }

    #[test]
    fn rejects_huge_strict_array_without_allocating_it() {
        let mut b = BytesMut::new();
        b.put_u8(marker::STRICT_ARRAY);
        b.put_u32(u32::MAX);
        b.put_u8(marker::NULL);
        let e = decode_all(&b, Amf0Limits::default()).unwrap_err();
        assert_eq!(e.kind, Amf0ErrorKind::Truncated);
        let mut b = BytesMut::new();
        b.put_u8(marker::STRICT_ARRAY);
        b.put_u32(10_000);
        for _ in 0..10_000 {
            b.put_u8(marker::NULL);
        }
        let e = decode_all(&b, Amf0Limits::default()).unwrap_err();
        assert_eq!(e.kind, Amf0ErrorKind::TooManyValues(4096));
    }

    #[test]
    fn reports_offsets() {
        let e = decode_all(&[0x05, 0x05, 0x00, 0x01], Amf0Limits::default()).unwrap_err();
        assert_eq!(e.kind, Amf0ErrorKind::Truncated);
        assert_eq!(e.offset, 3);
        let e = decode_all(&[0x05, 0x11], Amf0Limits::default()).unwrap_err();
        assert_eq!(e.kind, Amf0ErrorKind::UnsupportedMarker(0x11));
        assert_eq!(e.offset, 1);
    }
}
