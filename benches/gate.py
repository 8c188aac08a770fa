#!/usr/bin/env python3
"""Bench regression gate (standard library only; see benches/README.md).

What it gates:

1. Ratios measured side by side in one short criterion pass: for each
   comparison and chunk size, throughput of the agent's side divided by the
   throughput of its reference in the same group (= reference time / agent
   time, criterion's median point estimate). A ratio fails when it is worse
   than its baseline by more than its tolerance: the one `--update` derived
   from the run-to-run noise it measured, but never less than
   GATE_TOLERANCE_FLOOR (another machine, another hour) or the ratio's
   NOISE_FLOOR. A failing ratio is re-measured up to CONFIRM_PASSES_MAX
   times and judged on the best pass, so a noisy burst or a low mode on a
   shared machine cannot fail CI while a real regression fails every time.
2. The outbound-memory figures of `executor_pipeline`'s `outbound_memory`:
   deterministic byte counts, gated exactly, plus the bound itself.
2b. The session writer's batching (`wss_loopback`'s batching.json): frames
   per socket write, counted, not timed, so the machine's load does not move
   it; a figure below its baseline by more than its tolerance (at most
   TOLERANCE_CAP = 35 %) fails, so a writer batching half as well fails.
2c. The scale curve (`sim_scale`'s scale.json: steady-state at 256 slots and
   5–1000 jobs/s): bytes per trace event held at the peak, counted by a
   global allocator, gated exactly; the judging share (CPU time after the
   simulation ÷ the whole run's), gated as a ratio: above its baseline by
   more than SCALE_SHARE_TOLERANCE fails, so superlinear judging fails.
3. The scenario library's deterministic figures (`simctl run --json` of every
   `scenarios/*.toml` at its own seed: throughput, latency percentiles,
   outcome counts), gated exactly. Their speed (simulated seconds per wall
   second) is printed, not gated.

Usage:
  python3 benches/gate.py                 # gate against benches/baseline.json
  python3 benches/gate.py --update        # re-measure (5 passes) and rewrite it
  python3 benches/gate.py --update-scenarios   # re-record the scenario figures only
  python3 benches/gate.py --update-batching    # re-measure the writer's batching only
  python3 benches/gate.py --update-scale       # re-measure only the scale curve
  BENCH_SLOWDOWN=copy python3 benches/gate.py   # must fail: see README
  python3 benches/gate.py --no-scenarios  # bench ratios and memory only
  python3 benches/gate.py --scale-only    # the scale curve alone
  python3 benches/gate.py --self-test     # unit tests of the comparison logic

Exit status: 0 pass, 1 regression, 2 could not measure (build or bench
failure, missing result).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import unittest
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / "benches" / "baseline.json"
BENCH_TARGETS = ["frame_encode", "executor_pipeline", "wss_loopback"]
# Not a criterion pass: run once per gate (benches/sim_scale.rs).
SCALE_TARGET = "sim_scale"
# The judging share may grow by 35 % before it fails: measured passes move
# it by up to ≈ 12 % at 20 jobs/s (≈ 60 ms of judging) and ≈ 5 % at 320;
# judging that turned quadratic moves it by 2–3× at 320 jobs/s
# (benches/README.md, "Scale").
SCALE_SHARE_TOLERANCE = 0.35
# The target for the share; printed, not gated.
SCALE_SHARE_TARGET = 0.10
SIZES = [16, 256, 4096, 65536]

# The short pass. Criterion's defaults (3 s warm-up, 5 s measurement) would
# take ~4 min for the 28 benchmarks; 1 s + 2 s keeps a pass near 2 min on 2
# cores while `--update`'s noise measurement shows the ratio spread these
# settings leave (benches/README.md, "Noise"). Baseline and gate must use the
# same settings: per-batch fixed costs weigh differently at other lengths.
CRITERION_ARGS = ["--warm-up-time", "1", "--measurement-time", "2", "--noplot"]

# The gate times with the process's CPU time (benches/common: BENCH_CLOCK),
# not wall time: a neighbour's build that steals time slices from one side of
# a ratio does not move it. Wall-time ratios on this shared machine swung
# 0.4–1.8 for the same code (benches/README.md, "Noise").
BENCH_ENV = {"BENCH_CLOCK": "cpu"}

# Tolerance rule (see `tolerance_from_passes`): K times the worst deviation
# from the median seen over the `--update` passes, within [FLOOR, CAP].
TOLERANCE_K = 2.0
TOLERANCE_FLOOR = 0.05
TOLERANCE_CAP = 0.35
UPDATE_PASSES = 5
# Least tolerance the gate applies to any ratio, whatever the baseline file
# says. `--update` measures the noise of one window on one machine (5 % when
# five passes agree), and CI runs on another machine at another hour.
# 8 % keeps the deliberate slowdown failing (one extra copy per chunk costs
# 10–17 % at 16 B: README, "Deliberate slowdown"); every regression of the
# kind that matters here (2–9×) is far outside it.
GATE_TOLERANCE_FLOOR = 0.08
# Ratios whose noise one `--update` window under-measured, with the least
# tolerance each keeps: the widest an earlier `--update` gave it, or wider
# where a later run showed more. Stop 20's CI failed on ratios (2026-12-06)
# after the 06:52 baseline had shrunk these from the 05:28 baseline's
# 15/21/13/35/19 % to 5–10 %, because five passes of one quiet window
# happened to agree. The next morning, on the same code and machine, a first
# pass read encode/base64/256 −17 % and encode/seed/256 −18 % (two modes
# ≈ 20 % apart: which one a run lands in is decided outside the code).
NOISE_FLOOR = {
    "encode/base64/256": 0.25,
    "encode/base64/65536": 0.21,
    "encode/seed/16": 0.13,
    "encode/seed/256": 0.35,
    "encode/seed/65536": 0.19,
}
# How many confirmation passes a failing ratio gets (each re-runs only the
# ratios still failing; the verdict is on the best pass). A low mode rarely
# hits three times in a row; a real regression always does. Measured the
# same morning: pipeline/bare/4096 read −33 % in a first pass, −2 % in its
# confirmation.
CONFIRM_PASSES_MAX = 2


@dataclass(frozen=True)
class Comparison:
    """agent/reference throughput ratios of one criterion group."""

    name: str
    group: str
    agent: str
    reference: str
    # Targets of the issue (minimum ratio), per chunk size. Informational in
    # the table: the gate fails on regressions against the baseline, and a
    # missed target is reported, never lowered.
    targets: dict[int, float] = field(default_factory=dict)
    # Least tolerance of this comparison's ratio per chunk size, whatever the
    # passes of one `--update` showed: for a ratio that moves with the
    # machine's load, not with the code, so a baseline taken on a quiet
    # machine does not fail a busy one (see WRITER_LOAD_FLOOR).
    load_floor: dict[int, float] = field(default_factory=dict)


# writer/flush measured on the same code and machine: 4.4 (16 B) and 3.9
# (256 B) at load average ≈ 7 on 2 cores (session 1's baseline), 15.4 and
# 15.0 on a quiet machine (benches/README.md, "Noise"). The reference sends
# one socket write per frame, and what each write costs in CPU time depends
# on whether the reader thread is parked or busy when it lands. The floor
# lets the ratio fall to a quarter of a quiet baseline; a writer that flushed
# every frame again (ratio ≈ 1) still fails. At 64 KiB a frame fills a write
# by itself and the ratio is bimodal for another reason: glibc's heap
# trimming hands back and re-faults the pages of queued 87 KB frames on some
# runs and not others (0.47–0.96 over the 5 passes of 2026-12-06 on the
# writer's own thread time; 0.85–1.3 with MALLOC_TRIM_THRESHOLD_ raised), so
# it takes the same floor: the gate there catches a collapse, not a drift.
WRITER_LOAD_FLOOR = 0.75

COMPARISONS = [
    Comparison("encode/base64", "frame_encode", "agent", "base64_only", {256: 0.75, 4096: 0.75, 65536: 0.75}),
    Comparison("encode/seed", "frame_encode", "agent", "seed_json", {16: 5.0, 256: 5.0}),
    Comparison("pipeline/bare", "executor_pipeline", "agent", "bare"),
    Comparison("writer/flush", "wss_loopback", "writer", "flush_per_frame", {256: 2.0, 65536: 0.8},
               load_floor={size: WRITER_LOAD_FLOOR for size in SIZES}),
]


class GateError(Exception):
    """Something could not be measured (exit 2)."""


# ---------------------------------------------------------------- measuring


def target_dir() -> Path:
    out = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1"],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout
    return Path(json.loads(out)["target_directory"])


def criterion_home() -> Path:
    # Our own output tree, wiped before every pass: a result can only be read
    # if this pass wrote it, and developers' `target/criterion` is untouched.
    return target_dir() / "bench-gate" / "criterion"


def bench_filter(keys: list[str] | None) -> list[str]:
    """Criterion filter (a regex on `group/function/size`) for the benches
    behind `keys` (`comparison/size`); all gated benches when None."""
    if keys is None:
        parts = [f"{c.group}/({c.agent}|{c.reference})/[0-9]+" for c in COMPARISONS]
    elif not keys:
        return ["^$"]
    else:
        parts = []
        for key in keys:
            name, size = key.rsplit("/", 1)
            c = next(c for c in COMPARISONS if c.name == name)
            parts.append(f"{c.group}/({c.agent}|{c.reference})/{size}")
    return ["^(" + "|".join(sorted(set(parts))) + ")$"]


def build_benches() -> dict[str, str]:
    """Builds the bench binaries once; returns {bench target: executable}.

    Every pass of one gate or `--update` invocation then runs the very same
    binaries: a source edit landing mid-way cannot mix two versions of the
    code into one baseline or one verdict.
    """
    cmd = ["cargo", "bench", "--locked", "--no-run", "--message-format=json-render-diagnostics"]
    for t in [*BENCH_TARGETS, SCALE_TARGET]:
        cmd += ["--bench", t]
    print(f"gate: building: {' '.join(cmd)}", flush=True)
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise GateError(f"building the benches failed (exit {proc.returncode})")
    exes = {}
    for line in proc.stdout.splitlines():
        msg = json.loads(line)
        target = msg.get("target", {})
        if msg.get("reason") == "compiler-artifact" and "bench" in target.get("kind", []) and msg.get("executable"):
            exes[target["name"]] = msg["executable"]
    missing = {*BENCH_TARGETS, SCALE_TARGET} - set(exes)
    if missing:
        raise GateError(f"no executable for bench targets {sorted(missing)}")
    return exes


def run_pass(exes: dict[str, str], label: str, keys: list[str] | None = None) -> tuple[dict, dict, dict]:
    """One criterion pass. Returns ({(group, fn, size): median ns}, memory
    figures, {`side/size`: frames per socket write}). `keys == []` runs no
    timing at all, only the figures the bench targets always write."""
    home = criterion_home()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    log = home.parent / f"{label}.log"
    env = dict(os.environ, CRITERION_HOME=str(home), **BENCH_ENV)
    started = time.monotonic()
    print(f"gate: {label}: criterion {' '.join(CRITERION_ARGS)} {bench_filter(keys)[0]}", flush=True)
    with open(log, "w") as out:
        for target in BENCH_TARGETS:
            # What `cargo bench` would run: the binary, from the package
            # root, with `--bench` first.
            cmd = [exes[target], "--bench", *CRITERION_ARGS, *bench_filter(keys)]
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            assert proc.stdout is not None
            name = None
            for line in proc.stdout:
                out.write(line)
                # One progress line per benchmark: criterion prints the id,
                # then `time: [low median high]` on the same line or the next.
                m = re.match(r"^(\S+/\S+/\d+)\s*(time:.*)?$", line.rstrip())
                if m:
                    name = m.group(1)
                if name and "time:" in line:
                    print(f"  {name:<40} {line.split('[', 1)[1].rstrip().rstrip(']')}", flush=True)
                    name = None
            status = proc.wait()
            if status != 0:
                raise GateError(f"{label}: bench {target} exited {status}; log: {log}")
    print(f"gate: {label}: {time.monotonic() - started:.0f} s (log: {log})", flush=True)
    return read_estimates(home), read_memory(home), read_batching(home)


def run_scale(exes: dict[str, str], label: str) -> dict[str, dict]:
    """One run of the scale curve. Returns {`rate`: point} (see sim_scale.rs)."""
    home = criterion_home().parent / "scale"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    log = home.parent / f"{label}.log"
    env = dict(os.environ, CRITERION_HOME=str(home))
    env.pop("SIM_SCALE_RATES", None)
    env.pop("SIM_SCALE_DURATION_S", None)
    started = time.monotonic()
    print(f"gate: {label}: scale curve", flush=True)
    with open(log, "w") as out:
        status = subprocess.run([exes[SCALE_TARGET], "--bench"], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT).returncode
    if status != 0:
        raise GateError(f"{label}: bench {SCALE_TARGET} exited {status}; log: {log}")
    path = home / "sim_scale" / "scale.json"
    if not path.exists():
        raise GateError(f"no scale figures at {path}")
    print(f"gate: {label}: {time.monotonic() - started:.0f} s (log: {log})", flush=True)
    return {str(p["rate"]): p for p in json.loads(path.read_text())["points"]}


def check_scale(now: dict[str, dict], base: dict | None) -> tuple[list[tuple[str, ...]], bool]:
    """Rows (figure, baseline, tol, now, change, verdict) and whether any
    failed: bytes per event exactly, the judging share within its tolerance."""
    rows, failed = [], False
    base = base or {}
    for rate in sorted(set(base) | set(now), key=int):
        b, n = base.get(rate), now.get(rate)
        if n is None:
            rows.append((f"scale/{rate}/*", "-", "-", "missing", "", "FAILED"))
            failed = True
            continue
        if b is None:
            rows.append((f"scale/{rate}/bytes_per_event", "-", "exact", str(n["bytes_per_event"]), "", "new"))
            rows.append((f"scale/{rate}/judge_share", "-", "-", f"{n['judge_share']:.3f}", "", "new"))
            continue
        same = n["bytes_per_event"] == b["bytes_per_event"]
        failed |= not same
        rows.append((f"scale/{rate}/bytes_per_event", str(b["bytes_per_event"]), "exact", str(n["bytes_per_event"]),
                     f"{(n['bytes_per_event'] / b['bytes_per_event'] - 1) * 100:+.1f}%", "ok" if same else "CHANGED"))
        ceiling = b["judge_share"] * (1 + SCALE_SHARE_TOLERANCE)
        grew = n["judge_share"] > ceiling
        failed |= grew
        target = "met" if n["judge_share"] <= SCALE_SHARE_TARGET else "target MISSED"
        rows.append((f"scale/{rate}/judge_share", f"{b['judge_share']:.3f}", f"+{SCALE_SHARE_TOLERANCE * 100:.0f}%",
                     f"{n['judge_share']:.3f}", f"{(n['judge_share'] / b['judge_share'] - 1) * 100:+.1f}%",
                     ("REGRESSED" if grew else "ok") + f" (≤{SCALE_SHARE_TARGET:.0%} {target})"))
    return rows, failed


def better_scale(a: dict[str, dict], b: dict[str, dict]) -> dict[str, dict]:
    """Point by point, the pass with the smaller judging share (a burst of
    noise rarely hits twice, superlinear judging always does)."""
    return {k: min(v, b.get(k, v), key=lambda p: p["judge_share"]) for k, v in a.items()}


def read_estimates(home: Path) -> dict:
    times = {}
    for est in home.glob("*/*/*/new/estimates.json"):
        size_dir = est.parent.parent
        group, function, size = size_dir.parent.parent.name, size_dir.parent.name, size_dir.name
        if not size.isdigit():
            continue
        times[(group, function, int(size))] = json.loads(est.read_text())["median"]["point_estimate"]
    return times


def read_memory(home: Path) -> dict:
    path = home / "outbound_memory" / "figures.json"
    if not path.exists():
        raise GateError(f"no memory figures at {path}")
    return json.loads(path.read_text())


def read_batching(home: Path) -> dict[str, float]:
    """`side/size` → frames per socket write, from wss_loopback's figures."""
    path = home / "wss_loopback" / "batching.json"
    if not path.exists():
        raise GateError(f"no batching figures at {path}")
    rows = json.loads(path.read_text())["rows"]
    return {f"{r['side']}/{r['chunk_bytes']}": r["frames_per_write"] for r in rows}


