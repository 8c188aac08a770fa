//! The binary in a terminal: stdin, stdout and stderr on a pseudo-terminal,
//! as a person types it. CI's pipes never see what only a terminal does
//! (the progress bar), so these tests make one with python3's `pty` module
//! (python3 is on every machine CI runs on; see DEVELOPERS.md).

use std::process::Command;

use crate::support::small_fixture;

/// Longest a sweep of the small fixture may take under the PTY before the
/// runner kills it and reports a hang. A healthy sweep of four seeds takes
/// well under a second of CPU; the bound is generous for a loaded machine.
const PTY_RUN_TIMEOUT_S: u64 = 120;

/// Runs `argv` with its three standard streams on a fresh pseudo-terminal,
/// drains the terminal while it runs, and kills it after `timeout_s`.
/// Prints everything the program wrote, then exits with its exit code, or
/// with 124 when it had to be killed.
const PTY_RUNNER: &str = r#"
import os, pty, select, subprocess, sys, time
timeout_s = float(sys.argv[1])
master, slave = pty.openpty()
child = subprocess.Popen(sys.argv[2:], stdin=slave, stdout=slave, stderr=slave, close_fds=True)
os.close(slave)
out = bytearray()
deadline = time.monotonic() + timeout_s
code = None
while True:
    left = deadline - time.monotonic()
    if left <= 0:
        child.kill()
        child.wait()
        code = 124
        break
    ready, _, _ = select.select([master], [], [], min(left, 0.2))
    if ready:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b""
        if data:
            out += data
            continue
    if child.poll() is not None:
        # Drain what is left, then stop.
        while select.select([master], [], [], 0.1)[0]:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
        code = child.returncode
        break
sys.stdout.buffer.write(bytes(out))
sys.stdout.flush()
sys.exit(code)
"#;

/// Runs simctl with `args` under a pseudo-terminal; returns its exit code
/// (124: killed at the timeout) and what it wrote to the terminal.
fn simctl_in_a_terminal(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new("python3")
        .arg("-c")
        .arg(PTY_RUNNER)
        .arg(PTY_RUN_TIMEOUT_S.to_string())
        .arg(env!("CARGO_BIN_EXE_simctl"))
        .args(args)
        .output()
        .expect("python3 runs (CI machines have it)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), text)
}

/// A multi-seed sweep on two workers, typed in a terminal, finishes and
/// prints its summary (it used to deadlock: main held the stderr lock while a
/// worker waited for it to draw the progress bar).
#[test]
fn a_sweep_in_a_terminal_finishes() {
    let fixture = small_fixture().display().to_string();
    let (code, text) = simctl_in_a_terminal(&["run", &fixture, "--seeds", "1..5", "--jobs", "2"]);
    assert_ne!(code, Some(124), "simctl hung in a terminal; it wrote:\n{text}");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("4 run(s): 4 passed"), "no summary in:\n{text}");
    // The bar drew, and was cleared before the summary: the summary starts
    // at the start of a line (after a newline, or on the bar's cleared line).
    assert!(text.contains("/4 runs"), "no progress bar in:\n{text}");
    let summary_at = text.rfind("PASS small  seed 1 ").expect("summary line");
    let before = &text[..summary_at];
    assert!(
        before.ends_with('\n') || before.ends_with("\r\u{1b}[2K"),
        "the summary starts mid-line:\n{text:?}"
    );
}

/// Every worker count, and one seed per worker, finish in a terminal too.
#[test]
fn sweeps_in_a_terminal_finish_on_any_worker_count() {
    let fixture = small_fixture().display().to_string();
    for jobs in ["1", "3"] {
        let (code, text) = simctl_in_a_terminal(&["run", &fixture, "--seeds", "10..13", "--jobs", jobs]);
        assert_ne!(
            code,
            Some(124),
            "simctl --jobs {jobs} hung in a terminal; it wrote:\n{text}"
        );
        assert_eq!(code, Some(0), "--jobs {jobs}: {text}");
        assert!(
            text.contains("3 run(s): 3 passed"),
            "--jobs {jobs}: no summary in:\n{text}"
        );
    }
}
