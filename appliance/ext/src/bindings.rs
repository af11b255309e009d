//! Host bindings for `wit/` (the `host` world: every interface a guest may
//! export, and the imports the host provides). Generated types derive serde so
//! fixtures and API bodies can be read and written as JSON.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "host",
    additional_derives: [serde::Serialize, serde::Deserialize],
});

pub use edgerec::ext::types::{ExtError as GuestError, Participant, Recording, Track, TrackKind};
pub use exports::edgerec::ext::hook::{Action, FinalizedFile, Webhook};
pub use exports::edgerec::ext::layout::{Canvas, Event, Fit, LayoutInput, Rect, Region, Scene};
