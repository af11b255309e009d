//! The RTMP handshake, server side.
//!
//! Clients send C0 (version 3) + C1 (1536 bytes), we answer S0 + S1 + S2, they send
//! C2. A C1 with a non-zero version field (ffmpeg sends 9.0.124.2, Flash-derived
//! encoders do the same) asks for the "digest" handshake: if its HMAC-SHA256 digest
//! validates against the Flash Player key, S1 and S2 carry digests the client can
//! check; otherwise the plain echo handshake is used, which every publisher accepts.
//!
//! Sans-IO: randomness comes from the caller's seed, nothing reads a clock.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub const HANDSHAKE_LEN: usize = 1536;
const RTMP_VERSION: u8 = 3;
const DIGEST_LEN: usize = 32;

const KEY_TAIL: [u8; 32] = [
    0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8, 0x2e, 0x00, 0xd0, 0xd1, 0x02, 0x9e, 0x7e, 0x57,
    0x6e, 0xec, 0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab, 0x93, 0xb8, 0xe6, 0x36, 0xcf, 0xeb, 0x31, 0xae,
];
const PLAYER_KEY_HEAD: &[u8] = b"Genuine Adobe Flash Player 001";
const SERVER_KEY_HEAD: &[u8] = b"Genuine Adobe Flash Media Server 001";
/// Version we announce in S1 when answering a digest handshake.
const SERVER_VERSION: [u8; 4] = [0x0d, 0x0e, 0x0a, 0x0d];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("unsupported RTMP version {0} in C0 (only 3 is defined)")]
    BadVersion(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitC0C1,
    AwaitC2,
    Done,
}

/// Server handshake state machine.
pub struct Handshake {
    state: State,
    rng: SplitMix64,
    /// Whether the client asked for, and validated as, the digest handshake.
    digest: bool,
}

/// What [`Handshake::handle`] made of the input.
#[derive(Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the input consumed.
    pub consumed: usize,
    /// S0+S1+S2 to send, once C0+C1 are complete.
    pub reply: Option<Vec<u8>>,
    /// The handshake is complete; later bytes are chunk streams.
    pub done: bool,
}

