//! MPEG-TS inputs on a shard: UDP (unicast or multicast) and TCP ports, each
//! carrying one named stream, fed through [`TsDemuxer`] into a [`Publication`].
//!
//! A UDP feed starts with its first datagram and ends after `mpegts.idle_timeout`
//! of silence; it is locked to the first sender until then (datagrams from others
//! are counted and dropped, since mixing two transport streams corrupts both). A TCP
//! feed is one connection; a second publisher of the same stream is refused.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use edgerec_ts::{Event, Reorder, TsDemuxer, TsStats};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn, Instrument};
use ulid::Ulid;

use super::publication::{next_command, Origin, Publication};
use crate::config::{TsInput, TsTransport};
use crate::registry::StreamCommand;
use crate::Shared;

/// Largest UDP datagram (7 TS packets is the usual 1316; jumbo frames carry more).
const DATAGRAM: usize = 65_536;
/// A live UDP feed's datagrams gather in the socket buffer for up to this long
/// between receives, then are taken together (one wake-up, one demuxer drain): a
/// receive per datagram cost 2.9x the CPU of the RTMP ingest at 200 feeds
/// (bench/README.md, 2026-12-06).
const UDP_COALESCE_MAX: Duration = Duration::from_millis(100);
/// Payload bytes a coalesced wait lets gather: well under what the socket buffer
/// holds at Linux's default `rmem_max` (about 240 KB of 1316-byte datagrams, each
/// charged about 2.3 KB), so a fast feed is received sooner instead of overflowing.
const UDP_TARGET: usize = 64 * 1024;
/// Datagrams taken in one round before the demuxer is drained.
const UDP_BATCH: usize = 256;
const READ_BUF: usize = 64 * 1024;
/// Damage reports per feed logged at warn level; the rest go to debug (the
/// counters in GET /v1/streams keep the totals).
const WARN_LIMIT: u32 = 20;

/// An input's socket, bound at startup so a taken port fails `edgerec serve`.
pub enum Bound {
    Udp(TsInput, std::net::UdpSocket),
    Tcp(TsInput, std::net::TcpListener),
    /// An SRT listener's socket, or `None` for an SRT caller.
    Srt(TsInput, Option<std::net::UdpSocket>),
}

pub fn bind(inputs: &[TsInput]) -> std::io::Result<Vec<Bound>> {
    if inputs.iter().any(|i| i.transport != TsTransport::Tcp) {
        super::warn_if_udp_buffer_capped();
    }
    inputs
        .iter()
        .map(|i| {
            let err = |e: std::io::Error| {
                std::io::Error::new(e.kind(), format!("mpegts input {}: {e}", i.listen))
            };
            match i.transport {
                TsTransport::Udp => bind_udp(i).map(|s| Bound::Udp(i.clone(), s)),
                TsTransport::Tcp => std::net::TcpListener::bind(i.listen).and_then(|l| {
                    l.set_nonblocking(true)?;
                    Ok(Bound::Tcp(i.clone(), l))
                }),
                TsTransport::Srt if i.connect.is_some() => Ok(Bound::Srt(i.clone(), None)),
                TsTransport::Srt => {
                    let s = std::net::UdpSocket::bind(i.listen)?;
                    s.set_nonblocking(true)?;
                    Ok(Bound::Srt(i.clone(), Some(s)))
                }
            }
            .map_err(err)
        })
        .collect()
}

