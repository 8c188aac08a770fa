//! `sim_speed`: how fast the simulation runs, through simctl's own API.
//!
//! - `sim_speed/<scenario>`: one run of `scenarios/<scenario>.toml` at the
//!   file's fixed seed, on this one thread (one core). Throughput is set in
//!   elements of one *simulated millisecond*, so criterion's `Kelem/s` reads
//!   directly as simulated seconds per wall second (target for overload:
//!   ≥ 200).
//! - the sweep figure (printed and written to
//!   `<criterion home>/sim_speed/figures.json`, not a criterion timing: one
//!   sample is already many seconds): the whole library over `SIM_SWEEP_SEEDS`
//!   seeds (default 4) on two worker threads, as `simctl run --seeds` spreads
//!   it, in library seeds per minute and the projected wall time of a
//!   1000-seed sweep (target: ≤ 10 min on 2 cores).
//!
//! - the floor (printed, and in `figures.json`): turmoil 0.7.2 ticks every
//!   host's runtime, and the network's own, on every step, whether or not
//!   anything happens. An empty world with the same hosts, stepped over the
//!   same simulated time, is the speed no simulation of that world can beat;
//!   each scenario's speed is shown beside it, and the sweep beside the
//!   library's floor.
//!
//! Scenarios the issue names that are not in the library yet are reported as
//! pending, never replaced by another.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::measurement::Measurement;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use serde_json::json;
use simctl::runner::{RunOptions, run_one};
use simctl::scenario::{Scenario, load};
use simctl::sweep::{Loaded, WorkItem, run_all};
use simctl::world::TICK_MS;

/// The scenarios whose speed the issue asks for, at their own fixed seeds.
const SPEED_SCENARIOS: [&str; 2] = ["overload", "steady-state"];

/// Worker threads of the sweep figure: the CI machine's cores.
const SWEEP_THREADS: usize = 2;

