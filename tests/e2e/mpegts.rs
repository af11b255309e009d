//! MPEG-TS in: ffmpeg publishing over UDP and over TCP, and a UDP path that loses 1%
//! of datagrams and reorders some; recordings checked with ffprobe.

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use edgerec_e2e::*;
use serde_json::Value;

/// One frame at 25 fps: the duration tolerance.
const FRAME: f64 = 0.040;

fn config(udp: u16, tcp: u16) -> String {
    format!(
        r#"
[mpegts]
idle_timeout = "1s"

[[mpegts.inputs]]
transport = "udp"
listen = "127.0.0.1:{udp}"
stream = "ts/udp"

[[mpegts.inputs]]
transport = "tcp"
listen = "127.0.0.1:{tcp}"
stream = "ts/tcp"
"#
    )
}

/// ffmpeg sends `file` in real time as MPEG-TS to `url` (udp:// or tcp://).
fn send_ts(file: &Path, url: &str) -> Child {
    publish_as(file, "mpegts", url)
}

fn finalized_ts(d: &Daemon, stream: &str) -> Value {
    finalized(d, stream, Duration::from_secs(10))
}

/// Every frame of the source is in the recording, and it plays.
fn check_complete(d: &Daemon, rec: &Value, src: &Path) {
    assert_eq!(rec["tracks"][0]["codec"], "h264");
    assert_eq!(rec["tracks"][1]["codec"], "aac");
    assert_every_frame(d, rec, src, &["h264", "aac"], FRAME);
}

#[test]
fn ffmpeg_over_udp_and_tcp_records_every_frame() {
    let _g = serial();
    let src = source(10, 25);
    let (udp, tcp) = (free_port(), free_port());
    let d = Daemon::start_with_config(&config(udp, tcp), &[]);

    let a = send_ts(&src, &format!("udp://127.0.0.1:{udp}?pkt_size=1316"));
    let b = send_ts(&src, &format!("tcp://127.0.0.1:{tcp}"));
    // Both show up as live streams with their protocol and tracks.
    let streams = live_streams(&d, 2, 2, Duration::from_secs(5));
    let protocols: Vec<_> = streams.iter().map(|s| s["protocol"].clone()).collect();
    assert_eq!(protocols, ["mpegts-tcp", "mpegts-udp"]);
    assert_eq!(streams[1]["counters"]["packets_lost"], 0);
    let (ok, err) = finish(a);
    assert!(ok, "ffmpeg udp: {err}");
    let (ok, err) = finish(b);
    assert!(ok, "ffmpeg tcp: {err}");

    let rec = finalized_ts(&d, "ts/udp");
    assert_eq!(rec["stop_reason"], "idle");
    assert_eq!(rec["protocol"], "mpegts-udp");
    check_complete(&d, &rec, &src);

    let rec = finalized_ts(&d, "ts/tcp");
    assert_eq!(rec["stop_reason"], "disconnected");
    check_complete(&d, &rec, &src);
}

#[test]
fn shutdown_right_after_a_udp_feed_keeps_its_last_frame() {
    // A TS video PES has no length: the demuxer knows the last one is whole only
    // at the input's end. A graceful shutdown before the idle timeout once lost it.
    let _g = serial();
    let src = source(10, 25);
    let udp = free_port();
    let config = format!(
        "[mpegts]\nidle_timeout = \"60s\"\n\n[[mpegts.inputs]]\ntransport = \"udp\"\n\
         listen = \"127.0.0.1:{udp}\"\nstream = \"ts/udp\"\n"
    );
    let mut d = Daemon::start_with_config(&config, &[]);
    let a = send_ts(&src, &format!("udp://127.0.0.1:{udp}?pkt_size=1316"));
    let (ok, err) = finish(a);
    assert!(ok, "ffmpeg udp: {err}");
    // SIGTERM while the feed is live, then the same data directory again.
    d.restart();
    let rec = finalized_ts(&d, "ts/udp");
    assert_eq!(rec["stop_reason"], "shutdown");
    check_complete(&d, &rec, &src);
}

/// A relay between ffmpeg and edgerec that drops every 100th datagram and swaps
/// every 37th with the one after it.
fn lossy_relay(to: u16) -> (u16, std::thread::JoinHandle<(u64, u64)>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let h = std::thread::spawn(move || {
        let out = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dest = format!("127.0.0.1:{to}");
        let (mut n, mut dropped, mut swapped) = (0u64, 0u64, 0u64);
        let mut held: Option<Vec<u8>> = None;
        let mut buf = [0u8; 2048];
        while let Ok(len) = sock.recv(&mut buf) {
            n += 1;
            let d = buf[..len].to_vec();
            if n % 100 == 50 {
                dropped += 1;
                continue;
            }
            if n % 37 == 0 && held.is_none() {
                held = Some(d);
                continue;
            }
            out.send_to(&d, &dest).unwrap();
            if let Some(h) = held.take() {
                out.send_to(&h, &dest).unwrap();
                swapped += 1;
            }
        }
        (dropped, swapped)
    });
    (port, h)
}

