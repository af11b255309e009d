//! Every participant's video in an even grid, in the order they joined: the
//! smallest grid of `cols x rows` cells (cols ≥ rows) that holds them all, each
//! cell 16:9-agnostic, the last row centred.
//!
//! Config: `gap` (pixels between cells, default 0), `fit` (`contain` default,
//! `cover`, `fill`).

use edgerec_ext_sdk::config;
use edgerec_ext_sdk::layout::{ExtError, Fit, Layout, LayoutInput, Rect, Region, Scene, TrackKind};

struct Grid;

pub fn fit_from_config() -> Result<Fit, ExtError> {
    match config::get("fit").as_deref() {
        None | Some("contain") => Ok(Fit::Contain),
        Some("cover") => Ok(Fit::Cover),
        Some("fill") => Ok(Fit::Fill),
        Some(other) => Err(ExtError::BadConfig(format!(
            "fit = {other:?}: expected contain, cover or fill"
        ))),
    }
}

impl Layout for Grid {
    fn compute(input: LayoutInput) -> Result<Vec<Scene>, ExtError> {
        let gap: u32 = match config::get("gap") {
            None => 0,
            Some(g) => g
                .parse()
                .map_err(|_| ExtError::BadConfig(format!("gap = {g:?}: expected pixels")))?,
        };
        let fit = fit_from_config()?;
        let videos: Vec<(String, u32)> = input
            .participants
            .iter()
            .flat_map(|p| {
                p.tracks
                    .iter()
                    .filter(|t| t.kind == TrackKind::Video)
                    .map(|t| (p.id.clone(), t.id))
            })
            .collect();
        let n = videos.len() as u32;
        if n == 0 {
            return Ok(vec![Scene {
                name: "grid".into(),
                regions: vec![],
                attrs: vec![],
            }]);
        }
        let cols = (1..=n).find(|c| c * c >= n).unwrap_or(1);
        let rows = n.div_ceil(cols);
        let (w, h) = (input.canvas.width, input.canvas.height);
        let cell_w = w.saturating_sub(gap * (cols + 1)) / cols;
        let cell_h = h.saturating_sub(gap * (rows + 1)) / rows;
        let regions = videos
            .into_iter()
            .enumerate()
            .map(|(i, (participant, track))| {
                let (i, row) = (i as u32 % cols, i as u32 / cols);
                let in_row = if row + 1 == rows {
                    n - row * cols
                } else {
                    cols
                };
                let offset = (cols - in_row) * (cell_w + gap) / 2;
                Region {
                    participant,
                    track,
                    rect: Rect {
                        x: (gap + offset + i * (cell_w + gap)) as i32,
                        y: (gap + row * (cell_h + gap)) as i32,
                        width: cell_w,
                        height: cell_h,
                    },
                    z: 0,
                    fit,
                    attrs: vec![],
                }
            })
            .collect();
        Ok(vec![Scene {
            name: "grid".into(),
            regions,
            attrs: vec![],
        }])
    }
}

edgerec_ext_sdk::export_layout!(Grid);
