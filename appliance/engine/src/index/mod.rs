//! The recordings index, in sled.
//!
//! Trees: `recordings` (id → JSON record; ids are ULIDs, so this tree is also the
//! time index), `by_stream` (stream \0 id → ()), `fragments` (id, part, media ms →
//! file offset and size, for time-range extraction without parsing files),
//! `changes` (id → what hooks changed: tags, moved or deleted parts) and `hooks`
//! (id, part → the hook runs queued for that part), `meta` (schema version).
//! Reads merge `changes` and `hooks` into the record (see [`changes`]).
//!
//! No sled transactions: in sled 0.34 a transaction takes a process-wide write lock
//! that deadlocks against a concurrent flush (seen with 50 feeds starting at once:
//! both shards stuck in `TransactionalTrees::stage` while `flush_async` held the read
//! side). A record and its stream key are written in an order that makes a torn
//! pair harmless instead: lookups by stream skip keys without a record.
//!
//! Durability: callers write media, sync it and its directory, and only then
//! [`Index::put`] + [`Index::flush`]: an index row never points at data that is not
//! on disk.
//!
//! Flushes go through one committer thread that makes a single blocking
//! `Db::flush` for every request queued while the previous one ran (group commit).
//! sled 0.34's `flush_async` parks a blocked task per call on sled's own small
//! thread pool, and with more concurrent callers than pool threads the writes that
//! would complete them never get a thread (spacejam/sled#1308; seen here at 1000
//! feeds: every sled-io thread waiting in `make_stable`, every publish stalled).

mod changes;
mod record;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use thiserror::Error;
use ulid::Ulid;

pub use changes::{Changes, DeleteState, HookJob, HookRun, HookState, PartChange};
pub use record::{FrameCounts, Part, PartState, Recording, RecordingState, TrackRecord};

const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum IndexError {
    #[error("index storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("index record {0} is corrupt: {1}")]
    Corrupt(String, serde_json::Error),
    #[error("index schema version {0} is newer than this edgerec understands ({SCHEMA_VERSION})")]
    TooNew(u32),
    #[error("index flush: {0}")]
    Flush(String),
}

/// Filters for [`Index::list`].
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub stream: Option<String>,
    /// Recordings that were live at or after this time...
    pub from: Option<DateTime<Utc>>,
    /// ...and started at or before this time.
    pub to: Option<DateTime<Utc>>,
    pub state: Option<RecordingState>,
    pub limit: Option<usize>,
}

#[derive(Clone)]
pub struct Index {
    db: sled::Db,
    recordings: sled::Tree,
    by_stream: sled::Tree,
    fragments: sled::Tree,
    changes: sled::Tree,
    hooks: sled::Tree,
    committer: Arc<Committer>,
}

type FlushReply = tokio::sync::oneshot::Sender<Result<(), String>>;

/// The group-commit thread's queue. The last [`Index`] clone to go closes the queue
/// and joins the thread, so the database is closed (and its lock released) when
/// the index is.
struct Committer {
    queue: Option<std::sync::mpsc::Sender<FlushReply>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// When the flush running now began (liveness: a flush that never returns
    /// stalls every feed while the API still answers).
    busy_since: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.queue = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Committer {
    fn start(db: sled::Db) -> std::io::Result<Committer> {
        let (tx, rx) = std::sync::mpsc::channel::<FlushReply>();
        let busy_since = Arc::new(std::sync::Mutex::new(None));
        let busy = busy_since.clone();
        let stamp = move |at: Option<std::time::Instant>| {
            *busy.lock().unwrap_or_else(|e| e.into_inner()) = at;
        };
        let thread = std::thread::Builder::new()
            .name("index-commit".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    // Everyone queued now wrote before asking: one flush covers them all.
                    let mut waiting = vec![first];
                    waiting.extend(rx.try_iter());
                    stamp(Some(std::time::Instant::now()));
                    let r = db.flush().map(drop).map_err(|e| e.to_string());
                    stamp(None);
                    for w in waiting {
                        let _ = w.send(r.clone());
                    }
                }
            })?;
        Ok(Committer {
            queue: Some(tx),
            thread: Some(thread),
            busy_since,
        })
    }
}

