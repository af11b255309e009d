//! RTSP pull from a real RTSP server (gst-rtsp-server, through tests/tools/
//! rtsp_server.py) serving an H.264 (B-frames) + AAC file at real-time pace with
//! basic auth: wrong credentials show up in the API, a server restart in the middle
//! of the feed starts a new recording, and a full session records every frame that
//! ffmpeg's own RTSP client receives from the same server (the server's qtdemux
//! drops the file's two AAC priming frames, so the file is not the reference).

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use edgerec_e2e::*;
use serde_json::Value;

struct RtspServer(Child);

impl RtspServer {
    fn start(port: u16, file: &Path) -> RtspServer {
        RtspServer::start_kind(port, file, "h264-aac")
    }

    /// `kind`: `h264-aac` (MP4) or `h265-pcma` (QuickTime), see rtsp_server.py.
    fn start_kind(port: u16, file: &Path, kind: &str) -> RtspServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/rtsp_server.py");
        let mut c = Command::new(script)
            .arg(port.to_string())
            .arg(file)
            .args(["cam", "secret", kind])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tests/tools/rtsp_server.py (apt gir1.2-gst-rtsp-server-1.0)");
        let mut line = String::new();
        std::io::BufReader::new(c.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "RTSP server did not start");
        RtspServer(c)
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn source_state(d: &Daemon, stream: &str) -> Value {
    d.get("/v1/sources")["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stream"] == stream)
        .cloned()
        .unwrap()
}

#[test]
fn pulls_a_camera_through_a_restart_and_reports_bad_credentials() {
    let _g = serial();
    let src = source(10, 25);
    let port = free_port();
    let server = RtspServer::start(port, &src);
    let d = Daemon::start_with_config(
        &format!(
            r#"
[[rtsp.sources]]
url = "rtsp://cam:secret@127.0.0.1:{port}/cam"
stream = "cams/good"

[[rtsp.sources]]
url = "rtsp://127.0.0.1:{port}/cam"
username = "cam"
password = "wrong"
stream = "cams/bad"
"#
        ),
        &[],
    );

    // Wrong credentials: a clear error in the API, and no stream.
    let bad = d
        .wait_for(Duration::from_secs(10), |d| {
            let s = source_state(d, "cams/bad");
            s["last_error"].is_string().then_some(s)
        })
        .unwrap_or_else(|| panic!("{}\n{}", d.get("/v1/sources"), d.log()));
    println!("bad source: {bad}");
    assert!(bad["last_error"].as_str().unwrap().contains("401"), "{bad}");
    assert!(!bad["url"].as_str().unwrap().contains("wrong"));

    // The good one plays; its URL is shown without the password.
    let good = d
        .wait_for(Duration::from_secs(10), |d| {
            let s = source_state(d, "cams/good");
            (s["state"] == "playing").then_some(s)
        })
        .unwrap_or_else(|| panic!("{}\n{}", d.get("/v1/sources"), d.log()));
    assert!(!good["url"].as_str().unwrap().contains("secret"), "{good}");
    let live = d.get("/v1/streams/cams/good");
    assert_eq!(live["protocol"], "rtsp-pull");

    // The server goes away mid-feed and comes back: the first recording ends
    // playable, a new one starts when the source is reachable again.
    std::thread::sleep(Duration::from_secs(4));
    drop(server);
    let _server = RtspServer::start(port, &src);
    // The reference: what ffprobe, a client nobody here wrote, receives from the
    // restarted server in a whole session.
    let reference = std::thread::spawn(move || {
        let out = run_bounded(
            Command::new("ffprobe")
                .args(["-v", "error", "-rtsp_transport", "tcp", "-count_packets"])
                .args([
                    "-show_entries",
                    "stream=codec_name,nb_read_packets",
                    "-of",
                    "csv=p=0",
                ])
                .arg(format!("rtsp://cam:secret@127.0.0.1:{port}/cam")),
            CLIENT_TIMEOUT,
        )
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .filter_map(|l| l.split_once(','))
            .map(|(c, n)| (c.to_owned(), n.trim().parse::<u64>().unwrap()))
            .collect::<Vec<_>>()
    });
    let recs = d
        .wait_for(Duration::from_secs(60), |d| {
            let r = d.recordings("?stream=cams/good");
            (r.len() == 2 && r.iter().all(|r| r["state"] == "finalized")).then_some(r)
        })
        .unwrap_or_else(|| {
            panic!(
                "{:?}\nlive streams (frames received): {}\n{}",
                d.recordings(""),
                d.get("/v1/streams"),
                d.log()
            )
        });
    // Newest first.
    let (second, first) = (&recs[0], &recs[1]);
    let f1 = part_file(&d, first, 1);
    let p1 = probe(&f1);
    println!("before the restart: {p1:?}");
    assert!(p1.duration > 2.0 && p1.duration < 8.0, "{p1:?}");
    decode_all(&f1).expect("the cut recording decodes");

    let want = probe(&src);
    let reference = reference.join().unwrap();
    let f2 = part_file(&d, second, 1);
    let got = probe(&f2);
    println!("after the restart: {got:?}\nfile {want:?}\nffprobe over RTSP {reference:?}");
    assert_eq!(reference.len(), 2, "{reference:?}");
    for (codec, n) in &reference {
        assert_eq!(got.stream(codec).packets, *n, "{codec} frames");
    }
    assert_eq!(got.stream("h264").packets, want.stream("h264").packets);
    assert!((got.duration - want.duration).abs() < 0.1, "{got:?}");
    assert!(starts_with_key_frame(&f2));
    decode_all(&f2).expect("every frame decodes");
    assert!(source_state(&d, "cams/good")["sessions"].as_u64().unwrap() >= 2);
}

