//! The fMP4 muxer against real frames (the ffmpeg FLV capture), parsed back with the
//! `mp4` crate, and recovery from every point a crash could cut the file.

use std::io::Cursor;

use edgerec_media::{Frame, MediaTime, Timescale, TrackId, TrackInfo};
use edgerec_mux::fmp4::{finalize, scan, Fmp4Config, Fmp4Muxer};
use edgerec_mux::{FileMuxer, Finish, PushOutcome, WriteBatch};

mod common;
use common::{apply, fixture, push_all};

/// Applies a finish, checking that every patch lands on a zeroed field.
fn apply_finish(file: &mut Vec<u8>, f: &Finish) {
    common::apply_finish_checked(file, f, |file, p| {
        let at = p.offset as usize;
        assert!(
            file[at..at + p.bytes.len()].iter().all(|&b| b == 0),
            "patching a non-zero field"
        );
    });
}

fn mux(
    tracks: &[TrackInfo],
    frames: &[Frame],
    config: Fmp4Config,
) -> (Vec<u8>, Vec<WriteBatch>, Finish) {
    let (m, left_out) = Fmp4Muxer::new(tracks, config);
    assert!(left_out.is_empty());
    let mut m = FileMuxer::Mp4(m);
    let (mut file, batches) = push_all(&mut m, frames);
    let fin = m.finish();
    apply_finish(&mut file, &fin);
    (file, batches, fin)
}

struct Sample<'a> {
    track: u32,
    dts: u64,
    cts: u32,
    sync: bool,
    data: &'a [u8],
}

/// Every sample of a fragmented file, located from the `mp4` crate's parse of each
/// trun and the moof positions (the crate's own `read_sample` ignores trun data
/// offsets in fragmented files, so it cannot be used for this).
fn samples_of<'a>(file: &'a [u8], r: &mp4::Mp4Reader<Cursor<&[u8]>>) -> Vec<Sample<'a>> {
    let moof_offsets: Vec<usize> = edgerec_mux::bmff::children(file)
        .filter(|b| &b.kind == b"moof")
        .map(|b| b.offset)
        .collect();
    assert_eq!(moof_offsets.len(), r.moofs.len());
    let mut out = Vec::new();
    for (moof, &at) in r.moofs.iter().zip(&moof_offsets) {
        for traf in &moof.trafs {
            let trun = traf.trun.as_ref().unwrap();
            let mut pos = at + trun.data_offset.unwrap() as usize;
            let mut dts = traf.tfdt.as_ref().unwrap().base_media_decode_time;
            for i in 0..trun.sample_count as usize {
                let size = trun.sample_sizes[i] as usize;
                let flags = trun
                    .sample_flags
                    .get(i)
                    .copied()
                    .or(traf.tfhd.default_sample_flags)
                    .unwrap();
                out.push(Sample {
                    track: traf.tfhd.track_id,
                    dts,
                    cts: trun.sample_cts.get(i).copied().unwrap_or(0),
                    sync: flags & 0x0001_0000 == 0,
                    data: &file[pos..pos + size],
                });
                pos += size;
                dts += trun.sample_durations[i] as u64;
            }
        }
    }
    out
}

fn read_mp4(file: &[u8]) -> mp4::Mp4Reader<Cursor<&[u8]>> {
    mp4::Mp4Reader::read_header(Cursor::new(file), file.len() as u64).unwrap()
}

