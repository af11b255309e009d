//! Replays ffmpeg 5.1's side of an RTSP publish (tests/data) through the server
//! session and into an RTP session, in reads of every size.

use std::time::Instant;

use edgerec_media::Codec;
use edgerec_rtp::{Event, RtpSession, SessionOptions};
use edgerec_rtsp::{Action, ServerSession, TransportChoice};

fn capture() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ffmpeg_publish_tcp.rtsp"
    ))
    .unwrap()
}

/// (responses, video frames, audio frames, track codecs)
fn replay(read_size: usize) -> (usize, usize, usize, Vec<Codec>) {
    let mut s = ServerSession::new(None, "n".into(), "sess".into());
    let mut rtp: Option<RtpSession> = None;
    let (mut responses, mut video, mut audio, mut codecs) = (0, 0, 0, Vec::new());
    let now = Instant::now();
    for chunk in capture().chunks(read_size) {
        s.handle_input(chunk);
        while let Some(a) = s.poll_action() {
            match a {
                Action::Send(_) => responses += 1,
                Action::Announce { path } => {
                    assert_eq!(path, "live/cam");
                    s.announce_result(Ok(()));
                }
                Action::Record { tracks } => {
                    assert!(tracks
                        .iter()
                        .all(|(_, c)| matches!(c, TransportChoice::Interleaved { .. })));
                    let specs = tracks.into_iter().map(|(t, _)| t.spec).collect();
                    let opts = SessionOptions {
                        jitter_delay: std::time::Duration::ZERO,
                        ..Default::default()
                    };
                    rtp = Some(RtpSession::new(specs, opts).unwrap());
                }
                Action::Rtp { track, data } => rtp.as_mut().unwrap().handle_rtp(track, data, now),
                Action::Rtcp { track, data } => {
                    rtp.as_mut().unwrap().handle_rtcp(track, &data, now)
                }
                other => panic!("{other:?}"),
            }
        }
    }
    let mut r = rtp.expect("RECORD");
    r.handle_end(now);
    while let Some(e) = r.poll_event() {
        match e {
            Event::Track(t) => codecs.push(t.codec),
            Event::Frame(f) if f.track.0 == 1 => video += 1,
            Event::Frame(_) => audio += 1,
            Event::Dropped { reason, .. } => panic!("dropped: {reason}"),
            Event::Bye { .. } => {}
        }
    }
    (responses, video, audio, codecs)
}

#[test]
fn ffmpeg_publish_over_tcp_in_any_read_size() {
    let whole = replay(1 << 20);
    // OPTIONS, ANNOUNCE, SETUP, SETUP, RECORD answered.
    assert_eq!(whole.0, 5);
    assert_eq!(whole.3, vec![Codec::H264, Codec::Opus]);
    assert!(whole.1 >= 5 && whole.2 >= 10, "{whole:?}");
    for size in [1, 7, 100, 1460, 4096] {
        assert_eq!(replay(size), whole, "read size {size}");
    }
}
