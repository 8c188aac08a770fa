//! One run: a scenario and a seed through the world, the oracle and the
//! expectations, into a [`RunReport`]; optionally twice, to check that the
//! trace is the same byte for byte.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Serialize;

use crate::expect::{ExpectReport, Unmet, check, oracle_config};
use crate::metrics::Metrics;
use crate::oracle::{Verdict, Violation, hosts, judge_view};
use crate::report::worst;
use crate::scenario::Scenario;
use crate::scenario::model::SkipRule;
use crate::scenario::swarm::{self, SwarmDraw};
use crate::trace::{Divergence, Trace, TraceView, first_divergence};
use crate::wall::Stopwatch;
use crate::world::limits::{HarnessError, SimLimits};
use crate::world::{self, WorldRun, panics};

/// What was asked of one run.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Keep the trace in the report (for `--trace`).
    pub keep_trace: bool,
    /// Run twice and compare the traces.
    pub check_determinism: bool,
}

/// The result of a determinism check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeterminismReport {
    /// Hash of the second run.
    pub second_hash: String,
    /// Where the traces first differ (`None`: identical).
    pub divergence: Option<DivergenceReport>,
}

/// [`Divergence`] in report form.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DivergenceReport {
    pub index: usize,
    pub first: Option<String>,
    pub second: Option<String>,
}

impl From<Divergence> for DivergenceReport {
    fn from(d: Divergence) -> Self {
        Self {
            index: d.index,
            first: d.first,
            second: d.second,
        }
    }
}

/// Everything known about one run of one scenario with one seed.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// The scenario file as given on the command line.
    pub file: String,
    pub scenario: String,
    pub seed: u64,
    /// The command that replays this run.
    pub replay: String,
    /// SHA-256 over the trace's JSONL; empty (and not serialised) for a
    /// live run, which is not deterministic.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub trace_hash: String,
    pub trace_events: usize,
    pub settled: bool,
    pub verdict: Verdict,
    /// The scenario's rule opt-outs, with their reasons.
    pub skip_rules: Vec<SkipRule>,
    /// The values this seed drew for the scenario's `[swarm]` targets.
    pub swarm: Vec<SwarmDraw>,
    pub expect: ExpectReport,
    pub metrics: Metrics,
    /// Simulated time covered, in ms.
    pub sim_ms: f64,
    /// Wall time the (first) run took, in ms.
    pub wall_ms: f64,
    pub determinism: Option<DeterminismReport>,
    /// The simulator reached one of its limits and the run stopped there,
    /// unjudged (its trace is empty): a harness error (exit 4), never a
    /// violation of the agent's.
    pub harness_error: Option<HarnessError>,
    /// The trace itself, when asked for.
    #[serde(skip)]
    pub trace: Option<Trace>,
    /// Live runs only (`--agent`): the agent process and its files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<crate::live::LiveInfo>,
}

impl RunReport {
    /// No violation, every expectation met, and the simulator ran to the end.
    pub fn passed(&self) -> bool {
        self.verdict.violations.is_empty() && self.expect.unmet.is_empty() && self.harness_error.is_none()
    }

    /// The determinism check found two different traces.
    pub fn nondeterministic(&self) -> bool {
        self.determinism.as_ref().is_some_and(|d| d.divergence.is_some())
    }

    /// Simulated milliseconds per wall millisecond.
    pub fn speed(&self) -> f64 {
        if self.wall_ms > 0.0 {
            self.sim_ms / self.wall_ms
        } else {
            f64::INFINITY
        }
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> &str {
        &self.replay
    }
}

/// `simctl run <file> --seed <seed>`.
pub fn replay_command(file: &str, seed: u64) -> String {
    format!("simctl run {file} --seed {seed}")
}

/// Runs the world. A simulator limit, or any panic of the harness outside a
/// step, becomes a [`HarnessError`] (the harness must never die with the run).
fn run_world(scenario: &Scenario, seed: u64) -> Result<WorldRun, HarnessError> {
    match catch_unwind(AssertUnwindSafe(|| world::run(scenario, seed))) {
        Ok(run) => run,
        Err(payload) => {
            let mut messages = panics::take_captured();
            panics::stop_capture();
            if messages.is_empty() {
                let text = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()));
                messages.push(text.unwrap_or_else(|| "unknown panic".to_owned()));
            }
            Err(HarnessError::from_panic(
                messages.join("; "),
                None,
                SimLimits::of(&scenario.network),
                |_| None,
            ))
        }
    }
}

