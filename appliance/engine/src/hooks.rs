//! Hooks: after a part is finalized (or recovered at start), every hook
//! extension bound to its stream is called with the file, off the media path,
//! and the host carries out the actions it returns — in place of the shell
//! scripts other servers run after a recording.
//!
//! - **Durable queue.** The recorder writes a [`HookJob`] for the part before
//!   its finalize commit (one flush for both); the runner resumes every pending
//!   job at start, so a hook is never lost to a restart or a power cut.
//! - **Order.** A part's hooks run one after another in config order, each
//!   seeing what the previous did (a rename, then a webhook with the new
//!   path). A hook's actions run in order; the first that fails ends the
//!   attempt, and the hook is called again after a backoff (doubling, at most
//!   10 minutes) until `extensions.hook_attempts`, then marked failed. A retry
//!   starts from the part as it is then, so a pure hook's rename or tag is not
//!   done twice; a webhook may be (delivery is at least once).
//! - **Crash-safe file actions.** A move or delete is written down before it is
//!   done and marked done after (see [`crate::index::PartChange`]); start-up
//!   finishes whatever a crash cut short ([`finish_interrupted`]).
//! - **Nothing escapes.** Paths went through the extension host's checks
//!   (relative, no `..`) and go through the built-in sanitizer here; webhooks
//!   only to the extension's `webhook_allow` prefixes, redirects not followed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use edgerec_ext::{Action, ExtError, Webhook};
use tokio::sync::{mpsc, Semaphore};
use tracing::{error, info, warn};

use crate::durable;
use crate::index::{
    DeleteState, HookJob, HookState, Index, IndexError, Part, PartState, Recording,
};
use crate::Shared;

/// The longest wait between two attempts of a hook.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// The recorder's side: queue a finalized part's hooks, wake the runner.
pub struct HookQueue {
    wake: mpsc::UnboundedSender<(String, u32)>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<(String, u32)>>>,
}

impl Default for HookQueue {
    fn default() -> Self {
        let (wake, rx) = mpsc::unbounded_channel();
        HookQueue {
            wake,
            rx: Mutex::new(Some(rx)),
        }
    }
}

impl HookQueue {
    /// Writes the job for part `part` of `rec` if hooks are bound to its stream
    /// (not flushed: the caller's commit makes it durable with the part). Call
    /// [`HookQueue::wake`] after that commit.
    pub fn enqueue(
        shared: &Shared,
        rec: &Recording,
        part: u32,
        recovered: bool,
    ) -> Result<bool, IndexError> {
        let hooks: Vec<String> = shared
            .extensions
            .hooks_for(&rec.stream)
            .iter()
            .map(|e| e.id().to_owned())
            .collect();
        if hooks.is_empty() {
            return Ok(false);
        }
        shared
            .index
            .put_hook_job(&HookJob::new(&rec.id, part, recovered, &hooks))?;
        Ok(true)
    }

    /// Tells the runner a job is ready.
    pub fn wake(&self, recording: &str, part: u32) {
        let _ = self.wake.send((recording.to_owned(), part));
    }
}

/// Starts the runner on the current tokio runtime (the control plane's) and
/// resumes every job left pending.
pub fn start(shared: &Arc<Shared>) -> Result<(), crate::EngineError> {
    let Some(rx) = shared
        .hooks
        .rx
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    else {
        return Ok(());
    };
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|e| crate::EngineError::Unavailable(format!("hooks need a tokio runtime: {e}")))?;
    let cfg = &shared.config.extensions;
    let http = reqwest::Client::builder()
        .timeout(cfg.webhook_timeout.0)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("edgerec/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            // No trust roots on the machine, say: webhooks fail (and are
            // retried, then reported) but every other action still runs.
            let e = format!("webhook client unavailable: {}", error_chain(&e));
            warn!("{e}");
            e
        });
    let runner = Arc::new(Runner {
        shared: shared.clone(),
        http,
        permits: Arc::new(Semaphore::new(cfg.hook_concurrency.max(1) as usize)),
        running: Mutex::new(HashSet::new()),
    });
    let pending = shared.index.pending_hook_jobs()?;
    if !pending.is_empty() {
        info!(jobs = pending.len(), "resuming hook runs left pending");
    }
    for j in pending {
        shared.hooks.wake(&j.recording, j.part);
    }
    handle.spawn(runner.dispatch(rx));
    Ok(())
}

