//! `agent_memory_bounded`: the live agent's resident set size, sampled from
//! the OS (`VmRSS` in `/proc/PID/status`), against a bound. It stands in for
//! `outbound_queue_bounded`, which counts the bytes queued inside our
//! agent's board and cannot be seen in an external process: an agent that
//! buffers without bound while the coordinator is not reading grows its
//! resident set, and that shows from outside.
//!
//! Samples are taken every [`RSS_SAMPLE_MS`] of script time and, in each
//! coordinator read pause, at its middle and [`RSS_PAUSE_END_MARGIN_MS`]
//! before its end (when the most is queued). The bound is `[live]
//! rss_bytes_max` when set, else the scenario's `outbound_queue_bytes_max`
//! plus [`RSS_BASE_ALLOWANCE_BYTES`] for the agent's own working set.
//! Where `/proc` cannot be read (not Linux), nothing is judged and the
//! rule says so.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::clock::ScriptClock;
use crate::oracle::{RuleTally, Tally, Violation};
use crate::scenario::Scenario;

/// The rule's name in reports.
pub const AGENT_MEMORY_BOUNDED: &str = "agent_memory_bounded";
/// What it demands.
pub const AGENT_MEMORY_SUMMARY: &str =
    "the agent process's resident set (VmRSS) stays within rss_bytes_max at every sample, read pauses included";
/// Script time between two periodic samples.
pub const RSS_SAMPLE_MS: u64 = 250;
/// A read pause is sampled this long before its end, when the agent has
/// had the whole pause to queue bytes.
pub const RSS_PAUSE_END_MARGIN_MS: u64 = 100;
/// Samples kept at most (a 10-minute run at one sample per 250 ms is 2400).
pub const RSS_SAMPLES_MAX: usize = 20_000;
/// The agent's own working set besides its outbound queue: runtime,
/// TLS and HTTP stacks, buffers per connection and job. Our agent holds
/// 6.5–8.9 MiB and usepod-agent 0.3.5 8.0–8.8 MiB in the library's
/// scenarios (scenarios/README.md, "`[live]`"); 64 MiB leaves room for an
/// agent with a heavier stack while still catching one whose queue grows
/// with the bytes it cannot send.
pub const RSS_BASE_ALLOWANCE_BYTES: u64 = 64 << 20;

/// One reading of the agent's resident set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RssSample {
    /// Script time of the reading.
    pub at_us: u64,
    /// Which start of the agent (1 for the first).
    pub incarnation: u32,
    pub rss_bytes: u64,
    /// Taken while the coordinator was not reading.
    pub reads_paused: bool,
}

/// The process the sampler reads: `(pid, incarnation)`, `None` while no
/// agent runs (between a crash and its restart).
pub type Target = Option<(u32, u32)>;

/// `VmRSS` of a `/proc/PID/status` text, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => Some(value * 1024),
        _ => None,
    }
}

