//! Publisher authentication: HTTP Digest (RFC 2617, MD5, no qop — what ffmpeg
//! and GStreamer answer) and Basic. The server offers both; the nonce is the
//! caller's (sans-IO: no randomness here).

use base64::Engine as _;
use md5::{Digest, Md5};

#[derive(Clone, Debug)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

pub const REALM: &str = "edgerec";

/// The `WWW-Authenticate` values of a 401.
pub fn challenges(nonce: &str) -> [String; 2] {
    [
        format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=MD5"),
        format!("Basic realm=\"{REALM}\""),
    ]
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `authorization` (the header value) proves `creds` for `method` with
/// our `nonce`.
pub fn verify(authorization: &str, creds: &Credentials, method: &str, nonce: &str) -> bool {
    let (scheme, rest) = authorization.trim().split_once(' ').unwrap_or(("", ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
            return false;
        };
        let want = format!("{}:{}", creds.user, creds.password);
        return constant_time_eq(&raw, want.as_bytes());
    }
    if !scheme.eq_ignore_ascii_case("digest") {
        return false;
    }
    let params = digest_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    let (Some(user), Some(uri), Some(resp), Some(n)) =
        (get("username"), get("uri"), get("response"), get("nonce"))
    else {
        return false;
    };
    if user != creds.user || n != nonce || get("realm").is_some_and(|r| r != REALM) {
        return false;
    }
    let ha1 = md5_hex(&format!("{}:{REALM}:{}", creds.user, creds.password));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let want = match (get("qop"), get("nc"), get("cnonce")) {
        (Some(qop), Some(nc), Some(cnonce)) => {
            md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
        }
        _ => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
    };
    constant_time_eq(resp.as_bytes(), want.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `k="v", k2=v2` pairs (quotes removed; commas inside quotes kept).
fn digest_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let after = after.trim_start();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.push((k.trim().to_owned(), v.to_owned()));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            user: "pub".into(),
            password: "secret".into(),
        }
    }

    #[test]
    fn digest_as_ffmpeg_answers_it() {
        let nonce = "abc123";
        let uri = "rtsp://127.0.0.1:8554/live/cam";
        let ha1 = md5_hex("pub:edgerec:secret");
        let ha2 = md5_hex(&format!("ANNOUNCE:{uri}"));
        let resp = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
        let h = format!("Digest username=\"pub\", realm=\"edgerec\", nonce=\"abc123\", uri=\"{uri}\", response=\"{resp}\"");
        assert!(verify(&h, &creds(), "ANNOUNCE", nonce));
        assert!(!verify(&h, &creds(), "SETUP", nonce), "method is bound");
        assert!(!verify(&h, &creds(), "ANNOUNCE", "other"), "nonce is bound");
        let wrong = Credentials {
            password: "nope".into(),
            ..creds()
        };
        assert!(!verify(&h, &wrong, "ANNOUNCE", nonce));
    }

    #[test]
    fn basic_and_garbage() {
        let b = base64::engine::general_purpose::STANDARD.encode("pub:secret");
        assert!(verify(&format!("Basic {b}"), &creds(), "SETUP", "n"));
        assert!(!verify("Basic !!!", &creds(), "SETUP", "n"));
        assert!(!verify("Digest", &creds(), "SETUP", "n"));
        assert!(!verify(
            "Digest username=\"pub\", uri=",
            &creds(),
            "SETUP",
            "n"
        ));
        assert!(!verify("", &creds(), "SETUP", "n"));
    }
}
