//! What became of each mutant, judged against what its catalog entry
//! expects, as a table or as JSON.

use std::fmt::Write as _;
use std::ops::Range;

use serde::Serialize;

use super::catalog::{Expect, Mutant};
use super::exec::{Failure, Search};
use super::scratch::Stale;

/// What the library did to a mutant.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", content = "detail", rename_all = "kebab-case")]
pub enum Status {
    /// At least one rule fired.
    KilledByRule,
    /// Only `[expect]` counts failed, over the whole search.
    KilledByExpectOnly,
    Survived,
    /// A snippet no longer applies.
    Stale(Vec<Stale>),
    /// The mutated tree does not build (cargo's last lines).
    BuildFailed(String),
    /// A run could not be judged.
    Error(String),
}

impl Status {
    /// The status a finished search gives.
    pub fn of(search: &Search) -> Status {
        match (&search.error, &search.first, &search.first_rule) {
            (Some(error), _, _) => Status::Error(error.clone()),
            (None, _, Some(_)) => Status::KilledByRule,
            (None, Some(_), None) => Status::KilledByExpectOnly,
            (None, None, None) => Status::Survived,
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Status::KilledByRule => "killed",
            Status::KilledByExpectOnly => "killed-by-expect",
            Status::Survived => "survived",
            Status::Stale(_) => "STALE",
            Status::BuildFailed(_) => "BUILD-FAILED",
            Status::Error(_) => "ERROR",
        }
    }
}

/// Whether the result is what the catalog expects.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", content = "why", rename_all = "kebab-case")]
pub enum Verdict {
    Ok,
    /// Fails the command (and CI).
    Fail(String),
    /// Not a failure, but the catalog should change (e.g. flip a
    /// `survives-until-rule` that is now killed).
    Note(String),
}

impl Verdict {
    fn of(expect: Expect, status: &Status) -> Verdict {
        use Status::*;
        match (expect, status) {
            (_, Stale(found)) => Verdict::Fail(format!("stale: {}", stale_text(found))),
            (_, BuildFailed(_)) => Verdict::Fail("the mutated agent does not build".into()),
            (_, Error(e)) => Verdict::Fail(e.clone()),
            (Expect::Rule, KilledByRule) | (Expect::Killed, KilledByExpectOnly) => Verdict::Ok,
            (Expect::SurvivesUntilRule | Expect::Control, Survived) => Verdict::Ok,
            (Expect::Rule, KilledByExpectOnly) => Verdict::Fail("killed only by [expect], no rule fired".into()),
            (Expect::Rule | Expect::Killed, Survived) => Verdict::Fail("survived".into()),
            (Expect::Killed, KilledByRule) => Verdict::Note("now killed by a rule: set expect = \"rule\"".into()),
            (Expect::SurvivesUntilRule, KilledByRule) => {
                Verdict::Note("now killed by a rule: set expect = \"rule\"".into())
            }
            (Expect::SurvivesUntilRule, KilledByExpectOnly) => {
                Verdict::Note("now killed by [expect] only: set expect = \"killed\"".into())
            }
            (Expect::Control, KilledByRule | KilledByExpectOnly) => {
                Verdict::Fail("a control (equivalent mutant) was killed: a false alarm, or not equivalent".into())
            }
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Fail(_) => "FAIL",
            Verdict::Note(_) => "note",
        }
    }
}

/// One mutant's result.
#[derive(Clone, Debug, Serialize)]
pub struct MutantResult {
    pub name: String,
    pub area: String,
    pub origin: String,
    pub breaks: String,
    pub expect: Expect,
    /// The rule the catalog names.
    pub rule: Option<String>,
    #[serde(flatten)]
    pub status: Status,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub search: Option<Search>,
    /// Wall seconds of the mutant's build.
    pub build_s: f64,
    /// Child CPU seconds of the mutant's build.
    pub build_cpu_s: f64,
}

impl MutantResult {
    pub fn new(mutant: &Mutant, status: Status, search: Option<Search>, build_s: f64) -> MutantResult {
        MutantResult {
            name: mutant.name.clone(),
            area: mutant.area.clone(),
            origin: mutant.origin.clone(),
            breaks: mutant.breaks.clone(),
            expect: mutant.expect,
            rule: mutant.rule.clone(),
            verdict: Verdict::of(mutant.expect, &status),
            status,
            search,
            build_s,
            build_cpu_s: 0.0,
        }
    }

    /// The failure to show: the first run a rule fired on, else the first
    /// failing run.
    fn shown_failure(&self) -> Option<&Failure> {
        let search = self.search.as_ref()?;
        search.first_rule.as_ref().or(search.first.as_ref())
    }
}

/// The unmutated run.
#[derive(Clone, Debug, Serialize)]
pub struct Baseline {
    /// Wall and child CPU seconds of the unmutated build (on a clean target
    /// directory, this builds every dependency for the `mutants` profile).
    pub build_s: f64,
    pub build_cpu_s: f64,
    pub cpu_s: f64,
    pub runs: usize,
}

/// Totals.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub mutants: usize,
    pub killed_by_rule: usize,
    pub killed_by_expect_only: usize,
    pub survived: usize,
    pub stale: usize,
    pub build_failed: usize,
    pub errors: usize,
    pub controls: usize,
    /// Results that fail the command.
    pub failures: usize,
    pub notes: usize,
    pub build_s: f64,
    pub build_cpu_s: f64,
    pub run_cpu_s: f64,
    pub wall_s: f64,
}

