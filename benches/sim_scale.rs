//! `sim_scale`: how a run's cost grows with its work (issue 16).
//!
//! `scenarios/steady-state.toml`, changed only to `max_concurrent = 256`,
//! `max_num_seqs = 512` on both backends and a Poisson rate of 5, 20, 80,
//! 320 and 1000 jobs per second, without its `[expect]`
//! tables (their bounds are the 5 jobs/s file's), every oracle rule on, at
//! seed 1, one run per rate on this one thread. Per rate it reports:
//!
//! - the simulation's speed: simulated seconds per wall second of
//!   `world::run` (which also collects the records into the trace);
//! - the **judging share**: the thread CPU time of everything after the
//!   simulation (trace view, oracle, metrics, expectations, trace hash,
//!   freeing it all; `runner::judge_outcome`) over the whole run's;
//! - **bytes per trace event held at the peak**: the most heap the run held
//!   at once (a counting global allocator, `peak_alloc`), above what was
//!   held before it started, divided by the trace's events. The run is
//!   deterministic and single-threaded, so that figure is exact.
//!
//! Not a criterion timing (one sample is already seconds): the figures are
//! printed and written to `<criterion home>/sim_scale/scale.json`, which
//! `benches/gate.py` reads. `SIM_SCALE_RATES=5,20,80,320,1000` picks the
//! rates (default: the gated five); `SIM_SCALE_DURATION_S` lengthens the
//! scripted phase (the soak: see benches/README.md).

use std::time::Duration;

use cpu_time::ThreadTime;
use peak_alloc::PeakAlloc;
use serde_json::json;
use simctl::runner::{RunOptions, judge_outcome};
use simctl::scenario::Scenario;
use simctl::scenario::load::parse;
use simctl::wall::Stopwatch;

/// Counts every heap byte the process holds, and the most it ever held.
#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

/// The rates the gate holds (jobs per second).
const RATES_DEFAULT: &[u64] = &[5, 20, 80, 320, 1000];
/// The file the curve scales up, at its own seed.
const BASE_SCENARIO: &str = "steady-state";
/// The base file's scripted phase and arrival window, in ms.
const BASE_DURATION_MS: u64 = 40_000;
const BASE_ARRIVALS_END_MS: u64 = 38_000;
/// Longest scripted phase `SIM_SCALE_DURATION_S` may ask for (one hour).
const DURATION_S_MAX: u64 = 3_600;

/// `steady-state.toml` at `rate` jobs/s over `duration_ms`, 256 slots.
fn scaled_scenario(rate: u64, duration_ms: u64) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{BASE_SCENARIO}.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // The [expect] tables come last; their bounds belong to 5 jobs/s.
    let body = text.split("\n[expect").next().expect("split yields one part");
    let arrivals_end_ms = duration_ms - (BASE_DURATION_MS - BASE_ARRIVALS_END_MS);
    let scaled = body
        .replace("max_concurrent = 16", "max_concurrent = 256")
        .replace("max_num_seqs = 64", "max_num_seqs = 512")
        .replace("rate_per_sec = 5.0", &format!("rate_per_sec = {rate}.0"))
        .replace(
            &format!("duration_ms = {BASE_DURATION_MS}"),
            &format!("duration_ms = {duration_ms}"),
        )
        .replace(
            &format!("end_ms = {BASE_ARRIVALS_END_MS}"),
            &format!("end_ms = {arrivals_end_ms}"),
        );
    assert_eq!(
        scaled.matches("max_num_seqs = 512").count(),
        2,
        "{BASE_SCENARIO}.toml changed shape: the scale curve's substitutions no longer apply"
    );
    assert!(scaled.contains("max_concurrent = 256") && scaled.contains(&format!("rate_per_sec = {rate}.0")));
    parse(&format!("{BASE_SCENARIO}@{rate}/s"), &scaled).unwrap_or_else(|e| panic!("scaled scenario: {e}"))
}

/// One point of the curve.
struct Point {
    rate: u64,
    jobs: u64,
    events: usize,
    sim_s: f64,
    sim_wall_s: f64,
    sim_cpu_s: f64,
    judge_cpu_s: f64,
    peak_bytes: usize,
    /// The most held while the world ran.
    sim_peak_bytes: usize,
    /// Held when `world::run` returned: the trace (the world is gone).
    trace_bytes: usize,
}

impl Point {
    fn judge_share(&self) -> f64 {
        self.judge_cpu_s / (self.sim_cpu_s + self.judge_cpu_s)
    }

    fn bytes_per_event(&self) -> usize {
        self.peak_bytes / self.events.max(1)
    }
}

