//! Enhanced RTMP (FourCC): ffmpeg 9 (the binary in the PyPI package
//! imageio-ffmpeg; tests/run fetches it and sets E2E_FFMPEG9) publishes H.265,
//! AV1 and VP9 with Opus; each recording has the right codecs, every frame of
//! the source, and decodes.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use edgerec_e2e::*;

fn ffmpeg9() -> PathBuf {
    let p = std::env::var_os("E2E_FFMPEG9")
        .map(PathBuf::from)
        .expect("E2E_FFMPEG9 (tests/run fetches ffmpeg 9 from PyPI imageio-ffmpeg)");
    assert!(p.exists(), "{}", p.display());
    p
}

/// 5 s of test pattern encoded once by ffmpeg 9 with `video` args and Opus, in
/// Matroska (which holds all three codecs).
fn source9(name: &str, video: &[&str]) -> PathBuf {
    let mut args = vec!["-g", "25"];
    args.extend_from_slice(video);
    args.extend_from_slice(&["-c:a", "libopus", "-b:a", "64k"]);
    test_pattern(
        ffmpeg9(),
        &format!("{name}_opus_5s.mkv"),
        "320x240",
        48_000,
        5,
        &args,
    )
}

fn publish_and_check(d: &Daemon, name: &str, video: &[&str], codec: &str) {
    let src = source9(name, video);
    let stream = format!("live/{name}");
    let out = run_bounded(
        Command::new(ffmpeg9())
            .args(["-v", "error", "-re", "-i"])
            .arg(&src)
            .args(["-c", "copy", "-f", "flv"])
            .arg(d.rtmp_url(&stream))
            .stdin(Stdio::null()),
        CLIENT_TIMEOUT,
    )
    .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg 9: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec = finalized(d, &stream, Duration::from_secs(5));
    assert_eq!(rec["tracks"][1]["codec"], "opus");
    if codec != "hevc" {
        // From AV1's sequence header and VP9's first key frame (H.265: not yet).
        assert_eq!(
            (
                rec["tracks"][0]["width"].as_u64(),
                rec["tracks"][0]["height"].as_u64()
            ),
            (Some(320), Some(240)),
            "{name}"
        );
    }
    // Every frame, including the Opus packet ffmpeg 9 puts 7 ms before the first
    // video frame for AV1 and VP9 (the recorder pre-rolls such audio).
    assert_every_frame(d, &rec, &src, &[codec, "opus"], 0.1);
}

#[test]
fn ffmpeg9_publishes_hevc_av1_vp9_with_opus() {
    let _g = serial();
    let d = Daemon::start(&[]);
    publish_and_check(
        &d,
        "hevc",
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error",
            "-bf",
            "2",
        ],
        "hevc",
    );
    publish_and_check(
        &d,
        "av1",
        &[
            "-c:v",
            "libsvtav1",
            "-preset",
            "12",
            "-svtav1-params",
            "lp=2",
        ],
        "av1",
    );
    publish_and_check(
        &d,
        "vp9",
        &[
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
        ],
        "vp9",
    );
}
