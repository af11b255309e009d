//! Tags each finalized recording by its length and codecs, so the recordings
//! API can be filtered without opening files: `length` (`short`, `medium`,
//! `long`), `video-codec`, `audio-codec`, `recovered` (when the part was
//! recovered after a crash), and any fixed tags from config.
//!
//! Config: `short-ms` (default 60000) and `long-ms` (default 3600000) bound
//! the lengths; `tag.<key> = <value>` adds a fixed tag.

use edgerec_ext_sdk::config;
use edgerec_ext_sdk::hook::{Action, ExtError, FinalizedFile, Hook, TrackKind};

struct Tagger;

fn ms(key: &str, default: u64) -> Result<u64, ExtError> {
    config::get(key).map_or(Ok(default), |v| {
        v.parse()
            .map_err(|_| ExtError::BadConfig(format!("{key} = {v:?}: expected milliseconds")))
    })
}

impl Hook for Tagger {
    fn on_finalized(file: FinalizedFile) -> Result<Vec<Action>, ExtError> {
        let (short, long) = (ms("short-ms", 60_000)?, ms("long-ms", 3_600_000)?);
        let length = match file.duration_ms {
            d if d < short => "short",
            d if d >= long => "long",
            _ => "medium",
        };
        let mut tags = vec![("length".to_string(), length.to_string())];
        for (kind, key) in [
            (TrackKind::Video, "video-codec"),
            (TrackKind::Audio, "audio-codec"),
        ] {
            if let Some(t) = file.recording.tracks.iter().find(|t| t.kind == kind) {
                tags.push((key.to_string(), t.codec.clone()));
            }
        }
        if file.recovered {
            tags.push(("recovered".into(), "true".into()));
        }
        for (k, v) in config::all() {
            if let Some(tag) = k.strip_prefix("tag.") {
                tags.push((tag.to_string(), v));
            }
        }
        Ok(vec![Action::Tag(tags)])
    }
}

edgerec_ext_sdk::export_hook!(Tagger);
