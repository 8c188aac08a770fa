#!/usr/bin/env bash
# The harness must keep catching a known-bad agent. Installs the pinned
# third-party `usepod-agent` 0.3.5 (the published upstream of the seed, with
# the seed's defects; scripts/install-usepod-agent.sh, `--locked`), runs it
# live (`simctl run --agent agents/usepod-agent.toml`) on the scenarios that
# expose its defects, and fails unless every defect below is reported as a
# named rule violation. Live runs are not deterministic, so each defect is
# asked of the whole set of runs, not of one scenario and seed.
#
#   defect                                   rule that must fire
#   read loop wedged after a read pause       deadline_enforced, reconnects_after_disruption
#   a live duplicate job_id run twice         never_run_twice
#   malformed jobs never get invalid_job      exactly_one_terminal
#   heartbeat queue_depth 0 with jobs running heartbeat_queue_depth
#   heartbeat latency/tokens figures zeros    heartbeat_figures_truthful
#   tokens_emitted carries the byte count     tokens_emitted_matches_backend
#   request.model overrides the routed model  backend_model_is_routed
set -euo pipefail
cd "$(dirname "$0")/.."

root=target/usepod-agent
out=target/upstream-agent
mkdir -p "$out"
bash scripts/install-usepod-agent.sh "$root"
cargo build --release --locked --bin simctl

code=0
./target/release/simctl run \
  scenarios/backpressure.toml scenarios/duplicate-jobs.toml scenarios/malformed-frames.toml \
  scenarios/backend-faults.toml scenarios/steady-state.toml scenarios/routed-model.toml \
  --agent agents/usepod-agent.toml --jobs 3 --live-dir "$out/runs" --json > "$out/report.json" || code=$?
if [[ $code -ne 1 ]]; then
  echo "upstream-agent: simctl exited $code; a judged failing run exits 1" >&2
  exit 1
fi
python3 - "$out/report.json" <<'PY'
import collections, json, sys
report = json.load(open(sys.argv[1]))
fired = collections.Counter()
for run in report["runs"]:
    rules = collections.Counter(v["rule"] for v in run["verdict"]["violations"])
    print(f"  {run['scenario']:<18} seed {run['seed']}: " + (", ".join(f"{r} {n}" for r, n in sorted(rules.items())) or "no violation"))
    fired.update(rules)
wanted = ["deadline_enforced", "reconnects_after_disruption", "never_run_twice", "exactly_one_terminal",
          "heartbeat_queue_depth", "heartbeat_figures_truthful", "tokens_emitted_matches_backend",
          "backend_model_is_routed"]
missing = [rule for rule in wanted if not fired[rule]]
if missing:
    print(f"upstream-agent: the harness no longer catches usepod-agent for: {', '.join(missing)}", file=sys.stderr)
    sys.exit(1)
print(f"upstream-agent: every known defect caught ({len(wanted)} rules fired)")
PY
