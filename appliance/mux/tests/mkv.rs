//! The Matroska/WebM muxer against real frames (the ffmpeg FLV capture), read
//! back with the `matroska-demuxer` crate, and recovery from every point a crash
//! could cut the file.

use std::io::Cursor;

use bytes::Bytes;
use edgerec_media::{
    AudioParams, Codec, Frame, MediaTime, Timescale, TrackId, TrackInfo, TrackParams, VideoParams,
};
use edgerec_mux::mkv::{layout, scan, DocType, MkvConfig, MkvMuxer};
use edgerec_mux::{FileMuxer, Finish, WriteBatch};
use matroska_demuxer::{MatroskaFile, TrackType};

mod common;
use common::{apply, apply_finish, fixture, push_all};

fn mux(
    tracks: &[TrackInfo],
    frames: &[Frame],
    config: MkvConfig,
) -> (Vec<u8>, Vec<WriteBatch>, Finish) {
    let (m, left_out) = MkvMuxer::new(tracks, config);
    assert!(left_out.is_empty(), "{left_out:?}");
    let mut m = FileMuxer::Mkv(m);
    let (mut file, batches) = push_all(&mut m, frames);
    let fin = m.finish();
    apply_finish(&mut file, &fin);
    (file, batches, fin)
}

/// A frame read back: (track, timestamp ms, keyframe, data).
type Read = (u64, u64, bool, Vec<u8>);

/// Every frame of a file.
fn frames_of(file: &[u8]) -> (MatroskaFile<Cursor<&[u8]>>, Vec<Read>) {
    let mut mkv = MatroskaFile::open(Cursor::new(file)).unwrap();
    let mut out = Vec::new();
    let mut f = matroska_demuxer::Frame::default();
    while mkv.next_frame(&mut f).unwrap() {
        out.push((
            f.track,
            f.timestamp,
            f.is_keyframe.unwrap_or(false),
            f.data.clone(),
        ));
    }
    (mkv, out)
}

fn ms(t: MediaTime) -> u64 {
    t.rescale(Timescale::MILLIS).ticks() as u64
}

#[test]
fn ffmpeg_frames_round_trip_through_a_matroska_reader() {
    let (tracks, frames) = fixture();
    let (file, _, fin) = mux(&tracks, &frames, MkvConfig::default());
    let (mkv, read) = frames_of(&file);
    assert_eq!(mkv.ebml_header().doc_type(), "matroska");
    let t = mkv.tracks();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].track_type(), TrackType::Video);
    assert_eq!(t[0].codec_id(), "V_MPEG4/ISO/AVC");
    assert_eq!(t[0].codec_private(), Some(&tracks[0].config[..]));
    assert_eq!(t[1].codec_id(), "A_AAC");
    assert_eq!(t[1].codec_private(), Some(&tracks[1].config[..]));
    assert_eq!(mkv.info().duration(), Some(fin.duration.ticks() as f64));

    // Every frame, in order per track, with its bytes, key flag and pts.
    assert_eq!(read.len(), frames.len());
    // Timestamps count from the earliest presented frame, as ffmpeg writes them.
    let origin = frames[0].dts;
    let shift = frames
        .iter()
        .map(|f| ms(f.pts.saturating_sub(origin)) as i64)
        .min()
        .unwrap();
    for (track, info) in tracks.iter().enumerate() {
        let sent: Vec<&Frame> = frames.iter().filter(|f| f.track == info.id).collect();
        let got: Vec<_> = read.iter().filter(|r| r.0 == track as u64 + 1).collect();
        assert_eq!(sent.len(), got.len());
        for (s, g) in sent.iter().zip(&got) {
            assert_eq!(&s.data[..], &g.3[..]);
            assert_eq!(s.key, g.2);
            let pts = ms(s.pts.saturating_sub(origin)) as i64 - shift;
            assert!((pts - g.1 as i64).abs() <= 1, "pts {pts} vs {}", g.1);
        }
    }
    // A video key frame starts every cluster, and every cluster has a cue.
    let rec = scan(&mut file.as_slice(), file.len() as u64).unwrap();
    assert_eq!(rec.cues.len() as u64, rec.clusters);
    assert!(rec.cues.iter().all(|c| c.track == 1));
}

