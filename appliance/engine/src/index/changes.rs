//! What hooks changed about a recording (tags, a part's new path, a deleted
//! part) and the hook runs queued for its parts.
//!
//! Kept apart from the recorder's row, in trees of their own: a recorder commits
//! its whole row whenever a part starts or ends, and a hook acting on part 1
//! while part 2 is being written must not be overwritten by it (nor overwrite
//! it). Reads merge the two ([`Changes::apply`]); each change is one atomic
//! per-key update (sled's compare-and-swap loop), so two hooks on one
//! recording never lose each other's work.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::record::{PartState, Recording};

/// The hooks' side of one recording.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// Tags added by hooks; they win over the recorder's tags of the same key.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub parts: BTreeMap<u32, PartChange>,
}

/// What hooks did to one part's file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PartChange {
    /// Where the file is now, relative to the recordings root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Set before a move and cleared after it: a crash in between leaves the
    /// file at one of the two places, and start-up finishes the move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moving_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<DeleteState>,
    /// The extension that made the last change.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub by: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeleteState {
    /// Marked before the unlink; start-up finishes it.
    Deleting,
    Deleted,
}

impl Changes {
    /// `rec` as hooks left it.
    pub fn apply(&self, rec: &mut Recording) {
        for (k, v) in &self.tags {
            rec.tags.insert(k.clone(), v.clone());
        }
        for part in &mut rec.parts {
            let Some(c) = self.parts.get(&part.index) else {
                continue;
            };
            if let Some(p) = &c.path {
                part.path = p.clone();
            }
            if c.delete.is_some() {
                part.state = PartState::Deleted;
            }
        }
    }
}

/// One hook's run on one part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookRun {
    pub part: u32,
    pub extension: String,
    pub state: HookState,
    /// Calls made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending runs that failed once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// What the hook's actions did, in order (`tag length=short`, `webhook
    /// http://... 204`), from its last attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookState {
    /// Queued, or waiting for a retry.
    Pending,
    /// Every action was carried out.
    Done,
    /// Out of attempts, or the extension is gone or disabled; `last_error` says.
    Failed,
    /// Not run: an earlier hook deleted the part.
    Skipped,
}

/// The hooks queued for one part, run in order (each sees what the previous
/// did: a rename, then a webhook announcing the new path).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookJob {
    pub recording: String,
    pub part: u32,
    /// Whether the part was recovered after a crash rather than finished.
    pub recovered: bool,
    pub runs: Vec<HookRun>,
}

impl HookJob {
    pub fn new(recording: &str, part: u32, recovered: bool, hooks: &[String]) -> HookJob {
        HookJob {
            recording: recording.to_owned(),
            part,
            recovered,
            runs: hooks
                .iter()
                .map(|ext| HookRun {
                    part,
                    extension: ext.clone(),
                    state: HookState::Pending,
                    attempts: 0,
                    next_attempt_at: None,
                    last_error: None,
                    actions: Vec::new(),
                    finished_at: None,
                })
                .collect(),
        }
    }

    /// Whether any run still waits.
    pub fn pending(&self) -> bool {
        self.runs.iter().any(|r| r.state == HookState::Pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_job_is_pending_for_every_hook_in_order() {
        let j = HookJob::new("01J", 2, false, &["a".into(), "b".into()]);
        assert!(j.pending());
        assert_eq!(j.runs[0].extension, "a");
        assert_eq!(j.runs[1].part, 2);
        let mut done = j.clone();
        for r in &mut done.runs {
            r.state = HookState::Done;
        }
        assert!(!done.pending());
    }
}
