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
(`--binary` overrides).
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
        minutes=f"{(time.time() - started) / 60:.0f}", cores=os.cpu_count(), load=study.load_text(load),
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
  wall times, on a machine shared with other work (load average {load} over the study); the
  runs alternate variants seed by seed, so a change of load falls on all of them alike.
  **training NFE**: the forward evaluations summed over the iterations, the load-free part of
  the training cost.
- **the true field** `dy/dt = (y³) A` that generated the data takes **{truth} NFE** over the
  same span at the same method and tolerances ({truth_ratio}x vanilla's mean).

Objectives:
{objectives}

Regenerate ({runs} runs; the last, {date}, took {minutes} minutes on {cores} cores):

```sh
cargo build --release
python3 benches/results/spiral.py {flags}
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

Findings of the committed run (2026-11-28; the text below is not regenerated; losses and NFE
are deterministic for a given binary and seed, the times are not). This run used the binary
with glassbox's own tanh and `x^3 = (x·x)·x` (docs/benchmarks.md): vanilla's numbers are the
same as with libm's tanh to the digits shown, the regularized runs moved (a regularizer
amplifies last-bit differences over 2 000 iterations), and the tuning rule now picks ERNODE
`decay(10 -> 0.01)` where it picked 0.3 before; the conclusions did not change.

- **The target is not met, and on this set-up no coefficient meets it.** On the tuning
  seeds 10–12 only local biased 1000 was comparable (0.96x loss, at 1.00x NFE); for the
  other terms none was, so the rule took the lowest-loss setting: ERNODE `decay(10 -> 0.01)`
  (1.40x), SRNODE 0.003 (1.38x), local unbiased 300 (1.34x). On the report seeds these give
  prediction NFE 1.00–1.03x vanilla's at loss 1.23–2.09x.
- **The trade-off (tuning table):** every swept setting with NFE ≤ 0.75x (ERNODE 7, 10 and
  `decay(100 -> 10)`, SRNODE 0.1 and `decay(0.3 -> 0.03)`, local 30000) has a window loss of
  0.045–0.053, 12–14x vanilla's 0.0037, and a full-span loss of 0.58–0.83, at or above the
  0.53 of predicting 0: the field is over-damped and no longer a spiral. The closest point in
  between, ERNODE 5, reaches 0.81x NFE with 6x the window loss and 3.31x the full-span loss.
  Just below the switch the full-span loss is worst (ERNODE 3: 0.96, local 10000: 0.83–0.89):
  a partly damped field that turns at the wrong speed. The response to the coefficient is a
  switch, not a slope.
- **Why:** vanilla is already as cheap as the truth. The true field takes 2 576 NFE over the
  span at these tolerances, vanilla's fields 2 538 on average (0.99x). Tsit5's step size
  scales as (tol/C)^(1/5), C the local error constant along the trajectory, so 0.75x NFE needs
  C about 4.2x smaller (0.75⁻⁵); the trajectory that sets C is pinned by the data, so a field
  that much cheaper has to leave the data. The papers' 1 083 → 676 suggests their
  unregularized field cost more than it had to, an excess the regularizer could remove; here
  there is no such excess.
- **Longer windows (the previous analysis's suspect) do not give a fair case.** With
  40-observation windows vanilla does not converge: full-span loss 0.60 ± 0.13 (2 000
  iterations) and 0.67 ± 0.19 (4 000), worse than predicting 0, at prediction NFE 3 322 ± 1 021
  and 3 826 ± 1 291 (1.3–1.5x the truth's). There ERNODE 0.3 does meet the NFE and loss parts
  of the target against vanilla of the same set-up with 4 000 iterations (0.68x NFE at 0.93x
  loss; 0.83x at 0.73x with 2 000) by pulling a rough field back towards the truth's cost,
  which is the papers' regime; but the baseline is far from the data, which the protocol rules
  out, and the regularized models (0.44 and 0.62) are worse than vanilla with short windows
  (0.21 on the same seeds). A one-off probe with the previous binary (seed 11, 8 000
  iterations, L = 40): vanilla 0.86 at NFE 2 798, ERNODE 0.3 0.35 at 2 306; vanilla is still
  not there.
- **The reported set-up has converged:** doubling to 4 000 iterations lowers vanilla's window
  loss (0.0037 → 0.0027) but not its full-span loss (0.212 → 0.249) or NFE (2 482 → 2 468).
  The full-span loss is noisy between seeds (sd 0.08–0.14 at means near 0.22): l1 over 25
  time units turns a small error in the rotation speed into a phase error, so a 1.25x band on
  three seeds is within that noise. We kept the criterion as registered.
- **Training cost:** with these coefficients the training NFE is 0.95–1.00x vanilla's (the
  load-free measure) and the training time 0.89–1.01x (load average ~3 on 2 cores): the
  training-time part of the target holds.
- Prediction NFE is measured at the training tolerance (rtol 1e-7 / atol 1e-9), as the papers
  do. We do not reproduce the paper's vanilla 1 083 (dopri5 in torchdiffeq): here Tsit5 needs
  ~2 500 for vanilla and for the truth alike (dopri5 2 738 for the truth), so the difference is
  not in the learned field's roughness alone (span, sampling or counting may differ; we did
  not run their code).
"""

if __name__ == "__main__":
    main()
