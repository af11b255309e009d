//! Extensions in the engine: which components are loaded (from the config file
//! or uploaded over the API and kept under `data/extensions/installed`), which
//! streams they are bound to, and turning recordings into their inputs. The
//! host itself (wasmtime, limits, typed errors) is the `edgerec-ext` crate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use edgerec_ext::{Extension, ExtensionSpec, Host, HostOptions, Manifest};
use edgerec_media::{MediaKind, TrackInfo};
use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};

use crate::config::{ExtensionEntry, ExtensionsConfig};
use crate::index::{Part, Recording, TrackRecord};
use crate::EngineError;

// The tables here stay usable after a panic elsewhere poisoned a lock: every
// section they guard leaves them consistent.
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(l: &Mutex<T>) -> MutexGuard<'_, T> {
    l.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Extensions {
    host: Host,
    loaded: RwLock<BTreeMap<String, Arc<Extension>>>,
    /// Extensions that could not be loaded, with why (typed).
    broken: RwLock<BTreeMap<String, edgerec_ext::ExtError>>,
    /// Config bindings, then those of uploads.
    naming: RwLock<Vec<Binding>>,
    hooks: RwLock<Vec<Binding>>,
    layouts: RwLock<BTreeMap<String, String>>,
    /// The operator's config, to fall back to when an upload is removed.
    config: ExtensionsConfig,
    /// Where uploads are kept: `<id>.json` (an [`Installed`]) naming
    /// `<sha256>.wasm`.
    installed_dir: PathBuf,
    /// Serializes installs and removals (calls are never blocked by it).
    changing: Mutex<()>,
}

/// An extension bound to the streams a glob matches.
#[derive(Clone)]
struct Binding {
    glob: GlobMatcher,
    source: String,
    extension: String,
    /// Made by an upload (removed with it), not by the config file.
    uploaded: bool,
}

/// What is kept about an uploaded extension, next to its component.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Installed {
    pub spec: ExtensionSpec,
    pub sha256: String,
    /// Stream globs it is bound to (naming and hook extensions).
    #[serde(default)]
    pub streams: Vec<String>,
    /// The layout name it serves (layout extensions).
    #[serde(default)]
    pub layout: Option<String>,
    pub installed_at: chrono::DateTime<chrono::Utc>,
}

/// An upload: the component and how to run and bind it.
#[derive(Clone, Debug, Default)]
pub struct Upload {
    pub wasm: Vec<u8>,
    /// `extension.toml` text; fields it sets override the replaced one's.
    pub manifest: Option<String>,
    /// The world, when there is no manifest and nothing is replaced.
    pub world: Option<edgerec_ext::World>,
    pub streams: Vec<String>,
    pub layout: Option<String>,
}

/// What an install did.
#[derive(Clone, Debug, Serialize)]
pub struct InstallOutcome {
    pub id: String,
    pub replaced: bool,
    pub sha256: String,
    pub world: edgerec_ext::World,
    pub streams: Vec<String>,
    pub layout: Option<String>,
}

fn binding(streams: &str, extension: &str, uploaded: bool) -> Result<Binding, EngineError> {
    Glob::new(streams)
        .map(|g| Binding {
            glob: g.compile_matcher(),
            source: streams.to_owned(),
            extension: extension.to_owned(),
            uploaded,
        })
        .map_err(|e| EngineError::BadRequest(format!("extensions: streams {streams:?}: {e}")))
}

fn bindings(list: &[crate::config::ExtensionBinding]) -> Result<Vec<Binding>, EngineError> {
    list.iter()
        .map(|b| binding(&b.streams, &b.extension, false))
        .collect()
}

/// An id is a file name in the install folder: keep it plain.
fn check_id(id: &str) -> Result<(), EngineError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && !id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(EngineError::BadRequest(format!(
            "extension id {id:?}: 1-64 of a-z 0-9 - _ . (not starting with .)"
        )))
    }
}

