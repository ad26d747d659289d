#!/usr/bin/env python3
"""The spiral SDE study behind docs/results_sde.md.

The papers' spiral SDE (examples/spiral_sde.gbx) trained five ways — vanilla `moments`,
ERNODE (global error estimate), SRNODE (global stiffness estimate), and the local error
estimate with unbiased and biased sampling — on the report seeds, all else equal, with the
protocol of the ODE study (spiral.py, docs/results.md): each coefficient is chosen by the
tuning rule on the tuning seeds (`--tune-seeds`) from the `--sweep-*` lists, never on the
report seeds. For every run it reads the report that `glassbox train` writes to run.json
(the mean path's loss, training time, prediction NFE and time) and the per-iteration moments
loss; it also counts the true SDE's steps with `glassbox solve --stats`.

Usage (from the repository root; Python's standard library only):

    cargo build --release
    python3 benches/results/spiral_sde.py [--iterations N] [--seeds 0,1,2] [--ernode C]
        [--srnode C] [--local C] [--local-biased C] [--tune-seeds 10,11,12]
        [--sweep-ernode LIST] [--sweep-srnode LIST] [--sweep-local LIST]
        [--out docs/results_sde.md] [--results benches/results/spiral_sde.json]
    python3 benches/results/spiral_sde.py --render    # the page again from the JSON

A run writes the measured numbers to `--results` and the page from them; `--render` only
rewrites the page (after an edit of the template).

A coefficient C is a constant (`5`) or a decay schedule (`'100 -> 10'`). The binary is
$CARGO_TARGET_DIR/release/glassbox when that is set, else target/release/glassbox
(`--binary` overrides). Pin it to one core for comparable times (`taskset -c 1 python3 ...`).
"""

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import study
from study import BINARY, COMPARABLE, NFE_TARGET, ROOT, TRAIN_TARGET, split

EXAMPLE = os.path.join(ROOT, "examples", "spiral_sde.gbx")
DATA = os.path.join(ROOT, "examples", "data", "spiral_sde.csv")
SAMPLES = 100
# The measured numbers behind the page: `--render` rewrites the page from them.
RESULTS = os.path.join(ROOT, "benches", "results", "spiral_sde.json")
DATA_LOSS = f"moments(u, paths; samples = {SAMPLES})"

# The regularized variants: (name, slug, term). Vanilla is the moments loss alone; each adds
# `C * term` with its coefficient C, everything else the example's model file.
VARIANTS = [
    ("ERNODE", "ernode", "error_estimate"),
    ("SRNODE", "srnode", "stiffness"),
    ("local, unbiased", "local_unbiased", "error_estimate(sample = unbiased)"),
    ("local, biased", "local_biased", "error_estimate(sample = biased)"),
]
# Both losses must be comparable: the report's final loss compares mean paths only, so a
# model that lost its noise could pass it; the moments loss (last tenth of the iterations)
# holds the variance too. If none is comparable the rule takes the lowest final loss.
LOSSES = [("final_loss", "loss"), ("tail_loss", "moments")]

# The SDE the data were generated from (examples/gen_data.rs): du = (u^3) A dt + 0.2 u dW,
# diagonal noise, written out per component so `glassbox solve` can count its steps.
TRUTH = """model spiral_sde_truth
state a = 2.0
state b = 0.0
da = (-0.1 * a^3 - 2.0 * b^3) dt + {s} * a * dW
db = (2.0 * a^3 - 0.1 * b^3) dt + {s} * b * dW
"""
# sosri's evaluations: 3 drift + 3 diffusion per attempt (stage 0 reuses f, g at the step's
# start), and f, g at each accepted step's end (solve/sde/step.rs): NFE = 8·accepted +
# 6·rejected per path.
NFE_PER_STEP = 8


def objective(term, coef):
    return study.objective(DATA_LOSS, term, coef)


