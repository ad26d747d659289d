"""Runs every available peer, collects their JSON rows into results/peers.json, writes the
Markdown fragment results/peers.md and the work-precision plots results/wp_lorenz.png and
results/wp_robertson.png.

Usage (from anywhere): benches/peers/.venv/bin/python benches/peers/run.py [--quick] [--repeat N]
    [--rounds K] [--skip TOOL ...] [--only GROUP ...]
Every tool runs on one CPU (`--cpu N`, default the first; `--no-pin` to let the scheduler
place them), in K interleaved rounds (default 5), each round in a rotated order: the first
round runs every row, the later ones the headline rows only. A row's time is the median of its
rounds' medians, and the table of per-round ratios shows how steady each headline ratio was.
This machine has a slow mode lasting seconds to tens of seconds in which any process runs up
to 1.6x slower; one tool's single pass can fall into it while its peer's does not.
With --only (groups: ode, spiral, sde, train) only those rows run, diffsol (whose binary runs
every row) is skipped, and the table is printed, not written over results/.
A missing peer (torch not installed, diffsol not built) is skipped with a note, never an error.
"""

import argparse
import datetime
import importlib.util
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys

import common as c
import reference

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPO = HERE.parent.parent
DIFFSOL_BIN = HERE / "diffsol" / "target" / "release" / "diffsol-bench"

# The headline row of each problem (BENCHMARKS.md); the sweeps add more tolerances.
HEADLINE = {
    "lorenz": "Lorenz, t in [0, 100], rtol 1e-6, atol 1e-9",
    "robertson": "Robertson, t in [0, 1e5], rtol 1e-6, atol 1e-10",
    "spiral_forward": "Spiral MLP forward, 1 000 save points, rtol 1e-7, atol 1e-9",
    "sde_forward": "Neural SDE, Euler-Maruyama, 1 000 steps, batch 20, forward",
    "sde_grad": "Neural SDE, forward + gradient",
    "spiral_train": "Spiral training, ms per iteration",
}


# CARGO_TARGET_DIR, when set, is where `cargo build --release` put the binary.
GLASSBOX_BIN = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release" / "glassbox"
MODELS = HERE / "models"


