//! The init segment: `ftyp` + `moov` (with `mvex`), recording where durations go.

use bytes::{BufMut, BytesMut};
use edgerec_media::{MediaKind, TrackInfo};

use super::finalize::{EditLayout, InitLayout, TrackLayout};
use super::MOVIE_TIMESCALE;
use crate::bmff::BoxWriter;
use crate::fmp4::sample_entry;

/// A track as the init segment declares it.
pub struct InitTrack<'a> {
    pub info: &'a TrackInfo,
    pub track_id: u32,
    pub timescale: u32,
    /// (empty edit in ms, media time in track ticks), when the track's start is known.
    pub edit: Option<(u64, i64)>,
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Writes `ftyp` + `moov` at file offset 0. `creation` is in seconds since 1904.
pub fn write(buf: &mut BytesMut, tracks: &[InitTrack<'_>], creation: u64) -> InitLayout {
    let mut w = BoxWriter::new(buf);
    w.start(b"ftyp");
    w.buf.put_slice(b"isom");
    w.buf.put_u32(0x200);
    for brand in [b"isom", b"iso5", b"iso6", b"mp41"] {
        w.buf.put_slice(brand);
    }
    w.end();

    w.start(b"moov");
    w.start_full(b"mvhd", 1, 0);
    w.buf.put_u64(creation);
    w.buf.put_u64(creation);
    w.buf.put_u32(MOVIE_TIMESCALE);
    let mvhd_duration_at = w.pos() as u64;
    w.buf.put_u64(0);
    w.buf.put_u32(0x0001_0000); // rate
    w.buf.put_u16(0x0100); // volume
    w.buf.put_bytes(0, 10);
    for m in MATRIX {
        w.buf.put_u32(m);
    }
    w.buf.put_bytes(0, 24);
    w.buf
        .put_u32(tracks.iter().map(|t| t.track_id).max().unwrap_or(0) + 1);
    w.end();

    let mut layouts = Vec::with_capacity(tracks.len());
    for t in tracks {
        layouts.push(trak(&mut w, t, creation));
    }

    w.start(b"mvex");
    w.start_full(b"mehd", 1, 0);
    let mehd_duration_at = w.pos() as u64;
    w.buf.put_u64(0);
    w.end();
    for t in tracks {
        w.start_full(b"trex", 0, 0);
        w.buf.put_u32(t.track_id);
        w.buf.put_u32(1); // sample description index
        w.buf.put_u32(0);
        w.buf.put_u32(0);
        w.buf.put_u32(0);
        w.end();
    }
    w.end(); // mvex
    w.end(); // moov

    InitLayout {
        mvhd_duration_at,
        mehd_duration_at: Some(mehd_duration_at),
        tracks: layouts,
    }
}

fn trak(w: &mut BoxWriter<'_>, t: &InitTrack<'_>, creation: u64) -> TrackLayout {
    let video = t.info.kind() == MediaKind::Video;
    w.start(b"trak");
    w.start_full(b"tkhd", 1, 0x3); // enabled, in movie
    w.buf.put_u64(creation);
    w.buf.put_u64(creation);
    w.buf.put_u32(t.track_id);
    w.buf.put_u32(0);
    let tkhd_duration_at = w.pos() as u64;
    w.buf.put_u64(0);
    w.buf.put_u64(0); // reserved
    w.buf.put_u16(0); // layer
    w.buf.put_u16(if video { 0 } else { 1 }); // alternate group
    w.buf.put_u16(if video { 0 } else { 0x0100 });
    w.buf.put_u16(0);
    for m in MATRIX {
        w.buf.put_u32(m);
    }
    let (width, height) = t
        .info
        .video()
        .map_or((0, 0), |v| (v.width.min(0xffff), v.height.min(0xffff)));
    w.buf.put_u32(width << 16);
    w.buf.put_u32(height << 16);
    w.end();

    let edit = t.edit.map(|(empty, media_time)| {
        w.start(b"edts");
        w.start_full(b"elst", 1, 0);
        w.buf.put_u32(if empty > 0 { 2 } else { 1 });
        if empty > 0 {
            w.buf.put_u64(empty);
            w.buf.put_i64(-1);
            w.buf.put_u32(0x0001_0000);
        }
        let segment_duration_at = w.pos() as u64;
        w.buf.put_u64(0);
        w.buf.put_i64(media_time);
        w.buf.put_u32(0x0001_0000);
        w.end();
        w.end();
        EditLayout {
            empty,
            media_time,
            segment_duration_at,
        }
    });

    w.start(b"mdia");
    w.start_full(b"mdhd", 1, 0);
    w.buf.put_u64(creation);
    w.buf.put_u64(creation);
    w.buf.put_u32(t.timescale);
    let mdhd_duration_at = w.pos() as u64;
    w.buf.put_u64(0);
    w.buf.put_u16(0x55c4); // language "und"
    w.buf.put_u16(0);
    w.end();
    w.start_full(b"hdlr", 0, 0);
    w.buf.put_u32(0);
    w.buf.put_slice(if video { b"vide" } else { b"soun" });
    w.buf.put_bytes(0, 12);
    w.buf.put_slice(if video {
        b"VideoHandler\0".as_slice()
    } else {
        b"SoundHandler\0".as_slice()
    });
    w.end();
    w.start(b"minf");
    if video {
        w.start_full(b"vmhd", 0, 1);
        w.buf.put_bytes(0, 8);
    } else {
        w.start_full(b"smhd", 0, 0);
        w.buf.put_u32(0);
    }
    w.end();
    w.start(b"dinf");
    w.start_full(b"dref", 0, 0);
    w.buf.put_u32(1);
    w.start_full(b"url ", 0, 1);
    w.end();
    w.end();
    w.end();
    w.start(b"stbl");
    w.start_full(b"stsd", 0, 0);
    w.buf.put_u32(1);
    // Tracks reach here only after `Format::holds` accepted them.
    let _ = sample_entry::write(w, t.info);
    w.end();
    for kind in [b"stts", b"stsc", b"stco"] {
        w.start_full(kind, 0, 0);
        w.buf.put_u32(0);
        w.end();
    }
    w.start_full(b"stsz", 0, 0);
    w.buf.put_u32(0);
    w.buf.put_u32(0);
    w.end();
    w.end(); // stbl
    w.end(); // minf
    w.end(); // mdia
    w.end(); // trak
    TrackLayout {
        track_id: t.track_id,
        handler: if video { *b"vide" } else { *b"soun" },
        timescale: t.timescale,
        tkhd_duration_at,
        mdhd_duration_at,
        edit,
    }
}
