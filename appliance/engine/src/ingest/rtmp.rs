//! One RTMP connection on a shard: socket ⇄ [`ServerSession`], events → registry and
//! recorder. All protocol logic lives in `edgerec-rtmp`; this loop only does I/O,
//! timeouts and bookkeeping.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgerec_rtmp::chunk::ChunkLimits;
use edgerec_rtmp::{Event, ServerConfig, ServerSession};
use tokio_uring::net::TcpStream;
use tracing::{debug, info, warn, Instrument};
use ulid::Ulid;

use super::publication::{next_command, Origin, Publication};
use crate::registry::StreamCommand;
use crate::Shared;

const READ_BUF: usize = 64 * 1024;
/// Bytes a coalesced wait lets gather (read in [`READ_BUF`] pieces back to back):
/// fast feeds are read sooner so the socket buffer, autotuned from 128 KiB, never
/// throttles a publisher. Measured at 200 feeds (bench/README.md, 2026-12-06):
/// gathering 32 KiB (a read every ~100 ms at 2.5 Mbit/s) cost 17% more CPU than
/// 192 KiB (every 500 ms): each wake-up and TCP window update is paid per read.
const READ_TARGET: usize = 192 * 1024;

/// Coalesced reads wake on a shared grid, so one wake-up of the shard serves many
/// connections and submits their reads to the ring together.
const READ_TICK: Duration = Duration::from_millis(10);

/// `t` rounded up to the next [`READ_TICK`] boundary.
fn on_tick(t: tokio::time::Instant) -> tokio::time::Instant {
    static EPOCH: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(tokio::time::Instant::now);
    let since = t.saturating_duration_since(epoch).as_nanos();
    let tick = READ_TICK.as_nanos();
    epoch + Duration::from_nanos((since.div_ceil(tick) * tick) as u64)
}

/// An RTMP connection's byte stream: plain TCP on io_uring, or TLS (RTMPS) on
/// tokio's socket under rustls. Both read into and write from owned buffers, so
/// the session loop is the same.
pub enum Socket {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

impl Socket {
    async fn read(&mut self, mut buf: Vec<u8>) -> (std::io::Result<usize>, Vec<u8>) {
        match self {
            Socket::Plain(s) => s.read(buf).await,
            Socket::Tls(s) => {
                use tokio::io::AsyncReadExt;
                let r = s.read(&mut buf).await;
                (r, buf)
            }
        }
    }

    async fn write_all(&mut self, out: bytes::Bytes) -> std::io::Result<()> {
        match self {
            Socket::Plain(s) => s.write_all(out).await.0,
            Socket::Tls(s) => {
                use tokio::io::AsyncWriteExt;
                s.write_all(&out).await?;
                s.flush().await
            }
        }
    }

    fn shutdown(&mut self) {
        match self {
            Socket::Plain(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            // No read is in flight on a ring: dropping the stream closes it.
            Socket::Tls(_) => {}
        }
    }
}

/// Serves one accepted connection until it closes.
pub async fn serve(shared: Arc<Shared>, socket: TcpStream, peer: SocketAddr) {
    let _ = socket.set_nodelay(true);
    serve_socket(shared, Socket::Plain(socket), peer, "rtmp").await
}

/// Serves one connection (plain or TLS) until it closes.
pub async fn serve_socket(
    shared: Arc<Shared>,
    mut socket: Socket,
    peer: SocketAddr,
    scheme: &'static str,
) {
    let session_id = Ulid::new().to_string();
    let span = tracing::info_span!("rtmp", conn = %session_id, %peer);
    let m = shared.metrics.clone();
    m.connections.fetch_add(1, Relaxed);
    m.connections_total.fetch_add(1, Relaxed);
    let mut conn = Conn::new(shared.clone(), peer, session_id, scheme);
    let r = conn.run(&mut socket).instrument(span.clone()).await;
    // A read may still be in flight on the ring, holding the fd open; shutting the
    // socket down completes it, so the descriptor is really closed.
    socket.shutdown();
    let reason = match &r {
        Ok(reason) => *reason,
        Err(_) => "protocol_error",
    };
    conn.end_publish(reason).instrument(span.clone()).await;
    let _enter = span.enter();
    match r {
        Ok(reason) => info!(
            reason,
            bytes = conn.session.bytes_received(),
            "connection closed"
        ),
        Err(e) => {
            m.connection_errors_total.fetch_add(1, Relaxed);
            warn!(error = %e, "connection closed");
        }
    }
    m.connections.fetch_sub(1, Relaxed);
}

struct Conn {
    shared: Arc<Shared>,
    peer: SocketAddr,
    session_id: String,
    /// `rtmp` or `rtmps`: the protocol the stream is listed under.
    scheme: &'static str,
    session: ServerSession,
    publication: Option<Publication>,
    /// A publish was accepted on this connection (later silence is idleness, not a
    /// handshake that never finished).
    published: bool,
}

/// Why the read loop ended (when not by error).
type EndReason = &'static str;

impl Conn {
    fn new(
        shared: Arc<Shared>,
        peer: SocketAddr,
        session_id: String,
        scheme: &'static str,
    ) -> Conn {
        let r = &shared.config.rtmp;
        let cfg = ServerConfig {
            chunk: ChunkLimits {
                max_message_len: r.max_message_size.0.min(0x00ff_ffff) as u32,
                ..ChunkLimits::default()
            },
            out_chunk_size: r.chunk_size.clamp(128, 65_536),
            ..ServerConfig::default()
        };
        let seed = Ulid::new().random() as u64;
        Conn {
            session: ServerSession::new(cfg, seed),
            shared,
            peer,
            session_id,
            scheme,
            publication: None,
            published: false,
        }
    }

