//! Live mode (`simctl run --agent agents/X.toml`): the same scenarios,
//! oracle, `[expect]` and reports, judging an external agent process over
//! real loopback sockets in real time.
//!
//! Files: [`app`] (the `run --agent` command), [`adapter`] (the agent
//! adapter file), [`template`] and [`vars`]
//! (its `${placeholders}`), [`world`] (the mocks in-process on ephemeral
//! ports), [`proxy`] (a TCP proxy per agent link, where link faults act),
//! [`faults`] (which faults apply live, and their schedule), [`process`]
//! (the agent's process and logs), [`clock`] (the script's clock, started
//! at the agent's first steady state), [`driver`] (one run's phases) and
//! [`run`] (one run into a `RunReport`, judged by the live rule list),
//! [`memory`] (the agent's resident set, sampled from the OS, and the
//! `agent_memory_bounded` rule), [`expect`] (`[expect]` with `[live.expect]`
//! replacements), [`report`] (its lines in the human report).
//!
//! A live run is not deterministic: real time, a real scheduler and a real
//! agent. Its report says so and prints no trace hash.

pub mod adapter;
pub mod app;
pub mod clock;
pub mod driver;
pub mod expect;
pub mod faults;
pub mod memory;
pub mod process;
pub mod proxy;
pub mod report;
pub mod run;
pub mod template;
pub mod vars;
pub mod world;

use serde::Serialize;

pub use self::adapter::Adapter;
use self::expect::ExpectOverride;
pub use self::faults::refusals;
use self::memory::MemoryReport;
pub use self::process::AgentLog;
pub use self::run::{LiveOptions, run_one_live};
use crate::oracle::{hosts, inbound, purge, quiescence, stall};

/// Rules that stand only on the agent's own observer events, which an
/// external agent does not produce: a live run reports them as not judged,
/// never as passed. Every other rule has an external formulation built from
/// the coordinator log and the backend records (the table in
/// [`crate::oracle`]); its agent-event half simply finds nothing to judge.
/// `records_complete` checks that the observer spoke, which a process
/// judged from outside never does. `cancel_purges_queued_frames` derives
/// its byte bound from the simulated network (every socket write delivered
/// within the one-way latency) and our agent's WebSocket write buffer; on
/// real sockets the agent's kernel send buffer holds hundreds of KiB that
/// left the agent before the cancel (measured: 230–250 KB of a cancelled
/// job in `cancel-purge`), a size simctl cannot see from outside, so the
/// bound would blame a correct agent. `out_of_capacity_truthful` runs its
/// external half alone (`run::live_rules`), and `outbound_queue_bounded`
/// has a stand-in, `agent_memory_bounded` ([`memory`]).
/// `blocked_write_ends_session` derives the moment writes surely block from
/// the simulated socket's `tcp_capacity` (writes in flight), which a real
/// kernel buffer does not follow.
pub const NOT_JUDGED_LIVE: &[&str] = &[
    purge::PURGES_QUEUED.name,
    inbound::WHILE_OUTBOUND_BLOCKED.name,
    quiescence::OUTBOUND_BOUNDED.name,
    hosts::RECORDS_COMPLETE.name,
    stall::ENDS_SESSION.name,
];

/// What a report says about a live run besides the verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveInfo {
    /// The adapter's `name`.
    pub agent: String,
    /// The adapter file.
    pub adapter: String,
    /// Where the run's files are (config, state, logs).
    pub run_dir: String,
    /// The expanded config file.
    pub config: String,
    /// Every incarnation of the agent, with its stdout and stderr files.
    pub processes: Vec<AgentLog>,
    /// Real time from the agent's start to its first steady state, when
    /// the script's clock started.
    pub ready_ms: Option<f64>,
    /// `[live] slack_ms` added to every timing bound.
    pub slack_ms: u64,
    /// Always true: a live run cannot be replayed byte for byte.
    pub nondeterministic: bool,
    /// What `agent_memory_bounded` read and judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryReport>,
    /// `[expect]` bounds `[live.expect]` replaced in this run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expect_overrides: Vec<ExpectOverride>,
    /// `[live.expect] why`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub expect_why: String,
}

impl LiveInfo {
    pub fn new(adapter: &Adapter, scenario: &crate::scenario::Scenario) -> LiveInfo {
        LiveInfo {
            agent: adapter.name.clone(),
            adapter: adapter.path.display().to_string(),
            run_dir: String::new(),
            config: String::new(),
            processes: Vec::new(),
            ready_ms: None,
            slack_ms: scenario.live.slack_ms,
            nondeterministic: true,
            memory: None,
            expect_overrides: Vec::new(),
            expect_why: scenario.live.expect.why.clone(),
        }
    }
}
