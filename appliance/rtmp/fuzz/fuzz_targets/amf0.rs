//! AMF0 decoding on arbitrary bytes; whatever decodes re-encodes to something that
//! decodes to the same values.
#![no_main]
use bytes::BytesMut;
use edgerec_rtmp::amf0::{decode_all, encode, Amf0Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Amf0Limits::default();
    if let Ok(values) = decode_all(data, limits) {
        let mut out = BytesMut::new();
        for v in &values {
            encode(&mut out, v);
        }
        let again = decode_all(&out, Amf0Limits { max_depth: 64, max_values: u32::MAX }).expect("re-encoded AMF0 decodes");
        // NaN != NaN: compare encodings, not values.
        let mut out2 = BytesMut::new();
        for v in &again {
            encode(&mut out2, v);
        }
        assert_eq!(out, out2);
    }
});
