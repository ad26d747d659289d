"""The issue-14 classifiers trained at equal accuracy: diffrax at the tolerance whose logits
are as accurate as glassbox's at the benchmark's rtol = atol = 1e-5, timed side by side.

At one tolerance the two tools do not solve equally well: on the digits classifier glassbox's
logits are ~300x closer to a tight reference than diffrax's (`classifiers.check`). So, per
model and per model of the batch (glassbox `batch = joint` with diffrax joint, glassbox per
row with diffrax `vmap`), with glassbox's default PI gains and with diffrax's controller
(`pcoeff = 0, icoeff = 1`):

1. glassbox's max logit error at 1e-5 against the tight reference (diffrax Dopri8 at 1e-12,
   one solve per row), on the first batch at glassbox's initial weights (seed 0);
2. diffrax's error on the same batch at rtol = atol on a grid (1e-3 down to 1e-9, three
   points a decade, from 1e-3: glassbox with diffrax's controller is less accurate than diffrax
   on some rows); the matched tolerance is the loosest grid point whose error is at most
   glassbox's (so diffrax is, if anything, slightly more accurate than glassbox there);
3. `--pairs` pairs, order alternating, every process on one CPU: glassbox training at 1e-5
   (`glassbox train`, fresh process, as in paired_classifiers.py) against diffrax training at
   the matched tolerance (in this process). Ratio = diffrax ms / glassbox ms; above 1 glassbox
   is ahead.

The accuracy is matched at the initial weights only: training changes the field, and each
tool's error with it; the table also gives the NFE per row each tool took while training.

Usage: benches/peers/.venv/bin/python benches/peers/equal_accuracy.py [--pairs N]
    [--only digits mnist_sized] [--seconds S] [--cpu N] [--print]
Writes results/equal_accuracy.md and results/equal_accuracy.json (not with --print).
"""

import classifiers as cl  # sets XLA_FLAGS, OPENBLAS_NUM_THREADS and x64 before jax/numpy load

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import common as c  # noqa: E402
import paired_classifiers as pc  # noqa: E402

GRID = [1e-3, 5e-4, 2e-4, 1e-4, 5e-5, 2e-5, 1e-5, 5e-6, 2e-6, 1e-6, 5e-7, 2e-7, 1e-7, 5e-8, 2e-8, 1e-8, 5e-9, 2e-9, 1e-9]
# glassbox's settings (its solve-clause options on top of the model's, a label) -> the diffrax
# layout that is the same model of the batch
PAIRS = {"joint": ("batch = joint", "`batch = joint`", "joint"),
         "per_row": (None, "per row", "vmap"),
         "joint_integral": (f"batch = joint, {pc.DIFFRAX_CONTROLLER}",
                            f"`batch = joint`, `{pc.DIFFRAX_CONTROLLER}`", "joint"),
         "per_row_integral": (pc.DIFFRAX_CONTROLLER, f"per row, `{pc.DIFFRAX_CONTROLLER}`", "vmap")}


def diffrax_error(p, xb, ref, layout, tol):
    z, _ = jax.jit(lambda p, x: cl.logits(p, x, layout, tol, tol))(p, jnp.asarray(xb))
    return float(np.abs(np.asarray(z) - ref).max())


def match(p, xb, ref, layout, target):
    """The loosest grid tolerance where diffrax's error is at most `target`, and the errors
    seen on the way (None if no grid point gets there)."""
    seen = []
    for tol in GRID:
        err = diffrax_error(p, xb, ref, layout, tol)
        seen.append({"tol": tol, "error": err})
        print(f"[equal_accuracy]   diffrax {layout} at {tol:.0e}: error {err:.2e} (glassbox {target:.2e})",
              file=sys.stderr, flush=True)
        if err <= target:
            return tol, seen
    return None, seen


