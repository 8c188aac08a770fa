//! `[expect]`: the counts and latency thresholds a run must meet, and the
//! oracle bounds a scenario implies (defaults derived from its timeouts and
//! network, overridable key by key).

use serde::Serialize;

pub use crate::metrics::{ERROR_CODES, OUTCOME_KEYS};
use crate::metrics::{Metrics, Percentiles};
use crate::oracle::backoff::ReconnectSchedule;
use crate::oracle::stall::WriteStall;
use crate::oracle::{Bounds, OracleConfig};
use crate::scenario::Scenario;
use crate::scenario::model::{CountBound, PercentileBound};

/// The agent's timer granularity plus the scheduling steps on the way of a
/// cancel or a deadline (the agent reading the frame or firing its timer,
/// dropping the backend connection, the backend seeing it close): the
/// simulation advances 1 ms per tick and tokio's timers have 1 ms
/// resolution, so each step costs at most a tick or two. Added to two
/// one-way trips at the scenario's worst latency, it makes the cancel and
/// deadline bounds; measured over the library at seeds 1..=20 the worst
/// case used 7 ms of it.
pub const CLOSE_SCHEDULING_SLACK_MS: u64 = 20;
/// Round trips one reconnection attempt on a healthy network takes:
/// discovery (health and model list per backend), connect and upgrade, and
/// the handshake, with room to spare.
pub const ATTEMPT_ROUND_TRIPS: u64 = 10;
/// Simulation steps of one reconnection attempt besides its round trips.
pub const ATTEMPT_STEPS_MS: u64 = 100;
/// Base of the heartbeat tolerance, before network latency is added.
pub const HEARTBEAT_TOLERANCE_BASE_MS: u64 = 1_000;
/// Default `inbound_decision_ms`.
pub const INBOUND_DECISION_MS_DEFAULT: u64 = 1_000;
/// Default `outbound_slack_bytes`: one large frame being handed over.
pub const OUTBOUND_SLACK_BYTES_DEFAULT: u64 = 64 * 1024;

/// The oracle's configuration for `scenario`.
pub fn oracle_config(scenario: &Scenario) -> OracleConfig {
    let expect = &scenario.expect;
    let session = &scenario.agent.session;
    let round_trip_ms = 2 * scenario.network.latency_max_ms;
    // A cancel or a deadline: one trip to the agent (the cancel, or the job
    // frame whose arrival starts the agent's deadline), one trip onwards
    // (to the backend, closing the stream; back to the coordinator, the
    // terminal frame), and the scheduling steps in between.
    let close_ms = round_trip_ms + CLOSE_SCHEDULING_SLACK_MS;
    // Worst case after a heal, flat: a wedged session noticed by the idle
    // timeout, the longest jittered backoff sleep, then connect and two
    // handshake steps, each across the network. Used for display and as
    // the horizon of the derived bound (`oracle::backoff`).
    let reconnect_ms = session.idle_timeout_ms
        + session.backoff_max_ms * 6 / 5
        + session.connect_timeout_ms
        + 2 * session.handshake_step_timeout_ms
        + 2 * round_trip_ms;
    let reconnect = ReconnectSchedule {
        idle_timeout_ms: session.idle_timeout_ms,
        backoff_initial_ms: session.backoff_initial_ms,
        backoff_max_ms: session.backoff_max_ms,
        // An attempt wedges in its connect or in one handshake step (the
        // first step that hangs fails it), never in both.
        attempt_wedged_ms: session.connect_timeout_ms.max(session.handshake_step_timeout_ms),
        attempt_ms: ATTEMPT_ROUND_TRIPS * round_trip_ms + ATTEMPT_STEPS_MS + health_delay_ms_max(scenario),
        discovery_stall_ms: 2 * session.discovery_timeout_ms,
        round_trip_ms,
    };
    OracleConfig {
        max_concurrent: u64::from(scenario.agent.max_concurrent),
        heartbeat_interval_ms: session.heartbeat_interval_ms,
        outbound_queue_bytes_max: session.outbound_queue_bytes_max as u64,
        latency_max_ms: scenario.network.latency_max_ms,
        idle_timeout_ms: session.idle_timeout_ms,
        reconnect: expect.reconnect_within_ms.is_none().then_some(reconnect),
        write_stall: Some(write_stall(scenario, round_trip_ms)),
        bounds: Bounds {
            cancel_close_ms: expect.cancel_close_ms.unwrap_or(close_ms),
            deadline_slack_ms: expect.deadline_slack_ms.unwrap_or(close_ms),
            heartbeat_tolerance_ms: expect
                .heartbeat_tolerance_ms
                .unwrap_or(HEARTBEAT_TOLERANCE_BASE_MS + round_trip_ms),
            reconnect_within_ms: expect.reconnect_within_ms.unwrap_or(reconnect_ms),
            inbound_decision_ms: expect.inbound_decision_ms.unwrap_or(INBOUND_DECISION_MS_DEFAULT),
            outbound_slack_bytes: expect.outbound_slack_bytes.unwrap_or(OUTBOUND_SLACK_BYTES_DEFAULT),
        },
    }
}