impl Summary {
    pub fn of(results: &[MutantResult], wall_s: f64) -> Summary {
        let mut s = Summary {
            mutants: results.len(),
            wall_s,
            ..Summary::default()
        };
        for r in results {
            match r.status {
                Status::KilledByRule => s.killed_by_rule += 1,
                Status::KilledByExpectOnly => s.killed_by_expect_only += 1,
                Status::Survived => s.survived += 1,
                Status::Stale(_) => s.stale += 1,
                Status::BuildFailed(_) => s.build_failed += 1,
                Status::Error(_) => s.errors += 1,
            }
            match r.verdict {
                Verdict::Fail(_) => s.failures += 1,
                Verdict::Note(_) => s.notes += 1,
                Verdict::Ok => {}
            }
            s.controls += usize::from(r.expect == Expect::Control);
            s.build_s += r.build_s;
            s.build_cpu_s += r.build_cpu_s;
            s.run_cpu_s += r.search.as_ref().map_or(0.0, |x| x.cpu_s_total);
        }
        s
    }
}

/// The text of stale snippets.
pub fn stale_text(found: &[Stale]) -> String {
    found
        .iter()
        .map(|s| match s.occurrences {
            0 => format!("snippet not found in {}", s.file),
            n => format!("snippet occurs {n} times in {}", s.file),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One line per mutant (progress and table).
pub fn line(r: &MutantResult) -> String {
    let mut text = format!(
        "{:<4} {:<17} {:<44} {:<19}",
        r.verdict.label(),
        r.status.label(),
        r.name,
        r.expect.as_str()
    );
    if let Some(f) = r.shown_failure() {
        let by = if f.rules.is_empty() {
            format!("[expect] {}", f.unmet.join(", "))
        } else {
            f.rules.join(", ")
        };
        let file = f.file.rsplit('/').next().unwrap_or(&f.file);
        let cpu = r.search.as_ref().map_or(0.0, |s| s.cpu_s_to_first);
        let _ = write!(text, " by {by} — {file} seed {} — {cpu:.1} cpu-s", f.seed);
    } else if let Some(s) = &r.search {
        let _ = write!(text, " ({} runs, {:.1} cpu-s)", s.runs, s.cpu_s_total);
    }
    match (&r.verdict, &r.status) {
        (Verdict::Fail(why) | Verdict::Note(why), _) => {
            let _ = write!(text, "\n       {why}");
        }
        (Verdict::Ok, _) => {}
    }
    if let Status::BuildFailed(tail) = &r.status {
        let _ = write!(text, "\n       {}", tail.replace('\n', "\n       "));
    }
    text
}

/// The human report.
pub fn human(seeds: &Range<u64>, baseline: Option<&Baseline>, results: &[MutantResult], s: &Summary) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "mutants over seeds {}..={}", seeds.start, seeds.end - 1);
    if let Some(b) = baseline {
        let _ = writeln!(
            text,
            "baseline: build {:.0} s ({:.0} cpu-s), {} runs clean in {:.1} cpu-s",
            b.build_s, b.build_cpu_s, b.runs, b.cpu_s
        );
    }
    for r in results {
        let _ = writeln!(text, "{}", line(r));
    }
    let _ = writeln!(
        text,
        "{} mutants: {} killed by a rule, {} by [expect] only, {} survived ({} controls), {} stale, {} build failures, {} errors",
        s.mutants, s.killed_by_rule, s.killed_by_expect_only, s.survived, s.controls, s.stale, s.build_failed, s.errors
    );
    let _ = writeln!(
        text,
        "time: builds {:.0} s wall ({:.0} cpu-s), runs {:.0} cpu-s, total {:.0} s wall; {} failing, {} notes",
        s.build_s, s.build_cpu_s, s.run_cpu_s, s.wall_s, s.failures, s.notes
    );
    text
}

#[derive(Serialize)]
struct Document<'a> {
    seeds: String,
    baseline: Option<&'a Baseline>,
    mutants: &'a [MutantResult],
    summary: &'a Summary,
    passed: bool,
}

/// The `--json` report.
pub fn json(seeds: &Range<u64>, baseline: Option<&Baseline>, results: &[MutantResult], s: &Summary) -> String {
    let document = Document {
        seeds: format!("{}..={}", seeds.start, seeds.end - 1),
        baseline,
        mutants: results,
        summary: s,
        passed: s.failures == 0,
    };
    serde_json::to_string_pretty(&document).unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each expectation accepts exactly its outcomes; stale and build failures always fail.
    #[test]
    fn verdicts_follow_expectations() {
        use Status::*;
        let ok = |e, s: &Status| Verdict::of(e, s) == Verdict::Ok;
        let fails = |e, s: &Status| matches!(Verdict::of(e, s), Verdict::Fail(_));
        assert!(ok(Expect::Rule, &KilledByRule));
        assert!(fails(Expect::Rule, &KilledByExpectOnly));
        assert!(fails(Expect::Rule, &Survived));
        assert!(ok(Expect::Killed, &KilledByExpectOnly));
        assert!(fails(Expect::Killed, &Survived));
        assert!(ok(Expect::SurvivesUntilRule, &Survived));
        assert!(!fails(Expect::SurvivesUntilRule, &KilledByRule));
        assert!(ok(Expect::Control, &Survived));
        assert!(fails(Expect::Control, &KilledByRule));
        assert!(fails(Expect::Control, &KilledByExpectOnly));
        for e in [Expect::Rule, Expect::Control, Expect::SurvivesUntilRule] {
            assert!(fails(e, &Stale(vec![])));
            assert!(fails(e, &BuildFailed(String::new())));
        }
    }
}
