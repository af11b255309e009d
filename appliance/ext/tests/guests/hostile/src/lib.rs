//! A naming extension that misbehaves as its config says (`mode`), so one
//! component covers every runtime attack the host must survive.

use edgerec_ext_sdk::config;
use edgerec_ext_sdk::naming::{ExtError, Naming, Recording};

struct Hostile;

impl Naming for Hostile {
    fn name(rec: Recording) -> Result<String, ExtError> {
        match config::get("mode").as_deref() {
            Some("loop") => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Some("bomb") => {
                // Reserve without touching, so memory (not fuel) runs out.
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(Vec::with_capacity(1 << 20));
                    std::hint::black_box(&hoard);
                }
            }
            Some("panic") => panic!("hostile extension panics on {}", rec.stream),
            Some("traversal") => Ok("../../etc/passwd".into()),
            Some("absolute") => Ok("/etc/passwd".into()),
            Some("huge") => Ok("a".repeat(10 << 20)),
            Some("log-flood") => {
                for i in 0..10_000 {
                    edgerec_ext_sdk::log::info(&format!("line {i}"));
                    eprintln!("stderr line {i}");
                }
                Ok("flood.mp4".into())
            }
            _ => Ok(format!("ok/{}.{}", rec.name, rec.container)),
        }
    }
}

edgerec_ext_sdk::export_naming!(Hostile);
