//! `TsSource` on ffmpeg's own files: what `bench/run` feeds the TS publishers, and
//! ffmpeg's default packing, which the generator must refuse (see fixtures/README.md).

use bytes::{Bytes, BytesMut};
use edgerec_bench::source::TagKind;
use edgerec_bench::ts_source::{TsRewriter, TsSource, TsSourceError, PACKET};

fn capture(path: &str) -> Bytes {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    Bytes::from(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

#[test]
fn ffmpeg_one_aac_per_pes_loops_on_its_video() {
    let s = TsSource::parse(capture(
        "tests/fixtures/ffmpeg_h264_aac_1s_one_aac_per_pes.ts",
    ))
    .unwrap();
    let count = |k: TagKind| s.packets.iter().filter(|p| p.starts == Some(k)).count();
    // ffprobe: 25 H.264 (DTS 1.400 to 2.360 s), 48 AAC (DTS 1.4587 to 2.4613 s).
    // A loop lasts until the last video frame's end, 2.400 s: the 3 AAC frames
    // from there on would overlap the next loop's first and are left out.
    assert_eq!(s.period_ms, 1000);
    assert_eq!(count(TagKind::Video), 25);
    assert_eq!(count(TagKind::Audio), 45);
    assert_eq!(s.frames_in(1000), (25, 45));
    assert_eq!(s.frames_in(2000), (50, 90));
    // Send times never go backwards within a loop, and the last is inside it.
    assert!(s.packets.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    assert!(s.packets.last().unwrap().at_ms < s.period_ms);
}

#[test]
fn a_rewritten_loop_parses_back_with_the_same_frames_shifted() {
    let s = TsSource::parse(capture(
        "tests/fixtures/ffmpeg_h264_aac_1s_one_aac_per_pes.ts",
    ))
    .unwrap();
    let mut w = TsRewriter::new();
    let mut out = BytesMut::new();
    for p in &s.packets {
        w.write(&mut out, s.bytes(p), 5000);
    }
    assert_eq!(out.len(), s.packets.len() * PACKET);
    let again = TsSource::parse(out.freeze()).unwrap();
    assert_eq!(again.period_ms, s.period_ms);
    let starts = |t: &TsSource| {
        t.packets
            .iter()
            .filter_map(|p| p.starts.map(|k| (k, p.dts_ms)))
            .collect::<Vec<_>>()
    };
    // Times are relative to the file's first decode time, so a shift keeps them.
    assert_eq!(starts(&again), starts(&s));
}

#[test]
fn ffmpeg_default_pes_packing_is_refused() {
    let e = TsSource::parse(capture(
        "../appliance/ts/tests/fixtures/ffmpeg_h264_aac_1s.ts",
    ))
    .unwrap_err();
    assert!(matches!(e, TsSourceError::SeveralFramesPerPes(_)), "{e}");
}