fn bind_udp(i: &TsInput) -> std::io::Result<std::net::UdpSocket> {
    let s = Socket::new(
        Domain::for_address(i.listen),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    s.set_reuse_address(true)?;
    // Bursts of a few Mbit/s feeds must not overflow between two reads.
    let _ = s.set_recv_buffer_size(super::UDP_RECV_BUFFER);
    s.set_nonblocking(true)?;
    s.bind(&i.listen.into())?;
    if let Some(group) = i.group {
        let iface = match i.listen {
            SocketAddr::V4(a) => *a.ip(),
            SocketAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED,
        };
        s.join_multicast_v4(&group, &iface)?;
    }
    Ok(s.into())
}

/// Serves one input on the current shard until `stop`.
pub async fn serve(shared: Arc<Shared>, bound: Bound, stop: watch::Receiver<bool>) {
    match bound {
        Bound::Udp(input, socket) => {
            let span =
                tracing::info_span!("mpegts-udp", listen = %input.listen, stream = %input.stream);
            serve_udp(shared, input, socket, stop)
                .instrument(span)
                .await
        }
        Bound::Tcp(input, listener) => {
            let span =
                tracing::info_span!("mpegts-tcp", listen = %input.listen, stream = %input.stream);
            serve_tcp(shared, input, listener, stop)
                .instrument(span)
                .await
        }
        Bound::Srt(input, socket) => super::srt::serve(shared, input, socket, stop).await,
    }
}

/// A live TS feed: demuxer in, publication out.
pub(super) struct Feed {
    demux: TsDemuxer,
    /// UDP only: datagrams back in order before the demuxer.
    reorder: Option<Reorder>,
    publication: Publication,
    reported: TsStats,
    reported_reordered: u64,
    warnings: u32,
}

impl Feed {
    pub(super) async fn open(
        shared: &Arc<Shared>,
        stream: String,
        protocol: &'static str,
        remote: SocketAddr,
    ) -> Option<Feed> {
        let origin = Origin {
            protocol,
            remote,
            session_id: Ulid::new().to_string(),
        };
        let publication = Publication::open(shared, stream, origin).await?;
        info!(%remote, "feed started");
        Some(Feed {
            demux: TsDemuxer::new(),
            reorder: (protocol == "mpegts-udp").then(Reorder::new),
            publication,
            reported: TsStats::default(),
            reported_reordered: 0,
            warnings: 0,
        })
    }

    /// A read of a byte stream (TCP, SRT).
    pub(super) async fn input(&mut self, data: &[u8]) {
        self.publication.count_bytes(data.len() as u64);
        self.demux.handle_input(data);
        self.drain().await;
    }

    /// A datagram (UDP): reordered, then demuxed; [`Feed::drain`] passes on what
    /// it completed.
    fn push_datagram(&mut self, data: &[u8]) {
        self.publication.count_bytes(data.len() as u64);
        match &mut self.reorder {
            Some(r) => {
                if r.pass_in_order(data) {
                    self.demux.handle_input(data);
                    return;
                }
                r.handle_datagram(Bytes::copy_from_slice(data));
                while let Some(d) = r.poll_datagram() {
                    self.demux.handle_input(&d);
                }
            }
            None => self.demux.handle_input(data),
        }
    }

    /// How long to let a live UDP feed's datagrams gather before the next receive:
    /// about [`UDP_TARGET`] bytes at its bitrate, at most [`UDP_COALESCE_MAX`];
    /// none until the bitrate is known.
    fn coalesce_wait(&self) -> Option<Duration> {
        let bps = self.publication.live().stats.bitrate_bps.load(Relaxed);
        if bps == 0 {
            return None;
        }
        let wait =
            Duration::from_secs_f64(UDP_TARGET as f64 * 8.0 / bps as f64).min(UDP_COALESCE_MAX);
        (wait >= Duration::from_millis(2)).then_some(wait)
    }

    async fn drain(&mut self) {
        while let Some(ev) = self.demux.poll_event() {
            match ev {
                Event::Track(t) => self.publication.track(t).await,
                Event::Frame(f) => self.publication.frame(f).await,
                Event::Skipped {
                    reason,
                    pid,
                    offset,
                } => {
                    self.warnings += 1;
                    let pid = pid.map(|p| format!("{p:#x}")).unwrap_or_default();
                    if self.warnings <= WARN_LIMIT {
                        warn!(offset, pid, "{reason}");
                    } else {
                        debug!(offset, pid, "{reason}");
                    }
                }
                Event::Discontinuity { pid, offset } => {
                    info!(
                        offset,
                        pid = format!("{pid:#x}"),
                        "clock discontinuity smoothed over"
                    );
                }
            }
        }
        self.publication.send_frames().await;
        self.report();
    }

    /// Moves the demuxer's counters into the stream's.
    fn report(&mut self) {
        let now = self.demux.stats().clone();
        let was = &self.reported;
        let stats = &self.publication.live().stats;
        stats
            .packets_lost
            .fetch_add(now.packets_lost - was.packets_lost, Relaxed);
        stats
            .frames_dropped
            .fetch_add(now.units_dropped - was.units_dropped, Relaxed);
        stats
            .discontinuities
            .fetch_add(now.discontinuities - was.discontinuities, Relaxed);
        stats.skipped.fetch_add(
            (now.resyncs + now.transport_errors) - (was.resyncs + was.transport_errors),
            Relaxed,
        );
        self.reported = now;
        if let Some(r) = &self.reorder {
            stats
                .packets_reordered
                .fetch_add(r.reordered() - self.reported_reordered, Relaxed);
            self.reported_reordered = r.reordered();
        }
    }

    pub(super) fn publication(&mut self) -> &mut Publication {
        &mut self.publication
    }

    /// Handles an API command; `true` when the feed must end (shutdown), in which
    /// case what the demuxer still held has been recorded first: a video PES is
    /// complete only when the next one starts, so without this a graceful
    /// shutdown lost every TS feed's last frame.
    pub(super) async fn on_command(&mut self, cmd: StreamCommand) -> bool {
        if matches!(cmd, StreamCommand::Shutdown { .. }) {
            self.flush_input();
            self.drain().await;
        }
        self.publication.on_command(cmd).await
    }

    /// The input is over: held datagrams and the demuxer's last units come out.
    fn flush_input(&mut self) {
        if let Some(r) = &mut self.reorder {
            r.handle_end();
            while let Some(d) = r.poll_datagram() {
                self.demux.handle_input(&d);
            }
        }
        self.demux.handle_end();
    }

    pub(super) async fn end(mut self, reason: &'static str) {
        self.flush_input();
        self.drain().await;
        let s = self.demux.stats();
        info!(
            reason,
            bytes = self.demux.offset(),
            packets = s.packets,
            packets_lost = s.packets_lost,
            frames_dropped = s.units_dropped,
            discontinuities = s.discontinuities,
            "feed ended"
        );
        self.publication.end(reason).await;
    }
}

/// A UDP input's sender bookkeeping: the feed is locked to its first sender.
struct Senders {
    strangers: u64,
}

impl Senders {
    /// Whether a datagram from `from` belongs to the feed of `peer`.
    fn admit(&mut self, peer: SocketAddr, from: SocketAddr) -> bool {
        if from == peer {
            return true;
        }
        self.strangers += 1;
        if self.strangers == 1 || self.strangers.is_power_of_two() {
            warn!(%from, sender = %peer, dropped = self.strangers, "datagram from a second sender dropped");
        }
        false
    }
}

/// Takes up to `limit` datagrams the socket already holds, without waiting and
/// without a ring op each, into `feed`; how many it took. A real error comes back
/// on the ring's next receive.
fn take_queued(
    shared: &Shared,
    queued: &std::net::UdpSocket,
    (feed, peer): (&mut Feed, SocketAddr),
    senders: &mut Senders,
    buf: &mut [u8],
    limit: usize,
) -> usize {
    let mut taken = 0;
    while taken < limit {
        let Ok((n, from)) = queued.recv_from(buf) else {
            break;
        };
        taken += 1;
        shared
            .metrics
            .bytes_received_total
            .fetch_add(n as u64, Relaxed);
        if senders.admit(peer, from) {
            feed.push_datagram(&buf[..n]);
        }
    }
    taken
}

async fn serve_udp(
    shared: Arc<Shared>,
    input: TsInput,
    socket: std::net::UdpSocket,
    mut stop: watch::Receiver<bool>,
) {
    // The same socket (non-blocking) for taking what has arrived after a receive.
    let queued = socket.try_clone().ok();
    let socket = tokio_uring::net::UdpSocket::from_std(socket);
    let idle = shared.config.mpegts.idle_timeout.0;
    let mut feed: Option<(Feed, SocketAddr)> = None;
    let mut last_data = Instant::now();
    let mut refused_at: Option<Instant> = None;
    let mut senders = Senders { strangers: 0 };
    let mut buf = vec![0u8; DATAGRAM];
    let mut full = false;
    // Before a shutdown ends the feed, what the socket still holds goes in.
    let take_rest = |feed: &mut Option<(Feed, SocketAddr)>, senders: &mut Senders| {
        if let (Some((f, peer)), Some(q)) = (feed.as_mut(), queued.as_ref()) {
            let mut spare = vec![0u8; DATAGRAM];
            take_queued(&shared, q, (f, *peer), senders, &mut spare, usize::MAX);
        }
    };
    loop {
        // A live feed's datagrams gather in the socket first (see
        // UDP_COALESCE_MAX); the receive is only put on the ring after that, so
        // a shutdown meanwhile finds every datagram still in the socket.
        let gather = feed
            .as_ref()
            .filter(|_| !full && queued.is_some())
            .and_then(|(f, _)| f.coalesce_wait());
        let recv = async {
            if let Some(wait) = gather {
                tokio::time::sleep(wait).await;
            }
            socket.recv_from(buf).await
        };
        tokio::pin!(recv);
        let (res, b) = loop {
            tokio::select! {
                r = &mut recv => break r,
                Some(cmd) = next_command(feed.as_mut().map(|f| &mut f.0.publication)) => {
                    if matches!(cmd, StreamCommand::Shutdown { .. }) {
                        take_rest(&mut feed, &mut senders);
                    }
                    if let Some((f, _)) = feed.as_mut() {
                        if f.on_command(cmd).await {
                            feed = None;
                        }
                    }
                }
                _ = tokio::time::sleep_until(last_data + idle), if feed.is_some() => {
                    if let Some((f, _)) = feed.take() {
                        f.end("idle").await;
                    }
                }
                _ = stop.changed() => {
                    // A receive the ring completed but nobody polled yet comes first.
                    if let Some((Ok((n, from)), b)) = futures::FutureExt::now_or_never(&mut recv) {
                        if let Some((f, peer)) = feed.as_mut() {
                            if senders.admit(*peer, from) {
                                f.push_datagram(&b[..n]);
                            }
                        }
                    }
                    take_rest(&mut feed, &mut senders);
                    if let Some((f, _)) = feed.take() {
                        f.end("shutdown").await;
                    }
                    return;
                }
            }
        };
        buf = b;
        let (n, from) = match res {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "receive failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        shared
            .metrics
            .bytes_received_total
            .fetch_add(n as u64, Relaxed);
        match &feed {
            Some((_, peer)) => {
                if !senders.admit(*peer, from) {
                    continue;
                }
            }
            None => {
                if refused_at.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                    continue;
                }
                match Feed::open(&shared, input.stream.clone(), "mpegts-udp", from).await {
                    Some(f) => {
                        feed = Some((f, from));
                        refused_at = None;
                        senders.strangers = 0;
                    }
                    None => {
                        refused_at = Some(Instant::now());
                        continue;
                    }
                }
            }
        }
        last_data = Instant::now();
        full = false;
        if let Some((f, peer)) = feed.as_mut() {
            f.push_datagram(&buf[..n]);
            if let Some(q) = &queued {
                let taken = take_queued(&shared, q, (f, *peer), &mut senders, &mut buf, UDP_BATCH);
                full = taken == UDP_BATCH;
            }
            f.drain().await;
        }
    }
}

async fn serve_tcp(
    shared: Arc<Shared>,
    input: TsInput,
    listener: std::net::TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let listener = tokio_uring::net::TcpListener::from_std(listener);
    let input = Arc::new(input);
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((socket, peer)) => {
                    let (shared, input, stop) = (shared.clone(), input.clone(), stop.clone());
                    let span = tracing::info_span!("conn", %peer);
                    tokio_uring::spawn(serve_tcp_conn(shared, input, socket, peer, stop).instrument(span));
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

async fn serve_tcp_conn(
    shared: Arc<Shared>,
    input: Arc<TsInput>,
    socket: tokio_uring::net::TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let Some(feed) = Feed::open(&shared, input.stream.clone(), "mpegts-tcp", peer).await else {
        let _ = socket.shutdown(std::net::Shutdown::Both);
        return;
    };
    let mut feed = Some(feed);
    let idle = shared.config.mpegts.idle_timeout.0;
    let mut buf = vec![0u8; READ_BUF];
    let mut ending: Option<&'static str> = None;
    let reason = loop {
        let read = socket.read(buf);
        tokio::pin!(read);
        let (res, b) = loop {
            tokio::select! {
                r = &mut read => break r,
                Some(cmd) = next_command(feed.as_mut().map(|f| &mut f.publication)) => {
                    if let Some(f) = feed.as_mut() {
                        if f.on_command(cmd).await {
                            feed = None;
                            let _ = socket.shutdown(std::net::Shutdown::Both);
                        }
                    }
                }
                _ = tokio::time::sleep(idle), if ending.is_none() => {
                    ending = Some("idle");
                    let _ = socket.shutdown(std::net::Shutdown::Both);
                }
                _ = stop.changed(), if ending.is_none() => {
                    ending = Some("shutdown");
                    let _ = socket.shutdown(std::net::Shutdown::Both);
                }
            }
        };
        buf = b;
        match res {
            Ok(0) => break ending.unwrap_or("disconnected"),
            Ok(n) => {
                shared
                    .metrics
                    .bytes_received_total
                    .fetch_add(n as u64, Relaxed);
                match feed.as_mut() {
                    Some(f) => f.input(&buf[..n]).await,
                    None => break "shutdown",
                }
            }
            Err(_) if ending.is_some() => break ending.unwrap_or("shutdown"),
            Err(e) => {
                warn!(error = %e, "read failed");
                break "read error";
            }
        }
    };
    if let Some(f) = feed {
        f.end(reason).await;
    }
}