#[test]
fn ffmpeg_frames_round_trip_through_the_mp4_crate() {
    let (tracks, frames) = fixture();
    let (file, batches, fin) = mux(&tracks, &frames, Fmp4Config::default());
    let r = read_mp4(&file);
    assert_eq!(r.tracks().len(), 2);
    let video = r.tracks().get(&1).unwrap();
    let audio = r.tracks().get(&2).unwrap();
    assert_eq!(video.track_type().unwrap(), mp4::TrackType::Video);
    assert_eq!(video.media_type().unwrap(), mp4::MediaType::H264);
    assert_eq!((video.width(), video.height()), (320, 240));
    assert_eq!(video.timescale(), 90_000);
    assert_eq!(audio.media_type().unwrap(), mp4::MediaType::AAC);
    assert_eq!(audio.timescale(), 44_100);
    // The batches while recording, plus the last fragment written by finish().
    assert_eq!(r.moofs.len(), batches.len() + 1);
    // Every frame is there, byte for byte, in order, with its key flag.
    let vframes: Vec<&Frame> = frames.iter().filter(|f| f.track == TrackId(1)).collect();
    let aframes: Vec<&Frame> = frames.iter().filter(|f| f.track == TrackId(2)).collect();
    assert_eq!(r.sample_count(1).unwrap(), 25);
    assert_eq!(r.sample_count(2).unwrap(), 45);
    let samples = samples_of(&file, &r);
    let got_v: Vec<_> = samples.iter().filter(|s| s.track == 1).collect();
    let got_a: Vec<_> = samples.iter().filter(|s| s.track == 2).collect();
    assert_eq!((got_v.len(), got_a.len()), (25, 45));
    for (i, (f, s)) in vframes.iter().zip(&got_v).enumerate() {
        assert_eq!(s.data, &f.data[..], "video frame {i}");
        assert_eq!(s.sync, f.key);
        // Composition offsets survive (B-frames): pts - dts in 90 kHz ticks.
        assert_eq!(
            s.cts as i64,
            (f.pts.ticks() - f.dts.ticks()) * 90,
            "frame {i}"
        );
        assert_eq!(s.dts, i as u64 * 3600);
    }
    for (i, (f, s)) in aframes.iter().zip(&got_a).enumerate() {
        assert_eq!(s.data, &f.data[..], "audio frame {i}");
        // Exact 1024-sample steps whatever the ms timestamps said; the 57 ms by which
        // audio trails the first video dts is in the edit lists (checked by ffprobe
        // in the end-to-end tests), not in the decode times.
        assert_eq!(s.dts, i as u64 * 1024, "audio frame {i}");
    }
    // Presentation starts with the first audio sample (57 ms after the first video
    // dts; video's first picture shows 23 ms later, after its empty edit) and ends with
    // the last of 45 AAC frames: 1.045 s, as ffmpeg's own MP4 muxer reports it.
    assert_eq!(fin.duration, MediaTime::new(1045, Timescale::MILLIS));
    assert_eq!(r.duration().as_millis(), 1045);
}

#[test]
fn fragments_start_at_key_frames_when_the_gop_allows() {
    let (tracks, frames) = long_feed(10_000, 25);
    let (file, batches, _) = mux(&tracks, &frames, Fmp4Config::default());
    // GOP of 1 s, target 1 s: one fragment per GOP, each starting on a key frame.
    assert_eq!(batches.len(), 9);
    assert!(batches.iter().all(|b| b.fragment.unwrap().starts_with_key));
    // A fragment starts at its earliest sample: the key frame at each second, or an
    // AAC frame a few ms before it.
    for (i, b) in batches.iter().enumerate() {
        let start = b.fragment.unwrap().start.ticks();
        assert!(
            (start - i as i64 * 1000).abs() < 24,
            "fragment {i} starts at {start}"
        );
    }
    let r = read_mp4(&file);
    assert_eq!(r.moofs.len(), 10);
}

#[test]
fn long_gops_are_cut_at_the_target_so_a_crash_loses_little() {
    // ffmpeg's default GOP of 250 frames (10 s at 25 fps).
    let (tracks, frames) = long_feed(10_000, 250);
    let (_, batches, _) = mux(&tracks, &frames, Fmp4Config::default());
    assert!(batches.len() >= 9, "{} fragments", batches.len());
    for b in &batches {
        let d = b.fragment.unwrap().duration.ticks();
        assert!(d <= 1100, "fragment of {d} ms");
    }
}

