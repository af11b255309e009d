//! Per-call limits and how the operator's settings combine with a world's
//! defaults: an extension may ask for less or more, never past the operator's cap.

use serde::{Deserialize, Serialize};

/// What one call may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Wasmtime fuel: about one unit per Wasm instruction.
    pub fuel: u64,
    /// Wall-clock time, enforced by epoch interruption.
    pub deadline_ms: u64,
    /// Linear memory, all memories together.
    pub memory_bytes: u64,
}

/// An extension's own wishes (from its config entry); unset fields take the
/// world's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    pub fuel: Option<u64>,
    #[serde(alias = "deadline-ms")]
    pub deadline_ms: Option<u64>,
    #[serde(alias = "memory-bytes")]
    pub memory_bytes: Option<u64>,
}

impl Limits {
    /// `defaults` with `wish` applied, each field capped by `cap`.
    pub fn resolve(defaults: Limits, wish: LimitOverrides, cap: Limits) -> Limits {
        Limits {
            fuel: wish.fuel.unwrap_or(defaults.fuel).min(cap.fuel),
            deadline_ms: wish
                .deadline_ms
                .unwrap_or(defaults.deadline_ms)
                .clamp(1, cap.deadline_ms),
            memory_bytes: wish
                .memory_bytes
                .unwrap_or(defaults.memory_bytes)
                .min(cap.memory_bytes),
        }
    }

    /// The operator's ceiling when the config sets none: 1 G fuel, 1 s, 256 MiB.
    pub const CAP: Limits = Limits {
        fuel: 1_000_000_000,
        deadline_ms: 1_000,
        memory_bytes: 256 << 20,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wishes_are_capped() {
        let d = Limits {
            fuel: 10,
            deadline_ms: 10,
            memory_bytes: 10,
        };
        let cap = Limits {
            fuel: 100,
            deadline_ms: 50,
            memory_bytes: 20,
        };
        let got = Limits::resolve(
            d,
            LimitOverrides {
                fuel: Some(1000),
                deadline_ms: Some(0),
                memory_bytes: None,
            },
            cap,
        );
        assert_eq!(
            got,
            Limits {
                fuel: 100,
                deadline_ms: 1,
                memory_bytes: 10
            }
        );
    }
}
