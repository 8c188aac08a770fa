//! One live run from start to trace: start the world, write the agent's
//! config, start the agent, wait for its first steady state (which starts
//! the script's clock), run the scripted phase applying `[[faults]]`, heal,
//! run the quiet phase until the world settles (as the simulation does),
//! then collect the records into the trace and kill the agent.

use std::time::Duration;

use tokio::sync::watch;

use super::adapter::{Adapter, AdapterError};
use super::clock::ScriptClock;
use super::faults::{AgentAction, LiveFaults};
use super::memory::{RssSample, Sampler, Target};
use super::process::{AgentLog, AgentProcess, Launch, SpawnError};
use super::vars::{Dirs, RunPaths, backend_vars, kind_str, run_vars};
use super::world::{LiveWorld, SetupError};
use crate::oracle::windows::AGENT_HOST;
use crate::scenario::Scenario;
use crate::trace::{Event, EventKind, Phase, Trace};
use crate::world::collect::{self, Records};
use crate::world::{QUIET_TAIL_MS, SETTLE_CHECK_MS, settle};

/// The rule a run fails when the agent never reaches steady state.
pub const READY_RULE: &str = "agent_reaches_steady_state";

/// What one live run needs.
#[derive(Clone, Debug)]
pub struct LiveSetup<'a> {
    pub scenario: &'a Scenario,
    pub seed: u64,
    pub adapter: &'a Adapter,
    pub paths: RunPaths,
    pub dirs: Dirs,
}

/// Why the run could not start at all (the harness's side, not the agent's).
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The outcome of one live run.
#[derive(Clone, Debug)]
pub struct LiveRun {
    pub trace: Trace,
    /// Script time the run covered, in µs.
    pub end_us: u64,
    pub settled: bool,
    /// The agent never reached steady state: why.
    pub not_ready: Option<String>,
    /// Every incarnation of the agent, with its log files.
    pub logs: Vec<AgentLog>,
    /// Real time from the agent's first start to its first steady state.
    pub ready_ms: Option<f64>,
    /// The agent's resident set, sampled from its first steady state on.
    pub rss: Vec<RssSample>,
}

/// The running agent, if any (none between a crash and its restart).
struct Agent {
    launch: Launch,
    process: Option<AgentProcess>,
    logs: Vec<AgentLog>,
    /// Tells the memory sampler which process to read. Concurrency: written
    /// here at each start and end, read by the sampler task.
    target: watch::Sender<Target>,
}

impl Agent {
    fn start(&mut self) -> Result<(), SpawnError> {
        let incarnation = self.logs.len() as u32 + 1;
        let process = self.launch.spawn(incarnation)?;
        self.logs.push(process.log.clone());
        self.target.send_replace(process.pid().map(|pid| (pid, incarnation)));
        self.process = Some(process);
        Ok(())
    }

    async fn kill(&mut self) {
        self.target.send_replace(None);
        if let Some(mut process) = self.process.take() {
            process.kill().await;
            self.keep_log(process);
        }
    }

    fn keep_log(&mut self, process: AgentProcess) {
        if let Some(slot) = self.logs.iter_mut().find(|l| l.incarnation == process.log.incarnation) {
            *slot = process.log;
        }
    }

    /// Resolves when the running process ends by itself (never while none runs).
    async fn exited(&mut self) -> String {
        match &mut self.process {
            Some(process) => process.exited().await,
            None => std::future::pending().await,
        }
    }

    /// After `exited`: keeps the ended process's log and says where to look.
    fn ended(&mut self, end: &str) -> String {
        self.target.send_replace(None);
        let Some(process) = self.process.take() else {
            return end.to_owned();
        };
        let why = format!("{end} (stderr: {})", process.log.stderr);
        self.keep_log(process);
        why
    }
}

/// Writes the agent's config and builds its launch.
fn prepare(setup: &LiveSetup<'_>, world: &LiveWorld) -> Result<Launch, LiveError> {
    let scenario = setup.scenario;
    let paths = &setup.paths;
    let write_error = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| LiveError::Write { path, source }
    };
    std::fs::create_dir_all(&paths.state_dir).map_err(write_error(&paths.state_dir))?;
    let run = run_vars(scenario, setup.seed, &world.endpoints, paths, &setup.dirs);
    let backends: Vec<_> = (scenario.backends.iter().zip(&world.endpoints.backends))
        .map(|(spec, (_, addr))| backend_vars(spec, *addr, scenario, &setup.adapter.kind_name(kind_str(spec.kind))))
        .collect();
    let file = setup.adapter.path.display().to_string();
    let expanded = setup.adapter.expand_all(&file, &run, &backends)?;
    std::fs::write(&paths.config_path, &expanded.config).map_err(write_error(&paths.config_path))?;
    Ok(Launch {
        command: expanded.command,
        env: expanded.env,
        run_dir: paths.run_dir.clone(),
    })
}

