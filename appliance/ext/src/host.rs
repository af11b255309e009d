//! The wasmtime host: one [`Engine`] for the process, an epoch ticker thread,
//! the linker with the imports a guest may have, and loading a component into
//! an [`Extension`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::{self, edgerec::ext};
use crate::cache::{compile, content_hash, ArtifactCache, Origin};
use crate::error::ExtError;
use crate::extension::{Extension, ExtensionSpec};
use crate::http::HttpPolicy;
use crate::limits::Limits;
use crate::pool::{self, Gate};

/// How often the epoch advances; deadlines are counted in these ticks.
pub(crate) const TICK: Duration = Duration::from_millis(2);

/// Operator-wide settings for the host.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// Where compiled artifacts are cached (`None`: compile on every load).
    pub cache_dir: Option<PathBuf>,
    /// The most any extension may be given, whatever it asks.
    pub cap: Limits,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            cache_dir: None,
            cap: Limits::CAP,
        }
    }
}

pub struct Host {
    engine: Engine,
    linker: Linker<State>,
    cache: Option<ArtifactCache>,
    cap: Limits,
    /// Free pool slots; a call waits here for one.
    gate: Arc<Gate>,
    ticker: Option<Ticker>,
}

/// Advances the engine's epoch every [`TICK`] while a call is in flight, until
/// dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    gate: Arc<Gate>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.gate.wake_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.ticker.take();
    }
}

/// What a guest's Store holds for one call.
pub(crate) struct State {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub memory: MemoryLimiter,
    pub config: Arc<[(String, String)]>,
    pub log: GuestLog,
    pub http: WasiHttpCtx,
    /// Where `wasi:http` requests may go (nowhere unless `hook-http`).
    pub http_policy: HttpPolicy,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_policy,
        }
    }
}

/// Refuses memory growth past the limit, and remembers that it did so a trap
/// that follows (Rust aborts when an allocation fails) is reported as the
/// memory limit rather than a panic.
pub(crate) struct MemoryLimiter {
    pub max: usize,
    pub hit: bool,
    /// The most linear memory the guest had during the call.
    pub peak: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.hit = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The guest's log lines, forwarded to tracing with the extension's id, at
/// most [`GuestLog::LINES`] per call and [`GuestLog::LINE_BYTES`] each.
pub(crate) struct GuestLog {
    pub ext: Arc<str>,
    pub left: u32,
    pub dropped: u32,
}

impl GuestLog {
    pub const LINES: u32 = 64;
    pub const LINE_BYTES: usize = 1024;

    pub fn new(ext: Arc<str>) -> GuestLog {
        GuestLog {
            ext,
            left: Self::LINES,
            dropped: 0,
        }
    }

    pub fn line(&mut self, level: ext::log::Level, message: &str) {
        if self.left == 0 {
            self.dropped += 1;
            return;
        }
        self.left -= 1;
        let message = &message[..message.floor_char_boundary(Self::LINE_BYTES)];
        let ext = &*self.ext;
        use ext::log::Level;
        match level {
            Level::Trace => tracing::trace!(extension = ext, "{message}"),
            Level::Debug => tracing::debug!(extension = ext, "{message}"),
            Level::Info => tracing::info!(extension = ext, "{message}"),
            Level::Warn => tracing::warn!(extension = ext, "{message}"),
            Level::Error => tracing::error!(extension = ext, "{message}"),
        }
    }
}

impl ext::log::Host for State {
    fn log(&mut self, level: ext::log::Level, message: String) {
        self.log.line(level, &message);
    }
}

impl ext::config::Host for State {
    fn get(&mut self, key: String) -> Option<String> {
        self.config
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }

