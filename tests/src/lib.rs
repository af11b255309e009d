//! Harness for end-to-end tests: start the real `edgerec` binary on its own ports and
//! data directory, publish with ffmpeg, inspect with ffprobe and the REST API.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const API_KEY: &str = "e2e-test-key";

/// E2E tests measure time and frames: run them one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The daemon binary, built (debug) on first use unless E2E_EDGEREC_BIN names one
/// (tests/run builds it first). Built with the workspace's whole feature set, so
/// it shares artifacts with `cargo test --workspace` instead of compiling every
/// dependency again.
pub fn binary() -> PathBuf {
    if let Ok(b) = std::env::var("E2E_EDGEREC_BIN") {
        return PathBuf::from(b);
    }
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-q", "--workspace", "--all-targets"])
            .current_dir(workspace())
            .status()
            .expect("running cargo build");
        assert!(st.success(), "building edgerec failed");
    });
    workspace().join("target/debug/edgerec")
}

/// A port free for TCP and UDP on every address, for a daemon to bind next.
///
/// Taken below the kernel's ephemeral range (`ip_local_port_range`, 32768 and up
/// here): a port the kernel hands out for `bind(0)` is also handed to the next
/// outgoing connection (ffmpeg's, the daemon's own), which then holds it when the
/// daemon binds it (a CI run failed on exactly that, "Address already in use").
/// Each test process walks its own stretch (from its pid) so parallel test
/// binaries rarely meet, and skips a port anything already holds.
pub fn free_port() -> u16 {
    use std::net::UdpSocket;
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id() * 97) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        let free = TcpListener::bind(("0.0.0.0", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("0.0.0.0", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if free {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN)
}

/// A running daemon.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub http: u16,
    pub rtmp: u16,
    pub env: Vec<(String, String)>,
    log_path: PathBuf,
    runs: u32,
    /// RLIMIT_FSIZE for the daemon, in bytes (fault injection: writes past it fail).
    pub file_size_limit: Option<u64>,
    /// A TOML configuration file passed with --config.
    pub config: Option<String>,
}

impl Daemon {
    /// Starts edgerec with `env` (EDGEREC_* settings) on fresh ports and data dir.
    pub fn start(env: &[(&str, &str)]) -> Daemon {
        Daemon::start_limited(env, None)
    }

    /// Like [`Daemon::start`], with a configuration file (TOML).
    pub fn start_with_config(config: &str, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_inner(env, None, Some(config.to_owned()))
    }

    /// Like [`Daemon::start`], with a file-size limit on the daemon's files.
    pub fn start_limited(env: &[(&str, &str)], file_size_limit: Option<u64>) -> Daemon {
        Daemon::start_inner(env, file_size_limit, None)
    }

    fn start_inner(
        env: &[(&str, &str)],
        file_size_limit: Option<u64>,
        config: Option<String>,
    ) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("edgerec-e2e")
            .tempdir_in(scratch())
            .unwrap();
        let mut d = Daemon {
            child: None,
            log_path: dir.path().join("edgerec-0.log"),
            dir,
            http: free_port(),
            rtmp: free_port(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            runs: 0,
            file_size_limit,
            config,
        };
        d.spawn();
        d
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn recordings_dir(&self) -> PathBuf {
        self.data_dir().join("recordings")
    }

    fn spawn(&mut self) {
        self.log_path = self.dir.path().join(format!("edgerec-{}.log", self.runs));
        self.runs += 1;
        let log = std::fs::File::create(&self.log_path).unwrap();
        let mut cmd = Command::new(binary());
        cmd.args(["serve", "--data-dir"])
            .arg(self.data_dir())
            .args(["--http", &format!("127.0.0.1:{}", self.http)])
            .args(["--rtmp", &format!("127.0.0.1:{}", self.rtmp)])
            .env("EDGEREC_API_KEY", API_KEY)
            .env("RUST_LOG", "info")
            .args(
                self.config
                    .as_ref()
                    .map(|c| {
                        let path = self.dir.path().join("edgerec.toml");
                        std::fs::write(&path, c).unwrap();
                        vec!["--config".into(), path.into_os_string()]
                    })
                    .unwrap_or_default(),
            )
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(limit) = self.file_size_limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
            unsafe {
                cmd.pre_exec(move || {
                    let l = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &l) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        self.child = Some(cmd.spawn().expect("starting edgerec"));
        let t = Instant::now();
        loop {
            if let Ok(r) = ureq::get(&self.url("/v1/health"))
                .timeout(Duration::from_secs(1))
                .call()
            {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("edgerec exited with {st} at start:\n{}", self.log());
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "edgerec not healthy:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    pub fn rtmp_url(&self, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{stream}", self.rtmp)
    }

    /// Everything the daemon has logged (all runs).
    pub fn log(&self) -> String {
        let mut s = String::new();
        for i in 0..self.runs {
            let p = self.dir.path().join(format!("edgerec-{i}.log"));
            if let Ok(mut f) = std::fs::File::open(p) {
                let _ = f.read_to_string(&mut s);
            }
        }
        s
    }

    /// An API request with the admin token: (status, JSON body or Null).
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = ureq::request(method, &self.url(path))
            .set("Authorization", &format!("Bearer {API_KEY}"))
            .timeout(Duration::from_secs(60));
        let r = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = resp.status();
        let text = resp.into_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn get(&self, path: &str) -> Value {
        let (s, v) = self.api("GET", path, None);
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    pub fn recordings(&self, query: &str) -> Vec<Value> {
        self.get(&format!("/v1/recordings{query}"))["recordings"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `f` returns Some, up to `timeout`.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&Daemon) -> Option<T>,
    ) -> Option<T> {
        let t = Instant::now();
        loop {
            if let Some(v) = f(self) {
                return Some(v);
            }
            if t.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Peak resident memory (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Power-cut stand-in: SIGKILL, no chance to finalize.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let t = Instant::now();
            while c.try_wait().unwrap().is_none() {
                if t.elapsed() > Duration::from_secs(20) {
                    let _ = c.kill();
                    panic!("edgerec did not stop on SIGTERM:\n{}", self.log());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts the daemon again on the same data directory and ports.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- edgerec log ----\n{}", self.log());
        }
        self.kill9();
    }
}

/// Disk-backed scratch space for test data (tmpfs /tmp would hide O_DIRECT and
/// fsync behaviour).
pub fn scratch() -> PathBuf {
    let p = workspace().join("target/e2e");
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// A media file made once by `encode` (given the temporary path to write) and kept
/// in target/e2e/media under `name` for later runs.
pub fn encoded_once(name: &str, encode: impl FnOnce(&Path) -> Command) -> PathBuf {
    let dir = scratch().join("media");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    if path.exists() {
        return path;
    }
    let tmp = dir.join(format!(".{}.{name}", std::process::id()));
    let st = encode(&tmp)
        .stdin(Stdio::null())
        .status()
        .expect("ffmpeg (apt install ffmpeg)");
    assert!(st.success(), "encoding {name}");
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// A file encoded once by `ffmpeg` (a path or a name on PATH) from the test
/// patterns — `testsrc2` at `size` and 25 fps, a 440 Hz sine at `sample_rate`,
/// `secs` long, 4:2:0 — with `args` after (codecs, format), kept under `name`.
pub fn test_pattern(
    ffmpeg: impl AsRef<std::ffi::OsStr>,
    name: &str,
    size: &str,
    sample_rate: u32,
    secs: u32,
    args: &[&str],
) -> PathBuf {
    encoded_once(name, |tmp| {
        let mut c = Command::new(ffmpeg);
        c.args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size={size}:rate=25"))
            .args(["-f", "lavfi", "-i"])
            .arg(format!("sine=frequency=440:sample_rate={sample_rate}"))
            .args(["-t", &secs.to_string(), "-pix_fmt", "yuv420p"])
            .args(args)
            .arg(tmp);
        c
    })
}

/// A source file encoded once by ffmpeg from test patterns: H.264 (x264, B-frames)
/// 640x360 25 fps with a key frame every `gop` frames, AAC 44.1 kHz stereo.
pub fn source(secs: u32, gop: u32) -> PathBuf {
    let gop = gop.to_string();
    test_pattern(
        "ffmpeg",
        &format!("h264_aac_{secs}s_gop{gop}.mp4"),
        "640x360",
        44_100,
        secs,
        &[
            "-c:v", "libx264", "-preset", "veryfast", "-g", &gop, "-b:v", "1M", "-c:a", "aac",
            "-b:a", "96k", "-ac", "2", "-f", "mp4",
        ],
    )
}

/// H.264 (x264 with B-frames, parameter sets before every IDR as encoders and
/// browsers send them over RTP) + Opus 48 kHz stereo, 8 s, as MPEG-TS so ffmpeg
/// and GStreamer can copy both into RTP.
pub fn source_h264_opus() -> PathBuf {
    test_pattern(
        "ffmpeg",
        "h264_opus_8s.ts",
        "640x360",
        48_000,
        8,
        &[
            "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-b:v", "1M", "-c:a", "libopus",
            "-b:a", "64k", "-ac", "2", "-f", "mpegts",
        ],
    )
}

/// A source with H.264 video and the given audio encoder arguments (e.g.
/// `["-c:a", "libmp3lame"]`), as an FLV so any FLV audio codec fits.
pub fn source_with_audio(name: &str, secs: u32, audio: &[&str]) -> PathBuf {
    let mut args = vec!["-c:v", "libx264", "-preset", "veryfast", "-g", "25"];
    args.extend_from_slice(audio);
    args.extend_from_slice(&["-f", "flv"]);
    test_pattern(
        "ffmpeg",
        &format!("{name}_{secs}s.flv"),
        "320x240",
        44_100,
        secs,
        &args,
    )
}

/// Publishes `file` in real time with ffmpeg (`-re -c copy -f flv`).
pub fn publish(file: &Path, url: &str) -> Child {
    publish_as(file, "flv", url)
}

/// Sends `file` in real time with ffmpeg in `format` (`flv`, `mpegts`, ...) to
/// `url` (rtmp://, udp://, tcp://, srt://).
pub fn publish_as(file: &Path, format: &str, url: &str) -> Child {
    Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-i"])
        .arg(file)
        .args(["-c", "copy", "-f", format, url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg")
}

/// The finalized recording of `stream`, waiting up to `timeout` for it.
pub fn finalized(d: &Daemon, stream: &str, timeout: Duration) -> Value {
    d.wait_for(timeout, |d| {
        d.recordings(&format!("?stream={stream}"))
            .into_iter()
            .find(|r| r["state"] == "finalized")
    })
    .unwrap_or_else(|| {
        panic!(
            "{stream} not finalized: {:?}\nlive streams (frames received): {}\n{}",
            d.recordings(""),
            d.get("/v1/streams"),
            d.log()
        )
    })
}

/// Part 1 of `rec` holds every frame of `src` for each of `codecs`, lasts as long
/// within `tolerance` seconds, starts on a key frame and decodes.
pub fn assert_every_frame(d: &Daemon, rec: &Value, src: &Path, codecs: &[&str], tolerance: f64) {
    let want = probe(src);
    let file = part_file(d, rec, 1);
    let got = probe(&file);
    println!("{}: source {want:?}\nrecording {got:?}", rec["stream"]);
    for codec in codecs {
        assert_eq!(
            got.stream(codec).packets,
            want.stream(codec).packets,
            "{codec} frames of {}",
            rec["stream"]
        );
    }
    assert!(
        (got.duration - want.duration).abs() <= tolerance,
        "duration of {}: {} vs {}",
        rec["stream"],
        got.duration,
        want.duration
    );
    assert!(
        starts_with_key_frame(&file),
        "{} starts on a key frame",
        rec["stream"]
    );
    decode_all(&file).unwrap_or_else(|e| panic!("{} decodes: {e}", rec["stream"]));
}

/// Waits until `n` streams are live, each with `tracks` tracks; returns them.
pub fn live_streams(d: &Daemon, n: usize, tracks: usize, timeout: Duration) -> Vec<Value> {
    d.wait_for(timeout, |d| {
        let s = d.get("/v1/streams")["streams"].as_array()?.clone();
        (s.len() == n
            && s.iter()
                .all(|s| s["tracks"].as_array().is_some_and(|t| t.len() == tracks)))
        .then_some(s)
    })
    .unwrap_or_else(|| panic!("streams: {}\n{}", d.get("/v1/streams"), d.log()))
}

/// `rec` lists a `codec` track and says it was not recorded (no MP4 mapping).
pub fn assert_listed_not_recorded(rec: &Value, codec: &str) {
    let track = rec["tracks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["codec"] == codec))
        .unwrap_or_else(|| panic!("{codec} track listed: {rec}"));
    assert_eq!(track["recorded"], false, "{rec}");
}

/// How long a publisher may take to exit before the test gives up on it (the
/// longest source is well under this; a hung client must not hang CI).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

/// Waits for a publisher and returns its exit status and stderr; panics if it
/// has not exited within [`CLIENT_TIMEOUT`].
pub fn finish(c: Child) -> (bool, String) {
    match wait_bounded(c, CLIENT_TIMEOUT) {
        Ok(out) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        Err(e) => panic!("{e}"),
    }
}

/// Runs `cmd` to its end like [`Command::output`], killing it after `timeout`
/// (the error then carries what it printed).
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let c = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    wait_bounded(c, timeout)
}

/// Waits for `c` up to `timeout`, collecting its piped output meanwhile (so a
/// chatty child cannot block on a full pipe); kills it on timeout.
pub fn wait_bounded(mut c: Child, timeout: Duration) -> Result<Output, String> {
    fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    }
    let (out, err) = (drain(c.stdout.take()), drain(c.stderr.take()));
    let start = Instant::now();
    let status = loop {
        match c.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) | Err(_) => {
                let _ = c.kill();
                let _ = c.wait();
                break None;
            }
        }
    };
    let (stdout, stderr) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(format!(
            "pid {} did not exit within {timeout:?}; killed. Its stderr:\n{}",
            c.id(),
            String::from_utf8_lossy(&stderr)
        )),
    }
}

#[derive(Debug, Clone)]
pub struct StreamProbe {
    pub codec: String,
    pub packets: u64,
    pub start: f64,
    pub duration: f64,
}

#[derive(Debug, Clone)]
pub struct Probe {
    pub duration: f64,
    pub streams: Vec<StreamProbe>,
}

impl Probe {
    pub fn stream(&self, codec: &str) -> &StreamProbe {
        self.streams
            .iter()
            .find(|s| s.codec == codec)
            .unwrap_or_else(|| panic!("no {codec} stream in {self:?}"))
    }
}

/// ffprobe with packet counting.
pub fn probe(file: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .args([
            "stream=codec_name,nb_read_packets,start_time,duration:format=duration",
            "-of",
            "json",
        ])
        .arg(file)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let num = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Probe {
        duration: num(&v["format"]["duration"]),
        streams: v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| StreamProbe {
                codec: s["codec_name"].as_str().unwrap_or("").to_owned(),
                packets: num(&s["nb_read_packets"]) as u64,
                start: num(&s["start_time"]),
                duration: num(&s["duration"]),
            })
            .collect(),
    }
}

/// When the packets of stream `select` (`a:0`, `v:0`) end, in seconds: the
/// latest pts + duration (Matroska gives streams no duration of their own).
pub fn stream_end(file: &Path, select: &str) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", select])
        .args([
            "-show_entries",
            "packet=pts_time,duration_time",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(',').map(|x| x.parse::<f64>().unwrap_or(0.0));
            Some(f.next()? + f.next().unwrap_or(0.0))
        })
        .fold(0.0, f64::max)
}

/// Whether the first video packet of `file` is a key frame.
pub fn starts_with_key_frame(file: &Path) -> bool {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=flags",
        ])
        .args(["-read_intervals", "%+#1", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .is_some_and(|l| l.contains('K'))
}

/// Decodes every frame of `file`; `Err(stderr)` on a decode error.
pub fn decode_all(file: &Path) -> Result<(), String> {
    // `-enc_time_base -1`: each decoded stream keeps the file's time base. By
    // default ffmpeg gives video 1/(guessed frame rate), and a browser's frames
    // (irregular under load, every one with its own timestamp) then fall two on
    // one tick, which the null muxer reports as non-monotonic: seen in CI with a
    // valid WHIP VP8 recording (2026-12-07), reproduced with jittered VP8.
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(file)
        .args(["-enc_time_base", "-1", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    if out.status.success() && out.stderr.is_empty() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Seeks to `at` seconds and decodes one video frame.
pub fn seek_decodes(file: &Path, at: f64) -> bool {
    Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-ss", &at.to_string(), "-i"])
        .arg(file)
        .args(["-frames:v", "1", "-f", "null", "-"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Path of part `n` (1-based) of a recording JSON.
pub fn part_file(d: &Daemon, rec: &Value, n: usize) -> PathBuf {
    d.recordings_dir()
        .join(rec["parts"][n - 1]["path"].as_str().expect("part path"))
}
