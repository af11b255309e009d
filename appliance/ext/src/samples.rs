//! Sample inputs for each world: what an install's self-test calls a new
//! extension with, and a starting point for authors' fixtures.

use crate::bindings::{
    Canvas, Event, FinalizedFile, LayoutInput, Participant, Recording, Track, TrackKind,
};

pub fn recording() -> Recording {
    Recording {
        id: "01JDAXT3ZP8Q4M6V2W9KXCBR7N".into(),
        stream: "live/cam7".into(),
        app: "live".into(),
        name: "cam7".into(),
        protocol: "rtmp".into(),
        remote: Some("192.0.2.10:50412".into()),
        started_unix_ms: 1_795_266_309_000,
        part: 1,
        container: "mp4".into(),
        tracks: vec![
            Track {
                id: 0,
                kind: TrackKind::Video,
                codec: "h264".into(),
                attrs: vec![
                    ("width".into(), "1280".into()),
                    ("height".into(), "720".into()),
                ],
            },
            Track {
                id: 1,
                kind: TrackKind::Audio,
                codec: "aac".into(),
                attrs: vec![
                    ("sample-rate".into(), "48000".into()),
                    ("channels".into(), "2".into()),
                ],
            },
        ],
        tags: vec![],
        attrs: vec![],
    }
}

pub fn layout_input() -> LayoutInput {
    let person = |id: &str| Participant {
        id: id.into(),
        name: id.to_uppercase(),
        tracks: recording().tracks,
        attrs: vec![],
    };
    LayoutInput {
        event: Event::Join("carol".into()),
        canvas: Canvas {
            width: 1920,
            height: 1080,
            attrs: vec![],
        },
        participants: vec![person("alice"), person("bob"), person("carol")],
        active_speaker: Some("bob".into()),
        previous: vec![],
        attrs: vec![],
    }
}

pub fn finalized_file() -> FinalizedFile {
    FinalizedFile {
        path: "live/cam7/2026-11-21/cam7_20261121-130509_1.mp4".into(),
        size_bytes: 31_457_280,
        duration_ms: 95_000,
        recovered: false,
        recording: recording(),
        attrs: vec![],
    }
}
