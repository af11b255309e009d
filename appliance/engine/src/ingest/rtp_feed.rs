//! What every RTP-carried ingest shares around [`edgerec_rtp::RtpSession`]: UDP
//! port pairs from the `[rtp]` range, receive loops feeding one channel, and
//! moving the session's events and counters into the [`Publication`].
//!
//! Sockets are tokio's (epoll), not io_uring's: a session must free its ports
//! the moment it ends, and tokio-uring keeps a socket open until a pending
//! receive completes — which on a silent port is never.
//!
//! A receive loop takes everything a wake-up finds into one batch, each datagram
//! received straight into a shared block ([`ARENA`]) and handed on as a slice of
//! it, instead of a zeroed 2 KiB buffer and a channel message per datagram:
//! malloc and free fell from ~14% to ~4% of the daemon's perf samples at 200
//! relayed feeds (2026-12-07; the CPU per feed-second moved less than the
//! machine's spread, see bench/README.md).

use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use edgerec_rtp::packet::is_rtcp;
use edgerec_rtp::{Event, RtpSession, SessionStats};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::publication::Publication;
use crate::registry::StreamCommand;
use crate::{EngineError, Shared};

/// Warnings per session before they go to debug level.
const WARN_LIMIT: u64 = 20;
/// Largest datagram taken whole (RTP senders keep under the path MTU, WebRTC
/// under 1200 bytes); the kernel cuts a longer one to this length.
const MAX_DATAGRAM: usize = 2048;
/// The block datagrams are received into. A datagram's bytes stay a slice of it
/// until the frame they became is written (audio, whole-NAL video) or until the
/// depacketizer has copied them (fragmented video), so small blocks keep little
/// resident: ~13 video or ~40 audio datagrams each.
const ARENA: usize = 16 * 1024;
/// Datagrams per batch handed to the session: a burst (a key frame is hundreds
/// of packets) reaches it in parts, with its timers and commands between them.
const BATCH: usize = 64;
/// Batches queued per session before the receive loops wait (~64 000 datagrams
/// at most, ~2 s of a key-frame-heavy 20 Mbit/s feed).
const QUEUE: usize = 1024;

/// One track's sockets: RTP, and RTCP unless multiplexed.
pub(super) struct Ports {
    pub rtp: UdpSocket,
    pub rtcp: Option<UdpSocket>,
}

pub(super) fn bind(shared: &Shared, n: usize, mux: bool) -> Result<Vec<Ports>, EngineError> {
    super::warn_if_udp_buffer_capped();
    let c = &shared.config.rtp;
    let (min, max) = (c.port_min & !1, c.port_max);
    let span = u32::from(max.saturating_sub(min)) / 2 + 1;
    let mut cursor = shared
        .relays
        .port_cursor
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::with_capacity(n);
    for _ in 0..span {
        if out.len() == n {
            break;
        }
        let port = min + (*cursor % span as u16) * 2;
        *cursor = cursor.wrapping_add(1);
        if !mux && port == u16::MAX || port > max {
            continue;
        }
        let Ok(rtp) = open_socket(SocketAddr::new(c.listen_ip, port)) else {
            continue;
        };
        let rtcp = if mux {
            None
        } else {
            match open_socket(SocketAddr::new(c.listen_ip, port + 1)) {
                Ok(s) => Some(s),
                Err(_) => continue,
            }
        };
        out.push(Ports { rtp, rtcp });
    }
    if out.len() < n {
        return Err(EngineError::Unavailable(format!(
            "no free RTP ports in {}-{} for {n} tracks",
            c.port_min, c.port_max
        )));
    }
    Ok(out)
}

fn open_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(super::UDP_RECV_BUFFER);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// A datagram from one of a session's sockets.
pub(super) struct Datagram {
    /// The index the sockets were registered under.
    pub track: usize,
    /// It came to the RTCP port.
    pub rtcp_port: bool,
    pub data: Bytes,
    pub from: SocketAddr,
}

/// Receive loops for a session's sockets; dropping it aborts them, which closes
/// the sockets and frees the ports.
pub(super) struct Receivers {
    tx: mpsc::Sender<Vec<Datagram>>,
    rx: mpsc::Receiver<Vec<Datagram>>,
    /// Where RTCP for track `i` is sent from (its RTCP socket, or its RTP one when muxed).
    pub senders: Vec<Option<Rc<tokio::net::UdpSocket>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Every socket, as (track, RTCP port, socket), for what they still hold at
    /// the end.
    sockets: Vec<(usize, bool, Rc<tokio::net::UdpSocket>)>,
    /// Received and not yet handed out: the rest of a batch, or what
    /// [`Receivers::take_queued`] took for `linger`.
    pending: std::collections::VecDeque<Datagram>,
    /// When [`Receivers::linger`] gives up.
    linger_until: Option<Instant>,
}

