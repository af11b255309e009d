//! Turning a rendered name into a safe relative path.
//!
//! Rules, per path component: control characters and configured excluded characters
//! are removed; `.`/`..` and empty components are dropped (so nothing can climb out
//! of the recordings root or be absolute); the file name may be hex- or
//! base64-encoded; every component is cut to 255 bytes on a character boundary, the
//! file name keeping its part suffix and extension.

use std::path::PathBuf;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Optional encoding of the file name (without part suffix and extension), for
/// stream names in scripts or character sets a file system should not see.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NameEncoding {
    #[default]
    None,
    Hex,
    /// URL-safe base64 without padding (no `/` or `+`).
    Base64,
}

/// Most bytes in one path component on Linux file systems.
const MAX_COMPONENT: usize = 255;

#[derive(Clone, Debug, Default)]
pub struct Sanitizer {
    /// Characters removed from names, besides control characters and `/`.
    pub excluded: String,
    pub encoding: NameEncoding,
}

impl Sanitizer {
    /// A relative path for `rendered` + `suffix` (part number, dedupe counter) +
    /// `.ext`. Never empty, never absolute, never containing `..`.
    pub fn path(&self, rendered: &str, suffix: &str, ext: &str) -> PathBuf {
        let mut comps: Vec<String> = rendered
            .split(['/', '\\'])
            .map(|c| self.clean(c))
            .filter(|c| !c.is_empty() && c != "." && c != "..")
            .collect();
        let stem = comps.pop().unwrap_or_else(|| "recording".to_owned());
        let stem = match self.encoding {
            NameEncoding::None => stem,
            NameEncoding::Hex => hex::encode(stem.as_bytes()),
            NameEncoding::Base64 => {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(stem.as_bytes())
            }
        };
        let suffix = self.clean(suffix);
        let ext = self.clean(ext);
        let tail = if ext.is_empty() {
            suffix
        } else {
            format!("{suffix}.{ext}")
        };
        let room = MAX_COMPONENT.saturating_sub(tail.len());
        let file = format!("{}{tail}", cut(&stem, room));
        let mut path = PathBuf::new();
        for c in comps {
            path.push(cut(&c, MAX_COMPONENT));
        }
        path.push(file);
        path
    }

    fn clean(&self, s: &str) -> String {
        s.chars()
            .filter(|c| !c.is_control() && *c != '/' && *c != '\\' && !self.excluded.contains(*c))
            .collect::<String>()
            .trim()
            .to_owned()
    }
}

fn cut(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Component, Path};

    fn s() -> Sanitizer {
        Sanitizer::default()
    }

    fn assert_inside(p: &Path) {
        assert!(p.is_relative(), "{p:?}");
        assert!(
            p.components().all(|c| matches!(c, Component::Normal(_))),
            "{p:?}"
        );
        assert!(p.components().all(|c| c.as_os_str().len() <= 255), "{p:?}");
    }

    #[test]
    fn plain_names_pass() {
        assert_eq!(
            s().path("live/cam1/2026-11-21/cam1_20261121-090507", "_1", "mp4"),
            PathBuf::from("live/cam1/2026-11-21/cam1_20261121-090507_1.mp4")
        );
    }

    #[test]
    fn nothing_escapes_the_root() {
        for evil in [
            "../../etc/passwd",
            "/etc/passwd",
            "live/../../../x",
            "..",
            "./.",
            "a/./b/../c",
            "\\..\\..\\windows",
            "",
            "////",
            "..\u{0}..",
        ] {
            let p = s().path(evil, "", "mp4");
            assert_inside(&p);
            assert!(p.to_string_lossy().ends_with(".mp4"));
        }
        assert_eq!(
            s().path("../../etc/passwd", "", "mp4"),
            PathBuf::from("etc/passwd.mp4")
        );
        assert_eq!(s().path("/", "", "mp4"), PathBuf::from("recording.mp4"));
    }

    #[test]
    fn control_and_excluded_characters_are_removed() {
        let z = Sanitizer {
            excluded: ":*?\"<>|".into(),
            ..Sanitizer::default()
        };
        assert_eq!(
            z.path("live/c\u{7}am:1*\n", "", "mp4"),
            PathBuf::from("live/cam1.mp4")
        );
    }

    #[test]
    fn long_names_keep_suffix_and_extension() {
        let long = "é".repeat(300);
        let p = s().path(&format!("{long}/{long}"), "_12", "mp4");
        assert_inside(&p);
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.ends_with("_12.mp4"));
        assert!(name.len() <= 255 && name.len() >= 250);
    }

    #[test]
    fn encodings() {
        let hex = Sanitizer {
            encoding: NameEncoding::Hex,
            ..Sanitizer::default()
        };
        assert_eq!(
            hex.path("live/ab", "_1", "mp4"),
            PathBuf::from("live/6162_1.mp4")
        );
        let b64 = Sanitizer {
            encoding: NameEncoding::Base64,
            ..Sanitizer::default()
        };
        assert_eq!(
            b64.path("live/камера?", "", "mp4"),
            PathBuf::from("live/0LrQsNC80LXRgNCwPw.mp4")
        );
    }
}
