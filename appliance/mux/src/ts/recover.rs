//! Scanning an MPEG-TS file left open by a crash: the file is valid up to the
//! last fragment mark (see [`crate::ts`]) that ends a fragment starting with a
//! PAT; the mark holds the totals, so no media is parsed.

use super::muxer::{read_mark, Totals};
use super::PACKET;
use crate::{ScanError, Source};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredTs {
    pub valid_len: u64,
    pub torn_bytes: u64,
    pub totals: Totals,
}

/// Bytes read per step while walking back from the end.
const CHUNK: u64 = 188 * 512;

pub fn scan(src: &mut dyn Source, file_len: u64) -> Result<RecoveredTs, ScanError> {
    let packets = file_len / PACKET as u64;
    let mut end = packets * PACKET as u64;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let chunk = &mut buf[..(end - start) as usize];
        src.read_exact_at(start, chunk)?;
        for p in chunk.chunks_exact(PACKET).rev().enumerate() {
            let at = end - (p.0 as u64 + 1) * PACKET as u64;
            let Some((len, totals)) = read_mark(p.1) else {
                continue;
            };
            let valid_len = at + PACKET as u64;
            let Some(frag_start) = valid_len.checked_sub(len) else {
                continue;
            };
            let mut head = [0u8; 4];
            src.read_exact_at(frag_start, &mut head)?;
            // A fragment starts with the PAT (PID 0, payload unit start).
            if head[..3] == [0x47, 0x40, 0x00] {
                return Ok(RecoveredTs {
                    valid_len,
                    torn_bytes: file_len - valid_len,
                    totals,
                });
            }
        }
        end = start;
    }
    Err(ScanError::NoHeader("a complete TS fragment"))
}
