//! `edgerec`: the recording appliance daemon.

mod ext_cli;
mod health_cli;
mod settings;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use edgerec_control::ApiState;
use edgerec_engine::config::LogFormat;
use edgerec_engine::Engine;
use tracing::info;

#[derive(Parser)]
#[command(
    name = "edgerec",
    version,
    about = "Records live feeds (RTMP today) to crash-safe MP4, with a REST API.",
    after_help = "Every setting has an embedded default. Layers, later wins: defaults, the \
TOML file given with --config, EDGEREC_* environment variables (nested keys joined with \
\"__\", e.g. EDGEREC_STORAGE__MIN_FREE=2G; EDGEREC_API_KEY sets the admin token), then \
these flags. `edgerec config` prints every setting with its default and meaning \
(also shown by --help).",
    after_long_help = edgerec_engine::config::REFERENCE
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance.
    Serve(settings::ServeArgs),
    /// Print the configuration reference: every setting, its default and meaning.
    Config {
        /// Print the effective configuration (defaults + file + environment) instead.
        #[arg(long)]
        effective: bool,
        #[command(flatten)]
        args: settings::ServeArgs,
    },
    /// Ask the running daemon's health route (exit 0 when healthy); reads the
    /// same configuration as `serve` to find its HTTP listener.
    Health {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
        #[command(flatten)]
        args: settings::ServeArgs,
    },
    /// Work with Wasm extensions (see extensions/README.md).
    #[command(subcommand)]
    Ext(ext_cli::ExtCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Config {
            effective: false, ..
        } => {
            print!("{}", edgerec_engine::config::REFERENCE);
            Ok(())
        }
        Command::Config {
            effective: true,
            args,
        } => {
            let (config, _) = settings::load(&args)?;
            print!("{}", settings::to_toml(&config)?);
            Ok(())
        }
        Command::Serve(args) => serve(args),
        Command::Health { timeout, args } => {
            let (config, _) = settings::load(&args)?;
            health_cli::check(
                health_cli::target(config.http.listen),
                std::time::Duration::from_secs(timeout.max(1)),
            )
        }
        Command::Ext(cmd) => ext_cli::run(cmd),
    }
}

fn serve(args: settings::ServeArgs) -> anyhow::Result<()> {
    // A file-size limit (RLIMIT_FSIZE) must fail the write with EFBIG, which the
    // recorder handles (that recording stops, its file stays playable), instead of
    // killing the daemon and every other recording with it.
    // SAFETY: installing SIG_IGN for one signal before any thread starts.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let (config, api_key_env) = settings::load(&args)?;
    init_logging(config.log.format, &config.log.level)?;
    let api_key = settings::api_key(&config, api_key_env)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("control")
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let http_addr = config.http.listen;
        let disposition = config.http.download;
        let engine = tokio::task::spawn_blocking(move || Engine::start(config))
            .await?
            .context("starting the engine")?;
        let engine = Arc::new(engine);
        let state = Arc::new(ApiState {
            engine: engine.clone(),
            api_key,
            disposition,
            started: Instant::now(),
            updates: Default::default(),
        });
        let listener = tokio::net::TcpListener::bind(http_addr)
            .await
            .with_context(|| format!("binding the HTTP API to {http_addr}"))?;
        info!(http = %listener.local_addr()?, rtmp = %engine.rtmp_addr(), "edgerec ready");
        let app = edgerec_control::router(state);
        // Peer addresses reach the handlers (WHIP picks its ICE candidate by them).
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("HTTP server")?;
        engine.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    info!("shutdown requested");
}

fn init_logging(format: LogFormat, level: &str) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_new(level))
        .with_context(|| format!("log.level {level:?}"))?;
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => b.init(),
        LogFormat::Json => b.json().init(),
    }
    Ok(())
}
