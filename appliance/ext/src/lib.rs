//! The Wasm extension host: operators replace the shell scripts other recording
//! servers run (on_record_hook.sh, exec_record_done, runOnRecordSegmentComplete)
//! with components that name files, lay out multi-participant recordings and act
//! after a part is finalized — and cannot touch anything they were not given.
//!
//! - The interface is `wit/` (`edgerec:ext@0.1.0`): worlds `naming-ext`,
//!   `layout-ext`, `hook-ext`; guests import only `log` and `config`. The
//!   opt-in `hook-http-ext` adds `wasi:http`, to the operator's allowlist
//!   ([`http`]).
//! - [`Host`]: one wasmtime `Engine` (fuel, epoch interruption), an epoch ticker
//!   thread, compiled artifacts cached by content and engine hash.
//! - [`Extension`]: an `InstancePre` and a fresh Store per call, limits per world
//!   capped by the operator, every failure a typed [`ExtError`], disabled after
//!   too many in a row.
//! - [`output`]: what the host accepts back (paths stay inside the recordings
//!   root, webhooks only to allowed URLs, everything bounded).
//!
//! wasmtime lives in this crate only, so the rest of the daemon compiles fast.

mod bindings;
mod cache;
mod error;
mod extension;
pub mod fixture;
mod grid;
mod host;
pub mod http;
mod limits;
mod manifest;
pub mod output;
mod pool;
pub mod samples;
mod stats;
mod stdio;
mod world;

pub use bindings::{
    Action, Canvas, Event, FinalizedFile, Fit, LayoutInput, Participant, Recording, Rect, Region,
    Scene, Track, TrackKind, Webhook,
};
pub use cache::content_hash;
pub use error::ExtError;
pub use extension::{CallCost, Extension, ExtensionSpec, ExtensionStatus};
pub use grid::grid as builtin_grid;
pub use host::{Host, HostOptions};
pub use limits::{LimitOverrides, Limits};
pub use manifest::Manifest;
pub use stats::StatsView;
pub use world::World;
