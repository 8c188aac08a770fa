#!/usr/bin/env bash
# Live smoke: our provider-agent, as an external process, judged by simctl's
# live mode (`run --agent`) on a short scenario, over two seeds run in
# parallel on distinct ports. Fails if any run fails. Needs only the Rust
# toolchain. Takes about 15 s after the build.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --bin simctl
cargo build --release --locked -p provider-agent --bin provider-agent
./target/release/simctl run scenarios/duplicate-jobs.toml --seeds 1..=2 --jobs 2 \
  --agent agents/provider-agent.toml --junit target/live-smoke.xml
