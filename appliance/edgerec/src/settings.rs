//! Where the configuration comes from: embedded defaults, a TOML file, `EDGEREC_*`
//! variables, then flags (figment does the layering and the error messages).

use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use edgerec_engine::config::{Config, LogFormat};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use rand::RngCore;
use std::io::Write;

#[derive(Args, Clone, Debug, Default)]
pub struct ServeArgs {
    /// TOML configuration file (see `edgerec config`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: recordings, index and generated API key [default: ./edgerec-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP API address [default: 0.0.0.0:8080].
    #[arg(long, value_name = "ADDR:PORT")]
    pub http: Option<SocketAddr>,
    /// RTMP ingest address [default: 0.0.0.0:1935].
    #[arg(long, value_name = "ADDR:PORT")]
    pub rtmp: Option<SocketAddr>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long)]
    pub log_json: bool,
}

/// The effective configuration, and the API key from EDGEREC_API_KEY if set.
pub fn load(args: &ServeArgs) -> anyhow::Result<(Config, Option<String>)> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = &args.config {
        if !path.is_file() {
            anyhow::bail!("config file {} not found", path.display());
        }
        fig = fig.merge(Toml::file_exact(path));
    }
    fig = fig.merge(Env::prefixed("EDGEREC_").ignore(&["API_KEY"]).split("__"));
    let mut config: Config = fig
        .extract()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    if let Some(d) = &args.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(a) = args.http {
        config.http.listen = a;
    }
    if let Some(a) = args.rtmp {
        config.rtmp.listen = a;
    }
    if args.log_json {
        config.log.format = LogFormat::Json;
    }
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let env_key = std::env::var("EDGEREC_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    Ok((config, env_key))
}

/// The admin token: the config's, else EDGEREC_API_KEY, else DATA_DIR/api-key,
/// generated (mode 0600) at first start.
pub fn api_key(config: &Config, env: Option<String>) -> anyhow::Result<String> {
    if let Some(k) = config.http.api_key.clone().filter(|k| !k.is_empty()) {
        return Ok(k);
    }
    if let Some(k) = env {
        return Ok(k);
    }
    let path = config.data_dir.join("api-key");
    if let Ok(k) = std::fs::read_to_string(&path) {
        let k = k.trim().to_owned();
        if !k.is_empty() {
            tracing::info!(path = %path.display(), "API key read from file");
            return Ok(k);
        }
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let key = hex::encode(raw);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{key}")?;
    f.sync_all()?;
    tracing::warn!(path = %path.display(), "generated an API key (first start); use it as the bearer token");
    Ok(key)
}

/// The configuration as TOML, with the API key redacted.
pub fn to_toml(config: &Config) -> anyhow::Result<String> {
    let mut c = config.clone();
    if c.http.api_key.is_some() {
        c.http.api_key = Some("<redacted>".into());
    }
    Ok(toml::to_string_pretty(&c)?)
}
