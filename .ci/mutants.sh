#!/usr/bin/env bash
# CI gate on the mutation catalog (mutants/README.md): plants every defect of
# mutants/catalog/ in a scratch copy of the agent, runs the scenario library
# against each over a few seeds, and fails if a non-control mutant survives,
# a control is killed, or a catalog snippet no longer applies (STALE).
#
# Usage: .ci/mutants.sh [SEEDS]   (default: $CI_MUTANT_SEEDS, else 1..=2)
set -euo pipefail
cd "$(dirname "$0")/.."

SEEDS="${1:-${CI_MUTANT_SEEDS:-1..=2}}"

cargo build --release --locked --bin simctl
# A stale snippet fails in seconds, before anything is built.
./target/release/simctl mutants --check
./target/release/simctl mutants --seeds "$SEEDS"
