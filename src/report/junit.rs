//! The `--junit` report: one `<testsuite>` per scenario file, one
//! `<testcase>` per seed; a failed run carries its violations, unmet
//! expectations and replay command in `<failure>`; a run stopped by a
//! simulator limit carries the harness error in `<error>`.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::runner::RunReport;

/// Escapes text for XML attributes and content.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

fn failure_text(r: &RunReport) -> String {
    let mut text = String::new();
    if let Some(error) = &r.harness_error {
        let _ = writeln!(text, "harness error, seed {}: {error}", r.seed);
    }
    for v in &r.verdict.violations {
        let job = v.job.as_deref().unwrap_or("-");
        let _ = writeln!(
            text,
            "{} seed {} job {job} at {:.3} s: {}",
            v.rule,
            r.seed,
            v.at_us as f64 / 1e6,
            v.detail
        );
    }
    for u in &r.expect.unmet {
        let _ = writeln!(text, "expect.{}: {}", u.key, u.detail);
    }
    if let Some(d) = r.determinism.as_ref().and_then(|d| d.divergence.as_ref()) {
        let _ = writeln!(text, "nondeterministic: first diverging event #{}", d.index);
    }
    let _ = writeln!(text, "replay: {}", r.replay_command());
    text
}

/// The JUnit XML document for `reports`.
pub fn render(reports: &[RunReport]) -> String {
    let mut suites: BTreeMap<&str, Vec<&RunReport>> = BTreeMap::new();
    for report in reports {
        suites.entry(report.file.as_str()).or_default().push(report);
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"simctl\">\n");
    for (file, runs) in suites {
        // A run the simulator could not carry to its end is an error (the
        // harness failed), not a failure (the agent did).
        let errors = runs.iter().filter(|r| r.harness_error.is_some()).count();
        let failures = runs
            .iter()
            .filter(|r| r.harness_error.is_none() && (!r.passed() || r.nondeterministic()))
            .count();
        let seconds: f64 = runs.iter().map(|r| r.wall_ms / 1e3).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{seconds:.3}\">",
            escape(file),
            runs.len()
        );
        for r in runs {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"seed {}\" time=\"{:.3}\"",
                escape(&r.scenario),
                r.seed,
                r.wall_ms / 1e3
            );
            out.push_str(">\n");
            out.push_str(&super::judged::junit_properties(r, escape));
            if r.passed() && !r.nondeterministic() {
                out.push_str("    </testcase>\n");
                continue;
            }
            if r.harness_error.is_some() {
                let _ = write!(
                    out,
                    "      <error message=\"harness error\" type=\"simctl\">{}</error>\n    </testcase>\n",
                    escape(&failure_text(r))
                );
                continue;
            }
            let first = r.verdict.violations.first().map(|v| v.rule.to_owned());
            let message = first
                .or_else(|| r.expect.unmet.first().map(|u| format!("expect.{}", u.key)))
                .unwrap_or_else(|| "nondeterministic".to_owned());
            let _ = write!(
                out,
                "      <failure message=\"{}\" type=\"simctl\">{}</failure>\n    </testcase>\n",
                escape(&message),
                escape(&failure_text(r))
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XML escaping covers markup and drops control characters.
    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}