def glassbox_solve(flags, repeat, quiet=False):
    """One `glassbox solve ... --repeat N -o out.json` run; returns the parsed JSON or None."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "glassbox.tmp.json"
    cmd = [str(GLASSBOX_BIN), "solve", *[str(f) for f in flags], "--repeat", str(repeat), "-o", str(out)]
    if not quiet:
        print(f"[run] glassbox: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"[run] glassbox FAILED:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    data = json.loads(out.read_text())
    out.unlink()
    return data


def glassbox_row(data, method, problem, t_end, rtol, atol, sde=False):
    timing, stats = data["timing"], data["stats"]
    # SDE output is u[path][time][state]: paths draw their own noise, so no final value is scored.
    final = None if sde else data["u"][-1]
    return {"tool": "glassbox", "method": method, "problem": problem, "t_end": t_end,
            "rtol": rtol, "atol": atol, "median_ms": timing["median_solve_ms"],
            "runs": timing["repeat"], "steps": stats.get("accepted"), "nfe": stats.get("nfe"),
            "compile_ms": timing["compile_ms"], "final": final}


def glassbox_rows(args, repeat):
    """glassbox's rows, through the release binary's `solve` command on the model files in
    models/ (make_models.py writes them from spiral_weights.json), timed the same way as the
    peers: the median of `repeat` solves after compiling once (compile time reported apart)."""
    if not GLASSBOX_BIN.exists():
        return [], ["glassbox: target/release/glassbox missing (cargo build --release)"]
    rows, skipped = [], []

    def add(model, method, problem, t_end, rtol, atol, extra=()):
        flags = [MODELS / model, "--method", method, "--rtol", rtol, "--atol", atol, *extra]
        data = glassbox_solve(flags, repeat)
        if data is None:
            skipped.append(f"glassbox {problem} {method} rtol {rtol}: failed")
        else:
            rows.append(glassbox_row(data, method, problem, t_end, rtol, atol))

    sweep = c.QUICK_SWEEP if args.quick or args.headline else c.SWEEP
    if c.wants(args, "ode"):
        add("lorenz.gbx", "tsit5", "lorenz", c.LORENZ_T_END, 1e-6, 1e-9)
        for rtol in sweep:
            add("lorenz.gbx", "tsit5", "lorenz_t10", c.LORENZ_WP_T_END, rtol, c.lorenz_atol(rtol),
                ["--over", f"0:{c.LORENZ_WP_T_END}"])
        for method in ["rodas5p", "rodas4", "rosenbrock23", "auto"]:
            for rtol in sweep:
                add("robertson.gbx", method, "robertson", c.ROBERTSON_T_END, rtol, c.robertson_atol(rtol))
    if c.wants(args, "spiral"):
        for method in ["tsit5", "dopri5"]:
            add("spiral_fixed.gbx", method, "spiral_forward", c.SPIRAL_T_END, c.SPIRAL_RTOL, c.SPIRAL_ATOL,
                ["--at", f"0:{c.SPIRAL_T_END}:{c.SPIRAL_POINTS}"])
    if c.wants(args, "sde"):
        sde = [MODELS / "neural_sde.gbx", "--paths", c.SDE_BATCH, "--seed", 0, "--at", f"0:{c.SDE_T_END}:2"]
        data = glassbox_solve(sde, repeat)
        if data is None:
            skipped.append("glassbox sde_forward: failed")
        else:
            rows.append(glassbox_row(data, "euler_maruyama", "sde_forward", c.SDE_T_END, None, None, sde=True))
        # `--grad`: forward solves + discrete adjoint of mean(u(1)) over paths and states, the
        # peers' loss, timed together (`timing.median_solve_ms`), compile apart.
        data = glassbox_solve([*sde, "--grad"], repeat)
        if data is None:
            skipped.append("glassbox sde_grad: failed")
        else:
            row = glassbox_row(data, "euler_maruyama, discrete adjoint", "sde_grad", c.SDE_T_END, None, None, sde=True)
            row["final"] = [data["loss"]]
            rows.append(row)
    train_models = [("spiral_train.gbx", "tsit5, rmsprop, vanilla"),
                    ("spiral_train_ernode.gbx", "tsit5, rmsprop, ERNODE")]
    for model, method in train_models if c.wants(args, "train") else []:
        row = glassbox_train(MODELS / model, method, 15 if args.quick else 60)
        if row is None:
            skipped.append(f"glassbox spiral_train {model}: failed")
        else:
            rows.append(row)
    return rows, skipped


def glassbox_train(model, method, iterations, warmup=10, quiet=False):
    """`glassbox train MODEL --iterations N` into a temporary run directory; the time per
    iteration is the median of the iterations after the first `warmup` (run.json's metrics,
    each iteration's wall time: draw, forward solves, adjoint, optimiser update)."""
    import statistics
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(GLASSBOX_BIN), "train", str(model), "--iterations", str(iterations),
               "--seed", "0", "--out", tmp]
        if not quiet:
            print(f"[run] glassbox: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"[run] glassbox FAILED:\n{proc.stderr[-2000:]}", file=sys.stderr)
            return None
        run = json.loads((pathlib.Path(tmp) / "run.json").read_text())
    metrics = run["metrics"]
    timed = metrics[warmup:] or metrics
    return {"tool": "glassbox", "method": method, "problem": "spiral_train",
            "t_end": None, "rtol": 1e-7, "atol": 1e-9,
            "median_ms": statistics.median(m["time_s"] for m in timed) * 1e3,
            "runs": len(timed), "nfe": int(statistics.median(m["nfe"] for m in timed)),
            "compile_ms": None, "final": [metrics[-1]["loss"]]}


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_at_start": os.getloadavg(),
    }


