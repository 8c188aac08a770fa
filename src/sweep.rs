//! Many runs at once: the (scenario, seed) work list after `--seeds` and
//! `--shard`, spread over worker threads. Each run is single-threaded and
//! independent (its own turmoil simulation on its own thread), so running
//! several in parallel cannot change any of them. Results come back in work
//! list order whatever the thread timing; each is also handed to the caller
//! as soon as it finishes, for live output.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

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

/// Most finished reports waiting for the calling thread to take them. A
/// worker that finds the queue full waits; the calling thread only stores a
/// report and writes a line or two per run, so the queue rarely fills.
pub const FINISHED_QUEUE_MAX: usize = 64;

/// Runs every item on up to `threads` worker threads; reports are returned
/// in the order of `items`.
pub fn run_all(scenarios: &[Loaded], items: &[WorkItem], options: RunOptions, threads: usize) -> Vec<RunReport> {
    run_all_streaming(scenarios, items, options, threads, &mut |_| {})
}

/// [`run_all`], and `on_done` sees each report as soon as its run
/// finishes (in finishing order), on the calling thread: workers never
/// touch an output stream, so nothing they do can wait on the caller.
pub fn run_all_streaming(
    scenarios: &[Loaded],
    items: &[WorkItem],
    options: RunOptions,
    threads: usize,
    on_done: &mut dyn FnMut(&RunReport),
) -> Vec<RunReport> {
    let run = |item: &WorkItem| {
        let loaded = &scenarios[item.scenario];
        run_one(&loaded.file, &loaded.scenario, item.seed, options)
    };
    run_all_with(items, threads, run, on_done)
}

/// Runs `run` on every item on up to `threads` worker threads (live runs
/// use it with their own run function); reports come back in item order,
/// and each is handed to `on_done` as in [`run_all_streaming`].
pub fn run_all_with(
    items: &[WorkItem],
    threads: usize,
    run: impl Fn(&WorkItem) -> RunReport + Sync,
    on_done: &mut dyn FnMut(&RunReport),
) -> Vec<RunReport> {
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, items.len().max(1));
    let mut results: Vec<Option<RunReport>> = vec![None; items.len()];
    // Workers → calling thread: `(index into items, report)`, bounded.
    let (finished_tx, finished_rx) = mpsc::sync_channel::<(usize, RunReport)>(FINISHED_QUEUE_MAX);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (next, finished_tx, run) = (&next, finished_tx.clone(), &run);
            // Worker threads live outside any simulation: each run builds
            // its own single-threaded world on the thread that runs it.
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(index) else { return };
                    let report = run(item);
                    if finished_tx.send((index, report)).is_err() {
                        return;
                    }
                }
            });
        }
        // The receive loop below ends when the last worker drops its sender.
        drop(finished_tx);
        for (index, report) in finished_rx {
            on_done(&report);
            results[index] = Some(report);
        }
    });
    results.into_iter().flatten().collect()
}

/// Worker threads to use by default: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario;

    fn small() -> Loaded {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures/small.toml");
        Loaded {
            file: file.to_owned(),
            scenario: scenario::load(std::path::Path::new(file)).expect("fixture loads"),
        }
    }

    /// Every run is reported to `on_done` once, and the reports come back in
    /// work list order whatever the finishing order.
    #[test]
    fn reports_stream_once_each_and_return_in_order() {
        let loaded = [small()];
        let choice = SeedChoice {
            range: Some(1..4),
            ..SeedChoice::default()
        };
        let items = work_list(&loaded, &choice);
        let mut streamed = Vec::new();
        let reports = run_all_streaming(&loaded, &items, RunOptions::default(), 2, &mut |r| {
            streamed.push(r.seed)
        });
        streamed.sort_unstable();
        assert_eq!(streamed, vec![1, 2, 3]);
        assert_eq!(reports.iter().map(|r| r.seed).collect::<Vec<_>>(), vec![1, 2, 3]);
    }
}
