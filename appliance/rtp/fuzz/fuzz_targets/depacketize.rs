//! Each depacketizer alone: the first byte picks it, payloads are cut at 0xfe and
//! every third one finishes a unit.
#![no_main]
use bytes::Bytes;
use edgerec_media::Codec;
use edgerec_rtp::depacketize::{aac::Aac, g711, h264::H264, opus, Depacketizer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let mut d: Box<dyn Depacketizer> = match which % 4 {
        0 => Box::new(H264::new(None).unwrap()),
        1 => Box::new(opus::depacketizer(2)),
        2 => Box::new(g711::depacketizer(Codec::Pcmu, 1)),
        _ => Box::new(
            Aac::new(Some("sizelength=13;indexlength=3;indexdeltalength=3;config=1208")).unwrap(),
        ),
    };
    let mut out = Vec::new();
    for (i, p) in rest.split(|&b| b == 0xfe).enumerate() {
        if d.push(&Bytes::copy_from_slice(p)).is_err() {
            d.reset();
        }
        if i % 3 == 2 {
            let _ = d.finish(&mut out);
            let _ = d.take_description();
        }
    }
    let _ = d.finish(&mut out);
});
