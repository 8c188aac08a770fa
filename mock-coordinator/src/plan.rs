//! The open-loop schedule, computed once from the script and the seed.
//!
//! Everything that does not depend on what the agent does — open-loop
//! arrival times, their job ids and models, fraction-selection draws, the ids
//! of malformed jobs, and every `at_ms` action — is drawn here up front, in a
//! fixed order. The schedule is therefore a pure function of (script, seed):
//! it does not change with the number of reconnects or nonces drawn, and a
//! restarted coordinator reuses it from the [`crate::Log`].

use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use crate::clock::ms_to_us;
use crate::rng;
use crate::script::{Arrival, ArrivalKind, JOBS_PER_SCRIPT_MAX, Script, ScriptError};

/// One open-loop job: when, which process, and its pre-drawn identity.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PlannedJob {
    pub at_us: u64,
    /// Index into `script.arrivals`.
    pub rule: usize,
    pub draw: JobDraw,
}

/// The random parts of one job.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct JobDraw {
    pub job_id: Uuid,
    pub model: String,
    /// One uniform draw per `script.cancels` rule, compared with its
    /// fraction to decide whether the rule selects this job.
    pub cancel_draws: Vec<f64>,
}

/// A timed action of the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Issue `plan.jobs[i]`.
    Job(usize),
    /// Send `script.malformed[i]`.
    Malformed(usize),
    /// Send `script.unknown_types[i]`.
    UnknownType(usize),
    /// Carry out `script.cancels[i]` (kind `at`).
    CancelAt(usize),
    /// Carry out `script.disconnects[i]`.
    Disconnect(usize),
}

/// The whole precomputed schedule.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    pub jobs: Vec<PlannedJob>,
    /// Job id and model of each `script.malformed` rule.
    pub malformed: Vec<(Uuid, String)>,
    /// `(at_us, action)` in execution order.
    pub timeline: Vec<(u64, Action)>,
}

/// Draws the identity of one job of process `rule`.
pub(crate) fn draw_job(rng: &mut ChaCha8Rng, script: &Script, rule: Option<usize>) -> JobDraw {
    let job_id = rng::job_id(rng);
    let pinned = rule.and_then(|r| script.arrivals.get(r)).and_then(|a| a.model.clone());
    let model = pinned.unwrap_or_else(|| rng::model(rng, &script.models));
    let cancel_draws = script.cancels.iter().map(|_| rng::unit(rng)).collect();
    JobDraw {
        job_id,
        model,
        cancel_draws,
    }
}

/// Arrival times of one open-loop process, in microseconds.
fn arrival_times_us(a: &Arrival, rng: &mut ChaCha8Rng, key: &str) -> Result<Vec<u64>, ScriptError> {
    let start_us = ms_to_us(a.start_ms);
    let end_us = a.end_ms.map(ms_to_us).unwrap_or(u64::MAX);
    let count = a.count.unwrap_or(u64::MAX).min(JOBS_PER_SCRIPT_MAX + 1);
    let mut times = Vec::new();
    match a.kind {
        ArrivalKind::Fixed => {
            let rate = a.rate_per_sec.unwrap_or(1.0);
            for k in 0..count {
                let t = start_us.saturating_add((k as f64 * 1e6 / rate).round() as u64);
                if t >= end_us {
                    break;
                }
                times.push(t);
            }
        }
        ArrivalKind::Poisson => {
            let rate = a.rate_per_sec.unwrap_or(1.0);
            let mut t = start_us;
            while (times.len() as u64) < count {
                t = t.saturating_add(rng::exp_gap_us(rng, rate));
                if t >= end_us {
                    break;
                }
                times.push(t);
            }
        }
        ArrivalKind::Burst => {
            let period_us = ms_to_us(a.period_ms.unwrap_or(1).max(1));
            let size = u64::from(a.burst_size.unwrap_or(1));
            let mut t = start_us;
            'bursts: while t < end_us {
                for _ in 0..size {
                    if times.len() as u64 >= count {
                        break 'bursts;
                    }
                    times.push(t);
                }
                t = t.saturating_add(period_us);
            }
        }
        ArrivalKind::ClosedLoop => {}
    }
    if times.len() as u64 > JOBS_PER_SCRIPT_MAX {
        return Err(ScriptError::Invalid {
            key: key.to_owned(),
            reason: format!("issues more than {JOBS_PER_SCRIPT_MAX} jobs"),
        });
    }
    Ok(times)
}

