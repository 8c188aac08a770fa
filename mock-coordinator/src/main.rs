//! `mock-coordinator --listen ADDR --scenario FILE [--seed N] [--record-json FILE]`
//!
//! Serves the `[coordinator]` script of a scenario file to a real agent over
//! real TCP in real time, and prints the summary once the script is done and
//! `drain_ms` has passed, or on ctrl-c. Exit codes: 0 done, 1 the listener
//! failed while serving, 2 bad arguments, bad scenario or address in use.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mock_coordinator::{Coordinator, Log, Script, tokio_clock};

#[derive(Parser, Debug)]
#[command(about = "Scriptable, recording mock coordinator for the provider agent")]
struct Args {
    /// Address to listen on, e.g. 127.0.0.1:9000.
    #[arg(long)]
    listen: SocketAddr,
    /// Scenario file; only its `[coordinator]` table is read.
    #[arg(long)]
    scenario: PathBuf,
    /// Seed of the RNG (nonces, job ids, Poisson gaps, model mix, fractions).
    /// Default: taken from the wall clock and printed.
    #[arg(long)]
    seed: Option<u64>,
    /// Also write the whole record as JSON to this file at the end.
    #[arg(long)]
    record_json: Option<PathBuf>,
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let script = match load(&args.scenario) {
        Ok(script) => script,
        Err(e) => {
            eprintln!("mock-coordinator: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            let what = if e.kind() == ErrorKind::AddrInUse {
                "address already in use"
            } else {
                "cannot listen"
            };
            eprintln!("mock-coordinator: {}: {what}: {e}", args.listen);
            return ExitCode::from(2);
        }
    };
    let seed = args.seed.unwrap_or_else(wall_clock_seed);
    let drain = Duration::from_millis(script.drain_ms);
    let coord = match Coordinator::new(script, seed, tokio_clock(), Log::new()) {
        Ok(coord) => coord,
        Err(e) => {
            eprintln!("mock-coordinator: {}: {e}", args.scenario.display());
            return ExitCode::from(2);
        }
    };
    let end_ms = coord.script_end_us() / 1000;
    println!(
        "mock-coordinator: listening on ws://{}/ (seed {seed}, last timed action at {end_ms} ms)",
        args.listen
    );
    let code = serve(&coord, listener, drain).await;
    println!("{}", coord.log().summary());
    if let Some(path) = &args.record_json
        && let Err(e) = write_record(&coord, path)
    {
        eprintln!("mock-coordinator: {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    code
}

/// Serves until the script is done plus the drain time, ctrl-c, or a
/// listener failure.
async fn serve(coord: &std::sync::Arc<Coordinator>, listener: tokio::net::TcpListener, drain: Duration) -> ExitCode {
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

fn write_record(coord: &Coordinator, path: &Path) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(&coord.log().snapshot())?;
    std::fs::write(path, json)?;
    Ok(())
}
