//! One recording file's muxer, whichever container it is: what the recorder
//! holds, so nothing above this crate matches on containers.

use edgerec_media::{Codec, Frame, MediaTime, TrackInfo};

use crate::fmp4::{Fmp4Config, Fmp4Muxer};
use crate::mkv::{DocType, MkvConfig, MkvMuxer};
use crate::ts::{TsConfig, TsMuxer};
use crate::{Finish, PushOutcome, TracksFixed, Unsupported, WriteBatch};

/// The containers edgerec writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Fragmented MP4, finalized in place.
    Mp4,
    /// Matroska: every codec edgerec records, G.711 included.
    Mkv,
    /// WebM: VP8/VP9/AV1 and Opus.
    Webm,
    /// MPEG-TS: H.264, H.265, AAC, MP3, Opus.
    Ts,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Mp4 => "mp4",
            Format::Mkv => "mkv",
            Format::Webm => "webm",
            Format::Ts => "ts",
        }
    }

    /// Whether this container can hold `codec` (the one table the muxers and the
    /// container choice both read).
    pub fn holds(self, codec: Codec) -> bool {
        match self {
            Format::Mp4 => !matches!(codec, Codec::Vp8 | Codec::Pcma | Codec::Pcmu),
            Format::Mkv => true,
            Format::Webm => matches!(codec, Codec::Vp8 | Codec::Vp9 | Codec::Av1 | Codec::Opus),
            Format::Ts => matches!(
                codec,
                Codec::H264 | Codec::H265 | Codec::Aac | Codec::Mp3 | Codec::Opus
            ),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Mp4 => "mp4",
            Format::Mkv => "matroska",
            Format::Webm => "webm",
            Format::Ts => "mpegts",
        }
    }

    /// Whether the container's batches can be padded to O_DIRECT blocks (TS
    /// packets are 188 bytes: its files are written buffered).
    pub fn alignable(self) -> bool {
        self != Format::Ts
    }
}

/// What every container's muxer is given.
#[derive(Clone, Copy, Debug)]
pub struct FileConfig {
    pub fragment_target: MediaTime,
    pub alignment: Option<u32>,
    pub creation_unix_secs: u64,
}

pub enum FileMuxer {
    Mp4(Fmp4Muxer),
    Mkv(MkvMuxer),
    Ts(TsMuxer),
}

macro_rules! each {
    ($self:expr, $m:ident => $e:expr) => {
        match $self {
            FileMuxer::Mp4($m) => $e,
            FileMuxer::Mkv($m) => $e,
            FileMuxer::Ts($m) => $e,
        }
    };
}

impl FileMuxer {
    /// A muxer for `tracks` in `format`; tracks it cannot hold are returned.
    pub fn new(
        format: Format,
        tracks: &[TrackInfo],
        c: FileConfig,
    ) -> (FileMuxer, Vec<Unsupported>) {
        match format {
            Format::Mp4 => {
                let (m, l) = Fmp4Muxer::new(
                    tracks,
                    Fmp4Config {
                        fragment_target: c.fragment_target,
                        alignment: c.alignment,
                        creation_unix_secs: c.creation_unix_secs,
                    },
                );
                (FileMuxer::Mp4(m), l)
            }
            Format::Mkv | Format::Webm => {
                let (m, l) = MkvMuxer::new(
                    tracks,
                    MkvConfig {
                        doc: if format == Format::Webm {
                            DocType::Webm
                        } else {
                            DocType::Matroska
                        },
                        fragment_target: c.fragment_target,
                        alignment: c.alignment,
                        creation_unix_secs: c.creation_unix_secs,
                    },
                );
                (FileMuxer::Mkv(m), l)
            }
            Format::Ts => {
                let (m, l) = TsMuxer::new(
                    tracks,
                    TsConfig {
                        fragment_target: c.fragment_target,
                    },
                );
                (FileMuxer::Ts(m), l)
            }
        }
    }

    pub fn update_tracks(&mut self, tracks: &[TrackInfo]) -> Result<Vec<Unsupported>, TracksFixed> {
        each!(self, m => m.update_tracks(tracks))
    }

    pub fn push(&mut self, frame: Frame) -> PushOutcome {
        each!(self, m => m.push(frame))
    }

    pub fn poll_write(&mut self) -> Option<WriteBatch> {
        each!(self, m => m.poll_write())
    }

    pub fn finish(&mut self) -> Finish {
        each!(self, m => m.finish())
    }

    pub fn duration(&self) -> MediaTime {
        each!(self, m => m.duration())
    }

    pub fn size_estimate(&self) -> u64 {
        each!(self, m => m.size_estimate())
    }
}
