//! What the host accepts back from a guest. A guest's answer is data from an
//! untrusted program: every path must stay under the recordings root, every
//! list and string is bounded, every webhook goes only where the operator said.
//!
//! Paths are refused rather than repaired (unlike publisher-supplied stream
//! names, which the built-in sanitizer cleans): an extension that returns
//! `../../etc/passwd` is broken or hostile, and its author should hear so.

use std::path::{Component, Path, PathBuf};

use crate::bindings::{Action, LayoutInput, Scene};
use crate::error::ExtError;

/// Longest relative path a guest may return.
pub const MAX_PATH: usize = 1024;
/// Longest path component (Linux file systems).
const MAX_COMPONENT: usize = 255;
pub const MAX_ACTIONS: usize = 32;
pub const MAX_TAGS: usize = 64;
const MAX_TAG_KEY: usize = 64;
const MAX_TAG_VALUE: usize = 1024;
pub const MAX_WEBHOOK_BODY: usize = 1 << 20;
const MAX_HEADERS: usize = 32;
pub const MAX_SCENES: usize = 16;
pub const MAX_REGIONS: usize = 1024;

/// `s` as a relative path that cannot leave the directory it is joined to.
pub fn relative_path(s: &str) -> Result<PathBuf, ExtError> {
    let bad = |why: &str| {
        let shown: String = s.chars().take(80).collect();
        ExtError::invalid(format!("path {shown:?}: {why}"))
    };
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if s.len() > MAX_PATH {
        return Err(ExtError::invalid(format!(
            "path of {} bytes (most {MAX_PATH})",
            s.len()
        )));
    }
    if s.starts_with('/') {
        return Err(bad("absolute"));
    }
    if let Some(c) = s.chars().find(|c| c.is_control() || *c == '\\') {
        return Err(bad(&format!("contains {c:?}")));
    }
    for seg in s.split('/') {
        match seg {
            "" => return Err(bad("empty folder name")),
            "." | ".." => return Err(bad("`.` or `..` (paths stay inside the recordings root)")),
            s if s.len() > MAX_COMPONENT => return Err(bad("a name longer than 255 bytes")),
            _ => {}
        }
    }
    let p = PathBuf::from(s);
    debug_assert!(p.components().all(|c| matches!(c, Component::Normal(_))));
    Ok(p)
}

/// `s` as one file name (no folder).
pub fn file_name(s: &str) -> Result<PathBuf, ExtError> {
    if s.contains('/') {
        return Err(ExtError::invalid(format!(
            "rename to {s:?}: a file name may not contain `/` (use move-to)"
        )));
    }
    relative_path(s)
}

/// Checks a hook's actions: bounded, paths inside the root, webhooks only to
/// `webhook_allow` prefixes.
pub fn actions(actions: &[Action], webhook_allow: &[String]) -> Result<(), ExtError> {
    if actions.len() > MAX_ACTIONS {
        return Err(ExtError::invalid(format!(
            "{} actions (most {MAX_ACTIONS})",
            actions.len()
        )));
    }
    for a in actions {
        match a {
            Action::Rename(name) => {
                file_name(name)?;
            }
            Action::MoveTo(path) => {
                relative_path(path)?;
            }
            Action::Delete => {}
            Action::Tag(tags) => {
                if tags.len() > MAX_TAGS {
                    return Err(ExtError::invalid(format!(
                        "{} tags (most {MAX_TAGS})",
                        tags.len()
                    )));
                }
                for (k, v) in tags {
                    let key_ok = !k.is_empty()
                        && k.len() <= MAX_TAG_KEY
                        && k.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.:".contains(&b)
                        });
                    if !key_ok {
                        return Err(ExtError::invalid(format!(
                            "tag key {k:?}: 1-{MAX_TAG_KEY} of a-z 0-9 - _ . :"
                        )));
                    }
                    if v.len() > MAX_TAG_VALUE || v.chars().any(char::is_control) {
                        return Err(ExtError::invalid(format!(
                            "tag {k}: value longer than {MAX_TAG_VALUE} bytes or with control characters"
                        )));
                    }
                }
            }
            Action::Webhook(w) => {
                if !webhook_allow.iter().any(|p| url_allowed(&w.url, p)) {
                    return Err(ExtError::invalid(format!(
                        "webhook to {:?} is not allowed for this extension (webhook-allow)",
                        w.url
                    )));
                }
                if w.body.len() > MAX_WEBHOOK_BODY {
                    return Err(ExtError::invalid(format!(
                        "webhook body of {} bytes (most {MAX_WEBHOOK_BODY})",
                        w.body.len()
                    )));
                }
                if w.headers.len() > MAX_HEADERS {
                    return Err(ExtError::invalid("more than 32 webhook headers"));
                }
                let token = |s: &str| {
                    !s.is_empty()
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
                };
                for (k, v) in &w.headers {
                    if !token(k) || v.bytes().any(|b| b < 0x20 && b != b'\t') {
                        return Err(ExtError::invalid(format!("webhook header {k:?}")));
                    }
                }
                if !w.content_type.is_empty() && w.content_type.bytes().any(|b| b < 0x20) {
                    return Err(ExtError::invalid("webhook content-type"));
                }
            }
        }
    }
    Ok(())
}

