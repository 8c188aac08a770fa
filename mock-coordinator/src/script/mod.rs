//! The job script: the `[coordinator]` table of a scenario file.
//!
//! Every key has a default, so an empty table is a valid script (it
//! authenticates agents and sends no jobs). Unknown keys are rejected at every
//! level. Times are milliseconds since the simulation started (`at_ms`,
//! `start_ms`, `end_ms`); durations end in `_ms` too. [`Script::validate`]
//! checks what serde cannot (ranges, cross references) and names the key path
//! of the first problem it finds.

mod arrival;
mod faults;
mod handshake;
mod reading;
mod spelling;
mod validate;

pub use arrival::{Arrival, ArrivalKind, JobFormat, ModelWeight, RequestTemplate};
pub use faults::{
    CancelKind, CancelRule, DisconnectKind, DisconnectRule, DuplicateRule, MalformedKind, MalformedRule, ResendAfter,
    UnknownTypeRule,
};
pub use handshake::{Handshake, HandshakeMode};
pub use reading::{ReadPause, SlowRead};
pub use spelling::JobIdSpelling;
pub use validate::{JOBS_PER_SCRIPT_MAX, ScriptError};

use serde::{Deserialize, Serialize};

/// Default `provider_id` sent in `auth_ok`.
pub const PROVIDER_ID_DEFAULT: &str = "prov-sim-1";
/// Default `deadline_ms` put into every job (the protocol's own default).
pub const DEADLINE_MS_DEFAULT: u64 = 60_000;
/// Default time the binary keeps serving after the script's last action, so
/// that jobs still streaming can finish before the summary is printed.
pub const DRAIN_MS_DEFAULT: u64 = 5_000;
/// Model used when the script names none.
pub const MODEL_DEFAULT: &str = "sim-model";
/// Default [`Script::resend_guard_ms`]: above the oracle's default cancel
/// bound (simctl's `cancel_close_ms`, 1000 ms + 2 RTT = 1020 ms on the
/// default network), with room for a slower network.
pub const RESEND_GUARD_MS_DEFAULT: u64 = 2_000;
/// Default [`Script::idle_timeout_ms`]: three of the protocol's 15 s
/// heartbeat periods, so one late heartbeat never closes a live session.
pub const IDLE_TIMEOUT_MS_DEFAULT: u64 = 45_000;

/// The coordinator's script. See `mock-coordinator/README.md` for every key
/// with its unit, default and an example.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Script {
    /// `provider_id` carried by `auth_ok`.
    pub provider_id: String,
    /// How the handshake is answered, and scripted misbehaviour in it.
    pub handshake: Handshake,
    /// Job arrival processes; their jobs are numbered 0, 1, … in the order
    /// they are issued (the "arrival index" that cancels and duplicates use).
    pub arrivals: Vec<Arrival>,
    /// Weighted model mix for arrivals that do not pin a model.
    pub models: Vec<ModelWeight>,
    /// Shape of the OpenAI request body of every job.
    pub request: RequestTemplate,
    /// `deadline_ms` sent with every job unless an arrival overrides it.
    pub deadline_ms: u64,
    /// Send jobs without any `deadline_ms` field (the agent then applies the
    /// protocol default). Overrides `deadline_ms` and per-arrival values.
    pub deadline_ms_omit: bool,
    /// Scripted `job_cancel`s.
    pub cancels: Vec<CancelRule>,
    /// Scripted malformed `job` frames.
    pub malformed: Vec<MalformedRule>,
    /// Re-sends of a job's exact frame (same `job_id`).
    pub duplicates: Vec<DuplicateRule>,
    /// Least time the coordinator spends reading between writing a
    /// `job_cancel` and writing a re-send of the same id on that connection,
    /// while the cancelled submission has no terminal frame. The agent may
    /// still deliver frames of a cancelled job that it had handed to the
    /// socket before it processed the cancel; those frames and the re-send's
    /// look alike (same `job_id`), so a re-send due sooner is held back until
    /// every such frame has had time to arrive. Must exceed the oracle's
    /// cancel bound. Time in read pauses and slow reads does not count.
    /// 0 turns the hold off (see README, "Attribution").
    pub resend_guard_ms: u64,
    /// Frames of types the protocol does not define.
    pub unknown_types: Vec<UnknownTypeRule>,
    /// Times at which the coordinator ends the current connection.
    pub disconnects: Vec<DisconnectRule>,
    /// Windows in which the coordinator does not read the socket at all.
    pub read_pauses: Vec<ReadPause>,
    /// Windows in which the coordinator reads at most N frames per second.
    pub slow_reads: Vec<SlowRead>,
    /// How long the binary keeps serving after the driver's last action
    /// before printing the summary.
    pub drain_ms: u64,
    /// A connection on which nothing (no frame, ping or pong) arrives for
    /// this long while the coordinator is reading is closed as dead, with
    /// its jobs lost. Time in read pauses does not count. 0 turns it off.
    pub idle_timeout_ms: u64,
    /// Route as a production coordinator does: a job goes to the session
    /// only if the latest `capabilities` of that session (the agent may
    /// send it again in steady state, protocol.md (ext)) lists its model;
    /// otherwise it is undeliverable, "model not advertised". Off: jobs go
    /// to the newest session whatever it advertised.
    pub route_by_capabilities: bool,
    /// How the UUIDs of job ids are written (`canonical`, `upper`,
    /// `braced`, or `mixed`); the agent must echo them exactly.
    pub job_id_spelling: JobIdSpelling,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            provider_id: PROVIDER_ID_DEFAULT.to_owned(),
            handshake: Handshake::default(),
            arrivals: Vec::new(),
            models: vec![ModelWeight {
                id: MODEL_DEFAULT.to_owned(),
                weight: 1.0,
            }],
            request: RequestTemplate::default(),
            deadline_ms: DEADLINE_MS_DEFAULT,
            deadline_ms_omit: false,
            cancels: Vec::new(),
            malformed: Vec::new(),
            duplicates: Vec::new(),
            resend_guard_ms: RESEND_GUARD_MS_DEFAULT,
            unknown_types: Vec::new(),
            disconnects: Vec::new(),
            read_pauses: Vec::new(),
            slow_reads: Vec::new(),
            drain_ms: DRAIN_MS_DEFAULT,
            idle_timeout_ms: IDLE_TIMEOUT_MS_DEFAULT,
            route_by_capabilities: false,
            job_id_spelling: JobIdSpelling::Canonical,
        }
    }
}