/// Computes the schedule. Draw order: Poisson gaps per process in script
/// order; then per open-loop job in time order its id, model and cancel
/// draws; then the malformed jobs' ids and models.
pub(crate) fn build(script: &Script, rng: &mut ChaCha8Rng) -> Result<Plan, ScriptError> {
    let mut slots: Vec<(u64, usize, usize)> = Vec::new();
    for (rule, arrival) in script.arrivals.iter().enumerate() {
        let times = arrival_times_us(arrival, rng, &format!("arrivals[{rule}]"))?;
        slots.extend(times.into_iter().enumerate().map(|(seq, t)| (t, rule, seq)));
    }
    if slots.len() as u64 > JOBS_PER_SCRIPT_MAX {
        return Err(ScriptError::Invalid {
            key: "arrivals".to_owned(),
            reason: format!("issue more than {JOBS_PER_SCRIPT_MAX} jobs together"),
        });
    }
    slots.sort_unstable();
    let jobs: Vec<PlannedJob> = slots
        .into_iter()
        .map(|(at_us, rule, _)| PlannedJob {
            at_us,
            rule,
            draw: draw_job(rng, script, Some(rule)),
        })
        .collect();
    let malformed = script
        .malformed
        .iter()
        .map(|_| {
            let d = draw_job(rng, script, None);
            (d.job_id, d.model)
        })
        .collect();
    let timeline = timeline(script, &jobs);
    Ok(Plan {
        jobs,
        malformed,
        timeline,
    })
}

/// Merges every timed action; at equal times jobs go first, then malformed
/// frames, unknown types, cancels and disconnects, each in script order.
fn timeline(script: &Script, jobs: &[PlannedJob]) -> Vec<(u64, Action)> {
    let mut all: Vec<(u64, Action)> = Vec::new();
    all.extend(jobs.iter().enumerate().map(|(i, j)| (j.at_us, Action::Job(i))));
    let malformed = script.malformed.iter().enumerate();
    all.extend(malformed.map(|(i, r)| (ms_to_us(r.at_ms), Action::Malformed(i))));
    let unknown = script.unknown_types.iter().enumerate();
    all.extend(unknown.map(|(i, r)| (ms_to_us(r.at_ms), Action::UnknownType(i))));
    let cancels = script.cancels.iter().enumerate();
    all.extend(cancels.filter_map(|(i, r)| r.at_ms.map(|at| (ms_to_us(at), Action::CancelAt(i)))));
    let disconnects = script.disconnects.iter().enumerate();
    all.extend(disconnects.map(|(i, r)| (ms_to_us(r.at_ms), Action::Disconnect(i))));
    // A stable sort keeps the insertion order above for equal times.
    all.sort_by_key(|(at, _)| *at);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn script(body: &str) -> Script {
        Script::from_scenario_toml(&format!("[coordinator]\n{body}")).unwrap()
    }

    fn times(s: &Script, seed: u64) -> Vec<u64> {
        let plan = build(s, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
        plan.jobs.iter().map(|j| j.at_us).collect()
    }

    /// Fixed rate: evenly spaced from start_ms, end exclusive.
    #[test]
    fn fixed_times() {
        let s =
            script("[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 4.0\nstart_ms = 1000\nend_ms = 2000\n");
        assert_eq!(times(&s, 1), vec![1_000_000, 1_250_000, 1_500_000, 1_750_000]);
    }

    /// Bursts: burst_size jobs at each period start, capped by count.
    #[test]
    fn burst_times() {
        let s = script("[[coordinator.arrivals]]\nkind = \"burst\"\nperiod_ms = 500\nburst_size = 3\ncount = 5\n");
        assert_eq!(times(&s, 1), vec![0, 0, 0, 500_000, 500_000]);
    }

    /// Poisson arrivals are reproducible from the seed and differ across seeds.
    #[test]
    fn poisson_is_seeded() {
        let s = script("[[coordinator.arrivals]]\nkind = \"poisson\"\nrate_per_sec = 50.0\ncount = 20\n");
        assert_eq!(times(&s, 9), times(&s, 9));
        assert_ne!(times(&s, 9), times(&s, 10));
        assert_eq!(times(&s, 9).len(), 20);
        let t = times(&s, 9);
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
    }

    /// Two processes interleave by time and actions follow jobs at equal times.
    #[test]
    fn timeline_merges_in_time_order() {
        let s = script(
            "[[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\ncount = 2\n\
             [[coordinator.arrivals]]\nkind = \"fixed\"\nrate_per_sec = 1.0\nstart_ms = 500\ncount = 1\n\
             [[coordinator.disconnects]]\nat_ms = 1000\n",
        );
        let plan = build(&s, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        let rules: Vec<usize> = plan.jobs.iter().map(|j| j.rule).collect();
        assert_eq!(rules, vec![0, 1, 0]);
        assert_eq!(
            plan.timeline,
            vec![
                (0, Action::Job(0)),
                (500_000, Action::Job(1)),
                (1_000_000, Action::Job(2)),
                (1_000_000, Action::Disconnect(0)),
            ]
        );
    }
}
