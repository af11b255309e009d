//! `edgerec ext ...`: the extension author's loop without a running daemon —
//! `check` a component as an install would, `test` it against its fixtures
//! with the production engine and limits, `bench` its per-call latency.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use edgerec_ext::{fixture, CallCost, Extension, Host, HostOptions, Limits, Manifest, World};
use serde_json::json;

#[derive(Subcommand)]
pub enum ExtCommand {
    /// Load a component as an install would: is it a component of its world,
    /// does it import only what that world allows, does it answer a sample
    /// input within its limits. Prints its imports and limits.
    Check {
        #[command(flatten)]
        target: Target,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a component against its fixtures (`*.json`: input, expected answer
    /// or error) with the production engine and limits; reports each call's
    /// time, fuel, memory and log lines against the limits.
    Test {
        #[command(flatten)]
        target: Target,
        /// The fixtures folder; default: `fixtures/` in the extension's folder.
        #[arg(long)]
        fixtures: Option<PathBuf>,
        /// Print JSON instead of text (for CI).
        #[arg(long)]
        json: bool,
    },
    /// Per-call latency with a fresh Store per call, as the daemon calls it.
    Bench {
        #[command(flatten)]
        target: Target,
        /// Calls to time (after 50 warm-up calls).
        #[arg(long, default_value_t = 5000)]
        calls: u32,
        /// Call with this fixture's input instead of the world's sample.
        #[arg(long)]
        fixture: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

/// Which component, and how it is declared.
#[derive(Args)]
pub struct Target {
    /// The extension's folder (with extension.toml, its crate, fixtures/), or a
    /// `.wasm` component.
    path: PathBuf,
    /// The component, when `path` is a folder; default: the folder's crate as
    /// its workspace builds it (`target/wasm32-wasip2/release/<crate>.wasm`).
    #[arg(long)]
    wasm: Option<PathBuf>,
    /// Its `extension.toml`; default: the one in the folder.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// The world, for a bare `.wasm` without a manifest: naming, layout, hook.
    #[arg(long, value_parser = parse_world)]
    world: Option<World>,
}

fn parse_world(s: &str) -> Result<World, String> {
    World::ALL
        .into_iter()
        .find(|w| w.name() == s)
        .ok_or_else(|| format!("{s:?}: one of naming, layout, hook"))
}

struct Resolved {
    manifest: Manifest,
    wasm_path: PathBuf,
    wasm: Vec<u8>,
    /// The extension's folder, if given one.
    dir: Option<PathBuf>,
}

impl Target {
    fn resolve(&self) -> anyhow::Result<Resolved> {
        let dir = self.path.is_dir().then(|| self.path.clone());
        let manifest_path = self
            .manifest
            .clone()
            .or_else(|| dir.as_ref().map(|d| d.join("extension.toml")));
        let mut manifest = match &manifest_path {
            Some(p) => Manifest::parse(
                &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
            None => Manifest::default(),
        };
        if self.world.is_some() {
            manifest.world = self.world;
        }
        if manifest.world.is_none() {
            bail!("no world: give --world naming|layout|hook or a manifest with `world`");
        }
        if manifest.id.is_empty() {
            manifest.id = self
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "extension".into());
        }
        let wasm_path = match (&self.wasm, &dir) {
            (Some(p), _) => p.clone(),
            (None, Some(d)) => default_wasm(d)?,
            (None, None) => self.path.clone(),
        };
        let wasm = std::fs::read(&wasm_path)
            .with_context(|| format!("reading {}", wasm_path.display()))?;
        Ok(Resolved {
            manifest,
            wasm_path,
            wasm,
            dir,
        })
    }
}

impl Resolved {
    fn load(&self, host: &Host) -> anyhow::Result<Extension> {
        let spec = self
            .manifest
            .spec(&Default::default())
            .map_err(|e| anyhow::anyhow!(e))?;
        host.load(spec, &self.wasm).map_err(|e| {
            anyhow::anyhow!("{} refused ({}): {e}", self.wasm_path.display(), e.kind())
        })
    }

    fn title(&self) -> String {
        format!(
            "{} ({}, {}, {})",
            self.manifest.id,
            self.manifest.world.map(World::name).unwrap_or("?"),
            self.wasm_path.display(),
            &edgerec_ext::content_hash(&self.wasm)[..12]
        )
    }
}

pub fn run(cmd: ExtCommand) -> anyhow::Result<()> {
    let ok = match cmd {
        ExtCommand::Check { target, json } => check(&target.resolve()?, json)?,
        ExtCommand::Test {
            target,
            fixtures,
            json,
        } => test(&target.resolve()?, fixtures, json)?,
        ExtCommand::Bench {
            target,
            calls,
            fixture,
            json,
        } => bench(&target.resolve()?, calls, fixture.as_deref(), json)?,
    };
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

fn check(r: &Resolved, as_json: bool) -> anyhow::Result<bool> {
    let host = Host::new(HostOptions::default())?;
    let loaded = r.load(&host);
    let (ext, refused) = match loaded {
        Ok(e) => (Some(e), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let self_test = ext
        .as_ref()
        .map(|e| e.self_test().map_err(|x| format!("{}: {x}", x.kind())));
    let ok = refused.is_none() && matches!(self_test, Some(Ok(())));
    if as_json {
        let v = json!({
            "id": r.manifest.id,
            "world": r.manifest.world,
            "wasm": r.wasm_path,
            "sha256": edgerec_ext::content_hash(&r.wasm),
            "bytes": r.wasm.len(),
            "ok": ok,
            "refused": refused,
            "imports": ext.as_ref().map(|e| e.imports().to_vec()),
            "limits": ext.as_ref().map(|e| e.limits()),
            "self_test": self_test.as_ref().map(|t| t.as_ref().err()),
            "self_test_cost": ext.as_ref().and_then(|e| e.last_cost()),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ok);
    }
    println!("{}", r.title());
    println!("  {} bytes", r.wasm.len());
    if let Some(why) = &refused {
        println!("  REFUSED  {why}");
        return Ok(false);
    }
    let ext = ext.expect("loaded when not refused");
    println!("  imports:");
    for i in ext.imports() {
        println!("    {i}");
    }
    println!("  limits:  {}", limits_line(ext.limits()));
    match self_test.expect("run when loaded") {
        Ok(()) => {
            let cost = ext.last_cost().unwrap_or_default();
            println!("  self-test ok: {}", cost_line(&cost, ext.limits()));
        }
        Err(e) => println!("  SELF-TEST FAILED  {e}"),
    }
    Ok(ok)
}

fn test(r: &Resolved, fixtures: Option<PathBuf>, as_json: bool) -> anyhow::Result<bool> {
    let dir = match (fixtures, &r.dir) {
        (Some(f), _) => f,
        (None, Some(d)) => d.join("fixtures"),
        (None, None) => bail!("no fixtures: give --fixtures DIR (or the extension's folder)"),
    };
    let host = Host::new(HostOptions::default())?;
    let reports =
        fixture::run_dir(&host, &r.manifest, &r.wasm, &dir).map_err(|e| anyhow::anyhow!(e))?;
    let failed = reports.iter().filter(|r| r.failure.is_some()).count();
    if as_json {
        let v = json!({
            "id": r.manifest.id,
            "wasm": r.wasm_path,
            "sha256": edgerec_ext::content_hash(&r.wasm),
            "passed": reports.len() - failed,
            "failed": failed,
            "fixtures": reports.iter().map(|f| json!({
                "file": f.file,
                "about": f.about,
                "ok": f.failure.is_none(),
                "failure": f.failure,
                "cost": f.cost,
                "limits": f.limits,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(failed == 0);
    }
    println!("{}", r.title());
    for f in &reports {
        let name = f.file.file_name().unwrap_or_default().to_string_lossy();
        let cost = f
            .cost
            .map(|c| cost_line(&c, f.limits))
            .unwrap_or_else(|| format!("{} µs", f.took.as_micros()));
        match &f.failure {
            None => println!("  ok    {name}: {}\n        {cost}", f.about),
            Some(e) => println!("  FAIL  {name}: {}\n        {e}\n        {cost}", f.about),
        }
    }
    println!(
        "{} fixture(s), {} passed, {failed} failed",
        reports.len(),
        reports.len() - failed
    );
    Ok(failed == 0)
}

fn bench(r: &Resolved, calls: u32, fixture: Option<&Path>, as_json: bool) -> anyhow::Result<bool> {
    let host = Host::new(HostOptions::default())?;
    let ext = r.load(&host)?;
    let input = match fixture {
        Some(f) => fixture::fixture_input(f).map_err(|e| anyhow::anyhow!(e))?,
        None => serde_json::Value::Null,
    };
    let input = fixture::Input::new(ext.world(), &input).map_err(|e| anyhow::anyhow!(e))?;
    // One call shows the input works; its error would make the timings moot.
    input
        .call(&ext)
        .map_err(|e| anyhow::anyhow!("the first call failed ({}): {e}", e.kind()))?;
    for _ in 0..50 {
        let _ = input.call(&ext);
    }
    let mut times = Vec::with_capacity(calls as usize);
    let started = Instant::now();
    for _ in 0..calls.max(1) {
        let t = Instant::now();
        let _ = input.call(&ext);
        times.push(t.elapsed());
    }
    let wall = started.elapsed();
    times.sort_unstable();
    let pct = |p: usize| times[((times.len() - 1) * p).div_ceil(100)];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let cost = ext.last_cost().unwrap_or_default();
    let (p50, p90, p99, max) = (pct(50), pct(90), pct(99), times[times.len() - 1]);
    let mean = wall / times.len() as u32;
    if as_json {
        let v = json!({
            "id": r.manifest.id,
            "world": r.manifest.world,
            "sha256": edgerec_ext::content_hash(&r.wasm),
            "calls": times.len(),
            "fresh_store_per_call": true,
            "p50_us": us(p50), "p90_us": us(p90), "p99_us": us(p99), "max_us": us(max),
            "mean_us": us(mean),
            "calls_per_s": times.len() as f64 / wall.as_secs_f64(),
            "fuel_per_call": cost.fuel,
            "memory_bytes": cost.memory_bytes,
            "limits": ext.limits(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(true);
    }
    println!("{}", r.title());
    println!(
        "  {} calls, a fresh Store and instance each: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs, mean {:.1} µs ({:.0} calls/s on one thread)",
        times.len(),
        us(p50),
        us(p90),
        us(p99),
        us(max),
        us(mean),
        times.len() as f64 / wall.as_secs_f64()
    );
    println!("  per call: {}", cost_line(&cost, ext.limits()));
    Ok(true)
}

fn limits_line(l: Limits) -> String {
    format!(
        "fuel {}, deadline {} ms, memory {}",
        l.fuel,
        l.deadline_ms,
        mib(l.memory_bytes)
    )
}

fn cost_line(c: &CallCost, l: Limits) -> String {
    format!(
        "{} µs of {} ms, fuel {} of {} ({:.2}%), memory {} of {}, {} log line(s){}",
        c.took_us,
        l.deadline_ms,
        c.fuel,
        l.fuel,
        c.fuel as f64 * 100.0 / l.fuel.max(1) as f64,
        mib(c.memory_bytes),
        mib(l.memory_bytes),
        c.log_lines,
        if c.log_dropped > 0 {
            format!(" ({} dropped)", c.log_dropped)
        } else {
            String::new()
        }
    )
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// The crate in `dir` as its workspace builds it for wasm32-wasip2.
fn default_wasm(dir: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::fs::read_to_string(dir.join("Cargo.toml"))
        .with_context(|| format!("no --wasm given and no Cargo.toml in {}", dir.display()))?;
    let name = cargo
        .lines()
        .find_map(|l| {
            let l = l.trim();
            let v = l.strip_prefix("name")?.trim_start().strip_prefix('=')?;
            Some(v.trim().trim_matches('"').replace('-', "_"))
        })
        .context("Cargo.toml has no package name")?;
    let mut at = dir.canonicalize()?;
    loop {
        let candidate = at
            .join("target/wasm32-wasip2/release")
            .join(format!("{name}.wasm"));
        if candidate.exists() {
            return Ok(candidate);
        }
        if !at.pop() {
            bail!(
                "{name}.wasm not found: build it with `cargo build --release --target wasm32-wasip2`, or pass --wasm"
            );
        }
    }
}