    async fn run(&mut self, socket: &mut Socket) -> Result<EndReason, String> {
        let handshake = self.shared.config.rtmp.handshake_timeout.0;
        let idle = self.shared.config.rtmp.idle_timeout.0;
        let coalesce = self.shared.config.rtmp.read_coalesce.0;
        let mut buf = vec![0u8; READ_BUF];
        // One timer for the whole connection, pushed back lazily: it fires at the old
        // deadline and is re-armed from the last data if data came since.
        let mut last_data = Instant::now();
        let timer = tokio::time::sleep_until((last_data + handshake).into());
        tokio::pin!(timer);
        let mut full = false;
        loop {
            // A live feed's bytes gather in the socket buffer between reads: fewer,
            // larger reads, and the frames of one read go to the recorder together.
            if let Some(wait) = self.coalesce_wait(coalesce).filter(|_| !full) {
                let until = on_tick(tokio::time::Instant::now() + wait);
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => break,
                        Some(cmd) = next_command(self.publication.as_mut()) => {
                            if self.on_command(cmd).await {
                                return Ok("shutdown");
                            }
                        }
                    }
                }
            }
            let (res, b) = {
                let read = socket.read(buf);
                tokio::pin!(read);
                loop {
                    tokio::select! {
                        r = &mut read => break r,
                        Some(cmd) = next_command(self.publication.as_mut()) => {
                            if self.on_command(cmd).await {
                                return Ok("shutdown");
                            }
                        }
                        _ = &mut timer => {
                            let limit = if self.published { idle } else { handshake };
                            if self.published && last_data.elapsed() < limit {
                                timer.as_mut().reset((last_data + limit).into());
                                continue;
                            }
                            if self.published && self.publication.is_none() {
                                return Ok("idle after unpublish");
                            }
                            return Err(if self.publication.is_some() {
                                format!("no data for {}", humantime::format_duration(idle))
                            } else {
                                format!("no publish within {}", humantime::format_duration(handshake))
                            });
                        }
                    }
                }
            };
            buf = b;
            let n = res.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Ok(if self.publication.is_some() {
                    "disconnected"
                } else {
                    "closed"
                });
            }
            full = n == buf.len();
            if self.published {
                last_data = Instant::now();
            }
            self.shared
                .metrics
                .bytes_received_total
                .fetch_add(n as u64, Relaxed);
            self.count_bytes(n as u64);
            let was_published = self.published;
            let fed = self.session.handle_input(&buf[..n]);
            self.flush(socket).await?;
            fed.map_err(|e| e.to_string())?;
            self.drain_events(socket).await?;
            if self.published && !was_published {
                timer.as_mut().reset((last_data + idle).into());
            }
        }
    }

    /// How long to let a live feed's data gather before the next read: `max`, or
    /// less for a fast feed, so that a read takes about [`READ_TARGET`] bytes and the
    /// socket buffer (autotuned from 128 KiB) never throttles the publisher.
    fn coalesce_wait(&self, max: Duration) -> Option<Duration> {
        let live = self.publication.as_ref()?.live();
        let bps = live.stats.bitrate_bps.load(Relaxed);
        let wait = if bps == 0 {
            max / 4
        } else {
            Duration::from_secs_f64(READ_TARGET as f64 * 8.0 / bps as f64).min(max)
        };
        (wait >= Duration::from_millis(1)).then_some(wait)
    }

    async fn flush(&mut self, socket: &mut Socket) -> Result<(), String> {
        while let Some(out) = self.session.poll_transmit() {
            socket
                .write_all(out)
                .await
                .map_err(|e| format!("write: {e}"))?;
        }
        Ok(())
    }

    async fn drain_events(&mut self, socket: &mut Socket) -> Result<(), String> {
        while let Some(ev) = self.session.poll_event() {
            match ev {
                Event::Connected {
                    app,
                    tc_url,
                    flash_ver,
                } => {
                    info!(
                        app,
                        tc_url = tc_url.as_deref().unwrap_or(""),
                        client = flash_ver.as_deref().unwrap_or(""),
                        "connected"
                    );
                }
                Event::PublishRequested(req) => {
                    let origin = Origin {
                        protocol: self.scheme,
                        remote: self.peer,
                        session_id: self.session_id.clone(),
                    };
                    let name = format!("{}/{}", req.app, req.name);
                    debug!(publish_type = %req.publish_type, "publish requested");
                    self.publication = Publication::open(&self.shared, name.clone(), origin).await;
                    let r = if self.publication.is_some() {
                        self.published = true;
                        self.session.accept_publish()
                    } else {
                        self.session.reject_publish(
                            "NetStream.Publish.BadName",
                            &format!("stream {name} is already being published"),
                        )
                    };
                    self.flush(socket).await?;
                    r.map_err(|e| e.to_string())?;
                }
                Event::Metadata(props) => {
                    debug!(?props, "onMetaData");
                }
                Event::Track(t) => {
                    if let Some(p) = &mut self.publication {
                        p.track(t).await;
                    }
                }
                Event::Frame(f) => {
                    if let Some(p) = &mut self.publication {
                        p.frame(f).await;
                    }
                }
                Event::Unpublished => {
                    self.end_publish("unpublished").await;
                }
                Event::Skipped { reason, offset } => {
                    warn!(offset, "{reason}");
                    if let Some(p) = &self.publication {
                        p.live().stats.skipped.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        if let Some(p) = &mut self.publication {
            p.send_frames().await;
        }
        Ok(())
    }

    fn count_bytes(&mut self, n: u64) {
        if let Some(p) = &mut self.publication {
            p.count_bytes(n);
        }
    }

    /// Handles an API command; `true` to close the connection.
    async fn on_command(&mut self, cmd: StreamCommand) -> bool {
        match &mut self.publication {
            Some(p) => p.on_command(cmd).await,
            None => false,
        }
    }

    async fn end_publish(&mut self, reason: &'static str) {
        if let Some(p) = self.publication.take() {
            p.end(reason).await;
        }
    }
}

/// RTMPS: accepts TLS publishers on this shard's share of `tls_listen` until `stop`.
pub async fn serve_tls(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return warn!(error = %e, "RTMPS listener"),
    };
    let handshake = shared.config.rtmp.handshake_timeout.0;
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, peer)) => {
                    let (shared, acceptor) = (shared.clone(), acceptor.clone());
                    tokio_uring::spawn(async move {
                        let _ = tcp.set_nodelay(true);
                        match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                            Ok(Ok(tls)) => serve_socket(shared, Socket::Tls(Box::new(tls)), peer, "rtmps").await,
                            Ok(Err(e)) => warn!(%peer, error = %e, "RTMPS: TLS handshake failed"),
                            Err(_) => warn!(%peer, "RTMPS: TLS handshake timed out"),
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "RTMPS accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

/// The TLS configuration for RTMPS from PEM files.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("rtmp.tls_cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("rtmp.tls_cert {}: no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("rtmp.tls_key {}: {e}", key.display()))?;
    // The provider is named, not left to the process default: with more than
    // one rustls backend in the build (wasmtime-wasi-http brings ring) there
    // is no default to pick.
    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("RTMPS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("RTMPS certificate: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