def model_text(objective):
    lines = open(EXAMPLE).read().splitlines()
    if not any(line.startswith("minimize ") for line in lines):
        sys.exit("examples/spiral_sde.gbx has no `minimize` line")
    lines = ["minimize " + objective if line.startswith("minimize ") else line
             for line in lines]
    return "\n".join(lines) + "\n"


def data_times():
    with open(DATA) as f:
        return sorted({float(r["t"]) for r in csv.DictReader(f)})


def scale():
    """For scale, from the data alone: the final loss of predicting 0 (what a collapsed field
    scores), and the moments loss of a model with the data's mean path and no noise (its
    variance part, the mean of the data's squared variances)."""
    with open(DATA) as f:
        rows = list(csv.DictReader(f))
    mean, var = [], []
    for t in data_times():
        for c in ("u1", "u2"):
            xs = [float(r[c]) for r in rows if float(r["t"]) == t]
            mean.append(statistics.mean(xs))
            var.append(statistics.variance(xs))
    return statistics.mean(m * m for m in mean), statistics.mean(v * v for v in var)


def truth_stats(runner, seeds):
    """The true SDE (and its drift alone, and a zero field: the floor) at the example's method
    and tolerances, `SAMPLES` paths per seed: saved at the data's times (as training and
    prediction save them) and at the end only. Rows: (field, saves, NFE per path, accepted and
    rejected steps per path), means over the seeds."""
    solve = study.example_line(EXAMPLE, "solve ")
    ts = data_times()
    grids = [(f"the data's {len(ts)} times", f"{ts[0]:g}:{ts[-1]:g}:{len(ts)}"),
             ("the end only", f"{ts[0]:g}:{ts[-1]:g}:2")]
    fields = [("true SDE", "0.2"), ("true drift, no noise", "0")]
    rows = []
    for fname, s in fields:
        for gname, at in grids:
            rows.append((fname, gname, TRUTH.format(s=s) + solve + "\n", at))
    zero = TRUTH.format(s="0").replace("(-0.1 * a^3 - 2.0 * b^3)", "0 * a")
    zero = zero.replace("(2.0 * a^3 - 0.1 * b^3)", "0 * b")
    rows.append(("zero field (one step per interval)", grids[0][0], zero + solve + "\n",
                 grids[0][1]))
    out = []
    for fname, gname, text, at in rows:
        nfe, acc, rej = [], [], []
        for seed in seeds:
            st = runner.solve_stats("truth", text, ["--at", at, "--paths", str(SAMPLES),
                                                    "--seed", str(seed)])
            nfe.append(int(st["nfe"].split()[0]) / SAMPLES)
            steps = st["steps"].replace(",", "").split()
            acc.append(int(steps[0]) / SAMPLES)
            rej.append(int(steps[2]) / SAMPLES)
        out.append((fname, gname, statistics.mean(nfe), statistics.mean(acc),
                    statistics.mean(rej)))
    return out


def truth_table(truth):
    body = [[f, g, f"{n * SAMPLES:.0f}", f"{n:.1f}", f"{a:.1f}", f"{r:.2f}"]
            for f, g, n, a, r in truth]
    return study.markdown(["field", "saved at", f"NFE ({SAMPLES} paths)", "NFE per path",
                           "accepted steps per path", "rejected steps per path"], body)


