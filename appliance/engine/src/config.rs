//! Everything an operator can set. Defaults are embedded: `edgerec serve` runs with no
//! file. The binary layers a TOML file and `EDGEREC_*` variables on top (figment).
//!
//! [`REFERENCE`] is the documented default configuration; a test checks that it
//! parses to exactly [`Config::default`], and the README embeds it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use edgerec_media::{Codec, MediaKind, TrackInfo};
use edgerec_mux::Format;
use serde::{de, Deserialize, Deserializer, Serialize};

use crate::naming::{NameEncoding, Template};
use crate::units::{ByteSize, HumanDuration};

/// The documented default configuration (TOML).
pub const REFERENCE: &str = include_str!("../config-reference.toml");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    /// Shard threads (each with its own io_uring); 0 = one per CPU core.
    pub shards: usize,
    pub http: HttpConfig,
    pub rtmp: RtmpConfig,
    pub mpegts: MpegTsConfig,
    pub rtsp: RtspConfig,
    pub rtp: RtpConfig,
    pub recording: RecordingConfig,
    pub naming: NamingConfig,
    pub storage: StorageConfig,
    pub log: LogConfig,
    pub extensions: ExtensionsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./edgerec-data"),
            shards: 0,
            http: HttpConfig::default(),
            rtmp: RtmpConfig::default(),
            mpegts: MpegTsConfig::default(),
            rtsp: RtspConfig::default(),
            rtp: RtpConfig::default(),
            recording: RecordingConfig::default(),
            naming: NamingConfig::default(),
            storage: StorageConfig::default(),
            log: LogConfig::default(),
            extensions: ExtensionsConfig::default(),
        }
    }
}