/// Runs `scenario` (from `file`) with `seed`, after drawing the seed's
/// values for its `[swarm]` targets, if it has any.
pub fn run_one(file: &str, scenario: &Scenario, seed: u64, options: RunOptions) -> RunReport {
    match swarm::draw(scenario, seed) {
        Ok(Some((drawn, draws))) => run_drawn(file, &drawn, seed, options, draws),
        Ok(None) => run_drawn(file, scenario, seed, options, Vec::new()),
        Err(error) => undrawable(file, scenario, seed, &error.to_string()),
    }
}

/// The report of a run whose swarm draw made an invalid scenario. Loading
/// checks every target's extremes, alone and in pairs, so only a rule of
/// three or more keys could get here; the run fails naming the draw.
fn undrawable(file: &str, scenario: &Scenario, seed: u64, why: &str) -> RunReport {
    RunReport {
        file: file.to_owned(),
        scenario: scenario.name.clone(),
        seed,
        replay: replay_command(file, seed),
        trace_hash: Trace::default().hash(),
        trace_events: 0,
        settled: false,
        verdict: Verdict::default(),
        skip_rules: scenario.expect.skip_rules.clone(),
        swarm: Vec::new(),
        expect: ExpectReport {
            checked: 1,
            unmet: vec![Unmet {
                key: "swarm".to_owned(),
                detail: format!("this seed's draw is not a valid scenario: {why}"),
                worst: Vec::new(),
            }],
        },
        metrics: Metrics::default(),
        sim_ms: 0.0,
        wall_ms: 0.0,
        determinism: None,
        harness_error: None,
        trace: None,
        live: None,
    }
}

fn run_drawn(file: &str, scenario: &Scenario, seed: u64, options: RunOptions, draws: Vec<SwarmDraw>) -> RunReport {
    let stopwatch = Stopwatch::start();
    let outcome = run_world(scenario, seed);
    let wall_ms = stopwatch.elapsed().as_secs_f64() * 1e3;
    judge_outcome(file, scenario, seed, options, draws, outcome, wall_ms)
}

/// Everything after the simulation: the trace view, the oracle, the
/// metrics, the expectations and the trace hash, over what
/// [`world::run`] returned (`wall_ms`: what the simulation took). Public
/// so that a bench can time the simulation and the judging apart.
pub fn judge_outcome(
    file: &str,
    scenario: &Scenario,
    seed: u64,
    options: RunOptions,
    draws: Vec<SwarmDraw>,
    outcome: Result<WorldRun, HarnessError>,
    wall_ms: f64,
) -> RunReport {
    let mut host_panic = None;
    let (trace, sim_us, settled, harness_error) = match outcome {
        Ok(run) => (run.trace, run.sim_us, run.settled, None),
        // A panic inside a step that is none of the simulator's own limits
        // came from a host's software (the agent, or a mock): the run is
        // judged, and the panic is that host's violation at its time.
        Err(error) if error.limit.is_none() && error.at_us.is_some() => {
            let at_us = error.at_us.unwrap_or(0);
            let host = error.host.as_deref().unwrap_or("an unnamed host");
            host_panic = Some(Violation::new(
                hosts::STAY_UP.name,
                None,
                at_us,
                format!(
                    "{host}'s software panicked and the simulation stopped there: {}",
                    error.message
                ),
            ));
            (Trace::default(), at_us, false, None)
        }
        Err(error) => (Trace::default(), error.at_us.unwrap_or(0), false, Some(error)),
    };
    let view = TraceView::build(&trace.events);
    let skip: BTreeSet<String> = scenario.expect.skip_rules.iter().map(|s| s.rule.clone()).collect();
    let metrics = Metrics::of(&view);
    // A run the simulator stopped is not judged: neither the rules nor the
    // expectations get to read its empty trace as the agent's behaviour.
    let (verdict, expect) = if harness_error.is_some() {
        (Verdict::default(), ExpectReport::default())
    } else {
        let mut verdict = judge_view(&view, &oracle_config(scenario), &skip);
        verdict.violations.extend(host_panic);
        let mut expect = check(scenario, &metrics);
        worst::annotate(&mut expect, &view, scenario, &metrics);
        (verdict, expect)
    };
    let trace_hash = trace.hash();
    let determinism = options.check_determinism.then(|| {
        let again = run_world(scenario, seed).map(|run| run.trace).unwrap_or_default();
        DeterminismReport {
            second_hash: again.hash(),
            divergence: first_divergence(&trace, &again).map(Into::into),
        }
    });
    RunReport {
        file: file.to_owned(),
        scenario: scenario.name.clone(),
        seed,
        replay: replay_command(file, seed),
        trace_hash,
        trace_events: trace.events.len(),
        settled,
        verdict,
        skip_rules: scenario.expect.skip_rules.clone(),
        swarm: draws,
        expect,
        metrics,
        sim_ms: sim_us as f64 / 1e3,
        wall_ms,
        determinism,
        harness_error,
        trace: options.keep_trace.then_some(trace),
        live: None,
    }
}
