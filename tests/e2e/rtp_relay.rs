//! Relayed RTP: the API opens a session, ffmpeg sends H.264 + Opus to its ports
//! as plain RTP and as SRTP with the keys given to the API (what an SFU's plain
//! transport does); recordings checked with ffprobe against the source.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use edgerec_e2e::*;
use serde_json::{json, Value};

const CONFIG: &str = r#"
[rtp]
listen_ip = "127.0.0.1"
port_min = 41000
port_max = 41099
idle_timeout = "5s"
"#;

/// 30 bytes of key and salt, base64 (AES_CM_128_HMAC_SHA1_80).
const KEY: &str = "zRwR3Bnf9eIJaCgtnpZGD6TDP6Y69xhjkC8uVtnB";

fn open(d: &Daemon, body: Value) -> Value {
    let (status, v) = d.api("POST", "/v1/rtp-sessions", Some(body));
    assert_eq!(status, 201, "open: {v}\n{}", d.log());
    v
}

fn tracks() -> Value {
    json!([
        {"codec": "h264", "payload_type": 96},
        {"codec": "opus", "payload_type": 97, "channels": 2}
    ])
}

/// ffmpeg sends the source's video and audio, in real time, to the session's two
/// RTP ports (RTCP to the next port up), as `scheme` (`rtp` or `srtp`).
fn send(src: &Path, session: &Value, srtp: &[&str], scheme: &str) -> Child {
    let port = |i: usize| session["tracks"][i]["rtp_port"].as_u64().unwrap();
    let mut c = Command::new("ffmpeg");
    c.args(["-v", "error", "-re", "-i"]).arg(src);
    c.args(["-map", "0:v", "-c", "copy", "-f", "rtp"])
        .args(srtp);
    c.arg(format!("{scheme}://127.0.0.1:{}", port(0)));
    c.args(["-map", "0:a", "-c", "copy", "-f", "rtp"])
        .args(srtp);
    c.arg(format!("{scheme}://127.0.0.1:{}", port(1)));
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c.spawn().expect("ffmpeg")
}

fn check(d: &Daemon, stream: &str, src: &Path, protocol: &str, stop_reason: &str) {
    let rec = finalized(d, stream, Duration::from_secs(15));
    assert_eq!(rec["protocol"], protocol);
    assert_eq!(rec["stop_reason"], stop_reason, "{rec}");
    assert_eq!(rec["tracks"][0]["codec"], "h264");
    assert_eq!(rec["tracks"][1]["codec"], "opus");
    // Every frame; the duration within two video frames (x264's B-frame delay
    // shifts the first video frame against the audio in ffmpeg's sender reports).
    assert_every_frame(d, &rec, src, &["h264", "opus"], 0.08);
}

#[test]
fn ffmpeg_rtp_and_srtp_to_api_sessions_record_every_frame() {
    let _g = serial();
    let src = source_h264_opus();
    let d = Daemon::start_with_config(CONFIG, &[]);

    let plain = open(
        &d,
        json!({"stream": "sfu/plain", "tracks": tracks(), "feedback": {"nack": true, "pli": true}}),
    );
    let sealed = open(
        &d,
        json!({"stream": "sfu/sealed", "tracks": tracks(),
               "srtp": {"crypto_suite": "AES_CM_128_HMAC_SHA1_80", "key_base64": KEY}}),
    );
    for s in [&plain, &sealed] {
        let t = &s["tracks"];
        assert_eq!(t[0]["rtcp_port"], t[0]["rtp_port"].as_u64().unwrap() + 1);
        assert_eq!(t[0]["rtp_port"].as_u64().unwrap() % 2, 0);
        assert_eq!(s["state"], "waiting");
    }
    // The names are claimed at once.
    let (status, err) = d.api(
        "POST",
        "/v1/rtp-sessions",
        Some(json!({"stream": "sfu/plain", "tracks": tracks()})),
    );
    assert_eq!(status, 409, "{err}");

    // One sender says BYE at the end, the other just stops (the idle timeout ends it).
    let a = send(&src, &plain, &["-rtpflags", "send_bye"], "rtp");
    let srtp = [
        "-srtp_out_suite",
        "AES_CM_128_HMAC_SHA1_80",
        "-srtp_out_params",
        KEY,
    ];
    let b = send(&src, &sealed, &srtp, "srtp");
    let live = live_streams(&d, 2, 2, Duration::from_secs(10));
    assert!(live
        .iter()
        .all(|s| s["remote_addr"].as_str().unwrap().starts_with("127.0.0.1:")));
    let sessions = d.get("/v1/rtp-sessions");
    assert!(
        sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "receiving"),
        "{sessions}"
    );
    let (ok, err) = finish(a);
    assert!(ok, "ffmpeg rtp: {err}");
    let (ok, err) = finish(b);
    assert!(ok, "ffmpeg srtp: {err}");

    check(&d, "sfu/plain", &src, "rtp", "bye");
    check(&d, "sfu/sealed", &src, "srtp", "idle");
    // Ended sessions are gone and their ports free again.
    let sessions = d.get("/v1/rtp-sessions");
    assert_eq!(sessions["sessions"], json!([]), "{sessions}");
}

