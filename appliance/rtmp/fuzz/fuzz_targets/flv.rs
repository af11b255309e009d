//! FLV audio/video tag bodies: the first byte picks audio or video and a timestamp.
#![no_main]
use bytes::Bytes;
use edgerec_rtmp::flv::FlvDemuxer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = FlvDemuxer::default();
    let mut out = Vec::new();
    // Several tags separated by 0xff 0x00 so sequence headers and frames interact.
    for (i, tag) in data.split(|&b| b == 0xfe).enumerate() {
        let body = Bytes::copy_from_slice(tag);
        let ts = i as i64 * 40;
        let r = if i % 2 == 0 { d.video(ts, body, &mut out) } else { d.audio(ts, body, &mut out) };
        let _ = r;
    }
});