/// The resident set of process `pid`, in bytes, if the OS tells.
pub fn read_rss_bytes(pid: u32) -> Option<u64> {
    parse_vm_rss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The scenario's read pauses in script µs, `[start, end)`.
fn pauses_us(scenario: &Scenario) -> Vec<(u64, u64)> {
    (scenario.coordinator.read_pauses.iter())
        .map(|p| (p.start_ms * 1_000, p.end_ms * 1_000))
        .collect()
}

/// The extra sample times inside read pauses: the middle of each and
/// [`RSS_PAUSE_END_MARGIN_MS`] before its end.
pub fn pause_sample_times_us(pauses: &[(u64, u64)]) -> BTreeSet<u64> {
    let mut times = BTreeSet::new();
    for &(start, end) in pauses {
        times.insert(start + (end - start) / 2);
        times.insert(end.saturating_sub(RSS_PAUSE_END_MARGIN_MS * 1_000).max(start));
    }
    times
}

/// The sampler task of one run and what it has read.
pub struct Sampler {
    samples: Arc<Mutex<Vec<RssSample>>>,
    /// Concurrency: the sampler loop, which only reads `/proc` and pushes
    /// samples; aborted when the run ends.
    task: JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling the process `target` names, on `clock`.
    pub fn start(scenario: &Scenario, clock: ScriptClock, target: watch::Receiver<Target>) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let pauses = pauses_us(scenario);
        let task = tokio::spawn(sample_loop(clock, target, pauses, samples.clone()));
        Sampler { samples, task }
    }

    /// Stops sampling and returns the samples, in time order.
    pub fn finish(self) -> Vec<RssSample> {
        self.task.abort();
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

async fn sample_loop(
    clock: ScriptClock,
    target: watch::Receiver<Target>,
    pauses: Vec<(u64, u64)>,
    samples: Arc<Mutex<Vec<RssSample>>>,
) {
    let mut extra = pause_sample_times_us(&pauses);
    let mut periodic_us = clock.now_us();
    loop {
        let next_extra = extra.first().copied().unwrap_or(u64::MAX);
        let at_us = periodic_us.min(next_extra);
        clock.sleep_until_us(at_us).await;
        if at_us == next_extra {
            extra.pop_first();
        } else {
            periodic_us += RSS_SAMPLE_MS * 1_000;
        }
        let current = *target.borrow();
        let Some((pid, incarnation)) = current else { continue };
        let Some(rss_bytes) = read_rss_bytes(pid) else { continue };
        let now_us = clock.now_us();
        let reads_paused = pauses.iter().any(|&(s, e)| now_us >= s && now_us < e);
        let mut kept = samples.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() < RSS_SAMPLES_MAX {
            kept.push(RssSample {
                at_us: now_us,
                incarnation,
                rss_bytes,
                reads_paused,
            });
        }
    }
}

/// What `agent_memory_bounded` judged, for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemoryReport {
    pub samples: u64,
    /// Of them, taken while the coordinator was not reading.
    pub samples_reads_paused: u64,
    /// The largest sample.
    pub max: Option<RssSample>,
    pub bound_bytes: u64,
    /// Where the bound comes from, in words.
    pub bound_from: String,
}

/// The bound of `scenario` and where it comes from.
pub fn bound_of(scenario: &Scenario) -> (u64, String) {
    match scenario.live.rss_bytes_max {
        Some(bytes) => (bytes, "[live] rss_bytes_max".to_owned()),
        None => {
            let queue = scenario.agent.session.outbound_queue_bytes_max as u64;
            (
                queue + RSS_BASE_ALLOWANCE_BYTES,
                format!(
                    "outbound_queue_bytes_max {} KiB + base allowance {} MiB",
                    queue / 1024,
                    RSS_BASE_ALLOWANCE_BYTES >> 20
                ),
            )
        }
    }
}

/// Judges `samples` against `bound_bytes`: one violation per incarnation,
/// at its first sample over the bound, naming that incarnation's largest.
pub fn judge(samples: &[RssSample], bound_bytes: u64, bound_from: String) -> (RuleTally, Vec<Violation>, MemoryReport) {
    let mut tally = Tally::default();
    tally.judge_n(samples.len() as u64);
    if samples.is_empty() {
        tally.excuse("no resident-set reading (/proc unreadable, or the agent was never up)");
    }
    let mut found = Vec::new();
    let incarnations: BTreeSet<u32> = samples.iter().map(|s| s.incarnation).collect();
    for incarnation in incarnations {
        let own = || samples.iter().filter(move |s| s.incarnation == incarnation);
        let Some(first) = own().find(|s| s.rss_bytes > bound_bytes) else {
            continue;
        };
        let peak = own().map(|s| s.rss_bytes).max().unwrap_or(first.rss_bytes);
        let paused = if first.reads_paused {
            " while reads were paused"
        } else {
            ""
        };
        let detail = format!(
            "agent #{incarnation} resident set {} KiB{paused}, over the bound {} KiB ({bound_from}); its peak {} KiB",
            first.rss_bytes / 1024,
            bound_bytes / 1024,
            peak / 1024
        );
        found.push(Violation::new(AGENT_MEMORY_BOUNDED, None, first.at_us, detail));
    }
    let rule = RuleTally {
        rule: AGENT_MEMORY_BOUNDED,
        judged: tally.judged,
        excused: tally.excused,
        violations: found.len() as u64,
    };
    let report = MemoryReport {
        samples: samples.len() as u64,
        samples_reads_paused: samples.iter().filter(|s| s.reads_paused).count() as u64,
        max: samples
            .iter()
            .copied()
            .max_by_key(|s| (s.rss_bytes, std::cmp::Reverse(s.at_us))),
        bound_bytes,
        bound_from,
    };
    (rule, found, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: u64, incarnation: u32, rss_kib: u64, reads_paused: bool) -> RssSample {
        RssSample {
            at_us: at_ms * 1_000,
            incarnation,
            rss_bytes: rss_kib * 1024,
            reads_paused,
        }
    }

    /// VmRSS is read in kB from a real-looking status text; a missing or odd line gives nothing.
    #[test]
    fn vm_rss_is_parsed_in_kib() {
        let status = "Name:\tprovider-agent\nVmPeak:\t  99999 kB\nVmRSS:\t    8412 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(8412 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
    }

    /// This very process has a resident set the sampler can read.
    #[test]
    fn own_process_rss_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            let rss = read_rss_bytes(std::process::id()).unwrap();
            assert!(rss > 100 * 1024, "{rss}");
        }
    }

    /// Each read pause is sampled in its middle and just before its end.
    #[test]
    fn pauses_get_their_own_samples() {
        let times: Vec<u64> = pause_sample_times_us(&[(10_000_000, 17_000_000)]).into_iter().collect();
        assert_eq!(times, [13_500_000, 16_900_000]);
    }

    /// A sample over the bound is a violation at its time, once per incarnation, naming the peak; samples within pass.
    #[test]
    fn a_resident_set_over_the_bound_is_caught_once_per_incarnation() {
        let samples = [
            sample(100, 1, 900, false),
            sample(12_000, 1, 1_500, true),
            sample(12_250, 1, 2_000, true),
            sample(20_000, 2, 800, false),
        ];
        let (tally, found, report) = judge(&samples, 1024 * 1024, "test bound".into());
        assert_eq!((tally.judged, tally.violations), (4, 1));
        assert_eq!(found[0].at_us, 12_000_000);
        assert!(
            found[0]
                .detail
                .contains("agent #1 resident set 1500 KiB while reads were paused")
        );
        assert!(found[0].detail.contains("its peak 2000 KiB"), "{}", found[0].detail);
        assert_eq!(report.max.map(|m| m.rss_bytes), Some(2_000 * 1024));
        assert_eq!(report.samples_reads_paused, 2);
        let (tally, found, _) = judge(&samples, 4096 * 1024, "test bound".into());
        assert_eq!((tally.judged, found.len()), (4, 0));
    }

    /// With no sample at all the rule judges nothing and says why.
    #[test]
    fn no_samples_judge_nothing() {
        let (tally, found, _) = judge(&[], 1, "b".into());
        assert!(tally.nothing_to_judge() && found.is_empty());
        assert_eq!(tally.excused.len(), 1);
    }
}
