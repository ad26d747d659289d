"""The machinery the reproduction studies share: spiral.py (the ODE spiral, docs/results.md)
and spiral_sde.py (the spiral SDE, docs/results_sde.md).

Training one variant through `glassbox train` and reading its run.json report, `glassbox
solve --stats`, mean ± sd over seeds, the pre-registered target and tuning rule, and the
markdown tables. Python's standard library only.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BINARY = os.path.join(TARGET, "release", "glassbox")

# The pre-registered reading of "comparable loss" (each page states it above its table):
# the mean loss at most this many times vanilla's mean over the same seeds.
COMPARABLE = 1.25
# The target: prediction NFE and training time against vanilla's, ratio of the means.
NFE_TARGET = 0.75
TRAIN_TARGET = 1.1


def coefficient(text):
    """`a -> b` is a decay schedule, anything else a constant."""
    return f"decay({text.strip()})" if "->" in text else text.strip()


def objective(data_loss, term, coef):
    """The objective `data_loss + C * term` (`data_loss` alone for vanilla, term None)."""
    return data_loss if term is None else f"{data_loss} + {coefficient(coef)} * {term}"


def example_line(path, prefix):
    """The first line of the model file `path` that starts with `prefix`."""
    for line in open(path).read().splitlines():
        if line.startswith(prefix):
            return line
    sys.exit(f"{os.path.relpath(path, ROOT)} has no `{prefix}` line")


def slug(name):
    return re.sub(r"[^a-z0-9.]+", "_", name.lower()).strip("_")


def split(text):
    return [x.strip() for x in text.split(",") if x.strip()]


class Runner:
    """Trains model texts in a scratch directory `work` (which holds their data files)."""

    def __init__(self, binary, work):
        self.binary, self.work = binary, work

    def train(self, label, text, seed, iterations, name=None):
        """Train `text` (a model file's contents) and return run.json's report, plus
        `tail_loss` and `training_nfe`. `name` (default: the label) names the scratch files."""
        name = slug(name or label)
        model = os.path.join(self.work, f"{name}.gbx")
        with open(model, "w") as f:
            f.write(text)
        out = os.path.join(self.work, "runs", f"{name}_s{seed}")
        cmd = [self.binary, "train", model, "--seed", str(seed), "--out", out,
               "--iterations", str(iterations)]
        started = time.time()
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
        with open(os.path.join(out, "run.json")) as f:
            run = json.load(f)
        report = run["report"]
        # The data loss of the last tenth of the iterations: how well the training data are
        # fitted, less noisy than one iteration's.
        tail = run["metrics"][-max(1, len(run["metrics"]) // 10):]
        report["tail_loss"] = statistics.mean(m["loss"] for m in tail)
        # The forward NFE of the whole training run: what the training time would be on an
        # idle machine, without the load of a shared one.
        report["training_nfe"] = sum(m["nfe"] for m in run["metrics"])
        print(f"  {label:32s} seed {seed:2d}: loss {report['final_loss']:.4f}  "
              f"tail {report['tail_loss']:.4f}  nfe {report['prediction_nfe']:6d}  "
              f"train {report['training_time_s']:.1f} s  ({time.time() - started:.0f} s wall)",
              flush=True)
        shutil.rmtree(out, ignore_errors=True)
        return report

    def solve_stats(self, name, text, args):
        """`glassbox solve --stats` of the model text with `args`: {statistic: value text}."""
        model = os.path.join(self.work, f"{name}.gbx")
        with open(model, "w") as f:
            f.write(text)
        cmd = [self.binary, "solve", model, "--stats", "-o",
               os.path.join(self.work, f"{name}.csv")] + args
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
        stats = {}
        for line in (done.stdout + done.stderr).splitlines():
            parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            if len(parts) == 2:
                stats[parts[0]] = parts[1]
        if "nfe" not in stats:
            sys.exit(f"no `nfe` line in `glassbox solve --stats`:\n{done.stdout}")
        return stats


def mean(reps, key):
    return statistics.mean(r[key] for r in reps)


def mean_sd(reps, key, fmt):
    xs = [r[key] for r in reps]
    if len(xs) < 2:
        return fmt.format(xs[0])
    return (fmt + " ± " + fmt).format(statistics.mean(xs), statistics.stdev(xs))


def verdict(reps, base, losses, timed=True):
    """Which parts of the target a variant misses (the ratios of the means), or `met`.
    `losses`: (key, label) of each loss that must be comparable."""
    missed = []
    nfe = mean(reps, "prediction_nfe") / mean(base, "prediction_nfe")
    if nfe > NFE_TARGET:
        missed.append(f"NFE {nfe:.2f}x")
    for key, label in losses:
        loss = mean(reps, key) / mean(base, key)
        if loss > COMPARABLE:
            missed.append(f"{label} {loss:.2f}x")
    if timed:
        train = mean(reps, "training_time_s") / mean(base, "training_time_s")
        if train > TRAIN_TARGET:
            missed.append(f"training {train:.2f}x")
    return "met" if not missed else "no: " + ", ".join(missed)


def comparable(reps, base, losses):
    return all(mean(reps, key) <= COMPARABLE * mean(base, key) for key, _ in losses)


def choose(tried, base, losses):
    """The tuning rule, fixed before each study: of the coefficients whose mean losses (every
    one of `losses`) on the tuning seeds are comparable to vanilla's there, the one with the
    fewest prediction NFE; if none is comparable, the one with the lowest first loss."""
    ok = [(c, r) for c, r in tried if comparable(r, base, losses)]
    if ok:
        return min(ok, key=lambda cr: mean(cr[1], "prediction_nfe"))[0]
    return min(tried, key=lambda cr: mean(cr[1], losses[0][0]))[0]


FORMATS = {"final_loss": "{:.4f}", "tail_loss": "{:.4f}", "prediction_nfe": "{:.0f}",
           "prediction_time_ms": "{:.3f}", "training_time_s": "{:.2f}"}


def cells(reps, base, keys):
    """Table cells: `key` as mean ± sd over the seeds, `key/` as the ratio of its mean to
    `base`'s."""
    out = []
    for key in keys:
        if key.endswith("/"):
            out.append(f"{mean(reps, key[:-1]) / mean(base, key[:-1]):.2f}x")
        else:
            out.append(mean_sd(reps, key, FORMATS[key]))
    return out


def markdown(header, rows):
    """A markdown table: the header's cells, then each row's."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def variants_table(rows, columns, losses):
    """The report seeds: one row per (name, objective, reports), the first vanilla;
    `columns`: (header, key) as `cells` reads keys; then whether the variant meets the target."""
    base = rows[0][2]
    keys = [k for _, k in columns]
    body = [[name] + cells(reps, base, keys) + ["—" if reps is base else verdict(reps, base, losses)]
            for name, _, reps in rows]
    return markdown(["variant"] + [h for h, _ in columns] + ["target"], body)


def sweep_table(base, sweep, columns, losses):
    """The tuning seeds: vanilla, then every (term, coefficient, reports) of the sweep."""
    keys = [k for _, k in columns]
    body = []
    for term, coef, reps in [("(vanilla)", "—", base)] + sweep:
        target = "—" if reps is base else verdict(reps, base, losses, timed=False)
        body.append([f"`{term}`", f"`{coefficient(coef)}`"] + cells(reps, base, keys) + [target])
    header = (["objective term", "coefficient"] + [h for h, _ in columns]
              + [f"NFE ≤ {NFE_TARGET}x at comparable loss"])
    return markdown(header, body)


def per_seed_table(rows, seeds, tail):
    """Every report-seed run; `tail`: the header of the tail loss's column."""
    columns = [("final loss", "final_loss", "{:.4f}"), (tail, "tail_loss", "{:.4f}"),
               ("prediction NFE", "prediction_nfe", "{}"),
               ("prediction ms", "prediction_time_ms", "{:.3f}"),
               ("training s", "training_time_s", "{:.1f}")]
    body = [[name, str(s)] + [fmt.format(r[key]) for _, key, fmt in columns]
            for name, _, reps in rows for s, r in zip(seeds, reps)]
    return markdown(["variant", "seed"] + [h for h, _, _ in columns], body)


def objectives(rows):
    """The variants' objectives, a markdown list."""
    return "\n".join(f"- {name}: `minimize {obj}`" for name, obj, _ in rows)


def run_variants(runner, rows, seeds, train):
    """Train every (name, objective, reports) row on every seed, seed-major, so that a change
    of the machine's load during the study falls on every variant alike; `train(name,
    objective, seed)` returns the report."""
    for s in seeds:
        for name, obj, reps in rows:
            reps.append(train(name, obj, s))


def load_text(load):
    return " → ".join(f"{x:.1f}" for x in load)


def tune(variants, lists, coefs, seeds, train, objective, base, losses):
    """The sweep on the tuning seeds: every coefficient of `lists[key]` for each variant
    (name, key, term); `train(label, objective, seed)` returns a report, `objective(term,
    coef)` the objective. An `auto` entry of `coefs` becomes the tuning rule's choice. Returns
    the sweep's (term, coefficient, reports)."""
    sweep = []
    for name, key, term in variants:
        tried = [(c, [train(f"{name} {c}", objective(term, c), s) for s in seeds])
                 for c in split(lists[key])]
        sweep += [(term, c, reps) for c, reps in tried]
        if coefs[key] == "auto":
            coefs[key] = choose(tried, base, losses)
    return sweep
