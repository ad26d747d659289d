#!/usr/bin/env python3
"""The spiral reproduction study behind docs/results.md.

The torchdiffeq spiral (examples/spiral.gbx) trained five ways — vanilla, ERNODE (global error
estimate), SRNODE (global stiffness estimate), and the 2023 paper's local error estimate with
unbiased and biased sampling — three seeds each, all else equal. For every run it reads the
report that `glassbox train` writes to run.json (final loss on the full trajectory, training
time, prediction NFE and the median prediction time), and writes the table to docs/results.md.

Usage (from the repository root; Python's standard library only):

    cargo build --release
    python3 benches/results/spiral.py [--iterations N] [--seeds 0,1,2] [--out docs/results.md]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.join(ROOT, "target", "release", "glassbox")
EXAMPLE = os.path.join(ROOT, "examples", "spiral.gbx")
DATA = os.path.join(ROOT, "examples", "data", "spiral.csv")

# The objective of each variant; everything else is the example's model file, unchanged.
# `{ernode}` etc. are the coefficient schedules, flags of this script.
VARIANTS = [
    ("vanilla", "l1(y, obs)"),
    ("ERNODE", "l1(y, obs) + decay({ernode}) * error_estimate"),
    ("SRNODE", "l1(y, obs) + decay({srnode}) * stiffness"),
    ("local, unbiased", "l1(y, obs) + decay({local}) * error_estimate(sample = unbiased)"),
    ("local, biased", "l1(y, obs) + decay({local}) * error_estimate(sample = biased)"),
]


def model_text(objective):
    lines = []
    for line in open(EXAMPLE).read().splitlines():
        if line.startswith("minimize "):
            line = "minimize " + objective
        lines.append(line)
    return "\n".join(lines) + "\n"


def slug(name):
    return name.replace(", ", "_").replace(" ", "_").lower()


def train(work, name, objective, seed, iterations):
    model = os.path.join(work, f"{slug(name)}.gbx")
    with open(model, "w") as f:
        f.write(model_text(objective))
    out = os.path.join(work, "runs", f"{slug(name)}_s{seed}")
    cmd = [BINARY, "train", model, "--seed", str(seed), "--out", out,
           "--iterations", str(iterations)]
    started = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    with open(os.path.join(out, "run.json")) as f:
        report = json.load(f)["report"]
    print(f"  {name:16s} seed {seed}: loss {report['final_loss']:.4f}  "
          f"nfe {report['prediction_nfe']:5d}  train {report['training_time_s']:.1f} s  "
          f"({time.time() - started:.0f} s wall)", flush=True)
    return report


def mean_sd(xs, fmt):
    if len(xs) < 2:
        return fmt.format(xs[0])
    return (fmt + " ± " + fmt).format(statistics.mean(xs), statistics.stdev(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--ernode", default="100 -> 10", help="ERNODE's schedule, `a -> b`")
    ap.add_argument("--srnode", default="0.3 -> 0.03", help="SRNODE's schedule, `a -> b`")
    ap.add_argument("--local", default="10000 -> 1000", help="the local terms' schedule, `a -> b`")
    ap.add_argument("--sweep", default="1,3,10",
                    help="constant ERNODE coefficients for the strength sweep ('' for none)")
    ap.add_argument("--only", default="",
                    help="variants to run, by slug: vanilla,ernode,srnode,local_unbiased,local_biased")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "results.md"))
    args = ap.parse_args()
    if not os.path.exists(BINARY):
        sys.exit("build the release binary first: cargo build --release")
    seeds = [int(s) for s in args.seeds.split(",")]

    work = tempfile.mkdtemp(prefix="glassbox-spiral-study-")
    os.makedirs(os.path.join(work, "data"))
    shutil.copy(DATA, os.path.join(work, "data", "spiral.csv"))
    rows = []
    try:
        only = [v.strip() for v in args.only.split(",") if v.strip()]
        for name, objective in VARIANTS:
            if only and slug(name) not in only:
                continue
            objective = objective.format(ernode=args.ernode, srnode=args.srnode, local=args.local)
            reports = [train(work, name, objective, s, args.iterations) for s in seeds]
            rows.append((name, objective, reports))
        sweep = []
        for c in [x.strip() for x in args.sweep.split(",") if x.strip()]:
            objective = f"l1(y, obs) + {c} * error_estimate"
            reports = [train(work, f"ERNODE {c}", objective, s, args.iterations) for s in seeds]
            sweep.append((c, reports))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = rows[0][2]
    base_nfe = statistics.mean(r["prediction_nfe"] for r in base)
    base_train = statistics.mean(r["training_time_s"] for r in base)
    base_pred = statistics.mean(r["prediction_time_ms"] for r in base)
    out = []
    out.append("| variant | final loss (l1) | prediction NFE | NFE vs vanilla | "
               "prediction time (ms) | prediction vs vanilla | training time (s) | "
               "training vs vanilla |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, _, reps in rows:
        loss = [r["final_loss"] for r in reps]
        nfe = [r["prediction_nfe"] for r in reps]
        pred = [r["prediction_time_ms"] for r in reps]
        tr = [r["training_time_s"] for r in reps]
        out.append(
            f"| {name} | {mean_sd(loss, '{:.4f}')} | {mean_sd(nfe, '{:.0f}')} | "
            f"{statistics.mean(nfe) / base_nfe:.2f}x | {mean_sd(pred, '{:.3f}')} | "
            f"{statistics.mean(pred) / base_pred:.2f}x | {mean_sd(tr, '{:.2f}')} | "
            f"{statistics.mean(tr) / base_train:.2f}x |")
    per_seed = ["| variant | seed | final loss | prediction NFE | prediction ms | training s |",
                "| --- | --- | --- | --- | --- | --- |"]
    for name, _, reps in rows:
        for s, r in zip(seeds, reps):
            per_seed.append(f"| {name} | {s} | {r['final_loss']:.4f} | {r['prediction_nfe']} | "
                            f"{r['prediction_time_ms']:.3f} | {r['training_time_s']:.1f} |")
    sweep_rows = ["| ERNODE coefficient (constant) | final loss | prediction NFE | NFE vs vanilla |",
                  "| --- | --- | --- | --- |"]
    for c, reps in sweep:
        loss = [r["final_loss"] for r in reps]
        nfe = [r["prediction_nfe"] for r in reps]
        sweep_rows.append(f"| {c} | {mean_sd(loss, '{:.4f}')} | {mean_sd(nfe, '{:.0f}')} | "
                          f"{statistics.mean(nfe) / base_nfe:.2f}x |")
    objectives = "\n".join(f"- {name}: `minimize {obj}`" for name, obj, _ in rows)
    table = "\n".join(out)
    flags = (f"--iterations {args.iterations} --seeds {args.seeds} --ernode '{args.ernode}' "
             f"--srnode '{args.srnode}' --local '{args.local}' --sweep '{args.sweep}'")
    seeds_table = "\n".join(per_seed)
    doc = TEMPLATE.format(iterations=args.iterations, seeds=args.seeds, table=table,
                          per_seed=seeds_table, objectives=objectives,
                          sweep="\n".join(sweep_rows), flags=flags,
                          cores=os.cpu_count(), date=time.strftime("%Y-%m-%d"))
    with open(args.out, "w") as f:
        f.write(doc)
    print(f"wrote {args.out}")


TEMPLATE = """# Results: the spiral, five ways

