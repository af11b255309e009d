//! Announces each finalized file with a JSON POST, in place of nginx-rtmp's
//! `exec_record_done` curl one-liners. The host sends it (the guest has no
//! network), only to URLs the operator allowed for this extension.
//!
//! Config: `url` (required), `token` (sent as `authorization: Bearer ...` when
//! set).

use edgerec_ext_sdk::hook::{Action, ExtError, FinalizedFile, Hook, Webhook};
use edgerec_ext_sdk::{config, json_str};

struct Announce;

impl Hook for Announce {
    fn on_finalized(file: FinalizedFile) -> Result<Vec<Action>, ExtError> {
        let url = config::get("url").ok_or_else(|| ExtError::BadConfig("url is not set".into()))?;
        let rec = &file.recording;
        let codecs: Vec<String> = rec.tracks.iter().map(|t| json_str(&t.codec)).collect();
        let body = format!(
            concat!(
                "{{\"event\":\"recording.finalized\",\"recording\":{},\"stream\":{},",
                "\"part\":{},\"path\":{},\"size_bytes\":{},\"duration_ms\":{},",
                "\"recovered\":{},\"codecs\":[{}]}}"
            ),
            json_str(&rec.id),
            json_str(&rec.stream),
            rec.part,
            json_str(&file.path),
            file.size_bytes,
            file.duration_ms,
            file.recovered,
            codecs.join(","),
        );
        let mut headers = vec![];
        if let Some(token) = config::get("token") {
            headers.push(("authorization".to_string(), format!("Bearer {token}")));
        }
        Ok(vec![Action::Webhook(Webhook {
            url,
            body,
            content_type: "application/json".into(),
            headers,
        })])
    }
}

edgerec_ext_sdk::export_hook!(Announce);
