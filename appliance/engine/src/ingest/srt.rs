//! MPEG-TS over SRT, on a shard: a listener that takes callers (each a feed, named
//! by its stream id or the input's `stream`), or a caller that pulls from a remote
//! listener and reconnects with backoff. SRT itself (handshake, retransmission,
//! latency window, AES) is srt-tokio's; what comes out is TS for [`Feed`].
//!
//! srt-protocol 0.4.4 panics (`unimplemented!`) in its handshake task on a few
//! mismatches instead of refusing: a caller that encrypts, without announcing a key
//! size, to an input without passphrase; a malformed key-material extension. The
//! other mismatches are refused here before the handshake goes on, and a listener
//! whose task died is started again on the same port (accepted connections are
//! separate tasks and keep recording).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use srt_protocol::packet::CoreRejectReason;
use srt_protocol::settings::KeySettings;
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::options::{ByteCount, KeySize, Passphrase, SocketOptions, StreamId};
use srt_tokio::{SrtListener, SrtSocket};
use tokio::sync::watch;
use tracing::{info, warn, Instrument};

use super::publication::next_command;
use super::ts::Feed;
use crate::config::{check_stream_name, TsInput};
use crate::Shared;

const DEFAULT_LATENCY: Duration = Duration::from_millis(120);

/// srt-tokio asks for a 64 KiB receive buffer, and a listener takes every caller's
/// datagrams on one socket: at 200 feeds (62 MB/s) that is about a millisecond of
/// traffic, and what overflows comes back only by retransmission, if within the
/// latency. With it the kernel dropped 29 000–49 000 datagrams in each 6 s bench
/// run at 200 feeds, and 89–1270 frames were lost; with
/// [`super::UDP_RECV_BUFFER`], as every other UDP ingest asks, none (2026-12-07).
fn ask_udp_buffer(options: &mut SocketOptions) {
    options.connect.udp_recv_buffer_size = ByteCount(super::UDP_RECV_BUFFER as u64);
}
/// AES-128 when calling with a passphrase (libsrt's default).
const KEY_SIZE: u16 = 16;

/// Serves an SRT input until `stop`: listener if it has a pre-bound socket,
/// caller otherwise.
pub async fn serve(
    shared: Arc<Shared>,
    input: TsInput,
    socket: Option<std::net::UdpSocket>,
    stop: watch::Receiver<bool>,
) {
    match (socket, input.connect) {
        (Some(socket), _) => {
            let span = tracing::info_span!("srt", listen = %input.listen);
            listen(shared, input, socket, stop).instrument(span).await
        }
        (None, Some(remote)) => {
            let span = tracing::info_span!("srt", connect = %remote, stream = %input.stream);
            call(shared, input, remote, stop).instrument(span).await
        }
        (None, None) => warn!(listen = %input.listen, "SRT input with neither socket nor remote"),
    }
}

/// The stream a caller publishes: from its stream id (`app/name`,
/// `publish:app/name`, or the SRT access-control form `#!::r=app/name,m=publish`),
/// else the input's default. `Err` for a stream id that names no valid stream or
/// asks to play.
pub fn stream_name(streamid: Option<&str>, default: &str) -> Result<String, String> {
    let Some(id) = streamid.filter(|s| !s.is_empty()) else {
        return Ok(default.to_owned());
    };
    let name = if let Some(kv) = id.strip_prefix("#!::") {
        let mut resource = None;
        for pair in kv.split(',') {
            match pair.split_once('=') {
                Some(("r", v)) => resource = Some(v),
                Some(("m", m)) if m != "publish" => {
                    return Err(format!(
                        "stream id {id:?} asks for mode {m:?}; only publish is served"
                    ))
                }
                _ => {}
            }
        }
        resource.ok_or_else(|| format!("stream id {id:?} names no resource (r=)"))?
    } else if let Some(rest) = id.strip_prefix("publish:") {
        rest
    } else if id.starts_with("read:") {
        return Err(format!(
            "stream id {id:?} asks to read; only publish is served"
        ));
    } else {
        id
    };
    check_stream_name(name)?;
    Ok(name.to_owned())
}

