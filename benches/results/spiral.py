#!/usr/bin/env python3
"""The spiral reproduction study behind docs/results.md.

The torchdiffeq spiral (examples/spiral.gbx) trained five ways — vanilla, ERNODE (global error
estimate), SRNODE (global stiffness estimate), and the 2023 paper's local error estimate with
unbiased and biased sampling — on the report seeds, all else equal. For every run it reads the
report that `glassbox train` writes to run.json (final loss on the full trajectory, training
time, prediction NFE and the median prediction time) and the per-iteration window loss, and
writes the tables to docs/results.md.

The coefficients are tuned on other seeds (`--tune-seeds`): the sweep section trains every
regularizer at every coefficient of the `--sweep-*` lists on those seeds, so the report seeds
are never used to choose a coefficient. The set-up section trains vanilla and ERNODE with
other window lengths and iteration counts (`--setups`) on the tuning seeds too.

Usage (from the repository root; Python's standard library only):

    cargo build --release
    python3 benches/results/spiral.py [--iterations N] [--batch B] [--length L] [--seeds 0,1,2]
        [--ernode C] [--srnode C] [--local C] [--local-biased C] [--tune-seeds 10,11]
        [--sweep-ernode LIST] [--sweep-srnode LIST] [--sweep-local LIST] [--setups L:N,...]
        [--out docs/results.md]

A coefficient C is a constant (`5`) or a decay schedule (`'100 -> 10'`). The binary is
$CARGO_TARGET_DIR/release/glassbox when that is set, else target/release/glassbox
(`--binary` overrides). Pin it to one core for comparable times (`taskset -c 1 python3 ...`).
"""

import argparse
import csv
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

import study
from study import BINARY, COMPARABLE, NFE_TARGET, ROOT, TRAIN_TARGET, split

EXAMPLE = os.path.join(ROOT, "examples", "spiral.gbx")
DATA = os.path.join(ROOT, "examples", "data", "spiral.csv")

# The regularized variants: (name, slug, term). Vanilla is `l1(y, obs)` alone; each variant
# adds `C * term` with its coefficient C, everything else the example's model file.
VARIANTS = [
    ("ERNODE", "ernode", "error_estimate"),
    ("SRNODE", "srnode", "stiffness"),
    ("local, unbiased", "local_unbiased", "error_estimate(sample = unbiased)"),
    ("local, biased", "local_biased", "error_estimate(sample = biased)"),
]
DATA_LOSS = "l1(y, obs)"
# The loss that must be comparable: the full-span l1 of the report.
LOSSES = [("final_loss", "loss")]

# The truth the data were generated from (examples/gen_data.rs): dy/dt = (y^3) A, written out
# per component so `glassbox solve` can count its NFE at the example's tolerances.
TRUTH = """model spiral_truth
state a = 2.0
state b = 0.0
da/dt = -0.1 * a^3 - 2.0 * b^3
db/dt = 2.0 * a^3 - 0.1 * b^3
"""


def objective(term, coef):
    return study.objective(DATA_LOSS, term, coef)


def model_text(objective, batch, length):
    lines = []
    for line in open(EXAMPLE).read().splitlines():
        if line.startswith("minimize "):
            line = "minimize " + objective
        if line.startswith("train "):
            line, n = re.subn(r"windows\(\d+, length = \d+\)",
                              f"windows({batch}, length = {length})", line)
            if n != 1:
                sys.exit(f"examples/spiral.gbx: no `windows(B, length = L)` in `{line}`")
        lines.append(line)
    return "\n".join(lines) + "\n"


class Runner(study.Runner):
    def __init__(self, binary, work, batch):
        super().__init__(binary, work)
        self.batch = batch

    def train(self, label, objective, seed, length, iterations):
        # The tail loss is the window loss: how well the windows are fitted, less noisy than
        # the full-span loss (which compounds a small phase error over 25 s).
        return super().train(f"{label} L={length} N={iterations}",
                             model_text(objective, self.batch, length), seed, iterations)


def truth_nfe(runner):
    """NFE of the true field over the data's span, at the example's method and tolerances."""
    text = TRUTH + study.example_line(EXAMPLE, "solve ") + "\n"
    return int(runner.solve_stats("truth", text, ["--over", "0:25"])["nfe"].split()[0])


