//! Rotation: parts cut at key frames, nothing lost or duplicated at a cut.

use std::time::Duration;

use edgerec_e2e::*;

#[test]
fn a_20s_feed_rotated_every_5s_gives_4_parts_summing_to_the_source() {
    let _g = serial();
    let src = source(20, 25);
    let want = probe(&src);
    let d = Daemon::start(&[("EDGEREC_RECORDING__ROTATION", "5s")]);
    let (ok, err) = finish(publish(&src, &d.rtmp_url("live/rot")));
    assert!(ok, "{err}");
    let rec = d
        .wait_for(Duration::from_secs(3), |d| {
            d.recordings("?state=finalized").into_iter().next()
        })
        .expect("finalized");
    let parts = rec["parts"].as_array().unwrap();
    println!("{} parts", parts.len());
    assert!((3..=5).contains(&parts.len()), "{} parts", parts.len());
    let (mut video, mut audio) = (0, 0);
    for (i, p) in parts.iter().enumerate() {
        let n = i + 1;
        assert_eq!(p["index"], n);
        let path = p["path"].as_str().unwrap();
        assert!(path.ends_with(&format!("_{n}.mp4")), "{path}");
        let file = part_file(&d, &rec, n);
        assert!(
            starts_with_key_frame(&file),
            "part {n} starts with a key frame"
        );
        decode_all(&file).unwrap_or_else(|e| panic!("part {n}: {e}"));
        let pr = probe(&file);
        println!("part {n}: {pr:?}");
        let listed = p["duration_ms"].as_u64().unwrap() as f64 / 1000.0;
        assert!(
            (pr.duration - listed).abs() < 0.05,
            "part {n}: listed {listed}, file {}",
            pr.duration
        );
        if n < parts.len() {
            // Cut at the first key frame at or after 5 s (key frames every second).
            assert!((5.0..6.1).contains(&listed), "part {n} lasts {listed} s");
        }
        assert_eq!(
            pr.stream("h264").packets,
            p["frames"]["video"].as_u64().unwrap()
        );
        video += pr.stream("h264").packets;
        audio += pr.stream("aac").packets;
    }
    assert_eq!(
        video,
        want.stream("h264").packets,
        "video frames lost or duplicated at cuts"
    );
    assert_eq!(
        audio,
        want.stream("aac").packets,
        "audio frames lost or duplicated at cuts"
    );
}

#[test]
fn size_rotation_and_numbering_off() {
    let _g = serial();
    let src = source(10, 25);
    let d = Daemon::start(&[
        (
            "EDGEREC_RECORDING__ROTATION",
            "{size=\"400K\",numbering=false}",
        ),
        (
            "EDGEREC_RECORDING__TEMPLATE",
            "{streamName}/{part}-{startTimeMillis}",
        ),
    ]);
    let (ok, err) = finish(publish(&src, &d.rtmp_url("live/size")));
    assert!(ok, "{err}");
    let rec = d
        .wait_for(Duration::from_secs(3), |d| {
            d.recordings("?state=finalized").into_iter().next()
        })
        .expect("finalized");
    let parts = rec["parts"].as_array().unwrap();
    assert!(parts.len() >= 2, "{rec}");
    let mut video = 0;
    for (i, p) in parts.iter().enumerate() {
        let path = p["path"].as_str().unwrap();
        assert!(path.starts_with(&format!("size/{}-", i + 1)), "{path}");
        video += probe(&part_file(&d, &rec, i + 1)).stream("h264").packets;
        if i + 1 < parts.len() {
            // Cut at the first key frame after 400K: at most a GOP (~125 KB) more.
            let size = p["size_bytes"].as_u64().unwrap();
            assert!(
                (400 << 10..700 << 10).contains(&size),
                "part {} is {size} bytes",
                i + 1
            );
        }
    }
    assert_eq!(video, probe(&src).stream("h264").packets);
}
