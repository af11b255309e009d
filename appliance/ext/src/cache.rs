//! Compiled components on disk, so a restart loads extensions in a millisecond
//! instead of compiling them again (85–180 ms each on this class of machine).
//!
//! The key is the wasm's SHA-256 and the engine's compatibility hash (a
//! wasmtime upgrade or a different CPU feature set makes artifacts unusable).
//! Files are written to a temporary name and renamed into place: an artifact in
//! use is memory-mapped, and overwriting it in place would crash the process.
//! A file that fails to load is a miss, never an error.

#[cfg(feature = "compiler")]
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

/// Whether a load compiled the component or found it cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Compiled,
    Cached,
}

/// Compiles `wasm` for `engine` (Cranelift, the `compiler` feature).
#[cfg(feature = "compiler")]
pub fn compile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Component> {
    Component::new(engine, wasm)
}

/// A build without the `compiler` feature compiles nothing, and its cache key
/// (`engine_key`) matches no artifact: every load is refused with this reason.
#[cfg(not(feature = "compiler"))]
pub fn compile(_engine: &Engine, _wasm: &[u8]) -> wasmtime::Result<Component> {
    Err(wasmtime::format_err!(
        "this edgerec was built without the Wasm compiler (cargo feature `wasm-compiler`), \
         so it cannot compile extensions"
    ))
}

#[cfg(feature = "compiler")]
fn engine_key(engine: &Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Without a compiler wasmtime has no compatibility hash to give: such a build
/// finds no artifact, and says why it cannot compile one.
#[cfg(not(feature = "compiler"))]
fn engine_key(_engine: &Engine) -> String {
    "no-compiler".into()
}

pub fn content_hash(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

impl ArtifactCache {
    pub fn new(engine: &Engine, dir: PathBuf) -> std::io::Result<ArtifactCache> {
        std::fs::create_dir_all(&dir)?;
        Ok(ArtifactCache {
            dir,
            engine_key: engine_key(engine),
        })
    }

    fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(format!("{hash}-{}.cwasm", self.engine_key))
    }

    /// The component for `wasm` (whose SHA-256 is `hash`), from the cache or
    /// compiled and then cached.
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        hash: &str,
    ) -> wasmtime::Result<(Component, Origin)> {
        let path = self.path(hash);
        if path.exists() {
            // SAFETY: the file is one this cache wrote (from `Component::serialize`)
            // under a key that includes the engine's compatibility hash, in a
            // directory only the daemon writes; wasmtime still checks its header
            // and refuses a mismatched one, which is then treated as a miss.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, Origin::Cached)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "extension artifact unusable; compiling again");
                }
            }
        }
        let component = compile(engine, wasm)?;
        if let Err(e) = self.store(&path, &component.serialize()?) {
            tracing::warn!(path = %path.display(), error = %e, "could not cache the compiled extension");
        }
        Ok((component, Origin::Compiled))
    }

    fn store(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

/// Runs in the build without Cranelift only (`tests/run`:
/// `cargo test -p edgerec-ext --no-default-features --lib`).
#[cfg(all(test, not(feature = "compiler")))]
mod without_compiler {
    use crate::{ExtensionSpec, Host, HostOptions, World};

    #[test]
    fn a_component_is_refused_with_the_missing_feature_named() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::new(HostOptions {
            cache_dir: Some(dir.path().to_owned()),
            ..HostOptions::default()
        })
        .unwrap();
        // A component's preamble: magic, version 0x0d, layer 1.
        let wasm = b"\0asm\x0d\0\x01\0";
        let err = host
            .load(ExtensionSpec::new("names", World::Naming), wasm)
            .err()
            .expect("loaded without a compiler");
        assert_eq!(err.kind(), "refused");
        assert!(
            err.to_string().contains("cargo feature `wasm-compiler`"),
            "{err}"
        );
    }
}