impl Receivers {
    pub fn new() -> Receivers {
        let (tx, rx) = mpsc::channel(QUEUE);
        Receivers {
            tx,
            rx,
            senders: Vec::new(),
            tasks: Vec::new(),
            sockets: Vec::new(),
            pending: Default::default(),
            linger_until: None,
        }
    }

    /// Starts receiving on `ports` as track `track` (on the current shard).
    pub fn add(&mut self, track: usize, ports: Ports) -> std::io::Result<()> {
        let rtp = Rc::new(tokio::net::UdpSocket::from_std(ports.rtp)?);
        self.sockets.push((track, false, rtp.clone()));
        self.tasks.push(tokio_uring::spawn(receive(
            rtp.clone(),
            track,
            false,
            self.tx.clone(),
        )));
        let sender = match ports.rtcp {
            Some(s) => {
                let rtcp = Rc::new(tokio::net::UdpSocket::from_std(s)?);
                self.sockets.push((track, true, rtcp.clone()));
                self.tasks.push(tokio_uring::spawn(receive(
                    rtcp.clone(),
                    track,
                    true,
                    self.tx.clone(),
                )));
                rtcp
            }
            None => rtp,
        };
        if self.senders.len() <= track {
            self.senders.resize(track + 1, None);
        }
        self.senders[track] = Some(sender);
        Ok(())
    }

    /// No sockets were added.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The next datagram received (cancel-safe: a batch taken from the channel
    /// is kept whole); `None` once every receive loop has ended.
    pub async fn recv(&mut self) -> Option<Datagram> {
        if let Some(d) = self.pending.pop_front() {
            return Some(d);
        }
        let batch = self.rx.recv().await?;
        self.pending.extend(batch);
        self.pending.pop_front()
    }

    /// The next datagram already received, without waiting.
    pub fn try_recv(&mut self) -> Option<Datagram> {
        if self.pending.is_empty() {
            self.pending.extend(self.rx.try_recv().ok()?);
        }
        self.pending.pop_front()
    }

    /// Everything received and not yet handled, without waiting: the channel,
    /// then what the sockets hold.
    pub fn take_queued(&mut self) -> Vec<Datagram> {
        let mut out: Vec<Datagram> = self.pending.drain(..).collect();
        while let Ok(batch) = self.rx.try_recv() {
            out.extend(batch);
        }
        let mut buf = [0u8; 2048];
        for (track, rtcp_port, s) in &self.sockets {
            while let Ok((n, from)) = s.try_recv_from(&mut buf) {
                out.push(Datagram {
                    track: *track,
                    rtcp_port: *rtcp_port,
                    data: Bytes::copy_from_slice(&buf[..n]),
                    from,
                });
            }
        }
        out
    }

    /// The next datagram while they keep coming: `None` once none came for
    /// `quiet`, or `max` after the first call of this linger.
    pub async fn linger(&mut self, quiet: Duration, max: Duration) -> Option<Datagram> {
        if self.linger_until.is_none() {
            let queued = self.take_queued();
            self.pending.extend(queued);
        }
        if let Some(d) = self.pending.pop_front() {
            return Some(d);
        }
        let until = *self
            .linger_until
            .get_or_insert_with(|| Instant::now() + max);
        let at = (Instant::now() + quiet).min(until);
        tokio::time::timeout_at(at.into(), self.recv())
            .await
            .ok()
            .flatten()
    }

    /// Sends RTCP from track `track`'s socket.
    pub async fn send(&self, track: usize, data: &[u8], to: SocketAddr) {
        if let Some(Some(s)) = self.senders.get(track) {
            if let Err(e) = s.send_to(data, to).await {
                debug!(error = %e, %to, "RTCP send failed");
            }
        }
    }
}

impl Drop for Receivers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// An RTP session feeding a publication.
pub(super) struct RtpFeed {
    pub session: RtpSession,
    reported: SessionStats,
    warnings: u64,
}

impl RtpFeed {
    pub fn new(session: RtpSession) -> RtpFeed {
        RtpFeed {
            session,
            reported: SessionStats::default(),
            warnings: 0,
        }
    }

