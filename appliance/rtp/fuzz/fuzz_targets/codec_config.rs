//! The codec configuration parsers the ingests run on what senders put in
//! band: AV1 sequence headers (the av1C WebRTC sources get), the picture size
//! readers and the codec strings. The first byte picks one.
#![no_main]
use edgerec_media::{av1, codec_string, picture_size};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            let _ = av1::obus(rest).count();
            if let Some((c, h)) = av1::config_record(rest) {
                // What we build must read back the same way.
                assert_eq!(picture_size::av1_config(&c), Some((h.max_width, h.max_height)));
                assert!(codec_string::av1(&c).is_some());
            }
        }
        1 => {
            let _ = picture_size::av1_config(rest);
            let _ = codec_string::av1(rest);
        }
        2 => {
            let _ = picture_size::hevc_config(rest);
            let _ = codec_string::hevc(rest);
        }
        _ => {
            let _ = picture_size::vp8_key_frame(rest);
            let _ = picture_size::vp9_key_frame(rest);
            let _ = codec_string::vp9(rest);
        }
    }
});
