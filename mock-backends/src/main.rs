//! `mock-backend`: one fake inference server on a real TCP port, so the
//! agent or any OpenAI client can be pointed at it outside the simulation.
//!
//! `mock-backend --listen 127.0.0.1:8000 [--kind vllm] [--profile FILE [--host NAME]] [--seed N] [--record-json FILE]`
//!
//! Without `--profile` it serves the built-in default profile (one model,
//! `sim-model`). Exit status: 0 on Ctrl-C or SIGTERM, 2 when it cannot
//! start (bad arguments, an unreadable or invalid profile, an address in
//! use), 1 when accepting fails or the record cannot be written.

use std::io::{self, IsTerminal as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use clap::Parser;
use mock_backends::{Clock, Kind, MockBackend, Recorder, RequestRecord, default_profile, profile_from_file_text};
use serde::Serialize;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Records kept in memory by default; the oldest go first.
const RECORDS_KEPT_MAX_DEFAULT: usize = 100_000;

/// A fake vLLM / llama.cpp / LM Studio / Ollama server with scripted timing and faults.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on, e.g. 127.0.0.1:8000; port 0 picks a free port
    /// (logged at start-up and written to the record).
    #[arg(long)]
    listen: SocketAddr,
    /// Server to imitate: vllm, llamacpp, lmstudio or ollama. Default: the
    /// profile's kind (vllm for the built-in profile).
    #[arg(long)]
    kind: Option<Kind>,
    /// Behaviour profile: a TOML file with the keys of one `[[backends]]`
    /// table, or a scenario file (pick its backend with --host). Default:
    /// one model, `sim-model`, every key at its default.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// With a scenario file as --profile: the `host` of the backend to serve
    /// (may be left out when the scenario has only one).
    #[arg(long, requires = "profile")]
    host: Option<String>,
    /// Seed of the server's random number generator.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write every request record as JSON to this file on exit (Ctrl-C or
    /// SIGTERM): the same records simctl reads, body as text.
    #[arg(long)]
    record_json: Option<PathBuf>,
    /// Most request records kept in memory; the oldest are dropped (and
    /// counted in the record file's `records_dropped`).
    #[arg(long, default_value_t = RECORDS_KEPT_MAX_DEFAULT)]
    records_max: usize,
}

/// The `--record-json` document.
#[derive(Serialize)]
struct RecordFile<'a> {
    backend: &'a str,
    kind: Kind,
    /// The address actually bound (never port 0).
    listen: SocketAddr,
    seed: u64,
    connections_accepted: u64,
    connections_refused: u64,
    /// Every request that arrived, kept or not.
    requests_total: usize,
    /// The oldest records dropped past `--records-max`.
    records_dropped: usize,
    records: Vec<RequestRecord>,
}

/// Logs to stderr, in colour only when it is a terminal (and `NO_COLOR`
/// is unset), so logs redirected to a file stay plain text.
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(colour)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let args = Args::parse();
    let (backend, listener, bound) = match start(&args).await {
        Ok(started) => started,
        Err(err) => {
            eprintln!("mock-backend: {err:#}");
            return ExitCode::from(2);
        }
    };
    let code = tokio::select! {
        biased;
        () = stop_signal() => ExitCode::SUCCESS,
        served = backend.clone().serve_tcp(listener) => match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("mock-backend: accepting connections failed: {err}");
                ExitCode::FAILURE
            }
        },
    };
    if let Some(path) = &args.record_json {
        if let Err(err) = write_record(&backend, bound, args.seed, path) {
            eprintln!("mock-backend: {}: {err:#}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!(
            "mock-backend: {} request records written to {}",
            backend.recorder().records().len(),
            path.display()
        );
    }
    code
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                biased;
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn start(args: &Args) -> anyhow::Result<(Arc<MockBackend>, TcpListener, SocketAddr)> {
    let mut spec = match &args.profile {
        Some(path) => load_profile(path, args.host.as_deref())?,
        None => default_profile(),
    };
    if let Some(kind) = args.kind {
        spec.kind = kind;
    }
    if args.listen.port() != 0 {
        spec.port = args.listen.port();
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|err| bind_error(args.listen, &err))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let started = tokio::time::Instant::now();
    let clock: Clock = Arc::new(move || u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
    let recorder = Recorder::bounded(args.records_max.max(1));
    let backend = MockBackend::new(spec, args.seed, clock, recorder)?;
    let models: Vec<&str> = backend.spec().models.iter().map(|m| m.id.as_str()).collect();
    let (host, kind) = (&backend.spec().host, backend.spec().kind);
    tracing::info!(backend = %host, %kind, ?models, "listening on {local}");
    Ok((backend, listener, local))
}

fn load_profile(path: &Path, host: Option<&str>) -> anyhow::Result<mock_backends::BackendSpec> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read profile {}", path.display()))?;
    profile_from_file_text(&text, host).with_context(|| format!("bad profile {}", path.display()))
}

fn write_record(backend: &MockBackend, listen: SocketAddr, seed: u64, path: &Path) -> anyhow::Result<()> {
    let recorder = backend.recorder();
    let records = recorder.records();
    let file = RecordFile {
        backend: &backend.spec().host,
        kind: backend.spec().kind,
        listen,
        seed,
        connections_accepted: recorder.connections_accepted(),
        connections_refused: recorder.connections_refused(),
        requests_total: recorder.len(),
        records_dropped: recorder.len().saturating_sub(records.len()),
        records,
    };
    std::fs::write(path, serde_json::to_vec_pretty(&file)?)?;
    Ok(())
}

fn bind_error(addr: SocketAddr, err: &io::Error) -> anyhow::Error {
    if err.kind() == io::ErrorKind::AddrInUse {
        anyhow!("cannot listen on {addr}: the address is already in use")
    } else {
        anyhow!("cannot listen on {addr}: {err}")
    }
}
