//! The MPEG-TS muxer against real frames (the ffmpeg FLV capture), read back
//! with edgerec's TS demuxer (the ingest's, tested against ffmpeg's and
//! srt-live-transmit's output), and recovery from every point a crash could
//! cut the file.

use edgerec_media::{Codec, Frame, MediaTime, Timescale, TrackInfo};
use edgerec_mux::ts::{scan, TsConfig, TsMuxer, PACKET};
use edgerec_mux::{FileMuxer, TrackEnd, WriteBatch};
use edgerec_ts::{Event, TsDemuxer};

mod common;
use common::{apply, apply_finish, fixture, push_all};

fn mux(tracks: &[TrackInfo], frames: &[Frame], config: TsConfig) -> (Vec<u8>, Vec<WriteBatch>) {
    let (m, left_out) = TsMuxer::new(tracks, config);
    assert!(left_out.is_empty(), "{left_out:?}");
    let mut m = FileMuxer::Ts(m);
    let (mut file, batches) = push_all(&mut m, frames);
    let fin = m.finish();
    assert!(fin.patches.is_empty());
    apply_finish(&mut file, &fin);
    (file, batches)
}

fn demux(file: &[u8]) -> (Vec<TrackInfo>, Vec<Frame>) {
    let mut d = TsDemuxer::new();
    d.handle_input(file);
    d.handle_end();
    let (mut tracks, mut frames) = (Vec::new(), Vec::new());
    while let Some(e) = d.poll_event() {
        match e {
            Event::Track(t) => tracks.push(t),
            Event::Frame(f) => frames.push(f),
            _ => {}
        }
    }
    let s = d.stats();
    assert_eq!(
        (s.packets_lost, s.units_dropped, s.discontinuities),
        (0, 0, 0),
        "{s:?}"
    );
    (tracks, frames)
}

#[test]
fn ffmpeg_frames_round_trip_through_the_ts_demuxer() {
    let (tracks, frames) = fixture();
    let (file, _) = mux(&tracks, &frames, TsConfig::default());
    assert_eq!(file.len() % PACKET, 0);
    let (got_tracks, got) = demux(&file);
    assert_eq!(got_tracks[0].codec, Codec::H264);
    assert_eq!(
        got_tracks[0].config, tracks[0].config,
        "avcC rebuilt from the in-band SPS/PPS"
    );
    assert_eq!(got_tracks[1].codec, Codec::Aac);
    // ADTS carries the core config, not ffmpeg's trailing SBR sync extension.
    assert_eq!(
        got_tracks[1].config[..],
        tracks[1].config[..2],
        "ASC from the ADTS header"
    );
    for (i, info) in tracks.iter().enumerate() {
        let sent: Vec<&Frame> = frames.iter().filter(|f| f.track == info.id).collect();
        let back: Vec<&Frame> = got.iter().filter(|f| f.track == got_tracks[i].id).collect();
        assert_eq!(sent.len(), back.len(), "{:?}", info.codec);
        for (s, b) in sent.iter().zip(&back) {
            assert_eq!(s.key, b.key);
            if info.codec == Codec::Aac {
                assert_eq!(s.data, b.data);
            }
            let ms = |t: MediaTime| t.rescale(Timescale::MILLIS).ticks();
            let (sp, bp) = (
                ms(s.pts.saturating_sub(s.dts)),
                ms(b.pts.saturating_sub(b.dts)),
            );
            assert!((sp - bp).abs() <= 1, "composition offset {sp} vs {bp}");
        }
    }
}

/// The presentation span of demuxed frames, reckoned as the muxer does.
fn span_ms(tracks: &[TrackInfo], frames: &[Frame]) -> i64 {
    let ends: Vec<TrackEnd> = tracks
        .iter()
        .map(|t| {
            let mut end = TrackEnd::default();
            for f in frames.iter().filter(|f| f.track == t.id) {
                end.observe(f.pts.rescale(Timescale::MILLIS).ticks());
            }
            end
        })
        .collect();
    TrackEnd::span_ms(ends.iter())
}

#[test]
fn recovery_at_every_cut_point_keeps_whole_fragments() {
    let (tracks, frames) = fixture();
    let config = TsConfig {
        fragment_target: MediaTime::new(200, Timescale::MILLIS),
    };
    let (mut m, _) = TsMuxer::new(&tracks, config);
    let mut file = Vec::new();
    let mut ends = Vec::new();
    let mut counted = Vec::new();
    let mut spans = Vec::new();
    for f in &frames {
        m.push(f.clone());
        while let Some(b) = m.poll_write() {
            apply(&mut file, &b);
            ends.push(file.len());
            let (got_tracks, got) = demux(&file);
            counted.push(got.len() as u64);
            spans.push(span_ms(&got_tracks, &got));
        }
    }
    assert!(ends.len() >= 4);
    for cut in (0..=file.len()).step_by(173) {
        match scan(&mut &file[..cut], cut as u64) {
            Err(_) => assert!(cut < ends[0], "cut at {cut} should be recoverable"),
            Ok(rec) => {
                let i = ends.iter().rposition(|&e| e <= cut).unwrap();
                assert_eq!(rec.valid_len as usize, ends[i], "cut at {cut}");
                let t = rec.totals;
                assert_eq!(t.video_frames + t.audio_frames, counted[i]);
                // The duration of what the file holds up to the mark, as
                // finalize would reckon it from those frames.
                assert_eq!(t.duration_ms, spans[i], "cut at {cut}");
                assert!(t.duration_ms > 0);
            }
        }
    }
    let fin = m.finish();
    apply_finish(&mut file, &fin);
    let rec = scan(&mut file.as_slice(), file.len() as u64).unwrap();
    assert_eq!(rec.valid_len as usize, file.len());
    assert_eq!(rec.totals.duration_ms, fin.duration.ticks());
    assert_eq!(
        (rec.totals.video_frames + rec.totals.audio_frames) as usize,
        frames.len()
    );
}

#[test]
fn an_empty_recording_is_still_a_valid_stream() {
    let (tracks, _) = fixture();
    let (file, _) = mux(&tracks, &[], TsConfig::default());
    assert_eq!(file.len(), 3 * PACKET, "PAT, PMT, mark");
    assert!(scan(&mut file.as_slice(), file.len() as u64).is_ok());
}
