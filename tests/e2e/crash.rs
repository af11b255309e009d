//! Power cut stand-in: kill -9 mid-recording.

use std::time::Duration;

use edgerec_e2e::*;

#[test]
fn kill_9_mid_feed_leaves_a_playable_file_that_restart_recovers() {
    let _g = serial();
    let src = source(20, 25);
    let mut d = Daemon::start(&[]);
    let publisher = publish(&src, &d.rtmp_url("live/crash"));
    let rec = d
        .wait_for(Duration::from_secs(5), |d| {
            d.recordings("")
                .into_iter()
                .find(|r| !r["parts"].as_array().unwrap().is_empty())
        })
        .expect("recording started");
    std::thread::sleep(Duration::from_secs(6));
    d.kill9();
    let _ = finish(publisher);

    // The file as the crash left it plays.
    let file = part_file(&d, &rec, 1);
    let raw = probe(&file);
    println!("after kill -9: {raw:?}");
    assert!(raw.duration >= 5.0, "only {} s survived", raw.duration);
    decode_all(&file).expect("decodes as left");

    d.restart();
    let id = rec["id"].as_str().unwrap();
    let after = d.get(&format!("/v1/recordings/{id}"));
    assert_eq!(after["state"], "recovered", "{after}");
    assert_eq!(after["stop_reason"], "crash");
    assert_eq!(after["parts"][0]["state"], "recovered");
    let fixed = probe(&file);
    let listed = after["duration_ms"].as_u64().unwrap() as f64 / 1000.0;
    println!("recovered: listed {listed} s, ffprobe {fixed:?}");
    assert!(listed >= 5.0);
    assert!(
        (fixed.duration - listed).abs() < 0.05,
        "listed {listed} vs file {}",
        fixed.duration
    );
    assert_eq!(
        fixed.stream("h264").packets,
        after["parts"][0]["frames"]["video"].as_u64().unwrap()
    );
    assert!(fixed.stream("h264").packets >= raw.stream("h264").packets);
    decode_all(&file).expect("decodes after recovery");
    assert!(seek_decodes(&file, 2.5));
    assert!(d.log().contains("recovered part"));
}
