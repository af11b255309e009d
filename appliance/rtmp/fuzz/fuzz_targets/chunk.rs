//! The chunk-stream decoder on arbitrary bytes, fed in arbitrary pieces, with chunk
//! size changes driven by the input.
#![no_main]
use edgerec_rtmp::chunk::{ChunkDecoder, ChunkLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let limits = ChunkLimits { max_message_len: 1 << 16, max_chunk_streams: 8 };
    let mut d = ChunkDecoder::new(limits, 0);
    let cut = (split as usize).min(rest.len());
    for piece in [&rest[..cut], &rest[cut..]] {
        let mut input = piece;
        loop {
            match d.decode(&mut input) {
                Ok(Some(m)) => {
                    assert!(m.payload.len() <= 1 << 16);
                    if m.type_id == 1 && m.payload.len() >= 4 {
                        let size = u32::from_be_bytes([m.payload[0], m.payload[1], m.payload[2], m.payload[3]]);
                        if d.set_chunk_size(size).is_err() {
                            return;
                        }
                    }
                    if m.type_id == 2 && m.payload.len() >= 4 {
                        d.abort(u32::from(m.payload[3]));
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
