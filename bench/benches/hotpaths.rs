//! Micro benchmarks of the ingest and mux hot paths, in bytes per second on one core:
//! RTMP chunk reassembly, the whole RTMP server session (chunks → commands → FLV →
//! frames), FLV tag bodies → frames, frames → fMP4 fragments, and MPEG-TS datagrams
//! → frames (the UDP ingest's reordering and demuxing).
//!
//! Input: the FLV named by `EDGEREC_BENCH_SOURCE` (bench/run passes its 720p source),
//! else the 320x240 ffmpeg capture in appliance/rtmp/tests/data, looped to 10 s; the
//! same frames as MPEG-TS from `EDGEREC_BENCH_TS_SOURCE`, else the ffmpeg capture in
//! appliance/ts/tests/fixtures.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use edgerec_bench::publisher::{Publisher, CHUNK_SIZE};
use edgerec_bench::source::{Source, Tag, TagKind};
use edgerec_media::Frame;
use edgerec_mux::fmp4::{Fmp4Config, Fmp4Muxer};
use edgerec_rtmp::chunk::{ChunkDecoder, ChunkLimits};
use edgerec_rtmp::flv::{FlvDemuxer, FlvOutput};
use edgerec_rtmp::{Event, ServerConfig, ServerSession};
use edgerec_ts::{Reorder, TsDemuxer};

const SECONDS: u32 = 10;

/// The file named by the environment variable `var`, else the repository file
/// `default` (relative to this package).
fn input(var: &str, default: &str) -> Bytes {
    let path =
        std::env::var(var).unwrap_or_else(|_| format!("{}/{default}", env!("CARGO_MANIFEST_DIR")));
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}")))
}

fn source() -> Source {
    let file = input(
        "EDGEREC_BENCH_SOURCE",
        "../appliance/rtmp/tests/data/x264_aac_320x240_1s.flv",
    );
    Source::parse(file).expect("an FLV source")
}

fn ts_source() -> Bytes {
    input(
        "EDGEREC_BENCH_TS_SOURCE",
        "../appliance/ts/tests/fixtures/ffmpeg_h264_aac_1s.ts",
    )
}

/// The source's tags looped to `SECONDS`, with their timestamps.
fn tags(s: &Source) -> Vec<(Tag, u32)> {
    let mut out: Vec<(Tag, u32)> = s.header.iter().map(|t| (t.clone(), 0)).collect();
    for k in 0.. {
        let base = k * s.period_ms;
        if base >= SECONDS * 1000 {
            break;
        }
        out.extend(s.frames.iter().map(|t| (t.clone(), base + t.ts_ms)));
    }
    out
}

/// Everything a publisher sends: handshake and publish (replayable, as the server's
/// seed is fixed), then the media. Returns the bytes and where the chunks start.
fn publish_stream(tags: &[(Tag, u32)]) -> (Bytes, usize) {
    let mut p = Publisher::new("live", "bench", "rtmp://127.0.0.1/live", 1);
    let mut s = ServerSession::new(ServerConfig::default(), 1);
    let mut sent = BytesMut::new();
    while !p.is_live() {
        if let Some(b) = p.take_output() {
            sent.extend_from_slice(&b);
            s.handle_input(&b).unwrap();
        }
        while let Some(e) = s.poll_event() {
            if let Event::PublishRequested(_) = e {
                s.accept_publish().unwrap();
            }
        }
        while let Some(b) = s.poll_transmit() {
            p.handle_input(&b).unwrap();
        }
    }
    let media_start = sent.len();
    for (t, ts) in tags {
        p.write_tag(&mut sent, t, *ts);
    }
    (sent.freeze(), media_start)
}

fn frames(tags: &[(Tag, u32)]) -> (Vec<edgerec_media::TrackInfo>, Vec<Frame>) {
    let mut d = FlvDemuxer::default();
    let mut out = Vec::new();
    for (t, ts) in tags {
        match t.kind {
            TagKind::Video => d.video(*ts as i64, t.data.clone(), &mut out).unwrap(),
            TagKind::Audio => d.audio(*ts as i64, t.data.clone(), &mut out).unwrap(),
            TagKind::Script => {}
        }
    }
    let tracks = d
        .video_track()
        .into_iter()
        .chain(d.audio_track())
        .cloned()
        .collect();
    let frames = out
        .into_iter()
        .filter_map(|o| match o {
            FlvOutput::Frame(f) => Some(f),
            _ => None,
        })
        .collect();
    (tracks, frames)
}