# The batching figures the gate fails on: the session writer's. The
# reference's (flush per frame: one write per frame, or fewer frames than
# writes at 64 KiB) are printed beside them.
BATCHING_GATED_SIDE = "writer"
# Least tolerance of a batching figure. Counted figures barely move (0–3 %
# over passes at load average > 4; benches/README.md, "Batching"), so
# `tolerance_from_passes` alone would give the 5 % floor, near that noise;
# 20 % never flakes on it, and a writer batching half as well (−50 %), or a
# third worse (−33 %), still fails.
BATCHING_TOLERANCE_FLOOR = 0.20


def check_batching(now: dict[str, float], base: dict | None) -> tuple[list[tuple[str, ...]], bool]:
    """Rows (figure, baseline, tol, now, change, verdict) and whether any regressed."""
    rows, regressed = [], False
    base = base or {}
    for key in sorted(now, key=lambda k: (k.split("/")[0] != BATCHING_GATED_SIDE, int(k.rsplit("/", 1)[1]))):
        gated = key.startswith(BATCHING_GATED_SIDE + "/")
        b = base.get(key)
        if not gated:
            rows.append((f"batching/{key}", "-", "-", f"{now[key]:.2f}", "", "reference"))
        elif b is None:
            rows.append((f"batching/{key}", "-", "-", f"{now[key]:.2f}", "", "new"))
        else:
            v = verdict(b["baseline"], b["tolerance"], now[key])
            regressed |= v == "REGRESSED"
            change = f"{(now[key] / b['baseline'] - 1) * 100:+.1f}%"
            rows.append((f"batching/{key}", f"{b['baseline']:.2f}", f"±{b['tolerance'] * 100:.0f}%",
                         f"{now[key]:.2f}", change, v))
    missing = sorted(set(base) - set(now))
    for key in missing:
        rows.append((f"batching/{key}", f"{base[key]['baseline']:.2f}", "", "missing", "", "REGRESSED"))
    return rows, regressed or bool(missing)