struct Runner {
    shared: Arc<Shared>,
    http: Result<reqwest::Client, String>,
    permits: Arc<Semaphore>,
    /// Jobs with a task: a second wake-up for one of them is dropped.
    running: Mutex<HashSet<(String, u32)>>,
}

/// Why an attempt failed, and whether another could help.
struct Failure {
    why: String,
    retry: bool,
}

impl Runner {
    async fn dispatch(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<(String, u32)>) {
        while let Some(key) = rx.recv().await {
            if !self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.clone())
            {
                continue;
            }
            let r = self.clone();
            tokio::spawn(async move {
                r.run_job(&key.0, key.1).await;
                r.running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
            });
        }
    }

    /// Runs a part's pending hooks in order, waiting out backoffs, until none
    /// is pending.
    async fn run_job(&self, id: &str, part: u32) {
        let index = &self.shared.index;
        loop {
            let job = match index.hook_job(id, part) {
                Ok(Some(j)) => j,
                Ok(None) => return,
                Err(e) => {
                    error!(recording = id, part, error = %e, "hook job unreadable");
                    return;
                }
            };
            let Some(i) = job.runs.iter().position(|r| r.state == HookState::Pending) else {
                return;
            };
            if let Some(at) = job.runs[i].next_attempt_at {
                tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default()).await;
            }
            let Ok(_permit) = self.permits.acquire().await else {
                return;
            };
            // The recording may have been deleted while this waited.
            let Some(job) = self.attempt(job, i).await else {
                return;
            };
            if let Err(e) = index.put_hook_job(&job) {
                error!(recording = id, part, error = %e, "hook state not saved");
                return;
            }
            if let Err(e) = index.flush().await {
                error!(recording = id, part, error = %e, "hook state not saved");
                return;
            }
        }
    }

    /// One call of run `i`; the job with its outcome, or `None` if the
    /// recording is gone.
    async fn attempt(&self, mut job: HookJob, i: usize) -> Option<HookJob> {
        let rec = match self.shared.index.get(&job.recording) {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                error!(recording = %job.recording, error = %e, "hook: recording unreadable");
                return None;
            }
        };
        let ext_id = job.runs[i].extension.clone();
        let part = rec.parts.iter().find(|p| p.index == job.part).cloned();
        let outcome = match part {
            None => Err((
                vec![],
                Failure {
                    why: format!("part {} is not in the recording", job.part),
                    retry: false,
                },
            )),
            Some(p) if p.state == PartState::Deleted => {
                for r in job.runs[i..]
                    .iter_mut()
                    .filter(|r| r.state == HookState::Pending)
                {
                    r.state = HookState::Skipped;
                    r.last_error = Some("the part was deleted by an earlier hook".into());
                    r.finished_at = Some(Utc::now());
                }
                return Some(job);
            }
            Some(p) => self.call(&rec, &p, job.recovered, &ext_id).await,
        };
        let cfg = &self.shared.config.extensions;
        let run = &mut job.runs[i];
        run.attempts += 1;
        match outcome {
            Ok(actions) => {
                info!(recording = %rec.id, part = job.part, extension = ext_id, attempt = run.attempts, actions = ?actions, "hook done");
                run.state = HookState::Done;
                run.actions = actions;
                run.last_error = None;
                run.next_attempt_at = None;
                run.finished_at = Some(Utc::now());
            }
            Err((actions, f)) => {
                run.actions = actions;
                run.last_error = Some(f.why.clone());
                if f.retry && run.attempts < cfg.hook_attempts.max(1) {
                    let wait = backoff(cfg.hook_backoff.0, run.attempts);
                    warn!(recording = %rec.id, part = job.part, extension = ext_id, attempt = run.attempts, retry_in_ms = wait.as_millis() as u64, error = %f.why, "hook failed; will retry");
                    run.next_attempt_at =
                        Some(Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default());
                } else {
                    error!(recording = %rec.id, part = job.part, extension = ext_id, attempts = run.attempts, error = %f.why, "hook failed for good");
                    run.state = HookState::Failed;
                    run.next_attempt_at = None;
                    run.finished_at = Some(Utc::now());
                }
            }
        }
        Some(job)
    }

    /// Calls the extension and carries out its actions: what they did, or the
    /// failure with what was done before it.
    async fn call(
        &self,
        rec: &Recording,
        part: &Part,
        recovered: bool,
        ext_id: &str,
    ) -> Result<Vec<String>, (Vec<String>, Failure)> {
        let Some(ext) = self.shared.extensions.get(ext_id) else {
            // It may be installed again (an upload replacing it) before the
            // next attempt.
            return Err((
                vec![],
                Failure {
                    why: format!("extension {ext_id} is not loaded"),
                    retry: true,
                },
            ));
        };
        let file = crate::extensions::finalized_file(rec, part, recovered);
        let answer = tokio::task::spawn_blocking(move || ext.on_finalized(&file)).await;
        let actions = match answer {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                let retry = !matches!(e, ExtError::Disabled { .. });
                return Err((
                    vec![],
                    Failure {
                        why: format!("{} ({})", e, e.kind()),
                        retry,
                    },
                ));
            }
            Err(e) => {
                return Err((
                    vec![],
                    Failure {
                        why: format!("hook task: {e}"),
                        retry: true,
                    },
                ))
            }
        };
        self.carry_out(rec, part, ext_id, actions).await
    }

    async fn carry_out(
        &self,
        rec: &Recording,
        part: &Part,
        ext_id: &str,
        actions: Vec<Action>,
    ) -> Result<Vec<String>, (Vec<String>, Failure)> {
        let mut done = Vec::new();
        let mut current = PathBuf::from(&part.path);
        let container = current
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut deleted = false;
        for a in actions {
            let r = match a {
                Action::Rename(_) | Action::MoveTo(_) if deleted => {
                    Err("the part was deleted by an earlier action".to_string())
                }
                Action::Rename(name) => {
                    let to = current.parent().unwrap_or(Path::new("")).join(name);
                    self.move_part(rec, part.index, ext_id, &current, &to, &container)
                        .await
                        .map(|to| {
                            let s = format!("rename {}", to.display());
                            current = to;
                            s
                        })
                }
                Action::MoveTo(path) => self
                    .move_part(
                        rec,
                        part.index,
                        ext_id,
                        &current,
                        Path::new(&path),
                        &container,
                    )
                    .await
                    .map(|to| {
                        let s = format!("move-to {}", to.display());
                        current = to;
                        s
                    }),
                Action::Delete if deleted => Ok("delete (already)".to_string()),
                Action::Delete => {
                    deleted = true;
                    self.delete_part(rec, part.index, ext_id, &current)
                        .await
                        .map(|()| format!("delete {}", current.display()))
                }
                Action::Tag(tags) => self.tag(rec, &tags).await.map(|()| {
                    let list: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("tag {}", list.join(" "))
                }),
                Action::Webhook(w) => self.webhook(&w).await,
            };
            match r {
                Ok(s) => done.push(s),
                Err(why) => return Err((done, Failure { why, retry: true })),
            }
        }
        Ok(done)
    }

    /// Moves the part's file, written down first so a crash in between is
    /// finished at start. The path it ends at.
    async fn move_part(
        &self,
        rec: &Recording,
        part: u32,
        by: &str,
        from: &Path,
        to: &Path,
        container: &str,
    ) -> Result<PathBuf, String> {
        let to = crate::extensions::sanitized(&self.shared.sanitizer, to, container);
        if to == from {
            return Ok(to);
        }
        let (f, t) = (path_str(from), path_str(&to));
        self.change(&rec.id, |c| {
            let p = c.parts.entry(part).or_default();
            p.moving_from = Some(f.clone());
            p.path = Some(t.clone());
            p.by = by.to_owned();
        })
        .await?;
        let root = self.shared.root.clone();
        let (from_rel, to_rel) = (from.to_path_buf(), to.clone());
        let moved =
            tokio::task::spawn_blocking(move || durable::move_durable(&root, &from_rel, &to_rel))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
        match moved {
            Ok(()) => {
                self.change(&rec.id, |c| {
                    c.parts.entry(part).or_default().moving_from = None;
                })
                .await?;
                Ok(to)
            }
            Err(e) => {
                self.change(&rec.id, |c| {
                    let p = c.parts.entry(part).or_default();
                    p.moving_from = None;
                    p.path = Some(f.clone());
                })
                .await?;
                Err(format!("moving {f} to {t}: {e}"))
            }
        }
    }

    /// Deletes the part's file: marked, unlinked, marked done.
    async fn delete_part(
        &self,
        rec: &Recording,
        part: u32,
        by: &str,
        path: &Path,
    ) -> Result<(), String> {
        self.change(&rec.id, |c| {
            let p = c.parts.entry(part).or_default();
            p.delete = Some(DeleteState::Deleting);
            p.by = by.to_owned();
        })
        .await?;
        let root = self.shared.root.clone();
        let rel = path.to_path_buf();
        tokio::task::spawn_blocking(move || durable::delete_durable(&root, &rel))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("deleting {}: {e}", path.display()))?;
        self.change(&rec.id, |c| {
            c.parts.entry(part).or_default().delete = Some(DeleteState::Deleted);
        })
        .await
    }

    async fn tag(&self, rec: &Recording, tags: &[(String, String)]) -> Result<(), String> {
        self.change(&rec.id, |c| {
            for (k, v) in tags {
                c.tags.insert(k.clone(), v.clone());
            }
        })
        .await
    }

    /// One atomic change to the recording's hook overlay, made durable.
    async fn change(&self, id: &str, f: impl Fn(&mut crate::index::Changes)) -> Result<(), String> {
        let index = &self.shared.index;
        index.update_changes(id, f).map_err(|e| e.to_string())?;
        index.flush().await.map_err(|e| e.to_string())
    }

    async fn webhook(&self, w: &Webhook) -> Result<String, String> {
        let http = self.http.as_ref().map_err(|e| e.clone())?;
        let mut req = http
            .post(&w.url)
            .header(reqwest::header::CONTENT_TYPE, &w.content_type)
            .body(w.body.clone());
        for (k, v) in &w.headers {
            req = req.header(k, v);
        }
        // Never log the headers: they carry the receiver's credentials.
        let resp = req
            .send()
            .await
            .map_err(|e| format!("webhook {}: {}", w.url, error_chain(&e)))?;
        let status = resp.status();
        if status.is_success() {
            Ok(format!("webhook {} {}", w.url, status.as_u16()))
        } else {
            Err(format!("webhook {} answered {status}", w.url))
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The wait after attempt `n` (1-based): `first`, doubled each time.
fn backoff(first: Duration, n: u32) -> Duration {
    first
        .saturating_mul(1u32 << n.saturating_sub(1).min(20))
        .min(MAX_BACKOFF)
}

/// Finishes hook moves and deletes that a crash cut short: a move whose file is
/// at its target is marked done, one whose file is still at its source is done
/// again; a delete is done again. Blocking; runs at start before recovery.
pub fn finish_interrupted(index: &Index, root: &Path) -> Result<usize, IndexError> {
    let mut n = 0;
    for (id, changes) in index.unfinished_changes()? {
        for (part, c) in changes.parts {
            if let (Some(from), Some(to)) = (&c.moving_from, &c.path) {
                let (from, to) = (PathBuf::from(from), PathBuf::from(to));
                let at = if root.join(&to).exists() {
                    to
                } else {
                    match durable::move_durable(root, &from, &to) {
                        Ok(()) => to,
                        Err(e) => {
                            warn!(recording = %id, part, error = %e, "an interrupted hook move could not be finished; the part stays where it was");
                            from
                        }
                    }
                };
                let at = path_str(&at);
                index.update_changes(&id, |c| {
                    let p = c.parts.entry(part).or_default();
                    p.moving_from = None;
                    p.path = Some(at.clone());
                })?;
                n += 1;
            }
            if c.delete == Some(DeleteState::Deleting) {
                if let Some(path) = c.path.clone().or_else(|| {
                    index
                        .get(&id)
                        .ok()
                        .flatten()
                        .and_then(|r| r.parts.into_iter().find(|p| p.index == part))
                        .map(|p| p.path)
                }) {
                    if let Err(e) = durable::delete_durable(root, Path::new(&path)) {
                        warn!(recording = %id, part, error = %e, "an interrupted hook delete could not be finished");
                        continue;
                    }
                }
                index.update_changes(&id, |c| {
                    c.parts.entry(part).or_default().delete = Some(DeleteState::Deleted);
                })?;
                n += 1;
            }
        }
    }
    if n > 0 {
        index.flush_blocking()?;
        info!(
            changes = n,
            "finished hook moves and deletes interrupted by a crash"
        );
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_ten_minutes() {
        let s = Duration::from_secs(2);
        assert_eq!(backoff(s, 1), Duration::from_secs(2));
        assert_eq!(backoff(s, 2), Duration::from_secs(4));
        assert_eq!(backoff(s, 4), Duration::from_secs(16));
        assert_eq!(backoff(s, 40), MAX_BACKOFF);
    }

    /// A power cut between writing down a move and doing it, or between an
    /// unlink and marking it: start-up finishes both.
    #[test]
    fn start_up_finishes_interrupted_moves_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("recordings");
        std::fs::create_dir_all(root.join("live")).unwrap();
        std::fs::write(root.join("live/a.mp4"), b"a").unwrap();
        std::fs::write(root.join("live/b.mp4"), b"b").unwrap();
        std::fs::create_dir_all(root.join("moved")).unwrap();
        std::fs::write(root.join("moved/c.mp4"), b"c").unwrap();
        let index = Index::open(&dir.path().join("index")).unwrap();
        index
            .update_changes("R1", |c| {
                // Written down, not yet moved.
                let p = c.parts.entry(1).or_default();
                p.moving_from = Some("live/a.mp4".into());
                p.path = Some("archive/a.mp4".into());
                // Marked for deletion, not yet unlinked.
                let p = c.parts.entry(2).or_default();
                p.path = Some("live/b.mp4".into());
                p.delete = Some(DeleteState::Deleting);
                // Moved, not yet marked done.
                let p = c.parts.entry(3).or_default();
                p.moving_from = Some("live/c.mp4".into());
                p.path = Some("moved/c.mp4".into());
            })
            .unwrap();
        assert_eq!(finish_interrupted(&index, &root).unwrap(), 3);
        assert_eq!(std::fs::read(root.join("archive/a.mp4")).unwrap(), b"a");
        assert!(!root.join("live/a.mp4").exists());
        assert!(!root.join("live/b.mp4").exists());
        assert!(root.join("moved/c.mp4").exists());
        let c = index.changes("R1").unwrap();
        assert!(c.parts.values().all(|p| p.moving_from.is_none()));
        assert_eq!(c.parts[&2].delete, Some(DeleteState::Deleted));
        assert_eq!(c.parts[&1].path.as_deref(), Some("archive/a.mp4"));
        assert!(index.unfinished_changes().unwrap().is_empty());
        assert_eq!(finish_interrupted(&index, &root).unwrap(), 0);
    }
}
