//! `mock-backend`: one fake inference server on a real TCP port, so the
//! agent or any OpenAI client can be pointed at it outside the simulation.
//!
//! `mock-backend --listen 127.0.0.1:8000 --kind vllm --profile FILE [--seed N]`
//!
//! Exit status: 0 on Ctrl-C, 2 when it cannot start (bad arguments, an
//! unreadable or invalid profile, an address in use), 1 when accepting fails.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use clap::Parser;
use mock_backends::{Clock, Kind, MockBackend, Recorder, parse_profile_toml};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Records kept in memory; the binary only logs them.
const RECORDS_KEPT_MAX: usize = 1024;

/// A fake vLLM / llama.cpp / LM Studio / Ollama server with scripted timing and faults.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on, e.g. 127.0.0.1:8000.
    #[arg(long)]
    listen: SocketAddr,
    /// Server to imitate: vllm, llamacpp, lmstudio or ollama.
    #[arg(long)]
    kind: Kind,
    /// Behaviour profile: a TOML file with the keys of one `[[backends]]` table.
    #[arg(long)]
    profile: PathBuf,
    /// Seed of the server's random number generator.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .init();
    let args = Args::parse();
    let (backend, listener) = match start(&args).await {
        Ok(started) => started,
        Err(err) => {
            eprintln!("mock-backend: {err:#}");
            return ExitCode::from(2);
        }
    };
    tokio::select! {
        biased;
        _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
        served = backend.serve_tcp(listener) => match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("mock-backend: accepting connections failed: {err}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn start(args: &Args) -> anyhow::Result<(Arc<MockBackend>, TcpListener)> {
    let mut spec = load_profile(&args.profile)?;
    spec.kind = args.kind;
    if args.listen.port() != 0 {
        spec.port = args.listen.port();
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|err| bind_error(args.listen, &err))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let started = tokio::time::Instant::now();
    let clock: Clock = Arc::new(move || u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
    let recorder = Recorder::bounded(RECORDS_KEPT_MAX);
    let backend = MockBackend::new(spec, args.seed, clock, recorder)?;
    let models: Vec<&str> = backend.spec().models.iter().map(|m| m.id.as_str()).collect();
    tracing::info!(kind = %args.kind, ?models, "listening on {local}");
    Ok((backend, listener))
}

fn load_profile(path: &Path) -> anyhow::Result<mock_backends::BackendSpec> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read profile {}", path.display()))?;
    parse_profile_toml(&text).with_context(|| format!("bad profile {}", path.display()))
}

fn bind_error(addr: SocketAddr, err: &io::Error) -> anyhow::Error {
    if err.kind() == io::ErrorKind::AddrInUse {
        anyhow!("cannot listen on {addr}: the address is already in use")
    } else {
        anyhow!("cannot listen on {addr}: {err}")
    }
}