def batching_baseline(passes: list[dict[str, float]]) -> tuple[dict, list[tuple[str, ...]]]:
    """Baseline entries of the gated batching figures over several passes."""
    out, rows = {}, []
    for key in sorted(passes[0]):
        if not key.startswith(BATCHING_GATED_SIDE + "/"):
            continue
        values = [p[key] for p in passes]
        base, tol, worst = tolerance_from_passes(values)
        tol = max(tol, BATCHING_TOLERANCE_FLOOR)
        out[key] = {"baseline": round(base, 4), "tolerance": round(tol, 4), "worst_deviation": round(worst, 4),
                    "passes": [round(v, 4) for v in values]}
        rows.append((f"batching/{key}", f"{base:.2f}", f"{worst * 100:.1f}%", f"±{tol * 100:.0f}%",
                     " ".join(f"{v:.2f}" for v in values)))
    return out, rows


def ratios_of(times: dict) -> dict[str, float]:
    """`comparison/size` → agent throughput ÷ reference throughput."""
    out = {}
    for c in COMPARISONS:
        for size in SIZES:
            agent = times.get((c.group, c.agent, size))
            ref = times.get((c.group, c.reference, size))
            if agent and ref:
                out[f"{c.name}/{size}"] = ref / agent
    return out


def target_of(key: str) -> float | None:
    name, size = key.rsplit("/", 1)
    c = next(c for c in COMPARISONS if c.name == name)
    return c.targets.get(int(size))