def run_peer(name, cmd, rows, skipped):
    print(f"[run] {name}: {' '.join(str(x) for x in cmd)}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True)
    if proc.returncode != 0:
        skipped.append(f"{name}: failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
        print(f"[run] {name} FAILED:\n{proc.stderr[-2000:]}", file=sys.stderr)
    got = 0
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
            got += 1
    print(f"[run] {name}: {got} rows", file=sys.stderr, flush=True)


def score(rows, ref):
    for r in rows:
        want = ref.get(r["problem"])
        if want is not None and r.get("final") is not None and "error" not in r:
            r["error"] = max(abs(a - b) / abs(b) for a, b in zip(r["final"], want))


def fmt_ms(x):
    if x is None:
        return "—"
    return f"{x:.3g}" if x >= 0.01 else f"{x:.2e}"


def markdown(meta, rows, skipped, ref_info) -> str:
    out = ["<!-- generated by benches/peers/run.py; do not edit by hand -->", ""]
    m = meta["machine"]
    out.append(f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores ({m['platform']}); load "
               f"average at start {', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}. "
               "The machine is shared with other engineers compiling, so absolute times are noisy: "
               "compare ratios within one run. Times are medians after warm-up (jax: after JIT "
               f"compile, reported separately), "
               + (f"every tool on CPU {meta['cpu']}, " if meta.get("cpu") is not None else "")
               + f"over {meta['rounds']} interleaved round(s): the "
               "tools take turns in a rotated order each round, a row's time is the median of its "
               "rounds' medians (the sweeps run in the first round only).")
    out.append("")
    out.append("| problem | tool | method | median ms | × fastest | steps | nfe | error | compile ms |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for prob, title in HEADLINE.items():
        sel = headline(rows, prob)
        if not sel:
            continue
        best = min(r["median_ms"] for r in sel)
        for r in sorted(sel, key=lambda r: r["median_ms"]):
            err = f"{r['error']:.1e}" if r.get("error") is not None else "—"
            out.append(f"| {title} | {r['tool']} | {r['method']} | {fmt_ms(r['median_ms'])} | "
                       f"{r['median_ms'] / best:.1f} | {r.get('steps', '—')} | {r.get('nfe', '—')} | "
                       f"{err} | {fmt_ms(r.get('compile_ms'))} |")
    out.append("")
    out.append("Error: max over components of |y − y_ref| / |y_ref| at the final time. Lorenz over "
               "[0, 100] is timed but not scored (chaos: see README); its work-precision sweep runs "
               "over [0, 10]. References: Lorenz t=10 DOP853 rtol 1e-13 (vs DOP853 rtol 1e-12: "
               f"{ref_info['lorenz_t10_self_error']:.1e}), Robertson Radau rtol 1e-12 (vs BDF rtol 1e-12: "
               f"{ref_info['robertson_self_error']:.1e}, vs the classic 6-digit values "
               f"{ref_info['robertson_vs_classic']:.1e}).")
    out.append("")
    out.extend(round_table(rows, meta["rounds"]))
    out.append("Work-precision: `wp_lorenz.png`, `wp_robertson.png` (error against median time, one "
               "line per tool and method, tolerances rtol 1e-4 … 1e-10).")
    if skipped:
        out.append("")
        out.append("Skipped: " + "; ".join(skipped))
    out.append("")
    return "\n".join(out)


ROW_KEY = ("tool", "method", "problem", "t_end", "rtol", "atol")


def merge_rounds(rounds):
    """One row per (tool, method, problem, tolerances): `median_ms` the median of the rounds'
    medians, `round_ms` each round's (None where the row did not run that round)."""
    merged = {}
    for i, rows in enumerate(rounds):
        for r in rows:
            k = tuple(r.get(f) for f in ROW_KEY)
            if k not in merged:
                merged[k] = dict(r, round_ms=[None] * len(rounds))
            merged[k]["round_ms"][i] = r["median_ms"]
    for m in merged.values():
        times = [t for t in m["round_ms"] if t is not None]
        m["median_ms"] = statistics.median(times)
        m["rounds"] = len(times)
    return list(merged.values())


def headline(rows, prob):
    sel = [r for r in rows if r["problem"] == prob]
    if prob == "robertson":
        sel = [r for r in sel if abs(r["rtol"] - 1e-6) < 1e-12]
    return sel


def round_table(rows, rounds):
    """Per headline problem and peer: the peer's fastest method over glassbox's fastest, round
    by round (both measured in the same round, minutes apart at most)."""
    if rounds < 2:
        return []
    out = ["Ratios round by round (the peer's fastest method over glassbox's fastest in the same "
           "round; above 1: glassbox ahead):", "",
           "| problem | peer | " + " | ".join(f"round {i + 1}" for i in range(rounds)) + " | median | lowest |",
           "|---|---|" + "---|" * rounds + "---|---|"]
    for prob, title in HEADLINE.items():
        sel = headline(rows, prob)
        # Training: vanilla against the peers' (vanilla) loops, not the ERNODE row.
        mine = [r for r in sel if r["tool"] == "glassbox" and
                (prob != "spiral_train" or "vanilla" in r["method"])]
        if not mine:
            continue
        for peer in sorted({r["tool"] for r in sel} - {"glassbox"}):
            theirs = [r for r in sel if r["tool"] == peer]
            ratios = []
            for i in range(rounds):
                g = [r["round_ms"][i] for r in mine if r["round_ms"][i] is not None]
                p = [r["round_ms"][i] for r in theirs if r["round_ms"][i] is not None]
                ratios.append(min(p) / min(g) if g and p else None)
            got = [x for x in ratios if x is not None]
            if len(got) < 2:
                continue
            cells = " | ".join("—" if x is None else f"{x:.2f}" for x in ratios)
            out.append(f"| {title} | {peer} | {cells} | {statistics.median(got):.2f} | {min(got):.2f} |")
    out.append("")
    return out


def plot(rows, problem, title, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = [r for r in rows if r["problem"] == problem and r.get("error") is not None]
    if not sel:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=110)
    series = {}
    for r in sel:
        series.setdefault(f"{r['tool']} {r['method']}", []).append(r)
    markers = "osD^v<>ph*"
    for i, (label, rs) in enumerate(sorted(series.items())):
        rs.sort(key=lambda r: r["rtol"])
        ax.loglog([r["median_ms"] for r in rs], [max(r["error"], 1e-16) for r in rs],
                  marker=markers[i % len(markers)], label=label)
    ax.set_xlabel("median wall time per solve [ms] (log)")
    ax.set_ylabel("max relative error at t_end (log)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="headline tolerances only, 3 runs")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--rounds", type=int, default=5,
                   help="interleaved rounds (the first runs every row, the rest the headline rows)")
    p.add_argument("--skip", nargs="*", default=[], choices=["scipy", "diffrax", "torch", "diffsol", "glassbox"])
    p.add_argument("--only", nargs="*", default=[], choices=c.GROUPS)
    p.add_argument("--cpu", type=int, default=None,
                   help="run every tool on this CPU (default: the first; see common.pin)")
    p.add_argument("--no-pin", action="store_true", help="let the scheduler place the tools")
    args = p.parse_args()
    args.headline = False
    cpu = None if args.no_pin else c.pin(args.cpu)
    repeat = 3 if args.quick else args.repeat
    rounds = max(1, args.rounds)
    RESULTS.mkdir(exist_ok=True)

    meta = {"machine": machine(), "rounds": rounds, "cpu": cpu}
    ref = reference.compute()
    ref_info = ref.pop("_info")
    ref_path = RESULTS / "reference.json"
    ref_path.write_text(json.dumps(ref, indent=1) + "\n")
    common_args = ["--repeat", str(repeat), "--reference", str(ref_path)] + (["--quick"] if args.quick else [])
    if args.only:
        common_args += ["--only", *args.only]
        args.skip.append("diffsol")

    skipped = []
    py = sys.executable
    tools = []  # (name, run(rows, later_round)); a later round adds --headline (diffsol: --quick)
    if "scipy" not in args.skip:
        tools.append(("scipy", lambda rows, later: run_peer(
            "scipy", [py, "scipy_bench.py", *common_args, *(["--headline"] if later else [])], rows, skipped)))
    if "diffrax" in args.skip:
        pass
    elif importlib.util.find_spec("diffrax") is None:
        skipped.append("diffrax: not installed (run setup.sh)")
    else:
        tools.append(("diffrax", lambda rows, later: run_peer(
            "diffrax", [py, "diffrax_bench.py", *common_args, *(["--headline"] if later else [])], rows, skipped)))
    if "torch" in args.skip:
        pass
    elif importlib.util.find_spec("torchdiffeq") is None or importlib.util.find_spec("torchsde") is None:
        skipped.append("torchdiffeq/torchsde: not installed (setup.sh --with-torch, ~6 GB)")
    else:
        tools.append(("torch", lambda rows, later: run_peer(
            "torch", [py, "torch_bench.py", *common_args, *(["--headline"] if later else [])], rows, skipped)))
    if "diffsol" in args.skip:
        pass
    elif not DIFFSOL_BIN.exists():
        skipped.append(f"diffsol: {DIFFSOL_BIN.relative_to(REPO)} not built (run setup.sh)")
    else:
        tools.append(("diffsol", lambda rows, later: run_peer(
            "diffsol", [str(DIFFSOL_BIN), *common_args, *(["--quick"] if later else [])], rows, skipped)))
    if "glassbox" not in args.skip:
        def run_glassbox(rows, later):
            args.headline = later
            g_rows, g_skipped = glassbox_rows(args, repeat)
            rows.extend(g_rows)
            skipped.extend(g_skipped)
        tools.append(("glassbox", run_glassbox))

    per_round = []
    for i in range(rounds):
        order = tools[i % len(tools):] + tools[:i % len(tools)] if tools else []
        print(f"[run] round {i + 1}/{rounds}: {', '.join(n for n, _ in order)}", file=sys.stderr, flush=True)
        rows_i = []
        for _, run in order:
            run(rows_i, i > 0)
        per_round.append(rows_i)
    skipped = list(dict.fromkeys(skipped))
    rows = merge_rounds(per_round)
    score(rows, ref)

    if args.only:
        print(markdown(meta, rows, skipped, ref_info))
        return
    meta.update({"reference": ref, "reference_checks": ref_info, "skipped": skipped,
                 "note": "shared 2-core machine, other engineers compiling: absolute times are "
                         "noisy, ratios within this run matter", "rows": rows})
    (RESULTS / "peers.json").write_text(json.dumps(meta, indent=1) + "\n")
    (RESULTS / "peers.md").write_text(markdown(meta, rows, skipped, ref_info))
    plot(rows, "lorenz_t10", "Lorenz, t in [0, 10], atol = rtol·1e-3", RESULTS / "wp_lorenz.png")
    plot(rows, "robertson", "Robertson, t in [0, 1e5], atol = rtol·1e-4", RESULTS / "wp_robertson.png")
    print((RESULTS / "peers.md").read_text())
    for s in skipped:
        print(f"[run] skipped: {s}", file=sys.stderr)


if __name__ == "__main__":
    main()