#[test]
fn bad_requests_and_delete() {
    let _g = serial();
    let d = Daemon::start_with_config(CONFIG, &[]);
    for (body, why) in [
        (json!({"stream": "a/b", "tracks": []}), "tracks"),
        (
            json!({"stream": "a/b", "tracks": [{"codec": "aac", "payload_type": 97}]}),
            "clock_rate",
        ),
        (
            json!({"stream": "a/b", "tracks": [{"codec": "aac", "payload_type": 97, "clock_rate": 44100}]}),
            "fmtp",
        ),
        (json!({"stream": "../x", "tracks": tracks()}), "stream"),
        (
            json!({"stream": "a/b", "tracks": tracks(), "srtp": {"key_base64": "AAAA"}}),
            "30 bytes",
        ),
        (
            json!({"stream": "a/b", "tracks": [{"codec": "h264", "payload_type": 72}], "rtcp_mux": true}),
            "rtcp_mux",
        ),
    ] {
        let (status, v) = d.api("POST", "/v1/rtp-sessions", Some(body));
        assert!(status == 400 || status == 422, "{why}: {status} {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(why),
            "{why}: {v}"
        );
    }
    let s = open(
        &d,
        json!({"stream": "sfu/quiet", "tracks": tracks(), "rtcp_mux": true}),
    );
    assert_eq!(s["tracks"][0]["rtcp_port"], s["tracks"][0]["rtp_port"]);
    let id = s["id"].as_str().unwrap();
    assert_eq!(
        d.get(&format!("/v1/rtp-sessions/{id}"))["stream"],
        "sfu/quiet"
    );
    assert_eq!(d.get("/v1/streams")["streams"][0]["name"], "sfu/quiet");
    let (status, _) = d.api("DELETE", &format!("/v1/rtp-sessions/{id}"), None);
    assert_eq!(status, 204);
    let (status, _) = d.api("GET", &format!("/v1/rtp-sessions/{id}"), None);
    assert_eq!(status, 404);
    assert_eq!(d.get("/v1/streams")["streams"], json!([]));
    // Its port can be bound again.
    let port = s["tracks"][0]["rtp_port"].as_u64().unwrap();
    std::net::UdpSocket::bind(("127.0.0.1", port as u16)).expect("port freed");
    let (status, _) = d.api("DELETE", &format!("/v1/rtp-sessions/{id}"), None);
    assert_eq!(status, 404);
}

/// A WebRTC sender's audio arrives a few ms after its first video frame (the
/// CI failure of whip::chromium_publishes_vp8_and_opus...), here 400 ms: a
/// Matroska muxer's track list is fixed at its first frame, but nothing is on
/// disk yet, so the part begins again with both tracks instead of ending and
/// waiting for the next key frame.
#[test]
fn audio_that_starts_after_the_first_key_frame_joins_the_first_part() {
    let _g = serial();
    let src = source_h264_opus();
    let late = encoded_once("h264_opus_8s_audio_400ms_late.ts", |tmp| {
        let mut c = Command::new("ffmpeg");
        c.args(["-v", "error", "-y", "-i"])
            .arg(&src)
            .args(["-itsoffset", "0.4", "-i"])
            .arg(&src)
            .args(["-map", "0:v", "-map", "1:a", "-c", "copy", "-f", "mpegts"])
            .arg(tmp);
        c
    });
    let config = format!("{CONFIG}\n[recording]\ncontainer = \"mkv\"\n");
    let d = Daemon::start_with_config(&config, &[]);
    let s = open(&d, json!({"stream": "sfu/late", "tracks": tracks()}));
    let (ok, err) = finish(send(&late, &s, &["-rtpflags", "send_bye"], "rtp"));
    assert!(ok, "ffmpeg rtp: {err}");
    let rec = finalized(&d, "sfu/late", Duration::from_secs(15));
    assert_eq!(rec["parts"].as_array().unwrap().len(), 1, "{rec}");
    assert_eq!(rec["container"], "mkv", "{rec}");
    assert_every_frame(&d, &rec, &late, &["h264", "opus"], 0.08);
    assert!(
        d.log().contains("part begun again"),
        "the audio came after the part opened: {}",
        d.log()
    );
}

/// The session holds the last frames for a while (the jitter buffer, decode
/// times from the frames after them); a graceful shutdown right after the
/// sender stops, before the idle timeout, once lost them (3 of 125 video frames
/// of one feed in a bench smoke run).
#[test]
fn shutdown_right_after_an_rtp_feed_keeps_its_last_frames() {
    let _g = serial();
    let src = source_h264_opus();
    let mut d = Daemon::start_with_config(CONFIG, &[]);
    let s = open(&d, json!({"stream": "sfu/term", "tracks": tracks()}));
    // No BYE: the session would end only at the idle timeout.
    let (ok, err) = finish(send(&src, &s, &[], "rtp"));
    assert!(ok, "ffmpeg rtp: {err}");
    d.restart();
    let rec = finalized(&d, "sfu/term", Duration::from_secs(15));
    assert_eq!(rec["stop_reason"], "shutdown", "{rec}");
    assert_every_frame(&d, &rec, &src, &["h264", "opus"], 0.08);
}