impl Handshake {
    pub fn new(seed: u64) -> Handshake {
        Handshake {
            state: State::AwaitC0C1,
            rng: SplitMix64(seed),
            digest: false,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the client used (and passed) the digest handshake.
    pub fn used_digest(&self) -> bool {
        self.digest
    }

    /// Bytes the handshake needs before it can make progress.
    pub fn needed(&self) -> usize {
        match self.state {
            State::AwaitC0C1 => 1 + HANDSHAKE_LEN,
            State::AwaitC2 => HANDSHAKE_LEN,
            State::Done => 0,
        }
    }

    /// Feeds `input`, which must hold at least [`needed`](Self::needed) bytes to make
    /// progress; fewer consume nothing (the caller keeps them).
    pub fn handle(&mut self, input: &[u8]) -> Result<Progress, HandshakeError> {
        let mut p = Progress {
            consumed: 0,
            reply: None,
            done: false,
        };
        if self.state == State::AwaitC0C1 {
            if let Some(&v) = input.first() {
                if v != RTMP_VERSION {
                    return Err(HandshakeError::BadVersion(v));
                }
            }
            if input.len() < 1 + HANDSHAKE_LEN {
                return Ok(p);
            }
            let c1 = &input[1..1 + HANDSHAKE_LEN];
            p.reply = Some(self.reply(c1));
            p.consumed = 1 + HANDSHAKE_LEN;
            self.state = State::AwaitC2;
        }
        if self.state == State::AwaitC2 {
            // C2 is the client's echo of S1; nobody verifies it, so neither do we.
            if input.len() - p.consumed < HANDSHAKE_LEN {
                return Ok(p);
            }
            p.consumed += HANDSHAKE_LEN;
            self.state = State::Done;
        }
        p.done = self.state == State::Done;
        Ok(p)
    }

    fn reply(&mut self, c1: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 2 * HANDSHAKE_LEN);
        out.push(RTMP_VERSION);
        let client_digest = if c1[4..8] != [0, 0, 0, 0] {
            find_digest(c1, 772, PLAYER_KEY_HEAD).or_else(|| find_digest(c1, 8, PLAYER_KEY_HEAD))
        } else {
            None
        };
        match client_digest {
            Some(cd) => {
                self.digest = true;
                // S1: time, version, random, with our digest at the scheme-0 position.
                let mut s1 = vec![0u8; HANDSHAKE_LEN];
                s1[4..8].copy_from_slice(&SERVER_VERSION);
                self.rng.fill(&mut s1[8..]);
                let pos = digest_pos(&s1, 8);
                let d = digest_excluding(&s1, pos, SERVER_KEY_HEAD);
                s1[pos..pos + DIGEST_LEN].copy_from_slice(&d);
                out.extend_from_slice(&s1);
                // S2: random, ending in a digest keyed by the client's digest.
                let mut s2 = vec![0u8; HANDSHAKE_LEN];
                self.rng.fill(&mut s2);
                let mut full_key = SERVER_KEY_HEAD.to_vec();
                full_key.extend_from_slice(&KEY_TAIL);
                let key = hmac(&full_key, &[&cd]);
                let tail = HANDSHAKE_LEN - DIGEST_LEN;
                let d = hmac(&key, &[&s2[..tail]]);
                s2[tail..].copy_from_slice(&d);
                out.extend_from_slice(&s2);
            }
            None => {
                let mut s1 = vec![0u8; HANDSHAKE_LEN];
                self.rng.fill(&mut s1[8..]);
                out.extend_from_slice(&s1);
                out.extend_from_slice(c1);
            }
        }
        out
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; DIGEST_LEN],
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Where the digest sits for the scheme whose offset field starts at `base` (8 or 772).
fn digest_pos(block: &[u8], base: usize) -> usize {
    let sum: usize = block[base..base + 4].iter().map(|&b| b as usize).sum();
    sum % 728 + base + 4
}

fn digest_excluding(block: &[u8], pos: usize, key: &[u8]) -> [u8; DIGEST_LEN] {
    hmac(key, &[&block[..pos], &block[pos + DIGEST_LEN..]])
}

fn find_digest(c1: &[u8], base: usize, key: &[u8]) -> Option<[u8; DIGEST_LEN]> {
    let pos = digest_pos(c1, base);
    let expected = digest_excluding(c1, pos, key);
    (c1[pos..pos + DIGEST_LEN] == expected).then_some(expected)
}

/// A tiny PRNG for handshake filler bytes, which have no security role.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FFMPEG_C0C1: &[u8] = include_bytes!("../tests/data/ffmpeg51_c0c1.bin");

    #[test]
    fn ffmpeg_c1_gets_a_digest_reply() {
        let mut h = Handshake::new(7);
        let p = h.handle(FFMPEG_C0C1).unwrap();
        assert_eq!(p.consumed, 1537);
        assert!(!p.done);
        assert!(
            h.used_digest(),
            "ffmpeg 5.1 sends a valid scheme-1 C1 digest"
        );
        let reply = p.reply.unwrap();
        assert_eq!(reply.len(), 1 + 2 * HANDSHAKE_LEN);
        assert_eq!(reply[0], 3);
        // A client validating S1 finds our digest at the scheme-0 position.
        let s1 = &reply[1..1 + HANDSHAKE_LEN];
        assert!(find_digest(s1, 8, SERVER_KEY_HEAD).is_some());
        // And S2's trailing digest is keyed by the client's C1 digest.
        let cd = find_digest(&FFMPEG_C0C1[1..], 772, PLAYER_KEY_HEAD)
            .or_else(|| find_digest(&FFMPEG_C0C1[1..], 8, PLAYER_KEY_HEAD))
            .unwrap();
        let mut full_key = SERVER_KEY_HEAD.to_vec();
        full_key.extend_from_slice(&KEY_TAIL);
        let key = hmac(&full_key, &[&cd]);
        let s2 = &reply[1 + HANDSHAKE_LEN..];
        assert_eq!(hmac(&key, &[&s2[..1504]]), s2[1504..]);
        let p = h.handle(&[0u8; HANDSHAKE_LEN]).unwrap();
        assert!(p.done);
    }

    #[test]
    fn plain_c1_gets_an_echo() {
        let mut input = vec![3u8];
        input.extend((0..HANDSHAKE_LEN).map(|i| if (4..8).contains(&i) { 0 } else { i as u8 }));
        input.extend(vec![0u8; HANDSHAKE_LEN]);
        let mut h = Handshake::new(1);
        let p = h.handle(&input).unwrap();
        assert!(p.done);
        assert_eq!(p.consumed, 1 + 2 * HANDSHAKE_LEN);
        assert!(!h.used_digest());
        let reply = p.reply.unwrap();
        assert_eq!(&reply[1 + HANDSHAKE_LEN..], &input[1..1 + HANDSHAKE_LEN]);
    }

    #[test]
    fn partial_input_consumes_nothing() {
        let mut h = Handshake::new(1);
        let p = h.handle(&FFMPEG_C0C1[..100]).unwrap();
        assert_eq!(p.consumed, 0);
        assert!(p.reply.is_none());
    }

    #[test]
    fn wrong_version_is_an_error() {
        let mut h = Handshake::new(1);
        assert_eq!(h.handle(&[6]), Err(HandshakeError::BadVersion(6)));
        let mut h = Handshake::new(1);
        assert_eq!(
            h.handle(b"GET / HTTP/1.1"),
            Err(HandshakeError::BadVersion(b'G'))
        );
    }
}
