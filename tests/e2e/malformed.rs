//! Malformed input ends only its own connection, says why and where, and touches
//! nothing else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use edgerec_e2e::*;
use edgerec_rtmp::amf0::{self, Amf0Value};
use edgerec_rtmp::chunk::ChunkEncoder;

fn connect(d: &Daemon) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", d.rtmp)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

/// A client past the handshake.
fn handshaken(d: &Daemon) -> TcpStream {
    let mut s = connect(d);
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(0x5a, 1536));
    s.write_all(&c0c1).unwrap();
    let mut s0s1s2 = vec![0u8; 3073];
    s.read_exact(&mut s0s1s2).unwrap();
    s.write_all(&s0s1s2[1..1537]).unwrap();
    s
}

fn message(type_id: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    ChunkEncoder::default().write(&mut out, 3, 0, type_id, 0, payload);
    out.to_vec()
}

fn connect_command() -> Vec<u8> {
    let mut p = BytesMut::new();
    for v in [
        Amf0Value::String("connect".into()),
        Amf0Value::Number(1.0),
        amf0::object([("app", Amf0Value::String("live".into()))]),
    ] {
        amf0::encode(&mut p, &v);
    }
    message(20, &p)
}

/// Reads until the server closes; panics if it does not within the timeout.
fn assert_closed(mut s: TcpStream, what: &str) {
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!(
                "{what}: connection not closed ({e}) after {:?}",
                t.elapsed()
            ),
        }
    }
}

#[test]
fn malformed_input_closes_only_that_connection() {
    let _g = serial();
    let src = source(10, 25);
    let want = probe(&src);
    let d = Daemon::start(&[("EDGEREC_RTMP__HANDSHAKE_TIMEOUT", "2s")]);
    // A good publisher runs throughout.
    let good = publish(&src, &d.rtmp_url("live/good"));
    std::thread::sleep(Duration::from_secs(1));

    // Random bytes.
    let mut s = connect(&d);
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x80)
        .collect();
    s.write_all(&noise).unwrap();
    assert_closed(s, "random bytes");

    // A truncated handshake: the client stops after 500 bytes and waits.
    let mut s = connect(&d);
    let mut partial = vec![3u8];
    partial.extend([0u8; 499]);
    s.write_all(&partial).unwrap();
    assert_closed(s, "truncated handshake");
    // And one that just hangs up mid-handshake.
    let mut s = connect(&d);
    s.write_all(&partial).unwrap();
    drop(s);

    // Chunk size 0 and 2^31.
    for size in [0u32, 1 << 31] {
        let mut s = handshaken(&d);
        s.write_all(&connect_command()).unwrap();
        let mut set = BytesMut::new();
        ChunkEncoder::default().write(&mut set, 2, 0, 1, 0, &size.to_be_bytes());
        s.write_all(&set).unwrap();
        assert_closed(s, &format!("chunk size {size}"));
    }

    // A message length over the limit (the 24-bit maximum).
    let mut s = handshaken(&d);
    let mut h = BytesMut::new();
    h.put_u8(0x04);
    h.put_uint(0, 3);
    h.put_uint(0x00ff_ffff, 3);
    h.put_u8(9);
    h.put_u32_le(1);
    s.write_all(&h).unwrap();
    assert_closed(s, "oversized message");

    // Deeply nested AMF.
    let mut s = handshaken(&d);
    let mut p = BytesMut::new();
    amf0::encode(&mut p, &Amf0Value::String("connect".into()));
    amf0::encode(&mut p, &Amf0Value::Number(1.0));
    for _ in 0..200 {
        p.put_u8(0x03);
        p.put_u16(1);
        p.put_u8(b'a');
    }
    s.write_all(&message(20, &p)).unwrap();
    assert_closed(s, "deep AMF");

    // Huge AMF: an array of 200000 values.
    let mut s = handshaken(&d);
    let mut p = BytesMut::new();
    amf0::encode(&mut p, &Amf0Value::String("connect".into()));
    amf0::encode(&mut p, &Amf0Value::Number(1.0));
    p.put_u8(0x0a);
    p.put_u32(200_000);
    p.put_bytes(0x05, 200_000);
    s.write_all(&message(20, &p)).unwrap();
    assert_closed(s, "huge AMF");

    // The daemon is healthy and the good recording is whole.
    let (ok, err) = finish(good);
    assert!(ok, "good publisher: {err}");
    assert_eq!(d.api("GET", "/v1/health", None).0, 200);
    let rec = d
        .wait_for(Duration::from_secs(3), |d| {
            d.recordings("?stream=live/good&state=finalized")
                .into_iter()
                .next()
        })
        .expect("good recording finalized");
    let got = probe(&part_file(&d, &rec, 1));
    assert_eq!(got.stream("h264").packets, want.stream("h264").packets);
    assert_eq!(got.stream("aac").packets, want.stream("aac").packets);
    assert_eq!(
        d.recordings("").len(),
        1,
        "no recording for the bad connections"
    );

    // Each closed with a reason that says where.
    let log = d.log();
    for reason in [
        "handshake: unsupported RTMP version",
        "no publish within 2s",
        "invalid chunk size 0 (valid: 1..=2147483647) at byte",
        "invalid chunk size 2147483648 (valid: 1..=2147483647) at byte",
        "message length 16777215 exceeds the limit of 8388608 bytes at byte 3073, chunk stream 4",
        "AMF0 nesting deeper than 16 at payload offset",
        "more than 4096 AMF0 values at payload offset",
    ] {
        assert!(log.contains(reason), "log lacks {reason:?}:\n{log}");
    }
    assert!(!log.contains("panicked"));
}