def zero_loss():
    """l1 of predicting 0 for every observation: the loss of a model that learned nothing."""
    with open(DATA) as f:
        rows = list(csv.DictReader(f))
    return statistics.mean(abs(float(r[c])) for r in rows for c in ("y1", "y2"))


def main_table(rows):
    return study.variants_table(rows, [
        ("final loss (l1)", "final_loss"), ("loss vs vanilla", "final_loss/"),
        ("window loss", "tail_loss"), ("prediction NFE", "prediction_nfe"),
        ("NFE vs vanilla", "prediction_nfe/"), ("prediction time (ms)", "prediction_time_ms"),
        ("prediction vs vanilla", "prediction_time_ms/"),
        ("training time (s)", "training_time_s"), ("training vs vanilla", "training_time_s/"),
        ("training NFE vs vanilla", "training_nfe/")], LOSSES)


def sweep_table(base, sweep):
    return study.sweep_table(base, sweep, [
        ("final loss", "final_loss"), ("loss vs vanilla", "final_loss/"),
        ("window loss", "tail_loss"), ("prediction NFE", "prediction_nfe"),
        ("NFE vs vanilla", "prediction_nfe/")], LOSSES)


def setups_table(setups):
    keys = ["final_loss", "tail_loss", "prediction_nfe", "prediction_nfe/", "training_time_s"]
    body = []
    for (length, iterations), runs in setups:
        base = runs[0][1]
        for obj, reps in runs:
            body.append([str(length), str(iterations), f"`{obj}`"] + study.cells(reps, base, keys))
    return study.markdown(["window length", "iterations", "objective", "final loss",
                           "window loss", "prediction NFE", "NFE vs vanilla (same set-up)",
                           "training time (s)"], body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=20, help="windows per iteration")
    ap.add_argument("--length", type=int, default=10, help="observations per window")
    ap.add_argument("--seeds", default="0,1,2", help="the report seeds")
    # `auto`: the tuning rule (`choose`) picks the coefficient from the sweep on the tuning seeds.
    ap.add_argument("--ernode", default="auto", help="ERNODE's coefficient, or `auto`")
    ap.add_argument("--srnode", default="auto", help="SRNODE's coefficient, or `auto`")
    ap.add_argument("--local", default="auto", help="the local unbiased term's coefficient")
    ap.add_argument("--local-biased", default=None,
                    help="the local biased term's coefficient (default: auto)")
    ap.add_argument("--tune-seeds", default="10,11,12",
                    help="seeds of the coefficient sweep and the window-length section")
    ap.add_argument("--sweep-ernode", default="0.3,1,2,3,5,7,10,10 -> 0.01,100 -> 10")
    ap.add_argument("--sweep-srnode", default="0.003,0.01,0.03,0.1,0.3 -> 0.03")
    ap.add_argument("--sweep-local", default="300,1000,3000,10000,30000",
                    help="coefficients of both local terms in the sweep")
    ap.add_argument("--setups", default="10:4000,40:2000,40:4000",
                    help="other set-ups `L:N` (window length, iterations) tried with vanilla "
                    "and ERNODE on the tuning seeds ('' for none)")
    ap.add_argument("--setup-ernode", default="0.3",
                    help="ERNODE's coefficient in the set-up section")
    ap.add_argument("--binary", default=BINARY)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "results.md"))
    args = ap.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: build the release binary first (cargo build --release)")
    seeds = [int(s) for s in split(args.seeds)]
    tune_seeds = [int(s) for s in split(args.tune_seeds)]
    coefs = {"ernode": args.ernode, "srnode": args.srnode, "local_unbiased": args.local,
             "local_biased": args.local_biased or "auto"}

    work = tempfile.mkdtemp(prefix="glassbox-spiral-study-")
    os.makedirs(os.path.join(work, "data"))
    shutil.copy(DATA, os.path.join(work, "data", "spiral.csv"))
    runner = Runner(args.binary, work, args.batch)
    load = [os.getloadavg()[0]]
    started = time.time()
    n, length = args.iterations, args.length
    try:
        truth = truth_nfe(runner)
        # The tuning seeds first: every coefficient of the sweep lists.
        print("tuning seeds:", flush=True)
        base = [runner.train("vanilla", DATA_LOSS, s, length, n) for s in tune_seeds]
        lists = {"ernode": args.sweep_ernode, "srnode": args.sweep_srnode,
                 "local_unbiased": args.sweep_local, "local_biased": args.sweep_local}
        sweep = study.tune(VARIANTS, lists, coefs, tune_seeds,
                           lambda label, obj, s: runner.train(label, obj, s, length, n),
                           objective, base, LOSSES)
        print("report seeds:", flush=True)
        rows = [("vanilla", DATA_LOSS, [])]
        rows += [(name, objective(term, coefs[key]), []) for name, key, term in VARIANTS]
        study.run_variants(runner, rows, seeds,
                           lambda name, obj, s: runner.train(name, obj, s, length, n))
        setups = []
        for setup in split(args.setups):
            sl, sn = (int(x) for x in setup.split(":"))
            runs = []
            for obj in (DATA_LOSS, objective("error_estimate", args.setup_ernode)):
                label = "vanilla" if obj == DATA_LOSS else "ERNODE"
                runs.append((obj, [runner.train(label, obj, s, sl, sn) for s in tune_seeds]))
            setups.append(((sl, sn), runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load.append(os.getloadavg()[0])

    base_report = rows[0][2]
    per_seed = study.per_seed_table(rows, seeds, "window loss")
    flags = (f"--iterations {args.iterations} --batch {args.batch} --length {args.length} "
             f"--seeds {args.seeds} --ernode '{args.ernode}' --srnode '{args.srnode}' "
             f"--local '{args.local}' --local-biased '{args.local_biased or 'auto'}' "
             f"--tune-seeds {args.tune_seeds} --sweep-ernode '{args.sweep_ernode}' "
             f"--sweep-srnode '{args.sweep_srnode}' --sweep-local '{args.sweep_local}' "
             f"--setups '{args.setups}' --setup-ernode '{args.setup_ernode}'")
    runs = (len(seeds) * len(rows) + len(tune_seeds) * (1 + len(sweep))
            + sum(len(tune_seeds) * len(r) for _, r in setups))
    doc = TEMPLATE.format(
        iterations=args.iterations, batch=args.batch, length=args.length,
        span=f"{(args.length - 1) * 25 / 999:.3f}", seeds=args.seeds, tune_seeds=args.tune_seeds,
        comparable=COMPARABLE, nfe_target=NFE_TARGET, train_target=TRAIN_TARGET,
        table=main_table(rows), per_seed=per_seed, objectives=study.objectives(rows),
        sweep=sweep_table(base, sweep), setups=setups_table(setups), flags=flags,
        truth=truth, truth_ratio=f"{truth / study.mean(base_report, 'prediction_nfe'):.2f}",
        zero=f"{zero_loss():.4f}", runs=runs, setup_ernode=args.setup_ernode,
        minutes=f"{(time.time() - started) / 60:.0f}", load=study.load_text(load),
        date=time.strftime("%Y-%m-%d"))
    with open(args.out, "w") as f:
        f.write(doc)
    print(f"wrote {args.out}")


TEMPLATE = """# Results: the spiral, five ways

<!-- Written by benches/results/spiral.py; edit the script's template, not this file. -->

The torchdiffeq spiral (`examples/spiral.gbx`: a 2-50-2 tanh MLP on y³, l1 loss on windows of
{batch} × {length} observations ({span} time units each), RMSprop lr 1e-3, Tsit5 at rtol 1e-7 /
atol 1e-9) trained {iterations} iterations with seeds {seeds}, five objectives, everything else
equal. Mean ± standard deviation over the seeds; ratios are of the means against vanilla.
The spiral SDE, with the same protocol: [docs/results_sde.md](results_sde.md).

**The target and the protocol, fixed before the report seeds were run:** prediction NFE ≤
{nfe_target}x vanilla's, training time ≤ {train_target}x, and *comparable loss*, read as: the
mean full-span loss at most {comparable}x vanilla's mean over the same seeds (ratios of the
means, the last column). Each regularizer's coefficient is chosen by a rule on the tuning
seeds {tune_seeds} (section "Tuning" below), never on the report seeds {seeds}: of the swept
coefficients whose mean loss there is comparable to vanilla's, the one with the fewest
prediction NFE; if none is comparable, the one with the lowest loss.

{table}

- **final loss**: l1 of a solve over the full trajectory (t ∈ [0, 25], 1 000 observations) from
  the model's initial state, with the trained weights (`glassbox train`'s report). For scale:
  predicting 0 everywhere scores {zero}.
- **window loss**: the training data loss (l1 over the batch's windows, each solved from its
  first observation), mean of the last tenth of the iterations.
- **prediction NFE / time**: the full-span solve's function evaluations and its median wall
  time over 7 solves, at the training tolerances. Training time is the sum of the iterations'
  wall times, the study pinned to one core (load average {load} over the study, 2 cores
  shared with other work); the runs alternate variants seed by seed, so a change of load
  falls on all of them alike.
  **training NFE**: the forward evaluations summed over the iterations, the load-free part of
  the training cost.
- **the true field** `dy/dt = (y³) A` that generated the data takes **{truth} NFE** over the
  same span at the same method and tolerances ({truth_ratio}x vanilla's mean).

Objectives:
{objectives}

Regenerate ({runs} runs; the last, {date}, took {minutes} minutes, pinned to one core):

```sh
cargo build --release
taskset -c 1 python3 benches/results/spiral.py {flags}
```

## Tuning: regularizer strength on seeds {tune_seeds}

Every regularizer at every coefficient of the sweep, on the tuning seeds, with vanilla on the
same seeds as the reference (ratios against it; the last column applies the target's NFE and
loss criteria to these seeds):

{sweep}

## Other set-ups, seeds {tune_seeds}

Vanilla and ERNODE (coefficient {setup_ernode}) with other window lengths and iteration counts,
all else as above; the NFE ratio is against vanilla of the same set-up:

{setups}

## Per seed

{per_seed}

## Reading the table

The papers report, on this spiral, prediction NFE 1 083 → 676 with ERNODE (0.62x) and
prediction 1.3–2x faster with the local regularizers at equal accuracy, for no extra training
cost. The target set for glassbox is prediction NFE ≤ 0.75x vanilla at comparable loss, with
training time ≤ 1.1x.

Findings of the committed run (2026-11-28, main at 2bdc84c, pinned to one core; the text
below is not regenerated; losses and NFE are deterministic for a given binary and seed, the
times are not; numbers marked *probe* come from one-off runs outside the script). What
changed since the previous run: `glassbox train` now checks the model under the run's seed,
so a seed also draws the nets' initial weights (before, every seed started from seed 0's;
docs/training.md, "Reproducibility"). Seed 0 starts where it did, and its runs are unchanged
to the digits shown (vanilla 0.3904 at 2 648 NFE, local unbiased 300 0.1965 at 2 570); seeds
1, 2 and 10–12 start elsewhere. From their new weights vanilla fits the windows as well as
before (window loss 0.0035 on seeds 1 and 2, against 0.0032 and 0.0036) but its full-span
loss there is 0.64 and 0.59 (before 0.18 and 0.14): vanilla's mean went from 0.235 to 0.542,
above the 0.530 of predicting 0, and the 1.25x band of "comparable" widened with it. That
changed the verdict's letter more than its substance:

- **ERNODE 5 meets the target as registered; we do not read that as the papers' result.** On
  the tuning seeds ERNODE 5 was comparable (0.95x vanilla's full-span loss) at 0.73x NFE, the
  fewest of the comparable settings, so the rule took it. On the report seeds it gives
  prediction NFE 1 858 ± 17, 0.69x vanilla's 2 690, at 0.69x the full-span loss (0.376
  against 0.542), with training time 0.96x and training NFE 0.90x. But its window loss is
  0.0219, 5.9x vanilla's 0.0037, and it is wrong where the field is fast: over t ∈ [0, 5] its
  l1 is 1.17–1.26 per seed, against vanilla's 0.21–0.43 and predicting 0's 0.90; over
  t ∈ [12.5, 25] it is 0.05–0.15, against vanilla's 0.46–0.74 (*probe*: the report seeds'
  vanilla and ERNODE 5 runs trained again with this binary, same full-span losses as the
  table, and `glassbox predict` at the data's times). It turns about three times too slowly
  at the start (t = 0.025: y₂ = 0.12 against the data's 0.39, seed 0), where |y| is largest,
  and then follows the slow tail, which the full-span l1 weighs as much. It is cheaper than
  the truth (0.72x its 2 576 NFE) by being wrong at the start, and it passes because the
  registered measure is the full-span loss and vanilla's is dominated by phase error in the
  tail. ERNODE 5 was the closest setting in the previous run too (0.81x NFE, window loss
  0.0226) and failed then on the same measure (3.31x the full-span loss, against a vanilla at
  0.212).
- **The other terms do not move the NFE.** On the tuning seeds several of their settings were
  comparable, and the rule took the cheapest: SRNODE 0.03 (0.95x NFE there), local unbiased
  300 (0.99x), local biased 300 (0.98x). On the report seeds these give 0.97–0.98x NFE at
  0.63–0.79x the full-span loss and window losses of 0.0041–0.0042 (1.1x vanilla's).
- **The trade-off (tuning table) is still a switch, with ERNODE 5 the one point in between.**
  Every other swept setting with NFE ≤ 0.75x (ERNODE 7, 10 and `decay(100 -> 10)`, SRNODE 0.1
  and `decay(0.3 -> 0.03)`, local 30000) has a window loss of 0.035–0.054, 9–14x vanilla's
  0.0040 on these seeds, and a full-span loss of 0.59–2.78 (1.56–7.31x), above the 0.53 of
  predicting 0: an over-damped field, no longer a spiral (SRNODE 0.1 and its decay collapse
  on two of the three seeds, hence their spread: 1 140 ± 1 236 and 1 472 ± 995 NFE). Just
  below the switch the loss is worst: ERNODE 2–3 at 0.89–0.91x NFE for 1.68–2.06x the loss,
  the local terms at 10000 at 0.78–0.82x for 1.92–2.23x. ERNODE 5 sits between the two, at
  0.73x NFE with a window loss of 0.0230 (5.8x).
- **Why:** vanilla is about as cheap as the truth. The true field takes 2 576 NFE over the
  span at these tolerances, vanilla's fields 2 690 on average (1.04x). Tsit5's step size
  scales as (tol/C)^(1/5), C the local error constant along the trajectory, so 0.75x NFE needs
  C about 4.2x smaller (0.75⁻⁵); the trajectory that sets C is pinned by the data, so a field
  that much cheaper has to leave the data, as ERNODE 5 does at the start of the span. The
  papers' 1 083 → 676 suggests their unregularized field cost more than it had to, an excess
  the regularizer could remove; here there is no such excess.
- **Longer windows do not give a fair case.** With 40-observation windows vanilla diverges on
  one tuning seed in each set-up (seed 10 with 2 000 iterations: full-span loss 6.57 at
  13 826 NFE; seed 11 with 4 000: 6.16 at 15 818) and reaches 0.25–0.72 on the others, hence
  the means 2.54 ± 3.49 and 2.37 ± 3.28 at 6 544 and 6 976 NFE. Against those means ERNODE
  0.3 is at 0.47x and 0.38x the NFE and 0.23x and 0.31x the loss, but its own full-span
  losses (0.59 ± 0.27, 0.74 ± 0.14) are no better than predicting 0 and its NFE (3 044,
  2 654) is above vanilla's with short windows (2 532): the baseline is not a fitted model,
  which the protocol rules out.
- **Convergence:** doubling to 4 000 iterations lowers vanilla's window loss (0.0040 → 0.0029)
  but not its full-span loss (0.380 → 0.448) or NFE (2 532 → 2 776). The full-span loss is
  noisy between seeds (sd 0.13–0.20 at means 0.38–0.54): l1 over 25 time units turns a small
  error in the rotation speed into a phase error, and now that the seeds draw the initial
  weights that noise decides the comparison (ERNODE 0.3 with 4 000 iterations has 0.55x
  vanilla's full-span loss at the same window loss, 0.0030 against 0.0029). We kept the
  criterion as registered; read with the window loss, no swept setting cuts the NFE by a
  quarter at a comparable fit.
- **Training cost:** the training NFE is 0.90x vanilla's for ERNODE 5 (its cheaper field) and
  0.99–1.00x for the others (the load-free measure); the training time 0.96–1.07x (0.65–0.72 s
  a run, pinned to one core): the training-time part of the target holds.
- Prediction NFE is measured at the training tolerance (rtol 1e-7 / atol 1e-9), as the papers
  do. We do not reproduce the paper's vanilla 1 083 (dopri5 in torchdiffeq): here Tsit5 needs
  2 690 for vanilla and 2 576 for the truth (dopri5 2 738 for the truth), so the difference
  is not in the learned field's roughness alone (span, sampling or counting may differ; we
  did not run their code).
"""

if __name__ == "__main__":
    main()
