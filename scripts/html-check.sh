#!/usr/bin/env bash
# Opens simctl's HTML reports in a real headless browser (Chromium from the
# Debian packages, installed here if missing) and fails unless each page
# drew every timeline lane, logged no console error and drew in under 2 s,
# and unless every violation of a run was drawn as a marker on the timeline
# and listed in the header. It also takes a screenshot of each page, and
# drives the job table of the overload and swarm pages: opened with
# `#selfcheck`, the page's own script (assets/selfcheck.js) sorts, filters,
# clears and clicks a row with real events and writes "ok …" or "FAIL: why"
# into the DOM, which this script reads from the dump.
#
# Pages checked:
#   overload-broken  a real failing run: scenarios/overload.toml with six
#                    slots instead of four (README's FAIL example)
#   overload-saved   the same run's page made from its saved trace
#                    (`simctl report`)
#   swarm            the biggest swarm run of seeds 1..30 (swarm-faults seed
#                    17, about 19,000 events; overload has about 21,700)
#   sweep index      `--seeds` with `--html`: the index page
#   violations       a run with violations: the small fixture whose
#                    coordinator rejects every handshake (tests/it/html.rs),
#                    so the world never settles and no session reconnects
#                    (5 violations); its markers must all be drawn
#
# The table check must fail on pages planted with a broken sort, a broken
# outcome filter or a row click that highlights nothing on the timeline.
#
# Usage: scripts/html-check.sh [OUT_DIR]   (default target/html-check)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/html-check}
mkdir -p "$out"
# Longest the page's own drawing may take, in ms (the issue's bound).
render_ms_max=2000

find_chromium() { command -v chromium || command -v chromium-browser || true; }
if [ -z "$(find_chromium)" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "html-check: installing chromium from the Debian packages"
  $sudo apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
fi
chrome=$(find_chromium)

cargo build --release --locked --bin simctl
simctl=target/release/simctl

# Runs simctl; exit 0 (pass) and 1 (fail) both give a page.
run_page() {
  local code=0
  "$simctl" "$@" > /dev/null || code=$?
  if [ "$code" -gt 1 ]; then
    echo "html-check: simctl $* exited $code"
    exit 1
  fi
  echo "$code"
}

sed -e 's/^max_concurrent = 4$/max_concurrent = 6/' scenarios/overload.toml > "$out/overload-broken.toml"
grep -q '^max_concurrent = 6$' "$out/overload-broken.toml"
code=$(run_page run "$out/overload-broken.toml" --html "$out/overload-broken.html" --trace "$out/overload-broken.jsonl")
[ "$code" -eq 1 ] || { echo "html-check: the broken overload run passed"; exit 1; }
"$simctl" report "$out/overload-broken.jsonl" --html "$out/overload-saved.html" > /dev/null
run_page run scenarios/swarm-faults.toml --seed 17 --html "$out/swarm.html" > /dev/null
run_page run tests/it/fixtures/small.toml "$out/overload-broken.toml" --seed 42 --html "$out/sweep.html" > /dev/null
{
  sed 's/^settle_ms_max = 20000$/settle_ms_max = 2000/' tests/it/fixtures/small.toml
  printf '\n[coordinator.handshake]\nmode = "reject"\n'
} > "$out/violations.toml"
code=$(run_page run "$out/violations.toml" --html "$out/violations.html")
[ "$code" -eq 1 ] || { echo "html-check: the rejecting run passed"; exit 1; }

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --disable-extensions
  --mute-audio --force-device-scale-factor=1 --user-data-dir="$profile")

# attr NAME FILE: the value of body's data-NAME in a dumped DOM.
attr() { grep -o "data-$1=\"[0-9]*\"" "$2" | head -1 | grep -o '[0-9]*' || true; }

