//! RTMP in, MP4 out: what a new user does first, checked with ffprobe.

use std::time::{Duration, Instant};

use edgerec_e2e::*;
use serde_json::json;

/// One frame at 25 fps: the duration tolerance.
const FRAME: f64 = 0.040;

#[test]
fn a_10s_feed_becomes_a_finalized_playable_recording() {
    let _g = serial();
    let src = source(10, 25);
    let want = probe(&src);
    let d = Daemon::start(&[]);
    let (ok, err) = finish(publish(&src, &d.rtmp_url("live/cam1")));
    assert!(ok, "ffmpeg: {err}");
    let unpublished = Instant::now();

    // Listed as finalized within 2 s of unpublish.
    let rec = d
        .wait_for(Duration::from_secs(2), |d| {
            d.recordings("?stream=live/cam1")
                .into_iter()
                .find(|r| r["state"] == "finalized")
        })
        .unwrap_or_else(|| panic!("not finalized 2 s after unpublish: {:?}", d.recordings("")));
    println!("finalized {:?} after unpublish", unpublished.elapsed());
    assert_eq!(rec["stream"], "live/cam1");
    assert_eq!(rec["stop_reason"], "unpublished");
    assert_eq!(rec["parts"].as_array().unwrap().len(), 1);
    assert_eq!(rec["tracks"][0]["codec"], "h264");
    assert_eq!(rec["tracks"][0]["width"], 640);
    assert_eq!(rec["tracks"][1]["codec"], "aac");

    let file = part_file(&d, &rec, 1);
    let got = probe(&file);
    println!("source {want:?}\nrecording {got:?}");
    assert!(
        (got.duration - 10.0).abs() <= FRAME,
        "duration {}",
        got.duration
    );
    assert!((got.duration - want.duration).abs() <= FRAME);
    for codec in ["h264", "aac"] {
        assert_eq!(
            got.stream(codec).packets,
            want.stream(codec).packets,
            "{codec} frames"
        );
    }
    assert_eq!(
        rec["parts"][0]["frames"]["video"],
        want.stream("h264").packets
    );
    assert_eq!(
        rec["parts"][0]["frames"]["audio"],
        want.stream("aac").packets
    );
    assert!((rec["duration_ms"].as_u64().unwrap() as f64 / 1000.0 - got.duration).abs() < 0.002);
    assert!(starts_with_key_frame(&file));
    decode_all(&file).expect("every frame decodes");
    assert!(seek_decodes(&file, 5.0), "seek to 5 s");

    // Download through the API, whole and by range.
    let id = rec["id"].as_str().unwrap();
    let on_disk = std::fs::read(&file).unwrap();
    let url = d.url(&format!("/v1/recordings/{id}/parts/1/file"));
    let auth = format!("Bearer {API_KEY}");
    let r = ureq::get(&url).set("Authorization", &auth).call().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    assert!(r
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment; filename=\"cam1_"));
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
    assert_eq!(body, on_disk);
    let r = ureq::get(&url)
        .set("Authorization", &auth)
        .set("Range", "bytes=100-199")
        .call()
        .unwrap();
    assert_eq!(r.status(), 206);
    let mut part = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut part).unwrap();
    assert_eq!(part, on_disk[100..200]);
    assert_eq!(
        ureq::get(&url)
            .call()
            .unwrap_err()
            .into_response()
            .unwrap()
            .status(),
        401
    );
}

