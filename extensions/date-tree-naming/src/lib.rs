//! Files each recording part under the day it began and the camera it came from:
//! `<site>/<camera>/2026/11/21/130509-<id>-p1.mp4`.
//!
//! The camera is looked up from the extension's config: `camera.<stream name>`
//! gives the camera id for a stream (`camera.cam7 = "lobby-north"`); a stream
//! with no entry is filed under its own name, or refused when `strict = "true"`.
//! `site` (default `site`) is the first folder.

use edgerec_ext_sdk::config;
use edgerec_ext_sdk::naming::{ExtError, Naming, Recording};

struct DateTree;

impl Naming for DateTree {
    fn name(rec: Recording) -> Result<String, ExtError> {
        let camera = match config::get(&format!("camera.{}", rec.name)) {
            Some(id) => id,
            None if config::get("strict").as_deref() == Some("true") => {
                return Err(ExtError::BadInput(format!(
                    "no camera id for stream {:?} (set camera.{} in the extension's config)",
                    rec.stream, rec.name
                )));
            }
            None => rec.name.clone(),
        };
        let site = config::get("site").unwrap_or_else(|| "site".to_string());
        let (y, mo, d, h, mi, s) = edgerec_ext_sdk::utc(rec.started_unix_ms);
        Ok(format!(
            "{site}/{camera}/{y:04}/{mo:02}/{d:02}/{h:02}{mi:02}{s:02}-{id}-p{part}.{ext}",
            id = rec.id,
            part = rec.part,
            ext = rec.container,
        ))
    }
}

edgerec_ext_sdk::export_naming!(DateTree);
