//! One live run into a [`RunReport`]: the scenario (after its swarm draw)
//! through [`driver::run`] on a runtime of its own, then the same oracle,
//! `[expect]` and metrics as a simulated run — except the rules that read
//! the agent's own events, which are reported as not judged.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::adapter::{Adapter, session_with};
use super::driver::{self, LiveRun, LiveSetup, READY_RULE};
use super::expect::check_live;
use super::memory::{self, AGENT_MEMORY_BOUNDED};
use super::vars::{Dirs, RunPaths};
use super::{LiveInfo, NOT_JUDGED_LIVE};
use crate::expect::{ExpectReport, oracle_config};
use crate::metrics::Metrics;
use crate::oracle::capacity::{OUT_OF_CAPACITY_TRUTHFUL, OUT_OF_CAPACITY_TRUTHFUL_EXTERNAL};
use crate::oracle::{OracleConfig, RULES, Rule, Verdict, Violation, judge_view_with};
use crate::runner::{RunOptions, RunReport};
use crate::scenario::Scenario;
use crate::scenario::swarm::{self, SwarmDraw};
use crate::trace::{Trace, TraceView};
use crate::wall::Stopwatch;

/// Worker threads of each live run's runtime: the mocks, the proxies and
/// the driver together; the agent is a process of its own.
pub const LIVE_RUNTIME_THREADS: usize = 2;
/// How long a finished run's runtime may take to wind down its tasks.
const RUNTIME_SHUTDOWN_MS: u64 = 500;
/// The rule a run fails when its live world could not be set up.
pub const SETUP_RULE: &str = "live_setup";

/// What every live run of one `simctl run --agent` shares.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub adapter: Adapter,
    /// Run directories are made under this one.
    pub live_dir: PathBuf,
    /// The directory of the simctl executable (`${exe_dir}`).
    pub exe_dir: PathBuf,
}

/// Numbers the run directories of this process.
static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

impl LiveOptions {
    /// A fresh directory name for a run of `scenario` with `seed`.
    fn run_dir(&self, scenario: &Scenario, seed: u64) -> PathBuf {
        let name: String = (scenario.name.chars())
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
            .collect();
        let n = RUN_COUNTER.fetch_add(1, Ordering::SeqCst) + 1;
        self.live_dir
            .join(format!("{name}.seed{seed}.{}-{n}", std::process::id()))
    }
}

/// `simctl run FILE --seed SEED --agent ADAPTER`.
pub fn rerun_command(file: &str, seed: u64, adapter: &Adapter) -> String {
    format!("simctl run {file} --seed {seed} --agent {}", adapter.path.display())
}

/// The oracle's configuration for a live run: the scenario's, with the
/// adapter's fixed session settings and `[live] slack_ms` on every timing
/// bound.
pub fn live_oracle_config(scenario: &Scenario, adapter: &Adapter) -> OracleConfig {
    let mut scenario = scenario.clone();
    if let Ok(session) = session_with(&scenario.agent.session, &adapter.session) {
        scenario.agent.session = session;
    }
    let mut config = oracle_config(&scenario);
    let slack_ms = scenario.live.slack_ms;
    let bounds = &mut config.bounds;
    for bound in [
        &mut bounds.cancel_close_ms,
        &mut bounds.deadline_slack_ms,
        &mut bounds.heartbeat_tolerance_ms,
        &mut bounds.reconnect_within_ms,
        &mut bounds.inbound_decision_ms,
    ] {
        *bound += slack_ms;
    }
    config
}

/// The oracle's rules as a live run runs them: each rule with an external
/// formulation that runs alone (`out_of_capacity_truthful`) in place of the
/// whole rule.
pub fn live_rules() -> Vec<Rule> {
    (RULES.iter())
        .map(|rule| {
            if rule.name == OUT_OF_CAPACITY_TRUTHFUL.name {
                OUT_OF_CAPACITY_TRUTHFUL_EXTERNAL
            } else {
                *rule
            }
        })
        .collect()
}

/// Judges `view` with every rule that can be judged live; the others are
/// listed in `not_judged` (unless the scenario skips them itself).
pub fn judge_live(view: &TraceView, config: &OracleConfig, scenario_skips: &BTreeSet<String>) -> Verdict {
    let mut skip = scenario_skips.clone();
    skip.extend(NOT_JUDGED_LIVE.iter().map(|rule| (*rule).to_owned()));
    let mut verdict = judge_view_with(&live_rules(), view, config, &skip);
    let (not_judged, skipped): (Vec<_>, Vec<_>) =
        (verdict.skipped.iter()).partition(|rule| NOT_JUDGED_LIVE.contains(rule) && !scenario_skips.contains(**rule));
    verdict.not_judged = not_judged;
    verdict.skipped = skipped;
    verdict
}

