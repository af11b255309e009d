//! The SDP of an ANNOUNCE to track specs: one per `m=` line, with its control URL
//! (what SETUP names it by), payload type, codec, clock rate and fmtp.
//!
//! Hand-written, line by line: `sdp-types` 0.1.8 asserts on some malformed
//! media sections (a panic on network input, found by the fuzz target), and a
//! publisher's SDP needs only `m=`, `a=rtpmap`, `a=fmtp` and `a=control`.

use edgerec_media::Codec;
use edgerec_rtp::TrackSpec;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnouncedTrack {
    /// `a=control` (`streamid=0`, `stream=1`, or an absolute URL).
    pub control: String,
    pub spec: TrackSpec,
}

/// Parses the SDP; a media section with a codec we cannot record is an error
/// naming it (the publisher learns at ANNOUNCE, not after a silent recording).
/// One `m=` line: media type, first format, its `a=key:value` attributes.
type Section<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

pub fn tracks(sdp: &[u8]) -> Result<Vec<AnnouncedTrack>, String> {
    let text = std::str::from_utf8(sdp).map_err(|_| "SDP is not UTF-8".to_owned())?;
    if !text.trim_start().starts_with("v=0") {
        return Err("SDP does not start with v=0".into());
    }
    let mut sections: Vec<Section> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            let mut f = m.split_whitespace();
            let media = f.next().unwrap_or("");
            let fmt = f.nth(2).unwrap_or("");
            sections.push((media, fmt, Vec::new()));
        } else if let (Some(a), Some(sec)) = (line.strip_prefix("a="), sections.last_mut()) {
            let (k, v) = a.split_once(':').unwrap_or((a, ""));
            sec.2.push((k, v));
        }
    }
    let mut out = Vec::new();
    for (i, (media, fmt, attrs)) in sections.iter().enumerate() {
        if *media != "video" && *media != "audio" {
            continue;
        }
        let pt: u8 = fmt
            .parse()
            .ok()
            .filter(|p| *p < 128)
            .ok_or_else(|| format!("m={media}: no payload type"))?;
        // The value of `a=<key>:<pt> <rest>` for our payload type.
        let for_pt = |key: &str| {
            attrs.iter().filter(|(k, _)| *k == key).find_map(|(_, v)| {
                let (p, rest) = v.split_once(' ')?;
                (p.trim() == pt.to_string()).then(|| rest.trim())
            })
        };
        let (name, rate, channels) = match for_pt("rtpmap") {
            Some(enc) => {
                let mut parts = enc.split('/');
                let name = parts.next().unwrap_or("").to_ascii_uppercase();
                let rate = parts.next().and_then(|r| r.parse().ok());
                let channels = parts.next().and_then(|c| c.parse().ok());
                (name, rate, channels)
            }
            // Static payload types (RFC 3551).
            None => match pt {
                0 => ("PCMU".into(), Some(8000), Some(1)),
                8 => ("PCMA".into(), Some(8000), Some(1)),
                _ => return Err(format!("m={media}: payload type {pt} has no rtpmap")),
            },
        };
        let codec = match name.as_str() {
            "H264" => Codec::H264,
            "OPUS" => Codec::Opus,
            "MPEG4-GENERIC" => Codec::Aac,
            "PCMU" => Codec::Pcmu,
            "PCMA" => Codec::Pcma,
            other => return Err(format!("m={media}: {other} is not supported over RTSP yet")),
        };
        let control = attrs
            .iter()
            .find(|(k, _)| *k == "control")
            .map(|(_, v)| v.trim().to_owned())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| format!("trackID={i}"));
        out.push(AnnouncedTrack {
            control,
            spec: TrackSpec {
                codec,
                payload_type: pt,
                clock_rate: rate.filter(|r| *r > 0).unwrap_or(90_000),
                channels,
                fmtp: for_pt("fmtp").map(str::to_owned),
                ssrc: None,
            },
        });
    }
    if out.is_empty() {
        return Err("SDP has no audio or video".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ffmpeg 5.1 ANNOUNCEs for H.264 + AAC.
    const FFMPEG: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\na=tool:libavformat 59.27.100\r\nm=video 0 RTP/AVP 96\r\nb=AS:1000\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QAHqzZQKAv+XARAAADAAEAAAMAMg8WLZY=,aO+8sA==; profile-level-id=64001E\r\na=control:streamid=0\r\nm=audio 0 RTP/AVP 97\r\nb=AS:96\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\na=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=121056E500\r\na=control:streamid=1\r\n";

    #[test]
    fn ffmpeg_announce() {
        let t = tracks(FFMPEG.as_bytes()).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].control, "streamid=0");
        assert_eq!(t[0].spec.codec, Codec::H264);
        assert_eq!(t[0].spec.payload_type, 96);
        assert!(t[0]
            .spec
            .fmtp
            .as_deref()
            .unwrap()
            .contains("sprop-parameter-sets"));
        assert_eq!(t[1].spec.codec, Codec::Aac);
        assert_eq!(
            (t[1].spec.clock_rate, t[1].spec.channels),
            (44_100, Some(2))
        );
        assert!(t[1]
            .spec
            .fmtp
            .as_deref()
            .unwrap()
            .contains("config=121056E500"));
    }

    #[test]
    fn camera_with_g711_on_a_static_payload_type() {
        let sdp = FFMPEG
            .replace("m=audio 0 RTP/AVP 97", "m=audio 0 RTP/AVP 8")
            .replace("a=rtpmap:97 MPEG4-GENERIC/44100/2\r\n", "");
        let t = tracks(sdp.as_bytes()).unwrap();
        assert_eq!(
            (
                t[1].spec.codec,
                t[1].spec.clock_rate,
                t[1].spec.payload_type
            ),
            (Codec::Pcma, 8000, 8)
        );
    }

    #[test]
    fn unsupported_and_broken() {
        let theora = FFMPEG.replace("H264/90000", "theora/90000");
        assert!(tracks(theora.as_bytes()).unwrap_err().contains("THEORA"));
        assert!(tracks(b"not sdp").is_err());
        assert!(tracks(b"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=x\r\nt=0 0\r\n").is_err());
    }
}
