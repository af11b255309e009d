//! edgerec-loadgen: N concurrent publishers replaying one pre-encoded file at real-time
//! pace, each with its own timestamp offset, on one thread: RTMP from an FLV file,
//! MPEG-TS over UDP, TCP or SRT from a TS file, or RTP from the FLV file into
//! sessions opened through edgerec's API (the URL's scheme says which).
//!
//! Prints a JSON report (frames sent per feed against the frames scheduled, worst lag
//! behind real time, its own CPU and memory) so the harness can count lost frames and
//! show that the generator costs far less than the system under test.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use clap::Parser;
use edgerec_bench::publisher::Publisher;
use edgerec_bench::rtp_source::{self, RtpSource};
use edgerec_bench::source::{Source, TagKind};
use edgerec_bench::ts_source::{pid, TsRewriter, TsSource, PACKET};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};

#[derive(Parser, Debug, Clone)]
#[command(version, about)]
struct Args {
    /// File to replay: FLV for rtmp:// and rtp:// (H.264 + AAC, as `ffmpeg -f flv`
    /// writes it), MPEG-TS for udp://, tcp:// and srt:// (`ffmpeg -f mpegts
    /// -pes_payload_size 0`).
    #[arg(long)]
    source: std::path::PathBuf,
    /// Number of concurrent publishers.
    #[arg(long, default_value_t = 10)]
    feeds: u32,
    /// Seconds of media each publisher sends (the source loops).
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Publish URL; `{i}` is the feed number, `{port}` is `--base-port` + `{i}`:
    /// `rtmp://host:port/app/name`, `udp://host:port`, `tcp://host:port`,
    /// `srt://host:port?streamid=app/name`, or `rtp://host:port/app/name`: an RTP
    /// session opened through the edgerec API at host:port (`POST /v1/rtp-sessions`).
    #[arg(long, default_value = "rtmp://127.0.0.1:1935/live/feed{i}")]
    url: String,
    /// The API key for rtp:// sessions.
    #[arg(long, env = "EDGEREC_API_KEY", default_value = "")]
    api_key: String,
    #[arg(long, default_value_t = 20000)]
    base_port: u32,
    /// Publishers start spread over this many seconds.
    #[arg(long, default_value_t = 2.0)]
    ramp: f64,
    /// A publisher further behind real time than this gives up (a live encoder would
    /// be dropping frames by then); what it did not send counts as lost.
    #[arg(long, default_value_t = 5.0)]
    give_up: f64,
    /// Seconds to keep trying to connect (servers that start listening late).
    #[arg(long, default_value_t = 15.0)]
    connect_timeout: f64,
}

#[derive(Serialize, Default)]
struct FeedReport {
    feed: u32,
    url: String,
    live: bool,
    video_sent: u64,
    audio_sent: u64,
    bytes_sent: u64,
    max_lag_ms: u64,
    error: Option<String>,
}

