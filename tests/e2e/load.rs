//! Many concurrent publishers on this 2-core machine.

use std::time::{Duration, Instant};

use edgerec_e2e::*;

const FEEDS: usize = 50;

#[test]
fn fifty_concurrent_30s_feeds_are_all_recorded_with_every_frame() {
    let _g = serial();
    let src = source(30, 50);
    let want = probe(&src);
    let d = Daemon::start(&[]);
    let t = Instant::now();
    let publishers: Vec<_> = (0..FEEDS)
        .map(|i| publish(&src, &d.rtmp_url(&format!("load/feed{i:02}"))))
        .collect();
    for (i, p) in publishers.into_iter().enumerate() {
        let (ok, err) = finish(p);
        assert!(ok, "publisher {i}: {err}");
    }
    println!("{FEEDS} feeds published in {:?}", t.elapsed());
    let recs = d
        .wait_for(Duration::from_secs(10), |d| {
            let r = d.recordings("?state=finalized");
            (r.len() == FEEDS).then_some(r)
        })
        .unwrap_or_else(|| panic!("not all finalized: {:?}", d.recordings("").len()));
    let rss = d.peak_rss_kib();
    let metrics = ureq::get(&d.url("/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let latency_count = metrics
        .lines()
        .find(|l| l.starts_with("edgerec_write_latency_seconds_count"))
        .unwrap()
        .to_owned();
    println!(
        "edgerec peak RSS: {} KiB ({:.1} MiB; {:.0} KiB per feed); {latency_count}",
        rss,
        rss as f64 / 1024.0,
        rss as f64 / FEEDS as f64
    );
    let mut names: Vec<String> = recs
        .iter()
        .map(|r| r["stream"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), FEEDS);
    for r in &recs {
        let file = part_file(&d, r, 1);
        let p = probe(&file);
        assert_eq!(
            p.stream("h264").packets,
            want.stream("h264").packets,
            "{}: video",
            r["stream"]
        );
        assert_eq!(
            p.stream("aac").packets,
            want.stream("aac").packets,
            "{}: audio",
            r["stream"]
        );
        assert!(
            (p.duration - want.duration).abs() <= 0.05,
            "{}: {} s",
            r["stream"],
            p.duration
        );
    }
    assert!(!metrics.contains("edgerec_frames_dropped_total{reason=\"recording_stopped\"} 1"));
}
