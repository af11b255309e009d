//! Shards: one thread per core, each with its own io_uring runtime (tokio-uring) and
//! its own SO_REUSEPORT listener, so the kernel spreads connections across shards and
//! a connection, its recorder and its files live on one thread for their lifetime.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;
use tracing::{error, info};

use crate::Shared;

/// io_uring submission queue size per shard.
const RING_ENTRIES: u32 = 1024;

/// Binds `n` listeners on `addr` with SO_REUSEPORT (port 0: all share the port the
/// first one got).
pub fn bind_listeners(addr: SocketAddr, n: usize) -> std::io::Result<Vec<TcpListener>> {
    let mut out = Vec::with_capacity(n);
    let mut addr = addr;
    for _ in 0..n {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        s.listen(1024)?;
        let l: TcpListener = s.into();
        addr = l.local_addr()?;
        out.push(l);
    }
    Ok(out)
}

/// Runs shard `id` on the current thread until `stop` turns true.
/// What a shard serves besides its RTMP listener.
pub struct Inputs {
    pub ts: Vec<crate::ingest::ts::Bound>,
    /// RTSP sources to pull: (index in the configuration, source).
    pub pulls: Vec<(usize, crate::config::RtspSource)>,
    /// This shard's RTMPS listener and TLS configuration.
    pub rtmps: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
    /// This shard's RTSP push listener (SO_REUSEPORT, like RTMP's).
    pub rtsp: Option<TcpListener>,
    /// Work handed over at run time (API-opened RTP sessions).
    pub jobs: tokio::sync::mpsc::UnboundedReceiver<crate::shard_jobs::Job>,
}

pub fn run(
    id: usize,
    shared: Arc<Shared>,
    rtmp: TcpListener,
    inputs: Inputs,
    mut stop: watch::Receiver<bool>,
) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tokio_uring::builder().entries(RING_ENTRIES).start(async move {
            let listener = tokio_uring::net::TcpListener::from_std(rtmp);
            for b in inputs.ts {
                tokio_uring::spawn(crate::ingest::ts::serve(shared.clone(), b, stop.clone()));
            }
            for (i, src) in inputs.pulls {
                tokio_uring::spawn(crate::ingest::rtsp_pull::pull(shared.clone(), i, src, stop.clone()));
            }
            {
                // The heartbeat runs on this shard's runtime: it stops when
                // anything blocks the thread (see liveness).
                let shared = shared.clone();
                tokio_uring::spawn(async move {
                    loop {
                        shared.liveness.beat(id, std::time::Instant::now());
                        tokio::time::sleep(crate::liveness::BEAT).await;
                    }
                });
            }
            info!(shard = id, "shard running");
            if let Some((l, acceptor)) = inputs.rtmps {
                tokio_uring::spawn(crate::ingest::rtmp::serve_tls(shared.clone(), l, acceptor, stop.clone()));
            }
            if let Some(l) = inputs.rtsp {
                tokio_uring::spawn(crate::ingest::rtsp_push::serve(shared.clone(), l, stop.clone()));
            }
            let mut jobs = inputs.jobs;
            loop {
                tokio::select! {
                    r = listener.accept() => match r {
                        Ok((socket, peer)) => {
                            tokio_uring::spawn(crate::ingest::rtmp::serve(shared.clone(), socket, peer));
                        }
                        Err(e) => {
                            error!(shard = id, error = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    },
                    Some(job) = jobs.recv() => job(stop.clone()),
                    _ = stop.changed() => break,
                }
            }
            info!(shard = id, "shard stopped");
        })
    }));
    if r.is_err() {
        error!(shard = id, "shard panicked");
    }
}