fn measure(rate: u64, duration_ms: u64) -> Point {
    let scenario = scaled_scenario(rate, duration_ms);
    let seed = scenario.seed;
    let file = format!("{BASE_SCENARIO}@{rate}/s");
    let held_before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let wall = Stopwatch::start();
    let cpu = ThreadTime::now();
    let outcome = simctl::world::run(&scenario, seed);
    let sim_cpu = cpu.elapsed();
    let sim_wall_s = wall.elapsed().as_secs_f64();
    let sim_peak_bytes = HEAP.peak_usage().saturating_sub(held_before);
    let trace_bytes = HEAP.current_usage().saturating_sub(held_before);
    let judged = ThreadTime::now();
    let report = judge_outcome(
        &file,
        &scenario,
        seed,
        RunOptions::default(),
        Vec::new(),
        outcome,
        sim_wall_s * 1e3,
    );
    let judge_cpu = judged.elapsed();
    let peak_bytes = HEAP.peak_usage().saturating_sub(held_before);
    assert!(
        report.passed(),
        "{file} seed {seed} fails its own checks: {:?}",
        report.verdict.violations.first()
    );
    Point {
        rate,
        jobs: report.metrics.outcomes.get("jobs").copied().unwrap_or_default(),
        events: report.trace_events,
        sim_s: report.sim_ms / 1e3,
        sim_wall_s,
        sim_cpu_s: secs(sim_cpu),
        judge_cpu_s: secs(judge_cpu),
        peak_bytes,
        sim_peak_bytes,
        trace_bytes,
    }
}

/// Where criterion (and the gate, through `CRITERION_HOME`) keeps results.
fn criterion_home() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        Into::into,
    );
    target.join("criterion")
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn env_rates() -> Vec<u64> {
    match std::env::var("SIM_SCALE_RATES") {
        Ok(v) => v
            .split(',')
            .map(|r| {
                r.trim()
                    .parse()
                    .unwrap_or_else(|e| panic!("SIM_SCALE_RATES={v:?}: {e}"))
            })
            .collect(),
        Err(_) => RATES_DEFAULT.to_vec(),
    }
}

fn env_duration_ms() -> u64 {
    match std::env::var("SIM_SCALE_DURATION_S") {
        Ok(v) => {
            let s: u64 = v.parse().unwrap_or_else(|e| panic!("SIM_SCALE_DURATION_S={v:?}: {e}"));
            assert!(
                (BASE_DURATION_MS / 1_000..=DURATION_S_MAX).contains(&s),
                "SIM_SCALE_DURATION_S must be 40..={DURATION_S_MAX}"
            );
            s * 1_000
        }
        Err(_) => BASE_DURATION_MS,
    }
}

fn main() {
    // Criterion's arguments (`--bench`, filters) are accepted and ignored.
    let duration_ms = env_duration_ms();
    let points: Vec<Point> = env_rates().into_iter().map(|r| measure(r, duration_ms)).collect();
    println!(
        "sim_scale: {BASE_SCENARIO}.toml, max_concurrent 256, {} simulated s scripted, seed 1, one thread",
        duration_ms / 1_000
    );
    println!(
        "{:>6} {:>7} {:>9} {:>7} {:>9} {:>9} {:>9} {:>7} {:>10} {:>8} {:>12} {:>9}",
        "jobs/s",
        "jobs",
        "events",
        "sim s",
        "sim/wall",
        "sim cpu",
        "judge cpu",
        "share",
        "peak MB",
        "B/event",
        "sim peak MB",
        "trace MB"
    );
    for p in &points {
        println!(
            "{:>6} {:>7} {:>9} {:>7.1} {:>9.1} {:>9.2} {:>9.3} {:>6.1}% {:>10.1} {:>8} {:>12.1} {:>9.1}",
            p.rate,
            p.jobs,
            p.events,
            p.sim_s,
            p.sim_s / p.sim_wall_s,
            p.sim_cpu_s,
            p.judge_cpu_s,
            p.judge_share() * 100.0,
            p.peak_bytes as f64 / 1e6,
            p.bytes_per_event(),
            p.sim_peak_bytes as f64 / 1e6,
            p.trace_bytes as f64 / 1e6
        );
    }
    let figures = json!({
        "scenario": BASE_SCENARIO,
        "duration_ms": duration_ms,
        "clock": "thread cpu (share), wall (sim s per wall s)",
        "points": points.iter().map(|p| json!({
            "rate": p.rate,
            "jobs": p.jobs,
            "events": p.events,
            "sim_s": p.sim_s,
            "sim_s_per_wall_s": p.sim_s / p.sim_wall_s,
            "sim_cpu_s": p.sim_cpu_s,
            "judge_cpu_s": p.judge_cpu_s,
            "judge_share": p.judge_share(),
            "peak_bytes": p.peak_bytes,
            "bytes_per_event": p.bytes_per_event(),
            "sim_peak_bytes": p.sim_peak_bytes,
            "trace_bytes": p.trace_bytes,
        })).collect::<Vec<_>>(),
    });
    let dir = criterion_home().join("sim_scale");
    std::fs::create_dir_all(&dir).expect("create figures dir");
    std::fs::write(
        dir.join("scale.json"),
        serde_json::to_string_pretty(&figures).expect("json"),
    )
    .expect("write");
}
