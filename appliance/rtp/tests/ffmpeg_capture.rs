//! Replays RTP captured from ffmpeg 5.1 (`-f rtp`, libx264 640x360 25 fps with
//! B-frames + libopus, 1 s; see tests/data/README.md) through a session.

use std::time::{Duration, Instant};

use bytes::Bytes;
use edgerec_media::{Codec, Frame, TrackId, TrackInfo};
use edgerec_rtp::{Event, RtpSession, SessionOptions, TrackSpec};

/// (transport index: 0 video RTP, 1 video RTCP, 2 audio RTP, 3 audio RTCP, datagram)
fn capture() -> Vec<(u8, Bytes)> {
    let d = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ffmpeg_h264_opus_1s.rtpdump"
    ))
    .unwrap();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 <= d.len() {
        let len = usize::from(u16::from_be_bytes([d[i + 1], d[i + 2]]));
        out.push((d[i], Bytes::copy_from_slice(&d[i + 3..i + 3 + len])));
        i += 3 + len;
    }
    out
}

fn specs() -> Vec<TrackSpec> {
    // The SDP ffmpeg printed: H264/90000 pt 96 packetization-mode=1, opus/48000/2 pt 97.
    vec![
        TrackSpec {
            codec: Codec::H264,
            payload_type: 96,
            clock_rate: 90_000,
            channels: None,
            fmtp: Some("packetization-mode=1".into()),
            ssrc: None,
        },
        TrackSpec {
            codec: Codec::Opus,
            payload_type: 97,
            clock_rate: 48_000,
            channels: Some(2),
            fmtp: None,
            ssrc: None,
        },
    ]
}

struct Out {
    tracks: Vec<TrackInfo>,
    frames: Vec<Frame>,
    dropped: Vec<String>,
}

fn run(packets: Vec<(u8, Bytes)>, opts: SessionOptions) -> (Out, edgerec_rtp::SessionStats) {
    let mut s = RtpSession::new(specs(), opts).unwrap();
    let mut out = Out {
        tracks: vec![],
        frames: vec![],
        dropped: vec![],
    };
    let now = replay(&mut s, packets, &mut out);
    s.handle_end(now);
    drain(&mut s, &mut out);
    (out, s.stats())
}

/// Events into `out`; what the session sends is discarded.
fn drain(s: &mut RtpSession, out: &mut Out) {
    while let Some(e) = s.poll_event() {
        match e {
            Event::Track(t) => out.tracks.push(t),
            Event::Frame(f) => out.frames.push(f),
            Event::Dropped { reason, .. } => out.dropped.push(reason),
            Event::Bye { .. } => {}
        }
    }
    while s.poll_transmit().is_some() {}
}

/// Feeds the datagrams 7 ms apart, as their timeouts come; the time of the last.
fn replay(s: &mut RtpSession, packets: Vec<(u8, Bytes)>, out: &mut Out) -> Instant {
    let t0 = Instant::now();
    let mut now = t0;
    for (i, (port, d)) in packets.into_iter().enumerate() {
        now = t0 + Duration::from_millis(i as u64 * 7);
        let track = usize::from(port / 2);
        if port % 2 == 0 {
            s.handle_rtp(track, d, now);
        } else {
            s.handle_rtcp(track, &d, now);
        }
        while s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        drain(s, out);
    }
    now
}

fn frames_of(out: &Out, id: u32) -> Vec<&Frame> {
    out.frames
        .iter()
        .filter(|f| f.track == TrackId(id))
        .collect()
}