impl Config {
    pub fn recordings_dir(&self) -> PathBuf {
        self.data_dir.join("recordings")
    }

    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }

    pub fn shard_count(&self) -> usize {
        if self.shards > 0 {
            self.shards
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// Checks what serde cannot: templates parse, patterns compile, sizes are sane.
    pub fn validate(&self) -> Result<(), String> {
        Template::parse(&self.recording.template)
            .map_err(|e| format!("recording.template: {e}"))?;
        crate::policy::RecordPolicy::new(&self.recording)
            .map_err(|e| format!("recording.streams: {e}"))?;
        for (i, t) in self.mpegts.inputs.iter().enumerate() {
            check_stream_name(&t.stream).map_err(|e| format!("mpegts.inputs[{i}]: {e}"))?;
            if t.group.is_some() && t.transport != TsTransport::Udp {
                return Err(format!("mpegts.inputs[{i}]: group is for udp inputs"));
            }
            let srt_only = t.connect.is_some()
                || t.streamid.is_some()
                || t.passphrase.is_some()
                || t.latency.is_some();
            if srt_only && t.transport != TsTransport::Srt {
                return Err(format!(
                    "mpegts.inputs[{i}]: connect, streamid, passphrase and latency are for srt inputs"
                ));
            }
            if let Some(p) = &t.passphrase {
                if !(10..=79).contains(&p.len()) {
                    return Err(format!(
                        "mpegts.inputs[{i}]: an SRT passphrase has 10 to 79 characters"
                    ));
                }
            }
        }
        for (i, s) in self.rtsp.sources.iter().enumerate() {
            check_stream_name(&s.stream).map_err(|e| format!("rtsp.sources[{i}]: {e}"))?;
            let scheme = s.url.split("://").next().unwrap_or("");
            if !matches!(scheme, "rtsp" | "rtsps") || url::Url::parse(&s.url).is_err() {
                return Err(format!(
                    "rtsp.sources[{i}]: {:?} is not an rtsp:// URL",
                    s.url
                ));
            }
        }
        if self.rtmp.tls_listen.is_some()
            && (self.rtmp.tls_cert.is_none() || self.rtmp.tls_key.is_none())
        {
            return Err("rtmp: tls_listen needs tls_cert and tls_key".into());
        }
        if self.rtsp.publish_user.is_some() != self.rtsp.publish_password.is_some() {
            return Err("rtsp: publish_user and publish_password go together".into());
        }
        if self.rtp.port_min > self.rtp.port_max || self.rtp.port_min < 1024 {
            return Err("rtp: port_min must be at least 1024 and not above port_max".into());
        }
        let f = self.recording.fragment.0;
        if f.as_millis() < 100 || f.as_secs() > 60 {
            return Err("recording.fragment must be between 100ms and 60s".into());
        }
        if self.rtmp.max_message_size.0 < 64 * 1024 || self.rtmp.max_message_size.0 >= 1 << 24 {
            return Err(
                "rtmp.max_message_size must be at least 64K and below 16M (the RTMP limit)".into(),
            );
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    #[default]
    Attachment,
    Inline,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Admin bearer token. Unset: read from DATA_DIR/api-key, generated at first start.
    pub api_key: Option<String>,
    /// Content-Disposition of recording downloads.
    pub download: Disposition,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: ([0, 0, 0, 0], 8080).into(),
            api_key: None,
            download: Disposition::Attachment,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtmpConfig {
    pub listen: SocketAddr,
    /// Longest RTMP message accepted (a key frame must fit).
    pub max_message_size: ByteSize,
    /// Chunk size the server sends with.
    pub chunk_size: u32,
    /// A client must finish the handshake and publish within this time.
    pub handshake_timeout: HumanDuration,
    /// A publisher that sends nothing for this long is disconnected.
    pub idle_timeout: HumanDuration,
    /// Longest wait between reads of a live feed, letting its data gather in the
    /// socket buffer (fast feeds are read sooner). 0: read as soon as data arrives.
    /// What the socket holds unread is lost to a power cut with the fragment in
    /// flight.
    pub read_coalesce: HumanDuration,
    /// RTMPS: where TLS publishers connect (off unless set, with a certificate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain and private key for RTMPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        RtmpConfig {
            listen: ([0, 0, 0, 0], 1935).into(),
            max_message_size: ByteSize(8 << 20),
            chunk_size: 4096,
            handshake_timeout: HumanDuration(std::time::Duration::from_secs(10)),
            idle_timeout: HumanDuration(std::time::Duration::from_secs(30)),
            read_coalesce: HumanDuration(std::time::Duration::from_millis(500)),
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MpegTsConfig {
    /// A feed that sends nothing for this long ends (its recording is finalized).
    pub idle_timeout: HumanDuration,
    /// Ports that take MPEG-TS, each carrying one named stream.
    pub inputs: Vec<TsInput>,
}

impl Default for MpegTsConfig {
    fn default() -> Self {
        MpegTsConfig {
            idle_timeout: HumanDuration(std::time::Duration::from_secs(5)),
            inputs: Vec::new(),
        }
    }
}

/// One MPEG-TS input: a port and the stream (`app/name`) it carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsInput {
    pub transport: TsTransport,
    /// The local address (for an SRT caller: the local end, e.g. "0.0.0.0:0").
    pub listen: SocketAddr,
    /// The stream's name; for SRT, the default when the caller sends no stream id.
    pub stream: String,
    /// UDP only: a multicast group to join on `listen`'s address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<std::net::Ipv4Addr>,
    /// SRT only: call this listener (edgerec pulls) instead of listening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<SocketAddr>,
    /// SRT only: the stream id sent when calling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streamid: Option<String>,
    /// SRT only: AES passphrase (10 to 79 characters); callers without it are
    /// refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<String>,
    /// SRT only: receive latency (the retransmission window), default 120ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<HumanDuration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TsTransport {
    Udp,
    Tcp,
    Srt,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtspConfig {
    /// Whether publishers may push (ANNOUNCE/RECORD) to `listen`.
    pub push: bool,
    pub listen: SocketAddr,
    /// Credentials publishers must give (digest or basic); none: anyone may publish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_password: Option<String>,
    /// Cameras and servers to pull from, each recorded as a named stream.
    pub sources: Vec<RtspSource>,
}

impl Default for RtspConfig {
    fn default() -> Self {
        RtspConfig {
            push: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 8554)),
            publish_user: None,
            publish_password: None,
            sources: Vec::new(),
        }
    }
}

/// RTP sessions opened through the API (`POST /v1/rtp-sessions`): SFUs and media
/// servers relaying participants' RTP, as mediasoup's PlainTransport or Janus's
/// rtp_forward send it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtpConfig {
    /// Address the sessions' UDP ports are bound on.
    pub listen_ip: std::net::IpAddr,
    /// Ports handed out, RTP on even ports and RTCP on the next odd one.
    pub port_min: u16,
    pub port_max: u16,
    /// How long a lost packet is waited for (reordering, NACK retransmissions).
    pub jitter: HumanDuration,
    /// A session whose sender goes quiet this long ends (so does one that never
    /// starts sending), and its recording is finalized.
    pub idle_timeout: HumanDuration,
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            listen_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            port_min: 40000,
            port_max: 40999,
            jitter: HumanDuration(std::time::Duration::from_millis(200)),
            idle_timeout: HumanDuration(std::time::Duration::from_secs(30)),
        }
    }
}

