//! The REST contract: auth, JSON errors for bad input, minimum free space, metrics.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use edgerec_e2e::*;
use serde_json::json;

#[test]
fn auth_and_json_errors_for_bad_input() {
    let _g = serial();
    let d = Daemon::start(&[]);
    // Open routes.
    let h = ureq::get(&d.url("/v1/health")).call().unwrap();
    assert_eq!(h.status(), 200);
    let h = h.into_json::<serde_json::Value>().unwrap();
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["problems"], json!([]), "{h}");
    let m = ureq::get(&d.url("/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    for name in [
        "edgerec_live_streams",
        "edgerec_active_recordings",
        "edgerec_bytes_written_total",
        "edgerec_frames_dropped_total",
        "edgerec_write_latency_seconds_bucket",
        "edgerec_disk_free_bytes",
    ] {
        assert!(m.contains(name), "metrics lack {name}");
    }
    // Everything else needs the token.
    for path in [
        "/v1/streams",
        "/v1/recordings",
        "/v1/orphans",
        "/v1/recordings/x",
        "/v1/system",
        "/v1/system/update",
    ] {
        let e = ureq::get(&d.url(path))
            .call()
            .unwrap_err()
            .into_response()
            .unwrap();
        assert_eq!(e.status(), 401, "{path}");
        let body: serde_json::Value = e.into_json().unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        let e = ureq::get(&d.url(path))
            .set("Authorization", "Bearer wrong")
            .call()
            .unwrap_err();
        assert_eq!(e.into_response().unwrap().status(), 401);
    }

    // The system routes exist only on the appliance image (RAUC's config):
    // here they say so, and a reboot request reboots nothing.
    if !std::path::Path::new("/etc/rauc/system.conf").exists() {
        for (method, path) in [("GET", "/v1/system"), ("POST", "/v1/system/reboot")] {
            let (status, body) = d.api(method, path, None);
            assert_eq!(status, 404, "{method} {path}: {body}");
            assert_eq!(body["error"]["code"], "not_appliance", "{body}");
        }
        assert_eq!(d.get("/v1/system/update")["state"], "idle");
    }

    let cases: Vec<(&str, &str, Option<serde_json::Value>, u16, &str)> = vec![
        (
            "POST",
            "/v1/recordings",
            Some(json!({"stream": "live/none"})),
            404,
            "stream_not_live",
        ),
        (
            "POST",
            "/v1/recordings",
            Some(json!({"stream": "live/x", "bogus": 1})),
            422,
            "bad_body",
        ),
        (
            "POST",
            "/v1/recordings",
            Some(json!({"stream": 5})),
            422,
            "bad_body",
        ),
        (
            "POST",
            "/v1/recordings",
            Some(json!({"stream": "live/x", "template": "{nope}"})),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/v1/recordings",
            Some(json!({"stream": "live/x", "rotation": "soon"})),
            422,
            "bad_body",
        ),
        (
            "POST",
            "/v1/recordings",
            Some(json!({"stream": "live/x", "container": "avi"})),
            422,
            "bad_body",
        ),
        (
            "GET",
            "/v1/recordings?state=bogus",
            None,
            400,
            "bad_request",
        ),
        (
            "GET",
            "/v1/recordings?from=yesterday",
            None,
            400,
            "bad_request",
        ),
        ("GET", "/v1/recordings?limit=-1", None, 400, "bad_query"),
        ("GET", "/v1/recordings?what=1", None, 400, "bad_query"),
        (
            "GET",
            "/v1/recordings/nope",
            None,
            404,
            "recording_not_found",
        ),
        (
            "POST",
            "/v1/recordings/nope/stop",
            None,
            404,
            "recording_not_found",
        ),
        (
            "DELETE",
            "/v1/recordings/nope",
            None,
            404,
            "recording_not_found",
        ),
        (
            "GET",
            "/v1/recordings/nope/parts/abc/file",
            None,
            400,
            "bad_path",
        ),
        (
            "GET",
            "/v1/recordings/nope/parts/1/file",
            None,
            404,
            "recording_not_found",
        ),
        ("GET", "/v1/streams/live/none", None, 404, "stream_not_live"),
        ("GET", "/v1/nothing", None, 404, "not_found"),
        ("PUT", "/v1/recordings", None, 405, "method_not_allowed"),
    ];
    for (method, path, body, status, code) in cases {
        let (s, v) = d.api(method, path, body.clone());
        assert_eq!(s, status, "{method} {path} {body:?}: {v}");
        assert_eq!(v["error"]["code"], code, "{method} {path}: {v}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // Not JSON at all, and no content type.
    let auth = format!("Bearer {API_KEY}");
    let e = ureq::post(&d.url("/v1/recordings"))
        .set("Authorization", &auth)
        .set("Content-Type", "application/json")
        .send_string("{not json")
        .unwrap_err()
        .into_response()
        .unwrap();
    assert_eq!(e.status(), 400);
    assert_eq!(
        e.into_json::<serde_json::Value>().unwrap()["error"]["code"],
        "bad_body"
    );
    let e = ureq::post(&d.url("/v1/recordings"))
        .set("Authorization", &auth)
        .send_string("{}")
        .unwrap_err()
        .into_response()
        .unwrap();
    assert_eq!(e.status(), 415);
    assert!(!d.log().contains("API error"), "no 5xx for client input");
}

#[test]
fn an_api_key_is_generated_at_first_start() {
    let _g = serial();
    let mut d = Daemon::start(&[("EDGEREC_API_KEY", "")]);
    let path = d.data_dir().join("api-key");
    let key = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    assert_eq!(key.len(), 64);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let ok = ureq::get(&d.url("/v1/streams"))
        .set("Authorization", &format!("Bearer {key}"))
        .call()
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(d.log().contains("generated an API key"));
    // The same key after a restart.
    d.restart();
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), key);
    let ok = ureq::get(&d.url("/v1/streams"))
        .set("Authorization", &format!("Bearer {key}"))
        .call()
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[test]
fn below_the_minimum_free_space_nothing_records_and_the_api_says_why() {
    let _g = serial();
    let src = source(10, 25);
    let d = Daemon::start(&[("EDGEREC_STORAGE__MIN_FREE", "1000T")]);
    let publisher = publish(&src, &d.rtmp_url("live/full"));
    d.wait_for(Duration::from_secs(5), |d| {
        d.get("/v1/streams")["streams"]
            .as_array()
            .and_then(|s| s.first().cloned())
    })
    .expect("stream live");
    // The feed is taken (the publisher is not refused) but not recorded.
    std::thread::sleep(Duration::from_secs(1));
    let stream = d.get("/v1/streams/live/full");
    assert!(stream["recording_id"].is_null(), "{stream}");
    let why = stream["recording_blocked"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        why.starts_with("disk_low: ") && why.contains("below the minimum of 1000T"),
        "{why}"
    );
    let (s, v) = d.api(
        "POST",
        "/v1/recordings",
        Some(json!({"stream": "live/full"})),
    );
    assert_eq!(s, 507, "{v}");
    assert_eq!(v["error"]["code"], "disk_low");
    let (ok, _) = finish(publisher);
    assert!(ok, "the publisher is not disturbed");
    assert!(d.recordings("").is_empty());
    let m = ureq::get(&d.url("/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(m.contains("edgerec_recordings_refused_total{reason=\"disk_low\"} "));
    assert!(!m.contains("edgerec_recordings_refused_total{reason=\"disk_low\"} 0\n"));
    assert!(
        d.recordings_dir().read_dir().unwrap().next().is_none(),
        "no files written"
    );
}
