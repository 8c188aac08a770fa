//! `simctl run --agent`: loads the adapter, sets aside the scenarios that
//! declare they cannot run live (`[live] skip`, with the reason), refuses
//! (or, with `--skip-refused`, sets aside) the others whose faults cannot be
//! applied live, and runs the rest on the worker threads, each run with its
//! own ports, runtime and agent process.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::adapter::Adapter;
use super::faults::refusals;
use super::run::{LiveOptions, run_one_live};
use crate::cli::RunArgs;
use crate::runner::{RunOptions, RunReport};
use crate::sweep::{self, Loaded, WorkItem};

/// The default directory of the runs' files: `target/simctl-live` when run
/// from a cargo workspace, the system's temp directory otherwise.
pub fn default_live_dir() -> PathBuf {
    let target = Path::new("target");
    if target.is_dir() {
        target.join("simctl-live")
    } else {
        std::env::temp_dir().join("simctl-live")
    }
}

/// The directory of the running executable (`${exe_dir}`).
fn exe_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default()
}

/// Runs `items` live; `None` (after saying why on `err`) when the command
/// must end as bad input.
pub fn run_all(
    adapter: &Path,
    args: &RunArgs,
    loaded: &[Loaded],
    items: &[WorkItem],
    threads: usize,
    err: &mut dyn Write,
) -> Option<Vec<RunReport>> {
    let adapter = match Adapter::load(adapter) {
        Ok(adapter) => adapter,
        Err(error) => {
            let _ = writeln!(err, "simctl: {error}");
            return None;
        }
    };
    // A scenario that declares it cannot run live (`[live] skip`) is set
    // aside with its reason; one whose faults cannot be applied live, but
    // says nothing, is refused unless `--skip-refused`.
    for l in loaded {
        if let Some(why) = &l.scenario.live.skip {
            let _ = writeln!(err, "simctl: {}: skipped in live mode ([live] skip): {why}", l.file);
        }
    }
    let declared: Vec<usize> = (loaded.iter().enumerate())
        .filter(|(_, l)| l.scenario.live.skip.is_some())
        .map(|(i, _)| i)
        .collect();
    let refused: Vec<(usize, Vec<String>)> = (loaded.iter().enumerate())
        .filter(|(i, _)| !declared.contains(i))
        .map(|(i, l)| (i, refusals(&l.scenario)))
        .filter(|(_, why)| !why.is_empty())
        .collect();
    for (i, why) in &refused {
        let verb = if args.skip_refused { "skipped" } else { "refused" };
        for reason in why {
            let _ = writeln!(err, "simctl: {}: {verb} in live mode: {reason}", loaded[*i].file);
        }
    }
    if !refused.is_empty() && !args.skip_refused {
        let _ = writeln!(err, "simctl: (--skip-refused runs the other scenarios)");
        return None;
    }
    let runnable: Vec<WorkItem> = (items.iter().copied())
        .filter(|item| refused.iter().all(|(i, _)| *i != item.scenario) && !declared.contains(&item.scenario))
        .collect();
    if runnable.is_empty() {
        let _ = writeln!(err, "simctl: no scenario can run live");
        return None;
    }
    let live_dir = args.live_dir.clone().unwrap_or_else(default_live_dir);
    let live = LiveOptions {
        adapter,
        live_dir: std::path::absolute(&live_dir).unwrap_or(live_dir),
        exe_dir: exe_dir(),
    };
    let options = RunOptions {
        keep_trace: args.trace.is_some(),
        check_determinism: false,
    };
    Some(sweep::run_all_with(
        &runnable,
        threads,
        |item| {
            let l = &loaded[item.scenario];
            run_one_live(&l.file, &l.scenario, item.seed, &live, options)
        },
        &mut |_| {},
    ))
}
