"""Paired rounds against diffrax for the rows with a 3x target: Lorenz (Tsit5), the spiral
forward solve (Dopri5 and Tsit5) and spiral training (ms per iteration).

One jax process keeps diffrax's compiled solves; each pair times diffrax in it and then
glassbox in a fresh `glassbox solve --repeat N` / `glassbox train` process (the order
alternates pair by pair), so the two times of a pair lie a fraction of a second apart. This
machine has a slow mode lasting seconds to tens of seconds in which any process runs up to
1.6x slower; the tools' separate passes in run.py can fall on different sides of it, a pair
hardly can. Reported: each pair's ratio diffrax / glassbox, their median and lowest, and the
share of pairs at or above 3x.

Everything runs on one CPU (`--cpu N`, default the first; `--no-pin` to let the scheduler
choose): this VM's two vCPUs run at different, changing speeds, so a pair split across them
measures the CPUs as much as the tools.

Usage: benches/peers/.venv/bin/python benches/peers/paired.py [--pairs N] [--only ROW ...]
    [--cpu N | --no-pin] [--print]   (--print: show the table, do not write results/)
"""

import argparse
import json
import os
import statistics
import sys
import time

import diffrax_bench as dx  # sets XLA_FLAGS and x64 before jax loads
import common as c
import run

import diffrax as dfx  # noqa: E402
import jax  # noqa: E402

ROWS = ["lorenz", "spiral_dopri5", "spiral_tsit5", "train"]


def diffrax_solve_ms(fn, runs):
    """Median of `runs` calls of an already compiled solve, in ms."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def glassbox_solve_ms(flags, runs):
    data = run.glassbox_solve(flags, runs, quiet=True)
    if data is None:
        sys.exit("glassbox solve failed (see above); build it with `cargo build --release`")
    return data["timing"]["median_solve_ms"]


def rows(args):
    """(row, title, diffrax measure, glassbox measure) for the selected rows; diffrax's
    functions are compiled here, outside the pairs."""
    p, _ = dx.weights()
    out = []
    if "lorenz" in args.only:
        fn = dx.ode_solve(dx.lorenz, dfx.Tsit5(), c.LORENZ_T_END, 1e-6, 1e-9)
        jax.block_until_ready(fn())
        flags = [run.MODELS / "lorenz.gbx", "--method", "tsit5", "--rtol", 1e-6, "--atol", 1e-9]
        out.append(("lorenz", "Lorenz [0, 100], Tsit5, rtol 1e-6, atol 1e-9",
                    lambda fn=fn: diffrax_solve_ms(fn, args.runs),
                    lambda flags=flags: glassbox_solve_ms(flags, args.runs)))
    for name, solver in [("dopri5", dfx.Dopri5()), ("tsit5", dfx.Tsit5())]:
        if f"spiral_{name}" not in args.only:
            continue
        fn = dx.spiral_solve(p, solver)
        jax.block_until_ready(fn())
        flags = [run.MODELS / "spiral_fixed.gbx", "--method", name, "--rtol", c.SPIRAL_RTOL,
                 "--atol", c.SPIRAL_ATOL, "--at", f"0:{c.SPIRAL_T_END}:{c.SPIRAL_POINTS}"]
        out.append((f"spiral_{name}", f"Spiral MLP forward, 1 000 saves, {name} in both",
                    lambda fn=fn: diffrax_solve_ms(fn, 4 * args.runs),
                    lambda flags=flags: glassbox_solve_ms(flags, 4 * args.runs)))
    if "train" in args.only:
        steps, opt, _ = dx.train_steps(p)
        step = steps["joint"]  # diffrax's faster layout
        iters = 40

        def diffrax_train():
            _, times, _ = dx.train_times(step, opt, p, iters)
            return statistics.median(times[10:])

        def glassbox_train():
            row = run.glassbox_train(run.MODELS / "spiral_train.gbx", "vanilla", iters, quiet=True)
            if row is None:
                sys.exit("glassbox train failed (see above)")
            return row["median_ms"]
        diffrax_train()  # compiles
        out.append(("train", "Spiral training, ms per iteration (vanilla; diffrax joint)",
                    diffrax_train, glassbox_train))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=21, help="pairs per row (default 21)")
    ap.add_argument("--runs", type=int, default=20,
                    help="solves per measurement (the spiral rows take 4x as many)")
    ap.add_argument("--only", nargs="*", default=ROWS, choices=ROWS)
    ap.add_argument("--print", action="store_true", help="print only; do not write results/")
    ap.add_argument("--cpu", type=int, default=None, help="the CPU to run on (default: the first)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    args = ap.parse_args()
    cpu = None if args.no_pin else c.pin(args.cpu)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()

    results = []
    for key, title, diffrax_ms, glassbox_ms in rows(args):
        pairs = []
        for i in range(args.pairs):
            if i % 2 == 0:
                d = diffrax_ms()
                g = glassbox_ms()
            else:
                g = glassbox_ms()
                d = diffrax_ms()
            pairs.append((g, d))
        ratios = [d / g for g, d in pairs]
        results.append({"row": key, "title": title,
                        "glassbox_ms": [g for g, _ in pairs], "diffrax_ms": [d for _, d in pairs],
                        "ratios": ratios})
        print(f"[paired] {key}: median ratio {statistics.median(ratios):.2f}, lowest {min(ratios):.2f}",
              file=sys.stderr, flush=True)

    lines = ["<!-- generated by benches/peers/paired.py; do not edit by hand -->", "",
             f"Paired rounds against diffrax, {started}, load average at start "
             f"{', '.join(f'{x:.1f}' for x in load)}; "
             + (f"every process on CPU {cpu}; " if cpu is not None else "not pinned; ")
             + f"{args.pairs} pairs per row, each pair one "
             f"diffrax measurement in a persistent jax process and one glassbox process, order "
             f"alternating; a measurement is the median of {args.runs} solves (spiral rows: "
             f"{4 * args.runs}) or of 30 training iterations after 10 warm-up.", "",
             "| row | glassbox ms (median of pairs) | diffrax ms | ratio: median | lowest | "
             "highest | pairs ≥ 3x |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        ratios = r["ratios"]
        lines.append(f"| {r['title']} | {statistics.median(r['glassbox_ms']):.3g} | "
                     f"{statistics.median(r['diffrax_ms']):.3g} | {statistics.median(ratios):.2f} | "
                     f"{min(ratios):.2f} | {max(ratios):.2f} | "
                     f"{sum(x >= 3 for x in ratios)} of {len(ratios)} |")
    lines.append("")
    lines.append("Ratios pair by pair (diffrax / glassbox):")
    lines.append("")
    for r in results:
        lines.append(f"- {r['row']}: " + ", ".join(f"{x:.2f}" for x in r["ratios"]))
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if not args.print:
        run.RESULTS.mkdir(exist_ok=True)
        (run.RESULTS / "paired.md").write_text(text)
        (run.RESULTS / "paired.json").write_text(json.dumps(
            {"date": started, "load_average_at_start": load, "cpu": cpu, "pairs": args.pairs,
             "runs": args.runs, "rows": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
