//! The active speaker large, everyone else in a strip of thumbnails along the
//! bottom. When nobody speaks, the last speaker (read back from the previous
//! scene) keeps the stage, so the picture does not jump at every pause; at the
//! start it is the first to have joined.
//!
//! Config: `strip` (the strip's share of the canvas height in percent, default
//! 20), `max-thumbnails` (default 6; the rest are left out).

use edgerec_ext_sdk::config;
use edgerec_ext_sdk::layout::{ExtError, Fit, Layout, LayoutInput, Rect, Region, Scene, TrackKind};

struct Speaker;

fn number(key: &str, default: u32, max: u32) -> Result<u32, ExtError> {
    match config::get(key) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| ExtError::BadConfig(format!("{key} = {v:?}: expected 0..={max}"))),
    }
}

impl Layout for Speaker {
    fn compute(input: LayoutInput) -> Result<Vec<Scene>, ExtError> {
        let strip_pct = number("strip", 20, 50)?;
        let max_thumbs = number("max-thumbnails", 6, 64)?;
        let videos: Vec<(&str, u32)> = input
            .participants
            .iter()
            .filter_map(|p| {
                p.tracks
                    .iter()
                    .find(|t| t.kind == TrackKind::Video)
                    .map(|t| (p.id.as_str(), t.id))
            })
            .collect();
        let present = |id: &str| videos.iter().any(|(p, _)| *p == id);
        let previous_stage = input
            .previous
            .iter()
            .flat_map(|s| &s.regions)
            .find(|r| r.z == 0 && r.attrs.iter().any(|(k, v)| k == "role" && v == "stage"))
            .map(|r| r.participant.as_str());
        let stage = input
            .active_speaker
            .as_deref()
            .filter(|s| present(s))
            .or(previous_stage.filter(|s| present(s)))
            .or(videos.first().map(|(p, _)| *p));
        let Some(stage) = stage else {
            return Ok(vec![Scene {
                name: "speaker".into(),
                regions: vec![],
                attrs: vec![],
            }]);
        };
        let (w, h) = (input.canvas.width, input.canvas.height);
        let others: Vec<_> = videos
            .iter()
            .filter(|(p, _)| *p != stage)
            .take(max_thumbs as usize)
            .collect();
        let strip_h = if others.is_empty() {
            0
        } else {
            h * strip_pct / 100
        };
        let mut regions = Vec::with_capacity(1 + others.len());
        let stage_track = videos.iter().find(|(p, _)| *p == stage).map(|v| v.1);
        regions.push(Region {
            participant: stage.to_string(),
            track: stage_track.unwrap_or(0),
            rect: Rect {
                x: 0,
                y: 0,
                width: w,
                height: h - strip_h,
            },
            z: 0,
            fit: Fit::Contain,
            attrs: vec![("role".into(), "stage".into())],
        });
        if !others.is_empty() {
            let thumb_w = w / others.len() as u32;
            for (i, (p, t)) in others.iter().enumerate() {
                regions.push(Region {
                    participant: p.to_string(),
                    track: *t,
                    rect: Rect {
                        x: (i as u32 * thumb_w) as i32,
                        y: (h - strip_h) as i32,
                        width: thumb_w,
                        height: strip_h,
                    },
                    z: 1,
                    fit: Fit::Cover,
                    attrs: vec![("role".into(), "thumbnail".into())],
                });
            }
        }
        Ok(vec![Scene {
            name: "speaker".into(),
            regions,
            attrs: vec![],
        }])
    }
}

edgerec_ext_sdk::export_layout!(Speaker);
