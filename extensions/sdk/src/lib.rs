//! The authoring kit for edgerec extensions: the `edgerec:ext@0.1.0` bindings
//! (from the WIT files in the repository's `wit/`), generated once here so an
//! extension is a trait impl and one macro call.
//!
//! ```ignore
//! use edgerec_ext_sdk::naming::{Naming, Recording, ExtError};
//!
//! struct ByDay;
//! impl Naming for ByDay {
//!     fn name(rec: Recording) -> Result<String, ExtError> {
//!         Ok(format!("{}/{}.{}", rec.app, rec.id, rec.container))
//!     }
//! }
//! edgerec_ext_sdk::export_naming!(ByDay);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`: the `.wasm` in
//! `target/wasm32-wasip2/release/` is the component the daemon loads.

/// Bindings for the naming world (`naming-ext`); it also generates the shared
/// `types`, `log` and `config` interfaces the other two worlds reuse.
#[doc(hidden)]
pub mod naming_world {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "naming-ext",
        pub_export_macro: true,
        export_macro_name: "export_naming",
        default_bindings_module: "edgerec_ext_sdk::naming_world",
    });
}

#[doc(hidden)]
pub mod layout_world {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "layout-ext",
        pub_export_macro: true,
        export_macro_name: "export_layout",
        default_bindings_module: "edgerec_ext_sdk::layout_world",
        with: {
            "edgerec:ext/types@0.1.0": crate::naming_world::edgerec::ext::types,
            "edgerec:ext/log@0.1.0": crate::naming_world::edgerec::ext::log,
            "edgerec:ext/config@0.1.0": crate::naming_world::edgerec::ext::config,
        },
    });
}

#[doc(hidden)]
pub mod hook_world {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "hook-ext",
        pub_export_macro: true,
        export_macro_name: "export_hook",
        default_bindings_module: "edgerec_ext_sdk::hook_world",
        with: {
            "edgerec:ext/types@0.1.0": crate::naming_world::edgerec::ext::types,
            "edgerec:ext/log@0.1.0": crate::naming_world::edgerec::ext::log,
            "edgerec:ext/config@0.1.0": crate::naming_world::edgerec::ext::config,
        },
    });
}

/// Import-only bindings for `wasi:http` (its `imports` world), behind [`http`].
/// A hook that calls them is exported with `export_hook!` as any other: the
/// component then imports `wasi:http/outgoing-handler` on top of `hook-ext`,
/// which is the `hook-http-ext` world.
#[doc(hidden)]
pub mod http_imports {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "wasi:http/imports@0.2.12",
        generate_all,
    });
}

pub mod http;

pub use hook_world::export_hook;
pub use layout_world::export_layout;
pub use naming_world::export_naming;

/// The shared records: recordings, tracks, participants, errors.
pub mod types {
    pub use crate::naming_world::edgerec::ext::types::*;

    /// The value of `key` in a list of attrs (or tags).
    pub fn attr<'a>(attrs: &'a Attrs, key: &str) -> Option<&'a str> {
        attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A naming extension: implement [`naming::Naming`], then `export_naming!(YourType)`.
pub mod naming {
    pub use crate::naming_world::exports::edgerec::ext::naming::Guest as Naming;
    pub use crate::types::*;
}

/// A layout extension: implement [`layout::Layout`], then `export_layout!(YourType)`.
pub mod layout {
    pub use crate::layout_world::exports::edgerec::ext::layout::Guest as Layout;
    pub use crate::layout_world::exports::edgerec::ext::layout::*;
    pub use crate::types::{attr, Track, TrackKind};
}

/// A hook extension: implement [`hook::Hook`], then `export_hook!(YourType)`
/// A hook that calls out itself uses [`http`] and is declared `world = "hook-http"`.
pub mod hook {
    pub use crate::hook_world::exports::edgerec::ext::hook::Guest as Hook;
    pub use crate::hook_world::exports::edgerec::ext::hook::*;
    pub use crate::types::{attr, Track, TrackKind};
}

/// The extension's config: the key/value pairs the operator set for it.
pub mod config {
    pub use crate::naming_world::edgerec::ext::config::{all, get};
}

/// Log lines into the daemon's log, tagged with the extension's id.
pub mod log {
    use crate::naming_world::edgerec::ext::log::{log, Level};

    pub fn trace(message: &str) {
        log(Level::Trace, message)
    }
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// `s` as a JSON string literal, quotes included: guests build small JSON
/// bodies by hand and stay small without serde.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Calendar date of a Unix time in milliseconds, UTC: `(year, month, day, hour,
/// minute, second)`. Guests have no clock or time zone database; the recording's
/// start is all a name needs.
pub fn utc(unix_ms: i64) -> (i32, u32, u32, u32, u32, u32) {
    let secs = unix_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day, rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), (1970, 1, 1, 0, 0, 0));
        // 2026-11-21T13:05:09Z
        assert_eq!(super::utc(1_795_266_309_000), (2026, 11, 21, 13, 5, 9));
        assert_eq!(super::utc(951_782_400_000), (2000, 2, 29, 0, 0, 0));
        assert_eq!(super::utc(-1000), (1969, 12, 31, 23, 59, 59));
    }
}
