#!/usr/bin/env bash
# The bench regression gate, as CI calls it (`bash benches/gate.sh`). The gate
# itself is benches/gate.py (python3 standard library only); arguments pass
# through, e.g. `bash benches/gate.sh --update`. See benches/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 benches/gate.py --self-test
exec python3 benches/gate.py "$@"