/// An RTSP source: pulled while edgerec runs, reconnected with backoff.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtspSource {
    /// `rtsp://host[:port]/path` (credentials may be in the URL or below).
    pub url: String,
    pub stream: String,
    #[serde(default)]
    pub transport: RtspTransport,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Workarounds for cameras that break the RTSP/RTP rules in known ways.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quirks: Vec<RtspQuirk>,
}

/// A named workaround for a camera's RTSP bug (each maps to a retina policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RtspQuirk {
    /// The PLAY response's RTP-Info `rtptime` is wrong: start every stream at zero
    /// instead of syncing them by it.
    IgnoreRtptime,
    /// The RTP-Info `seq` is wrong (beyond the 0/1 values always ignored, as the
    /// Hikvision DS-2CD2032-I and Tapo C320WS send): take it from the packets.
    IgnoreRtpInfoSeq,
    /// Each SETUP answers with a different session id: keep the first.
    FirstSessionId,
    /// RTCP arrives with an SSRC the SETUP did not announce: use it anyway.
    AnyRtcpSsrc,
    /// live555-based servers that keep sending a dead TCP session's data on a
    /// new connection: treat unknown interleaved channels as that bug.
    Live555StaleSession,
    /// The camera misbehaves after TEARDOWN: never send it.
    NoTeardown,
    /// Timestamps jump backwards or far ahead: enforce a monotonic clock
    /// (at most 10 s forward per frame), ending the session otherwise.
    MonotonicTimestamps,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RtspTransport {
    /// RTP interleaved on the RTSP connection: works through NAT and firewalls.
    #[default]
    Tcp,
    /// RTP over UDP (LAN only: no reordering).
    Udp,
}

/// Checks a configured stream name: `app/name`, printable, no empty or dot-only
/// segments (it becomes part of file names through the template).
pub fn check_stream_name(name: &str) -> Result<(), String> {
    let mut parts = name.split('/');
    let ok = name.len() <= 256
        && !name.chars().any(|c| c.is_control())
        && parts.clone().count() == 2
        && parts.all(|p| !p.is_empty() && p != "." && p != "..");
    if ok {
        Ok(())
    } else {
        Err(format!("stream {name:?} must look like \"app/name\""))
    }
}

