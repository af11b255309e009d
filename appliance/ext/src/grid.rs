//! The built-in grid: what a multi-participant recording is laid out with when
//! no layout extension is bound or the bound one fails.

use crate::bindings::{Fit, LayoutInput, Rect, Region, Scene, TrackKind};

/// Every video track in the smallest near-square grid that holds them all, in
/// join order, letterboxed.
pub fn grid(input: &LayoutInput) -> Vec<Scene> {
    let videos: Vec<(&str, u32)> = input
        .participants
        .iter()
        .flat_map(|p| {
            p.tracks
                .iter()
                .filter(|t| t.kind == TrackKind::Video)
                .map(move |t| (p.id.as_str(), t.id))
        })
        .collect();
    let n = videos.len() as u32;
    let mut regions = Vec::with_capacity(videos.len());
    if n > 0 {
        let cols = (1..=n).find(|c| c * c >= n).unwrap_or(1);
        let rows = n.div_ceil(cols);
        let (w, h) = (input.canvas.width / cols, input.canvas.height / rows);
        for (i, (p, t)) in videos.into_iter().enumerate() {
            let i = i as u32;
            regions.push(Region {
                participant: p.to_string(),
                track: t,
                rect: Rect {
                    x: ((i % cols) * w) as i32,
                    y: ((i / cols) * h) as i32,
                    width: w,
                    height: h,
                },
                z: 0,
                fit: Fit::Contain,
                attrs: vec![],
            });
        }
    }
    vec![Scene {
        name: "grid".into(),
        regions,
        attrs: vec![("builtin".into(), "true".into())],
    }]
}

#[cfg(test)]
mod tests {
    #[test]
    fn three_people_in_two_columns() {
        let scenes = super::grid(&crate::samples::layout_input());
        let r = &scenes[0].regions;
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].rect.width, r[0].rect.height), (960, 540));
        assert_eq!((r[2].rect.x, r[2].rect.y), (0, 540));
        crate::output::scenes(&scenes, &crate::samples::layout_input()).unwrap();
    }
}
