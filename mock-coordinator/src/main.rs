//! `mock-coordinator --listen ADDR --scenario FILE [--seed N] [--start-on-auth] [--record-json FILE]`
//!
//! Serves the `[coordinator]` script of a scenario file to a real agent over
//! real TCP in real time, and prints the summary and the digest (with the
//! coordinator's own checks) once the script is done and `drain_ms` has
//! passed, or on ctrl-c. Exit codes: 0 done, 1 the listener failed while
//! serving or the record could not be written, 2 bad arguments, bad
//! scenario or address in use.

use std::io::{ErrorKind, IsTerminal as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use mock_coordinator::{Coordinator, Digest, Log, LogSnapshot, Script, StartOn, tokio_clock};
use serde::Serialize;

#[derive(Parser, Debug)]
#[command(about = "Scriptable, recording mock coordinator for the provider agent")]
struct Args {
    /// Address to listen on, e.g. 127.0.0.1:9000; port 0 picks a free port
    /// (the first line printed names it).
    #[arg(long)]
    listen: SocketAddr,
    /// Scenario file; only its `[coordinator]` table is read.
    #[arg(long)]
    scenario: PathBuf,
    /// Seed of the RNG (nonces, job ids, Poisson gaps, model mix, fractions).
    /// Default: taken from the wall clock and printed.
    #[arg(long)]
    seed: Option<u64>,
    /// Start the script's clock when the first session reaches the steady
    /// state (auth_ok written), not at start-up: a slow-starting agent then
    /// gets every job.
    #[arg(long)]
    start_on_auth: bool,
    /// Also write the whole record (with the digest) as JSON to this file at the end.
    #[arg(long)]
    record_json: Option<PathBuf>,
}

/// The `--record-json` document: the run's settings, `Log::snapshot()`'s
/// fields at the top level, and the digest.
#[derive(Serialize)]
struct RecordFile<'a> {
    /// The address actually bound (never port 0).
    listen: SocketAddr,
    seed: u64,
    start_on_auth: bool,
    /// Microseconds after start-up at which script time zero fell; `null`
    /// when `--start-on-auth` never saw a session.
    time_zero_us: Option<u64>,
    #[serde(flatten)]
    record: &'a LogSnapshot,
    digest: &'a Digest,
}

/// A seed from the wall clock, for runs that did not ask for one.
#[allow(clippy::disallowed_methods)] // The binary's one read of real time: a fresh seed per run.
fn wall_clock_seed() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_nanos() as u64)
}

fn load(path: &Path) -> Result<Script, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Script::from_scenario_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Logs to stderr, in colour only when it is a terminal (and `NO_COLOR`
/// is unset), so logs redirected to a file stay plain text.
fn init_tracing() {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    init_tracing();
    let args = Args::parse();
    let script = match load(&args.scenario) {
        Ok(script) => script,
        Err(e) => {
            eprintln!("mock-coordinator: {e}");
            return ExitCode::from(2);
        }
    };
    let (listener, bound) = match bind(args.listen).await {
        Ok(bound) => bound,
        Err(e) => {
            eprintln!("mock-coordinator: {e}");
            return ExitCode::from(2);
        }
    };
    let seed = args.seed.unwrap_or_else(wall_clock_seed);
    let drain = Duration::from_millis(script.drain_ms);
    let start = if args.start_on_auth {
        StartOn::FirstSession
    } else {
        StartOn::ClockZero
    };
    let coord = match Coordinator::with_start(script, seed, tokio_clock(), Log::new(), start) {
        Ok(coord) => coord,
        Err(e) => {
            eprintln!("mock-coordinator: {}: {e}", args.scenario.display());
            return ExitCode::from(2);
        }
    };
    let end_ms = coord.script_end_us() / 1000;
    let zero = if args.start_on_auth {
        "after the first session authenticates"
    } else {
        "after start-up"
    };
    println!("mock-coordinator: listening on ws://{bound}/ (seed {seed}, last timed action at {end_ms} ms {zero})");
    let code = serve(&coord, listener, drain).await;
    if let Some(zero_us) = coord.time_zero_us().filter(|_| args.start_on_auth) {
        println!("script time zero: {:.3} s after start-up", zero_us as f64 / 1e6);
    }
    let digest = coord.digest();
    println!("{}", coord.log().summary());
    print!("{digest}");
    if let Some(path) = &args.record_json {
        let file = RecordFile {
            listen: bound,
            seed,
            start_on_auth: args.start_on_auth,
            time_zero_us: coord.time_zero_us(),
            record: &coord.log().snapshot(),
            digest: &digest,
        };
        if let Err(e) = write_record(&file, path) {
            eprintln!("mock-coordinator: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    code
}

/// Binds the listener and reads back the address really bound.
async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), String> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        let what = if e.kind() == ErrorKind::AddrInUse {
            "address already in use"
        } else {
            "cannot listen"
        };
        format!("{addr}: {what}: {e}")
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("{addr}: cannot read the bound address: {e}"))?;
    Ok((listener, bound))
}

/// Serves until the script is done plus the drain time, ctrl-c, or a
/// listener failure.
async fn serve(coord: &Arc<Coordinator>, listener: tokio::net::TcpListener, drain: Duration) -> ExitCode {
    coord.start();
    // The accept loop's handle: watched so that a failing listener ends the
    // run; dropped (detached) otherwise, as the process exits right after.
    let mut server = tokio::spawn(coord.clone().serve_tcp(listener));
    let finished = async {
        coord.wait_finished().await;
        tokio::time::sleep(drain).await;
    };
    tokio::select! {
        biased;
        _ = tokio::signal::ctrl_c() => {
            eprintln!("mock-coordinator: interrupted");
            ExitCode::SUCCESS
        }
        result = &mut server => {
            eprintln!("mock-coordinator: listener stopped: {result:?}");
            ExitCode::FAILURE
        }
        () = finished => ExitCode::SUCCESS,
    }
}

fn write_record(file: &RecordFile<'_>, path: &Path) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(file)?;
    std::fs::write(path, json)?;
    Ok(())
}