/// Which live streams are recorded without being asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordMode {
    /// Every published stream.
    #[default]
    All,
    /// None: recordings start only by API.
    None,
    /// Streams whose `app/name` matches one of `streams` (glob patterns).
    Matching,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    pub record: RecordMode,
    /// Glob patterns on `app/name` for `record = "matching"` (e.g. `"live/cam*"`).
    pub streams: Vec<String>,
    pub template: String,
    pub container: Container,
    /// For `container = "auto"`: the container per codec (of the first video
    /// track, else the first audio track). Entries given here replace the
    /// defaults for their codec; see [`Containers`].
    pub containers: Containers,
    pub rotation: Rotation,
    /// Durability unit: a fragment ends at the first key frame after half of this,
    /// or at this at the latest. A power cut loses at most one fragment.
    pub fragment: HumanDuration,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            record: RecordMode::All,
            streams: Vec::new(),
            template: "{app}/{streamName}/{year}-{month}-{day}/{streamName}_{startTime}".into(),
            container: Container::Auto,
            containers: Containers::default(),
            rotation: Rotation::default(),
            fragment: HumanDuration(std::time::Duration::from_secs(1)),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    /// By codec, from `recording.containers` (as Flashphoner's record_formats).
    #[default]
    Auto,
    /// Fragmented MP4 while recording, finalized in place.
    Mp4,
    /// Matroska: holds every codec edgerec records, G.711 included.
    Mkv,
    /// WebM: VP8/VP9/AV1 and Opus, what browsers play.
    Webm,
    /// MPEG-TS: H.264, H.265, AAC, MP3, Opus, for pipelines that take TS.
    Ts,
}

impl Container {
    /// The container a file of `tracks` is written in. `Auto`: the container
    /// of the video codec (the audio codec's when there is no video), unless it
    /// cannot hold the audio and the audio codec's container holds both (a
    /// camera's H.264 + G.711 goes to Matroska rather than lose its sound).
    pub fn resolve(self, tracks: &[TrackInfo], map: &Containers) -> Format {
        let first = |kind| tracks.iter().find(|t| t.kind() == kind).map(|t| t.codec);
        let holds_all = |f: Format| tracks.iter().all(|t| f.holds(t.codec));
        match self {
            Container::Mp4 => Format::Mp4,
            Container::Mkv => Format::Mkv,
            Container::Webm => Format::Webm,
            Container::Ts => Format::Ts,
            Container::Auto => {
                let by_video = first(MediaKind::Video).map(|c| map.get(c));
                let by_audio = first(MediaKind::Audio).map(|c| map.get(c));
                match (by_video, by_audio) {
                    (Some(v), Some(a)) if !holds_all(v) && holds_all(a) => a,
                    (Some(v), _) => v,
                    (None, Some(a)) => a,
                    (None, None) => Format::Mp4,
                }
            }
        }
    }

    pub fn of(format: Format) -> Container {
        match format {
            Format::Mp4 => Container::Mp4,
            Format::Mkv => Container::Mkv,
            Format::Webm => Container::Webm,
            Format::Ts => Container::Ts,
        }
    }
}

/// Codec → container for `container = "auto"`, written as a table of codec
/// names (`vp8 = "webm"`). Defaults: MP4 for H.264, H.265, AV1, VP9, AAC, MP3
/// and Opus; WebM for VP8 (MP4 has no VP8 binding); Matroska for G.711 (the
/// one common container that holds it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Containers(BTreeMap<Codec, Container>);

impl Containers {
    pub fn get(&self, codec: Codec) -> Format {
        match self.0.get(&codec) {
            Some(c) if *c != Container::Auto => c.resolve(&[], self),
            _ => match codec {
                Codec::Vp8 => Format::Webm,
                Codec::Pcma | Codec::Pcmu => Format::Mkv,
                _ => Format::Mp4,
            },
        }
    }
}

impl Serialize for Containers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Containers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = BTreeMap::<Codec, Container>::deserialize(d)?;
        if let Some((codec, _)) = m.iter().find(|(_, c)| **c == Container::Auto) {
            return Err(serde::de::Error::custom(format!(
                "recording.containers.{}: name a container, not auto",
                codec.name()
            )));
        }
        Ok(Containers(m))
    }
}