/// An H.265 camera (x265 with B-frames) with G.711 A-law audio: the video is recorded as hvc1 with
/// every frame, the audio listed as not recordable in MP4.
#[test]
fn pulls_an_h265_camera_with_g711_audio() {
    let _g = serial();
    let src = test_pattern(
        "ffmpeg",
        "h265_bframes_alaw_6s.mov",
        "640x360",
        8000,
        6,
        &[
            "-c:v",
            "libx265",
            "-preset",
            "veryfast",
            "-x265-params",
            "log-level=error:keyint=25",
            "-tag:v",
            "hvc1",
            "-c:a",
            "pcm_alaw",
            "-ac",
            "1",
            "-f",
            "mov",
        ],
    );
    let port = free_port();
    let _server = RtspServer::start_kind(port, &src, "h265-pcma");
    let d = Daemon::start_with_config(
        &format!("[[rtsp.sources]]\nurl = \"rtsp://cam:secret@127.0.0.1:{port}/cam\"\nstream = \"cams/h265\"\n"),
        &[],
    );
    let rec = finalized(&d, "cams/h265", Duration::from_secs(30));
    assert_eq!(rec["tracks"][0]["codec"], "h265", "{rec}");
    // H.265 + G.711: "auto" picks Matroska, which holds both.
    assert_eq!(rec["tracks"][1]["codec"], "pcma", "{rec}");
    assert_eq!(rec["tracks"][1]["recorded"], true, "{rec}");
    let file = part_file(&d, &rec, 1);
    assert_eq!(file.extension().unwrap(), "mkv");
    let got = probe(&file);
    let want = probe(&src);
    assert_eq!(
        got.stream("hevc").packets,
        want.stream("hevc").packets,
        "{got:?}"
    );
    // The server packetizes the audio its own way: compare how long it lasts.
    let (got_end, want_end) = (stream_end(&file, "a:0"), stream_end(&src, "a:0"));
    assert!(got.stream("pcm_alaw").packets > 0);
    assert!(
        (got_end - want_end).abs() < 0.3,
        "audio ends at {got_end} s, source {want_end} s"
    );
    assert!(starts_with_key_frame(&file));
    decode_all(&file).unwrap();
}
