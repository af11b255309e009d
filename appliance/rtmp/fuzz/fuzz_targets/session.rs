//! The whole server session after a valid handshake: arbitrary chunk-stream bytes,
//! publishes accepted or refused as the input says.
#![no_main]
use edgerec_rtmp::{Event, ServerConfig, ServerSession};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut s = ServerSession::new(ServerConfig::default(), 1);
    let mut hs = vec![3u8];
    hs.extend(std::iter::repeat_n(0, 3072));
    s.handle_input(&hs).expect("handshake");
    let accept = data.first().is_some_and(|b| b & 1 == 0);
    for piece in data.chunks(97) {
        if s.handle_input(piece).is_err() {
            return;
        }
        while s.poll_transmit().is_some() {}
        while let Some(e) = s.poll_event() {
            if let Event::PublishRequested(_) = e {
                let r = if accept { s.accept_publish() } else { s.reject_publish("NetStream.Publish.BadName", "x") };
                if r.is_err() {
                    return;
                }
            }
        }
    }
});
