//! WHIP: headless Chromium (Debian's, fake camera and microphone) publishes
//! H.264 + Opus through tests/tools/whip.html; the recording holds every frame
//! the browser says it sent (its own getStats counts), and plays.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use edgerec_e2e::*;
use serde_json::Value;

const CONFIG: &str = r#"
[rtp]
listen_ip = "127.0.0.1"
port_min = 41200
port_max = 41299
"#;

/// Runs the page in Chromium until it reports `done` (or `timeout`); returns
/// every `WHIP {json}` line it logged.
fn chromium_publish(
    endpoint: &str,
    key: &str,
    codec: &str,
    secs: u32,
    timeout: Duration,
) -> Vec<Value> {
    let page = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/whip.html");
    let profile = scratch().join(format!("chromium-{}", std::process::id()));
    let url = format!(
        "file://{}?endpoint={endpoint}&key={key}&secs={secs}&codec={codec}",
        page.display()
    );
    let mut child = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium (apt install chromium)");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // [..:INFO:CONSOLE:17] "WHIP {...}", source: file:///...
            if let Some(json) = line
                .split("\"WHIP ")
                .nth(1)
                .and_then(|r| r.rsplit_once("\", source"))
            {
                if let Ok(v) = serde_json::from_str::<Value>(json.0) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut logged = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(v) => {
                println!("page: {v}");
                let end = matches!(v["state"].as_str(), Some("done" | "error" | "refused"));
                logged.push(v);
                if end {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&profile);
    logged
}

/// Chromium publishes `codec` + Opus for 8 s; the recording holds every frame
/// the browser says it sent, and plays.
fn publish_and_check(codec: &str, recorded_as: &str, probed_as: &str, ext: &str) {
    let d = Daemon::start_with_config(CONFIG, &[]);
    let stream = format!("web/{}", codec.to_lowercase());
    let endpoint = d.url(&format!("/v1/whip/{stream}"));
    let logged = chromium_publish(&endpoint, API_KEY, codec, 8, Duration::from_secs(60));
    let state = |s: &str| logged.iter().find(|v| v["state"] == s).cloned();
    let report = state("sent").unwrap_or_else(|| panic!("page log: {logged:?}\n{}", d.log()));
    assert_eq!(state("done").unwrap()["delete"], 200);
    assert_eq!(report["connection"], "connected");
    let sent = &report["sent"];

    let rec = finalized(&d, &stream, Duration::from_secs(10));
    assert_eq!(rec["protocol"], "whip");
    assert_eq!(rec["stop_reason"], "api");
    assert!(
        rec["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["codec"] == recorded_as),
        "{rec}"
    );
    let file = part_file(&d, &rec, 1);
    assert_eq!(file.extension().unwrap(), ext, "container by codec");
    let got = probe(&file);
    println!("recording {got:?}, browser sent {sent}");
    // Every frame the browser sent (its encoder skips some under load; what it
    // sent is the reference), every Opus packet (one frame each).
    assert_eq!(
        got.stream(probed_as).packets,
        sent["video"]["framesSent"].as_u64().unwrap()
    );
    assert_eq!(
        got.stream("opus").packets,
        sent["audio"]["packetsSent"].as_u64().unwrap()
    );
    assert!(
        (got.duration - 8.0).abs() < 1.0,
        "duration {}",
        got.duration
    );
    assert!(starts_with_key_frame(&file));
    decode_all(&file).unwrap();
    // The session is gone.
    assert_eq!(
        d.get("/v1/whip-sessions")["sessions"],
        serde_json::json!([])
    );
}

#[test]
fn chromium_publishes_h264_and_opus_and_every_frame_is_recorded() {
    let _g = serial();
    publish_and_check("H264", "h264", "h264", "mp4");
}

#[test]
fn chromium_publishes_vp9_and_opus_and_every_frame_is_recorded() {
    let _g = serial();
    publish_and_check("VP9", "vp9", "vp9", "mp4");
}

/// AV1 (Chromium's libaom realtime encoder): the av1C comes from the
/// sequence header on the first key frame.
#[test]
fn chromium_publishes_av1_and_opus_and_every_frame_is_recorded() {
    let _g = serial();
    publish_and_check("AV1", "av1", "av1", "mp4");
}

/// VP8 has no MP4 binding: `container = "auto"` writes WebM.
#[test]
fn chromium_publishes_vp8_and_opus_into_webm_with_every_frame() {
    let _g = serial();
    publish_and_check("VP8", "vp8", "vp8", "webm");
}

#[test]
fn offers_need_a_token_and_a_valid_sdp() {
    let _g = serial();
    let d = Daemon::start_with_config(CONFIG, &[]);
    let post = |auth: Option<&str>, ct: &str, body: &str| {
        let mut r = ureq::post(&d.url("/v1/whip/web/bob")).set("Content-Type", ct);
        if let Some(a) = auth {
            r = r.set("Authorization", &format!("Bearer {a}"));
        }
        match r.send_string(body) {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(post(None, "application/sdp", "v=0"), 401);
    assert_eq!(post(Some("wrong"), "application/sdp", "v=0"), 401);
    assert_eq!(post(Some(API_KEY), "text/plain", "v=0"), 415);
    assert_eq!(post(Some(API_KEY), "application/sdp", "not an offer"), 400);
    let (status, _) = d.api("DELETE", "/v1/whip-sessions/nope", None);
    assert_eq!(status, 404);
}

/// A recording started through the API while Chromium publishes VP8: Chromium
/// makes a key frame only when asked (one in 8 s otherwise), so the recorder's
/// wait for one goes out as a PLI and the recording begins within moments of
/// the request instead of at the end of the session.
#[test]
fn a_recording_started_mid_stream_asks_chromium_for_a_key_frame() {
    let _g = serial();
    let config = format!("{CONFIG}\n[recording]\nrecord = \"none\"\n");
    let d = Daemon::start_with_config(&config, &[]);
    let endpoint = d.url("/v1/whip/web/asked");
    let browser = std::thread::spawn(move || {
        chromium_publish(&endpoint, API_KEY, "VP8", 8, Duration::from_secs(60))
    });
    live_streams(&d, 1, 2, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    let (status, started) = d.api(
        "POST",
        "/v1/recordings",
        Some(serde_json::json!({"stream": "web/asked"})),
    );
    assert_eq!(status, 201, "{started}");
    let asked_at = std::time::Instant::now();
    let logged = browser.join().unwrap();
    let window = asked_at.elapsed().as_secs_f64();
    let sent = logged
        .iter()
        .find(|v| v["state"] == "sent")
        .unwrap_or_else(|| panic!("page log: {logged:?}\n{}", d.log()))["sent"]
        .clone();

    let rec = finalized(&d, "web/asked", Duration::from_secs(10));
    let file = part_file(&d, &rec, 1);
    let got = probe(&file);
    println!("recording {got:?} over {window:.1} s, browser sent {sent}");
    assert!(
        sent["video"]["keyFramesEncoded"].as_u64().unwrap() >= 2,
        "the browser was asked for a key frame: {sent}"
    );
    // The window ends with the browser's 0.7 s stats wait and its DELETE;
    // the frame rate is what the browser managed over its 8 s.
    let rate = sent["video"]["framesSent"].as_u64().unwrap() as f64 / 8.0;
    let frames = got.stream("vp8").packets as f64;
    assert!(
        frames >= rate * (window - 2.0),
        "recorded {frames} video frames after asking, in a {window:.1} s window at {rate} fps\n{}",
        d.log()
    );
    assert!(starts_with_key_frame(&file));
    decode_all(&file).unwrap();
}