async fn listen(
    shared: Arc<Shared>,
    input: TsInput,
    socket: std::net::UdpSocket,
    mut stop: watch::Receiver<bool>,
) {
    // The startup bind proved the port is ours; srt-tokio binds it again itself, so
    // that the listener can be restarted on the same address.
    drop(socket);
    let mut backoff = Duration::from_millis(200);
    loop {
        let started = tokio::time::Instant::now();
        let bound = SrtListener::builder()
            .latency(input.latency.map_or(DEFAULT_LATENCY, |l| l.0))
            .set(ask_udp_buffer)
            .bind(input.listen)
            .await;
        match bound {
            Ok((_listener, mut incoming)) => {
                info!("SRT listening");
                loop {
                    tokio::select! {
                        req = incoming.incoming().next() => match req {
                            Some(req) => admit(&shared, &input, req, &stop).await,
                            None => break,
                        },
                        _ = stop.changed() => return,
                    }
                }
                // srt-tokio's listener task ended (it panics on some malformed
                // handshakes): connections already accepted keep running; the
                // port is served again.
                warn!("SRT listener stopped; restarting it");
            }
            Err(e) => warn!(error = %e, retry_in = ?backoff, "SRT listener did not start"),
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(200);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Accepts or refuses one caller. Encryption is agreed here, per caller, so a key
/// size or presence mismatch is refused with a reason instead of reaching
/// srt-protocol's handshake code, which does not handle those cases.
async fn admit(
    shared: &Arc<Shared>,
    input: &TsInput,
    req: srt_tokio::ConnectionRequest,
    stop: &watch::Receiver<bool>,
) {
    let remote = req.remote();
    let id = req.stream_id().map(|s: &StreamId| s.to_string());
    let (name, key) = match decide(shared, input, id.as_deref(), req.key_size()) {
        Ok(d) => d,
        Err((why, reason)) => {
            warn!(%remote, streamid = id.as_deref().unwrap_or(""), "refused: {why}");
            let _ = req.reject(reason).await;
            return;
        }
    };
    match req.accept(key).await {
        Ok(socket) => {
            let (shared, stop) = (shared.clone(), stop.clone());
            let span = tracing::info_span!("conn", %remote, stream = %name);
            tokio_uring::spawn(
                async move {
                    let reason = feed(&shared, socket, name, remote, stop).await;
                    info!(reason, "SRT connection closed");
                }
                .instrument(span),
            );
        }
        // The handshake refused it (wrong or missing passphrase, key mismatch).
        Err(e) => warn!(%remote, error = %e, "SRT handshake failed"),
    }
}

/// The stream and key settings for a caller, or why and how it is refused.
fn decide(
    shared: &Shared,
    input: &TsInput,
    streamid: Option<&str>,
    key_size: KeySize,
) -> Result<(String, Option<KeySettings>), (String, RejectReason)> {
    let name = stream_name(streamid, &input.stream)
        .map_err(|why| (why, ServerRejectReason::BadRequest.into()))?;
    let key = match (&input.passphrase, key_size) {
        (None, KeySize::Unspecified) => None,
        (None, _) => {
            let why = "the caller encrypts but this input has no passphrase";
            return Err((why.into(), CoreRejectReason::Unsecure.into()));
        }
        // The caller's key size as announced (unspecified unless it set pbkeylen);
        // a caller without encryption is refused by the handshake ("unsecure").
        (Some(p), key_size) => {
            let passphrase = Passphrase::try_from(p.clone()).map_err(|e| {
                (
                    format!("passphrase: {e}"),
                    CoreRejectReason::BadSecret.into(),
                )
            })?;
            Some(KeySettings {
                key_size,
                passphrase,
            })
        }
    };
    if shared.registry.get(&name).is_some() {
        let why = format!("stream {name} is already being published");
        return Err((why, ServerRejectReason::Conflict.into()));
    }
    Ok((name, key))
}

async fn call(
    shared: Arc<Shared>,
    input: TsInput,
    remote: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut builder = SrtSocket::builder()
            .local(input.listen)
            .latency(input.latency.map_or(DEFAULT_LATENCY, |l| l.0))
            .set(ask_udp_buffer);
        if let Some(p) = &input.passphrase {
            builder = builder.encryption(KEY_SIZE, p.clone());
        }
        let connect = builder.call(remote, input.streamid.as_deref());
        let socket = tokio::select! {
            r = tokio::time::timeout(Duration::from_secs(10), connect) => r,
            _ = stop.changed() => return,
        };
        match socket {
            Ok(Ok(socket)) => {
                info!("SRT connected");
                backoff = Duration::from_millis(500);
                let reason =
                    feed(&shared, socket, input.stream.clone(), remote, stop.clone()).await;
                info!(reason, "SRT connection closed");
                if reason == "shutdown" {
                    return;
                }
            }
            Ok(Err(e)) => warn!(error = %e, retry_in = ?backoff, "SRT call failed"),
            Err(_) => warn!(retry_in = ?backoff, "SRT call timed out"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Records one SRT connection; returns why it ended.
async fn feed(
    shared: &Arc<Shared>,
    mut socket: SrtSocket,
    name: String,
    remote: SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> &'static str {
    let Some(f) = Feed::open(shared, name, "mpegts-srt", remote).await else {
        let _ = socket.close_and_finish().await;
        return "refused";
    };
    let mut feed = Some(f);
    let idle = shared.config.mpegts.idle_timeout.0;
    let reason = loop {
        tokio::select! {
            msg = socket.next() => match msg {
                Some(Ok((_, data))) => match feed.as_mut() {
                    Some(f) => f.input(&data).await,
                    None => break "shutdown",
                },
                Some(Err(e)) => {
                    warn!(error = %e, "SRT receive failed");
                    break "receive error";
                }
                None => break "disconnected",
            },
            Some(cmd) = next_command(feed.as_mut().map(|f| f.publication())) => {
                if let Some(f) = feed.as_mut() {
                    if f.on_command(cmd).await {
                        feed = None;
                        break "shutdown";
                    }
                }
            }
            _ = tokio::time::sleep(idle) => break "idle",
            _ = stop.changed() => break "shutdown",
        }
    };
    if let Some(f) = feed {
        f.end(reason).await;
    }
    let _ = socket.close_and_finish().await;
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids() {
        assert_eq!(stream_name(None, "live/default").unwrap(), "live/default");
        assert_eq!(
            stream_name(Some(""), "live/default").unwrap(),
            "live/default"
        );
        assert_eq!(stream_name(Some("cams/one"), "x/y").unwrap(), "cams/one");
        assert_eq!(
            stream_name(Some("publish:cams/two"), "x/y").unwrap(),
            "cams/two"
        );
        assert_eq!(
            stream_name(Some("#!::u=alice,r=cams/three,m=publish"), "x/y").unwrap(),
            "cams/three"
        );
        for bad in [
            "#!::r=cams/x,m=request",
            "read:cams/x",
            "#!::u=bob",
            "../etc",
            "a/b/c",
        ] {
            assert!(stream_name(Some(bad), "x/y").is_err(), "{bad}");
        }
    }
}