fn hot_paths(c: &mut Criterion) {
    let src = source();
    let tags = tags(&src);
    let (stream, media_start) = publish_stream(&tags);
    let media_bytes: u64 = tags.iter().map(|(t, _)| t.data.len() as u64).sum();

    let mut g = c.benchmark_group("rtmp");
    // Chunk reassembly alone: the media part of the stream at the publisher's chunk size.
    let chunks = stream.slice(media_start..);
    g.throughput(Throughput::Bytes(chunks.len() as u64));
    g.bench_function("chunk_decode", |b| {
        b.iter(|| {
            let mut d = ChunkDecoder::new(ChunkLimits::default(), 0);
            d.set_chunk_size(CHUNK_SIZE).unwrap();
            let mut n = 0usize;
            for piece in chunks.chunks(64 * 1024) {
                let mut input = piece;
                while let Some(m) = d.decode(&mut input).unwrap() {
                    n += m.payload.len();
                }
            }
            n
        })
    });
    // The whole server session as the shard runs it, in 64 KiB reads.
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("session_to_frames", |b| {
        b.iter(|| {
            let mut s = ServerSession::new(ServerConfig::default(), 1);
            let mut frames = 0usize;
            for piece in stream.chunks(64 * 1024) {
                s.handle_input(piece).unwrap();
                while let Some(e) = s.poll_event() {
                    match e {
                        Event::PublishRequested(_) => s.accept_publish().unwrap(),
                        Event::Frame(_) => frames += 1,
                        _ => {}
                    }
                }
                while s.poll_transmit().is_some() {}
            }
            frames
        })
    });
    g.finish();

    let mut g = c.benchmark_group("flv");
    g.throughput(Throughput::Bytes(media_bytes));
    g.bench_function("tags_to_frames", |b| {
        let mut out = Vec::with_capacity(tags.len() + 4);
        b.iter(|| {
            let mut d = FlvDemuxer::default();
            out.clear();
            for (t, ts) in &tags {
                match t.kind {
                    TagKind::Video => d.video(*ts as i64, t.data.clone(), &mut out).unwrap(),
                    TagKind::Audio => d.audio(*ts as i64, t.data.clone(), &mut out).unwrap(),
                    TagKind::Script => {}
                }
            }
            out.len()
        })
    });
    g.finish();

    let (tracks, frames) = frames(&tags);
    let frame_bytes: u64 = frames.iter().map(|f| f.data.len() as u64).sum();
    let mut g = c.benchmark_group("fmp4");
    g.throughput(Throughput::Bytes(frame_bytes));
    g.bench_function("mux_fragments", |b| {
        b.iter_batched(
            || frames.clone(),
            |frames| {
                let (mut m, _) = Fmp4Muxer::new(&tracks, Fmp4Config::default());
                let mut written = 0u64;
                for f in frames {
                    m.push(f);
                    while let Some(w) = m.poll_write() {
                        written += w.len;
                    }
                }
                written + m.finish().len
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    // The UDP ingest per datagram (7 packets, as ffmpeg and the load generator
    // send): reordering, then demuxing into frames.
    let ts = ts_source();
    let mut g = c.benchmark_group("ts");
    g.throughput(Throughput::Bytes(ts.len() as u64));
    g.bench_function("udp_datagrams_to_frames", |b| {
        b.iter(|| {
            let mut r = Reorder::new();
            let mut d = TsDemuxer::new();
            let mut events = 0usize;
            for datagram in ts.chunks(7 * 188) {
                if r.pass_in_order(datagram) {
                    d.handle_input(datagram);
                } else {
                    r.handle_datagram(Bytes::copy_from_slice(datagram));
                    while let Some(x) = r.poll_datagram() {
                        d.handle_input(&x);
                    }
                }
                while d.poll_event().is_some() {
                    events += 1;
                }
            }
            d.handle_end();
            events + std::iter::from_fn(|| d.poll_event()).count()
        })
    });
    g.finish();
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
