//! `edgerec health`: asks the running daemon's health route, for init scripts
//! (the appliance's boot check) and container health checks. Exit 0 when it
//! answers 200. One HTTP/1.0 request over loopback is written by hand: the
//! daemon's own route needs no client library (and the appliance has no curl).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context};

/// The address to ask: the configured listener, with an unspecified address
/// (0.0.0.0, ::) replaced by loopback.
pub fn target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// GET /v1/health on `addr`; Ok when the status is 200.
pub fn check(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    // One buffer, one write: a `write!` straight to the socket is several
    // segments, and a server that answers after the first would reset the rest.
    let request = format!("GET /v1/health HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    s.write_all(request.as_bytes())
        .with_context(|| format!("asking {addr}"))?;
    // The status line decides; the body (its `problems` when stalled) goes
    // into the error. Read until the body is complete or the server closes.
    let mut answer = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while answer.len() < MAX_ANSWER && !complete(&answer) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => answer.extend_from_slice(&buf[..k]),
            // A server that keeps the connection open after a full head.
            Err(_) if answer.windows(4).any(|w| w == b"\r\n\r\n") => break,
            Err(e) => return Err(e).with_context(|| format!("reading {addr}'s answer")),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let line = text.lines().next().unwrap_or("");
    match line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        _ => {
            let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b.trim());
            bail!("{addr} answered {line:?} {body}")
        }
    }
}

/// The most of an answer read: health's body is a few hundred bytes.
const MAX_ANSWER: usize = 16 << 10;

/// Whether `answer` holds a whole response: its head, and as much body as its
/// Content-Length says.
fn complete(answer: &[u8]) -> bool {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&answer[..end]);
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    length.is_some_and(|n| answer.len() >= end + 4 + n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(reply: &'static [u8]) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            // Read the whole request first, as a real server does: closing
            // with unread bytes would reset the connection.
            let mut req = Vec::new();
            let mut buf = [0u8; 256];
            while !req.ends_with(b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => req.extend_from_slice(&buf[..k]),
                }
            }
            let _ = c.write_all(reply);
        });
        addr
    }

    #[test]
    fn unspecified_listeners_are_asked_on_loopback() {
        assert_eq!(
            target("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            target("[::]:80".parse().unwrap()),
            "[::1]:80".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            target("10.0.0.2:80".parse().unwrap()),
            "10.0.0.2:80".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn ok_only_on_200() {
        let t = Duration::from_secs(2);
        assert!(check(serve_once(b"HTTP/1.1 200 OK\r\n\r\nok"), t).is_ok());
        let e = check(
            serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n{\"problems\":[\"shard 1\"]}"),
            t,
        )
        .unwrap_err();
        assert!(e.to_string().contains("503"), "{e}");
        assert!(e.to_string().contains("shard 1"), "{e}");
        assert!(check(serve_once(b""), t).is_err());
    }

    #[test]
    fn an_answer_is_complete_at_its_content_length() {
        assert!(!complete(b"HTTP/1.1 200 OK\r\n"));
        assert!(!complete(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nok"));
        assert!(complete(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
        // Without a length, the server's close ends it.
        assert!(!complete(b"HTTP/1.1 200 OK\r\n\r\nok"));
    }

    #[test]
    fn nothing_listening_is_an_error() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        assert!(check(addr, Duration::from_secs(1)).is_err());
    }
}