def model_rows(name, args):
    cfg = cl.MODEL[name]
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"equal-accuracy-{name}-"))
    try:
        init = work / "init"
        subprocess.run([str(cl.GLASSBOX_BIN), "train", str(cfg["file"]), "--iterations", "0", "--seed", "0",
                        "--threads", "1", "--out", str(init)], cwd=cl.REPO, check=True, capture_output=True)
        w = cl.read_safetensors(init / "weights.safetensors")
        p = cl.params(w)
        x, _ = cl.load_data(name)
        xb = x[:cfg["batch"]]
        ref = cl.reference_logits(p, xb)
        files = {k: pc.variant(cfg["file"], work, o, k) if o else cfg["file"] for k, (o, _, _) in PAIRS.items()}
        out = {"model": name, "batch": cfg["batch"], "max_abs_logit": float(np.abs(ref).max()), "layouts": {}}
        for gb_layout, (_, _, d_layout) in PAIRS.items():
            g = cl.glassbox_logits(name, init, cfg["batch"], model=files[gb_layout])
            g_err = float(np.abs(g - ref).max())
            tol, seen = match(p, xb, ref, d_layout, g_err)
            row = {"glassbox_error": g_err, "diffrax_layout": d_layout, "matched_tol": tol, "grid": seen}
            if tol is not None:
                peer = cl.Peer(name, w, rtol=tol, atol=tol)
                probe = pc.glassbox_train(files[gb_layout], pc.WARMUP + 2)
                g_iters = pc.WARMUP + max(4, min(40, int(args.seconds * 1e3 / probe["ms"])))
                d_probe = pc.med(peer.train_ms(d_layout, 3)[0])
                d_iters = max(5, min(60, int(args.seconds * 1e3 / d_probe)))
                pairs = []
                for i in range(args.pairs):
                    def d_side():
                        t, _, nfe = peer.train_ms(d_layout, d_iters)
                        return {"ms": pc.med(t), "nfe": pc.med(nfe)}

                    def g_side():
                        return pc.glassbox_train(files[gb_layout], g_iters)
                    if i % 2 == 0:
                        d, gb = d_side(), g_side()
                    else:
                        gb, d = g_side(), d_side()
                    pairs.append({"glassbox": gb, "diffrax": d})
                    print(f"[equal_accuracy] {name} {gb_layout} pair {i + 1}/{args.pairs}: glassbox "
                          f"{gb['ms']:.2f} ms, diffrax {d_layout} at {tol:.0e} {d['ms']:.2f} ms",
                          file=sys.stderr, flush=True)
                ratios = [q["diffrax"]["ms"] / q["glassbox"]["ms"] for q in pairs]
                row.update({"pairs": pairs,
                            "glassbox_ms": pc.med([q["glassbox"]["ms"] for q in pairs]),
                            "diffrax_ms": pc.med([q["diffrax"]["ms"] for q in pairs]),
                            "glassbox_nfe_per_row": pc.med([q["glassbox"]["nfe"] for q in pairs]) / cfg["batch"],
                            "diffrax_nfe_per_row": pc.med([q["diffrax"]["nfe"] for q in pairs]),
                            "ratio": pc.ratio_stats(ratios)})
            out["layouts"][gb_layout] = row
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def markdown(meta, models):
    out = ["<!-- generated by benches/peers/equal_accuracy.py; do not edit by hand -->", "",
           f"Training at equal accuracy, {meta['date']}, glassbox {meta['glassbox']}, on {meta['cpu_model']}, "
           f"every timed process on CPU {meta['cpu']}; {meta['pairs']} pair(s) per row, order alternating. "
           "glassbox at rtol = atol = 1e-5; diffrax at the loosest tolerance of its grid whose max logit "
           "error on the first batch (initial weights, against Dopri8 at 1e-12) is at most glassbox's. "
           "Ratio = diffrax ms / glassbox ms per training iteration (median of the pairs' ratios, "
           "lowest–highest): above 1 glassbox is ahead.", "",
           "| model | glassbox layout | glassbox logit error | diffrax layout at matched tol | diffrax logit error | glassbox ms (NFE/row) | diffrax ms (NFE/row) | ratio |",
           "|---|---|---|---|---|---|---|---|"]
    for m in models:
        for gl, r in m["layouts"].items():
            name = pc.TITLE[m["model"]]
            gname = PAIRS[gl][1]
            if r["matched_tol"] is None:
                out.append(f"| {name} | {gname} | {r['glassbox_error']:.1e} | {r['diffrax_layout']}: none of the grid | "
                           f"{r['grid'][-1]['error']:.1e} at {r['grid'][-1]['tol']:.0e} | | | |")
                continue
            d_err = r["grid"][-1]["error"]
            out.append(f"| {name} | {gname} | {r['glassbox_error']:.1e} | {r['diffrax_layout']} at "
                       f"{r['matched_tol']:.0e} | {d_err:.1e} | {r['glassbox_ms']:.3g} ({r['glassbox_nfe_per_row']:.1f}) | "
                       f"{r['diffrax_ms']:.3g} ({r['diffrax_nfe_per_row']:.1f}) | **{r['ratio']['median']:.2f}x** "
                       f"({r['ratio']['lowest']:.2f}–{r['ratio']['highest']:.2f}) |")
    out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=3, help="pairs per row (default 3)")
    ap.add_argument("--only", nargs="*", default=list(cl.MODEL), choices=list(cl.MODEL))
    ap.add_argument("--seconds", type=float, default=1.5, help="about how long one timed measurement runs")
    ap.add_argument("--cpu", type=int, default=None, help="the CPU to run on (default: the first)")
    ap.add_argument("--print", action="store_true", help="print only; do not write results/")
    args = ap.parse_args()
    if not cl.GLASSBOX_BIN.exists():
        sys.exit(f"{cl.GLASSBOX_BIN} missing: cargo build --release")
    cpu = c.pin(args.cpu)
    version = subprocess.run([str(cl.GLASSBOX_BIN), "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", str(cl.REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu,
            "glassbox": f"{version.removeprefix('glassbox ')} ({commit})", "pairs": args.pairs,
            "cpu_model": pc._cpu_model(), "jax": jax.__version__, "diffrax": cl.dfx.__version__}
    models = [model_rows(name, args) for name in args.only]
    text = markdown(meta, models)
    print(text)
    if not args.print:
        pc.RESULTS.mkdir(exist_ok=True)
        (pc.RESULTS / "equal_accuracy.md").write_text(text)
        (pc.RESULTS / "equal_accuracy.json").write_text(json.dumps({"meta": meta, "models": models}, indent=1) + "\n")


if __name__ == "__main__":
    main()
