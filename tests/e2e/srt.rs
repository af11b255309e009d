//! MPEG-TS over SRT: ffmpeg (libsrt) and srt-live-transmit calling edgerec's
//! listener, a passphrase that keeps out callers without it, and edgerec calling
//! a remote SRT listener; recordings checked with ffprobe.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use edgerec_e2e::*;

const PASSPHRASE: &str = "edgerec-e2e-secret";

/// ffmpeg sends `file` in real time as MPEG-TS over SRT to `url`. Callers add
/// `linger=3`: in live mode libsrt closes without lingering, dropping the last
/// messages still in its send buffer (measured here: ~3 KB of a 3 s feed never
/// leave ffmpeg without it), and the test counts every frame.
fn ffmpeg_srt(file: &Path, url: &str) -> Child {
    publish_as(file, "mpegts", url)
}

/// The UDP socket bound to `port` has the receive buffer edgerec asks for every
/// UDP ingest (4 MiB) as Linux grants it: capped at `net.core.rmem_max`, then
/// doubled for the kernel's bookkeeping (`ss -m`'s `rb`).
fn assert_udp_receive_buffer(port: u16) {
    let out = Command::new("ss")
        .args(["-u", "-a", "-n", "-m", &format!("sport = :{port}")])
        .output()
        .expect("ss (apt install iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    let rb: u64 = text
        .split(",rb")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no receive buffer for port {port} in `ss -m`:\n{text}"));
    let rmem_max: u64 = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .expect("rmem_max")
        .trim()
        .parse()
        .expect("rmem_max is a number");
    assert_eq!(rb, 2 * rmem_max.min(4 << 20), "port {port}:\n{text}");
}

#[test]
fn ffmpeg_and_srt_live_transmit_call_the_listener() {
    let _g = serial();
    let src = source(10, 25);
    let (open, locked) = (free_port(), free_port());
    let d = Daemon::start_with_config(
        &format!(
            r#"
[mpegts]
idle_timeout = "2s"

[[mpegts.inputs]]
transport = "srt"
listen = "127.0.0.1:{open}"
stream = "srt/default"

[[mpegts.inputs]]
transport = "srt"
listen = "127.0.0.1:{locked}"
stream = "srt/locked"
passphrase = "{PASSPHRASE}"
"#
        ),
        &[],
    );

    // ffmpeg names its stream in the stream id (MediaMTX's form).
    let ff = ffmpeg_srt(
        &src,
        &format!("srt://127.0.0.1:{open}?streamid=publish:srt/ffmpeg&pkt_size=1316&linger=3"),
    );
    // srt-live-transmit as the usual UDP -> SRT gateway in front of ffmpeg, with
    // the access-control stream id form. It keeps the connection open after its
    // input stops, so its exit timer ends it.
    let gateway = free_port();
    let slt = Command::new("srt-live-transmit")
        .args(["-q", "-a:no", "-t:15"])
        .arg(format!("udp://127.0.0.1:{gateway}"))
        .arg(format!(
            "srt://127.0.0.1:{open}?streamid=#!::r=srt/slt,m=publish"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("srt-live-transmit (apt install srt-tools)");
    std::thread::sleep(Duration::from_millis(500));
    let to_gateway = ffmpeg_srt(&src, &format!("udp://127.0.0.1:{gateway}?pkt_size=1316"));
    // With the passphrase, and without it (refused).
    let keyed = ffmpeg_srt(
        &src,
        &format!("srt://127.0.0.1:{locked}?passphrase={PASSPHRASE}&pkt_size=1316&linger=3"),
    );
    let streams = d
        .wait_for(Duration::from_secs(8), |d| {
            let s = d.get("/v1/streams")["streams"].as_array()?.clone();
            (s.len() == 3).then_some(s)
        })
        .unwrap_or_else(|| panic!("streams: {}\n{}", d.get("/v1/streams"), d.log()));
    let names: Vec<_> = streams
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["srt/ffmpeg", "srt/locked", "srt/slt"]);
    assert!(streams.iter().all(|s| s["protocol"] == "mpegts-srt"));
    // One socket takes every caller's datagrams: it must hold a key frame's burst
    // from all of them (srt-tokio alone asks for 64 KiB).
    assert_udp_receive_buffer(open);
    let stranger = run_bounded(
        Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=160x120:rate=10",
                "-t",
                "2",
            ])
            .args(["-c:v", "libx264", "-f", "mpegts"])
            .arg(format!(
                "srt://127.0.0.1:{locked}?streamid=srt/stranger&connect_timeout=3000"
            ))
            .stdin(Stdio::null()),
        CLIENT_TIMEOUT,
    )
    .unwrap();
    assert!(
        !stranger.status.success(),
        "a caller without the passphrase got in"
    );

    for c in [ff, keyed, to_gateway] {
        let (ok, err) = finish(c);
        assert!(ok, "ffmpeg: {err}");
    }
    // Its exit timer's status is not success; the recording below is the check.
    let _ = finish(slt);

    for stream in ["srt/ffmpeg", "srt/slt", "srt/locked"] {
        let rec = finalized(&d, stream, Duration::from_secs(15));
        assert_eq!(rec["protocol"], "mpegts-srt");
        assert_every_frame(&d, &rec, &src, &["h264", "aac"], 0.040);
    }
    assert!(d.recordings("?stream=srt/stranger").is_empty());
}

#[test]
fn edgerec_calls_a_remote_listener() {
    let _g = serial();
    let src = source(10, 25);
    let remote = free_port();
    // ffmpeg as the SRT listener (an encoder in listener mode), waiting for edgerec.
    let ff = ffmpeg_srt(
        &src,
        &format!(
            "srt://127.0.0.1:{remote}?mode=listener&pkt_size=1316&linger=3&listen_timeout=20000000"
        ),
    );
    std::thread::sleep(Duration::from_millis(500));
    let d = Daemon::start_with_config(
        &format!(
            r#"
[mpegts]
idle_timeout = "2s"

[[mpegts.inputs]]
transport = "srt"
listen = "127.0.0.1:0"
connect = "127.0.0.1:{remote}"
stream = "srt/pulled"
"#
        ),
        &[],
    );
    let (ok, err) = finish(ff);
    assert!(ok, "ffmpeg: {err}");
    let rec = finalized(&d, "srt/pulled", Duration::from_secs(15));
    assert_every_frame(&d, &rec, &src, &["h264", "aac"], 0.040);
}
