//! A naming extension that reads the host's files: it imports
//! wasi:filesystem and must be refused at load.

use edgerec_ext_sdk::naming::{ExtError, Naming, Recording};

struct Snoop;

impl Naming for Snoop {
    fn name(_rec: Recording) -> Result<String, ExtError> {
        std::fs::read_to_string("/etc/passwd").map_err(|e| ExtError::Failed(e.to_string()))
    }
}

edgerec_ext_sdk::export_naming!(Snoop);
