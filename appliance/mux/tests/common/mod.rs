//! Shared by the muxer tests: the ffmpeg FLV capture as tracks and frames, and
//! an in-memory file the batches are applied to.
#![allow(dead_code)]

use bytes::Bytes;
use edgerec_media::{Frame, TrackInfo};
use edgerec_mux::{FileMuxer, Finish, Patch, PushOutcome, WriteBatch};
use edgerec_rtmp::flv::{FlvDemuxer, FlvOutput};

const FLV: &[u8] = include_bytes!("../../../rtmp/tests/data/x264_aac_320x240_1s.flv");

/// Tracks and frames of the fixture, in tag order.
pub fn fixture() -> (Vec<TrackInfo>, Vec<Frame>) {
    let file = Bytes::from_static(FLV);
    let mut d = FlvDemuxer::default();
    let mut out = Vec::new();
    let mut pos = 13;
    while pos + 11 <= file.len() {
        let t = file[pos];
        let size = u32::from_be_bytes([0, file[pos + 1], file[pos + 2], file[pos + 3]]) as usize;
        let ts = u32::from_be_bytes([file[pos + 7], file[pos + 4], file[pos + 5], file[pos + 6]]);
        let body = file.slice(pos + 11..pos + 11 + size);
        match t {
            8 => d.audio(ts as i64, body, &mut out).unwrap(),
            9 => d.video(ts as i64, body, &mut out).unwrap(),
            _ => {}
        }
        pos += 11 + size + 4;
    }
    let mut tracks = Vec::new();
    let mut frames = Vec::new();
    for o in out {
        match o {
            FlvOutput::Track(t) => tracks.push(t),
            FlvOutput::Frame(f) => frames.push(f),
            FlvOutput::Skipped(s) => panic!("{s}"),
        }
    }
    (tracks, frames)
}

/// Applies batches and a finish to an in-memory file, checking offsets line up.
pub fn apply(file: &mut Vec<u8>, b: &WriteBatch) {
    assert_eq!(b.offset, file.len() as u64);
    for c in &b.chunks {
        file.extend_from_slice(c);
    }
    assert_eq!(file.len() as u64, b.offset + b.len);
}

/// Applies a finish; `check` sees the file and each patch before it lands.
pub fn apply_finish_checked(file: &mut Vec<u8>, f: &Finish, check: impl Fn(&[u8], &Patch)) {
    assert_eq!(f.append_offset, file.len() as u64);
    for c in &f.append {
        file.extend_from_slice(c);
    }
    assert_eq!(file.len() as u64, f.len);
    for p in &f.patches {
        check(file, p);
        let at = p.offset as usize;
        file[at..at + p.bytes.len()].copy_from_slice(&p.bytes);
    }
}

pub fn apply_finish(file: &mut Vec<u8>, f: &Finish) {
    apply_finish_checked(file, f, |_, _| {});
}

/// Pushes every frame (each must be accepted) and applies the batches as they
/// come: the file so far and the batches. The caller finishes the file.
pub fn push_all(m: &mut FileMuxer, frames: &[Frame]) -> (Vec<u8>, Vec<WriteBatch>) {
    let mut file = Vec::new();
    let mut batches = Vec::new();
    for f in frames {
        assert_eq!(m.push(f.clone()), PushOutcome::Accepted);
        while let Some(b) = m.poll_write() {
            apply(&mut file, &b);
            batches.push(b);
        }
    }
    (file, batches)
}