/// Whether `url` is under `prefix`: an http(s) URL that starts with it, where a
/// prefix that does not end in `/` must end where the URL's path, query or end
/// begins (so `http://hooks:9000` does not allow `http://hooks:9000.evil.net`).
pub(crate) fn url_allowed(url: &str, prefix: &str) -> bool {
    let http = url.starts_with("http://") || url.starts_with("https://");
    let Some(rest) = url.strip_prefix(prefix) else {
        return false;
    };
    http && !prefix.is_empty()
        && (prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?', '#']))
}

/// Checks a layout's scenes against its input: bounded, and every region names
/// a participant and track that exist.
pub fn scenes(scenes: &[Scene], input: &LayoutInput) -> Result<(), ExtError> {
    if scenes.len() > MAX_SCENES {
        return Err(ExtError::invalid(format!(
            "{} scenes (most {MAX_SCENES})",
            scenes.len()
        )));
    }
    for s in scenes {
        if s.regions.len() > MAX_REGIONS {
            return Err(ExtError::invalid(format!(
                "scene {:?}: {} regions (most {MAX_REGIONS})",
                s.name,
                s.regions.len()
            )));
        }
        for r in &s.regions {
            let known = input
                .participants
                .iter()
                .find(|p| p.id == r.participant)
                .is_some_and(|p| p.tracks.iter().any(|t| t.id == r.track));
            if !known {
                return Err(ExtError::invalid(format!(
                    "scene {:?}: region for participant {:?} track {}, which is not in the input",
                    s.name, r.participant, r.track
                )));
            }
        }
    }
    Ok(())
}

/// Joins a checked relative path to `root`.
pub fn under(root: &Path, rel: &Path) -> PathBuf {
    root.join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_escape_are_refused() {
        for evil in [
            "../../etc/passwd",
            "/etc/passwd",
            "a/../../b",
            "a//b",
            "./a",
            "a/.",
            "",
            "a\\..\\b",
            "a\nb",
            "a\0b",
        ] {
            let e = relative_path(evil).unwrap_err();
            assert_eq!(e.kind(), "invalid-output", "{evil:?}");
        }
        assert!(relative_path(&"a/".repeat(600)).is_err());
        assert_eq!(
            relative_path("site/cam/2026/11/21/x.mp4").unwrap(),
            PathBuf::from("site/cam/2026/11/21/x.mp4")
        );
        assert!(file_name("x.mp4").is_ok());
        assert!(file_name("a/x.mp4").is_err());
    }

    #[test]
    fn webhooks_go_only_where_allowed() {
        use crate::bindings::Webhook;
        let hook = |url: &str| {
            Action::Webhook(Webhook {
                url: url.into(),
                body: "{}".into(),
                content_type: "application/json".into(),
                headers: vec![],
            })
        };
        let allow = vec!["http://127.0.0.1:9000/".to_string()];
        assert!(actions(&[hook("http://127.0.0.1:9000/done")], &allow).is_ok());
        assert!(actions(&[hook("http://127.0.0.1:9000.evil/done")], &allow).is_err());
        assert!(actions(&[hook("http://169.254.169.254/")], &allow).is_err());
        let bare = vec!["http://hooks:9000".to_string()];
        assert!(actions(&[hook("http://hooks:9000/x")], &bare).is_ok());
        assert!(actions(&[hook("http://hooks:9000.evil.net/x")], &bare).is_err());
        assert!(actions(&[hook("file:///etc/passwd")], &["file:".to_string()]).is_err());
        assert!(actions(&[hook("http://127.0.0.1:9000/")], &[]).is_err());
        assert!(actions(&[Action::Tag(vec![("Bad Key".into(), "x".into())])], &allow).is_err());
        assert!(actions(
            &[Action::Tag(vec![("length".into(), "short".into())])],
            &allow
        )
        .is_ok());
    }
}
