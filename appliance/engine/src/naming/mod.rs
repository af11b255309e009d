//! File names for recordings: a template rendered with a recording's facts, then
//! sanitized so that no input (stream names come from publishers) can leave the
//! recordings root or produce an unusable name.

mod sanitize;
mod template;

pub use sanitize::{NameEncoding, Sanitizer};
pub use template::{NameFacts, Tag, Template, TemplateError};
