//! Fixtures: an author's examples of what an extension should answer, run by
//! `edgerec ext test`. A fixture is JSON:
//!
//! ```json
//! { "about": "...", "config": { "key": "value" },
//!   "input": { "name": "cam9" },
//!   "expect": { "ok": "hq/cam9/..." } }
//! ```
//!
//! `input` is a JSON merge patch (RFC 7386) over the world's sample input (see
//! [`crate::samples`]), so a fixture says only what matters to it; `config`
//! overrides the manifest's; `expect` is `{"ok": <answer as JSON>}` or
//! `{"error": "<kind>"}` (`extension-error`, `invalid-output`, `timeout`, ...).
//! A `hook-http` fixture may give `"http": [{"url": ..., "method": ...,
//! "status": ..., "headers": [[k, v]], "body": ...}]`: its requests (still held
//! to `http-allow`) are then answered from that list, never the network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use crate::extension::Extension;
use crate::http::CannedHttp;
use crate::manifest::Manifest;
use crate::world::World;
use crate::{samples, ExtError, Host};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    #[serde(default)]
    about: String,
    #[serde(default)]
    config: BTreeMap<String, String>,
    #[serde(default)]
    input: Value,
    /// Answers for the extension's HTTP requests (none: the network).
    #[serde(default)]
    http: Option<Vec<CannedHttp>>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum Expect {
    Ok(Value),
    Error(String),
}

#[derive(Debug)]
pub struct FixtureReport {
    pub file: PathBuf,
    pub about: String,
    /// `None` when it passed; what differed otherwise.
    pub failure: Option<String>,
    pub took: Duration,
    /// What the call used (none if the input could not be built).
    pub cost: Option<crate::CallCost>,
    /// The limits it ran under.
    pub limits: crate::Limits,
}

/// Runs every `*.json` in `dir` (sorted) against `wasm` loaded per `manifest`.
pub fn run_dir(
    host: &Host,
    manifest: &Manifest,
    wasm: &[u8],
    dir: &Path,
) -> Result<Vec<FixtureReport>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no fixtures (*.json)", dir.display()));
    }
    let base = host
        .load(manifest.spec(&BTreeMap::new())?, wasm)
        .map_err(|e| e.to_string())?;
    let mut reports = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let fx: Fixture =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let ext = base
            .reconfigured(manifest.spec(&fx.config)?)
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        let got = call(&ext, &fx.input, fx.http.map(Into::into));
        let took = started.elapsed();
        let failure = match (&fx.expect, got) {
            (_, Err(CallError::Input(e))) => Some(format!("input: {e}")),
            (Expect::Ok(want), Ok(got)) if *want == got => None,
            (Expect::Ok(want), Ok(got)) => Some(format!("expected {want}\n     got {got}")),
            (Expect::Ok(want), Err(CallError::Ext(e))) => {
                Some(format!("expected {want}\n     got error {}: {e}", e.kind()))
            }
            (Expect::Error(kind), Err(CallError::Ext(e))) if e.kind() == kind => None,
            (Expect::Error(kind), Err(CallError::Ext(e))) => Some(format!(
                "expected error {kind}, got error {}: {e}",
                e.kind()
            )),
            (Expect::Error(kind), Ok(got)) => Some(format!("expected error {kind}, got {got}")),
        };
        reports.push(FixtureReport {
            file,
            about: fx.about,
            failure,
            took,
            cost: ext.last_cost(),
            limits: ext.limits(),
        });
    }
    Ok(reports)
}

/// A world's sample input with a fixture's `input` patch merged in, built
/// once so `edgerec ext bench` times the call and nothing else.
pub enum Input {
    Naming(crate::Recording),
    Layout(crate::LayoutInput),
    Hook(crate::FinalizedFile),
}

impl Input {
    pub fn new(world: World, patch: &Value) -> Result<Input, String> {
        fn build<T: serde::Serialize + serde::de::DeserializeOwned>(
            sample: T,
            patch: &Value,
        ) -> Result<T, String> {
            let mut v = serde_json::to_value(sample).map_err(|e| e.to_string())?;
            merge(&mut v, patch);
            serde_json::from_value(v).map_err(|e| format!("input: {e}"))
        }
        Ok(match world {
            World::Naming => Input::Naming(build(samples::recording(), patch)?),
            World::Layout => Input::Layout(build(samples::layout_input(), patch)?),
            World::Hook | World::HookHttp => Input::Hook(build(samples::finalized_file(), patch)?),
        })
    }

    /// One call, its answer dropped.
    pub fn call(&self, ext: &Extension) -> Result<(), ExtError> {
        match self {
            Input::Naming(r) => ext.name(r).map(drop),
            Input::Layout(l) => ext.layout(l).map(drop),
            Input::Hook(f) => ext.on_finalized(f).map(drop),
        }
    }
}

/// A fixture's `input` patch, to bench an extension on the input its author
/// chose.
pub fn fixture_input(file: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let fx: Fixture =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(fx.input)
}

enum CallError {
    Input(String),
    Ext(ExtError),
}

fn call(
    ext: &Extension,
    patch: &Value,
    canned: Option<std::sync::Arc<[CannedHttp]>>,
) -> Result<Value, CallError> {
    fn input<T: serde::Serialize + serde::de::DeserializeOwned>(
        sample: T,
        patch: &Value,
    ) -> Result<T, CallError> {
        let mut v = serde_json::to_value(sample).map_err(|e| CallError::Input(e.to_string()))?;
        merge(&mut v, patch);
        serde_json::from_value(v).map_err(|e| CallError::Input(e.to_string()))
    }
    let to_json = |v: Result<Value, ExtError>| v.map_err(CallError::Ext);
    match ext.world() {
        World::Naming => {
            let rec = input(samples::recording(), patch)?;
            to_json(
                ext.name(&rec)
                    .map(|p| Value::String(p.to_string_lossy().into_owned())),
            )
        }
        World::Layout => {
            let li = input(samples::layout_input(), patch)?;
            to_json(
                ext.layout(&li)
                    .map(|s| serde_json::to_value(s).unwrap_or_default()),
            )
        }
        World::Hook | World::HookHttp => {
            let f = input(samples::finalized_file(), patch)?;
            let actions = match canned {
                Some(c) => ext.on_finalized_answered(&f, c),
                None => ext.on_finalized(&f),
            };
            to_json(actions.map(|a| serde_json::to_value(a).unwrap_or_default()))
        }
    }
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        if !patch.is_null() {
            *target = patch.clone();
        }
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            // A missing option field reads as none.
            t.remove(k);
        } else if v.is_object() {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        } else {
            t.insert(k.clone(), v.clone());
        }
    }
}
