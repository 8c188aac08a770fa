//! What each rule judged on one run, for the human and JUnit reports: items
//! judged, items excused by reason, violations, or "nothing to judge".

use std::fmt::Write;

use crate::oracle::RuleTally;
use crate::runner::RunReport;

/// One line per rule that ran, under the summary's `rules` line.
pub fn human(out: &mut String, r: &RunReport) {
    for tally in &r.verdict.tallies {
        let _ = writeln!(out, "    {:<36} {}", tally.rule, line(tally));
    }
}

/// `N judged, M excused (why K, …), V violation(s)`, or `nothing to judge`.
pub fn line(tally: &RuleTally) -> String {
    let excused: u64 = tally.excused.values().sum();
    let reasons: Vec<String> = tally.excused.iter().map(|(why, n)| format!("{why} {n}")).collect();
    let excused = if excused == 0 {
        String::new()
    } else {
        format!(", {excused} excused ({})", reasons.join("; "))
    };
    let violations = if tally.violations == 0 {
        String::new()
    } else {
        format!(", {} VIOLATION(S)", tally.violations)
    };
    if tally.nothing_to_judge() {
        format!("nothing to judge{excused}{violations}")
    } else {
        format!("{} judged{excused}{violations}", tally.judged)
    }
}

/// JUnit `<properties>` of one test case: per rule, judged, excused and
/// violations.
pub fn junit_properties(r: &RunReport, escape: fn(&str) -> String) -> String {
    let mut out = String::from("      <properties>\n");
    for tally in &r.verdict.tallies {
        let excused: u64 = tally.excused.values().sum();
        for (key, value) in [
            ("judged", tally.judged),
            ("excused", excused),
            ("violations", tally.violations),
        ] {
            let _ = writeln!(
                out,
                "        <property name=\"rule.{}.{key}\" value=\"{value}\"/>",
                escape(tally.rule)
            );
        }
    }
    out.push_str("      </properties>\n");
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn tally(judged: u64, excused: &[(&'static str, u64)], violations: u64) -> RuleTally {
        RuleTally {
            rule: "r",
            judged,
            excused: excused.iter().copied().collect::<BTreeMap<_, _>>(),
            violations,
        }
    }

    /// A rule with nothing judged says so, still naming what it excused.
    #[test]
    fn nothing_to_judge_is_said() {
        assert_eq!(line(&tally(0, &[], 0)), "nothing to judge");
        assert_eq!(
            line(&tally(0, &[("cancelled first", 2)], 0)),
            "nothing to judge, 2 excused (cancelled first 2)"
        );
    }

    /// Judged, excused by reason and violations are all counted.
    #[test]
    fn counts_are_listed() {
        assert_eq!(
            line(&tally(5, &[("a", 1), ("b", 2)], 1)),
            "5 judged, 3 excused (a 1; b 2), 1 VIOLATION(S)"
        );
    }
}
