#!/usr/bin/env bash
# Standalone binaries against `glassbox predict`: start-up plus solve, wall time of the whole
# process (median of N runs, interleaved so both see the same machine load), and the binary's
# size. Results: docs/benchmarks.md ("Standalone binaries").
#
#   bash benches/standalone.sh [N]      # N runs each (default 21)
#   PROFILE=debug bash benches/standalone.sh 11   # the dev profile (both sides debug)
#
# Builds glassbox in release (the runtime library target/release/libglassbox.a with it), writes
# weights for each trainable example (its initial values, perturbed: what `predict` needs) and
# builds each into a temporary directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${1:-21}
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then cargo build --release --quiet; else cargo build --quiet; fi
TARGET=${CARGO_TARGET_DIR:-target}
GB="$TARGET/$PROFILE/glassbox"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Weights for each model: a short training run is the honest way to get a weights file.
N=$N python3 - "$GB" "$WORK" <<'PY'
import subprocess, sys, time, statistics, os
gb, work = sys.argv[1], sys.argv[2]
N = int(os.environ.get("N", "21"))
cases = [("spiral", "0:25:501"), ("lorenz", "0:10:1001"), ("van_der_pol", "0:40:401")]
print(f"| model | --at | predict (ms) | binary (ms) | predict/binary | binary size |")
print(f"|---|---|---|---|---|---|")
for name, at in cases:
    f = f"examples/{name}.gbx"
    run = f"{work}/{name}"
    subprocess.run([gb, "train", f, "--iterations", "1", "--out", run], check=True,
                   capture_output=True)
    exe = f"{work}/{name}-bin"
    subprocess.run([gb, "build", f, "--weights", run, "-o", exe], check=True,
                   capture_output=True)
    pred = [gb, "predict", f, "--weights", run, "--at", at]
    binr = [exe, "--at", at]
    a = subprocess.run(pred, check=True, capture_output=True).stdout
    b = subprocess.run(binr, check=True, capture_output=True).stdout
    assert a == b, f"{name}: outputs differ"
    tp, tb = [], []
    for _ in range(N):
        for cmd, acc in ((pred, tp), (binr, tb)):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            acc.append(time.perf_counter() - t)
    mp, mb = statistics.median(tp) * 1e3, statistics.median(tb) * 1e3
    size = os.path.getsize(exe) / 2**20
    print(f"| {name} | {at} | {mp:.1f} | {mb:.1f} | {mp / mb:.1f} | {size:.1f} MiB |")
PY