# check PAGE LANES_MIN [VIOLATIONS_MIN]: dumps the DOM with the console on
# stderr, takes a screenshot, and checks both: at least LANES_MIN lanes, and
# every violation of the run (at least VIOLATIONS_MIN) drawn as a marker and
# listed.
check() {
  local page=$1 lanes_min=$2 violations_min=${3:-0} name url t0 wall_ms
  name=$(basename "$page" .html)
  url="file://$(realpath "$page")"
  t0=$(date +%s%N)
  "$chrome" "${flags[@]}" --enable-logging=stderr --v=0 --dump-dom "$url" \
    > "$out/$name.dom.html" 2> "$out/$name.console.log"
  wall_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  "$chrome" "${flags[@]}" --window-size=1400,1500 --screenshot="$out/$name.png" "$url" 2> /dev/null
  local failed=0
  if grep -E 'CONSOLE' "$out/$name.console.log" | grep -Eiq 'error|uncaught|exception'; then
    echo "html-check: $name: the console logged an error:"
    grep -E 'CONSOLE' "$out/$name.console.log" | head -5
    failed=1
  fi
  [ -s "$out/$name.png" ] || { echo "html-check: $name: no screenshot"; failed=1; }
  if grep -q '<pre id="selfcheck">' "$out/$name.dom.html"; then
    echo "html-check: $name: the table self-check ran without #selfcheck in the URL"
    failed=1
  fi
  if [ "$lanes_min" -gt 0 ]; then
    local lanes errors render_ms violations drawn listed
    lanes=$(attr lanes-drawn "$out/$name.dom.html")
    violations=$(attr violations "$out/$name.dom.html")
    drawn=$(attr violations-drawn "$out/$name.dom.html")
    listed=$(attr violations-listed "$out/$name.dom.html")
    if [ -z "$violations" ] || [ "$violations" -lt "$violations_min" ]; then
      echo "html-check: $name: the page holds ${violations:-no} violations, want >= $violations_min"
      failed=1
    fi
    if [ "${drawn:-x}" != "${violations:-y}" ] || [ "${listed:-x}" != "${violations:-y}" ]; then
      echo "html-check: $name: ${drawn:-no} violation markers drawn and ${listed:-no} listed, want ${violations:-?} of each"
      failed=1
    fi
    errors=$(attr errors "$out/$name.dom.html")
    render_ms=$(attr render-ms "$out/$name.dom.html")
    if [ -z "$lanes" ] || [ "$lanes" -lt "$lanes_min" ]; then
      echo "html-check: $name: the timeline drew ${lanes:-no} lanes, want >= $lanes_min"
      failed=1
    fi
    [ "${errors:-1}" -eq 0 ] || { echo "html-check: $name: the page caught ${errors:-?} error(s)"; failed=1; }
    if [ -z "$render_ms" ] || [ "$render_ms" -gt "$render_ms_max" ]; then
      echo "html-check: $name: drawing took ${render_ms:-?} ms, want <= $render_ms_max"
      failed=1
    fi
    printf 'html-check: %-16s %s lanes, %s markers (%s violations drawn), %s job rows, drawn in %s ms (browser start to DOM %s ms), %s KiB\n' \
      "$name" "$lanes" "$(attr markers "$out/$name.dom.html")" "$drawn" "$(attr job-rows "$out/$name.dom.html")" \
      "$render_ms" "$wall_ms" "$(( $(stat -c %s "$page") / 1024 ))"
  else
    grep -q '<table>' "$out/$name.dom.html" || { echo "html-check: $name: no table"; failed=1; }
    echo "html-check: $name opened (browser start to DOM $wall_ms ms)"
  fi
  return "$failed"
}

# table PAGE: opens PAGE#selfcheck and prints the self-check's line; fails
# unless it begins "ok".
table() {
  local page=$1 name line
  name=$(basename "$page" .html)
  "$chrome" "${flags[@]}" --dump-dom "file://$(realpath "$page")#selfcheck" > "$out/$name.selfcheck.html" 2> /dev/null
  line=$(grep -o '<pre id="selfcheck">[^<]*' "$out/$name.selfcheck.html" | head -1 |
    sed -e 's/^<pre id="selfcheck">//' -e 's/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&amp;/\&/g' || true)
  printf 'html-check: %-16s table: %s\n' "$name" "${line:-FAIL: no self-check result in the page}"
  [ "${line:0:3}" = "ok " ]
}

# Five level lanes, three span rows and three marker rows.
lanes=11
status=0
check "$out/overload-broken.html" "$lanes" || status=1
check "$out/overload-saved.html" "$lanes" || status=1
check "$out/swarm.html" "$lanes" || status=1
check "$out/sweep.html" 0 || status=1
check "$out/violations.html" "$lanes" 5 || status=1
table "$out/overload-broken.html" || status=1
table "$out/swarm.html" || status=1
# The table check must catch a broken sort, filter and row highlight.
# plant NAME SED_EXPR: a copy of the overload page edited by SED_EXPR.
plant() {
  local name=$1
  sed "$2" "$out/overload-broken.html" > "$out/$name.html"
  cmp -s "$out/overload-broken.html" "$out/$name.html" && { echo "html-check: $name: nothing planted"; return 1; }
  if table "$out/$name.html" > "$out/$name.txt"; then
    echo "html-check: a page with a $name passed the table check"
    return 1
  fi
  echo "html-check: planted $name caught: $(sed 's/^.*table: //' "$out/$name.txt")"
}
plant broken-sort 's|filtered\.sort(|[].sort(|' || status=1
plant broken-filter 's|if (outcome && r\[col\.outcome\] !== outcome) return false;||' || status=1
plant broken-highlight 's|ctx\.fillRect(x0, AXIS_H, Math\.max(3, x1 - x0), height - AXIS_H);||' || status=1
# The check must catch a page that draws no violation marker.
sed 's|violationsDrawn += 1;||' "$out/violations.html" > "$out/planted-no-markers.html"
if check "$out/planted-no-markers.html" "$lanes" 5 > "$out/planted-no-markers.txt"; then
  echo "html-check: a page that draws no violation marker passed the check"
  status=1
fi
# The check must catch a broken page: a copy that throws after drawing.
sed 's|<footer|<script>throw new Error("planted")</script><footer|' "$out/swarm.html" > "$out/planted-error.html"
if check "$out/planted-error.html" "$lanes" > "$out/planted-error.txt"; then
  echo "html-check: a page that throws passed the check"
  status=1
fi
[ "$status" -eq 0 ] && echo "html-check: ok; screenshots in $out/*.png"
exit "$status"