/// The spec for a config entry: its manifest's fields, then the entry's.
fn spec_of(entry: &ExtensionEntry) -> Result<ExtensionSpec, String> {
    let mut manifest = match &entry.manifest {
        Some(path) => Manifest::parse(
            &std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
        )
        .map_err(|e| format!("{}: {e}", path.display()))?,
        None => Manifest::default(),
    };
    manifest.id = entry.id.clone();
    if entry.world.is_some() {
        manifest.world = entry.world;
    }
    let l = &entry.limits;
    manifest.limits.fuel = l.fuel.or(manifest.limits.fuel);
    manifest.limits.deadline_ms = l.deadline_ms.or(manifest.limits.deadline_ms);
    manifest.limits.memory_bytes = l.memory_bytes.or(manifest.limits.memory_bytes);
    manifest
        .webhook_allow
        .extend(entry.webhook_allow.iter().cloned());
    manifest.http_allow.extend(entry.http_allow.iter().cloned());
    if entry.failure_limit.is_some() {
        manifest.failure_limit = entry.failure_limit;
    }
    manifest.spec(&entry.config)
}

/// Writes `bytes` to `dir/name` through a temporary file, synced, renamed.
fn write_durable(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

impl Extensions {
    /// Loads every configured extension (compiled artifacts cached under
    /// `data_dir/extensions/cache`), then every upload kept under
    /// `data_dir/extensions/installed` (an upload replaces the config's
    /// component of the same id), and checks that every binding names one of
    /// the right world. A component that fails to load is reported (log and
    /// API) and its bindings fall back to the built-ins: the appliance records
    /// whatever an extension does.
    pub fn start(config: &ExtensionsConfig, data_dir: &Path) -> Result<Extensions, EngineError> {
        let host = Host::new(HostOptions {
            cache_dir: Some(data_dir.join("extensions").join("cache")),
            cap: config.cap,
        })
        .map_err(|e| EngineError::BadRequest(format!("extensions: {e}")))?;
        let installed_dir = data_dir.join("extensions").join("installed");
        std::fs::create_dir_all(&installed_dir)?;
        let this = Extensions {
            host,
            naming: RwLock::new(bindings(&config.naming)?),
            hooks: RwLock::new(bindings(&config.hooks)?),
            layouts: RwLock::new(config.layouts.clone()),
            loaded: RwLock::new(BTreeMap::new()),
            broken: RwLock::new(BTreeMap::new()),
            config: config.clone(),
            installed_dir,
            changing: Mutex::new(()),
        };
        for entry in &config.load {
            this.load_entry(entry);
        }
        for inst in this.installed()? {
            let id = inst.spec.id.clone();
            if this.config.load.iter().any(|e| e.id == id) {
                tracing::info!(extension = %id, "an uploaded component replaces the config file's");
            }
            let result = std::fs::read(this.wasm_path(&inst.sha256))
                .map_err(|e| edgerec_ext::ExtError::refused(format!("installed component: {e}")))
                .and_then(|wasm| this.host.load(inst.spec.clone(), &wasm));
            this.bind_upload(&id, &inst.streams, inst.layout.as_deref(), inst.spec.world)?;
            this.settle(&id, result);
        }
        let check = |id: &str, world: edgerec_ext::World| match this.get(id) {
            Some(e) if e.world() == world || (world.is_hook() && e.world().is_hook()) => Ok(()),
            None if read(&this.broken).contains_key(id) => Ok(()),
            Some(e) => Err(EngineError::BadRequest(format!(
                "extensions: {id} is bound as {world} but is a {} extension",
                e.world()
            ))),
            None => Err(EngineError::BadRequest(format!(
                "extensions: {id} is bound but not loaded"
            ))),
        };
        for b in read(&this.naming).iter() {
            check(&b.extension, edgerec_ext::World::Naming)?;
        }
        for b in read(&this.hooks).iter() {
            check(&b.extension, edgerec_ext::World::Hook)?;
        }
        for id in read(&this.layouts).values() {
            check(id, edgerec_ext::World::Layout)?;
        }
        Ok(this)
    }

    fn load_entry(&self, entry: &ExtensionEntry) {
        let result = spec_of(entry)
            .map_err(|e| edgerec_ext::ExtError::Refused { reason: e })
            .and_then(|spec| {
                let wasm =
                    std::fs::read(&entry.file).map_err(|e| edgerec_ext::ExtError::Refused {
                        reason: format!("{}: {e}", entry.file.display()),
                    })?;
                self.host.load(spec, &wasm)
            });
        self.settle(&entry.id, result);
    }

    /// Files `result` under loaded or broken.
    fn settle(&self, id: &str, result: Result<Extension, edgerec_ext::ExtError>) {
        match result {
            Ok(ext) => {
                write(&self.broken).remove(id);
                write(&self.loaded).insert(id.to_owned(), Arc::new(ext));
            }
            Err(e) => {
                tracing::error!(extension = %id, kind = e.kind(), error = %e, "extension not loaded");
                write(&self.loaded).remove(id);
                write(&self.broken).insert(id.to_owned(), e);
            }
        }
    }

    fn wasm_path(&self, sha: &str) -> PathBuf {
        self.installed_dir.join(format!("{sha}.wasm"))
    }

    /// The uploads kept on disk.
    fn installed(&self) -> Result<Vec<Installed>, EngineError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.installed_dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Installed>(&b).map_err(|e| e.to_string()))
            {
                Ok(i) => out.push(i),
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "unreadable installed extension skipped")
                }
            }
        }
        out.sort_by(|a, b| a.spec.id.cmp(&b.spec.id));
        Ok(out)
    }

    /// Replaces the upload bindings of `id` with `streams` (or `layout`).
    fn bind_upload(
        &self,
        id: &str,
        streams: &[String],
        layout: Option<&str>,
        world: edgerec_ext::World,
    ) -> Result<(), EngineError> {
        let new: Vec<Binding> = streams
            .iter()
            .map(|s| binding(s, id, true))
            .collect::<Result<_, _>>()?;
        for (w, list) in [
            (edgerec_ext::World::Naming, &self.naming),
            (edgerec_ext::World::Hook, &self.hooks),
        ] {
            let mut list = write(list);
            list.retain(|b| !(b.uploaded && b.extension == id));
            if w == world || (w.is_hook() && world.is_hook()) {
                list.extend(new.iter().cloned());
            }
        }
        let mut layouts = write(&self.layouts);
        if let Some(name) = layout {
            layouts.insert(name.to_owned(), id.to_owned());
        }
        Ok(())
    }

    /// Installs or replaces `id` from an upload: loaded with the production
    /// engine and limits, its imports checked, called once on a sample input,
    /// kept on disk, then swapped in. Calls in flight finish on the old one.
    /// Nothing changes if any step fails.
    pub fn install(&self, id: &str, up: Upload) -> Result<InstallOutcome, EngineError> {
        check_id(id)?;
        let _one_at_a_time = lock(&self.changing);
        let previous = self.get(id);
        let mut spec = match (&previous, self.config.load.iter().find(|e| e.id == id)) {
            (Some(p), _) => p.spec().clone(),
            (None, Some(entry)) => spec_of(entry).unwrap_or_else(|_| {
                ExtensionSpec::new(id, up.world.unwrap_or(edgerec_ext::World::Naming))
            }),
            (None, None) => match up.world.or_else(|| {
                up.manifest
                    .as_deref()
                    .and_then(|m| Manifest::parse(m).ok())
                    .and_then(|m| m.world)
            }) {
                Some(w) => ExtensionSpec::new(id, w),
                None => {
                    return Err(EngineError::BadRequest(
                        "a new extension needs its world: a manifest with `world`, or world=naming|layout|hook".into(),
                    ))
                }
            },
        };
        if let Some(text) = &up.manifest {
            Manifest::parse(text)
                .map_err(|e| EngineError::BadRequest(format!("manifest: {e}")))?
                .apply_to(&mut spec);
        }
        if let Some(w) = up.world {
            spec.world = w;
        }
        spec.id = id.to_owned();
        let world = spec.world;
        if !up.streams.is_empty() && world == edgerec_ext::World::Layout {
            return Err(EngineError::BadRequest(
                "a layout extension is bound by layout name, not streams".into(),
            ));
        }
        if up.layout.is_some() && world != edgerec_ext::World::Layout {
            return Err(EngineError::BadRequest(format!(
                "only a layout extension serves a layout name; {id} is a {world} extension"
            )));
        }
        for s in &up.streams {
            binding(s, id, true)?;
        }
        let ext = self
            .host
            .load(spec.clone(), &up.wasm)
            .map_err(EngineError::Refused)?;
        ext.self_test().map_err(EngineError::Refused)?;
        // Kept streams when none are given: a replacement keeps its bindings.
        let old = self.installed_record(id);
        let streams = if up.streams.is_empty() {
            old.as_ref().map(|o| o.streams.clone()).unwrap_or_default()
        } else {
            up.streams.clone()
        };
        let layout = up
            .layout
            .clone()
            .or_else(|| old.as_ref().and_then(|o| o.layout.clone()));
        let record = Installed {
            spec,
            sha256: ext.sha256().to_owned(),
            streams: streams.clone(),
            layout: layout.clone(),
            installed_at: chrono::Utc::now(),
        };
        // The component first, then the record naming it (the commit point).
        write_durable(
            &self.installed_dir,
            &format!("{}.wasm", record.sha256),
            &up.wasm,
        )?;
        let json = serde_json::to_vec_pretty(&record)
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        write_durable(&self.installed_dir, &format!("{id}.json"), &json)?;
        if let Some(o) = old.filter(|o| o.sha256 != record.sha256) {
            self.drop_unreferenced(&o.sha256);
        }
        self.bind_upload(id, &streams, layout.as_deref(), world)?;
        self.settle(id, Ok(ext));
        tracing::info!(extension = id, world = %world, sha256 = &record.sha256[..12], replaced = previous.is_some(), "extension installed");
        Ok(InstallOutcome {
            id: id.to_owned(),
            replaced: previous.is_some(),
            sha256: record.sha256,
            world,
            streams,
            layout,
        })
    }

    fn installed_record(&self, id: &str) -> Option<Installed> {
        let b = std::fs::read(self.installed_dir.join(format!("{id}.json"))).ok()?;
        serde_json::from_slice(&b).ok()
    }

    fn drop_unreferenced(&self, sha: &str) {
        let used = self
            .installed()
            .unwrap_or_default()
            .iter()
            .any(|i| i.sha256 == sha);
        if !used {
            let _ = std::fs::remove_file(self.wasm_path(sha));
        }
    }

    /// Removes an uploaded extension and its bindings. One the config file
    /// declares goes back to the config's component; one only the config
    /// declares cannot be removed here (edit the config).
    pub fn remove(&self, id: &str) -> Result<(), EngineError> {
        check_id(id)?;
        let _one_at_a_time = lock(&self.changing);
        let Some(record) = self.installed_record(id) else {
            if self.config.load.iter().any(|e| e.id == id) {
                return Err(EngineError::Conflict(format!(
                    "{id} is declared in the config file; remove it there"
                )));
            }
            return Err(EngineError::NotFound(format!(
                "extension {id} is not installed"
            )));
        };
        let json = self.installed_dir.join(format!("{id}.json"));
        std::fs::remove_file(&json)?;
        std::fs::File::open(&self.installed_dir)?.sync_all()?;
        self.drop_unreferenced(&record.sha256);
        self.bind_upload(id, &[], None, record.spec.world)?;
        write(&self.layouts)
            .retain(|name, ext| ext != id || self.config.layouts.contains_key(name));
        write(&self.loaded).remove(id);
        write(&self.broken).remove(id);
        if let Some(entry) = self.config.load.iter().find(|e| e.id == id) {
            self.load_entry(entry);
        }
        tracing::info!(extension = id, "extension removed");
        Ok(())
    }

    /// Where an extension came from: `config`, `upload`.
    pub fn source(&self, id: &str) -> &'static str {
        if self.installed_dir.join(format!("{id}.json")).exists() {
            "upload"
        } else {
            "config"
        }
    }

    /// The stream globs and layout names an extension is bound to.
    pub fn bound(&self, id: &str) -> (Vec<String>, Vec<String>) {
        let streams = [&self.naming, &self.hooks]
            .iter()
            .flat_map(|l| {
                read(l)
                    .iter()
                    .filter(|b| b.extension == id)
                    .map(|b| b.source.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        let layouts = read(&self.layouts)
            .iter()
            .filter(|(_, e)| *e == id)
            .map(|(n, _)| n.clone())
            .collect();
        (streams, layouts)
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn get(&self, id: &str) -> Option<Arc<Extension>> {
        read(&self.loaded).get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Extension>> {
        read(&self.loaded).values().cloned().collect()
    }

    /// Extensions that failed to load, and why.
    pub fn broken(&self) -> BTreeMap<String, edgerec_ext::ExtError> {
        read(&self.broken).clone()
    }

    /// The naming extension for a stream key, if one is bound.
    pub fn naming_for(&self, stream: &str) -> Option<Arc<Extension>> {
        let id = read(&self.naming)
            .iter()
            .find(|b| b.glob.is_match(stream))
            .map(|b| b.extension.clone())?;
        self.get(&id)
    }

    /// The hooks bound to a stream key, in config order (uploads after).
    pub fn hooks_for(&self, stream: &str) -> Vec<Arc<Extension>> {
        let ids: Vec<String> = read(&self.hooks)
            .iter()
            .filter(|b| b.glob.is_match(stream))
            .map(|b| b.extension.clone())
            .collect();
        ids.iter().filter_map(|id| self.get(id)).collect()
    }

    /// The layout extension for a layout name, if one is bound.
    pub fn layout(&self, name: &str) -> Option<Arc<Extension>> {
        let id = read(&self.layouts).get(name).cloned()?;
        self.get(&id)
    }
}

/// A track as extensions see it.
pub fn ext_track(t: &TrackInfo, id: u32) -> edgerec_ext::Track {
    ext_track_record(&TrackRecord::from_info(t, true, None), id)
}

/// An indexed track as extensions see it.
pub fn ext_track_record(t: &TrackRecord, id: u32) -> edgerec_ext::Track {
    let mut attrs = Vec::new();
    if let (Some(w), Some(h)) = (t.width.filter(|w| *w > 0), t.height) {
        attrs.push(("width".into(), w.to_string()));
        attrs.push(("height".into(), h.to_string()));
    }
    if let Some(r) = t.sample_rate {
        attrs.push(("sample-rate".into(), r.to_string()));
    }
    if let Some(c) = t.channels {
        attrs.push(("channels".into(), c.to_string()));
    }
    edgerec_ext::Track {
        id,
        kind: match t.kind {
            MediaKind::Video => edgerec_ext::TrackKind::Video,
            MediaKind::Audio => edgerec_ext::TrackKind::Audio,
        },
        codec: t.codec.name().to_string(),
        attrs,
    }
}

/// A recording as extensions see it, for part `part` in `container` (`mp4`,
/// `mkv`, `webm`, `ts`).
pub fn ext_recording(
    rec: &Recording,
    part: u32,
    container: &str,
    remote: Option<String>,
    tracks: Vec<edgerec_ext::Track>,
) -> edgerec_ext::Recording {
    let (app, name) = rec.stream.split_once('/').unwrap_or(("", &rec.stream));
    edgerec_ext::Recording {
        id: rec.id.clone(),
        stream: rec.stream.clone(),
        app: app.to_owned(),
        name: name.to_owned(),
        protocol: rec.protocol.clone(),
        remote,
        started_unix_ms: rec.started_at.timestamp_millis(),
        part,
        container: container.to_owned(),
        tracks,
        tags: rec.tags.clone().into_iter().collect(),
        attrs: vec![("session".into(), rec.session_id.clone())],
    }
}

/// What a hook is told about a finalized (or recovered) part.
pub fn finalized_file(rec: &Recording, part: &Part, recovered: bool) -> edgerec_ext::FinalizedFile {
    let container = Path::new(&part.path)
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tracks = rec
        .tracks
        .iter()
        .filter(|t| t.recorded)
        .enumerate()
        .map(|(i, t)| ext_track_record(t, i as u32))
        .collect();
    edgerec_ext::FinalizedFile {
        path: part.path.clone(),
        size_bytes: part.size_bytes,
        duration_ms: part.duration_ms,
        recovered,
        recording: ext_recording(rec, part.index, &container, None, tracks),
        attrs: vec![
            (
                "part-started-unix-ms".into(),
                part.started_at.timestamp_millis().to_string(),
            ),
            ("video-frames".into(), part.frames.video.to_string()),
            ("audio-frames".into(), part.frames.audio.to_string()),
        ],
    }
}

/// The path a naming extension returned, through the built-in sanitizer (so
/// name encoding and excluded characters apply as to built-in names): the
/// container's extension is split off and put back.
pub fn sanitized(sanitizer: &crate::naming::Sanitizer, rel: &Path, ext: &str) -> PathBuf {
    let s = rel.to_string_lossy();
    let stem = s.strip_suffix(&format!(".{ext}")).unwrap_or(&s);
    sanitizer.path(stem, "", ext)
}