def measure(args):
    """Run the study: the truth's steps, the sweep on the tuning seeds, the report seeds."""
    seeds = [int(s) for s in split(args.seeds)]
    tune_seeds = [int(s) for s in split(args.tune_seeds)]
    coefs = {"ernode": args.ernode, "srnode": args.srnode, "local_unbiased": args.local,
             "local_biased": args.local_biased}
    work = tempfile.mkdtemp(prefix="glassbox-spiral-sde-study-")
    os.makedirs(os.path.join(work, "data"))
    shutil.copy(DATA, os.path.join(work, "data", "spiral_sde.csv"))
    runner = study.Runner(args.binary, work)
    load = [os.getloadavg()[0]]
    started = time.time()

    def train(label, obj, seed):
        return runner.train(label, model_text(obj), seed, args.iterations)

    try:
        truth = truth_stats(runner, seeds)
        print("tuning seeds:", flush=True)
        base = [train("vanilla", DATA_LOSS, s) for s in tune_seeds]
        lists = {"ernode": args.sweep_ernode, "srnode": args.sweep_srnode,
                 "local_unbiased": args.sweep_local, "local_biased": args.sweep_local}
        sweep = study.tune(VARIANTS, lists, coefs, tune_seeds, train, objective, base, LOSSES)
        print("report seeds:", flush=True)
        rows = [("vanilla", DATA_LOSS, [])]
        rows += [(name, objective(term, coefs[key]), []) for name, key, term in VARIANTS]
        study.run_variants(runner, rows, seeds, train)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load.append(os.getloadavg()[0])
    return {"args": dict(vars(args)), "truth": truth, "base": base, "sweep": sweep, "rows": rows,
            "load": load, "minutes": (time.time() - started) / 60,
            "date": time.strftime("%Y-%m-%d")}


