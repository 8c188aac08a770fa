//! Warnings: a scenario that loads but holds something that may never
//! happen. The scripted phase ends at `duration_ms` and the run stops as
//! soon as the world settles after it, so an action or arrival scheduled
//! later runs only if the world is still busy then: the file most likely
//! means something else. `simctl check` prints these; they never fail a run.

use super::Scenario;

/// One warning per coordinator action or arrival that starts after
/// `duration_ms`, naming its key (faults after it are already errors).
pub fn warnings(scenario: &Scenario) -> Vec<String> {
    let script = &scenario.coordinator;
    let mut late: Vec<(String, u64)> = Vec::new();
    for (i, arrival) in script.arrivals.iter().enumerate() {
        late.push((format!("coordinator.arrivals[{i}].start_ms"), arrival.start_ms));
    }
    for (i, cancel) in script.cancels.iter().enumerate() {
        if let Some(at_ms) = cancel.at_ms {
            late.push((format!("coordinator.cancels[{i}].at_ms"), at_ms));
        }
    }
    for (i, rule) in script.malformed.iter().enumerate() {
        late.push((format!("coordinator.malformed[{i}].at_ms"), rule.at_ms));
    }
    for (i, rule) in script.unknown_types.iter().enumerate() {
        late.push((format!("coordinator.unknown_types[{i}].at_ms"), rule.at_ms));
    }
    for (i, rule) in script.disconnects.iter().enumerate() {
        late.push((format!("coordinator.disconnects[{i}].at_ms"), rule.at_ms));
    }
    for (i, pause) in script.read_pauses.iter().enumerate() {
        late.push((format!("coordinator.read_pauses[{i}].start_ms"), pause.start_ms));
    }
    for (i, slow) in script.slow_reads.iter().enumerate() {
        late.push((format!("coordinator.slow_reads[{i}].start_ms"), slow.start_ms));
    }
    late.into_iter()
        .filter(|(_, at_ms)| *at_ms >= scenario.duration_ms)
        .map(|(key, at_ms)| {
            format!(
                "`{key}` = {at_ms} is not before duration_ms = {}: the scripted phase has ended by then \
                 and the run stops once the world settles, so it may never happen",
                scenario.duration_ms
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;

    /// An arrival and a disconnect after `duration_ms` are named; earlier ones are not.
    #[test]
    fn late_actions_are_named() {
        let text = r#"
name = "w"
duration_ms = 1000

[[backends]]
host = "b"
kind = "vllm"
[[backends.models]]
id = "m"
context_window = 4096

[[coordinator.arrivals]]
kind = "fixed"
rate_per_sec = 1.0
start_ms = 0
end_ms = 500

[[coordinator.arrivals]]
kind = "fixed"
rate_per_sec = 1.0
start_ms = 1500
end_ms = 2000

[[coordinator.disconnects]]
at_ms = 1200
"#;
        let scenario = parse("w.toml", text).expect("parses");
        let found = warnings(&scenario);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("`coordinator.arrivals[1].start_ms` = 1500"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("`coordinator.disconnects[0].at_ms` = 1200"),
            "{found:?}"
        );
    }
}
