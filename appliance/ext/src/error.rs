//! Everything an extension call can end in besides a result, as one typed error
//! the caller turns into its fallback (built-in name, built-in grid, hook retry).

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "error", rename_all = "kebab-case")]
pub enum ExtError {
    /// The call used its whole fuel budget (instructions, roughly).
    #[error("out of fuel ({fuel} units)")]
    OutOfFuel { fuel: u64 },
    /// The call ran past its wall-clock deadline.
    #[error("timed out after {ms} ms")]
    Timeout { ms: u64 },
    /// The guest asked for more linear memory than its limit.
    #[error("memory limit of {bytes} bytes reached")]
    MemoryLimit { bytes: u64 },
    /// The guest trapped: a Rust panic (its message from the guest's stderr),
    /// an `unreachable`, a bad memory access.
    #[error("guest panicked: {message}")]
    GuestPanic { message: String },
    /// The guest returned something the host refuses (an escaping path, an
    /// oversized answer, an action not allowed).
    #[error("invalid output: {reason}")]
    InvalidOutput { reason: String },
    /// The guest declined with its own `ext-error`.
    #[error("extension error ({kind}): {message}")]
    Extension { kind: String, message: String },
    /// The component could not be loaded: not a component, not for the named
    /// world, or importing what the world does not allow.
    #[error("refused at load: {reason}")]
    Refused { reason: String },
    /// The extension failed too many times in a row and is switched off until
    /// it is replaced or re-enabled.
    #[error("disabled after {failures} failures in a row")]
    Disabled { failures: u32 },
    /// A host-side failure (instantiation, the artifact cache).
    #[error("host error: {reason}")]
    Host { reason: String },
}

impl ExtError {
    /// The kind as the API and metrics name it.
    pub fn kind(&self) -> &'static str {
        match self {
            ExtError::OutOfFuel { .. } => "out-of-fuel",
            ExtError::Timeout { .. } => "timeout",
            ExtError::MemoryLimit { .. } => "memory-limit",
            ExtError::GuestPanic { .. } => "guest-panic",
            ExtError::InvalidOutput { .. } => "invalid-output",
            ExtError::Extension { .. } => "extension-error",
            ExtError::Refused { .. } => "refused",
            ExtError::Disabled { .. } => "disabled",
            ExtError::Host { .. } => "host-error",
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> ExtError {
        ExtError::InvalidOutput {
            reason: reason.into(),
        }
    }

    pub fn refused(reason: impl Into<String>) -> ExtError {
        ExtError::Refused {
            reason: reason.into(),
        }
    }

    pub(crate) fn host(e: impl std::fmt::Display) -> ExtError {
        ExtError::Host {
            reason: format!("{e:#}"),
        }
    }
}