/// When to start a new part. Written as a string (`"20s"`, `"5m"`, `"10M"`) or a
/// table (`{ duration = "5m", size = "1G", numbering = true }`). A cut happens at the
/// first key frame at or after the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rotation {
    pub duration: Option<HumanDuration>,
    pub size: Option<ByteSize>,
    /// Suffix parts `_1`, `_2`, ... (unless the template has `{part}`).
    pub numbering: bool,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            duration: None,
            size: None,
            numbering: true,
        }
    }
}

impl Rotation {
    pub fn enabled(&self) -> bool {
        self.duration.is_some() || self.size.is_some()
    }

    /// Parses the string form: a duration (`20s`, `5m`, `1h`) or a size (`10M`, `1G`);
    /// `off` or `0` for none.
    pub fn parse(s: &str) -> Result<Rotation, String> {
        let t = s.trim();
        if t.is_empty() || t == "off" || t == "0" {
            return Ok(Rotation::default());
        }
        if t.ends_with(['K', 'M', 'G', 'T', 'B']) {
            let size = ByteSize::parse(t)?;
            return Ok(Rotation {
                size: Some(size),
                ..Rotation::default()
            });
        }
        let d = HumanDuration::parse(t).map_err(|_| {
            format!(
                "invalid rotation {s:?}: a duration (\"20s\", \"5m\") or a size (\"10M\", \"1G\")"
            )
        })?;
        Ok(Rotation {
            duration: Some(d),
            ..Rotation::default()
        })
    }
}