#[test]
fn aligned_fragments_end_on_block_boundaries() {
    let (tracks, frames) = fixture();
    let config = Fmp4Config {
        fragment_target: MediaTime::new(200, Timescale::MILLIS),
        alignment: Some(4096),
        ..Fmp4Config::default()
    };
    let (file, batches, _) = mux(&tracks, &frames, config);
    assert!(batches.len() > 2);
    for b in &batches {
        assert_eq!((b.offset + b.len) % 4096, 0);
    }
    let r = read_mp4(&file);
    let samples = samples_of(&file, &r);
    assert_eq!(samples.len(), frames.len());
    let video: Vec<_> = samples
        .iter()
        .filter(|s| s.track == 1)
        .map(|s| s.data)
        .collect();
    let want: Vec<_> = frames
        .iter()
        .filter(|f| f.track == TrackId(1))
        .map(|f| &f.data[..])
        .collect();
    assert_eq!(video, want);
}

#[test]
fn recovery_at_every_cut_point_keeps_whole_fragments() {
    let (tracks, frames) = fixture();
    let config = Fmp4Config {
        fragment_target: MediaTime::new(200, Timescale::MILLIS),
        ..Fmp4Config::default()
    };
    let (mut m, _) = Fmp4Muxer::new(&tracks, config);
    let mut file = Vec::new();
    let mut ends = Vec::new(); // (file length, samples so far) at each fragment end
    for f in &frames {
        m.push(f.clone());
        while let Some(b) = m.poll_write() {
            apply(&mut file, &b);
            ends.push(file.len());
        }
    }
    assert!(ends.len() >= 4);
    // Scanning the unfinished file agrees with the muxer about the layout.
    let whole = scan(&mut file.as_slice(), file.len() as u64).unwrap();
    assert_eq!(whole.valid_len, file.len() as u64);
    assert_eq!(whole.fragments as usize, ends.len());
    let fin = m.finish();
    let mut finished = file.clone();
    apply_finish(&mut finished, &fin);
    let rescanned = scan(&mut finished.as_slice(), finished.len() as u64).unwrap();
    assert!(rescanned.had_mfra);

    for cut in (0..=file.len()).step_by(97) {
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
                let (mfra, patches, duration) = finalize::tail(&rec.layout, &rec.totals);
                fixed.extend_from_slice(&mfra);
                for p in patches {
                    fixed[p.offset as usize..p.offset as usize + 8].copy_from_slice(&p.bytes);
                }
                let r = read_mp4(&fixed);
                let samples: u64 = rec.totals.iter().map(|t| t.samples).sum();
                let counted: u32 = (1..=2).map(|id| r.sample_count(id).unwrap_or(0)).sum();
                assert_eq!(counted as u64, samples);
                assert_eq!(r.duration().as_millis() as i64, duration.ticks());
            }
        }
    }
    // Recovering the finished file (up to its mfra) gives the clean finish's tail.
    let (mfra, patches, duration) = finalize::tail(&rescanned.layout, &rescanned.totals);
    assert_eq!(fin.append.last().unwrap(), &mfra);
    assert_eq!(fin.patches, patches);
    assert_eq!(fin.duration, duration);
}

/// A foreign `trun` with no per-sample fields is only a count: four billion
/// claimed samples must end the scan at that fragment, not walk them (a hang
/// found by the `recover` fuzz target).
#[test]
fn a_trun_claiming_billions_of_samples_ends_recovery_there() {
    let (tracks, frames) = fixture();
    let config = Fmp4Config {
        fragment_target: MediaTime::new(200, Timescale::MILLIS),
        ..Fmp4Config::default()
    };
    let (file, batches, _) = mux(&tracks, &frames, config);
    // The last fragment's first trun: flags 0 (nothing per sample), count u32::MAX.
    let last_moof = batches[batches.len() - 2].offset as usize;
    let at = last_moof
        + file[last_moof..]
            .windows(4)
            .position(|w| w == b"trun")
            .unwrap();
    let mut bad = file.clone();
    bad[at + 4..at + 8].copy_from_slice(&0u32.to_be_bytes());
    bad[at + 8..at + 12].copy_from_slice(&u32::MAX.to_be_bytes());
    let rec = scan(&mut bad.as_slice(), bad.len() as u64).unwrap();
    assert_eq!(rec.valid_len as usize, last_moof);
}

