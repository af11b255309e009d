//! An FLV file (as `ffmpeg -f flv` writes it) read into tags that share one buffer.

use bytes::Bytes;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SourceError {
    #[error("not an FLV file (no 'FLV' signature)")]
    NotFlv,
    #[error("FLV tag truncated at byte {0}")]
    Truncated(usize),
    #[error("the FLV file has no video or audio frames")]
    Empty,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagKind {
    Audio,
    Video,
    Script,
}

impl TagKind {
    /// The RTMP message type that carries this tag.
    pub fn message_type(self) -> u8 {
        match self {
            TagKind::Audio => 8,
            TagKind::Video => 9,
            TagKind::Script => 18,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Tag {
    pub kind: TagKind,
    /// Decode timestamp in milliseconds from the start of the file.
    pub ts_ms: u32,
    pub data: Bytes,
    /// A sequence header (codec configuration), not a coded frame.
    pub config: bool,
}

impl Tag {
    /// A coded audio or video frame (what a recording must contain).
    pub fn is_frame(&self) -> bool {
        !self.config && self.kind != TagKind::Script
    }
}

/// A whole source in memory. Publishers loop it: `period_ms` is one loop's length.
#[derive(Clone, Debug)]
pub struct Source {
    /// Script data (onMetaData), then codec configuration, sent once at publish.
    pub header: Vec<Tag>,
    /// Coded frames in decode order.
    pub frames: Vec<Tag>,
    pub period_ms: u32,
}

impl Source {
    pub fn parse(file: Bytes) -> Result<Source, SourceError> {
        if file.len() < 9 || &file[..3] != b"FLV" {
            return Err(SourceError::NotFlv);
        }
        let mut pos = u32::from_be_bytes([file[5], file[6], file[7], file[8]]) as usize + 4;
        let (mut header, mut frames) = (Vec::new(), Vec::new());
        while pos < file.len() {
            let h = file.get(pos..pos + 11).ok_or(SourceError::Truncated(pos))?;
            let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
            let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
            let body = pos + 11;
            if body + size + 4 > file.len() {
                return Err(SourceError::Truncated(pos));
            }
            let data = file.slice(body..body + size);
            let kind = match h[0] & 0x1f {
                8 => Some(TagKind::Audio),
                9 => Some(TagKind::Video),
                18 => Some(TagKind::Script),
                _ => None,
            };
            // AVC end of sequence: a looping publisher must not send it mid-stream.
            let end_of_sequence = kind == Some(TagKind::Video) && data.get(1) == Some(&2);
            if let Some(kind) = kind.filter(|_| !end_of_sequence) {
                let config = match kind {
                    // AVC/AAC packet type 0 is the sequence header.
                    TagKind::Video => data.len() > 1 && data[0] & 0x0f == 7 && data[1] == 0,
                    TagKind::Audio => data.len() > 1 && data[0] >> 4 == 10 && data[1] == 0,
                    TagKind::Script => false,
                };
                let tag = Tag {
                    kind,
                    ts_ms: ts,
                    data,
                    config,
                };
                if tag.is_frame() {
                    frames.push(tag);
                } else if frames.is_empty() {
                    header.push(tag);
                }
            }
            pos = body + size + 4;
        }
        if frames.is_empty() {
            return Err(SourceError::Empty);
        }
        // One loop lasts until the last video frame's end (a frame's worth past it);
        // audio beyond that would overlap the next loop's first frames.
        let video: Vec<u32> = frames
            .iter()
            .filter(|t| t.kind == TagKind::Video)
            .map(|t| t.ts_ms)
            .collect();
        let period_ms = match video.as_slice() {
            [.., a, b] => b + b.saturating_sub(*a).max(1),
            [a] => a + 40,
            [] => frames.iter().map(|t| t.ts_ms).max().unwrap_or(0) + 40,
        };
        frames.retain(|t| t.ts_ms < period_ms);
        Ok(Source {
            header,
            frames,
            period_ms,
        })
    }

    /// Frames (video, audio) a publisher sends in `duration_ms` from its start.
    pub fn frames_in(&self, duration_ms: u64) -> (u64, u64) {
        let (mut v, mut a) = (0, 0);
        let period = self.period_ms as u64;
        for t in &self.frames {
            let ts = t.ts_ms as u64;
            if ts >= duration_ms {
                continue;
            }
            let n = (duration_ms - ts).div_ceil(period);
            match t.kind {
                TagKind::Video => v += n,
                _ => a += n,
            }
        }
        (v, a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(kind: u8, ts: u32, body: &[u8]) -> Vec<u8> {
        let mut t = vec![kind];
        t.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        t.extend_from_slice(&ts.to_be_bytes()[1..]);
        t.push((ts >> 24) as u8);
        t.extend_from_slice(&[0, 0, 0]);
        t.extend_from_slice(body);
        t.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
        t
    }

    fn file(tags: &[Vec<u8>]) -> Bytes {
        let mut f = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        for t in tags {
            f.extend_from_slice(t);
        }
        Bytes::from(f)
    }

    #[test]
    fn splits_header_and_frames_and_counts_loops() {
        let f = file(&[
            tag(18, 0, b"\x02\x00\x0aonMetaData"),
            tag(9, 0, &[0x17, 0, 0, 0, 0, 1]),
            tag(8, 0, &[0xaf, 0, 0x12, 0x10]),
            tag(9, 0, &[0x17, 1, 0, 0, 0, 9]),
            tag(8, 10, &[0xaf, 1, 7]),
            tag(9, 40, &[0x27, 1, 0, 0, 0, 9]),
            tag(8, 85, &[0xaf, 1, 7]),
            tag(9, 40, &[0x17, 2, 0, 0, 0]),
        ]);
        let s = Source::parse(f).unwrap();
        assert_eq!(s.header.len(), 3);
        // The end of sequence is dropped, and audio past the loop's end.
        assert_eq!(s.frames.len(), 3);
        assert_eq!(s.period_ms, 80);
        // 200 ms: video at 0,40 of loops starting 0, 80, 160 → 5 (200 excluded).
        assert_eq!(s.frames_in(200), (5, 3));
    }

    #[test]
    fn rejects_truncated_and_foreign_files() {
        assert_eq!(
            Source::parse(Bytes::from_static(b"RIFF....")).unwrap_err(),
            SourceError::NotFlv
        );
        let mut f = file(&[tag(9, 0, &[0x17, 1, 0, 0, 0, 9])]).to_vec();
        f.truncate(f.len() - 6);
        assert!(matches!(
            Source::parse(Bytes::from(f)),
            Err(SourceError::Truncated(13))
        ));
    }
}
