//! The demuxer on arbitrary bytes, fed in pieces whose sizes come from the input.
#![no_main]
use edgerec_ts::TsDemuxer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let mut d = TsDemuxer::new();
    let step = usize::from(split) * 7 + 1;
    for piece in rest.chunks(step) {
        d.handle_input(piece);
        while d.poll_event().is_some() {}
    }
    d.handle_end();
    while d.poll_event().is_some() {}
});