#[derive(Serialize)]
struct Report {
    feeds: u32,
    duration_s: f64,
    /// Frames each publisher is due to send in `duration_s`.
    video_scheduled: u64,
    audio_scheduled: u64,
    feeds_live: u32,
    feeds_failed: u32,
    video_sent: u64,
    audio_sent: u64,
    bytes_sent: u64,
    max_lag_ms: u64,
    wall_s: f64,
    cpu_user_s: f64,
    cpu_sys_s: f64,
    max_rss_kib: i64,
    per_feed: Vec<FeedReport>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let file = std::fs::read(&args.source)
        .with_context(|| format!("reading {}", args.source.display()))?;
    let source = if args.url.starts_with("rtmp://") {
        Load::Rtmp(Rc::new(
            Source::parse(Bytes::from(file)).context("parsing the FLV source")?,
        ))
    } else if args.url.starts_with("rtp://") {
        let flv = Source::parse(Bytes::from(file)).context("parsing the FLV source")?;
        let rtp = RtpSource::from_flv(&flv).context("cutting the FLV source into RTP")?;
        Load::Rtp(Rc::new(flv), Rc::new(rtp))
    } else {
        Load::Ts(Rc::new(
            TsSource::parse(Bytes::from(file)).context("parsing the MPEG-TS source")?,
        ))
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let started = Instant::now();
    let per_feed = local.block_on(&rt, async {
        let mut handles = Vec::new();
        for i in 0..args.feeds {
            let (args, source) = (args.clone(), source.clone());
            let delay = Duration::from_secs_f64(args.ramp * i as f64 / args.feeds.max(1) as f64);
            handles.push(tokio::task::spawn_local(async move {
                let url = args
                    .url
                    .replace("{port}", &(args.base_port + i).to_string())
                    .replace("{i}", &i.to_string());
                let mut r = FeedReport {
                    feed: i,
                    url: url.clone(),
                    ..Default::default()
                };
                tokio::time::sleep(delay).await;
                let run = match &source {
                    Load::Rtmp(source) => run_feed(&args, source, i, &url, &mut r).await,
                    Load::Rtp(_, source) => run_rtp_feed(&args, source, i, &url, &mut r).await,
                    Load::Ts(source) => run_ts_feed(&args, source, i, &url, &mut r).await,
                };
                if let Err(e) = run {
                    r.error = Some(format!("{e:#}"));
                }
                r
            }));
        }
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("feed task"));
        }
        out
    });
    let wall = started.elapsed().as_secs_f64();
    let duration_ms = (args.duration * 1000.0) as u64;
    let (video_scheduled, audio_scheduled) = match &source {
        Load::Rtmp(s) | Load::Rtp(s, _) => s.frames_in(duration_ms),
        Load::Ts(s) => s.frames_in(duration_ms),
    };
    let ru = rusage();
    let report = Report {
        feeds: args.feeds,
        duration_s: args.duration,
        video_scheduled,
        audio_scheduled,
        feeds_live: per_feed.iter().filter(|f| f.live).count() as u32,
        feeds_failed: per_feed.iter().filter(|f| f.error.is_some()).count() as u32,
        video_sent: per_feed.iter().map(|f| f.video_sent).sum(),
        audio_sent: per_feed.iter().map(|f| f.audio_sent).sum(),
        bytes_sent: per_feed.iter().map(|f| f.bytes_sent).sum(),
        max_lag_ms: per_feed.iter().map(|f| f.max_lag_ms).max().unwrap_or(0),
        wall_s: wall,
        cpu_user_s: tv(ru.ru_utime),
        cpu_sys_s: tv(ru.ru_stime),
        max_rss_kib: ru.ru_maxrss,
        per_feed,
    };
    for f in report.per_feed.iter().filter(|f| f.error.is_some()).take(5) {
        eprintln!(
            "feed {} ({}): {}",
            f.feed,
            f.url,
            f.error.as_deref().unwrap_or("")
        );
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// The source, parsed for the protocol the URL names.
#[derive(Clone)]
enum Load {
    Rtmp(Rc<Source>),
    Ts(Rc<TsSource>),
    /// The FLV (its frame schedule) and its frames as RTP.
    Rtp(Rc<Source>, Rc<RtpSource>),
}

fn rusage() -> libc::rusage {
    // SAFETY: getrusage fills the struct it is given; zeroed is a valid rusage.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    }
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// `rtmp://host:port/app/name` → (host:port, app, name, tcUrl).
fn split_url(url: &str) -> Result<(String, String, String, String)> {
    let rest = url
        .strip_prefix("rtmp://")
        .context("URL must start with rtmp://")?;
    let (host, path) = rest.split_once('/').context("URL has no app")?;
    let (app, name) = path.split_once('/').context("URL has no stream name")?;
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:1935")
    };
    let tc_url = format!("rtmp://{host}/{app}");
    Ok((host, app.into(), name.into(), tc_url))
}

async fn connect(addr: &str, within: Duration) -> Result<TcpStream> {
    let deadline = Instant::now() + within;
    loop {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => return Err(e).context("connecting"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Sleeps until `due` ms after `start`; the time then, in ms after `start`.
async fn until_due(start: Instant, due: u64, give_up_ms: u64, r: &mut FeedReport) -> Result<u64> {
    sleep_until(start + Duration::from_millis(due)).await;
    let now_ms = start.elapsed().as_millis() as u64;
    note_lag(now_ms, due, give_up_ms, r)?;
    Ok(now_ms)
}

/// Keeps the worst lag behind real time; an error past `give_up_ms`.
fn note_lag(now_ms: u64, due: u64, give_up_ms: u64, r: &mut FeedReport) -> Result<()> {
    let lag = now_ms.saturating_sub(due);
    r.max_lag_ms = r.max_lag_ms.max(lag);
    if lag > give_up_ms {
        bail!("{lag} ms behind real time: gave up");
    }
    Ok(())
}

async fn run_feed(
    args: &Args,
    source: &Source,
    i: u32,
    url: &str,
    r: &mut FeedReport,
) -> Result<()> {
    let (addr, app, name, tc_url) = split_url(url)?;
    let stream = connect(&addr, Duration::from_secs_f64(args.connect_timeout)).await?;
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let publisher = Rc::new(RefCell::new(Publisher::new(
        &app,
        &name,
        &tc_url,
        i as u64 + 1,
    )));

    // Handshake and publish, request by response.
    let mut buf = vec![0u8; 16 * 1024];
    let setup = async {
        loop {
            let out = publisher.borrow_mut().take_output();
            if let Some(b) = out {
                wr.write_all(&b).await?;
            }
            if publisher.borrow().is_live() {
                return Ok::<_, anyhow::Error>(());
            }
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                bail!("server closed the connection before the publish started");
            }
            publisher.borrow_mut().handle_input(&buf[..n])?;
        }
    };
    timeout(Duration::from_secs(15), setup)
        .await
        .context("publish not accepted within 15 s")??;
    r.live = true;

    // From here the server's messages (acks, pings) are read beside the media.
    let reader = {
        let publisher = publisher.clone();
        tokio::task::spawn_local(async move {
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if publisher.borrow_mut().handle_input(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        })
    };

    let offset_ms = i * 1000; // every feed's timestamps are its own
    let duration_ms = (args.duration * 1000.0) as u64;
    let give_up_ms = (args.give_up * 1000.0) as u64;
    let start = Instant::now();
    let mut out = BytesMut::with_capacity(256 * 1024);
    {
        let p = publisher.borrow();
        for t in &source.header {
            p.write_tag(&mut out, t, offset_ms);
        }
    }
    let period = source.period_ms as u64;
    let mut next = 0usize; // index into an endless sequence of looped frames
    let n = source.frames.len();
    let sched = |k: usize| (k / n) as u64 * period + source.frames[k % n].ts_ms as u64;
    let result = async {
        while sched(next) < duration_ms {
            let due = sched(next);
            let now_ms = until_due(start, due, give_up_ms, r).await?;
            // Everything due within the next 10 ms goes in one write.
            let (mut v, mut a) = (0, 0);
            {
                let mut p = publisher.borrow_mut();
                if let Some(b) = p.take_output() {
                    out.extend_from_slice(&b);
                }
                while sched(next) < duration_ms && sched(next) <= now_ms + 10 {
                    let t = &source.frames[next % n];
                    p.write_tag(&mut out, t, offset_ms + sched(next) as u32);
                    match t.kind {
                        TagKind::Video => v += 1,
                        _ => a += 1,
                    }
                    next += 1;
                }
            }
            wr.write_all(&out).await?;
            r.bytes_sent += out.len() as u64;
            out.clear();
            r.video_sent += v;
            r.audio_sent += a;
        }
        publisher.borrow_mut().unpublish();
        let tail = publisher.borrow_mut().take_output();
        if let Some(b) = tail {
            wr.write_all(&b).await?;
        }
        wr.shutdown().await?;
        Ok(())
    }
    .await;
    // Give the server a moment to close its side (ffmpeg finalizes, then closes).
    let _ = timeout(Duration::from_secs(10), reader).await;
    result
}

/// Where a TS publisher sends: UDP datagrams of 7 packets, a TCP stream, or an SRT
/// connection (7 packets per SRT message, as srt-live-transmit sends).
enum TsTarget {
    Udp(tokio::net::UdpSocket),
    Tcp(TcpStream),
    Srt(Box<srt_tokio::SrtSocket>),
}

const DATAGRAM: usize = 7 * PACKET;

impl TsTarget {
    async fn open(url: &str, within: Duration) -> Result<TsTarget> {
        let (scheme, rest) = url.split_once("://").context("URL has no scheme")?;
        let (addr, query) = rest.split_once('?').unwrap_or((rest, ""));
        match scheme {
            "udp" => {
                let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
                s.connect(addr).await.context("udp connect")?;
                Ok(TsTarget::Udp(s))
            }
            "tcp" => Ok(TsTarget::Tcp(connect(addr, within).await?)),
            "srt" => {
                let streamid = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("streamid="))
                    .map(str::to_owned);
                let s = timeout(
                    within,
                    srt_tokio::SrtSocket::builder().call(addr, streamid.as_deref()),
                )
                .await
                .context("SRT handshake timed out")?
                .context("SRT call")?;
                Ok(TsTarget::Srt(Box::new(s)))
            }
            _ => bail!("URL scheme {scheme:?}: rtmp, udp, tcp or srt"),
        }
    }

    async fn send(&mut self, out: &[u8]) -> Result<()> {
        use futures::SinkExt;
        match self {
            TsTarget::Udp(s) => {
                for d in out.chunks(DATAGRAM) {
                    s.send(d).await?;
                }
            }
            TsTarget::Tcp(s) => s.write_all(out).await?,
            TsTarget::Srt(s) => {
                let now = std::time::Instant::now();
                for d in out.chunks(DATAGRAM) {
                    s.feed((now, Bytes::copy_from_slice(d))).await?;
                }
                s.flush().await?;
            }
        }
        Ok(())
    }

    async fn finish(self) -> Result<()> {
        use futures::SinkExt;
        match self {
            TsTarget::Udp(_) => {}
            TsTarget::Tcp(mut s) => s.shutdown().await?,
            TsTarget::Srt(mut s) => s.close().await?,
        }
        Ok(())
    }
}

/// One TS publisher: the source's packets at their send times, shifted by the feed's
/// offset and a period per loop. Each elementary stream stops at its first PES due
/// at or after the end, so every frame sent is whole.
async fn run_ts_feed(
    args: &Args,
    source: &TsSource,
    i: u32,
    url: &str,
    r: &mut FeedReport,
) -> Result<()> {
    let mut target = TsTarget::open(url, Duration::from_secs_f64(args.connect_timeout)).await?;
    r.live = true;
    let offset_ms = u64::from(i) * 1000; // every feed's timestamps are its own
    let duration_ms = (args.duration * 1000.0) as u64;
    let give_up_ms = (args.give_up * 1000.0) as u64;
    let n = source.packets.len();
    let period = u64::from(source.period_ms);
    let at = |k: usize| (k / n) as u64 * period + u64::from(source.packets[k % n].at_ms);
    // Elementary streams, and those whose last PES before the end has been sent.
    let mut streams: Vec<u16> = Vec::new();
    for p in source.packets.iter().filter(|p| p.starts.is_some()) {
        let q = pid(source.bytes(p));
        if !streams.contains(&q) {
            streams.push(q);
        }
    }
    let mut ended: Vec<u16> = Vec::new();
    let mut rewriter = TsRewriter::new();
    let mut out = BytesMut::with_capacity(256 * 1024);
    let start = Instant::now();
    let mut next = 0usize;
    while ended.len() < streams.len() && at(next) < duration_ms + 5000 {
        let due = at(next);
        sleep_until(start + Duration::from_millis(due)).await;
        let now_ms = start.elapsed().as_millis() as u64;
        if due < duration_ms {
            note_lag(now_ms, due, give_up_ms, r)?;
        }
        // Everything due within the next 10 ms goes in one send.
        while ended.len() < streams.len() && at(next) <= now_ms + 10 {
            let p = &source.packets[next % n];
            let bytes = source.bytes(p);
            let q = pid(bytes);
            let shift = (next / n) as u64 * period;
            next += 1;
            if let Some(kind) = p.starts {
                if shift + u64::from(p.dts_ms) >= duration_ms && !ended.contains(&q) {
                    ended.push(q);
                }
                if !ended.contains(&q) {
                    match kind {
                        TagKind::Video => r.video_sent += 1,
                        _ => r.audio_sent += 1,
                    }
                }
            }
            let send = if streams.contains(&q) {
                !ended.contains(&q)
            } else {
                at(next - 1) < duration_ms
            };
            if send {
                rewriter.write(&mut out, bytes, offset_ms + shift);
            }
        }
        if !out.is_empty() {
            target.send(&out).await?;
            r.bytes_sent += out.len() as u64;
            out.clear();
        }
    }
    target.finish().await
}

/// Opens an RTP session for `stream` through the API at `http` (host:port); the
/// RTP ports of its video and audio tracks.
async fn open_rtp_session(
    http: &str,
    key: &str,
    stream: &str,
    tracks: serde_json::Value,
) -> Result<(u16, u16)> {
    let url = format!("http://{http}/v1/rtp-sessions");
    let body = serde_json::json!({"stream": stream, "tracks": tracks});
    let auth = format!("Bearer {key}");
    // ureq is blocking: off the generator's one thread.
    let v: serde_json::Value = tokio::task::spawn_blocking(move || {
        ureq::post(&url)
            .set("Authorization", &auth)
            .timeout(Duration::from_secs(10))
            .send_json(body)
            .map_err(|e| match e {
                ureq::Error::Status(s, r) => {
                    anyhow::anyhow!("{s}: {}", r.into_string().unwrap_or_default())
                }
                e => e.into(),
            })?
            .into_json()
            .context("session JSON")
    })
    .await??;
    let port = |i: usize| {
        v["tracks"][i]["rtp_port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .with_context(|| format!("no rtp_port for track {i} in {v}"))
    };
    Ok((port(0)?, port(1)?))
}

/// One RTP publisher: a session opened through the API, then every frame's
/// payloads at its FLV decode time, with this feed's SSRCs, sequence numbers and
/// timestamps (a loop's length more on each loop); a BYE on each track at the end.
async fn run_rtp_feed(
    args: &Args,
    source: &RtpSource,
    i: u32,
    url: &str,
    r: &mut FeedReport,
) -> Result<()> {
    let rest = url
        .strip_prefix("rtp://")
        .context("URL must start with rtp://")?;
    let (http, stream) = rest.split_once('/').context("URL has no stream name")?;
    let (video_port, audio_port) =
        open_rtp_session(http, &args.api_key, stream, source.tracks_json()).await?;
    let host = http.rsplit_once(':').map_or(http, |(h, _)| h);
    let socket = |port: u16| {
        let to = format!("{host}:{port}");
        async move {
            let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
            s.connect(&to)
                .await
                .with_context(|| format!("udp connect {to}"))?;
            Ok::<_, anyhow::Error>(s)
        }
    };
    let (video, audio) = (socket(video_port).await?, socket(audio_port).await?);
    r.live = true;

    // Every feed's SSRCs, sequence numbers and timestamps are its own.
    let ssrc = |track: u32| 0x4544_0000 ^ (i << 1 | track);
    let mut seq = [(i as u16).wrapping_mul(997), (i as u16).wrapping_mul(991)];
    let ts_base = [i.wrapping_mul(90_000), i.wrapping_mul(48_000)];
    let duration_ms = (args.duration * 1000.0) as u64;
    let give_up_ms = (args.give_up * 1000.0) as u64;
    let n = source.frames.len();
    let period = u64::from(source.period_ms);
    let sched = |k: usize| (k / n) as u64 * period + u64::from(source.frames[k % n].send_ms);
    let mut packet = BytesMut::with_capacity(rtp_source::MTU + 12);
    let start = Instant::now();
    let mut next = 0usize;
    while sched(next) < duration_ms {
        let due = sched(next);
        let now_ms = until_due(start, due, give_up_ms, r).await?;
        // Everything due within the next 10 ms goes now.
        while sched(next) < duration_ms && sched(next) <= now_ms + 10 {
            let f = &source.frames[next % n];
            let loops = (next / n) as u32;
            next += 1;
            let (t, pt, sock) = match f.kind {
                TagKind::Video => (0, rtp_source::VIDEO_PT, &video),
                _ => (1, rtp_source::AUDIO_PT, &audio),
            };
            let ts = ts_base[t]
                .wrapping_add(loops.wrapping_mul(source.period_ticks(f.kind)))
                .wrapping_add(f.ts);
            for (k, p) in f.payloads.iter().enumerate() {
                let last = k + 1 == f.payloads.len();
                rtp_source::write_header(&mut packet, pt, last, seq[t], ts, ssrc(t as u32));
                packet.extend_from_slice(p);
                sock.send(&packet).await?;
                r.bytes_sent += packet.len() as u64;
                packet.clear();
                seq[t] = seq[t].wrapping_add(1);
            }
            match f.kind {
                TagKind::Video => r.video_sent += 1,
                _ => r.audio_sent += 1,
            }
        }
    }
    // RTCP goes to the port after each RTP port.
    for (t, port) in [(0u32, video_port), (1, audio_port)] {
        let s = socket(port + 1).await?;
        s.send(&rtp_source::bye(ssrc(t))).await?;
    }
    Ok(())
}
