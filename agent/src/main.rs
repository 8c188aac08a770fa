//! `provider-agent`: parses arguments, builds the real-world dependencies
//! (TCP, system clock, OS randomness, signals, environment) and hands over to
//! the library. Exit codes: 0 clean shutdown or success, 1 runtime error,
//! 2 bad configuration.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use rand::{RngCore as _, SeedableRng as _};
use rand_chacha::ChaCha20Rng;
use tokio::sync::watch;

use provider_agent::clock::AnchoredClock;
use provider_agent::config::AgentConfig;
use provider_agent::identity::{self, Identity};
use provider_agent::net::TcpConnector;
use provider_agent::observer::NoopObserver;
use provider_agent::provider_id::FileStore;
use provider_agent::run::{AgentDeps, AgentError, EnvLookup};

const EXIT_ERROR: u8 = 1;
const EXIT_BAD_CONFIG: u8 = 2;

/// Serves LLM inference jobs from a marketplace coordinator using local
/// OpenAI-compatible backends.
#[derive(Debug, Parser)]
#[command(name = "provider-agent", version)]
struct Cli {
    /// Path of the agent configuration.
    #[arg(long, global = true, default_value = "agent.toml")]
    config: PathBuf,
    /// Permit plain ws:// to the coordinator and http:// to remote backends.
    #[arg(long, global = true)]
    allow_insecure: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect to the coordinator and serve jobs until SIGINT/SIGTERM.
    Run,
    /// Check the configuration and exit.
    Validate,
    /// Create the identity key (if absent) and print its public key.
    Keygen,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let outcome = match cli.command {
        Command::Validate => validate(&cli),
        Command::Keygen => keygen(&cli),
        Command::Run => run(&cli).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => ExitCode::from(code),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: logs redirected to a file stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
        .init();
}

/// Loads and fully validates the configuration, printing the error (exit 2).
fn load_config(cli: &Cli) -> Result<AgentConfig, u8> {
    let origin = cli.config.display().to_string();
    let config = AgentConfig::load(&cli.config).and_then(|config| {
        config
            .validate(cli.allow_insecure)
            .map_err(|e| e.with_origin(&origin))?;
        Ok(config)
    });
    config.map_err(|error| {
        eprintln!("provider-agent: {error}");
        EXIT_BAD_CONFIG
    })
}

fn validate(cli: &Cli) -> Result<(), u8> {
    let config = load_config(cli)?;
    println!(
        "OK: {}: coordinator {}, {} backend(s), max_concurrent {}",
        cli.config.display(),
        config.coordinator.url,
        config.backends.len(),
        config.limits.max_concurrent
    );
    Ok(())
}

fn keygen(cli: &Cli) -> Result<(), u8> {
    let config = load_config(cli)?;
    let key_path = &config.identity.key_path;
    let existed = key_path.exists();
    let identity = load_identity(key_path)?;
    let state = if existed { "existing key" } else { "created" };
    println!(
        "{}: {state}\npublic key: {}",
        key_path.display(),
        identity.public_key_b64()
    );
    Ok(())
}

async fn run(cli: &Cli) -> Result<(), u8> {
    let config = load_config(cli)?;
    let identity = load_identity(&config.identity.key_path)?;
    let key_path = config.identity.key_path.clone();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // Concurrency role: flips the shutdown watch on the first SIGINT or
    // SIGTERM; the agent then drains and returns. `shutdown_tx` lives in the
    // task, so the agent never sees the sender dropped while it runs.
    let signals = tokio::spawn(async move {
        wait_for_shutdown_signal().await;
        tracing::info!("shutdown requested");
        let _ = shutdown_tx.send(true);
        std::future::pending::<()>().await;
    });
    let env: EnvLookup = Arc::new(|name: &str| std::env::var(name).ok());
    let deps = AgentDeps {
        connector: Arc::new(TcpConnector),
        clock: Arc::new(AnchoredClock::new(unix_ms_now())),
        rng_seed: os_rng().next_u64(),
        shutdown: shutdown_rx,
        observer: Arc::new(NoopObserver),
        env,
        allow_insecure: cli.allow_insecure,
        provider_ids: Arc::new(FileStore::beside_key(&key_path)),
    };
    let result = provider_agent::run::run(config, identity, deps).await;
    signals.abort();
    result.map_err(|error| {
        eprintln!("provider-agent: {error}");
        match error {
            AgentError::Config(_) => EXIT_BAD_CONFIG,
            _ => EXIT_ERROR,
        }
    })
}

fn load_identity(key_path: &Path) -> Result<Identity, u8> {
    identity::load_or_create(key_path, &mut os_rng()).map_err(|error| {
        eprintln!("provider-agent: {error}");
        EXIT_ERROR
    })
}

/// The binary's one source of randomness (identity key, jitter seed): a
/// ChaCha20 RNG seeded from the operating system. The library itself only
/// ever sees bytes or seeds drawn from it.
fn os_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_os_rng()
}

/// Reads the system clock once, to anchor the agent's wall clock.
#[allow(clippy::disallowed_methods)] // The one real-clock read; the agent advances it with tokio time.
fn unix_ms_now() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    biased;
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C will stop the agent")
            }
        }
    }
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::error!(%error, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
}
