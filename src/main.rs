//! `simctl`: parses the command line, runs the command, and maps its outcome
//! to the exit code (0 pass, 1 violation or unmet expectation, 2 bad input,
//! 3 nondeterminism, 4 a simulator limit reached: harness error). Usage errors are clap's and exit 2 as well.

use std::process::ExitCode;

use clap::Parser;
use simctl::app;
use simctl::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    ExitCode::from(app::execute(cli, &mut out, &mut err).exit_code())
}