<!-- Written by benches/results/spiral.py; edit the script's template, not this file. -->

The torchdiffeq spiral (`examples/spiral.gbx`: a 2-50-2 tanh MLP on y³, l1 loss on windows of
20 × 10 observations, RMSprop lr 1e-3, Tsit5 at rtol 1e-7 / atol 1e-9) trained {iterations}
iterations with seeds {seeds}, five objectives, everything else equal. Mean ± standard
deviation over the seeds; ratios are of the means against vanilla.

{table}

- **final loss**: l1 of a solve over the full trajectory (t ∈ [0, 25], 1 000 observations) from
  the model's initial state, with the trained weights (`glassbox train`'s report).
- **prediction NFE / time**: that solve's function evaluations and its median wall time over 7
  solves. Training time is the sum of the iterations' wall times.

Objectives:
{objectives}

Regenerate (a few seconds per run in release, 24 runs; last run {date} on {cores} cores):

```sh
cargo build --release
python3 benches/results/spiral.py {flags}
```

## Regularizer strength

ERNODE with a constant coefficient, same seeds and iterations:

{sweep}

## Per seed

{per_seed}

## Reading the table

The papers report, on this spiral, prediction NFE 1 083 → 676 with ERNODE (0.62x) and
prediction 1.3–2x faster with the local regularizers at equal accuracy, for no extra training
cost. The target set for glassbox is prediction NFE ≤ 0.75x vanilla at comparable loss, with
training time ≤ 1.1x.

Findings of the committed run (2026-11-28; the text below is not regenerated):

- **The target is not met on this set-up.** Every setting that cuts prediction NFE a lot —
  ERNODE `decay(100 -> 10)` and constant 10, SRNODE `decay(0.3 -> 0.03)` on two of three
  seeds — gets there by learning an over-damped, slowly decaying field: NFE falls to 0.1–0.2x
  but the full-trajectory l1 rises to ~0.6 against vanilla's 0.24 (one ERNODE seed diverges
  to 9.4). Weaker settings (ERNODE constant 1 and 3, the local terms at 10⁴ → 10³) leave NFE
  within 0.9–1.0x of vanilla. The response to the coefficient is a switch, not a slope.
- **Why, most likely:** the windows are 10 observations (0.24 time units) started from the
  data, so the data loss barely sees the difference between the spiral and a slow decay, and
  a regularizer of a few hundredths already outweighs it. One probe with 40-observation
  windows (seed 0, constant ERNODE 3): full-span loss 0.80 against vanilla's 0.69 at NFE 164
  against 2 870 — the regime the papers describe; it is not yet part of the table.
- **Training cost:** regularized runs are cheaper, not dearer (ERNODE/SRNODE 0.6x, local
  0.93–0.97x), because the regularized fields need fewer steps per iteration; the
  regularizers themselves are folded into the same adjoint sweep.
- Vanilla prediction NFE is ~2 500 here (Tsit5, rtol 1e-7) against the paper's 1 083
  (dopri5 in torchdiffeq): the trained fields differ, and so does the loss reached.

Next: a study over window lengths and schedules that keep the regularizer on to the end
(`--sweep`, and the `length = ...` of the example's `batch`).
"""

if __name__ == "__main__":
    main()