# ---------------------------------------------------------------- judging


def gate_tolerance(key: str, stored: float) -> float:
    """The tolerance the gate applies to ratio `key`: the baseline's, at
    least the cross-machine floor, the ratio's noise floor and its
    comparison's load floor."""
    return max(stored, GATE_TOLERANCE_FLOOR, NOISE_FLOOR.get(key, 0.0), load_floor_of(key))


def load_floor_of(key: str) -> float:
    """The load floor of a ratio key (`name/size`): its comparison's, at its size."""
    name, size = key.rsplit("/", 1)
    return next((c.load_floor.get(int(size), 0.0) for c in COMPARISONS if c.name == name), 0.0)


def tolerance_from_passes(values: list[float]) -> tuple[float, float, float]:
    """(baseline, tolerance, worst deviation) of one ratio over several passes.

    Deviations are taken in log space (a ratio halving and doubling are the
    same size of change); the baseline is the median, the tolerance K times
    the worst relative deviation from it, kept within [FLOOR, CAP]: below the
    floor, criterion's own noise would flake the gate; above the cap, a gate
    this loose is reported as such rather than widened further.
    """
    base = statistics.median(values)
    worst = max(abs(math.log(v / base)) for v in values)
    worst_rel = 1 - math.exp(-worst)
    tol = min(TOLERANCE_CAP, max(TOLERANCE_FLOOR, TOLERANCE_K * worst_rel))
    return base, tol, worst_rel


def verdict(base: float, tol: float, now: float) -> str:
    if now < base * (1 - tol):
        return "REGRESSED"
    if now > base / (1 - tol):
        return "improved"
    return "ok"


def check_memory(now: dict, base: dict | None) -> list[tuple[str, str, str, str]]:
    """Rows (what, baseline, now, verdict) for the memory figures."""
    rows = []
    budget = now["outbound_queue_bytes_max"]
    by_size: dict[int, list[dict]] = {}
    for r in now["rows"]:
        by_size.setdefault(r["chunk_bytes"], []).append(r)
    base_rows = {(r["chunk_bytes"], r["jobs"]): r for r in (base or {}).get("rows", [])}
    for size, rs in sorted(by_size.items()):
        hw = [r["board_high_water_bytes"] for r in rs]
        frame = rs[0]["frame_bytes"]
        bound_ok = max(hw) <= budget or frame > budget
        flat = len(set(hw)) == 1
        rows.append((f"memory/{size}: board high water ≤ budget {budget}", "-", f"{max(hw)}", "ok" if bound_ok else "FAILED"))
        rows.append((f"memory/{size}: flat over jobs {[r['jobs'] for r in rs]}", "-", "/".join(map(str, hw)), "ok" if flat else "FAILED"))
        for r in rs:
            b = base_rows.get((size, r["jobs"]))
            what = f"memory/{size}/jobs={r['jobs']}: board HW, jobs waiting"
            now_s = f"{r['board_high_water_bytes']}, {r['jobs_waiting_for_budget']}"
            if b is None:
                rows.append((what, "-", now_s, "new"))
            else:
                base_s = f"{b['board_high_water_bytes']}, {b.get('jobs_waiting_for_budget')}"
                rows.append((what, base_s, now_s, "ok" if b == r else "CHANGED"))
    if base is not None and base.get("outbound_queue_bytes_max") != budget:
        rows.append(("memory: outbound_queue_bytes_max", str(base.get("outbound_queue_bytes_max")), str(budget), "CHANGED"))
    return rows


