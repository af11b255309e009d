//! SRTP/SRTCP decryption (RFC 3711) with keys given out of band, as SDES
//! (RFC 4568) and relaying SFUs give them: base64 of master key ‖ master salt.
//! The cipher work is webrtc-rs's `webrtc-srtp`; this module only parses the key
//! and keeps packets too short to carry an auth tag away from it. The RTP header
//! handed to it is built from `packet::header_len`, never by `rtp`'s
//! `Header::unmarshal`: rtp 0.17 reads one-byte extension elements past the end
//! of a datagram and panics (found by the `session` fuzz target; regression in
//! fuzz/regressions/session).

use base64::Engine as _;

use crate::packet::header_len;
use bytes::Bytes;
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

/// An SRTP crypto suite, by its SDES name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptoSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AeadAes128Gcm,
}

impl CryptoSuite {
    pub fn from_name(s: &str) -> Option<CryptoSuite> {
        match s {
            "AES_CM_128_HMAC_SHA1_80" => Some(CryptoSuite::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(CryptoSuite::AesCm128HmacSha1_32),
            "AEAD_AES_128_GCM" => Some(CryptoSuite::AeadAes128Gcm),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            CryptoSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }
}

/// Keys for one direction of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrtpKey {
    pub suite: CryptoSuite,
    pub key: Vec<u8>,
    pub salt: Vec<u8>,
}

impl SrtpKey {
    /// `key_base64`: master key followed by master salt (30 bytes for the AES-CM
    /// suites, 28 for AES-GCM), base64 as in SDES `inline:` and ffmpeg's
    /// `srtp_out_params`.
    pub fn new(suite: CryptoSuite, key_base64: &str) -> Result<SrtpKey, String> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(key_base64.trim())
            .map_err(|e| format!("SRTP key is not base64: {e}"))?;
        let (k, s) = match suite {
            CryptoSuite::AeadAes128Gcm => (16, 12),
            _ => (16, 14),
        };
        if raw.len() != k + s {
            return Err(format!(
                "{} needs {} bytes of key and salt, got {}",
                suite.name(),
                k + s,
                raw.len()
            ));
        }
        Ok(SrtpKey {
            suite,
            key: raw[..k].to_vec(),
            salt: raw[k..].to_vec(),
        })
    }

    fn profile(&self) -> ProtectionProfile {
        match self.suite {
            CryptoSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            CryptoSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
            CryptoSuite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        }
    }
}

/// Decrypts one track's SRTP and SRTCP.
pub struct Decryptor {
    ctx: Context,
}

impl Decryptor {
    pub fn new(key: &SrtpKey) -> Result<Decryptor, String> {
        Context::new(&key.key, &key.salt, key.profile(), None, None)
            .map(|ctx| Decryptor { ctx })
            .map_err(|e| format!("SRTP context: {e}"))
    }

    pub fn rtp(&mut self, p: &[u8]) -> Result<Bytes, String> {
        let head = header_len(p).map_err(|e| format!("SRTP: {e}"))?;
        if p.len() < head + 4 {
            return Err(format!("SRTP packet of {} bytes", p.len()));
        }
        let csrc = p[12..head.min(12 + 4 * usize::from(p[0] & 0x0f))]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let extension = p[0] & 0x10 != 0;
        let ext_start = 16 + 4 * usize::from(p[0] & 0x0f);
        let header = rtp::header::Header {
            version: 2,
            padding: p[0] & 0x20 != 0,
            extension,
            marker: p[1] & 0x80 != 0,
            payload_type: p[1] & 0x7f,
            sequence_number: u16::from_be_bytes([p[2], p[3]]),
            timestamp: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
            csrc,
            // One opaque extension under a profile with no per-element bytes,
            // so the cipher's `marshal_size` is exactly `head`.
            extension_profile: 0,
            extensions: if extension {
                vec![rtp::header::Extension {
                    id: 0,
                    payload: Bytes::copy_from_slice(&p[ext_start..head]),
                }]
            } else {
                Vec::new()
            },
            extensions_padding: 0,
        };
        self.ctx
            .decrypt_rtp_with_header(p, &header)
            .map_err(|e| format!("SRTP: {e}"))
    }

    pub fn rtcp(&mut self, p: &[u8]) -> Result<Bytes, String> {
        if p.len() < 8 + 4 + 4 || p[0] >> 6 != 2 {
            return Err(format!("SRTCP packet of {} bytes", p.len()));
        }
        self.ctx.decrypt_rtcp(p).map_err(|e| format!("SRTCP: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webrtc_srtp::context::Context;

    const KEY: &str = "zRwR3Bnf9eIJaCgtnpZGD6TDP6Y69xhjkC8uVtnB";

    #[test]
    fn decrypts_what_the_same_key_encrypted() {
        let k = SrtpKey::new(CryptoSuite::AesCm128HmacSha1_80, KEY).unwrap();
        let mut enc = Context::new(&k.key, &k.salt, k.profile(), None, None).unwrap();
        let mut plain = vec![0x80, 96, 0, 1, 0, 0, 0, 9, 0, 0, 0, 5];
        plain.extend_from_slice(b"payload");
        let sealed = enc.encrypt_rtp(&plain).unwrap();
        assert_ne!(&sealed[12..19], b"payload");
        let mut d = Decryptor::new(&k).unwrap();
        assert_eq!(&d.rtp(&sealed).unwrap()[..], &plain[..]);
        // Tampered: the auth tag fails.
        let mut bad = sealed.to_vec();
        bad[13] ^= 1;
        assert!(d.rtp(&bad).is_err());
        assert!(d.rtp(&[0x80; 5]).is_err());
        assert!(d.rtcp(&[0x80, 200, 0, 1, 0, 0]).is_err());
    }

    #[test]
    fn header_extensions_are_skipped_not_parsed() {
        let k = SrtpKey::new(CryptoSuite::AesCm128HmacSha1_80, KEY).unwrap();
        let mut enc = Context::new(&k.key, &k.salt, k.profile(), None, None).unwrap();
        // One CSRC and a one-byte (0xBEDE) extension of one word, as Chromium
        // sends abs-send-time.
        let mut plain = vec![0x91, 96, 0, 1, 0, 0, 0, 9, 0, 0, 0, 5, 0, 0, 0, 7];
        plain.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x32, 1, 2, 3]);
        plain.extend_from_slice(b"payload");
        let sealed = enc.encrypt_rtp(&plain).unwrap();
        let mut d = Decryptor::new(&k).unwrap();
        assert_eq!(&d.rtp(&sealed).unwrap()[..], &plain[..]);
        // An element longer than the datagram: an error, not rtp 0.17's panic.
        let mut bad = vec![0x90, 96, 0, 2, 0, 0, 0, 9, 0, 0, 0, 5];
        bad.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x1f, 0, 0, 0, 1, 2, 3, 4]);
        assert!(d.rtp(&bad).is_err());
        assert!(d.rtp(&bad[..14]).is_err());
    }

    #[test]
    fn key_length_and_encoding_are_checked() {
        assert!(SrtpKey::new(CryptoSuite::AesCm128HmacSha1_80, "AAAA").is_err());
        assert!(SrtpKey::new(CryptoSuite::AesCm128HmacSha1_80, "not base64!").is_err());
        assert_eq!(
            CryptoSuite::from_name("AES_CM_128_HMAC_SHA1_80"),
            Some(CryptoSuite::AesCm128HmacSha1_80)
        );
    }
}
