#!/usr/bin/env bash
# Installs the third-party `usepod-agent` (the published upstream of the seed,
# Apache-2.0) from crates.io, pinned and with its own lock file, so that
# `simctl run --agent agents/usepod-agent.toml` can judge it. Nothing of its
# code enters this repository: cargo builds it in a scratch directory and
# installs the binary under the root given (default: target/usepod-agent).
#
#   scripts/install-usepod-agent.sh [ROOT]
#
# Afterwards the binary is ROOT/bin/usepod-agent. Re-running is cheap: cargo
# skips the build when that version is already installed there.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="0.3.5"
ROOT="${1:-target/usepod-agent}"

# Already there at the pinned version (installed by hand, or by an earlier
# run whose cargo tracking files were lost): nothing to build.
if [[ "$("$ROOT/bin/usepod-agent" --version 2>/dev/null || true)" == "usepod-agent $VERSION" ]]; then
  echo "usepod-agent $VERSION already at $ROOT/bin/usepod-agent"
  exit 0
fi
cargo install usepod-agent --version "$VERSION" --locked --root "$ROOT"
"$ROOT/bin/usepod-agent" --version || true
echo "usepod-agent $VERSION installed at $ROOT/bin/usepod-agent"