fn stream_key(stream: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.len() + 1 + id.len());
    k.extend_from_slice(stream.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

impl Index {
    pub fn open(dir: &Path) -> Result<Index, IndexError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(64 << 20)
            .flush_every_ms(Some(500))
            .open()?;
        let meta = db.open_tree("meta")?;
        match meta.get("schema_version")? {
            None => {
                meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
            }
            Some(v) => {
                let v = u32::from_be_bytes(v.as_ref().try_into().unwrap_or([0xff; 4]));
                if v > SCHEMA_VERSION {
                    return Err(IndexError::TooNew(v));
                }
                // Upgrades from older versions go here, one step per version.
            }
        }
        let committer = Committer::start(db.clone())
            .map_err(|e| IndexError::Flush(format!("starting the commit thread: {e}")))?;
        Ok(Index {
            recordings: db.open_tree("recordings")?,
            by_stream: db.open_tree("by_stream")?,
            fragments: db.open_tree("fragments")?,
            changes: db.open_tree("changes")?,
            hooks: db.open_tree("hooks")?,
            db,
            committer: Arc::new(committer),
        })
    }

    /// Inserts or replaces a recording.
    pub fn put(&self, r: &Recording) -> Result<(), IndexError> {
        let value = serde_json::to_vec(r).map_err(|e| IndexError::Corrupt(r.id.clone(), e))?;
        // Stream key first: a crash between the two leaves a key that lookups skip,
        // never a record its stream cannot find.
        self.by_stream.insert(stream_key(&r.stream, &r.id), &[])?;
        self.recordings.insert(r.id.as_bytes(), value)?;
        Ok(())
    }

    /// A recording as hooks left it (tags, moved and deleted parts, hook runs).
    pub fn get(&self, id: &str) -> Result<Option<Recording>, IndexError> {
        self.recordings
            .get(id.as_bytes())?
            .map(|v| self.merged(id, &v))
            .transpose()
    }

    /// The record with the hooks' changes and runs applied.
    fn merged(&self, id: &str, v: &[u8]) -> Result<Recording, IndexError> {
        let mut r = decode(id, v)?;
        self.changes(id)?.apply(&mut r);
        let jobs = self.hook_jobs(id)?;
        r.hooks = jobs.into_iter().flat_map(|j| j.runs).collect();
        Ok(r)
    }

    /// What hooks changed about a recording (empty if nothing).
    pub fn changes(&self, id: &str) -> Result<Changes, IndexError> {
        match self.changes.get(id.as_bytes())? {
            None => Ok(Changes::default()),
            Some(v) => {
                serde_json::from_slice(&v).map_err(|e| IndexError::Corrupt(id.to_owned(), e))
            }
        }
    }

    /// Changes a recording's [`Changes`] atomically: `f` may be called more than
    /// once (when a concurrent update won the race), so it must only compute.
    pub fn update_changes(
        &self,
        id: &str,
        f: impl Fn(&mut Changes),
    ) -> Result<Changes, IndexError> {
        let mut out = Changes::default();
        let mut corrupt = None;
        self.changes.update_and_fetch(id.as_bytes(), |old| {
            let mut c: Changes = match old.map(serde_json::from_slice) {
                None => Changes::default(),
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    corrupt = Some(e);
                    Changes::default()
                }
            };
            f(&mut c);
            out = c.clone();
            serde_json::to_vec(&c).ok()
        })?;
        if let Some(e) = corrupt {
            tracing::warn!(recording = id, error = %e, "hook changes were unreadable and are replaced");
        }
        Ok(out)
    }

    /// Queues (or replaces) a part's hook runs.
    pub fn put_hook_job(&self, job: &HookJob) -> Result<(), IndexError> {
        let v =
            serde_json::to_vec(job).map_err(|e| IndexError::Corrupt(job.recording.clone(), e))?;
        self.hooks.insert(hook_key(&job.recording, job.part), v)?;
        Ok(())
    }

    pub fn hook_job(&self, id: &str, part: u32) -> Result<Option<HookJob>, IndexError> {
        self.hooks
            .get(hook_key(id, part))?
            .map(|v| serde_json::from_slice(&v).map_err(|e| IndexError::Corrupt(id.to_owned(), e)))
            .transpose()
    }

    /// A recording's hook jobs, by part.
    pub fn hook_jobs(&self, id: &str) -> Result<Vec<HookJob>, IndexError> {
        let mut out = Vec::new();
        for v in self.hooks.scan_prefix(id.as_bytes()).values() {
            match serde_json::from_slice(&v?) {
                Ok(j) => out.push(j),
                Err(e) => tracing::warn!(recording = id, error = %e, "unreadable hook job skipped"),
            }
        }
        Ok(out)
    }

    /// Every hook job with a run still pending (to resume them at start).
    pub fn pending_hook_jobs(&self) -> Result<Vec<HookJob>, IndexError> {
        let mut out = Vec::new();
        for v in self.hooks.iter().values() {
            if let Ok(j) = serde_json::from_slice::<HookJob>(&v?) {
                if j.pending() {
                    out.push(j);
                }
            }
        }
        Ok(out)
    }

    /// Every recording with a move or delete that a crash may have cut short.
    pub fn unfinished_changes(&self) -> Result<Vec<(String, Changes)>, IndexError> {
        let mut out = Vec::new();
        for kv in self.changes.iter() {
            let (k, v) = kv?;
            let Ok(c) = serde_json::from_slice::<Changes>(&v) else {
                continue;
            };
            if c.parts
                .values()
                .any(|p| p.moving_from.is_some() || p.delete == Some(DeleteState::Deleting))
            {
                out.push((String::from_utf8_lossy(&k).into_owned(), c));
            }
        }
        Ok(out)
    }

    /// Removes a recording, its stream key and its fragment entries.
    pub fn remove(&self, r: &Recording) -> Result<(), IndexError> {
        // The record first, for the same reason as in `put`.
        self.recordings.remove(r.id.as_bytes())?;
        self.by_stream.remove(stream_key(&r.stream, &r.id))?;
        for k in self.fragments.scan_prefix(r.id.as_bytes()).keys() {
            self.fragments.remove(k?)?;
        }
        for k in self.hooks.scan_prefix(r.id.as_bytes()).keys() {
            self.hooks.remove(k?)?;
        }
        self.changes.remove(r.id.as_bytes())?;
        Ok(())
    }

    /// Records where a fragment of a part is: `start_ms` is media time from the
    /// part's start.
    pub fn add_fragment(
        &self,
        id: &str,
        part: u32,
        start_ms: u64,
        offset: u64,
        size: u64,
    ) -> Result<(), IndexError> {
        let mut k = Vec::with_capacity(id.len() + 12);
        k.extend_from_slice(id.as_bytes());
        k.extend_from_slice(&part.to_be_bytes());
        k.extend_from_slice(&start_ms.to_be_bytes());
        let mut v = [0u8; 16];
        v[..8].copy_from_slice(&offset.to_be_bytes());
        v[8..].copy_from_slice(&size.to_be_bytes());
        self.fragments.insert(k, &v)?;
        Ok(())
    }

    /// Fragments of a part: (start ms, offset, size), in time order.
    pub fn fragments(&self, id: &str, part: u32) -> Result<Vec<(u64, u64, u64)>, IndexError> {
        let mut prefix = id.as_bytes().to_vec();
        prefix.extend_from_slice(&part.to_be_bytes());
        let mut out = Vec::new();
        for kv in self.fragments.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let ms = u64::from_be_bytes(k[prefix.len()..].try_into().unwrap_or_default());
            let off = u64::from_be_bytes(v[..8].try_into().unwrap_or_default());
            let size = u64::from_be_bytes(v[8..16].try_into().unwrap_or_default());
            out.push((ms, off, size));
        }
        Ok(out)
    }

    /// Recordings matching `q`, newest first.
    pub fn list(&self, q: &Query) -> Result<Vec<Recording>, IndexError> {
        let limit = q.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let keep = |r: &Recording| {
            q.state.is_none_or(|s| r.state == s)
                && q.to.is_none_or(|to| r.started_at <= to)
                && q.from.is_none_or(|from| {
                    r.ended_at.is_none_or(|end| end >= from) || r.state == RecordingState::Recording
                })
        };
        // Ids sort by start time: stop scanning once past `to`.
        let upper = q
            .to
            .map(|t| Ulid::from_parts(t.timestamp_millis().max(0) as u64, u128::MAX).to_string());
        match &q.stream {
            Some(stream) => {
                let mut prefix = stream.as_bytes().to_vec();
                prefix.push(0);
                for k in self.by_stream.scan_prefix(&prefix).keys().rev() {
                    let k = k?;
                    let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                    if upper.as_ref().is_some_and(|u| &id > u) {
                        continue;
                    }
                    if let Some(r) = self.get(&id)? {
                        if keep(&r) {
                            out.push(r);
                            if out.len() >= limit {
                                break;
                            }
                        }
                    }
                }
            }
            None => {
                let iter = match &upper {
                    Some(u) => self.recordings.range(..=u.as_bytes().to_vec()),
                    None => self.recordings.iter(),
                };
                for kv in iter.rev() {
                    let (k, v) = kv?;
                    let r = self.merged(&String::from_utf8_lossy(&k), &v)?;
                    if keep(&r) {
                        out.push(r);
                        if out.len() >= limit {
                            break;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Every recording the index still shows as being written (for recovery).
    pub fn open_recordings(&self) -> Result<Vec<Recording>, IndexError> {
        let mut out = Vec::new();
        for kv in self.recordings.iter() {
            let (k, v) = kv?;
            let r = self.merged(&String::from_utf8_lossy(&k), &v)?;
            if matches!(
                r.state,
                RecordingState::Recording | RecordingState::Deleting
            ) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Every part path the index knows (to find orphan files).
    pub fn all_paths(&self) -> Result<std::collections::HashSet<String>, IndexError> {
        let mut out = std::collections::HashSet::new();
        for kv in self.recordings.iter() {
            let (k, v) = kv?;
            let r = self.merged(&String::from_utf8_lossy(&k), &v)?;
            out.extend(r.parts.into_iter().map(|p| p.path));
        }
        Ok(out)
    }

    /// Makes every change so far durable (grouped with concurrent callers' flushes).
    pub async fn flush(&self) -> Result<(), IndexError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let queue = self.committer.queue.as_ref();
        if queue.is_none_or(|q| q.send(tx).is_err()) {
            return Err(IndexError::Flush("the commit thread has stopped".into()));
        }
        match rx.await {
            Ok(r) => r.map_err(IndexError::Flush),
            Err(_) => Err(IndexError::Flush("the commit thread has stopped".into())),
        }
    }

    /// How long the group commit's running flush has taken so far (`None`:
    /// none is running).
    pub fn flush_running_for(&self, now: std::time::Instant) -> Option<std::time::Duration> {
        let since = *self
            .committer
            .busy_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        since.map(|t| now.saturating_duration_since(t))
    }

    /// Blocking flush, for startup and shutdown paths.
    pub fn flush_blocking(&self) -> Result<(), IndexError> {
        self.db.flush()?;
        Ok(())
    }
}

/// Hook jobs sort by recording, then part.
fn hook_key(id: &str, part: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 4);
    k.extend_from_slice(id.as_bytes());
    k.extend_from_slice(&part.to_be_bytes());
    k
}

fn decode(id: &str, v: &[u8]) -> Result<Recording, IndexError> {
    serde_json::from_slice(v).map_err(|e| IndexError::Corrupt(id.to_owned(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Container, Rotation};
    use chrono::TimeZone;

    fn rec(id: Ulid, stream: &str, state: RecordingState) -> Recording {
        let started = Utc.timestamp_millis_opt(id.timestamp_ms() as i64).unwrap();
        Recording {
            id: id.to_string(),
            stream: stream.into(),
            protocol: "rtmp".into(),
            session_id: "s".into(),
            state,
            stop_reason: None,
            error: None,
            started_at: started,
            ended_at: (state != RecordingState::Recording)
                .then(|| started + chrono::Duration::seconds(10)),
            duration_ms: 10_000,
            size_bytes: 1,
            container: Container::Mp4,
            template: "{streamName}".into(),
            rotation: Rotation::default(),
            tracks: vec![],
            tags: Default::default(),
            parts: vec![],
            hooks: vec![],
        }
    }

    /// Regression: 1000 feeds starting at once each put a record and flushed; with
    /// sled's `flush_async` every sled-io thread ended up waiting and nothing moved.
    #[test]
    fn many_concurrent_flushes_complete() {
        let dir = tempfile::tempdir().unwrap();
        let ix = Index::open(dir.path()).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let tasks: Vec<_> = (0..400u64)
                .map(|i| {
                    let ix = ix.clone();
                    tokio::spawn(async move {
                        let r = rec(
                            Ulid::from_parts(1_790_000_000_000 + i, i as u128),
                            "live/x",
                            RecordingState::Recording,
                        );
                        ix.put(&r).unwrap();
                        ix.flush().await.unwrap();
                    })
                })
                .collect();
            let all = futures_join(tasks);
            tokio::time::timeout(std::time::Duration::from_secs(30), all)
                .await
                .expect("every flush completes");
        });
        assert_eq!(ix.list(&Query::default()).unwrap().len(), 400);
    }

    async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
        for t in tasks {
            t.await.unwrap();
        }
    }

    #[test]
    fn put_get_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let ix = Index::open(dir.path()).unwrap();
        let t0 = 1_790_000_000_000u64;
        let a = rec(Ulid::from_parts(t0, 1), "live/a", RecordingState::Finalized);
        let b = rec(
            Ulid::from_parts(t0 + 60_000, 2),
            "live/b",
            RecordingState::Finalized,
        );
        let c = rec(
            Ulid::from_parts(t0 + 120_000, 3),
            "live/a",
            RecordingState::Recording,
        );
        for r in [&a, &b, &c] {
            ix.put(r).unwrap();
        }
        assert_eq!(ix.get(&b.id).unwrap().unwrap(), b);
        let ids = |q: Query| {
            ix.list(&q)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(Query::default()),
            vec![c.id.clone(), b.id.clone(), a.id.clone()]
        );
        assert_eq!(
            ids(Query {
                stream: Some("live/a".into()),
                ..Query::default()
            }),
            vec![c.id.clone(), a.id.clone()]
        );
        assert_eq!(
            ids(Query {
                state: Some(RecordingState::Recording),
                ..Query::default()
            }),
            vec![c.id.clone()]
        );
        let at = |ms: u64| Utc.timestamp_millis_opt(ms as i64).unwrap();
        // Live in [t0+65s, t0+100s]: only b (ended t0+70s); c started later.
        assert_eq!(
            ids(Query {
                from: Some(at(t0 + 65_000)),
                to: Some(at(t0 + 100_000)),
                ..Query::default()
            }),
            vec![b.id.clone()]
        );
        assert_eq!(ix.open_recordings().unwrap().len(), 1);
        ix.add_fragment(&a.id, 1, 0, 100, 50).unwrap();
        ix.add_fragment(&a.id, 1, 1000, 150, 60).unwrap();
        assert_eq!(
            ix.fragments(&a.id, 1).unwrap(),
            vec![(0, 100, 50), (1000, 150, 60)]
        );
        ix.remove(&a).unwrap();
        assert!(ix.get(&a.id).unwrap().is_none());
        assert!(ix.fragments(&a.id, 1).unwrap().is_empty());
        assert_eq!(
            ids(Query {
                stream: Some("live/a".into()),
                ..Query::default()
            }),
            vec![c.id.clone()]
        );
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let a = rec(Ulid::new(), "live/a", RecordingState::Recording);
        {
            let ix = Index::open(dir.path()).unwrap();
            ix.put(&a).unwrap();
            ix.flush_blocking().unwrap();
        }
        let ix = Index::open(dir.path()).unwrap();
        assert_eq!(ix.get(&a.id).unwrap().unwrap(), a);
    }

    fn part(index: u32, path: &str) -> Part {
        Part {
            index,
            path: path.into(),
            state: PartState::Finalized,
            started_at: Utc::now(),
            start_offset_ms: 0,
            duration_ms: 1000,
            size_bytes: 10,
            first_keyframe_at: None,
            frames: FrameCounts::default(),
        }
    }

    /// A recorder committing its whole row (part 2 starting) after a hook moved
    /// and tagged part 1 must not undo the hook, and the hook must not undo it.
    #[test]
    fn hook_changes_survive_the_recorders_commits() {
        let dir = tempfile::tempdir().unwrap();
        let ix = Index::open(dir.path()).unwrap();
        let mut r = rec(Ulid::new(), "live/a", RecordingState::Recording);
        r.parts.push(part(1, "live/a/p1.mp4"));
        ix.put(&r).unwrap();
        ix.update_changes(&r.id, |c| {
            c.tags.insert("length".into(), "short".into());
            let p = c.parts.entry(1).or_default();
            p.path = Some("archive/p1.mp4".into());
        })
        .unwrap();
        ix.put_hook_job(&HookJob::new(&r.id, 1, false, &["tag".into()]))
            .unwrap();
        // The recorder's own copy still says the old path.
        r.parts.push(part(2, "live/a/p2.mp4"));
        ix.put(&r).unwrap();
        let got = ix.get(&r.id).unwrap().unwrap();
        assert_eq!(got.parts[0].path, "archive/p1.mp4");
        assert_eq!(got.parts[1].path, "live/a/p2.mp4");
        assert_eq!(got.tags["length"], "short");
        assert_eq!(got.hooks.len(), 1);
        assert_eq!(got.hooks[0].state, HookState::Pending);
        assert_eq!(ix.pending_hook_jobs().unwrap().len(), 1);
        assert!(ix.all_paths().unwrap().contains("archive/p1.mp4"));
        let listed = ix.list(&Query::default()).unwrap();
        assert_eq!(listed[0].parts[0].path, "archive/p1.mp4");
        // Deleted by a hook: the part stays, marked.
        ix.update_changes(&r.id, |c| {
            c.parts.entry(2).or_default().delete = Some(DeleteState::Deleted);
        })
        .unwrap();
        assert_eq!(
            ix.get(&r.id).unwrap().unwrap().parts[1].state,
            PartState::Deleted
        );
        // A move cut short is listed for start-up to finish.
        ix.update_changes(&r.id, |c| {
            c.parts.entry(1).or_default().moving_from = Some("live/a/p1.mp4".into());
        })
        .unwrap();
        assert_eq!(ix.unfinished_changes().unwrap().len(), 1);
        // Removing the recording removes its changes and hook jobs.
        ix.remove(&r).unwrap();
        assert!(ix.get(&r.id).unwrap().is_none());
        assert!(ix.hook_jobs(&r.id).unwrap().is_empty());
        assert_eq!(ix.changes(&r.id).unwrap(), Changes::default());
    }
}