#[test]
fn every_frame_of_the_capture_comes_out_on_one_clock() {
    let (out, stats) = run(capture(), SessionOptions::default());
    assert!(out.dropped.is_empty(), "{:?}", out.dropped);
    assert_eq!(out.tracks.len(), 2);
    let v = out.tracks.iter().find(|t| t.codec == Codec::H264).unwrap();
    assert_eq!(v.codec_string, "avc1.64001e");
    assert_eq!(v.video().map(|p| (p.width, p.height)), Some((640, 360)));
    assert!(out.tracks.iter().any(|t| t.codec == Codec::Opus));
    let video = frames_of(&out, 1);
    let audio = frames_of(&out, 2);
    // ffprobe counts 25 video and 51 audio frames in the same encode.
    assert_eq!(video.len(), 25);
    assert_eq!(audio.len(), 51);
    assert!(video[0].key);
    assert_eq!(video.iter().filter(|f| f.key).count(), 1);
    for w in video.windows(2) {
        assert!(w[1].dts > w[0].dts, "decode times rise");
    }
    assert!(video.iter().all(|f| f.pts >= f.dts));
    // B-frames: presentation order differs from decode order.
    assert!(video.windows(2).any(|w| w[1].pts < w[0].pts));
    for w in audio.windows(2) {
        assert_eq!(
            (w[1].dts.ticks() - w[0].dts.ticks()),
            960,
            "20 ms Opus frames"
        );
    }
    // RTP timestamps start at random values; sender reports put both tracks on one
    // clock. ffmpeg anchors each `-f rtp` output's reports at its own first packet,
    // so x264's encoding delay shows (78 ms here); random origins would be hours.
    let gap = (video[0].pts.as_secs_f64() - audio[0].pts.as_secs_f64()).abs();
    assert!(gap < 0.1, "audio/video start {gap} s apart");
    assert_eq!(stats.packets_lost, 0);
}

#[test]
fn a_lost_packet_costs_its_frame_only_and_is_counted() {
    let mut p = capture();
    // Drop a video FU-A packet from the middle, swap two audio packets.
    let video_at: Vec<usize> = (0..p.len()).filter(|&i| p[i].0 == 0).collect();
    p.remove(video_at[40]);
    let audio_at: Vec<usize> = (0..p.len()).filter(|&i| p[i].0 == 2).collect();
    p.swap(audio_at[10], audio_at[11]);
    let (out, stats) = run(p, SessionOptions::default());
    assert_eq!(stats.packets_lost, 1);
    assert_eq!(stats.packets_reordered, 1);
    assert_eq!(frames_of(&out, 1).len(), 24);
    assert_eq!(frames_of(&out, 2).len(), 51);
    assert!(
        out.dropped.iter().any(|r| r.contains("damaged")),
        "{:?}",
        out.dropped
    );
}

#[test]
fn garbage_datagrams_are_dropped_with_a_reason() {
    let mut p = capture();
    p.insert(5, (0, Bytes::from_static(&[0x80, 96, 0])));
    p.insert(
        9,
        (
            0,
            Bytes::from_static(&[0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 28]),
        ),
    );
    p.insert(12, (1, Bytes::from_static(&[0x80, 200, 0, 40])));
    let (out, _) = run(p, SessionOptions::default());
    assert_eq!(frames_of(&out, 1).len(), 25);
    assert!(out
        .dropped
        .iter()
        .any(|r| r.contains("shorter than its header")));
}

/// The recorder waits for a key frame (an API start mid-stream, a rotation
/// due): the video sender is asked with a PLI in the next RTCP, the audio
/// sender is not, and nobody is asked again once a key frame came.
#[test]
fn a_key_frame_request_goes_to_the_video_sender_as_a_pli() {
    let opts = SessionOptions {
        feedback: edgerec_rtp::Feedback {
            nack: false,
            pli: true,
        },
        ..SessionOptions::default()
    };
    let mut s = RtpSession::new(specs(), opts).unwrap();
    let mut out = Out {
        tracks: vec![],
        frames: vec![],
        dropped: vec![],
    };
    let is_pli = |d: &Bytes| d.windows(2).any(|w| w == [0x81, 206]);
    let sent = |s: &mut RtpSession, at: Instant| {
        s.handle_timeout(at);
        std::iter::from_fn(|| s.poll_transmit())
            .map(|t| (t.track, is_pli(&t.data)))
            .collect::<Vec<_>>()
    };
    // Asked before anything came; the capture starts with a key frame, and
    // then nobody is asked any more.
    s.request_key_frame();
    let now = replay(&mut s, capture(), &mut out);
    let after = sent(&mut s, now + Duration::from_secs(2));
    assert!(after.iter().all(|&(_, pli)| !pli), "{after:?}");

    s.request_key_frame();
    let asked = sent(&mut s, now + Duration::from_secs(4));
    assert!(asked.contains(&(0, true)), "{asked:?}");
    assert!(!asked.contains(&(1, true)), "{asked:?}");
}