/// Runs `scenario` (from `file`) with `seed` against the adapter's agent.
pub fn run_one_live(file: &str, scenario: &Scenario, seed: u64, live: &LiveOptions, options: RunOptions) -> RunReport {
    match swarm::draw(scenario, seed) {
        Ok(Some((drawn, draws))) => run_drawn(file, &drawn, seed, live, options, draws),
        Ok(None) => run_drawn(file, scenario, seed, live, options, Vec::new()),
        Err(error) => {
            let detail = format!("this seed's draw is not a valid scenario: {error}");
            failed(file, scenario, seed, live, SETUP_RULE, detail)
        }
    }
}

fn run_drawn(
    file: &str,
    scenario: &Scenario,
    seed: u64,
    live: &LiveOptions,
    options: RunOptions,
    draws: Vec<SwarmDraw>,
) -> RunReport {
    let stopwatch = Stopwatch::start();
    let paths = RunPaths::under(&live.run_dir(scenario, seed), &live.adapter.config.file);
    let adapter_dir = (live.adapter.path.parent())
        .map(|dir| std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()))
        .unwrap_or_default();
    let setup = LiveSetup {
        scenario,
        seed,
        adapter: &live.adapter,
        paths: paths.clone(),
        dirs: Dirs {
            exe_dir: live.exe_dir.clone(),
            adapter_dir,
        },
    };
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(LIVE_RUNTIME_THREADS)
        .enable_all()
        .build()
        .map_err(|err| format!("cannot build the live runtime: {err}"))
        .and_then(|runtime| {
            let run = runtime.block_on(driver::run(setup)).map_err(|err| err.to_string());
            runtime.shutdown_timeout(Duration::from_millis(RUNTIME_SHUTDOWN_MS));
            run
        });
    let wall_ms = stopwatch.elapsed().as_secs_f64() * 1e3;
    let mut report = match outcome {
        Err(detail) => failed(file, scenario, seed, live, SETUP_RULE, detail),
        Ok(run) => judged(file, scenario, seed, live, run, options),
    };
    if let Some(info) = &mut report.live {
        info.run_dir = paths.run_dir.display().to_string();
        info.config = paths.config_path.display().to_string();
    }
    report.swarm = draws;
    report.wall_ms = wall_ms;
    report
}

fn judged(
    file: &str,
    scenario: &Scenario,
    seed: u64,
    live: &LiveOptions,
    run: LiveRun,
    options: RunOptions,
) -> RunReport {
    if let Some(why) = &run.not_ready {
        let files: Vec<String> = run.logs.iter().map(|l| format!("stderr {}", l.stderr)).collect();
        let detail = format!("{why}; {}", files.join(", "));
        let mut report = failed(file, scenario, seed, live, READY_RULE, detail);
        if let Some(info) = &mut report.live {
            info.processes = run.logs;
        }
        return report;
    }
    let view = TraceView::build(&run.trace.events);
    let skips: BTreeSet<String> = scenario.expect.skip_rules.iter().map(|s| s.rule.clone()).collect();
    let mut verdict = judge_live(&view, &live_oracle_config(scenario, &live.adapter), &skips);
    let (bound_bytes, bound_from) = memory::bound_of(scenario);
    let (tally, found, memory) = memory::judge(&run.rss, bound_bytes, bound_from);
    verdict.checked.push(AGENT_MEMORY_BOUNDED);
    verdict.tallies.push(tally);
    verdict.violations.extend(found);
    let metrics = Metrics::of(&view);
    let (expect, expect_overrides) = check_live(scenario, &metrics);
    let mut report = base_report(file, scenario, seed, live);
    report.trace_events = run.trace.events.len();
    report.settled = run.settled;
    report.verdict = verdict;
    report.expect = expect;
    report.metrics = metrics;
    report.sim_ms = run.end_us as f64 / 1e3;
    if let Some(info) = &mut report.live {
        info.processes = run.logs;
        info.ready_ms = run.ready_ms;
        info.memory = Some(memory);
        info.expect_overrides = expect_overrides;
    }
    report.trace = options.keep_trace.then_some(run.trace);
    report
}

/// A report of a run that judged nothing but `rule`'s failure.
fn failed(
    file: &str,
    scenario: &Scenario,
    seed: u64,
    live: &LiveOptions,
    rule: &'static str,
    detail: String,
) -> RunReport {
    let mut report = base_report(file, scenario, seed, live);
    report.verdict.checked.push(rule);
    report.verdict.violations.push(Violation::new(rule, None, 0, detail));
    report
}

fn base_report(file: &str, scenario: &Scenario, seed: u64, live: &LiveOptions) -> RunReport {
    RunReport {
        file: file.to_owned(),
        scenario: scenario.name.clone(),
        seed,
        replay: rerun_command(file, seed, &live.adapter),
        // Live runs are not deterministic: no hash is printed for them.
        trace_hash: String::new(),
        trace_events: 0,
        settled: false,
        verdict: Verdict::default(),
        skip_rules: scenario.expect.skip_rules.clone(),
        swarm: Vec::new(),
        expect: ExpectReport::default(),
        metrics: Metrics::default(),
        sim_ms: 0.0,
        wall_ms: 0.0,
        determinism: None,
        harness_error: None,
        trace: None::<Trace>,
        live: Some(LiveInfo::new(&live.adapter, scenario)),
    }
}
