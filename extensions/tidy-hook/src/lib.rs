//! Keeps the recordings root tidy, as operators do today with a cron job and
//! `find -delete`: a part shorter than `min-ms` (default 2000) is deleted — a
//! publisher that connected by mistake, a camera that flapped — and every other
//! part is moved, under its own file name, into `folder` (default
//! `archive/{app}/{name}/{yyyy}-{mm}`; `{app}`, `{name}`, `{yyyy}`, `{mm}`,
//! `{dd}` come from the recording's start, UTC). A recovered part is always
//! kept, whatever its length: it is evidence of what happened.
//!
//! The host carries out the actions: the guest only says what it wants.

use edgerec_ext_sdk::config;
use edgerec_ext_sdk::hook::{Action, ExtError, FinalizedFile, Hook};

struct Tidy;

fn folder(template: &str, file: &FinalizedFile) -> String {
    let rec = &file.recording;
    let (y, m, d, ..) = edgerec_ext_sdk::utc(rec.started_unix_ms);
    template
        .replace("{app}", &rec.app)
        .replace("{name}", &rec.name)
        .replace("{yyyy}", &format!("{y:04}"))
        .replace("{mm}", &format!("{m:02}"))
        .replace("{dd}", &format!("{d:02}"))
}

impl Hook for Tidy {
    fn on_finalized(file: FinalizedFile) -> Result<Vec<Action>, ExtError> {
        let min_ms = match config::get("min-ms") {
            None => 2000,
            Some(v) => v.parse::<u64>().map_err(|_| {
                ExtError::BadConfig(format!("min-ms = {v:?}: expected milliseconds"))
            })?,
        };
        if file.duration_ms < min_ms && !file.recovered {
            return Ok(vec![Action::Delete]);
        }
        let template =
            config::get("folder").unwrap_or_else(|| "archive/{app}/{name}/{yyyy}-{mm}".into());
        let name = file.path.rsplit('/').next().unwrap_or(&file.path);
        let target = format!("{}/{name}", folder(&template, &file).trim_end_matches('/'));
        if target == file.path {
            return Ok(vec![]);
        }
        Ok(vec![Action::MoveTo(target)])
    }
}

edgerec_ext_sdk::export_hook!(Tidy);