#[test]
fn a_second_publisher_on_a_live_name_is_refused_and_a_reconnect_records_anew() {
    let _g = serial();
    let src = source(10, 25);
    let d = Daemon::start(&[]);
    let first = publish(&src, &d.rtmp_url("live/dup"));
    d.wait_for(Duration::from_secs(5), |d| {
        d.get("/v1/streams")["streams"]
            .as_array()
            .filter(|s| !s.is_empty())
            .cloned()
    })
    .expect("first publisher live");
    let t = Instant::now();
    let (ok, err) = finish(publish(&src, &d.rtmp_url("live/dup")));
    assert!(!ok, "second publisher must be refused");
    assert!(t.elapsed() < Duration::from_secs(5), "refused promptly");
    println!("second publisher: {err}");
    assert!(d
        .log()
        .contains("refused: the stream is already being published"));
    let (ok, err) = finish(first);
    assert!(ok, "first publisher unaffected: {err}");

    // The same publisher again: a new recording of the same stream.
    let (ok, _) = finish(publish(&source(3, 25), &d.rtmp_url("live/dup")));
    assert!(ok);
    let recs = d
        .wait_for(Duration::from_secs(3), |d| {
            let r = d.recordings("?stream=live/dup&state=finalized");
            (r.len() == 2).then_some(r)
        })
        .expect("two recordings");
    assert_ne!(recs[0]["id"], recs[1]["id"]);
    let want = probe(&src);
    // Newest first: the 10 s one is second.
    assert_eq!(
        probe(&part_file(&d, &recs[1], 1)).stream("h264").packets,
        want.stream("h264").packets
    );
}

#[test]
fn recordings_start_and_stop_on_demand_with_per_call_settings() {
    let _g = serial();
    let src = source(10, 25);
    let d = Daemon::start(&[("EDGEREC_RECORDING__RECORD", "none")]);
    assert_eq!(
        d.api(
            "POST",
            "/v1/recordings",
            Some(json!({"stream": "live/api"}))
        )
        .0,
        404
    );
    let publisher = publish(&src, &d.rtmp_url("live/api"));
    d.wait_for(Duration::from_secs(5), |d| {
        d.get("/v1/streams")["streams"]
            .as_array()
            .filter(|s| !s.is_empty())
            .cloned()
    })
    .expect("live");
    assert!(d.recordings("").is_empty(), "record = none");
    std::thread::sleep(Duration::from_secs(1));

    let (s, first) = d.api(
        "POST",
        "/v1/recordings",
        Some(json!({"stream": "live/api", "template": "calls/{streamName}-{startTime}-{endTime}-{duration}"})),
    );
    assert_eq!(s, 201, "{first}");
    assert_eq!(first["state"], "recording");
    let streams = d.get("/v1/streams");
    assert_eq!(streams["streams"][0]["recording_id"], first["id"]);
    assert_eq!(streams["streams"][0]["tracks"][0]["codec"], "h264");
    std::thread::sleep(Duration::from_secs(3));

    // A start on a stream already recording stops that one and starts another.
    let (s, second) = d.api(
        "POST",
        "/v1/recordings",
        Some(json!({"stream": "live/api"})),
    );
    assert_eq!(s, 201);
    assert_ne!(second["id"], first["id"]);
    let first = d.get(&format!("/v1/recordings/{}", first["id"].as_str().unwrap()));
    assert_eq!(first["state"], "finalized");
    assert_eq!(first["stop_reason"], "restarted");
    // {endTime}/{duration}: written as "live" while recording, renamed at the end.
    let path = first["parts"][0]["path"].as_str().unwrap();
    assert!(
        path.starts_with("calls/api-") && !path.contains("live"),
        "{path}"
    );
    let dur = first["duration_ms"].as_u64().unwrap();
    assert!(path.ends_with(&format!("-{dur}.mp4")), "{path}");
    assert!(starts_with_key_frame(&part_file(&d, &first, 1)));

    std::thread::sleep(Duration::from_secs(2));
    let id = second["id"].as_str().unwrap();
    let (s, stopped) = d.api("POST", &format!("/v1/recordings/{id}/stop"), None);
    assert_eq!(s, 200);
    assert_eq!(stopped["state"], "finalized");
    assert_eq!(stopped["stop_reason"], "api");
    let p = probe(&part_file(&d, &stopped, 1));
    assert!((p.duration - stopped["duration_ms"].as_u64().unwrap() as f64 / 1000.0).abs() < 0.05);
    decode_all(&part_file(&d, &stopped, 1)).unwrap();
    // Stopping again returns it as it is.
    assert_eq!(
        d.api("POST", &format!("/v1/recordings/{id}/stop"), None).0,
        200
    );
    let (ok, _) = finish(publisher);
    assert!(ok);
    // Delete removes the row and the file.
    let file = part_file(&d, &stopped, 1);
    assert_eq!(
        d.api("DELETE", &format!("/v1/recordings/{id}"), None).0,
        204
    );
    assert!(!file.exists());
    assert_eq!(d.api("GET", &format!("/v1/recordings/{id}"), None).0, 404);
}

