//! One loaded extension: a prepared component (`InstancePre`) and a fresh Store
//! per call, so no state leaks from one recording to the next and a trap costs
//! nothing but that call. Every call is bounded by fuel, an epoch deadline and
//! a memory limit, and ends in a result or a typed [`ExtError`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wasmtime::component::{Instance, InstancePre};
use wasmtime::{Store, Trap};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::WasiHttpCtx;

use crate::bindings::exports::edgerec::ext::{hook, layout, naming};
use crate::bindings::{Action, FinalizedFile, GuestError, LayoutInput, Recording, Scene};
use crate::error::ExtError;
use crate::host::{GuestLog, MemoryLimiter, State, TICK};
use crate::http::{CannedHttp, HttpGrant, HttpPolicy};
use crate::limits::{LimitOverrides, Limits};
use crate::output;
use crate::pool::{self, Gate};
use crate::stats::{Stats, StatsView};
use crate::stdio::CappedOutput;
use crate::world::World;

/// Bytes of guest stdout/stderr kept per call (the rest is dropped).
const STDIO_BYTES: usize = 16 << 10;

/// How an extension is declared: by the operator's config or an API upload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionSpec {
    pub id: String,
    pub world: World,
    /// Key/value pairs the guest reads through `edgerec:ext/config`.
    #[serde(default)]
    pub config: Vec<(String, String)>,
    #[serde(default)]
    pub limits: LimitOverrides,
    /// URL prefixes the extension's webhook actions may POST to.
    #[serde(default)]
    pub webhook_allow: Vec<String>,
    /// URL prefixes a `hook-http` extension's own requests may go to (required
    /// for that world, refused for the others).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_allow: Vec<String>,
    /// Failures in a row after which the extension is disabled.
    #[serde(default = "default_failure_limit")]
    pub failure_limit: u32,
}

fn default_failure_limit() -> u32 {
    5
}

impl ExtensionSpec {
    pub fn new(id: impl Into<String>, world: World) -> ExtensionSpec {
        ExtensionSpec {
            id: id.into(),
            world,
            config: Vec::new(),
            limits: LimitOverrides::default(),
            webhook_allow: Vec::new(),
            http_allow: Vec::new(),
            failure_limit: default_failure_limit(),
        }
    }
}

pub struct Extension {
    spec: ExtensionSpec,
    id: Arc<str>,
    config: Arc<[(String, String)]>,
    /// Where its `wasi:http` requests may go (`hook-http` only).
    http: HttpGrant,
    limits: Limits,
    /// The operator's ceiling this extension was loaded under.
    cap: Limits,
    hash: String,
    /// What the component imports (all within its world's allowlist).
    imports: Arc<[String]>,
    pre: InstancePre<State>,
    /// The host's free instance slots.
    gate: Arc<Gate>,
    naming: Option<naming::GuestIndices>,
    layout: Option<layout::GuestIndices>,
    hook: Option<hook::GuestIndices>,
    stats: Mutex<Stats>,
    /// Set when the extension was switched off (too many failures in a row).
    disabled: Mutex<Option<String>>,
    /// What the most recent call cost.
    last_cost: Mutex<Option<CallCost>>,
}

/// What one call used, to set against its [`Limits`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CallCost {
    /// Wall-clock time, instantiation included.
    pub took_us: u64,
    pub fuel: u64,
    /// Peak linear memory.
    pub memory_bytes: u64,
    /// Log lines forwarded, and those dropped past the per-call budget.
    pub log_lines: u32,
    pub log_dropped: u32,
}

/// What the API shows about an extension.
#[derive(Clone, Debug, Serialize)]
pub struct ExtensionStatus {
    pub id: String,
    pub world: World,
    pub sha256: String,
    pub limits: Limits,
    /// Where its webhook actions may POST, and (hook-http) where its own
    /// requests may go: what the operator granted, at a glance.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhook_allow: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http_allow: Vec<String>,
    pub state: &'static str,
    pub disabled_because: Option<String>,
    #[serde(flatten)]
    pub stats: StatsView,
}