/// When a coordinator that stops reading surely blocks the agent's writes:
/// the simulated socket holds `tcp_capacity` writes unread, and the agent
/// writes at least once per heartbeat or ping interval (whichever is
/// shorter; the two may share a write), so the write after `tcp_capacity`
/// of them blocks; plus the heartbeat tolerance for its timer and delivery.
fn write_stall(scenario: &Scenario, round_trip_ms: u64) -> WriteStall {
    let session = &scenario.agent.session;
    let interval_ms = session.heartbeat_interval_ms.min(session.ping_interval_ms);
    WriteStall {
        write_timeout_ms: session.write_timeout_ms,
        blocked_within_ms: (scenario.network.tcp_capacity + 1) * interval_ms
            + HEARTBEAT_TOLERANCE_BASE_MS
            + round_trip_ms,
    }
}

/// The longest a backend delays its health answer (`health.delay_ms`, or a
/// `health_slow` fault), capped by nothing: discovery waits for it.
fn health_delay_ms_max(scenario: &Scenario) -> u64 {
    scenario
        .backends
        .iter()
        .flat_map(|b| std::iter::once(b.health.delay_ms).chain(b.faults.iter().filter_map(|f| f.delay_ms)))
        .max()
        .unwrap_or(0)
}

/// One expectation a run did not meet.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unmet {
    /// The `[expect]` key, e.g. `outcomes.done` or `latency.e2e_ms.p99`.
    pub key: String,
    /// Expected versus measured, in one sentence.
    pub detail: String,
    /// The submissions behind it, each with its key times (see
    /// [`crate::report::worst`]); filled after the check.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub worst: Vec<String>,
}

/// How a run fared against `[expect]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ExpectReport {
    /// Expectations checked.
    pub checked: usize,
    pub unmet: Vec<Unmet>,
}

/// Checks `metrics` against the scenario's `[expect]` counts and latencies.
pub fn check(scenario: &Scenario, metrics: &Metrics) -> ExpectReport {
    let expect = &scenario.expect;
    let mut report = ExpectReport::default();
    for (key, bound) in &expect.outcomes {
        let value = metrics.outcomes.get(key).copied().unwrap_or(0);
        check_count(&mut report, &format!("outcomes.{key}"), bound, value);
    }
    for (code, bound) in &expect.error_codes {
        let value = metrics.error_codes.get(code).copied().unwrap_or(0);
        check_count(&mut report, &format!("error_codes.{code}"), bound, value);
    }
    let latency = &expect.latency;
    for (key, bound, measured) in [
        ("ttfc_ms", latency.ttfc_ms, &metrics.ttfc_ms),
        ("inter_chunk_ms", latency.inter_chunk_ms, &metrics.inter_chunk_ms),
        ("e2e_ms", latency.e2e_ms, &metrics.e2e_ms),
    ] {
        if let Some(bound) = bound {
            check_percentiles(&mut report, key, &bound, measured);
        }
    }
    report
}

fn check_count(report: &mut ExpectReport, key: &str, bound: &CountBound, value: u64) {
    report.checked += 1;
    let ok = bound.eq.is_none_or(|eq| value == eq)
        && bound.min.is_none_or(|min| value >= min)
        && bound.max.is_none_or(|max| value <= max);
    if !ok {
        report.unmet.push(Unmet {
            key: key.to_owned(),
            detail: format!("expected {}, got {value}", bound.describe()),
            worst: Vec::new(),
        });
    }
}

fn check_percentiles(report: &mut ExpectReport, key: &str, bound: &PercentileBound, measured: &Percentiles) {
    for (name, limit, value) in [
        ("p50", bound.p50, measured.p50),
        ("p90", bound.p90, measured.p90),
        ("p99", bound.p99, measured.p99),
    ] {
        let Some(limit) = limit else { continue };
        report.checked += 1;
        let full_key = format!("latency.{key}.{name}");
        if measured.count == 0 {
            report.unmet.push(Unmet {
                key: full_key,
                detail: "no samples to measure".to_owned(),
                worst: Vec::new(),
            });
        } else if value > limit {
            report.unmet.push(Unmet {
                key: full_key,
                detail: format!("expected <= {limit} ms, got {value:.3} ms"),
                worst: Vec::new(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Count bounds are inclusive and an unmet one says expected and got.
    #[test]
    fn count_bounds_are_inclusive() {
        let mut report = ExpectReport::default();
        check_count(
            &mut report,
            "outcomes.done",
            &CountBound {
                min: Some(2),
                max: Some(3),
                eq: None,
            },
            3,
        );
        check_count(
            &mut report,
            "outcomes.done",
            &CountBound {
                min: Some(2),
                max: Some(3),
                eq: None,
            },
            4,
        );
        check_count(
            &mut report,
            "outcomes.error",
            &CountBound {
                min: None,
                max: None,
                eq: Some(0),
            },
            0,
        );
        assert_eq!(report.checked, 3);
        assert_eq!(report.unmet.len(), 1);
        assert_eq!(report.unmet[0].detail, "expected >= 2 and <= 3, got 4");
    }

    /// A latency threshold with no sample is unmet.
    #[test]
    fn percentile_without_samples_is_unmet() {
        let mut report = ExpectReport::default();
        let bound = PercentileBound {
            p50: Some(10.0),
            p90: None,
            p99: None,
        };
        check_percentiles(&mut report, "e2e_ms", &bound, &Percentiles::default());
        assert_eq!(report.unmet[0].key, "latency.e2e_ms.p50");
    }
}
