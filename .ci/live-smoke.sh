#!/usr/bin/env bash
# Live smoke: our provider-agent, as an external process, judged by simctl's
# live mode (`run --agent`): a short scenario and backpressure (read pauses
# sampled for agent_memory_bounded, counts held to its [live.expect]
# bounds), over two seeds, all four runs in parallel on distinct ports. Fails
# if any run fails. Needs only the Rust toolchain. Takes about 45 s after
# the build.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --bin simctl
cargo build --release --locked -p provider-agent --bin provider-agent
./target/release/simctl run scenarios/duplicate-jobs.toml scenarios/backpressure.toml --seeds 1..=2 --jobs 4 \
  --agent agents/provider-agent.toml --junit target/live-smoke.xml
# The live-only memory rule must have judged samples in every run.
runs=$(grep -c '<testcase' target/live-smoke.xml)
sampled=$(grep -c 'rule.agent_memory_bounded.judged" value="[1-9]' target/live-smoke.xml)
if [[ $sampled -ne $runs ]]; then
  echo "live-smoke: agent_memory_bounded judged samples in $sampled of $runs runs" >&2
  exit 1
fi