impl Script {
    /// Parses the `[coordinator]` table of a whole scenario file; other
    /// tables are ignored and a missing table means the default script. The
    /// result is validated; errors name the key as `coordinator.<path>`.
    pub fn from_scenario_toml(text: &str) -> Result<Script, ScriptError> {
        let mut doc: toml::Table = toml::from_str(text).map_err(|e| ScriptError::Parse {
            key: String::new(),
            reason: e.message().to_owned(),
        })?;
        let table = match doc.remove("coordinator") {
            None => toml::Value::Table(toml::Table::new()),
            Some(value @ toml::Value::Table(_)) => value,
            Some(_) => {
                return Err(ScriptError::Parse {
                    key: "coordinator".to_owned(),
                    reason: "must be a table".to_owned(),
                });
            }
        };
        Script::from_toml_value(table).map_err(|e| e.under("coordinator"))
    }

    /// Deserializes and validates a `[coordinator]` table that has already
    /// been parsed; errors name the key path inside the table.
    pub fn from_toml_value(value: toml::Value) -> Result<Script, ScriptError> {
        let script: Script = serde_path_to_error::deserialize(value).map_err(|e| ScriptError::Parse {
            key: e.path().to_string(),
            reason: e.inner().to_string(),
        })?;
        script.validate()?;
        Ok(script)
    }

    /// The `deadline_ms` field a job of `arrival` carries (`None`: omitted).
    pub fn deadline_for(&self, arrival: Option<&Arrival>) -> Option<u64> {
        if self.deadline_ms_omit {
            return None;
        }
        Some(arrival.and_then(|a| a.deadline_ms).unwrap_or(self.deadline_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty table is the default script.
    #[test]
    fn empty_table_is_default() {
        let script = Script::from_scenario_toml("[coordinator]\n").unwrap();
        assert_eq!(script, Script::default());
        assert_eq!(script.provider_id, PROVIDER_ID_DEFAULT);
    }

    /// Other tables of the scenario file are ignored.
    #[test]
    fn other_tables_are_ignored() {
        let text = "[agent]\nfoo = 1\n[coordinator]\nprovider_id = \"p\"\n";
        assert_eq!(Script::from_scenario_toml(text).unwrap().provider_id, "p");
    }

    /// An unknown key is rejected with its full path.
    #[test]
    fn unknown_key_names_path() {
        let text =
            "[coordinator]\n[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\ncount = 1\nbogus = 3\n";
        let err = Script::from_scenario_toml(text).unwrap_err().to_string();
        assert!(err.contains("coordinator.arrivals[0]"), "{err}");
        assert!(err.contains("bogus"), "{err}");
    }

    /// A wrongly typed value names its key.
    #[test]
    fn wrong_type_names_key() {
        let err = Script::from_scenario_toml("[coordinator]\ndeadline_ms = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("coordinator.deadline_ms"), "{err}");
    }

    /// The example scenario shipped with the crate is valid.
    #[test]
    fn example_scenario_is_valid() {
        let text = include_str!("../../scenarios/example.toml");
        let script = Script::from_scenario_toml(text).unwrap();
        assert_eq!(script.arrivals.len(), 2);
    }

    /// `deadline_ms_omit` wins over every deadline.
    #[test]
    fn deadline_omit_wins() {
        let script = Script {
            deadline_ms_omit: true,
            ..Script::default()
        };
        assert_eq!(script.deadline_for(None), None);
        assert_eq!(Script::default().deadline_for(None), Some(DEADLINE_MS_DEFAULT));
    }
}
