//! RTMPS: ffmpeg publishes over TLS (rtmps://) to the TLS listener with a
//! certificate made by openssl; the recording holds every frame. A plain-RTMP
//! client on the TLS port is refused by the handshake and records nothing.

use std::process::Command;
use std::time::Duration;

use edgerec_e2e::*;

#[test]
fn ffmpeg_over_tls_records_every_frame() {
    let _g = serial();
    let dir = scratch().join(format!("tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let port = free_port();
    let config = format!(
        "[rtmp]\ntls_listen = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let d = Daemon::start_with_config(&config, &[]);
    let src = source(6, 25);

    // Plain RTMP to the TLS port: the TLS handshake fails, nothing is published.
    let (ok, _) = finish(publish(
        &src,
        &format!("rtmp://127.0.0.1:{port}/live/plain"),
    ));
    assert!(!ok);

    let (ok, err) = finish(publish(&src, &format!("rtmps://127.0.0.1:{port}/live/tls")));
    assert!(ok, "ffmpeg rtmps: {err}");
    let rec = finalized(&d, "live/tls", Duration::from_secs(10));
    assert_eq!(rec["protocol"], "rtmps");
    assert_every_frame(&d, &rec, &src, &["h264", "aac"], 0.05);
    assert!(d.recordings("?stream=live/plain").is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