/// Garbage on the RTSP port and into a relayed RTP session's port: the RTSP
/// connection is closed with the byte offset logged, the RTP session drops the
/// datagrams (counted, logged) and lives on, and an RTSP publish running at the
/// same time records every frame.
#[test]
fn garbage_to_rtsp_and_rtp_touches_nothing_else() {
    let _g = serial();
    let rtsp = free_port();
    let config = format!(
        "[rtsp]\nlisten = \"127.0.0.1:{rtsp}\"\n[rtp]\nlisten_ip = \"127.0.0.1\"\nport_min = 41300\nport_max = 41399\n"
    );
    let d = Daemon::start_with_config(&config, &[]);
    let src = source(6, 25);
    let ff = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-i"])
        .arg(&src)
        .args(["-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp"])
        .arg(format!("rtsp://127.0.0.1:{rtsp}/push/ok"))
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let mut s = TcpStream::connect(("127.0.0.1", rtsp)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"OPTIONS rtsp://x/a RTSP/1.0\r\nCSeq: 1\r\n\r\n\x00\x01\x02 garbage\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert!(
        String::from_utf8_lossy(&reply).starts_with("RTSP/1.0 200"),
        "OPTIONS answered first"
    );

    let (status, session) = d.api(
        "POST",
        "/v1/rtp-sessions",
        Some(serde_json::json!({"stream": "sfu/junk", "tracks": [{"codec": "h264", "payload_type": 96}]})),
    );
    assert_eq!(status, 201, "{session}");
    let port = session["tracks"][0]["rtp_port"].as_u64().unwrap() as u16;
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for junk in [
        &b"\x80"[..],
        b"\x80\x60\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x1c",
        b"\x40\x60garbage garbage",
        &[0xff; 1400],
    ] {
        u.send_to(junk, ("127.0.0.1", port)).unwrap();
    }
    let counters = d.wait_for(Duration::from_secs(5), |d| {
        let s = d.get("/v1/streams/sfu/junk");
        (s["counters"]["frames_dropped"].as_u64()? >= 3).then_some(s)
    });
    assert!(counters.is_some(), "{}\n{}", d.get("/v1/streams"), d.log());

    let (ok, err) = finish(ff);
    assert!(ok, "ffmpeg: {err}");
    let rec = finalized(&d, "push/ok", Duration::from_secs(10));
    let got = probe(&part_file(&d, &rec, 1));
    assert_eq!(
        got.stream("h264").packets,
        probe(&src).stream("h264").packets
    );
    let log = d.log();
    assert!(log.contains("malformed RTSP message at byte 40"), "{log}");
    assert!(
        log.contains("shorter than its header") && log.contains("RTP version 1"),
        "{log}"
    );
    // The RTP session is still there.
    let id = session["id"].as_str().unwrap();
    assert_eq!(
        d.get(&format!("/v1/rtp-sessions/{id}"))["stream"],
        "sfu/junk"
    );
}
