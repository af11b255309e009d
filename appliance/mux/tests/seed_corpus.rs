//! Writes the fixture as fMP4, Matroska and MPEG-TS (whole, and cut mid-way
//! as a crash would leave it) into `$FUZZ_CORPUS`, to seed the recovery fuzz
//! target; does nothing without it.

use edgerec_mux::{FileConfig, FileMuxer, Format};

mod common;
use common::{apply_finish, fixture, push_all};

#[test]
fn seed_fuzz_corpus() {
    let Ok(dir) = std::env::var("FUZZ_CORPUS") else {
        return;
    };
    let (tracks, frames) = fixture();
    for format in [Format::Mp4, Format::Mkv, Format::Ts] {
        let config = FileConfig {
            fragment_target: edgerec_media::MediaTime::new(300, edgerec_media::Timescale::MILLIS),
            alignment: None,
            creation_unix_secs: 0,
        };
        let (mut m, _) = FileMuxer::new(format, &tracks, config);
        let (mut file, _) = push_all(&mut m, &frames[..30]);
        let cut = file.len() * 2 / 3;
        std::fs::write(format!("{dir}/{}-torn", format.extension()), &file[..cut]).unwrap();
        apply_finish(&mut file, &m.finish());
        std::fs::write(format!("{dir}/{}-whole", format.extension()), &file).unwrap();
    }
}
