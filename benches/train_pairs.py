#!/usr/bin/env python3
"""Run from the repository root after `cargo build --release`, with main's release binary copied
to target/glassbox-main: `python3 benches/train_pairs.py [A] [B] [pairs] [iterations]`.

ABAB pairs of `glassbox train spiral_train` pinned to CPU 0: per pair the median
per-iteration time (iterations 10..N) of each binary and their ratio; also, since both binaries
follow the same trajectory bit for bit, the per-iteration minimum over all runs of each binary,
summed over iterations 10..N (robust to the machine's slow phases and to preemption)."""
import json, os, statistics, subprocess, sys, tempfile
T = os.environ.get("CARGO_TARGET_DIR", "target")
OUT = tempfile.mkdtemp()
A = (sys.argv[1:2] or [""])[0] or f"{T}/glassbox-main"
B = (sys.argv[2:3] or [""])[0] or f"{T}/release/glassbox"
pairs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
iters = int(sys.argv[4]) if len(sys.argv) > 4 else 60
def run(binary):
    subprocess.run(["taskset", "-c", "0", binary, "train", "benches/peers/models/spiral_train.gbx",
                    "--iterations", str(iters), "--seed", "0", "--out", OUT],
                   check=True, capture_output=True)
    m = json.load(open(os.path.join(OUT, "run.json")))["metrics"]
    return [x["time_s"] for x in m[10:]]
ta, tb, ratios = [], [], []
for i in range(pairs):
    a = run(A); b = run(B)
    ta.append(a); tb.append(b)
    ma, mb = statistics.median(a), statistics.median(b)
    ratios.append(mb / ma)
    print(f"pair {i+1}: A {ma*1e3:.4f} ms  B {mb*1e3:.4f} ms  B/A {mb/ma:.3f}", flush=True)
print(f"median of pair ratios B/A: {statistics.median(ratios):.3f} ({sum(r < 1 for r in ratios)}/{pairs} below 1)")
mina = sum(min(col) for col in zip(*ta)); minb = sum(min(col) for col in zip(*tb))
print(f"per-iteration min over runs, summed: A {mina*1e3:.3f} ms  B {minb*1e3:.3f} ms  B/A {minb/mina:.3f}")