def flatten(value, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a JSON document as `a.b.c` → number."""
    out = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}{i}."))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out[prefix.rstrip(".")] = value
    return out


# Keys of `simctl run --json` that measure the host, not the simulation:
# never gated exactly (reported as the simulation's speed instead).
WALL_KEY = re.compile(r"(^|\.)wall[^.]*($|\.)")

# The scenario library's runs: every scenario file at its own fixed seed.
SCENARIO_GLOB = "scenarios/*.toml"


def simctl_exe() -> Path:
    """The release simctl (CI builds it in an earlier step: then a no-op)."""
    cmd = ["cargo", "build", "--release", "--locked", "--bin", "simctl"]
    if subprocess.run(cmd, cwd=REPO).returncode != 0:
        raise GateError("building simctl failed")
    return target_dir() / "release" / "simctl"


def scenario_runs() -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Runs the scenario library once with `simctl run --json`.

    Returns ({"<scenario>@<seed>": {metric: value}}, {"<scenario>@<seed>":
    simulated seconds per wall second}). The figures are the numeric leaves of
    each run's `metrics` (throughput, latency percentiles, outcome counts):
    deterministic for a given seed, so gated exactly.
    """
    files = sorted(str(p.relative_to(REPO)) for p in REPO.glob(SCENARIO_GLOB))
    if not files:
        raise GateError(f"no scenario matches {SCENARIO_GLOB}")
    # One worker: a run's trace depends on the process's history when a
    # scenario crashes a host (tokio's global task ids order the teardown),
    # so recording and checking must build their simulations in one order.
    cmd = [str(simctl_exe()), "run", "--json", "--jobs", "1", *files]
    print(f"gate: scenarios: {' '.join(cmd)}", flush=True)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    # A failing run still reports (exit 1); the scenario sweep step of CI
    # judges pass/fail, this step only compares figures.
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError as err:
        raise GateError(f"simctl run --json (exit {proc.returncode}) printed no JSON: {err}; {proc.stderr[-2000:]}")
    figures, speeds = {}, {}
    for run in doc["runs"]:
        key = f"{run['scenario']}@{run['seed']}"
        figures[key] = {k: v for k, v in flatten(run["metrics"]).items() if not WALL_KEY.search(k)}
        if run.get("wall_ms"):
            speeds[key] = run["sim_ms"] / run["wall_ms"]
    return figures, speeds


def check_scenarios(base: dict | None, now: dict[str, dict[str, float]], speeds: dict[str, float],
                    not_gated: dict[str, str] | None = None):
    """Rows (figure, baseline, now, verdict); exact comparison."""
    rows = []
    base = base or {}
    not_gated = not_gated or {}
    for key in sorted(set(base) | set(now) | set(not_gated)):
        b, n = base.get(key), now.get(key)
        speed = f" ({speeds[key]:.0f} sim s/wall s)" if key in speeds else ""
        if key in not_gated:
            rows.append((f"scenario {key}{speed}", "-", "-", f"NOT GATED: {not_gated[key]}"))
            continue
        if b is None:
            rows.append((f"scenario {key}: {len(n)} figures{speed}", "-", "recorded now", "new"))
            continue
        if n is None:
            rows.append((f"scenario {key}", "present", "missing", "CHANGED"))
            continue
        changed = [k for k in sorted(set(b) | set(n)) if b.get(k) != n.get(k)]
        for k in changed[:20]:
            rows.append((f"scenario {key}: {k}", str(b.get(k)), str(n.get(k)), "CHANGED"))
        if len(changed) > 20:
            rows.append((f"scenario {key}: {len(changed) - 20} more", "", "", "CHANGED"))
        if not changed:
            rows.append((f"scenario {key}: {len(n)} figures{speed}", "=", "=", "ok"))
    return rows


# ---------------------------------------------------------------- reporting


def fmt_rate(size: int, ns: float | None) -> str:
    if not ns:
        return "-"
    chunks = 1e9 / ns
    return f"{chunks * size / 1e6:9.1f} MB/s {chunks / 1e6:7.3f} Mchunk/s"


def print_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def failing_rows(judged: list[tuple[str, ...]], exact: list[tuple[str, ...]]) -> list[str]:
    """One line per figure that failed: judged rows end in their verdict,
    exact rows carry it in their fourth column."""
    out = [" ".join(str(c) for c in r) for r in judged if str(r[-1]).startswith(("REGRESSED", "FAILED", "CHANGED"))]
    out += [" ".join(str(c) for c in r) for r in exact if r[3] in ("FAILED", "CHANGED")]
    return out


def print_figures(times: dict) -> None:
    print("\nThroughput in this pass (chunk bytes, decimal MB; chunks/s = bytes/s ÷ chunk size):")
    benches = []
    for c in COMPARISONS:
        for fn in (c.agent, c.reference):
            if (c.group, fn) not in benches:
                benches.append((c.group, fn))
    rows = [(f"{g}/{fn}/{size}", fmt_rate(size, times.get((g, fn, size)))) for g, fn in benches for size in SIZES]
    print_table(rows, ("bench", "throughput"))


def machine_note() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"nproc": os.cpu_count(), "loadavg_1_5_15": load}


# ---------------------------------------------------------------- commands


def gate_scale_only(confirm: bool) -> int:
    """Only the scale curve against the baseline (≈ 1 min after the build)."""
    baseline = json.loads(BASELINE.read_text())
    if "scale" not in baseline:
        raise GateError("baseline has no scale curve: run `python3 benches/gate.py --update-scale`")
    exes = build_benches()
    scale = run_scale(exes, "scale-1")
    rows, failed = check_scale(scale, baseline["scale"]["points"])
    if failed and confirm:
        scale = better_scale(scale, run_scale(exes, "scale-2-confirm"))
        rows, failed = check_scale(scale, baseline["scale"]["points"])
    print("\nScale curve (steady-state at 256 slots; bytes per event exact, judging share as a ratio):")
    print_table(rows, ("figure", "baseline", "tol", "now", "change", "verdict"))
    print("\ngate: FAIL (scale)" if failed else "\ngate: PASS (scale only)")
    return 1 if failed else 0


