//! `simctl`: parses the command line, runs the command, and maps its outcome
//! to the exit code (0 pass, 1 violation or unmet expectation, 2 bad input,
//! 3 nondeterminism, 4 a simulator limit reached: harness error). Usage errors
//! are clap's and exit 2 as well; with `--json` they are also printed as a JSON
//! error object on stdout.

use std::process::ExitCode;

use clap::Parser;
use simctl::app;
use simctl::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            if error.use_stderr() && std::env::args().any(|a| a == "--json") {
                let text = error.render().to_string();
                let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
                println!("{}", app::json_error(&[first.to_owned()]));
            }
            error.exit()
        }
    };
    // Unlocked handles: each write takes the stream's lock for that write
    // only. Holding stderr's lock for the whole run deadlocked every sweep
    // in a terminal, whose progress bar draws on stderr from another thread.
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    ExitCode::from(app::execute(cli, &mut out, &mut err).exit_code())
}
