#!/usr/bin/env bash
# Determinism gate: run the library over the same seeds in two separate
# processes (one worker each, so both processes build their simulations in
# the same order) and require identical trace hashes run for run.
#
# Why two processes rather than `simctl run --check-determinism`: a host
# crash drops the host's tokio tasks in an order set by tokio's process-global
# task ids, and each dropped socket draws from turmoil's RNG; so within one
# process, a second run of a crash scenario can differ in detail from the
# first. Across fresh processes with the same history it cannot. See
# README.md ("Determinism") for the full story.
set -euo pipefail
seeds=$1
out=$(mktemp -d)
./target/release/simctl run scenarios/*.toml --seeds "$seeds" --jobs 1 --json > "$out/a.json" || true
./target/release/simctl run scenarios/*.toml --seeds "$seeds" --jobs 1 --json > "$out/b.json" || true
python3 - "$out/a.json" "$out/b.json" <<'PY'
import json, sys
a, b = (json.load(open(p))["runs"] for p in sys.argv[1:3])
key = lambda r: (r["file"], r["seed"])
ha = {key(r): r["trace_hash"] for r in a}
hb = {key(r): r["trace_hash"] for r in b}
if ha.keys() != hb.keys() or not ha:
    print("determinism: the two processes ran different sets of runs"); sys.exit(3)
diff = [k for k in sorted(ha) if ha[k] != hb[k]]
for f, s in diff:
    print(f"determinism: {f} seed {s}: {ha[(f, s)][:16]} != {hb[(f, s)][:16]}")
print(f"determinism: {len(ha) - len(diff)} of {len(ha)} runs identical across two processes")
sys.exit(3 if diff else 0)
PY
