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
    /// Time since the sweep began: a [`Stopwatch`] in the CLI, a hand-set
    /// clock in tests (so they need no sleeps).
    clock: Box<dyn Fn() -> Duration + 'a>,
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
        let stopwatch = Stopwatch::start();
        let clock = Box::new(move || stopwatch.elapsed());
        Self::with_clock(total, columns, mode, err, clock)
    }

    fn with_clock(
        total: usize,
        columns: Columns,
        mode: Mode,
        err: &'a mut dyn Write,
        clock: Box<dyn Fn() -> Duration + 'a>,
    ) -> Self {
        Self {
            total,
            done: 0,
            failed: 0,
            columns,
            mode,
            err,
            clock,
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
        let elapsed = (self.clock)();
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
    use std::cell::Cell;

    use super::*;

    /// Counts `runs` finished runs at `at_s` seconds each (as `finished`
    /// does, without a report) and returns the progress lines written.
    fn lines_after(total: usize, runs: &[f64]) -> Vec<String> {
        let mut out: Vec<u8> = Vec::new();
        let now = Cell::new(Duration::ZERO);
        {
            let clock = Box::new(|| now.get());
            let mut progress = Progress::with_clock(total, Columns::default(), Mode::Lines, &mut out, clock);
            for &at_s in runs {
                now.set(Duration::from_secs_f64(at_s));
                progress.done += 1;
                progress.progress_line_if_due();
            }
        }
        String::from_utf8(out).unwrap().lines().map(str::to_owned).collect()
    }

    /// Without a terminal a progress line comes after every tenth of the
    /// runs (here 10 of 100: after runs 10, 20, …, 90, never after the
    /// last, which the summary reports), and no more often.
    #[test]
    fn progress_fires_every_tenth_of_the_runs() {
        let fast: Vec<f64> = (1..=100).map(|i| f64::from(i) * 0.01).collect();
        let lines = lines_after(100, &fast);
        let counts: Vec<&str> = lines.iter().map(|l| l.split_whitespace().nth(1).unwrap()).collect();
        assert_eq!(
            counts,
            [
                "10/100", "20/100", "30/100", "40/100", "50/100", "60/100", "70/100", "80/100", "90/100"
            ]
        );
    }

    /// A small sweep fires every [`PROGRESS_EVERY_RUNS_MIN`] runs at most,
    /// not every tenth of it (every run of 20).
    #[test]
    fn progress_fires_no_more_often_than_the_run_minimum() {
        let fast: Vec<f64> = (1..=20).map(|i| f64::from(i) * 0.01).collect();
        let lines = lines_after(20, &fast);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("progress: 10/20 runs (50%)"), "{lines:?}");
    }

    /// Slow runs fire on time: once [`PROGRESS_EVERY_S`] passed since the
    /// last line, whatever the count, and the clock restarts from there.
    #[test]
    fn progress_fires_every_ten_seconds_of_slow_runs() {
        // 100 runs, the first three 6 s apart: 6 s (no), 12 s (yes: 12 ≥ 10),
        // 18 s (no: 6 s since), 24 s (yes: 12 s since).
        let lines = lines_after(100, &[6.0, 12.0, 18.0, 24.0]);
        let counts: Vec<&str> = lines.iter().map(|l| l.split_whitespace().nth(1).unwrap()).collect();
        assert_eq!(counts, ["2/100", "4/100"], "{lines:?}");
        assert!(lines[0].contains(", 12.0 s, about 588.0 s left"), "{lines:?}");
    }

    /// The progress line counts runs and failures and estimates the rest.
    #[test]
    fn progress_text_counts_and_estimates() {
        let text = progress_text(40, 200, 1, Duration::from_secs(10));
        assert_eq!(text, "progress: 40/200 runs (20%), 1 failed, 10.0 s, about 40.0 s left");
    }
}