    fn all(&mut self) -> Vec<(String, String)> {
        self.config.to_vec()
    }
}

impl ext::types::Host for State {}

impl Host {
    pub fn new(options: HostOptions) -> Result<Host, ExtError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            // Many small instances, each short-lived: keep virtual reservations
            // at the operator's memory cap instead of wasmtime's 4 GiB default,
            // in a pool of pre-mapped slots (see `pool`).
            .memory_reservation(pool::memory_reservation(options.cap) as u64)
            .memory_guard_size(64 << 10)
            .max_wasm_stack(1 << 20)
            .allocation_strategy(pool::strategy(options.cap));
        let engine = Engine::new(&config).map_err(ExtError::host)?;
        let mut linker = Linker::new(&engine);
        // All of WASI p2 is linked (a filesystem with nothing pre-opened, sockets
        // switched off in the context), but a component importing more than its
        // world's allowlist is refused before it is instantiated.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(ExtError::host)?;
        // wasi:http likewise: only a hook-http extension may import it, and its
        // requests go through `HttpPolicy`.
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
            .map_err(ExtError::host)?;
        bindings::Host_::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(ExtError::host)?;
        let cache = match options.cache_dir {
            Some(dir) => Some(ArtifactCache::new(&engine, dir).map_err(ExtError::host)?),
            None => None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let gate = Arc::new(Gate::new(pool::SLOTS));
        let thread = {
            let (engine, stop, gate) = (engine.clone(), stop.clone(), gate.clone());
            std::thread::Builder::new()
                .name("ext-epoch".into())
                .spawn(move || {
                    // Ticks only while a call is in flight: deadlines count
                    // ticks from their call's start, so a paused epoch costs
                    // nothing, and an idle box is not woken 500 times a second.
                    while !stop.load(Ordering::Relaxed) {
                        gate.wait_busy(&stop);
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(ExtError::host)?
        };
        Ok(Host {
            engine,
            linker,
            cache,
            cap: options.cap,
            gate: gate.clone(),
            ticker: Some(Ticker {
                stop,
                gate,
                thread: Some(thread),
            }),
        })
    }

    pub fn cap(&self) -> Limits {
        self.cap
    }

    /// Compiles (or finds cached) `wasm`, checks it is a component of
    /// `spec.world` importing only what that world allows, and prepares it for
    /// calls. Does not call it: see [`Extension::self_test`].
    pub fn load(&self, spec: ExtensionSpec, wasm: &[u8]) -> Result<Extension, ExtError> {
        if !wasm.starts_with(b"\0asm") {
            return Err(ExtError::refused("not a WebAssembly file"));
        }
        check_http_allow(&spec)?;
        let hash = content_hash(wasm);
        let started = std::time::Instant::now();
        let (component, origin) = match &self.cache {
            Some(c) => c.load(&self.engine, wasm, &hash),
            None => compile(&self.engine, wasm).map(|c| (c, Origin::Compiled)),
        }
        .map_err(|e| ExtError::refused(format!("not a loadable component: {e:#}")))?;
        let ty = component.component_type();
        let imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(n, _)| n.to_owned())
            .collect();
        let refused: Vec<String> = imports
            .iter()
            .filter_map(|name| spec.world.refuse_import(name))
            .collect();
        if !refused.is_empty() {
            return Err(ExtError::refused(refused.join("; ")));
        }
        let export = spec.world.export();
        if !ty.exports(&self.engine).any(|(name, _)| name == export) {
            return Err(ExtError::refused(format!(
                "does not export {export}: not a {} extension",
                spec.world
            )));
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| ExtError::refused(format!("cannot be linked: {e:#}")))?;
        tracing::info!(
            extension = %spec.id,
            world = %spec.world,
            hash = &hash[..12],
            cached = origin == Origin::Cached,
            took_ms = started.elapsed().as_secs_f64() * 1000.0,
            "extension loaded"
        );
        Extension::new(spec, pre, hash, self.cap, imports.into(), self.gate.clone())
    }
}

/// A `hook-http` extension must be told where it may call (and only it may
/// be); every prefix must be an http(s) URL with a host.
fn check_http_allow(spec: &ExtensionSpec) -> Result<(), ExtError> {
    if spec.world != crate::World::HookHttp {
        if spec.http_allow.is_empty() {
            return Ok(());
        }
        return Err(ExtError::refused(format!(
            "http_allow is for hook-http extensions; {} is a {} extension",
            spec.id, spec.world
        )));
    }
    if spec.http_allow.is_empty() {
        return Err(ExtError::refused(
            "a hook-http extension needs http_allow: the URL prefixes it may reach",
        ));
    }
    for p in &spec.http_allow {
        let host = p
            .strip_prefix("https://")
            .or_else(|| p.strip_prefix("http://"))
            .and_then(|rest| rest.split(['/', '?', '#']).next())
            .unwrap_or("");
        if host.is_empty() || host.contains('@') {
            return Err(ExtError::refused(format!(
                "http_allow entry {p:?} is not an http(s) URL prefix with a host"
            )));
        }
    }
    Ok(())
}
