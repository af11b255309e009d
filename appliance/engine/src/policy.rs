//! Which published streams are recorded without an API call.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::config::{RecordMode, RecordingConfig};

#[derive(Clone, Debug)]
pub struct RecordPolicy {
    mode: RecordMode,
    patterns: GlobSet,
}

impl RecordPolicy {
    pub fn new(c: &RecordingConfig) -> Result<RecordPolicy, String> {
        let mut b = GlobSetBuilder::new();
        for p in &c.streams {
            b.add(Glob::new(p).map_err(|e| format!("pattern {p:?}: {e}"))?);
        }
        if c.record == RecordMode::Matching && c.streams.is_empty() {
            return Err("record = \"matching\" needs at least one pattern in streams".into());
        }
        Ok(RecordPolicy {
            mode: c.record,
            patterns: b.build().map_err(|e| e.to_string())?,
        })
    }

    /// Whether `stream` (`app/name`) is recorded when published.
    pub fn records(&self, stream: &str) -> bool {
        match self.mode {
            RecordMode::All => true,
            RecordMode::None => false,
            RecordMode::Matching => self.patterns.is_match(stream),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let mut c = RecordingConfig::default();
        assert!(RecordPolicy::new(&c).unwrap().records("live/x"));
        c.record = RecordMode::None;
        assert!(!RecordPolicy::new(&c).unwrap().records("live/x"));
        c.record = RecordMode::Matching;
        assert!(RecordPolicy::new(&c).is_err());
        c.streams = vec!["live/cam*".into()];
        let p = RecordPolicy::new(&c).unwrap();
        assert!(p.records("live/cam1"));
        assert!(!p.records("live/studio"));
        assert!(!p.records("other/cam1"));
    }
}
