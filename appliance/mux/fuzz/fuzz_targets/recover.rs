//! A file left on disk, whatever it holds (a torn write, a disk error, a file
//! someone else put there), through every container's recovery scan and, when
//! the scan accepts it, the tail finalize would write.
#![no_main]
use edgerec_mux::{fmp4, mkv, ts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    if let Ok(r) = fmp4::scan(&mut &data[..], len) {
        let _ = fmp4::finalize::tail(&r.layout, &r.totals);
    }
    if let Ok(r) = mkv::scan(&mut &data[..], len) {
        assert!(r.valid_len <= len);
        let _ = mkv::layout::tail(&r.layout, &r.cues, r.valid_len, r.duration_ms());
    }
    if let Ok(r) = ts::scan(&mut &data[..], len) {
        assert!(r.valid_len <= len);
    }
});