    /// Hands the session's tracks and frames to `p`, logs drops, marks BYEs in
    /// `byes`, passes the recorder's key frame request on and moves the
    /// counters into the stream's.
    pub async fn drain(&mut self, p: &mut Publication, byes: &mut [bool]) {
        while let Some(ev) = self.session.poll_event() {
            match ev {
                Event::Track(t) => p.track(t).await,
                Event::Frame(f) => p.frame(f).await,
                Event::Dropped { track, reason } => {
                    self.warnings += 1;
                    if self.warnings <= WARN_LIMIT {
                        warn!(track, "dropped: {reason}");
                    } else {
                        debug!(track, "dropped: {reason}");
                    }
                }
                Event::Bye { track } => {
                    info!(track, "BYE");
                    if let Some(b) = byes.get_mut(track) {
                        *b = true;
                    }
                }
            }
        }
        p.send_frames().await;
        if p.live().take_key_frame_request() {
            // A PLI goes with the next RTCP if the sender takes them.
            self.session.request_key_frame();
        }
        let now = self.session.stats();
        let (was, st) = (&self.reported, &p.live().stats);
        st.packets_lost
            .fetch_add(now.packets_lost - was.packets_lost, Relaxed);
        st.packets_reordered
            .fetch_add(now.packets_reordered - was.packets_reordered, Relaxed);
        st.frames_dropped
            .fetch_add(now.frames_dropped - was.frames_dropped, Relaxed);
        st.discontinuities
            .fetch_add(now.discontinuities - was.discontinuities, Relaxed);
        self.reported = now;
    }

    /// Feeds a datagram to the session as track `track`'s RTP or RTCP (by its
    /// port, or by its payload type when RTP and RTCP share the port); whether
    /// it was RTCP.
    pub fn handle_datagram(&mut self, track: usize, d: Datagram, mux: bool, now: Instant) -> bool {
        let rtcp = d.rtcp_port || (mux && is_rtcp(&d.data));
        if rtcp {
            self.session.handle_rtcp(track, &d.data, now);
        } else {
            self.session.handle_rtp(track, d.data, now);
        }
        rtcp
    }

    /// Handles an API command for `p`; `true` when the feed must end (shutdown),
    /// in which case what the session still held (the jitter buffer, frames
    /// waiting for the clock or for their decode times) has been recorded
    /// first: without this a graceful shutdown lost the last frames of every
    /// RTP feed still sending.
    pub async fn on_command(&mut self, p: &mut Publication, cmd: StreamCommand) -> bool {
        if matches!(cmd, StreamCommand::Shutdown { .. }) {
            self.session.handle_end(Instant::now());
            self.drain(p, &mut []).await;
        }
        p.on_command(cmd).await
    }

    /// Releases what the session still holds and ends the publication.
    pub async fn finish(mut self, mut p: Publication, reason: &'static str) {
        self.session.handle_end(Instant::now());
        let mut byes = Vec::new();
        self.drain(&mut p, &mut byes).await;
        let s = self.session.stats();
        info!(
            reason,
            packets = s.packets_received,
            lost = s.packets_lost,
            reordered = s.packets_reordered,
            frames_dropped = s.frames_dropped,
            "RTP session ended"
        );
        p.end(reason).await;
    }
}

/// Sleeps until `at` (forever without one).
pub(super) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// One socket's receive loop: on each wake-up, everything the socket holds
/// (up to [`BATCH`]) goes to the session as one message.
async fn receive(
    socket: Rc<tokio::net::UdpSocket>,
    track: usize,
    rtcp_port: bool,
    tx: mpsc::Sender<Vec<Datagram>>,
) {
    let mut arena = BytesMut::new();
    loop {
        if let Err(e) = socket.readable().await {
            warn!(error = %e, "RTP receive failed");
            return;
        }
        let mut batch = Vec::new();
        let mut failed = None;
        while batch.len() < BATCH {
            if arena.capacity() < MAX_DATAGRAM {
                arena = BytesMut::with_capacity(ARENA);
            }
            match socket.try_recv_buf_from(&mut arena) {
                Ok((_, from)) => batch.push(Datagram {
                    track,
                    rtcp_port,
                    data: arena.split().freeze(),
                    from,
                }),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if !batch.is_empty() && tx.send(batch).await.is_err() {
            return;
        }
        if let Some(e) = failed {
            warn!(error = %e, "RTP receive failed");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if tx.is_closed() {
                return;
            }
        }
    }
}