def gate(confirm: bool, skip_scenarios: bool) -> int:
    if not BASELINE.exists():
        raise GateError(f"{BASELINE} missing: run `python3 benches/gate.py --update`")
    baseline = json.loads(BASELINE.read_text())
    if baseline.get("criterion_args") != CRITERION_ARGS or baseline.get("bench_env") != BENCH_ENV:
        raise GateError("baseline was measured with other criterion settings or clock: run --update")
    exes = build_benches()
    print(f"gate: machine {machine_note()}")
    if "batching" not in baseline:
        raise GateError("baseline has no batching figures: run `python3 benches/gate.py --update-batching`")
    times, memory, batching = run_pass(exes, "pass-1")
    now = ratios_of(times)
    base_ratios = baseline["ratios"]
    missing = sorted(set(base_ratios) - set(now))
    if missing:
        raise GateError(f"no measurement for {missing}")
    def failing_of(ratios: dict[str, float]) -> list[str]:
        return [k for k, b in base_ratios.items()
                if k in ratios and verdict(b["baseline"], gate_tolerance(k, b["tolerance"]), ratios[k]) == "REGRESSED"]

    failing = failing_of(now)
    # The best value of each ratio over the confirmation passes.
    second: dict[str, float] = {}
    batch_rows, batch_regressed = check_batching(batching, baseline["batching"])
    for attempt in range(1, CONFIRM_PASSES_MAX + 1 if confirm else 1):
        if not (failing or batch_regressed):
            break
        print(f"gate: {len(failing)} ratio(s) beyond tolerance, batching {'regressed' if batch_regressed else 'ok'}; "
              f"confirmation {attempt} of {CONFIRM_PASSES_MAX}: {failing}")
        times2, _, batching2 = run_pass(exes, f"pass-{attempt + 1}-confirm", failing)
        for k, v in ratios_of(times2).items():
            if k in failing:
                second[k] = max(v, second.get(k, v))
        failing = failing_of({k: max(now[k], second.get(k, now[k])) for k in failing})
        if batch_regressed:
            # Judged on the better pass, figure by figure, as the ratios are.
            batching = {k: max(v, batching2.get(k, v)) for k, v in batching.items()}
            batch_rows, batch_regressed = check_batching(batching, baseline["batching"])
    rows = []
    regressed = False
    for key in sorted(now, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]))):
        b = base_ratios.get(key)
        target = target_of(key)
        target_s = "-" if target is None else f"≥{target:g} {'met' if now[key] >= target else 'MISSED'}"
        if b is None:
            rows.append((key, target_s, "-", "-", f"{now[key]:.3f}", "", "new"))
            continue
        best = max(now[key], second.get(key, now[key]))
        tol = gate_tolerance(key, b["tolerance"])
        v = verdict(b["baseline"], tol, best)
        regressed |= v == "REGRESSED"
        now_s = f"{now[key]:.3f}" + (f" / {second[key]:.3f}" if key in second else "")
        change = f"{(best / b['baseline'] - 1) * 100:+.1f}%"
        rows.append((key, target_s, f"{b['baseline']:.3f}", f"±{tol * 100:.0f}%", now_s, change, v))
    print("\nRatios (agent throughput ÷ reference throughput, same run):")
    print_table(rows, ("ratio", "target", "baseline", "tol", "now", "change", "verdict"))
    print("\nSession writer batching (frames per socket write, counted; the reference sends one write per frame):")
    print_table(batch_rows, ("figure", "baseline", "tol", "now", "change", "verdict"))
    regressed |= batch_regressed
    if "scale" in baseline:
        scale = run_scale(exes, "scale-1")
        scale_rows, scale_failed = check_scale(scale, baseline["scale"]["points"])
        if scale_failed and confirm:
            print("gate: scale curve beyond tolerance; re-measuring once", flush=True)
            scale = better_scale(scale, run_scale(exes, "scale-2-confirm"))
            scale_rows, scale_failed = check_scale(scale, baseline["scale"]["points"])
        print("\nScale curve (steady-state at 256 slots; bytes per event exact, judging share as a ratio):")
        print_table(scale_rows, ("figure", "baseline", "tol", "now", "change", "verdict"))
        regressed |= scale_failed
    else:
        print("\ngate: baseline has no scale curve: run `python3 benches/gate.py --update-scale`")
    mem_rows = check_memory(memory, baseline.get("memory"))
    if skip_scenarios:
        scen_rows = [("scenarios", "-", "-", "skipped (--no-scenarios)")]
    else:
        scen_rows = check_scenarios(baseline.get("scenarios"), *scenario_runs(), baseline.get("scenarios_not_gated"))
    print("\nDeterministic figures (gated exactly):")
    print_table(mem_rows + scen_rows, ("figure", "baseline", "now", "verdict"))
    print_figures(times)
    exact_failed = any(r[3] in ("FAILED", "CHANGED") for r in mem_rows + scen_rows)
    if regressed or exact_failed:
        # Repeated last, because CI logs are cut in the middle: the lines
        # that failed must survive the cut.
        print("\ngate: what failed:")
        for r in failing_rows(rows + batch_rows + (scale_rows if "scale" in baseline else []), mem_rows + scen_rows):
            print(f"  {r}")
        print("\ngate: FAIL" + (" (ratio, batching or scale regression)" if regressed else "") + (" (deterministic figure changed)" if exact_failed else ""))
        print("If the change is intended: scenario figures → `python3 benches/gate.py --update-scenarios`; ratios or")
        print("memory figures → `python3 benches/gate.py --update`; then commit benches/baseline.json with the change.")
        return 1
    print("\ngate: PASS")
    return 0


def scenario_figures_twice() -> tuple[dict, dict[str, str]]:
    """The library's figures from two back-to-back runs of one binary.

    Returns (figures of the runs that agree, {run: why it is not gated}). A
    run whose figures differ between two runs of the same binary is not
    deterministic: gating it exactly would flake, so it is left out, loudly
    (in baseline.json and in every gate table), and CI's determinism step is
    the place that fails on it.
    """
    first, _ = scenario_runs()
    again, _ = scenario_runs()
    agreed, not_gated = {}, {}
    for key in sorted(set(first) | set(again)):
        a, b = first.get(key), again.get(key)
        if a is not None and a == b:
            agreed[key] = a
            continue
        moved = sorted(k for k in set(a or {}) | set(b or {}) if (a or {}).get(k) != (b or {}).get(k))
        not_gated[key] = "figures differed between two runs of one binary: " + ", ".join(moved[:8])
        print(f"gate: NOT GATED: {key}: {not_gated[key]}")
    return agreed, not_gated


