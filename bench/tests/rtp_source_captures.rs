//! The load generator's RTP, cut from an ffmpeg FLV (x264 with B-frames + AAC,
//! the RTMP crate's capture), goes through edgerec's own RTP session as the
//! relayed-RTP ingest runs it, with the tracks the generator asks the API for:
//! every frame comes out, key frames where the FLV has them, at the FLV's
//! presentation times.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use edgerec_bench::rtp_source::{self, RtpSource};
use edgerec_bench::source::{Source, TagKind};
use edgerec_media::{Codec, Frame, TrackId};
use edgerec_rtp::{Event, RtpSession, SessionOptions, TrackSpec};

fn flv() -> Source {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../appliance/rtmp/tests/data/x264_aac_320x240_1s.flv"
    );
    Source::parse(Bytes::from(std::fs::read(path).unwrap())).unwrap()
}

/// The session request's tracks as the API turns them into specs.
fn specs(rtp: &RtpSource) -> Vec<TrackSpec> {
    let tracks = rtp.tracks_json();
    let spec = |i: usize, codec, clock_rate| TrackSpec {
        codec,
        payload_type: tracks[i]["payload_type"].as_u64().unwrap() as u8,
        clock_rate,
        channels: tracks[i]["channels"].as_u64().map(|c| c as u8),
        fmtp: tracks[i]["fmtp"].as_str().map(str::to_owned),
        ssrc: None,
    };
    assert_eq!(tracks[0]["codec"], "h264");
    assert_eq!(tracks[1]["codec"], "aac");
    vec![
        spec(0, Codec::H264, 90_000),
        spec(
            1,
            Codec::Aac,
            tracks[1]["clock_rate"].as_u64().unwrap() as u32,
        ),
    ]
}

fn replay(rtp: &RtpSource) -> Vec<Frame> {
    let mut s = RtpSession::new(specs(rtp), SessionOptions::default()).unwrap();
    let t0 = Instant::now();
    let mut now = t0;
    let mut seq = [100u16, 200];
    let mut frames = Vec::new();
    let mut drain = |s: &mut RtpSession| {
        while let Some(e) = s.poll_event() {
            match e {
                Event::Frame(f) => frames.push(f),
                Event::Dropped { reason, .. } => panic!("dropped: {reason}"),
                _ => {}
            }
        }
        while s.poll_transmit().is_some() {}
    };
    for f in &rtp.frames {
        now = t0 + Duration::from_millis(u64::from(f.send_ms));
        let (t, pt) = match f.kind {
            TagKind::Video => (0, rtp_source::VIDEO_PT),
            _ => (1, rtp_source::AUDIO_PT),
        };
        for (k, p) in f.payloads.iter().enumerate() {
            let mut b = BytesMut::new();
            let last = k + 1 == f.payloads.len();
            rtp_source::write_header(&mut b, pt, last, seq[t], f.ts.wrapping_add(7), 9 + t as u32);
            b.extend_from_slice(p);
            seq[t] = seq[t].wrapping_add(1);
            s.handle_rtp(t, b.freeze(), now);
        }
        while s.poll_timeout().is_some_and(|at| at <= now) {
            s.handle_timeout(now);
        }
        drain(&mut s);
    }
    s.handle_end(now);
    drain(&mut s);
    frames
}

#[test]
fn every_frame_comes_out_of_edgerecs_rtp_session_at_the_flv_times() {
    let flv = flv();
    let rtp = RtpSource::from_flv(&flv).unwrap();
    assert_eq!((rtp.audio_rate, rtp.audio_channels), (44_100, 2));
    assert_eq!(rtp.frames.len(), flv.frames.len());
    let frames = replay(&rtp);

    let of = |kind| flv.frames.iter().filter(move |t| t.kind == kind);
    let video: Vec<&Frame> = frames.iter().filter(|f| f.track == TrackId(1)).collect();
    let audio: Vec<&Frame> = frames.iter().filter(|f| f.track == TrackId(2)).collect();
    assert_eq!(video.len(), of(TagKind::Video).count());
    assert_eq!(audio.len(), of(TagKind::Audio).count());
    // Key frames where the FLV has them; presentation times as the FLV's
    // (decode time + composition offset), from the first frame.
    let flv_pts: Vec<(i64, bool)> = of(TagKind::Video)
        .map(|t| {
            let cts = i32::from_be_bytes([t.data[2], t.data[3], t.data[4], 0]) >> 8;
            (i64::from(t.ts_ms) + i64::from(cts), t.data[0] >> 4 == 1)
        })
        .collect();
    let got: Vec<(i64, bool)> = video
        .iter()
        .map(|f| {
            (
                f.pts.as_millis() - video[0].pts.as_millis() + flv_pts[0].0,
                f.key,
            )
        })
        .collect();
    assert_eq!(got, flv_pts);
    assert!(video[0].key && flv_pts.iter().filter(|p| p.1).count() >= 1);
    // One AAC frame per packet, 1024 samples apart.
    let rate = edgerec_media::Timescale::new(44_100).unwrap();
    let step: Vec<i64> = audio
        .windows(2)
        .map(|w| w[1].dts.saturating_sub(w[0].dts).rescale(rate).ticks())
        .collect();
    assert!(step.iter().all(|&d| d == 1024), "{step:?}");
}

#[test]
fn a_large_key_frame_is_cut_into_fu_a_below_the_mtu() {
    let rtp = RtpSource::from_flv(&flv()).unwrap();
    let key = &rtp.frames[0];
    assert_eq!(key.kind, TagKind::Video);
    assert!(key.payloads.iter().all(|p| p.len() <= rtp_source::MTU));
    // SPS and PPS as a STAP-A first, then FU-A fragments (type 28).
    assert_eq!(key.payloads[0][0] & 0x1f, 24, "STAP-A");
    assert!(key.payloads.iter().any(|p| p[0] & 0x1f == 28));
}
