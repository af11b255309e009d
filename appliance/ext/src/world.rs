//! The worlds an extension can target, what each may import, and the limits
//! each gets unless the operator says otherwise.

use serde::{Deserialize, Serialize};

use crate::limits::Limits;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    Naming,
    Layout,
    Hook,
    /// A hook that may make HTTP requests itself, to the prefixes the operator
    /// allowed (`http_allow`). The WIT world is `hook-http-ext`.
    #[serde(rename = "hook-http")]
    HookHttp,
}

/// The package every edgerec interface lives in.
const PACKAGE: &str = "edgerec:ext/";
const VERSION: &str = "@0.1.0";

/// WASI interfaces a guest may import: what Rust's (and most languages')
/// standard library pulls in for stdio, clocks and randomness. No filesystem,
/// no sockets, no HTTP: a component importing those is refused at load, so it
/// fails where the operator installs it, not on the first recording.
const WASI_ALLOWED: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

/// What a `hook-http` extension may import on top of [`WASI_ALLOWED`].
const WASI_HTTP: &[&str] = &["wasi:http/types", "wasi:http/outgoing-handler"];

impl World {
    pub const ALL: [World; 4] = [World::Naming, World::Layout, World::Hook, World::HookHttp];

    pub fn name(self) -> &'static str {
        match self {
            World::Naming => "naming",
            World::Layout => "layout",
            World::Hook => "hook",
            World::HookHttp => "hook-http",
        }
    }

    /// Whether extensions of this world are called after a part is finalized
    /// (and so can be bound as hooks).
    pub fn is_hook(self) -> bool {
        matches!(self, World::Hook | World::HookHttp)
    }

    /// The interface a component of this world must export.
    pub fn export(self) -> String {
        let iface = match self {
            World::HookHttp => "hook",
            w => w.name(),
        };
        format!("{PACKAGE}{iface}{VERSION}")
    }

    /// Why `import` (a component import name such as
    /// `wasi:filesystem/types@0.2.3`) is not allowed, or `None` if it is.
    pub fn refuse_import(self, import: &str) -> Option<String> {
        let unversioned = import.split('@').next().unwrap_or(import);
        if let Some(iface) = unversioned.strip_prefix(PACKAGE) {
            return match iface {
                "log" | "config" | "types" => None,
                _ => Some(format!("imports {import}, which the host does not provide")),
            };
        }
        if WASI_ALLOWED.contains(&unversioned)
            || (self == World::HookHttp && WASI_HTTP.contains(&unversioned))
        {
            return None;
        }
        let what = match unversioned.split('/').next() {
            Some("wasi:filesystem") => "the filesystem",
            Some("wasi:sockets") => "sockets",
            Some("wasi:http") => "HTTP",
            _ => "an interface outside the allowlist",
        };
        let hint = if self == World::Hook && unversioned.starts_with("wasi:http/") {
            " (a hook that must call out targets hook-http-ext and is declared with world = \"hook-http\" and http_allow)"
        } else if self == World::HookHttp {
            " and wasi:http/outgoing-handler"
        } else {
            ""
        };
        Some(format!(
            "imports {import} ({what}); a {} extension may import only edgerec:ext/log, edgerec:ext/config and WASI stdio, clocks and random{hint}",
            self.name()
        ))
    }

    /// Limits when the operator sets none: a name is computed before a file is
    /// opened, so it is tight; a hook runs after the fact and may do more.
    pub fn default_limits(self) -> Limits {
        match self {
            World::Naming => Limits {
                fuel: 10_000_000,
                deadline_ms: 10,
                memory_bytes: 16 << 20,
            },
            World::Layout => Limits {
                fuel: 50_000_000,
                deadline_ms: 20,
                memory_bytes: 32 << 20,
            },
            World::Hook => Limits {
                fuel: 100_000_000,
                deadline_ms: 100,
                memory_bytes: 64 << 20,
            },
            // Fuel counts only the guest's own work; the deadline also bounds
            // the time its requests wait on the network.
            World::HookHttp => Limits {
                fuel: 100_000_000,
                deadline_ms: 1_000,
                memory_bytes: 64 << 20,
            },
        }
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for World {
    type Err = String;
    fn from_str(s: &str) -> Result<World, String> {
        World::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| {
                format!("unknown world {s:?}: expected naming, layout, hook or hook-http")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_checked_by_interface_not_version() {
        let w = World::Naming;
        assert_eq!(w.refuse_import("wasi:cli/stdout@0.2.6"), None);
        assert_eq!(w.refuse_import("edgerec:ext/log@0.1.0"), None);
        assert!(w
            .refuse_import("wasi:filesystem/types@0.2.3")
            .unwrap()
            .contains("the filesystem"));
        assert!(w
            .refuse_import("wasi:sockets/tcp@0.2.0")
            .unwrap()
            .contains("sockets"));
        assert!(w
            .refuse_import("wasi:http/outgoing-handler@0.2.0")
            .is_some());
        assert!(w.refuse_import("edgerec:ext/naming@0.1.0").is_some());
        assert!(w.refuse_import("acme:spy/all").is_some());
    }

    #[test]
    fn only_hook_http_may_import_http_and_still_no_sockets() {
        let plain = World::Hook.refuse_import("wasi:http/outgoing-handler@0.2.12");
        assert!(plain.unwrap().contains("hook-http"));
        let h = World::HookHttp;
        assert_eq!(h.refuse_import("wasi:http/outgoing-handler@0.2.12"), None);
        assert_eq!(h.refuse_import("wasi:http/types@0.2.0"), None);
        assert!(h
            .refuse_import("wasi:http/incoming-handler@0.2.12")
            .is_some());
        assert!(h.refuse_import("wasi:sockets/tcp@0.2.12").is_some());
        assert!(h.refuse_import("wasi:filesystem/preopens@0.2.12").is_some());
        assert_eq!(h.export(), "edgerec:ext/hook@0.1.0");
        assert!(h.is_hook() && World::Hook.is_hook() && !World::Naming.is_hook());
        assert_eq!("hook-http".parse::<World>(), Ok(World::HookHttp));
    }
}
