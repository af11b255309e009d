//! edgerec-floor: the least any recorder must do with the benchmark's load, run
//! beside the real systems to show how much of their CPU is that floor.
//!
//! It accepts each RTMP publish through edgerec's own sans-IO session (handshake,
//! connect, publish), then only moves the connection's bytes from the socket to a
//! file: read as edgerec reads (every 500 ms by default, as its
//! `rtmp.read_coalesce`, until the socket is empty), written
//! with `write(2)` through the page cache, and — unless `--sync-every-ms 0` —
//! `fdatasync` once a second, as edgerec syncs each 1 s fragment. No chunk
//! parsing, no frames, no muxing, no index: what it costs is the kernel's receive,
//! page-cache and writeback work plus the wake-ups. Not a recorder: its files are
//! the raw RTMP chunk stream.
//!
//! Hand-written on blocking threads (one per connection) rather than an async
//! runtime: the floor should carry no framework cost of its own.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use edgerec_rtmp::{Event, ServerConfig, ServerSession};

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to accept RTMP publishers on.
    #[arg(long)]
    listen: std::net::SocketAddr,
    /// Folder for one `<stream name>.raw` file per publish.
    #[arg(long)]
    dir: PathBuf,
    /// Milliseconds between reads of a connection (edgerec's coalesced reads).
    #[arg(long, default_value_t = 500)]
    read_every_ms: u64,
    /// fdatasync each file this often; 0 never.
    #[arg(long, default_value_t = 1000)]
    sync_every_ms: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir).with_context(|| format!("{}", args.dir.display()))?;
    let listener = TcpListener::bind(args.listen).with_context(|| format!("{}", args.listen))?;
    let read_every = Duration::from_millis(args.read_every_ms);
    let sync_every = (args.sync_every_ms > 0).then(|| Duration::from_millis(args.sync_every_ms));
    for (i, conn) in listener.incoming().enumerate() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let dir = args.dir.clone();
        std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(move || {
                if let Err(e) = serve(stream, &dir, read_every, sync_every, i as u64) {
                    eprintln!("connection {i}: {e:#}");
                }
            })?;
    }
    Ok(())
}

fn serve(
    mut stream: TcpStream,
    dir: &Path,
    read_every: Duration,
    sync_every: Option<Duration>,
    seed: u64,
) -> Result<()> {
    stream.set_nodelay(true)?;
    let mut session = ServerSession::new(ServerConfig::default(), seed);
    let mut buf = vec![0u8; 64 << 10];
    let name = loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        session.handle_input(&buf[..n])?;
        let mut published = None;
        while let Some(ev) = session.poll_event() {
            if let Event::PublishRequested(req) = ev {
                session.accept_publish()?;
                published = Some(req.name);
            }
        }
        while let Some(out) = session.poll_transmit() {
            stream.write_all(&out)?;
        }
        if let Some(name) = published {
            break name;
        }
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        bail!("stream name {name:?}: letters, digits, - and _ only");
    }
    // From here on the bytes go to the file as they are.
    let mut file = File::create(dir.join(format!("{name}.raw")))?;
    stream.set_nonblocking(true)?;
    let mut synced = Instant::now();
    loop {
        std::thread::sleep(read_every);
        loop {
            match stream.read(&mut buf) {
                Ok(0) => {
                    if sync_every.is_some() {
                        file.sync_data()?;
                    }
                    return Ok(());
                }
                Ok(n) => file.write_all(&buf[..n])?,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(every) = sync_every {
            if synced.elapsed() >= every {
                file.sync_data()?;
                synced = Instant::now();
            }
        }
    }
}