#[test]
fn mp3_goes_to_mp4_and_g711_to_matroska() {
    let _g = serial();
    let d = Daemon::start(&[]);
    let mp3 = source_with_audio("h264_mp3", 4, &["-c:a", "libmp3lame", "-b:a", "64k"]);
    let alaw = source_with_audio(
        "h264_alaw",
        4,
        &["-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"],
    );
    for (file, stream) in [(&mp3, "live/mp3"), (&alaw, "live/alaw")] {
        let (ok, err) = finish(publish(file, &d.rtmp_url(stream)));
        assert!(ok, "{stream}: {err}");
    }
    let get = |stream: &str| {
        d.wait_for(Duration::from_secs(3), |d| {
            d.recordings(&format!("?stream={stream}&state=finalized"))
                .into_iter()
                .next()
        })
        .unwrap_or_else(|| panic!("{stream} not finalized"))
    };

    let rec = get("live/mp3");
    let want = probe(&mp3);
    let got = probe(&part_file(&d, &rec, 1));
    assert_eq!(rec["tracks"][1]["codec"], "mp3");
    assert_eq!(rec["tracks"][1]["recorded"], true);
    assert_eq!(got.stream("mp3").packets, want.stream("mp3").packets);
    assert_eq!(got.stream("h264").packets, want.stream("h264").packets);
    decode_all(&part_file(&d, &rec, 1)).unwrap();

    // G.711 has no MP4 mapping: "auto" puts H.264 + A-law in Matroska, sound
    // and all.
    let rec = get("live/alaw");
    let audio = &rec["tracks"][1];
    assert_eq!(audio["codec"], "pcma");
    assert_eq!(audio["recorded"], true, "{rec}");
    assert_eq!(rec["container"], "mkv");
    let file = part_file(&d, &rec, 1);
    assert_eq!(file.extension().unwrap(), "mkv");
    let got = probe(&file);
    let want = probe(&alaw);
    assert_eq!(got.stream("h264").packets, want.stream("h264").packets);
    assert_eq!(
        got.stream("pcm_alaw").packets,
        want.stream("pcm_alaw").packets
    );
    decode_all(&file).unwrap();
}

/// MPEG-TS and Matroska on request: every frame of an RTMP feed, playable.
#[test]
fn ts_and_mkv_on_request_hold_every_frame() {
    let _g = serial();
    let src = source(4, 25);
    let want = probe(&src);
    for (container, codec_probe) in [("ts", "aac"), ("mkv", "aac")] {
        let d =
            Daemon::start_with_config(&format!("[recording]\ncontainer = \"{container}\"\n"), &[]);
        let (ok, err) = finish(publish(&src, &d.rtmp_url("live/cam")));
        assert!(ok, "ffmpeg: {err}");
        let rec = finalized(&d, "live/cam", Duration::from_secs(5));
        assert_eq!(rec["container"], container, "{rec}");
        let file = part_file(&d, &rec, 1);
        assert_eq!(file.extension().unwrap(), container);
        let got = probe(&file);
        println!("{container}: {got:?}");
        assert_eq!(got.stream("h264").packets, want.stream("h264").packets);
        assert_eq!(got.stream(codec_probe).packets, want.stream("aac").packets);
        let frames = &rec["parts"][0]["frames"];
        assert_eq!(frames["video"], want.stream("h264").packets, "{rec}");
        assert!(
            (got.duration - want.duration).abs() < 0.1,
            "{container}: {} s vs source {} s",
            got.duration,
            want.duration
        );
        assert!(starts_with_key_frame(&file));
        decode_all(&file).unwrap();
    }
}