#[test]
fn frames_a_tick_apart_get_their_own_millisecond() {
    // WebRTC senders can stamp two frames alike; the timeline moves the second
    // one 90 kHz tick on, which in Matroska's milliseconds is the same time
    // (Chromium's AV1 once made ffmpeg report non-monotonic timestamps).
    let (tracks, frames) = fixture();
    let mut frames: Vec<Frame> = frames
        .into_iter()
        .filter(|f| f.track == tracks[0].id)
        .take(10)
        .collect();
    for f in &mut frames {
        f.pts = f.dts; // no reordering: decode order is presentation order
    }
    frames[4].dts = frames[3].dts;
    frames[4].pts = frames[3].pts;
    let (file, _, _) = mux(&tracks[..1], &frames, MkvConfig::default());
    let (_, read) = frames_of(&file);
    assert_eq!(read.len(), 10);
    let times: Vec<u64> = read.iter().map(|r| r.1).collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "block times {times:?}"
    );
}

#[test]
fn webm_takes_only_the_web_codecs() {
    let (tracks, _) = fixture();
    let config = MkvConfig {
        doc: DocType::Webm,
        ..MkvConfig::default()
    };
    let (_, left_out) = MkvMuxer::new(&tracks, config);
    let codecs: Vec<Codec> = left_out.iter().map(|u| u.codec).collect();
    assert_eq!(codecs, [Codec::H264, Codec::Aac]);
    assert_eq!(left_out[0].to_string(), "H264 cannot be recorded in webm");
}

/// VP8 at 30 fps with a key frame every 30, Opus at 20 ms, as WHIP delivers them.
fn vp8_opus(secs: i64) -> (Vec<TrackInfo>, Vec<Frame>) {
    let vp8 = TrackInfo {
        id: TrackId(1),
        codec: Codec::Vp8,
        params: TrackParams::Video(VideoParams {
            width: 640,
            height: 480,
        }),
        config: Bytes::new(),
        codec_string: "vp8".into(),
    };
    let opus = TrackInfo {
        id: TrackId(2),
        codec: Codec::Opus,
        params: TrackParams::Audio(AudioParams {
            sample_rate: 48_000,
            channels: 2,
            samples_per_frame: None,
        }),
        config: edgerec_media::opus::dops_without_head(2),
        codec_string: "opus".into(),
    };
    let mut frames = Vec::new();
    let (mut v, mut a) = (0i64, 0i64);
    while v < secs * 30 || a < secs * 50 {
        let tv = v * 3000;
        let ta = a * 960 * 90_000 / 48_000;
        if tv <= ta {
            let t = MediaTime::new(tv, Timescale::HZ_90K);
            frames.push(Frame {
                track: TrackId(1),
                dts: t,
                pts: t,
                key: v % 30 == 0,
                data: Bytes::from(vec![v as u8; 500 + (v as usize % 7)]),
            });
            v += 1;
        } else {
            let t = MediaTime::new(a * 960, Timescale::new(48_000).unwrap());
            frames.push(Frame {
                track: TrackId(2),
                dts: t,
                pts: t,
                key: true,
                data: Bytes::from(vec![0xfc, a as u8, 1, 2]),
            });
            a += 1;
        }
    }
    (vec![vp8, opus], frames)
}

#[test]
fn vp8_and_opus_make_a_webm() {
    let (tracks, frames) = vp8_opus(3);
    let config = MkvConfig {
        doc: DocType::Webm,
        ..MkvConfig::default()
    };
    let (file, _, fin) = mux(&tracks, &frames, config);
    let (mkv, read) = frames_of(&file);
    assert_eq!(mkv.ebml_header().doc_type(), "webm");
    let t = mkv.tracks();
    assert_eq!(t[0].codec_id(), "V_VP8");
    assert_eq!(t[1].codec_id(), "A_OPUS");
    let head = t[1].codec_private().unwrap();
    assert_eq!(&head[..8], b"OpusHead");
    assert_eq!(head[9], 2);
    assert_eq!(t[1].seek_pre_roll(), Some(80_000_000));
    assert_eq!(read.len(), frames.len());
    assert_eq!(read.iter().filter(|r| r.0 == 1).count(), 90);
    assert_eq!(read.iter().filter(|r| r.0 == 2).count(), 150);
    // 150 Opus frames of 20 ms end at 3000 ms; the last video frame (2966.7 ms,
    // stored at 1 ms) ends there too, give or take that rounding.
    assert!(
        (fin.duration.ticks() - 3000).abs() <= 1,
        "{:?}",
        fin.duration
    );
}