#[test]
fn leading_non_key_video_is_dropped_and_codecs_mp4_cannot_hold_are_reported() {
    let (mut tracks, frames) = fixture();
    let mut g711 = tracks[1].clone();
    g711.id = TrackId(3);
    g711.codec = edgerec_media::Codec::Pcma;
    tracks.push(g711);
    let (mut m, left_out) = Fmp4Muxer::new(&tracks, Fmp4Config::default());
    assert_eq!(left_out.len(), 1);
    assert_eq!(left_out[0].track, TrackId(3));
    let mut inter = frames
        .iter()
        .find(|f| f.track == TrackId(1) && !f.key)
        .unwrap()
        .clone();
    assert_eq!(m.push(inter.clone()), PushOutcome::DroppedBeforeKey);
    inter.track = TrackId(3);
    assert_eq!(m.push(inter), PushOutcome::DroppedTrack);
}

#[test]
fn an_empty_recording_is_still_a_valid_file() {
    let (tracks, _) = fixture();
    let (mut m, _) = Fmp4Muxer::new(&tracks, Fmp4Config::default());
    let fin = m.finish();
    let mut file = Vec::new();
    apply_finish(&mut file, &fin);
    let r = read_mp4(&file);
    assert_eq!(r.tracks().len(), 2);
}

/// A synthetic feed using the fixture's codec configs: 25 fps video with key frames
/// every `gop` frames, AAC at 44.1 kHz with ms timestamps (as RTMP delivers them).
fn long_feed(duration_ms: i64, gop: usize) -> (Vec<TrackInfo>, Vec<Frame>) {
    let (tracks, frames) = fixture();
    let key = frames
        .iter()
        .find(|f| f.track == TrackId(1) && f.key)
        .unwrap()
        .data
        .clone();
    let inter = frames
        .iter()
        .find(|f| f.track == TrackId(1) && !f.key)
        .unwrap()
        .data
        .clone();
    let aac = frames
        .iter()
        .find(|f| f.track == TrackId(2))
        .unwrap()
        .data
        .clone();
    let ms = |t: i64| MediaTime::new(t, Timescale::MILLIS);
    let mut out = Vec::new();
    let (mut v, mut a) = (0usize, 0usize);
    loop {
        let vt = v as i64 * 40;
        let at = (a as i64 * 1024 * 1000) / 44_100;
        if vt >= duration_ms && at >= duration_ms {
            break;
        }
        if vt <= at {
            let is_key = v % gop == 0;
            out.push(Frame {
                track: TrackId(1),
                dts: ms(vt),
                pts: ms(vt),
                key: is_key,
                data: if is_key { key.clone() } else { inter.clone() },
            });
            v += 1;
        } else {
            out.push(Frame {
                track: TrackId(2),
                dts: ms(at),
                pts: ms(at),
                key: true,
                data: aac.clone(),
            });
            a += 1;
        }
    }
    (tracks, out)
}

#[test]
fn tracks_can_change_until_the_init_segment_is_written() {
    let (tracks, frames) = fixture();
    let config = Fmp4Config {
        fragment_target: MediaTime::new(200, Timescale::MILLIS),
        ..Fmp4Config::default()
    };
    let (mut m, _) = Fmp4Muxer::new(&tracks[..1], config);
    // Video first, then the audio track shows up: adopted, no new file needed.
    m.push(
        frames
            .iter()
            .find(|f| f.track == TrackId(1))
            .unwrap()
            .clone(),
    );
    assert_eq!(m.update_tracks(&tracks), Ok(vec![]));
    assert_eq!(m.tracks().count(), 2);
    for f in frames
        .iter()
        .skip_while(|f| !(f.track == TrackId(1) && f.key))
        .skip(1)
    {
        m.push(f.clone());
    }
    assert!(m.poll_write().is_some());
    // Once written, the same set is fine but a change is refused.
    assert_eq!(m.update_tracks(&tracks), Ok(vec![]));
    let mut changed = tracks.clone();
    changed[0].codec_string = "avc1.640028".into();
    assert_eq!(
        m.update_tracks(&changed),
        Err(edgerec_mux::fmp4::TracksFixed)
    );
}
