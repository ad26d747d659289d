"""Shared definitions for the Python peers: problems, tolerance sweeps, timing, JSON rows.

Every peer prints one JSON object per (problem, method, tolerance) on stdout. Timing is the
median of `runs` wall-clock runs after one warm-up run (for jax the warm-up also compiles; the
compile time is reported separately as `compile_ms`). The error is max_i |y_i - ref_i| / |ref_i|
at the final time against the reference run.py computes (reference.py); every tool gets the
same measure.
"""

import argparse
import json
import pathlib
import statistics
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent

# Headline tolerances (BENCHMARKS.md) and the work-precision sweeps.
LORENZ_T_END = 100.0
LORENZ_WP_T_END = 10.0  # see README: no meaningful double-precision reference far past t ~ 20
ROBERTSON_T_END = 1e5
SWEEP = [1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10]
QUICK_SWEEP = [1e-6]


def lorenz_atol(rtol: float) -> float:
    return rtol * 1e-3  # rtol 1e-6 -> atol 1e-9, the headline pair


def robertson_atol(rtol: float) -> float:
    return rtol * 1e-4  # rtol 1e-6 -> atol 1e-10, the headline pair


SPIRAL_A = [[-0.1, 2.0], [-2.0, -0.1]]
SPIRAL_Y0 = [2.0, 0.0]
SPIRAL_T_END = 25.0
SPIRAL_POINTS = 1000
SPIRAL_RTOL, SPIRAL_ATOL = 1e-7, 1e-9

SDE_BATCH = 20
SDE_STEPS = 1000
SDE_T_END = 1.0


def load_weights() -> dict:
    return json.loads((HERE / "spiral_weights.json").read_text())


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--repeat", type=int, default=20, help="timed runs per row (median reported)")
    p.add_argument("--reference", type=pathlib.Path, help="reference.json from run.py")
    p.add_argument("--quick", action="store_true", help="headline tolerances only, few runs")
    p.add_argument("--headline", action="store_true",
                   help="headline tolerances only (no sweeps), runs and iterations as usual: "
                        "run.py's later rounds")
    p.add_argument("--budget-s", type=float, default=3.0,
                   help="cap on timed seconds per row: slow rows get fewer runs (at least 3)")
    p.add_argument("--only", nargs="*", default=[], choices=GROUPS,
                   help="run only these groups of rows (default: all)")
    args = p.parse_args()
    args.ref = json.loads(args.reference.read_text()) if args.reference else {}
    return args


# Groups of rows, for --only: the stiff/non-stiff ODEs (Lorenz, Robertson), the spiral forward
# solve, the neural SDE, spiral training.
GROUPS = ["ode", "spiral", "sde", "train"]


def wants(args, group: str) -> bool:
    """Whether `--only` (empty: everything) selects this group of rows."""
    return not args.only or group in args.only


def sweep(args) -> list:
    return QUICK_SWEEP if args.quick or args.headline else SWEEP


def time_runs(fn, args) -> tuple:
    """Warm-up once, then time up to args.repeat runs (fewer if one run is slow). Returns
    (median_ms, runs, warmup_ms, last_result)."""
    t0 = time.perf_counter()
    result = fn()
    warm_ms = (time.perf_counter() - t0) * 1e3
    runs = args.repeat
    if warm_ms > 0:
        runs = max(3, min(args.repeat, int(args.budget_s * 1e3 / max(warm_ms, 1e-3))))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), runs, warm_ms, result


def rel_error(y, ref) -> float:
    return max(abs(a - r) / abs(r) for a, r in zip(y, ref))


def emit(args, **row) -> None:
    """Print one row; adds `error` when the reference has this problem and the row a `final`."""
    ref = args.ref.get(row["problem"])
    if ref is not None and row.get("final") is not None:
        row["error"] = rel_error(row["final"], ref)
    print(json.dumps(row), flush=True)


def note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pin(cpu):
    """Runs this process, and every process it starts, on one CPU (`cpu`; None: the first this
    process may use) and returns it. On this 2-core VM each vCPU runs at its own, changing
    speed (up to 1.6x apart); two tools timed on different CPUs compare the CPUs as much as the
    tools, two on one CPU a fraction of a second apart agree within a few percent."""
    import os
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0)) if cpu is None else cpu
    os.sched_setaffinity(0, {cpu})
    return cpu

