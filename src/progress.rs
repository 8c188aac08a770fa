//! What a sweep shows while it runs, on stderr, so that stdout keeps only
//! the final report: each run's line as soon as it finishes and, on a
//! terminal, an `indicatif` bar below them; without a terminal, a progress
//! line after every tenth of the runs (but no more often than every
//! [`PROGRESS_EVERY_RUNS_MIN`] runs) or every [`PROGRESS_EVERY_S`] seconds,
//! whichever comes first. A single run shows
//! nothing live: its summary is all there is.
//!
//! Everything here runs on the thread that called the sweep, never on a
//! worker (see [`crate::sweep::run_all_streaming`]).

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::line::{Columns, run_line};
use crate::runner::RunReport;
use crate::wall::Stopwatch;

/// Without a terminal, a progress line after each tenth of the runs, but
/// after no fewer than this many...
pub const PROGRESS_EVERY_RUNS_MIN: usize = 10;
/// ...or when this many seconds passed since the last one.
pub const PROGRESS_EVERY_S: u64 = 10;
/// How often the terminal bar redraws by itself (its clock and estimate).
const BAR_TICK_MS: u64 = 250;
/// Terminal redraws per second at most.
const BAR_REFRESH_HZ: u8 = 10;

/// Progress output of one sweep.
pub struct Progress<'a> {
    total: usize,
    done: usize,
    failed: usize,
    columns: Columns,
    mode: Mode,
    /// Where lines go without a terminal (stderr in the CLI).
    err: &'a mut dyn Write,
    stopwatch: Stopwatch,
    /// Elapsed time at the last progress line (no terminal).
    last_progress: Duration,
}

enum Mode {
    /// One run: nothing live.
    Silent,
    /// A terminal: lines are printed above an `indicatif` bar, which draws
    /// itself on the process's stderr.
    Bar(ProgressBar),
    /// No terminal: run lines and periodic progress lines into `err`.
    Lines,
}

impl<'a> Progress<'a> {
    /// Progress output for `total` runs laid out in `columns`; `terminal`:
    /// stderr is a terminal (draw the bar there, not into `err`).
    pub fn new(total: usize, columns: Columns, terminal: bool, err: &'a mut dyn Write) -> Self {
        let mode = match (total, terminal) {
            (0 | 1, _) => Mode::Silent,
            (_, true) => Mode::Bar(bar(total)),
            (_, false) => Mode::Lines,
        };
        Self {
            total,
            done: 0,
            failed: 0,
            columns,
            mode,
            err,
            stopwatch: Stopwatch::start(),
            last_progress: Duration::ZERO,
        }
    }

    /// Counts one finished run and shows its line.
    pub fn finished(&mut self, report: &RunReport) {
        self.done += 1;
        self.failed += usize::from(!report.passed() || report.nondeterministic());
        let line = run_line(report, &self.columns);
        match &self.mode {
            Mode::Silent => {}
            Mode::Bar(bar) => {
                bar.println(line);
                bar.set_message(self.failed_text());
                bar.inc(1);
            }
            Mode::Lines => {
                // Progress output is best effort: a closed stderr must not stop
                // the runs.
                let _ = writeln!(self.err, "{line}");
                self.progress_line_if_due();
            }
        }
    }

    /// Ends the live output. The bar is cleared (the streamed lines stay
    /// above it): a finished bar would leave the cursor at the end of its
    /// line, and the summary on stdout would start there.
    pub fn finish(&mut self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }

    fn failed_text(&self) -> String {
        match self.failed {
            0 => String::new(),
            n => format!("{n} failed"),
        }
    }

    fn progress_line_if_due(&mut self) {
        let elapsed = self.stopwatch.elapsed();
        let step = self.total.div_ceil(10).max(PROGRESS_EVERY_RUNS_MIN);
        let by_count = self.done % step == 0;
        let by_time = elapsed.saturating_sub(self.last_progress) >= Duration::from_secs(PROGRESS_EVERY_S);
        if self.done == self.total || !(by_count || by_time) {
            return;
        }
        self.last_progress = elapsed;
        let _ = writeln!(
            self.err,
            "{}",
            progress_text(self.done, self.total, self.failed, elapsed)
        );
    }
}

/// `progress: 40/200 runs (20%), 1 failed, 12.3 s, about 49.2 s left`.
pub fn progress_text(done: usize, total: usize, failed: usize, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let left = if done > 0 {
        seconds * (total - done) as f64 / done as f64
    } else {
        0.0
    };
    format!(
        "progress: {done}/{total} runs ({}%), {failed} failed, {seconds:.1} s, about {left:.1} s left",
        done * 100 / total.max(1)
    )
}

fn bar(total: usize) -> ProgressBar {
    let target = ProgressDrawTarget::stderr_with_hz(BAR_REFRESH_HZ);
    let bar = ProgressBar::with_draw_target(Some(total as u64), target);
    // The template is a constant; should it ever fail to parse, the
    // default style still shows the count.
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} runs {msg} (eta {eta})")
    {
        bar.set_style(style.progress_chars("#>-"));
    }
    bar.enable_steady_tick(Duration::from_millis(BAR_TICK_MS));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The progress line counts runs and failures and estimates the rest.
    #[test]
    fn progress_text_counts_and_estimates() {
        let text = progress_text(40, 200, 1, Duration::from_secs(10));
        assert_eq!(text, "progress: 40/200 runs (20%), 1 failed, 10.0 s, about 40.0 s left");
    }
}