def render(res):
    """docs/results_sde.md from the measured results."""
    args = argparse.Namespace(**res["args"])
    truth, base, sweep, rows = res["truth"], res["base"], res["sweep"], res["rows"]
    seeds = [int(s) for s in split(args.seeds)]
    for _, _, reps in rows + [(None, None, base)] + sweep:
        for r in reps:
            r["nfe_per_path"] = r["prediction_nfe"] / SAMPLES
    study.FORMATS["nfe_per_path"] = "{:.1f}"
    table = study.variants_table(rows, [
        ("final loss (mse, mean path)", "final_loss"), ("loss vs vanilla", "final_loss/"),
        ("moments loss", "tail_loss"), ("moments vs vanilla", "tail_loss/"),
        ("prediction NFE", "prediction_nfe"), ("NFE vs vanilla", "prediction_nfe/"),
        ("prediction time (ms)", "prediction_time_ms"),
        ("prediction vs vanilla", "prediction_time_ms/"),
        ("training time (s)", "training_time_s"), ("training vs vanilla", "training_time_s/"),
        ("training NFE vs vanilla", "training_nfe/")], LOSSES)
    sweep_md = study.sweep_table(base, sweep, [
        ("final loss", "final_loss"), ("loss vs vanilla", "final_loss/"),
        ("moments loss", "tail_loss"), ("moments vs vanilla", "tail_loss/"),
        ("prediction NFE", "prediction_nfe"), ("NFE per path", "nfe_per_path"),
        ("NFE vs vanilla", "prediction_nfe/"), ("training NFE vs vanilla", "training_nfe/")],
        LOSSES)
    per_seed = study.per_seed_table(rows, seeds, "moments loss")
    flags = (f"--iterations {args.iterations} --seeds {args.seeds} --ernode '{args.ernode}' "
             f"--srnode '{args.srnode}' --local '{args.local}' "
             f"--local-biased '{args.local_biased}' --tune-seeds {args.tune_seeds} "
             f"--sweep-ernode '{args.sweep_ernode}' --sweep-srnode '{args.sweep_srnode}' "
             f"--sweep-local '{args.sweep_local}'")
    runs = len(seeds) * len(rows) + len(split(args.tune_seeds)) * (1 + len(sweep))
    floor = truth[-1][2] * SAMPLES
    vanilla_nfe = study.mean(rows[0][2], "prediction_nfe")
    zero, noiseless = scale()
    return TEMPLATE.format(
        zero=f"{zero:.3f}", noiseless=f"{noiseless:.3f}",
        iterations=args.iterations, seeds=args.seeds, tune_seeds=args.tune_seeds,
        samples=SAMPLES, times=len(data_times()), comparable=COMPARABLE,
        nfe_target=NFE_TARGET, train_target=TRAIN_TARGET, table=table, per_seed=per_seed,
        objectives=study.objectives(rows), sweep=sweep_md, truth=truth_table(truth), flags=flags,
        truth_ratio=f"{truth[0][2] * SAMPLES / vanilla_nfe:.2f}",
        floor=f"{floor:.0f}", floor_ratio=f"{floor / vanilla_nfe:.2f}",
        nfe_per_step=NFE_PER_STEP, runs=runs, minutes=f"{res['minutes']:.1f}",
        load=study.load_text(res["load"]), date=res["date"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=250)
    ap.add_argument("--seeds", default="0,1,2", help="the report seeds")
    # `auto`: the tuning rule (`study.choose`) picks the coefficient from the sweep.
    ap.add_argument("--ernode", default="auto", help="ERNODE's coefficient, or `auto`")
    ap.add_argument("--srnode", default="auto", help="SRNODE's coefficient, or `auto`")
    ap.add_argument("--local", default="auto", help="the local unbiased term's coefficient")
    ap.add_argument("--local-biased", default="auto",
                    help="the local biased term's coefficient")
    ap.add_argument("--tune-seeds", default="10,11,12", help="seeds of the coefficient sweep")
    ap.add_argument("--sweep-ernode", default="0.3,1,2,3,3 -> 0.1")
    ap.add_argument("--sweep-srnode", default="0.01,0.03,0.1,0.3,0.3 -> 0.01")
    ap.add_argument("--sweep-local", default="1000,3000,10000,30000",
                    help="coefficients of both local terms in the sweep")
    ap.add_argument("--binary", default=BINARY)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "results_sde.md"))
    ap.add_argument("--results", default=RESULTS,
                    help="the measured numbers, written by a run (JSON)")
    ap.add_argument("--render", action="store_true",
                    help="train nothing: rewrite --out from --results (after a template edit)")
    args = ap.parse_args()
    if args.render:
        with open(args.results) as f:
            res = json.load(f)
    else:
        if not os.path.exists(args.binary):
            sys.exit(f"{args.binary} not found: build the release binary first "
                     "(cargo build --release)")
        res = measure(args)
        # Only the study's own flags: the paths differ between machines.
        for key in ("binary", "out", "results", "render"):
            res["args"].pop(key)
        with open(args.results, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
        print(f"wrote {args.results}")
    with open(args.out, "w") as f:
        f.write(render(res))
    print(f"wrote {args.out}")


TEMPLATE = """# Results: the spiral SDE, five ways

<!-- Written by benches/results/spiral_sde.py; edit the script's template, not this file. -->

The papers' spiral SDE (`examples/spiral_sde.gbx`: drift a 2-50-2 tanh MLP on u³, diagonal
noise a linear 2→2 map of u, sosri at rtol = atol = 0.3 on [0, 1], `moments` loss over
{samples} model paths per iteration against 100 data paths observed at {times} times, Adam lr
1e-2) trained {iterations} iterations with seeds {seeds}, five objectives, everything else
equal. Mean ± standard deviation over the seeds; ratios are of the means against vanilla. The
ODE spiral's study, with the same protocol, is [docs/results.md](results.md).

**The target and the protocol, fixed before the report seeds were run:** prediction NFE ≤
{nfe_target}x vanilla's, training time ≤ {train_target}x, and *comparable loss*, read as: both
the mean final loss and the mean moments loss at most {comparable}x vanilla's means over the
same seeds (ratios of the means, the last column). Each regularizer's coefficient is chosen
by a rule on the tuning seeds {tune_seeds} (section "Tuning" below), never on the report seeds
{seeds}: of the swept coefficients whose mean losses there are comparable to vanilla's, the one
with the fewest prediction NFE; if none is comparable, the one with the lowest final loss.
The sweep lists were picked from a few exploratory runs on seed 10 to bracket the switch from
"no effect" to "over-damped".

{table}

- **final loss**: mse between the model's mean path and the data's mean path at the data's
  {times} times (`glassbox train`'s report), the model's mean over {samples} paths of the run
  seed's iteration-0 Brownian seed. It sees the mean only, so a model that lost its noise
  could keep it: the target needs the moments loss comparable too. For scale: predicting 0
  scores {zero}.
- **moments loss**: the training objective's data part, `mse(mean) + mse(variance)` over the
  data's times and both components on each iteration's fresh {samples} paths, mean of the last
  tenth of the iterations (regularizer excluded). A model with the data's exact mean path and
  no noise would score {noiseless}.
- **prediction NFE / time**: the same {samples}-path solve (NFE summed over the paths) and its
  median wall time over 7 solves, at the training tolerances. Training time is the sum of the
  iterations' wall times, the study pinned to one core (load average {load} over the study,
  2 cores shared with other work); the runs alternate variants seed by seed, so a change of
  load falls on all of them alike. **training NFE**: the forward evaluations summed over the
  iterations, the load-free part of the training cost.
- **What a seed varies**: the Brownian paths of every iteration (`brownian_seed(seed, i)`),
  hence also the prediction's paths, and the local terms' draws (`LOCAL_STREAM + i`). There
  are no batches (every iteration matches all 100 data paths), and the initial weights are
  the checker's, seed 0, the same for every run (`glassbox train` checks the file with
  `check_source`, seed 0; docs/training.md, "Reproducibility"). Checked: with `--iterations 0`
  seeds 0 and 7 write byte-identical weights and different final losses (the prediction's
  paths). So the spread between seeds is the Brownian paths' alone.

Objectives:
{objectives}

Regenerate ({runs} runs; the last, {date}, took {minutes} minutes, pinned to one core):

```sh
cargo build --release
taskset -c 1 python3 benches/results/spiral_sde.py {flags}
```

The run also writes the measured numbers to `benches/results/spiral_sde.json`;
`python3 benches/results/spiral_sde.py --render` rewrites this page from them without
training (after an edit of the script's template).

## Where the steps come from: the true SDE

`glassbox solve --stats` of the SDE that generated the data (`du = (u³) A dt + 0.2 u dW`) at
the example's method and tolerances, {samples} paths, means over the seeds {seeds} (the
solve's seeds); the data's times as `--at` (equally spaced, like the data's). Every save time
ends a step (nothing is interpolated), and sosri costs {nfe_per_step} evaluations per accepted
step (6 per rejected one):

{truth}

The true SDE takes {truth_ratio}x vanilla's mean prediction NFE; a field whose every step
spans a whole observation interval would take {floor} NFE, {floor_ratio}x vanilla's (the zero
field's row: the floor the save times set).

## Tuning: regularizer strength on seeds {tune_seeds}

Every regularizer at every coefficient of the sweep, on the tuning seeds, with vanilla on the
same seeds as the reference (ratios against it; the last column applies the target's NFE and
loss criteria to these seeds):

{sweep}

## Per seed

{per_seed}

## Reading the table

The target for glassbox (issue #5): prediction NFE ≤ 0.75x vanilla at comparable loss, with
training time ≤ 1.1x. Findings of the committed run (2026-11-28; the text below is not
regenerated; losses and NFE are deterministic for a given binary and seed, the times are
not; numbers marked *probe* come from one-off runs outside the script).

- **The target is not met on the SDE either, and no swept coefficient meets it.** On the
  tuning seeds every term was comparable at its weaker coefficients, and the rule took ERNODE
  0.3 (0.97x NFE there), SRNODE 0.01 (0.98x), local unbiased 3000 (0.99x) and local biased
  3000 (0.98x). On the report seeds these give prediction NFE 0.99–1.01x vanilla's, final loss
  1.06–1.14x, moments loss 1.02–1.06x. Training costs nothing extra: training time 0.96–0.99x
  and training NFE 0.99x (the global terms are differentiated in the adjoint's sweep, the
  local ones take one extra step per iteration); the training-time part of the target holds.
- **The trade-off (tuning table) is a switch, as on the ODE spiral.** The NFE falls below
  0.9x only where the fit is gone: ERNODE 3 and SRNODE 0.1 reach 0.76x at 13.3x and 2.9x the
  final loss (8.9x and 2.0x the moments loss), SRNODE 0.3 0.73x at 26x; both local terms go
  from ≤ 0.98x NFE at 10000 (loss 2–3.4x) to 0.63x at 30000, where the model has collapsed
  (final loss 1.62–1.64, predicting 0 scores 1.52; 168 NFE per path, two steps above the
  floor). Just below the switch the loss is already 1.7–4.2x for 0.92–0.98x NFE (ERNODE
  1–2, SRNODE 0.03, the local terms at 10000). The decay schedules (ERNODE 3 → 0.1, SRNODE
  0.3 → 0.01) end like their weak coefficients: 0.96–0.98x NFE at 1.35–1.40x loss. The local
  terms act like ERNODE at ~10⁴ times its coefficient (3000 ~ 0.3, 10000 ~ 1) because the step
  they penalise has the automatic *initial* step size: its `E·|h|` was ~5·10⁻⁶, against ~0.3
  for a path's `R_E` summed over its ~33 steps (*probe*, seed 10: the `reg` of local 3000 and
  of ERNODE 0.1 over the last iterations).
- **Why: vanilla is at the truth's cost, and half of that cost is the observation times, which
  no regularizer sees.** The true SDE takes 27 349 NFE for 100 paths (34.2 steps per path, no
  rejections), vanilla 26 296 (263 per path, about 33 steps): the regularizers have no excess
  to remove, as on the ODE. The noise is not what sets the steps: without it the true drift
  takes 30.0 steps (16.0 with the end only), with it 34.2 (16.8), and the noise causes all the
  rejections, 0.9 per path and none with the observation grid: σ = 0.2 is small against
  rtol = atol = 0.3. The observation times are: saved at the end only, the true SDE takes 16.8
  steps per path; at 6, 11 and 20 equally spaced times 20.8, 24.7 and 34.2 (*probe* for 6 and
  11, seeds 0–2): about one extra step per observation interval, whatever its length. Every
  save time ends a step, and the SDE driver sets the next step from the shortened one
  (`h = h_try · fac`, growth capped at 10x, `src/solve/sde/integrate.rs`), so a step cut short
  to land on a save time shortens the next one too, and an interval after a landing often
  takes two steps. Those short steps carry little
  `E·|h|`, so `R_E` and `R_S` hardly see them; a regularizer can remove them only by making
  the field's error small enough that the step outgrows an interval right after a landing,
  which the tuning table shows costs the fit. The floor of one step per interval is 15 200
  NFE (0.58x vanilla's).
- **A solver change meets the target where the regularizers do not** (*probe*, not in this
  tree): with the driver keeping the step it had planned when a step was shortened to land on
  a save time (`h = max(h_try · fac, h_planned)`), the true SDE takes 24.5 steps per path at
  the 20 times (19 643 NFE, 0.72x; unchanged at the end only), and vanilla trained and
  predicted with that binary on seeds 0–2 reaches prediction NFE 19 290 (0.73x the committed
  vanilla's 26 296) at final loss 0.0280 (1.03x) and moments loss 0.0484 (1.00x), with
  training NFE 0.83x (8.5 s against 10.7 s a run, not paired). It changes every adaptive SDE
  solve with save times, so it is a proposal for the solver's owner, not part of this study.
- Prediction NFE is that of the 100-path mean the report predicts, at the training
  tolerances. The prediction times vary by ±4 ms between seeds of one variant (0.86–1.00x),
  within the machine's noise.
"""

if __name__ == "__main__":
    main()
