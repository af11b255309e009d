//! UDP reordering then demuxing, on datagrams cut from the input.
#![no_main]
use bytes::Bytes;
use edgerec_ts::{Reorder, TsDemuxer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = Reorder::new();
    let mut d = TsDemuxer::new();
    for datagram in data.split(|&b| b == 0xfe) {
        r.handle_datagram(Bytes::copy_from_slice(datagram));
        while let Some(x) = r.poll_datagram() {
            d.handle_input(&x);
        }
        while d.poll_event().is_some() {}
    }
    r.handle_end();
    while let Some(x) = r.poll_datagram() {
        d.handle_input(&x);
    }
    d.handle_end();
    while d.poll_event().is_some() {}
});