impl<'de> Deserialize<'de> for Rotation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            duration: Option<String>,
            size: Option<ByteSize>,
            numbering: Option<bool>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            T(Table),
        }
        match Raw::deserialize(d)? {
            Raw::S(s) => Rotation::parse(&s).map_err(de::Error::custom),
            Raw::T(t) => {
                let duration = match t.duration.as_deref() {
                    None | Some("off") | Some("0") | Some("") => None,
                    Some(s) => Some(HumanDuration::parse(s).map_err(de::Error::custom)?),
                };
                Ok(Rotation {
                    duration,
                    size: t.size.filter(|s| s.0 > 0),
                    numbering: t.numbering.unwrap_or(true),
                })
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamingConfig {
    /// Characters removed from file names (control characters always are).
    pub exclude: String,
    pub encoding: NameEncoding,
}

impl Default for NamingConfig {
    fn default() -> Self {
        NamingConfig {
            exclude: ":*?\"<>|".into(),
            encoding: NameEncoding::None,
        }
    }
}

/// When the writer makes data durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncPolicy {
    /// fdatasync after every fragment: a power cut loses at most one fragment.
    #[default]
    Fragment,
    /// Leave it to the kernel (about 30 s of dirty pages); finalize still syncs.
    Finalize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Below this much free space no recording starts and running ones stop cleanly.
    pub min_free: ByteSize,
    pub sync: SyncPolicy,
    /// Write with O_DIRECT from aligned buffers (fragments padded to 4 KiB with
    /// `free` boxes). Needs a file system that supports it (ext4, XFS; not tmpfs).
    pub o_direct: bool,
    /// Reserve disk space ahead of the write position in steps of this size (0: off).
    pub preallocate: ByteSize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            min_free: ByteSize(1 << 30),
            sync: SyncPolicy::Fragment,
            o_direct: false,
            preallocate: ByteSize(8 << 20),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter: `info`, `debug`, `edgerec_engine=debug,info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

/// Wasm extensions: which to load and what they are bound to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExtensionsConfig {
    /// The most any extension may be given per call, whatever it asks.
    pub cap: edgerec_ext::Limits,
    /// Extensions loaded at start.
    pub load: Vec<ExtensionEntry>,
    /// Naming extensions by stream; the first match names the files.
    pub naming: Vec<ExtensionBinding>,
    /// Hooks by stream; every match runs after each finalized part.
    pub hooks: Vec<ExtensionBinding>,
    /// Layout extensions by layout name.
    pub layouts: BTreeMap<String, String>,
    /// Calls a hook gets for one part before it is marked failed.
    pub hook_attempts: u32,
    /// Wait before a hook's first retry; doubled after each, at most 10 minutes.
    pub hook_backoff: HumanDuration,
    /// Hooks running at once, across all recordings.
    pub hook_concurrency: u32,
    /// How long a webhook POST may take (connect to the last byte of the answer).
    pub webhook_timeout: HumanDuration,
}

impl Default for ExtensionsConfig {
    fn default() -> Self {
        ExtensionsConfig {
            cap: edgerec_ext::Limits::CAP,
            load: Vec::new(),
            naming: Vec::new(),
            hooks: Vec::new(),
            layouts: BTreeMap::new(),
            hook_attempts: 5,
            hook_backoff: HumanDuration(std::time::Duration::from_secs(2)),
            hook_concurrency: 2,
            webhook_timeout: HumanDuration(std::time::Duration::from_secs(10)),
        }
    }
}

/// One extension to load: its component, and what its manifest says unless
/// overridden here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionEntry {
    pub id: String,
    /// The component (`.wasm`).
    pub file: PathBuf,
    /// Its `extension.toml`, whose fields are the defaults for this entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<edgerec_ext::World>,
    /// Key/value pairs the guest reads (over the manifest's, key by key).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: edgerec_ext::LimitOverrides,
    /// URL prefixes its webhook actions may POST to (added to the manifest's).
    #[serde(default)]
    pub webhook_allow: Vec<String>,
    /// URL prefixes a `hook-http` extension's own requests may reach (added to
    /// the manifest's); that world needs at least one, the others none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<u32>,
}

/// An extension bound to the streams whose key (`app/name`) matches a glob.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionBinding {
    pub streams: String,
    pub extension: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_is_the_defaults() {
        let c: Config = toml::from_str(REFERENCE).unwrap();
        assert_eq!(c, Config::default());
        c.validate().unwrap();
    }

    #[test]
    fn containers_by_codec() {
        use edgerec_media::{AudioParams, TrackId, TrackParams, VideoParams};
        let track = |codec: Codec| TrackInfo {
            id: TrackId(1),
            codec,
            params: match codec.kind() {
                MediaKind::Video => TrackParams::Video(VideoParams {
                    width: 0,
                    height: 0,
                }),
                MediaKind::Audio => TrackParams::Audio(AudioParams {
                    sample_rate: 8000,
                    channels: 1,
                    samples_per_frame: None,
                }),
            },
            config: Default::default(),
            codec_string: String::new(),
        };
        let c: Config =
            toml::from_str("[recording.containers]\nvp9 = \"webm\"\npcmu = \"mp4\"").unwrap();
        let (auto, map) = (c.recording.container, &c.recording.containers);
        assert_eq!(auto, Container::Auto);
        let pick =
            |t: &[Codec]| auto.resolve(&t.iter().map(|&c| track(c)).collect::<Vec<_>>(), map);
        assert_eq!(pick(&[Codec::H264, Codec::Aac]), Format::Mp4);
        assert_eq!(
            pick(&[Codec::Opus, Codec::Vp8]),
            Format::Webm,
            "video decides"
        );
        assert_eq!(pick(&[Codec::Vp9]), Format::Webm, "configured");
        assert_eq!(pick(&[Codec::Pcma]), Format::Mkv, "default kept");
        assert_eq!(pick(&[Codec::Pcmu]), Format::Mp4, "configured");
        assert_eq!(
            pick(&[Codec::H265, Codec::Pcma]),
            Format::Mkv,
            "keeps the sound"
        );
        assert_eq!(
            pick(&[Codec::H264, Codec::Pcmu]),
            Format::Mp4,
            "nothing holds both"
        );
        assert_eq!(pick(&[]), Format::Mp4);
        assert_eq!(
            Container::Mkv.resolve(&[track(Codec::Vp8)], map),
            Format::Mkv
        );
        let e = toml::from_str::<Config>("[recording.containers]\nh264 = \"auto\"").unwrap_err();
        assert!(e.to_string().contains("recording.containers.h264"), "{e}");
        assert!(toml::from_str::<Config>("[recording.containers]\nh263 = \"mp4\"").is_err());
    }

    #[test]
    fn mpegts_inputs() {
        let c: Config = toml::from_str(
            r#"
            [[mpegts.inputs]]
            transport = "udp"
            listen = "0.0.0.0:9000"
            stream = "cams/lobby"
            group = "239.1.1.1"
            [[mpegts.inputs]]
            transport = "tcp"
            listen = "127.0.0.1:9001"
            stream = "enc/main"
            "#,
        )
        .unwrap();
        assert_eq!(c.mpegts.inputs.len(), 2);
        assert_eq!(c.mpegts.inputs[0].transport, TsTransport::Udp);
        assert_eq!(c.mpegts.inputs[0].group, Some([239, 1, 1, 1].into()));
        c.validate().unwrap();
        for bad in ["lobby", "a/b/c", "../x", "a/..", "/x", "a/\n"] {
            let mut c = c.clone();
            c.mpegts.inputs[1].stream = bad.into();
            assert!(c.validate().is_err(), "{bad}");
        }
        let mut c = c.clone();
        c.mpegts.inputs[1].group = Some([239, 1, 1, 2].into());
        assert!(c.validate().unwrap_err().contains("group is for udp"));
    }

    #[test]
    fn rtsp_sources_with_quirks() {
        let c: Config = toml::from_str(
            r#"
            [[rtsp.sources]]
            url = "rtsp://user:pw@10.0.0.20/stream1"
            stream = "cams/door"
            quirks = ["ignore-rtptime", "first-session-id", "no-teardown"]
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        let s = &c.rtsp.sources[0];
        assert_eq!(s.transport, RtspTransport::Tcp);
        assert_eq!(
            s.quirks,
            [
                RtspQuirk::IgnoreRtptime,
                RtspQuirk::FirstSessionId,
                RtspQuirk::NoTeardown
            ]
        );
        let bad: Result<Config, _> = toml::from_str(
            "[[rtsp.sources]]\nurl = \"rtsp://x/y\"\nstream = \"a/b\"\nquirks = [\"be-nice\"]",
        );
        assert!(bad.is_err());
        let mut c2 = c.clone();
        c2.rtsp.sources[0].url = "http://10.0.0.20/stream1".into();
        assert!(c2.validate().is_err());
    }

    #[test]
    fn rotation_forms() {
        assert_eq!(
            Rotation::parse("20s")
                .unwrap()
                .duration
                .unwrap()
                .0
                .as_secs(),
            20
        );
        assert_eq!(Rotation::parse("10M").unwrap().size.unwrap().0, 10 << 20);
        assert!(!Rotation::parse("off").unwrap().enabled());
        assert!(Rotation::parse("soon").is_err());
        let r: Rotation = serde_json::from_str(r#"{"duration":"5m","numbering":false}"#).unwrap();
        assert_eq!(r.duration.unwrap().0.as_secs(), 300);
        assert!(!r.numbering);
        let r: Rotation = serde_json::from_str(r#""5s""#).unwrap();
        assert_eq!(r.duration.unwrap().0.as_secs(), 5);
    }
}

#[cfg(test)]
mod docs {
    /// The README shows the reference verbatim, so it cannot drift.
    #[test]
    fn readme_embeds_the_reference() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(super::REFERENCE),
            "README's configuration reference is stale"
        );
    }
}
