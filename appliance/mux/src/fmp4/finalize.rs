//! Closing a fragmented MP4 in O(1): an `mfra` appended, durations patched in place.
//!
//! Shared by a clean stop (from the muxer's state) and by recovery (from a scan), so
//! both leave byte-identical tails for the same media.

use bytes::{BufMut, Bytes, BytesMut};
use edgerec_media::{MediaTime, Timescale};

use super::MOVIE_TIMESCALE;
use crate::bmff::BoxWriter;
use crate::Patch;

/// Where the duration fields of an init segment are (absolute file offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitLayout {
    pub mvhd_duration_at: u64,
    pub mehd_duration_at: Option<u64>,
    pub tracks: Vec<TrackLayout>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackLayout {
    pub track_id: u32,
    /// `vide` or `soun`.
    pub handler: [u8; 4],
    pub timescale: u32,
    pub tkhd_duration_at: u64,
    pub mdhd_duration_at: u64,
    pub edit: Option<EditLayout>,
}

/// A track's edit list: an optional empty edit (the track starts after the movie's
/// first presented sample), then one media edit starting at `media_time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EditLayout {
    /// Length of the empty edit in movie ticks (ms); 0 for none.
    pub empty: u64,
    /// Composition time where presentation of the track starts, in track ticks.
    pub media_time: i64,
    /// Offset of the media edit's 64-bit segment_duration.
    pub segment_duration_at: u64,
}

/// A random access point: a sync sample and the fragment holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TfraEntry {
    /// Decode time of the sample, in the track's timescale.
    pub time: u64,
    pub moof_offset: u64,
    /// 1-based position of the track's traf within the moof.
    pub traf_number: u32,
    /// 1-based sample number within the trun.
    pub sample_number: u32,
}

/// What a track amounts to at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackTotals {
    pub track_id: u32,
    /// End of the last sample (decode time + duration) in track ticks.
    pub end_ticks: u64,
    pub samples: u64,
    pub tfra: Vec<TfraEntry>,
}

/// The `mfra` to append at the end and the duration patches, plus the file's
/// duration (the longest track, as presented through its edit list).
pub fn tail(layout: &InitLayout, totals: &[TrackTotals]) -> (Bytes, Vec<Patch>, MediaTime) {
    let mut patches = Vec::new();
    let mut movie_ms = 0u64;
    for tl in &layout.tracks {
        let end = totals
            .iter()
            .find(|t| t.track_id == tl.track_id)
            .map_or(0, |t| t.end_ticks);
        let ts = Timescale::new(tl.timescale).unwrap_or(Timescale::MILLIS);
        let to_ms = |ticks: i64| {
            MediaTime::new(ticks, ts)
                .rescale(Timescale::MILLIS)
                .ticks()
                .max(0) as u64
        };
        let ms = match tl.edit {
            Some(e) => {
                // The track's decode span. For a whole stream it equals the span its
                // edit presents (media_time skips exactly the B-frame delay); for one
                // stopped mid mini-GOP it leaves out the B-frames that never came,
                // as players do.
                let presented = to_ms(end as i64);
                patches.push(Patch {
                    offset: e.segment_duration_at,
                    bytes: presented.to_be_bytes().to_vec(),
                });
                e.empty.saturating_add(presented)
            }
            None => to_ms(end as i64),
        };
        movie_ms = movie_ms.max(ms);
        patches.push(Patch {
            offset: tl.tkhd_duration_at,
            bytes: ms.to_be_bytes().to_vec(),
        });
        // The media's own length: the sum of its sample durations.
        patches.push(Patch {
            offset: tl.mdhd_duration_at,
            bytes: end.to_be_bytes().to_vec(),
        });
    }
    patches.push(Patch {
        offset: layout.mvhd_duration_at,
        bytes: movie_ms.to_be_bytes().to_vec(),
    });
    if let Some(at) = layout.mehd_duration_at {
        patches.push(Patch {
            offset: at,
            bytes: movie_ms.to_be_bytes().to_vec(),
        });
    }

    let mut buf = BytesMut::new();
    let mut w = BoxWriter::new(&mut buf);
    w.start(b"mfra");
    for t in totals {
        w.start_full(b"tfra", 1, 0);
        w.buf.put_u32(t.track_id);
        w.buf.put_u32(0x3f); // 4-byte traf, trun and sample numbers
        w.buf.put_u32(t.tfra.len() as u32);
        for e in &t.tfra {
            w.buf.put_u64(e.time);
            w.buf.put_u64(e.moof_offset);
            w.buf.put_u32(e.traf_number);
            w.buf.put_u32(1);
            w.buf.put_u32(e.sample_number);
        }
        w.end();
    }
    let mfra_len = w.pos() as u32 + 16;
    w.start_full(b"mfro", 0, 0);
    w.buf.put_u32(mfra_len);
    w.end();
    w.end();
    (
        buf.freeze(),
        patches,
        MediaTime::new(
            movie_ms as i64,
            Timescale::new(MOVIE_TIMESCALE).unwrap_or(Timescale::MILLIS),
        ),
    )
}
