#!/usr/bin/env bash
# A classifier binary's `--input` rows: the per-row path (each row its own solve, the
# single-row kernels; `GLASSBOX_BATCHED=0`, the binaries' code before they batched) against
# the batched path (`train::predict_batched` on the linked batched kernels, what the binary
# chooses for these GEMM-sized fields), beside `glassbox predict --input` on the same rows.
# Wall time of the whole process, pinned to one CPU (`taskset -c 1`), N interleaved rounds,
# medians; the "solve time" line of `--stats` (encoder, solves, head) too. Results:
# docs/benchmarks.md ("Standalone binaries: batched --input").
#
#   bash benches/standalone_batched.sh [N]      # N rounds (default 7)
#
# Weights: one training iteration (`glassbox train --iterations 1`). Inputs: every row of the
# model's data without its label (digits: 1 797 rows of 64; mnist_sized: 2 048 rows of 784,
# written by `python3 benches/peers/classifiers.py --data` if missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${1:-7}
cargo build --release --quiet
TARGET=${CARGO_TARGET_DIR:-target}
GB="$(pwd)/$TARGET/release/glassbox"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
[ -f benches/peers/data/mnist_sized.csv ] || python3 benches/peers/classifiers.py --data

N=$N python3 - "$GB" "$WORK" <<'PY'
import os, statistics, subprocess, sys, time
gb, work = sys.argv[1], sys.argv[2]
N = int(os.environ["N"])
cases = [("digits", "examples/digits.gbx", "examples/data/digits.csv", 64),
         ("mnist_sized", "benches/peers/models/mnist_sized.gbx",
          "benches/peers/data/mnist_sized.csv", 784)]
pin = ["taskset", "-c", "1"]

def timed(cmd, env=None):
    t = time.perf_counter()
    o = subprocess.run(pin + cmd, check=True, capture_output=True, env=env)
    wall = (time.perf_counter() - t) * 1e3
    solve = next(float(l.split()[2]) for l in o.stderr.decode().splitlines()
                 if l.startswith("solve time"))
    return wall, solve, o

print("| model | rows | binary per row (ms) | binary batched (ms) | per row / batched "
      "| solve time per row / batched (ms) | predict --input (ms) |")
print("|---|---|---|---|---|---|---|")
for name, f, data, k in cases:
    run, exe, x = f"{work}/{name}", f"{work}/{name}-bin", f"{work}/{name}.csv"
    subprocess.run([gb, "train", f, "--iterations", "1", "--out", run], check=True,
                   capture_output=True)
    subprocess.run([gb, "build", f, "--weights", run, "-o", exe], check=True,
                   capture_output=True)
    rows = [",".join(l.split(",")[:k]) for l in open(data) if l.strip()]
    open(x, "w").write("\n".join(rows) + "\n")
    per_row_env = dict(os.environ, GLASSBOX_BATCHED="0")
    binr = [exe, "--input", x, "--stats"]
    pred = [gb, "predict", f, "--weights", run, "--input", x, "--stats", "--threads", "1"]
    # The batched binary prints predict's bytes and says it ran batched; the per-row one too.
    b, p = timed(binr)[2], timed(pred)[2]
    assert b.stdout == p.stdout, f"{name}: binary and predict differ"
    assert b"batched solves" in b.stderr, b.stderr
    assert b"per-row solves" in timed(binr, per_row_env)[2].stderr
    t = {"row": [], "batch": [], "pred": []}
    s = {"row": [], "batch": []}
    for _ in range(N):
        for key, cmd, env in (("row", binr, per_row_env), ("batch", binr, None),
                              ("pred", pred, None)):
            wall, solve, _ = timed(cmd, env)
            t[key].append(wall)
            if key in s:
                s[key].append(solve)
    m = {key: statistics.median(v) for key, v in t.items()}
    sr, sb = statistics.median(s["row"]), statistics.median(s["batch"])
    print(f"| {name} | {len(rows)} | {m['row']:.0f} | {m['batch']:.0f} | "
          f"{m['row'] / m['batch']:.2f}x | {sr:.0f} / {sb:.0f} ({sr / sb:.2f}x) | "
          f"{m['pred']:.0f} |")
PY
