//! RTSP push: publishers ANNOUNCE a stream (its URL path is the stream name),
//! SETUP each track over TCP interleaved or UDP, and RECORD. The protocol is
//! [`edgerec_rtsp::ServerSession`]; the media goes through the same
//! [`edgerec_rtp::RtpSession`] as relayed RTP. A connection's end (TEARDOWN,
//! close, idle, shutdown) finalizes its recording.
//!
//! The connection is a tokio (epoll) socket: RTSP push is one long-lived TCP
//! connection per feed with small requests; its media over UDP uses the
//! [`rtp_feed`](super::rtp_feed) sockets, which must close the moment the feed ends.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use edgerec_rtp::{RtpSession, SessionOptions};
use edgerec_rtsp::auth::Credentials;
use edgerec_rtsp::{Action, ServerSession, TransportChoice};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tracing::{info, warn, Instrument};
use ulid::Ulid;

use super::publication::{next_command, Origin, Publication};
use super::rtp_feed::{bind, sleep_until, Datagram, Receivers, RtpFeed};
use crate::config::check_stream_name;
use crate::registry::StreamCommand;
use crate::Shared;

/// Accepts publishers on this shard's listener until `stop`.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return warn!(error = %e, "RTSP listener"),
    };
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((socket, peer)) => {
                    let span = tracing::info_span!("rtsp-push", %peer);
                    tokio_uring::spawn(connection(shared.clone(), socket, peer, stop.clone()).instrument(span));
                }
                Err(e) => {
                    warn!(error = %e, "RTSP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

/// After a TEARDOWN, UDP media is still taken until the ports have been quiet
/// this long…
const TEARDOWN_QUIET: Duration = Duration::from_millis(100);
/// …or this long after the TEARDOWN at most.
const TEARDOWN_LINGER: Duration = Duration::from_secs(1);

struct Live {
    publication: Publication,
    feed: Option<RtpFeed>,
    /// Announced track index → recorded track index, once RECORD came.
    recorded: Vec<Option<usize>>,
    /// Per recorded track: where its RTCP goes (UDP) or its channel (TCP).
    transports: Vec<TransportChoice>,
}

impl Live {
    /// Feeds one UDP datagram to the session under its recorded track.
    fn handle_datagram(&mut self, d: Datagram) {
        self.publication.count_bytes(d.data.len() as u64);
        let now = Instant::now();
        if let (Some(f), Some(Some(t))) = (self.feed.as_mut(), self.recorded.get(d.track)) {
            if d.rtcp_port {
                f.session.handle_rtcp(*t, &d.data, now);
            } else {
                f.session.handle_rtp(*t, d.data, now);
            }
        }
    }
}

async fn connection(
    shared: Arc<Shared>,
    mut socket: tokio::net::TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    let c = &shared.config.rtsp;
    let creds = c
        .publish_user
        .clone()
        .zip(c.publish_password.clone())
        .map(|(user, password)| Credentials { user, password });
    let session_id = Ulid::new().to_string();
    let mut server = ServerSession::new(
        creds,
        Ulid::new().to_string().to_lowercase(),
        session_id.clone(),
    );
    let mut live: Option<Live> = None;
    let mut udp = Receivers::new();
    let mut buf = vec![0u8; 64 * 1024];
    let idle = shared.config.rtmp.idle_timeout.0;
    let mut last_data = Instant::now();
    let reason: &'static str = 'conn: loop {
        let deadline = live
            .as_ref()
            .and_then(|l| l.feed.as_ref())
            .and_then(|f| f.session.poll_timeout());
        tokio::select! {
            r = socket.read(&mut buf) => match r {
                Ok(0) => break "disconnected",
                Ok(n) => {
                    last_data = Instant::now();
                    shared.metrics.bytes_received_total.fetch_add(n as u64, Relaxed);
                    if let Some(l) = live.as_mut() {
                        l.publication.count_bytes(n as u64);
                    }
                    server.handle_input(&buf[..n]);
                }
                Err(e) => {
                    info!(error = %e, "read failed");
                    break "disconnected";
                }
            },
            Some(d) = udp.recv() => {
                last_data = Instant::now();
                if let Some(l) = live.as_mut() {
                    l.handle_datagram(d);
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                if let Some(f) = live.as_mut().and_then(|l| l.feed.as_mut()) {
                    f.session.handle_timeout(Instant::now());
                }
            }
            Some(cmd) = next_command(live.as_mut().map(|l| &mut l.publication)) => {
                if let Some(l) = live.as_mut() {
                    if matches!(cmd, StreamCommand::Shutdown { .. }) {
                        for d in udp.take_queued() {
                            l.handle_datagram(d);
                        }
                    }
                    let done = match l.feed.as_mut() {
                        Some(f) => f.on_command(&mut l.publication, cmd).await,
                        None => l.publication.on_command(cmd).await,
                    };
                    if done {
                        // Shutdown: the publication has ended.
                        return;
                    }
                }
            }
            _ = tokio::time::sleep_until((last_data + idle).into()) => break "idle",
            _ = stop.changed() => break "shutdown",
        }
        // What the protocol wants done.
        while let Some(a) = server.poll_action() {
            match a {
                Action::Send(b) => {
                    if socket.write_all(&b).await.is_err() {
                        break 'conn "disconnected";
                    }
                }
                Action::Announce { path } => {
                    let r = match check_stream_name(&path) {
                        Err(e) => Err(format!("stream name {path:?}: {e}")),
                        Ok(()) => {
                            let origin = Origin {
                                protocol: "rtsp-push",
                                remote: peer,
                                session_id: session_id.clone(),
                            };
                            match Publication::open(&shared, path.clone(), origin).await {
                                Some(p) => {
                                    live = Some(Live {
                                        publication: p,
                                        feed: None,
                                        recorded: Vec::new(),
                                        transports: Vec::new(),
                                    });
                                    Ok(())
                                }
                                None => Err(format!("stream {path} is already live")),
                            }
                        }
                    };
                    server.announce_result(r);
                }
                Action::SetupUdp { track, .. } => {
                    let r = bind(&shared, 1, false)
                        .map_err(|e| e.to_string())
                        .and_then(|mut p| {
                            let ports = p.pop().ok_or("no ports")?;
                            let rtp = ports.rtp.local_addr().map_err(|e| e.to_string())?.port();
                            let rtcp = ports
                                .rtcp
                                .as_ref()
                                .and_then(|s| s.local_addr().ok())
                                .map_or(rtp + 1, |a| a.port());
                            udp.add(track, ports).map_err(|e| e.to_string())?;
                            Ok((rtp, rtcp))
                        });
                    server.setup_udp_result(r);
                }
                Action::Record { tracks } => {
                    let Some(l) = live.as_mut() else { continue };
                    let tcp_only = tracks
                        .iter()
                        .all(|(_, c)| matches!(c, TransportChoice::Interleaved { .. }));
                    let options = SessionOptions {
                        // TCP does not reorder; UDP gets the configured wait.
                        jitter_delay: if tcp_only {
                            std::time::Duration::ZERO
                        } else {
                            shared.config.rtp.jitter.0
                        },
                        ..Default::default()
                    };
                    let specs = tracks.iter().map(|(t, _)| t.spec.clone()).collect();
                    match RtpSession::new(specs, options) {
                        Ok(s) => {
                            l.feed = Some(RtpFeed::new(s));
                            // UDP receivers were registered under the announced index.
                            let announced = server.announced_tracks();
                            l.recorded = vec![None; announced];
                            for (i, (t, _)) in tracks.iter().enumerate() {
                                if let Some(a) = server.announced_index(&t.control) {
                                    l.recorded[a] = Some(i);
                                }
                            }
                            l.transports = tracks.iter().map(|(_, c)| *c).collect();
                            info!(stream = %server.path(), tracks = tracks.len(), tcp = tcp_only, "recording");
                        }
                        Err(e) => {
                            warn!(error = %e, "RECORD with tracks that cannot be received");
                            break 'conn "unsupported";
                        }
                    }
                }
                Action::Rtp { track, data } => {
                    if let Some(f) = live.as_mut().and_then(|l| l.feed.as_mut()) {
                        f.session.handle_rtp(track, data, Instant::now());
                    }
                }
                Action::Rtcp { track, data } => {
                    if let Some(f) = live.as_mut().and_then(|l| l.feed.as_mut()) {
                        f.session.handle_rtcp(track, &data, Instant::now());
                    }
                }
                Action::Teardown => break 'conn "teardown",
                Action::Close { reason } => {
                    warn!(offset = server.offset(), stream = %server.path(), "{reason}");
                    break 'conn "error";
                }
            }
        }
        // Frames to the recorder, RTCP back to the publisher.
        if let Some(l) = live.as_mut() {
            if let Some(f) = l.feed.as_mut() {
                f.drain(&mut l.publication, &mut []).await;
                while let Some(t) = f.session.poll_transmit() {
                    match l.transports.get(t.track) {
                        Some(TransportChoice::Interleaved { rtcp_channel, .. }) => {
                            let mut b = BytesMut::with_capacity(4 + t.data.len());
                            b.put_u8(b'$');
                            b.put_u8(*rtcp_channel);
                            b.put_u16(t.data.len() as u16);
                            b.extend_from_slice(&t.data);
                            if socket.write_all(&b).await.is_err() {
                                break 'conn "disconnected";
                            }
                        }
                        Some(TransportChoice::Udp { client_rtcp, .. }) => {
                            let announced = l.recorded.iter().position(|r| *r == Some(t.track));
                            if let Some(a) = announced {
                                udp.send(a, &t.data, SocketAddr::new(peer.ip(), *client_rtcp))
                                    .await;
                            }
                        }
                        None => {}
                    }
                }
            }
        }
    };
    if server.unknown_channel_packets() > 0 {
        info!(
            packets = server.unknown_channel_packets(),
            "interleaved packets on channels no SETUP named"
        );
    }
    if reason == "teardown" && !udp.is_empty() {
        // The publisher sent its last packets just before TEARDOWN; over UDP
        // they may still sit in the socket buffers or be in flight.
        if let Some(l) = live.as_mut() {
            while let Some(d) = udp.linger(TEARDOWN_QUIET, TEARDOWN_LINGER).await {
                l.handle_datagram(d);
            }
        }
    }
    match live {
        Some(Live {
            publication,
            feed: Some(f),
            ..
        }) => f.finish(publication, reason).await,
        Some(Live { publication, .. }) => publication.end(reason).await,
        None => info!(reason, "connection ended before ANNOUNCE"),
    }
    drop(udp);
}