impl Extension {
    pub(crate) fn new(
        spec: ExtensionSpec,
        pre: InstancePre<State>,
        hash: String,
        cap: Limits,
        imports: Arc<[String]>,
        gate: Arc<Gate>,
    ) -> Result<Extension, ExtError> {
        let limits = Limits::resolve(spec.world.default_limits(), spec.limits, cap);
        let bad_export = |e: wasmtime::Error| ExtError::refused(format!("{e:#}"));
        let (mut n, mut l, mut h) = (None, None, None);
        match spec.world {
            World::Naming => n = Some(naming::GuestIndices::new(&pre).map_err(bad_export)?),
            World::Layout => l = Some(layout::GuestIndices::new(&pre).map_err(bad_export)?),
            World::Hook | World::HookHttp => {
                h = Some(hook::GuestIndices::new(&pre).map_err(bad_export)?)
            }
        }
        let mut config = spec.config.clone();
        config.sort();
        Ok(Extension {
            id: spec.id.as_str().into(),
            config: config.into(),
            http: HttpGrant {
                allow: spec.http_allow.clone().into(),
                canned: None,
            },
            limits,
            cap,
            hash,
            imports,
            pre,
            gate,
            naming: n,
            layout: l,
            hook: h,
            stats: Mutex::new(Stats::default()),
            disabled: Mutex::new(None),
            last_cost: Mutex::new(None),
            spec,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn world(&self) -> World {
        self.spec.world
    }

    pub fn spec(&self) -> &ExtensionSpec {
        &self.spec
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn sha256(&self) -> &str {
        &self.hash
    }

    /// The interfaces the component imports.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    pub fn status(&self) -> ExtensionStatus {
        let disabled = self
            .disabled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        ExtensionStatus {
            id: self.id.to_string(),
            world: self.spec.world,
            sha256: self.hash.clone(),
            limits: self.limits,
            webhook_allow: self.spec.webhook_allow.clone(),
            http_allow: self.spec.http_allow.clone(),
            state: if disabled.is_some() {
                "disabled"
            } else {
                "enabled"
            },
            disabled_because: disabled,
            stats: self.stats.lock().unwrap_or_else(|e| e.into_inner()).view(),
        }
    }

    /// What the most recent call used (none before the first).
    pub fn last_cost(&self) -> Option<CallCost> {
        *self.last_cost.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Switches a disabled extension back on (an operator's decision).
    pub fn enable(&self) {
        *self.disabled.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failures_in_a_row = 0;
    }

    /// The same component with another spec (config, limits), sharing the
    /// compiled code: what fixtures and a config reload use.
    pub fn reconfigured(&self, spec: ExtensionSpec) -> Result<Extension, ExtError> {
        if spec.world != self.spec.world {
            return Err(ExtError::refused(format!(
                "{} is a {} extension, not {}",
                self.id, self.spec.world, spec.world
            )));
        }
        Extension::new(
            spec,
            self.pre.clone(),
            self.hash.clone(),
            self.cap,
            self.imports.clone(),
            self.gate.clone(),
        )
    }

    /// The file path (relative to the recordings root) for a recording part.
    pub fn name(&self, rec: &Recording) -> Result<PathBuf, ExtError> {
        let Some(idx) = &self.naming else {
            return Err(self.wrong_world(World::Naming));
        };
        self.call(
            &self.http,
            |store, instance| {
                let guest = idx.load(&mut *store, instance)?;
                guest.call_name(&mut *store, rec)
            },
            |r| guest_result(r).and_then(|s| output::relative_path(&s)),
        )
    }

    /// The scenes for a layout event.
    pub fn layout(&self, input: &LayoutInput) -> Result<Vec<Scene>, ExtError> {
        let Some(idx) = &self.layout else {
            return Err(self.wrong_world(World::Layout));
        };
        self.call(
            &self.http,
            |store, instance| {
                let guest = idx.load(&mut *store, instance)?;
                guest.call_compute(&mut *store, input)
            },
            |r| {
                let scenes = guest_result(r)?;
                output::scenes(&scenes, input)?;
                Ok(scenes)
            },
        )
    }

    /// The actions for a finalized file, checked (paths inside the root,
    /// webhooks only to allowed prefixes).
    pub fn on_finalized(&self, file: &FinalizedFile) -> Result<Vec<Action>, ExtError> {
        self.hook_call(file, &self.http)
    }

    /// `on_finalized` with the `wasi:http` requests the allowlist lets
    /// through answered from `canned` instead of the network (fixtures).
    pub fn on_finalized_answered(
        &self,
        file: &FinalizedFile,
        canned: Arc<[CannedHttp]>,
    ) -> Result<Vec<Action>, ExtError> {
        let grant = HttpGrant {
            allow: self.http.allow.clone(),
            canned: Some(canned),
        };
        self.hook_call(file, &grant)
    }

    fn hook_call(&self, file: &FinalizedFile, http: &HttpGrant) -> Result<Vec<Action>, ExtError> {
        let Some(idx) = &self.hook else {
            return Err(self.wrong_world(World::Hook));
        };
        self.call(
            http,
            |store, instance| {
                let guest = idx.load(&mut *store, instance)?;
                guest.call_on_finalized(&mut *store, file)
            },
            |r| {
                let actions = guest_result(r)?;
                output::actions(&actions, &self.spec.webhook_allow)?;
                Ok(actions)
            },
        )
    }

    fn wrong_world(&self, want: World) -> ExtError {
        ExtError::Host {
            reason: format!("{} is a {} extension, not {want}", self.id, self.spec.world),
        }
    }

    /// One call in a fresh Store: instantiate, run `f`, check its answer with
    /// `check`, record the cost, and disable the extension after too many
    /// failures in a row.
    fn call<R, T>(
        &self,
        http: &HttpGrant,
        f: impl FnOnce(&mut Store<State>, &Instance) -> wasmtime::Result<R>,
        check: impl FnOnce(R) -> Result<T, ExtError>,
    ) -> Result<T, ExtError> {
        if self
            .disabled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            return Err(ExtError::Disabled {
                failures: self
                    .stats
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .failures_in_a_row,
            });
        }
        // Every call in flight ends within the cap's deadline, so waiting twice
        // that long for a slot only fails if the host is wedged; that is not
        // the extension's failure and does not count against it.
        let wait = Duration::from_millis(self.cap.deadline_ms.saturating_mul(2));
        let Some(_slot) = self.gate.enter(wait) else {
            tracing::warn!(
                extension = &*self.id,
                slots = pool::SLOTS,
                "no free instance slot"
            );
            return Err(ExtError::Host {
                reason: format!(
                    "all {} instance slots stayed busy for {} ms",
                    pool::SLOTS,
                    wait.as_millis()
                ),
            });
        };
        let started = Instant::now();
        let stdout = CappedOutput::new(STDIO_BYTES);
        let stderr = CappedOutput::new(STDIO_BYTES);
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut store = Store::new(
            self.pre.engine(),
            State {
                wasi,
                table: Default::default(),
                memory: MemoryLimiter {
                    max: self.limits.memory_bytes as usize,
                    hit: false,
                    peak: 0,
                },
                config: self.config.clone(),
                log: GuestLog::new(self.id.clone()),
                http: WasiHttpCtx::new(),
                http_policy: HttpPolicy::new(
                    self.id.clone(),
                    http.clone(),
                    started + Duration::from_millis(self.limits.deadline_ms),
                ),
            },
        );
        store.limiter(|s| &mut s.memory);
        let outcome = self.run(&mut store, f, &stderr).and_then(check);
        let took = started.elapsed();
        let fuel = self
            .limits
            .fuel
            .saturating_sub(store.get_fuel().unwrap_or(0));
        forward_stdio(&self.id, "stdout", &stdout);
        if outcome.is_ok() {
            forward_stdio(&self.id, "stderr", &stderr);
        }
        let log = &store.data().log;
        *self.last_cost.lock().unwrap_or_else(|e| e.into_inner()) = Some(CallCost {
            took_us: took.as_micros().min(u128::from(u64::MAX)) as u64,
            fuel,
            memory_bytes: store.data().memory.peak as u64,
            log_lines: GuestLog::LINES - log.left,
            log_dropped: log.dropped,
        });
        if store.data().log.dropped > 0 {
            tracing::warn!(
                extension = &*self.id,
                dropped = store.data().log.dropped,
                "guest log lines over the per-call budget were dropped"
            );
        }
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.record(
            took,
            fuel,
            outcome.as_ref().err().map(|e| (e.kind(), e.to_string())),
        );
        if let Err(e) = &outcome {
            tracing::warn!(extension = &*self.id, error = %e, kind = e.kind(), took_us = took.as_micros() as u64, "extension call failed");
            if stats.failures_in_a_row >= self.spec.failure_limit.max(1) {
                let why = format!("{} failures in a row; last: {e}", stats.failures_in_a_row);
                tracing::error!(extension = &*self.id, "extension disabled: {why}");
                *self.disabled.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
            }
        }
        outcome
    }

    fn run<R>(
        &self,
        store: &mut Store<State>,
        f: impl FnOnce(&mut Store<State>, &Instance) -> wasmtime::Result<R>,
        stderr: &CappedOutput,
    ) -> Result<R, ExtError> {
        store.set_fuel(self.limits.fuel).map_err(ExtError::host)?;
        let ticks = self.limits.deadline_ms.div_ceil(TICK.as_millis() as u64) + 1;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let result = self
            .pre
            .instantiate(&mut *store)
            .and_then(|instance| f(store, &instance));
        result.map_err(|e| self.classify(e, store, stderr))
    }

    /// A wasmtime error as the typed error it stands for.
    fn classify(
        &self,
        e: wasmtime::Error,
        store: &Store<State>,
        stderr: &CappedOutput,
    ) -> ExtError {
        if store.data().memory.hit {
            return ExtError::MemoryLimit {
                bytes: self.limits.memory_bytes,
            };
        }
        match e.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => ExtError::OutOfFuel {
                fuel: self.limits.fuel,
            },
            Some(Trap::Interrupt) => ExtError::Timeout {
                ms: self.limits.deadline_ms,
            },
            Some(trap) => {
                let said = String::from_utf8_lossy(&stderr.contents())
                    .trim()
                    .to_string();
                let message = if said.is_empty() {
                    trap.to_string()
                } else {
                    // The panic message is the guest's stderr (Rust prints
                    // "panicked at src/lib.rs:..:\n<message>" before aborting).
                    let keep = said.len().saturating_sub(2048);
                    said[said.ceil_char_boundary(keep)..].to_string()
                };
                ExtError::GuestPanic { message }
            }
            // Not a trap: the guest's answer could not be lifted (bad UTF-8, an
            // out-of-bounds pointer), or a host import failed.
            None => ExtError::invalid(format!("{e:#}")),
        }
    }

    /// Calls the extension once with a sample input of its world, as a check
    /// before it is swapped in: it must answer (a result or its own error)
    /// within its limits. Does not count towards the stats. A `hook-http`
    /// extension's requests are all denied here (the sample is not a real
    /// recording to announce); it must still answer.
    pub fn self_test(&self) -> Result<(), ExtError> {
        let r = match self.spec.world {
            World::Naming => self.name(&crate::samples::recording()).map(drop),
            World::Layout => self.layout(&crate::samples::layout_input()).map(drop),
            World::Hook | World::HookHttp => self
                .hook_call(&crate::samples::finalized_file(), &HttpGrant::default())
                .map(drop),
        };
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = Stats::default();
        *self.disabled.lock().unwrap_or_else(|e| e.into_inner()) = None;
        match r {
            Ok(()) | Err(ExtError::Extension { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The guest's own `result<_, ext-error>` as ours.
fn guest_result<T>(r: Result<T, GuestError>) -> Result<T, ExtError> {
    r.map_err(|e| {
        let (kind, message) = match e {
            GuestError::BadInput(m) => ("bad-input", m),
            GuestError::BadConfig(m) => ("bad-config", m),
            GuestError::Failed(m) => ("failed", m),
        };
        ExtError::Extension {
            kind: kind.to_string(),
            message: message.chars().take(1024).collect(),
        }
    })
}

fn forward_stdio(ext: &str, stream: &'static str, pipe: &CappedOutput) {
    let bytes = pipe.contents();
    if bytes.is_empty() {
        return;
    }
    for line in String::from_utf8_lossy(&bytes)
        .lines()
        .take(GuestLog::LINES as usize)
    {
        let line = &line[..line.floor_char_boundary(GuestLog::LINE_BYTES)];
        tracing::info!(extension = ext, stream, "{line}");
    }
}