/// Seeds of the sweep figure unless `SIM_SWEEP_SEEDS` says otherwise; at most
/// `SWEEP_SEEDS_MAX` so that a typo cannot start an hour-long bench.
const SWEEP_SEEDS_DEFAULT: u64 = 4;
const SWEEP_SEEDS_MAX: u64 = 1000;

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn load_scenario(path: &Path) -> Scenario {
    load(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn sim_speed<M: Measurement<Value = Duration>>(c: &mut Criterion<M>) {
    let mut group = c.benchmark_group("sim_speed");
    // One run takes about a second: ten flat samples of one run each, not
    // criterion's linear ramp (which would take minutes).
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for name in SPEED_SCENARIOS {
        let path = scenarios_dir().join(format!("{name}.toml"));
        if !path.exists() {
            println!(
                "sim_speed/{name}: PENDING: {} is not in the scenario library yet",
                path.display()
            );
            continue;
        }
        let file = format!("scenarios/{name}.toml");
        let scenario = load_scenario(&path);
        let seed = scenario.seed;
        // One untimed run: the simulated length (deterministic for the seed)
        // and a check that the bench measures a run that passes.
        let probe = run_one(&file, &scenario, seed, RunOptions::default());
        assert!(
            probe.passed(),
            "{file} seed {seed} fails its own checks: fix the run before timing it"
        );
        let floor = floor_speed(host_count(&scenario), probe.sim_ms);
        println!(
            "sim_speed/{name}: seed {seed}, {:.1} simulated s, {:.0} simulated s per wall s (untimed probe); \
             floor of an empty world of {} hosts: {floor:.0}",
            probe.sim_ms / 1e3,
            probe.sim_ms / probe.wall_ms,
            host_count(&scenario)
        );
        group.throughput(Throughput::Elements(probe.sim_ms.round() as u64));
        group.bench_function(BenchmarkId::new(name, seed), |b| {
            b.iter_custom(|iters| {
                let start = common::Stopwatch::start();
                for _ in 0..iters {
                    std::hint::black_box(run_one(&file, &scenario, seed, RunOptions::default()));
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

/// Hosts of a scenario's world: the coordinator, the agent, each backend.
fn host_count(scenario: &Scenario) -> usize {
    2 + scenario.backends.len()
}

/// Simulated seconds per wall second of an empty turmoil world of `hosts`
/// hosts at simctl's tick, over `sim_ms` of simulated time (one untimed
/// measurement on this thread, wall clock).
fn floor_speed(hosts: usize, sim_ms: f64) -> f64 {
    let mut sim = turmoil::Builder::new()
        .tick_duration(Duration::from_millis(TICK_MS))
        .simulation_duration(Duration::from_secs(u64::MAX / 4_000))
        .build();
    for h in 0..hosts {
        sim.host(format!("idle-{h}"), || async {
            std::future::pending::<()>().await;
            Ok(())
        });
    }
    let steps = (sim_ms / TICK_MS as f64).round() as u64;
    let start = common::Stopwatch::start_wall();
    for _ in 0..steps {
        sim.step().expect("an idle world cannot fail");
    }
    sim_ms / start.elapsed().as_secs_f64() / 1e3
}

fn sweep_seeds() -> u64 {
    match std::env::var("SIM_SWEEP_SEEDS") {
        Ok(v) => {
            let n: u64 = v.parse().unwrap_or_else(|e| panic!("SIM_SWEEP_SEEDS={v:?}: {e}"));
            assert!(
                (1..=SWEEP_SEEDS_MAX).contains(&n),
                "SIM_SWEEP_SEEDS must be 1..={SWEEP_SEEDS_MAX}"
            );
            n
        }
        Err(_) => SWEEP_SEEDS_DEFAULT,
    }
}

fn sim_sweep<M: Measurement>(_c: &mut Criterion<M>) {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let scenarios: Vec<Loaded> = paths
        .iter()
        .map(|p| Loaded {
            file: format!("scenarios/{}", p.file_name().expect("name").to_string_lossy()),
            scenario: load_scenario(p),
        })
        .collect();
    let seeds = sweep_seeds();
    let items: Vec<WorkItem> = (0..scenarios.len())
        .flat_map(|scenario| (1..=seeds).map(move |seed| WorkItem { scenario, seed }))
        .collect();
    // Wall time always: the figure is seeds per wall minute on 2 cores.
    let start = common::Stopwatch::start_wall();
    let reports = run_all(&scenarios, &items, RunOptions::default(), SWEEP_THREADS);
    let wall_s = start.elapsed().as_secs_f64();
    let failed = reports.iter().filter(|r| !r.passed()).count();
    let seeds_per_min = seeds as f64 / wall_s * 60.0;
    let projected_1000_s = wall_s / seeds as f64 * 1000.0;
    let sim_s: f64 = reports.iter().map(|r| r.sim_ms / 1e3).sum();
    let floor_1000_min = sweep_floor_min(&scenarios, &reports);
    println!(
        "sim_sweep: {} scenarios × {seeds} seeds = {} runs on {SWEEP_THREADS} threads in {wall_s:.1} s \
         ({failed} failed): {seeds_per_min:.1} library seeds/min, {:.0} simulated s per wall s; \
         a 1000-seed sweep would take {:.1} min (target ≤ 10); turmoil's floor for it: {floor_1000_min:.1} min",
        scenarios.len(),
        items.len(),
        sim_s / wall_s,
        projected_1000_s / 60.0
    );
    let figures = json!({
        "clock": "wall",
        "scenarios": scenarios.iter().map(|l| l.file.clone()).collect::<Vec<_>>(),
        "seeds": seeds,
        "threads": SWEEP_THREADS,
        "runs": items.len(),
        "failed_runs": failed,
        "wall_s": wall_s,
        "library_seeds_per_min": seeds_per_min,
        "projected_1000_seed_sweep_min": projected_1000_s / 60.0,
        "floor_1000_seed_sweep_min": floor_1000_min,
    });
    let dir = common::criterion_home().join("sim_speed");
    std::fs::create_dir_all(&dir).expect("create figures dir");
    std::fs::write(
        dir.join("figures.json"),
        serde_json::to_string_pretty(&figures).expect("json"),
    )
    .expect("write");
}

/// The least time a 1000-seed sweep of the library could take on
/// `SWEEP_THREADS` threads if the hosts did no work at all: each run's
/// simulated time at the floor speed of its world's host count (measured
/// once per host count over 10 simulated s), perfectly shared out.
fn sweep_floor_min(scenarios: &[Loaded], reports: &[simctl::runner::RunReport]) -> f64 {
    let mut floor_by_hosts = std::collections::BTreeMap::new();
    let mut wall_s = 0.0;
    for report in reports {
        let loaded = scenarios
            .iter()
            .find(|l| l.file == report.file)
            .expect("report of a loaded scenario");
        let hosts = host_count(&loaded.scenario);
        let speed = *floor_by_hosts
            .entry(hosts)
            .or_insert_with(|| floor_speed(hosts, 10_000.0));
        wall_s += report.sim_ms / 1e3 / speed;
    }
    let seeds = reports.len() as f64 / scenarios.len() as f64;
    wall_s / seeds * 1000.0 / SWEEP_THREADS as f64 / 60.0
}

common::bench_main!(sim_speed, sim_sweep);