#[test]
fn udp_with_loss_and_reordering_still_plays_and_counts_the_loss() {
    let _g = serial();
    let src = source(10, 25);
    let (udp, tcp) = (free_port(), free_port());
    let d = Daemon::start_with_config(&config(udp, tcp), &[]);
    let (relay, relay_thread) = lossy_relay(udp);
    let ff = send_ts(&src, &format!("udp://127.0.0.1:{relay}?pkt_size=1316"));
    // Watch the live counters while the feed runs.
    let mut last = Value::Null;
    let counters = d.wait_for(Duration::from_secs(20), |d| {
        let s = d.get("/v1/streams");
        match s["streams"].as_array().and_then(|a| a.first()) {
            Some(s) => {
                last = s["counters"].clone();
                None
            }
            None if !last.is_null() => Some(last.clone()),
            None => None,
        }
    });
    let (ok, err) = finish(ff);
    assert!(ok, "ffmpeg: {err}");
    let (dropped, swapped) = relay_thread.join().unwrap();
    let counters = counters.expect("stream seen and ended");
    println!("relay dropped {dropped}, swapped {swapped}; counters {counters}");
    assert!(dropped >= 5 && swapped >= 10);
    assert!(counters["packets_lost"].as_u64().unwrap() >= dropped);
    assert!(counters["packets_reordered"].as_u64().unwrap() >= swapped / 2);
    assert!(counters["frames_dropped"].as_u64().unwrap() > 0);

    let rec = finalized_ts(&d, "ts/udp");
    let file = part_file(&d, &rec, 1);
    let got = probe(&file);
    let want = probe(&src);
    println!("source {want:?}\nrecording {got:?}");
    // Playable: probes, starts on a key frame, lasts as long as the source, and
    // holds every frame but the damaged ones. A lost datagram costs the video frame
    // it cut, and the audio frames after the cut in its PES (ffmpeg packs ~3 KB of
    // AAC, about ten frames, per PES): about 9% of the audio at 1% datagram loss.
    assert!(
        (got.duration - want.duration).abs() <= 0.5,
        "duration {}",
        got.duration
    );
    assert!(starts_with_key_frame(&file));
    let (v, a) = (got.stream("h264").packets, got.stream("aac").packets);
    assert!(
        v >= want.stream("h264").packets * 85 / 100,
        "video frames {v}"
    );
    assert!(
        a >= want.stream("aac").packets * 80 / 100,
        "audio frames {a}"
    );
    let dropped_frames = counters["frames_dropped"].as_u64().unwrap();
    assert!(
        v + dropped_frames >= want.stream("h264").packets,
        "every missing video frame counted"
    );
    let decoded = Command::new("ffmpeg")
        .args(["-v", "quiet", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .status()
        .unwrap();
    assert!(decoded.success());
}

#[test]
fn ffmpeg_http_post_records_every_frame() {
    let _g = serial();
    let src = source(10, 25);
    let d = Daemon::start_with_config(&config(free_port(), free_port()), &[]);
    let url = d.url("/v1/ingest/mpegts/ts/http");
    // Without the token: refused before anything is claimed.
    let r = ureq::post(&url).send_bytes(b"G");
    assert!(matches!(r, Err(ureq::Error::Status(401, _))));
    // ffmpeg streams the body chunked (its default for POST).
    let ff = Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-i"])
        .arg(&src)
        .args(["-c", "copy", "-f", "mpegts", "-method", "POST"])
        .args(["-headers", &format!("Authorization: Bearer {API_KEY}\r\n")])
        .arg(&url)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let live = d.wait_for(Duration::from_secs(5), |d| {
        let (_, s) = d.api("GET", "/v1/streams/ts/http", None);
        (s["protocol"] == "mpegts-http").then_some(s)
    });
    assert!(live.is_some(), "{}", d.log());
    let (ok, err) = finish(ff);
    assert!(ok, "ffmpeg: {err}");
    let rec = finalized_ts(&d, "ts/http");
    assert_eq!(rec["stop_reason"], "disconnected");
    check_complete(&d, &rec, &src);
}

#[test]
fn mp3_and_opus_in_ts_record_every_frame() {
    let _g = serial();
    let (udp, tcp) = (free_port(), free_port());
    let d = Daemon::start_with_config(&config(udp, tcp), &[]);
    let opus = source_h264_opus();
    let mp3 = test_pattern(
        "ffmpeg",
        "h264_mp3_6s.ts",
        "640x360",
        44_100,
        6,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "25",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "128k",
            "-f",
            "mpegts",
        ],
    );
    let a = send_ts(&opus, &format!("tcp://127.0.0.1:{tcp}"));
    let b = send_ts(&mp3, &format!("udp://127.0.0.1:{udp}?pkt_size=1316"));
    let (ok, err) = finish(a);
    assert!(ok, "ffmpeg tcp: {err}");
    let (ok, err) = finish(b);
    assert!(ok, "ffmpeg udp: {err}");
    let rec = finalized_ts(&d, "ts/tcp");
    assert_eq!(rec["tracks"][1]["codec"], "opus");
    assert_every_frame(&d, &rec, &opus, &["h264", "opus"], 0.08);
    let rec = finalized_ts(&d, "ts/udp");
    assert_eq!(rec["tracks"][1]["codec"], "mp3");
    assert_every_frame(&d, &rec, &mp3, &["h264", "mp3"], 0.08);
}

#[test]
fn h265_in_ts_records_every_frame() {
    let _g = serial();
    let (udp, tcp) = (free_port(), free_port());
    let d = Daemon::start_with_config(&config(udp, tcp), &[]);
    let src = test_pattern(
        "ffmpeg",
        "h265_aac_6s.ts",
        "640x360",
        48_000,
        6,
        &[
            "-c:v",
            "libx265",
            "-preset",
            "veryfast",
            "-x265-params",
            "log-level=error:keyint=25",
            "-c:a",
            "aac",
            "-f",
            "mpegts",
        ],
    );
    let (ok, err) = finish(send_ts(&src, &format!("tcp://127.0.0.1:{tcp}")));
    assert!(ok, "ffmpeg: {err}");
    let rec = finalized_ts(&d, "ts/tcp");
    assert_eq!(rec["tracks"][0]["codec"], "h265");
    assert_every_frame(&d, &rec, &src, &["hevc", "aac"], 0.08);
}
