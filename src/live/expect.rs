//! `[expect]` in a live run: the scenario's bounds, with each key that
//! `[live.expect]` names held to its live bound instead. Every replacement
//! is returned for the report (key, simulated bound, live bound), so a
//! relaxed count is never silent; rules are not touched here.

use serde::Serialize;

use crate::expect::{ExpectReport, check};
use crate::metrics::Metrics;
use crate::scenario::Scenario;
use crate::scenario::model::PercentileBound;

/// One `[expect]` bound replaced for live runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExpectOverride {
    /// `outcomes.KEY` or `error_codes.CODE`.
    pub key: String,
    /// The `[expect]` bound, in words; `None` if `[expect]` had none.
    pub simulated: Option<String>,
    /// The `[live.expect]` bound, in words.
    pub live: String,
}

/// The scenario as a live run's `[expect]` sees it, and what was replaced.
pub fn live_scenario(scenario: &Scenario) -> (Scenario, Vec<ExpectOverride>) {
    let mut live = scenario.clone();
    let mut replaced = Vec::new();
    let tables = [
        ("outcomes", &scenario.live.expect.outcomes, &mut live.expect.outcomes),
        (
            "error_codes",
            &scenario.live.expect.error_codes,
            &mut live.expect.error_codes,
        ),
    ];
    let latency = &scenario.live.expect.latency;
    let into = &mut live.expect.latency;
    for (key, bound, slot) in [
        ("ttfc_ms", latency.ttfc_ms, &mut into.ttfc_ms),
        ("inter_chunk_ms", latency.inter_chunk_ms, &mut into.inter_chunk_ms),
        ("e2e_ms", latency.e2e_ms, &mut into.e2e_ms),
    ] {
        if let Some(bound) = bound {
            let simulated = slot.replace(bound).map(|b| describe_percentiles(&b));
            replaced.push(ExpectOverride {
                key: format!("latency.{key}"),
                simulated,
                live: describe_percentiles(&bound),
            });
        }
    }
    for (table, overrides, bounds) in tables {
        for (key, bound) in overrides {
            let simulated = bounds.insert(key.clone(), *bound).map(|b| b.describe());
            replaced.push(ExpectOverride {
                key: format!("{table}.{key}"),
                simulated,
                live: bound.describe(),
            });
        }
    }
    (live, replaced)
}

/// `p50 <= 40 ms, p99 <= 100 ms`.
fn describe_percentiles(bound: &PercentileBound) -> String {
    let parts: Vec<String> = [("p50", bound.p50), ("p90", bound.p90), ("p99", bound.p99)]
        .into_iter()
        .filter_map(|(name, limit)| limit.map(|ms| format!("{name} <= {ms} ms")))
        .collect();
    parts.join(", ")
}

/// Checks `metrics` against the live `[expect]` of `scenario`.
pub fn check_live(scenario: &Scenario, metrics: &Metrics) -> (ExpectReport, Vec<ExpectOverride>) {
    let (live, replaced) = live_scenario(scenario);
    (check(&live, metrics), replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\nduration_ms = 1000\n\
        [expect.outcomes]\ndone = { min = 5 }\njobs = { eq = 9 }\n\
        [expect.error_codes]\nout_of_capacity = { min = 2, max = 4 }\n\
        [live.expect]\nwhy = \"loopback backpressure is weaker\"\n\
        [live.expect.error_codes]\nout_of_capacity = { max = 4 }\n\
        [live.expect.outcomes]\ncancelled = { max = 3 }\n\
        [expect.latency]\nttfc_ms = { p50 = 40.0, p99 = 50.0 }\ne2e_ms = { p99 = 250.0 }\n\
        [live.expect.latency]\nttfc_ms = { p50 = 40.0, p99 = 100.0 }\n";

    /// A `[live.expect]` key replaces its `[expect]` bound (or adds one), every other bound stays, and each replacement is listed.
    #[test]
    fn live_bounds_replace_only_the_keys_named() {
        let scenario = crate::scenario::parse("x.toml", TEXT).unwrap();
        let (live, replaced) = live_scenario(&scenario);
        assert_eq!(live.expect.outcomes["done"], scenario.expect.outcomes["done"]);
        assert_eq!(live.expect.outcomes["jobs"].eq, Some(9));
        assert_eq!(live.expect.error_codes["out_of_capacity"].min, None);
        assert_eq!(live.expect.outcomes["cancelled"].max, Some(3));
        let keys: Vec<_> = replaced
            .iter()
            .map(|r| (r.key.as_str(), r.simulated.as_deref(), r.live.as_str()))
            .collect();
        assert_eq!(live.expect.latency.ttfc_ms.unwrap().p99, Some(100.0));
        assert_eq!(live.expect.latency.e2e_ms, scenario.expect.latency.e2e_ms);
        assert_eq!(
            keys,
            [
                (
                    "latency.ttfc_ms",
                    Some("p50 <= 40 ms, p99 <= 50 ms"),
                    "p50 <= 40 ms, p99 <= 100 ms"
                ),
                ("outcomes.cancelled", None, "<= 3"),
                ("error_codes.out_of_capacity", Some(">= 2 and <= 4"), "<= 4")
            ]
        );
    }

    /// `[live.expect]` without `why`, or with an unknown key, is refused naming the key.
    #[test]
    fn live_expect_needs_why_and_known_keys() {
        let head = "name = \"x\"\nduration_ms = 1000\n";
        let text = format!("{head}[live.expect.outcomes]\ndone = {{ max = 3 }}\n");
        let error = crate::scenario::parse("x.toml", &text).unwrap_err().to_string();
        assert!(error.contains("`live.expect.why`"), "{error}");
        let text = format!("{head}[live.expect]\nwhy = \"w\"\n[live.expect.outcomes]\nfinished = {{ max = 3 }}\n");
        let error = crate::scenario::parse("x.toml", &text).unwrap_err().to_string();
        assert!(error.contains("`live.expect.outcomes.finished`"), "{error}");
    }
}
