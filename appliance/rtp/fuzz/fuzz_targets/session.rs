//! A whole session (SRTP off or on) fed records in the capture format
//! (`u8 transport, u16 length, datagram`), so tests/data seeds it.
#![no_main]
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgerec_media::Codec;
use edgerec_rtp::srtp::{CryptoSuite, SrtpKey};
use edgerec_rtp::{Feedback, RtpSession, SessionOptions, TrackSpec};
use libfuzzer_sys::fuzz_target;

fn spec(codec: Codec, pt: u8, rate: u32, fmtp: Option<&str>) -> TrackSpec {
    TrackSpec {
        codec,
        payload_type: pt,
        clock_rate: rate,
        channels: Some(2),
        fmtp: fmtp.map(str::to_owned),
        ssrc: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let srtp = (mode & 1 == 1).then(|| {
        SrtpKey::new(CryptoSuite::AesCm128HmacSha1_80, "zRwR3Bnf9eIJaCgtnpZGD6TDP6Y69xhjkC8uVtnB")
            .unwrap()
    });
    let opts = SessionOptions {
        jitter_delay: Duration::from_millis(u64::from(mode >> 1)),
        feedback: Feedback { nack: true, pli: true },
        srtp,
        ..Default::default()
    };
    let specs = vec![
        spec(Codec::H264, 96, 90_000, Some("packetization-mode=1")),
        spec(Codec::Opus, 97, 48_000, None),
        spec(
            Codec::Aac,
            98,
            44_100,
            Some("mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1208"),
        ),
    ];
    let mut s = RtpSession::new(specs, opts).unwrap();
    let t0 = Instant::now();
    let mut now = t0;
    while rest.len() >= 3 {
        let transport = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let d = &rest[3..3 + len];
        rest = &rest[3 + len..];
        now += Duration::from_millis(5);
        let track = usize::from(transport / 2) % 3;
        if transport % 2 == 0 {
            s.handle_rtp(track, Bytes::copy_from_slice(d), now);
        } else {
            s.handle_rtcp(track, d, now);
        }
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        while s.poll_event().is_some() {}
        while s.poll_transmit().is_some() {}
    }
    s.handle_end(now);
    while s.poll_event().is_some() {}
});
