//! Many runs at once: the (scenario, seed) work list after `--seeds` and
//! `--shard`, spread over worker threads. Each run is single-threaded and
//! independent (its own turmoil simulation on its own thread), so running
//! several in parallel cannot change any of them. Results come back in work
//! list order whatever the thread timing.

use std::io::{IsTerminal, Write};
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cli::Shard;
use crate::runner::{RunOptions, RunReport, run_one};
use crate::scenario::Scenario;

/// One scenario loaded from a file.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The path as given.
    pub file: String,
    pub scenario: Scenario,
}

/// One run to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkItem {
    /// Index into the loaded scenarios.
    pub scenario: usize,
    pub seed: u64,
}

/// Which seeds to run.
#[derive(Clone, Debug, Default)]
pub struct SeedChoice {
    /// `--seed`.
    pub single: Option<u64>,
    /// `--seeds`.
    pub range: Option<Range<u64>>,
    /// `--shard`.
    pub shard: Option<Shard>,
}

/// The work list: every scenario with every chosen seed that falls in the
/// shard (the k-th seed of the list goes to shard `k mod n + 1`).
pub fn work_list(scenarios: &[Loaded], choice: &SeedChoice) -> Vec<WorkItem> {
    let mut items = Vec::new();
    for (index, loaded) in scenarios.iter().enumerate() {
        let seeds: Vec<u64> = match (&choice.range, choice.single) {
            (Some(range), _) => range.clone().collect(),
            (None, Some(seed)) => vec![seed],
            (None, None) => vec![loaded.scenario.seed],
        };
        let owned = seeds
            .into_iter()
            .enumerate()
            .filter(|(k, _)| choice.shard.is_none_or(|s| s.owns(*k as u64)));
        items.extend(owned.map(|(_, seed)| WorkItem { scenario: index, seed }));
    }
    items
}

/// Draws a `[###---] done/total` bar, redrawn in place after every run.
pub struct Progress {
    total: usize,
    done: AtomicUsize,
    /// Where the bar is drawn (stderr in the CLI); `None` draws nothing.
    /// Locked by whichever worker finished a run, for one redraw.
    sink: Option<Mutex<Box<dyn Write + Send>>>,
}

/// Width of the progress bar, in characters.
const PROGRESS_BAR_WIDTH: usize = 30;

impl Progress {
    /// A bar drawn into `sink`.
    pub fn new(total: usize, sink: Option<Box<dyn Write + Send>>) -> Self {
        Self {
            total,
            done: AtomicUsize::new(0),
            sink: sink.map(Mutex::new),
        }
    }

    /// A bar on stderr when stderr is a terminal and there is more than one
    /// run; nothing otherwise (CI logs stay clean).
    pub fn on_stderr(total: usize) -> Self {
        let terminal = total > 1 && std::io::stderr().is_terminal();
        Self::new(
            total,
            terminal.then(|| Box::new(std::io::stderr()) as Box<dyn Write + Send>),
        )
    }

    /// Counts one finished run and redraws.
    pub fn tick(&self, failed: bool) {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        let Some(sink) = &self.sink else { return };
        let filled = (done * PROGRESS_BAR_WIDTH / self.total.max(1)).min(PROGRESS_BAR_WIDTH);
        let bar: String = "#".repeat(filled) + &"-".repeat(PROGRESS_BAR_WIDTH - filled);
        let mark = if failed { " (a run failed)" } else { "" };
        let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
        // Progress is best effort: a closed stderr must not stop the runs.
        let _ = write!(sink, "\r[{bar}] {done}/{}{mark}", self.total);
        if done == self.total {
            let _ = writeln!(sink);
        }
        let _ = sink.flush();
    }
}

/// Runs every item on up to `threads` worker threads; reports are returned
/// in the order of `items`.
pub fn run_all(scenarios: &[Loaded], items: &[WorkItem], options: RunOptions, threads: usize) -> Vec<RunReport> {
    run_all_with(items, threads, |item| {
        let loaded = &scenarios[item.scenario];
        run_one(&loaded.file, &loaded.scenario, item.seed, options)
    })
}

/// Runs `run` on every item on up to `threads` worker threads (live runs
/// use it with their own run function); reports come back in item order.
pub fn run_all_with(items: &[WorkItem], threads: usize, run: impl Fn(&WorkItem) -> RunReport + Sync) -> Vec<RunReport> {
    let next = AtomicUsize::new(0);
    let progress = Progress::on_stderr(items.len());
    // One slot per item, filled by whichever worker ran it.
    let results: Mutex<Vec<Option<RunReport>>> = Mutex::new(vec![None; items.len()]);
    let worker = || {
        loop {
            let index = next.fetch_add(1, Ordering::SeqCst);
            let Some(item) = items.get(index) else { return };
            let report = run(item);
            progress.tick(!report.passed());
            results.lock().unwrap_or_else(|p| p.into_inner())[index] = Some(report);
        }
    };
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        worker();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                // Worker threads live outside any simulation: each run builds
                // its own single-threaded world on the thread that runs it.
                scope.spawn(worker);
            }
        });
    }
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// Worker threads to use by default: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A writer whose bytes the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The bar fills in proportion, marks failures and ends its line when done.
    #[test]
    fn progress_bar_fills_and_ends_the_line() {
        let shared = Shared::default();
        let progress = Progress::new(2, Some(Box::new(shared.clone())));
        progress.tick(false);
        progress.tick(true);
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        let half = format!("\r[{}{}] 1/2", "#".repeat(15), "-".repeat(15));
        assert!(text.starts_with(&half), "{text:?}");
        assert!(
            text.ends_with(&format!("\r[{}] 2/2 (a run failed)\n", "#".repeat(30))),
            "{text:?}"
        );
    }

    /// Without a sink, ticking draws nothing and does not fail.
    #[test]
    fn no_sink_draws_nothing() {
        Progress::new(3, None).tick(false);
    }
}
