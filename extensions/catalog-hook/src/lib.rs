//! Registers each finalized part with a media catalog (a MAM) and tags the
//! recording with the asset id the catalog answers: what a shell script does
//! with `curl ... | jq -r .asset_id` and a second API call, here without
//! giving the script the whole box. A webhook action cannot do this (the host
//! sends those after the hook returns, and nobody reads the answer), so it
//! targets the opt-in `hook-http` world; the host lets its requests reach only
//! the operator's `http-allow` prefixes.
//!
//! Config: `url` (required: where to POST), `token` (sent as
//! `authorization: Bearer ...` when set). A non-2xx answer or a network error
//! is an error, so the host retries the hook with backoff.

use edgerec_ext_sdk::hook::{Action, ExtError, FinalizedFile, Hook};
use edgerec_ext_sdk::http;
use edgerec_ext_sdk::{config, json_str};

struct Register;

/// The string value of `key` in a flat JSON object (`{"asset_id":"A-17",...}`),
/// escapes other than `\"` and `\\` left as they are.
fn json_field(body: &str, key: &str) -> Option<String> {
    let at = body.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = body[at..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

impl Hook for Register {
    fn on_finalized(file: FinalizedFile) -> Result<Vec<Action>, ExtError> {
        let url = config::get("url")
            .filter(|u| !u.is_empty())
            .ok_or_else(|| ExtError::BadConfig("url is not set".into()))?;
        let rec = &file.recording;
        let body = format!(
            "{{\"recording\":{},\"stream\":{},\"part\":{},\"path\":{},\"size_bytes\":{},\"duration_ms\":{}}}",
            json_str(&rec.id),
            json_str(&rec.stream),
            rec.part,
            json_str(&file.path),
            file.size_bytes,
            file.duration_ms,
        );
        let auth = config::get("token").map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        let r = http::request("POST", &url, &headers, body.as_bytes()).map_err(ExtError::Failed)?;
        if r.status / 100 != 2 {
            return Err(ExtError::Failed(format!(
                "the catalog answered {} to {url}",
                r.status
            )));
        }
        let text = r.text();
        let asset = json_field(&text, "asset_id").ok_or_else(|| {
            ExtError::Failed(format!("the catalog's answer has no asset_id: {text:.200}"))
        })?;
        edgerec_ext_sdk::log::info(&format!(
            "{} part {} is catalog asset {asset}",
            rec.id, rec.part
        ));
        Ok(vec![Action::Tag(vec![("catalog-asset".into(), asset)])])
    }
}

edgerec_ext_sdk::export_hook!(Register);