def update_scenarios() -> int:
    """Re-records only the scenario figures (seconds, not minutes): for a
    deliberate change of the agent's or the library's behaviour."""
    if not BASELINE.exists():
        raise GateError(f"{BASELINE} missing: run a full --update first")
    doc = json.loads(BASELINE.read_text())
    doc["scenarios"], doc["scenarios_not_gated"] = scenario_figures_twice()
    doc["scenarios_measured_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    BASELINE.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"gate: re-recorded {len(doc['scenarios'])} scenario runs in {BASELINE}")
    return 0


def update_batching(passes: int) -> int:
    """Re-measures only the writer's batching (no timings: under a minute),
    keeping every other figure of the baseline."""
    if os.environ.get("BENCH_SLOWDOWN"):
        raise GateError("refusing to record a baseline with BENCH_SLOWDOWN set")
    if not BASELINE.exists():
        raise GateError(f"{BASELINE} missing: run a full --update first")
    doc = json.loads(BASELINE.read_text())
    exes = build_benches()
    batchings = [run_pass(exes, f"batching-{i + 1}-of-{passes}", [])[2] for i in range(passes)]
    doc["batching"], rows = batching_baseline(batchings)
    doc["batching_measured_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    BASELINE.write_text(json.dumps(doc, indent=2) + "\n")
    print("\nNew batching baseline (median of passes; tolerance = clamp(K × worst deviation)):")
    print_table(rows, ("figure", "baseline", "worst dev", "tol", "passes"))
    print(f"\ngate: wrote {BASELINE}")
    return 0


def update_scale(passes: int) -> int:
    """Re-measures only the scale curve (`passes` runs, ≈ 15 s each),
    keeping every other figure of the baseline: bytes per event must agree
    in every pass; the share's baseline is its median."""
    if not BASELINE.exists():
        raise GateError(f"{BASELINE} missing: run a full --update first")
    doc = json.loads(BASELINE.read_text())
    exes = build_benches()
    runs = [run_scale(exes, f"scale-{i + 1}-of-{passes}") for i in range(passes)]
    points, rows = {}, []
    for rate in sorted(runs[0], key=int):
        figures = [r[rate] for r in runs]
        if len({f["bytes_per_event"] for f in figures}) != 1:
            raise GateError(f"scale/{rate}: bytes per event differ between passes: they are meant to be exact")
        shares = [f["judge_share"] for f in figures]
        point = dict(figures[0])
        point["judge_share"] = round(statistics.median(shares), 4)
        point["judge_share_passes"] = [round(v, 4) for v in shares]
        points[rate] = point
        rows.append((rate, str(point["events"]), str(point["bytes_per_event"]), f"{point['judge_share']:.3f}",
                     " ".join(f"{v:.3f}" for v in shares)))
    doc["scale"] = {"points": points, "tolerance": SCALE_SHARE_TOLERANCE,
                    "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine_note()}
    BASELINE.write_text(json.dumps(doc, indent=2) + "\n")
    print("\nNew scale baseline:")
    print_table(rows, ("jobs/s", "events", "bytes/event", "share (median)", "passes"))
    print(f"\ngate: wrote {BASELINE}")
    return 0


def update(passes: int, skip_scenarios: bool) -> int:
    if os.environ.get("BENCH_SLOWDOWN"):
        raise GateError("refusing to record a baseline with BENCH_SLOWDOWN set")
    old = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    if skip_scenarios:
        scenarios, not_gated = old.get("scenarios"), old.get("scenarios_not_gated", {})
    else:
        scenarios, not_gated = scenario_figures_twice()
    exes = build_benches()
    note_before = machine_note()
    per_pass: list[dict[str, float]] = []
    memories = []
    batchings = []
    for i in range(passes):
        times, memory, batching = run_pass(exes, f"update-{i + 1}-of-{passes}")
        per_pass.append(ratios_of(times))
        memories.append(memory)
        batchings.append(batching)
    for m in memories[1:]:
        if m != memories[0]:
            raise GateError("memory figures differ between passes: they are meant to be deterministic")
    ratios = {}
    rows = []
    for key in sorted(per_pass[0], key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]))):
        values = [p[key] for p in per_pass]
        base, tol, worst = tolerance_from_passes(values)
        tol = max(tol, load_floor_of(key))
        ratios[key] = {"baseline": round(base, 4), "tolerance": round(tol, 4), "worst_deviation": round(worst, 4),
                       "passes": [round(v, 4) for v in values]}
        rows.append((key, f"{base:.3f}", f"{worst * 100:.1f}%", f"±{tol * 100:.0f}%", " ".join(f"{v:.3f}" for v in values)))
    doc = {
        "about": "Written by `python3 benches/gate.py --update`; see benches/README.md. Do not edit by hand.",
        "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"before": note_before, "after": machine_note()},
        "criterion_args": CRITERION_ARGS,
        "bench_env": BENCH_ENV,
        "tolerance_rule": {"k": TOLERANCE_K, "floor": TOLERANCE_FLOOR, "cap": TOLERANCE_CAP, "passes": passes},
        "ratios": ratios,
        "memory": memories[0],
        "batching": batching_baseline(batchings)[0],
        "scenarios": scenarios,
        "scenarios_not_gated": not_gated,
        "scenarios_measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if "scale" in old:
        doc["scale"] = old["scale"]  # re-measured by --update-scale only
    BASELINE.write_text(json.dumps(doc, indent=2) + "\n")
    print("\nNew baseline (median of passes; tolerance = clamp(K × worst deviation)):")
    print_table(rows, ("ratio", "baseline", "worst dev", "tol", "passes"))
    print(f"\ngate: wrote {BASELINE}")
    return 0


# ---------------------------------------------------------------- self-test


class SelfTest(unittest.TestCase):
    def test_ratio_is_reference_time_over_agent_time(self):
        times = {("frame_encode", "agent", 256): 100.0, ("frame_encode", "base64_only", 256): 75.0}
        self.assertAlmostEqual(ratios_of(times)["encode/base64/256"], 0.75)

    def test_tolerance_follows_noise_within_bounds(self):
        base, tol, worst = tolerance_from_passes([1.0, 1.0, 1.0])
        self.assertEqual((base, tol), (1.0, TOLERANCE_FLOOR))
        base, tol, worst = tolerance_from_passes([0.9, 1.0, 1.1])
        self.assertAlmostEqual(worst, 0.1, places=6)  # 0.9 is the farther one in log space
        self.assertAlmostEqual(tol, TOLERANCE_K * worst)
        _, tol, _ = tolerance_from_passes([0.5, 1.0, 2.0])
        self.assertEqual(tol, TOLERANCE_CAP)

    def test_only_a_worsening_beyond_tolerance_fails(self):
        self.assertEqual(verdict(2.0, 0.1, 1.81), "ok")
        self.assertEqual(verdict(2.0, 0.1, 1.79), "REGRESSED")
        self.assertEqual(verdict(2.0, 0.1, 2.3), "improved")

    def test_filter_selects_both_sides_of_a_ratio(self):
        (rx,) = bench_filter(["writer/flush/256"])
        self.assertTrue(re.match(rx, "wss_loopback/writer/256"))
        self.assertTrue(re.match(rx, "wss_loopback/flush_per_frame/256"))
        self.assertFalse(re.match(rx, "wss_loopback/writer/2560"))
        self.assertFalse(re.match(rx, "frame_encode/agent/256"))

    def test_gate_tolerance_has_floors(self):
        self.assertEqual(gate_tolerance("pipeline/bare/16", 0.05), GATE_TOLERANCE_FLOOR)
        self.assertEqual(gate_tolerance("pipeline/bare/16", 0.30), 0.30)
        self.assertEqual(gate_tolerance("encode/seed/256", 0.05), NOISE_FLOOR["encode/seed/256"])
        self.assertEqual(gate_tolerance("writer/flush/16", 0.05), WRITER_LOAD_FLOOR)

    def test_load_floor_applies_to_its_comparison_only(self):
        self.assertEqual(load_floor_of("writer/flush/256"), WRITER_LOAD_FLOOR)
        self.assertEqual(load_floor_of("writer/flush/65536"), WRITER_LOAD_FLOOR)
        self.assertEqual(load_floor_of("pipeline/bare/65536"), 0.0)
        self.assertEqual(load_floor_of("encode/base64/256"), 0.0)

    def test_memory_bound_flatness_and_exactness(self):
        rows = [{"chunk_bytes": 256, "jobs": j, "frame_bytes": 422, "board_high_water_bytes": 1000,
                 "jobs_waiting_for_budget": j} for j in (1, 8)]
        now = {"outbound_queue_bytes_max": 1024, "rows": rows}
        self.assertTrue(all(r[3] in ("ok", "new") for r in check_memory(now, None)))
        self.assertTrue(all(r[3] == "ok" for r in check_memory(now, now)))
        grown = {"outbound_queue_bytes_max": 1024, "rows": [dict(rows[0]), dict(rows[1], board_high_water_bytes=2000)]}
        verdicts = [r[3] for r in check_memory(grown, now)]
        self.assertIn("FAILED", verdicts)  # over budget and not flat
        self.assertIn("CHANGED", verdicts)  # differs from the baseline

    def test_failures_are_listed_again_at_the_end(self):
        judged = [("writer/flush/256", "-", "4.0", "±10%", "3.1", "-22%", "REGRESSED"),
                  ("writer/flush/16", "-", "4.4", "±10%", "4.4", "+0%", "ok"),
                  ("scale/320/judge_share", "0.15", "+35%", "0.25", "+66%", "REGRESSED (≤10% target MISSED)")]
        exact = [("scenario a@1", "1", "2", "CHANGED"), ("memory/256", "-", "9", "ok")]
        listed = failing_rows(judged, exact)
        self.assertEqual(len(listed), 3)
        self.assertTrue(listed[0].startswith("writer/flush/256") and listed[2].startswith("scenario a@1"))

    def test_scenario_figures_are_exact(self):
        base = {"overload@1": {"e2e_ms.p99": 12.5, "chunks": 10}}
        self.assertEqual([r[3] for r in check_scenarios(base, base, {})], ["ok"])
        moved = {"overload@1": {"e2e_ms.p99": 12.6, "chunks": 10}}
        self.assertEqual([r[3] for r in check_scenarios(base, moved, {})], ["CHANGED"])
        self.assertEqual([r[3] for r in check_scenarios(base, {}, {})], ["CHANGED"])
        self.assertEqual([r[3] for r in check_scenarios({}, base, {})], ["new"])
        flaky = check_scenarios({}, base, {}, {"overload@1": "figures differed"})
        self.assertEqual([r[3] for r in flaky], ["NOT GATED: figures differed"])

    def test_batching_half_as_good_fails(self):
        base = {"writer/256": {"baseline": 100.0, "tolerance": TOLERANCE_CAP}}
        now = {"writer/256": 90.0, "flush_per_frame/256": 1.0}
        rows, regressed = check_batching(now, base)
        self.assertFalse(regressed)
        self.assertEqual([r[5] for r in rows], ["ok", "reference"])
        _, regressed = check_batching({"writer/256": 50.0}, base)
        self.assertTrue(regressed)  # even at the widest tolerance
        _, regressed = check_batching({}, base)
        self.assertTrue(regressed)  # a figure gone missing fails too

    def test_scale_bytes_exact_share_as_ratio(self):
        point = {"events": 100, "bytes_per_event": 1900, "judge_share": 0.10}
        base = {"320": point}
        rows, failed = check_scale({"320": dict(point, judge_share=0.13)}, base)
        self.assertFalse(failed)  # +30 %: inside the tolerance
        _, failed = check_scale({"320": dict(point, judge_share=0.30)}, base)
        self.assertTrue(failed)  # quadratic judging: the share triples
        rows, failed = check_scale({"320": dict(point, bytes_per_event=1901)}, base)
        self.assertTrue(failed)
        self.assertIn("CHANGED", [r[5] for r in rows])
        _, failed = check_scale({}, base)
        self.assertTrue(failed)  # a rate gone missing fails
        rows, failed = check_scale({"5": point}, {})
        self.assertFalse(failed)
        self.assertEqual({r[5] for r in rows}, {"new"})

    def test_scale_confirmation_keeps_the_better_pass(self):
        a = {"320": {"judge_share": 0.3, "bytes_per_event": 1}}
        b = {"320": {"judge_share": 0.1, "bytes_per_event": 1}}
        self.assertEqual(better_scale(a, b)["320"]["judge_share"], 0.1)

    def test_flatten_skips_wall_time(self):
        doc = {"sim": {"p50_ms": 3, "ok": True}, "wall": {"secs": 1.5}, "jobs": [{"n": 2}], "wall_ms": 9}
        flat = {k: v for k, v in flatten(doc).items() if not WALL_KEY.search(k)}
        self.assertEqual(flat, {"sim.p50_ms": 3, "jobs.0.n": 2})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--update", action="store_true", help="measure several passes and rewrite benches/baseline.json")
    ap.add_argument("--update-scenarios", action="store_true",
                    help="re-record only the scenario figures in benches/baseline.json (keeps the ratios)")
    ap.add_argument("--update-batching", action="store_true",
                    help="re-measure only the writer's batching in benches/baseline.json (keeps the rest)")
    ap.add_argument("--update-scale", action="store_true",
                    help="re-measure only the scale curve in benches/baseline.json (keeps the rest)")
    ap.add_argument("--scale-only", action="store_true", help="gate only the scale curve")
    ap.add_argument("--passes", type=int, default=UPDATE_PASSES, help="passes for --update (default %(default)s)")
    ap.add_argument("--no-confirm", action="store_true", help="judge on the first pass alone (no re-measure)")
    ap.add_argument("--no-scenarios", action="store_true", help="skip the scenario figures (bench ratios only)")
    ap.add_argument("--self-test", action="store_true", help="run the gate's unit tests and exit")
    args = ap.parse_args()
    if args.self_test:
        result = unittest.main(argv=[sys.argv[0]], exit=False, verbosity=1).result
        return 0 if result.wasSuccessful() else 1
    try:
        if args.update_scenarios:
            return update_scenarios()
        if args.update_batching:
            return update_batching(args.passes)
        if args.update_scale:
            return update_scale(min(args.passes, 3))
        if args.update:
            if args.passes < 3:
                raise GateError("--passes must be at least 3 to measure noise")
            return update(args.passes, skip_scenarios=args.no_scenarios)
        if args.scale_only:
            return gate_scale_only(confirm=not args.no_confirm)
        return gate(confirm=not args.no_confirm, skip_scenarios=args.no_scenarios)
    except GateError as err:
        print(f"gate: ERROR: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
