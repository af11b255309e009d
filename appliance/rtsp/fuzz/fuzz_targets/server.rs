//! A publisher's whole connection: bytes cut at 0xfe into reads; the announce
//! and UDP setup are granted or refused by the input's first byte.
#![no_main]
use edgerec_rtsp::auth::Credentials;
use edgerec_rtsp::{Action, ServerSession};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let creds = (mode & 1 == 1).then(|| Credentials {
        user: "u".into(),
        password: "p".into(),
    });
    let mut s = ServerSession::new(creds, "nonce".into(), "sess".into());
    for read in rest.split(|&b| b == 0xfe) {
        s.handle_input(read);
        while let Some(a) = s.poll_action() {
            match a {
                Action::Announce { .. } => s.announce_result(if mode & 2 == 0 {
                    Ok(())
                } else {
                    Err("live".into())
                }),
                Action::SetupUdp { .. } => s.setup_udp_result(Ok((40000, 40001))),
                _ => {}
            }
        }
    }
});