/// Runs one live run on the current (multi-thread) runtime.
pub async fn run(setup: LiveSetup<'_>) -> Result<LiveRun, LiveError> {
    let scenario = setup.scenario;
    let world = LiveWorld::start(scenario, setup.seed)?;
    let clock = world.clock.clone();
    let launch = prepare(&setup, &world)?;
    let mut agent = Agent {
        launch,
        process: None,
        logs: Vec::new(),
        target: watch::Sender::new(None),
    };
    let started_us = (world.base)();
    let ready = match agent.start() {
        Err(err) => Err(err.to_string()),
        Ok(()) => wait_ready(&world, &mut agent, setup.adapter.ready_within_ms).await,
    };
    let mut events = Vec::new();
    let mut settled = false;
    let ready_ms = ready
        .as_ref()
        .ok()
        .map(|zero_us| zero_us.saturating_sub(started_us) as f64 / 1e3);
    let not_ready = ready.err();
    let mut rss = Vec::new();
    if not_ready.is_none() {
        let sampler = Sampler::start(scenario, clock.clone(), agent.target.subscribe());
        events.push(Event::new(0, EventKind::Phase { phase: Phase::Scripted }));
        settled = phases(scenario, &world, &clock, &mut agent, &mut events).await;
        rss = sampler.finish();
    }
    let end_us = clock.now_us();
    let records = Records {
        world: events,
        log: world.log.take_snapshot(),
        backends: &world.recorders,
        agent: Vec::new(),
        agent_dropped: 0,
        end_us,
    };
    let trace = collect::trace_of(records);
    agent.kill().await;
    Ok(LiveRun {
        trace,
        end_us,
        settled,
        not_ready,
        logs: agent.logs,
        ready_ms,
        rss,
    })
}

/// Waits for the agent's first steady state (script time zero, set by the
/// coordinator when the session registers): its moment on the world's base
/// clock, or why not if the agent exits or the bound runs out first.
async fn wait_ready(world: &LiveWorld, agent: &mut Agent, ready_within_ms: u64) -> Result<u64, String> {
    tokio::select! {
        biased;
        zero_us = world.wait_ready() => Ok(zero_us),
        end = agent.exited() => {
            let why = agent.ended(&end);
            Err(format!("the agent {why} before reaching steady state"))
        }
        () = tokio::time::sleep(Duration::from_millis(ready_within_ms)) => Err(format!(
            "the agent did not reach steady state (an authenticated session) within ready_within_ms = {ready_within_ms}"
        )),
    }
}

/// The scripted, healed and quiet phases. Returns whether the world settled.
async fn phases(
    scenario: &Scenario,
    world: &LiveWorld,
    clock: &ScriptClock,
    agent: &mut Agent,
    events: &mut Vec<Event>,
) -> bool {
    let mut faults = LiveFaults::new(&scenario.faults, world.links.clone());
    let scripted_end_us = scenario.duration_ms * 1_000;
    while clock.now_us() < scripted_end_us {
        let actions = faults.apply_due(clock.now_us(), events);
        if !act(agent, actions, clock, events).await {
            return false;
        }
        let wake_us = faults.next_due_us().unwrap_or(scripted_end_us).min(scripted_end_us);
        if !sleep_watching(agent, clock, wake_us, events).await {
            return false;
        }
    }
    let now_us = clock.now_us();
    let actions = faults.apply_due(now_us, events);
    let mut alive = act(agent, actions, clock, events).await;
    let actions = faults.heal_all(now_us, events);
    alive &= act(agent, actions, clock, events).await;
    events.push(Event::new(now_us, EventKind::Phase { phase: Phase::Healed }));
    alive && quiet_phase(scenario, world, clock, agent, events).await
}

/// Carries out crashes and restarts; false if a restart could not start.
async fn act(agent: &mut Agent, actions: Vec<AgentAction>, clock: &ScriptClock, events: &mut Vec<Event>) -> bool {
    for action in actions {
        match action {
            AgentAction::Crash => agent.kill().await,
            AgentAction::Restart => {
                if let Err(err) = agent.start() {
                    host_stopped(clock, events, err.to_string());
                    return false;
                }
            }
        }
    }
    true
}

/// Sleeps until script time `wake_us` unless the agent exits first (then
/// records it and returns false).
async fn sleep_watching(agent: &mut Agent, clock: &ScriptClock, wake_us: u64, events: &mut Vec<Event>) -> bool {
    tokio::select! {
        biased;
        end = agent.exited() => {
            let why = agent.ended(&end);
            host_stopped(clock, events, why);
            false
        }
        () = clock.sleep_until_us(wake_us) => true,
    }
}

fn host_stopped(clock: &ScriptClock, events: &mut Vec<Event>, why: String) {
    let kind = EventKind::HostStopped {
        host: AGENT_HOST.to_owned(),
        error: Some(why),
    };
    events.push(Event::new(clock.now_us(), kind));
}

/// Runs until the world settles (then a short tail) or `settle_ms_max` is
/// spent, as the simulation's quiet phase does.
async fn quiet_phase(
    scenario: &Scenario,
    world: &LiveWorld,
    clock: &ScriptClock,
    agent: &mut Agent,
    events: &mut Vec<Event>,
) -> bool {
    let bound_us = clock.now_us() + scenario.settle_ms_max * 1_000;
    loop {
        let next_us = (clock.now_us() + SETTLE_CHECK_MS * 1_000).min(bound_us);
        if !sleep_watching(agent, clock, next_us, events).await {
            return false;
        }
        let now_us = clock.now_us();
        if settle::settled(&world.log, &world.recorders) {
            events.push(Event::new(now_us, EventKind::Phase { phase: Phase::Settled }));
            return sleep_watching(agent, clock, now_us + QUIET_TAIL_MS * 1_000, events).await;
        }
        if now_us >= bound_us {
            events.push(Event::new(
                now_us,
                EventKind::Phase {
                    phase: Phase::SettleBoundHit,
                },
            ));
            return false;
        }
    }
}