#[test]
fn recovery_at_every_cut_point_keeps_whole_clusters() {
    let (tracks, frames) = fixture();
    let config = MkvConfig {
        fragment_target: MediaTime::new(200, Timescale::MILLIS),
        ..MkvConfig::default()
    };
    let (mut m, _) = MkvMuxer::new(&tracks, config);
    let mut file = Vec::new();
    let mut ends = Vec::new();
    for f in &frames {
        m.push(f.clone());
        while let Some(b) = m.poll_write() {
            apply(&mut file, &b);
            ends.push(file.len());
        }
    }
    assert!(ends.len() >= 4);
    let whole = scan(&mut file.as_slice(), file.len() as u64).unwrap();
    assert_eq!(whole.valid_len, file.len() as u64);
    assert_eq!(whole.clusters as usize, ends.len());
    let fin = m.finish();
    let mut finished = file.clone();
    apply_finish(&mut finished, &fin);

    for cut in (0..=file.len()).step_by(89) {
        let part = &file[..cut];
        match scan(&mut &part[..], cut as u64) {
            Err(_) => assert!(cut < ends[0], "cut at {cut} should be recoverable"),
            Ok(rec) => {
                let expect = ends
                    .iter()
                    .copied()
                    .filter(|&e| e <= cut)
                    .max()
                    .unwrap_or(0);
                if expect > 0 {
                    assert_eq!(rec.valid_len as usize, expect, "cut at {cut}");
                }
                let mut fixed = part[..rec.valid_len as usize].to_vec();
                let (cues, patches) =
                    layout::tail(&rec.layout, &rec.cues, rec.valid_len, rec.duration_ms());
                fixed.extend_from_slice(&cues);
                for p in patches {
                    fixed[p.offset as usize..p.offset as usize + p.bytes.len()]
                        .copy_from_slice(&p.bytes);
                }
                if rec.clusters == 0 {
                    // Header only: valid, but matroska-demuxer wants a cluster.
                    assert_eq!(rec.duration_ms(), 0);
                    continue;
                }
                let (mkv, read) = frames_of(&fixed);
                let blocks: u64 = rec.tracks.iter().map(|t| t.1.blocks).sum();
                assert_eq!(read.len() as u64, blocks);
                assert_eq!(mkv.info().duration(), Some(rec.duration_ms() as f64));
            }
        }
    }
    // Recovering the finished file (its Cues cut and written again) gives the
    // clean finish's tail, byte for byte.
    let rec = scan(&mut finished.as_slice(), finished.len() as u64).unwrap();
    let (cues, patches) = layout::tail(&rec.layout, &rec.cues, rec.valid_len, rec.duration_ms());
    assert_eq!(rec.valid_len + cues.len() as u64, fin.len);
    assert_eq!(fin.append.last().unwrap(), &cues);
    assert_eq!(fin.patches, patches);
    assert_eq!(fin.duration.ticks(), rec.duration_ms());
}

#[test]
fn aligned_clusters_end_on_block_boundaries() {
    let (tracks, frames) = fixture();
    let config = MkvConfig {
        alignment: Some(4096),
        ..MkvConfig::default()
    };
    let (file, batches, _) = mux(&tracks, &frames, config);
    for b in &batches {
        assert_eq!((b.offset + b.len) % 4096, 0);
    }
    assert_eq!(frames_of(&file).1.len(), frames.len());
}

#[test]
fn an_empty_recording_is_still_a_valid_file() {
    let (tracks, _) = fixture();
    let (file, _, fin) = mux(&tracks, &[], MkvConfig::default());
    // matroska-demuxer will not open a file without clusters (ffprobe does; the
    // e2e tests check with it); the scan reads the header back.
    let rec = scan(&mut file.as_slice(), file.len() as u64).unwrap();
    assert_eq!(rec.tracks.len(), 2);
    assert_eq!(rec.clusters, 0);
    assert_eq!(fin.duration.ticks(), 0);
}

/// A fuzz find (CI, 2026-12-06): a cluster timestamp near i64::MIN, then a
/// positive block time, overflowed the step between them in the recovery scan.
/// The scan and the tail must take any timestamps without panicking.
#[test]
fn recovery_takes_timestamps_at_the_ends_of_i64() {
    let data = include_bytes!("../fuzz/regressions/recover/mkv-timestamp-step-overflow");
    let len = data.len() as u64;
    if let Ok(r) = scan(&mut &data[..], len) {
        assert!(r.valid_len <= len);
        let _ = layout::tail(&r.layout, &r.cues, r.valid_len, r.duration_ms());
    }
}
