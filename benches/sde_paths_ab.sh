#!/usr/bin/env bash
# SDE paths, per path against batched: `glassbox solve --paths P` of
# benches/models/spiral_sde_wide.gbx (drift mlp(2, 64, 64, 2): its 64·64 layer is a GEMM over
# the paths), each path solved alone on the per-path kernels (`GLASSBOX_BATCHED=0`, the code
# before paths batched) against the paths advanced together (src/solve/sde/batched.rs, what
# `solve` chooses here). One thread pinned to CPU 0 (`taskset -c 0 ... --threads 1`), N
# interleaved rounds, each the median of `--repeat 5` solves (the "solve time" line of
# `--stats`, compile apart); the medians over rounds and their ratio. Methods: the default
# sosri (adaptive, the model's rtol = atol = 0.05) and Euler–Maruyama with dt = 0.01.
#
#   bash benches/sde_paths_ab.sh [N]      # N rounds (default 7)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${1:-7}
cargo build --release --quiet
TARGET=${CARGO_TARGET_DIR:-target}
GB="$(pwd)/$TARGET/release/glassbox"

N=$N python3 - "$GB" <<'PY'
import os, statistics, subprocess, sys
gb = sys.argv[1]
N = int(os.environ["N"])
model = "benches/models/spiral_sde_wide.gbx"
cases = [("sosri", []), ("euler_maruyama", ["--method", "euler_maruyama", "--dt", "0.01"])]

def solve_ms(paths, extra, batched):
    env = dict(os.environ)
    if batched:
        env.pop("GLASSBOX_BATCHED", None)
    else:
        env["GLASSBOX_BATCHED"] = "0"
    cmd = ["taskset", "-c", "0", gb, "solve", model, "--paths", str(paths), "--threads", "1",
           "--stats", "--repeat", "5", "-o", os.devnull] + extra
    o = subprocess.run(cmd, check=True, capture_output=True, env=env)
    lines = o.stdout.decode().splitlines()  # with -o, --stats goes to stdout
    how = next(l.split(None, 2)[2] for l in lines if l.startswith("paths solved"))
    want = "batched" if batched else "one by one"
    assert how.startswith(want), (how, want)
    return next(float(l.split()[2]) for l in lines if l.startswith("solve time"))

print(f"{'method':16} {'paths':>5} {'per path ms':>12} {'batched ms':>11} {'ratio':>6}")
for name, extra in cases:
    for paths in (64, 256):
        per, bat = [], []
        for _ in range(N):
            per.append(solve_ms(paths, extra, False))
            bat.append(solve_ms(paths, extra, True))
        p, b = statistics.median(per), statistics.median(bat)
        print(f"{name:16} {paths:>5} {p:>12.2f} {b:>11.2f} {p / b:>5.2f}x", flush=True)
PY
