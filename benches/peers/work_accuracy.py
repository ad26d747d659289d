"""Work against accuracy on the digits classifier's forward solve (issue 14, item 6): glassbox
and diffrax compared as logit error against field evaluations, not tolerance against
tolerance.

The model is examples/digits.gbx (encoder linear 64 -> 32, field mlp 33 -> 64 -> 32 tanh on
concat(h, t), head linear 32 -> 10, Tsit5 over [0, 1]) at glassbox's initial weights
(`glassbox train --iterations 0 --seed 0`), on the first 128 rows of examples/data/digits.csv
(one training batch). For each rtol = atol in TOLS both tools solve every row, and each
point is (mean field evaluations per row, max |logit - reference| over the rows and classes).
The reference is diffrax Dopri8 at rtol = atol = 1e-12, one solve per row (glassbox at 1e-12
is reported against it too, as a check of the reference).

Rows (layouts):
- glassbox per row: each row its own steps (glassbox's default), with the default PI gains
  (`pcoeff = 0.4, icoeff = 0.3`), with `first_max_factor = 10` (the ×10 growth cap from the
  first step on, as before that option), and with diffrax's default integral controller
  (`pcoeff = 0, icoeff = 1`), to separate the controller from the rest;
- diffrax `vmap`: one solve per row under jax.vmap (each row its own steps), PIDController
  defaults (`pcoeff = 0, icoeff = 1`);
- glassbox `batch = joint` (default PI gains, and diffrax's integral controller) and diffrax joint: the batch as one (128, 32) state, one step size
  for the batch; their NFE is per batch (each evaluation covers every row).

Field evaluations: glassbox's own count (`predict --stats`: every evaluation, the initial-step
probe and rejected attempts included). diffrax: Tsit5 is FSAL, so 6 evaluations per step
attempt (`num_steps` counts rejected ones too) plus 3 (the first stage and the two of its
initial-step selection), as in classifiers.py on the `peers` branch.

No timing here: evaluations and errors do not depend on the build, so a debug binary gives
the same numbers (`--glassbox target/debug/glassbox`).

    benches/peers/.venv/bin/python benches/peers/work_accuracy.py [--glassbox PATH]

writes results/work_accuracy.json and prints a Markdown table.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import diffrax as dfx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import classifiers as cl  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
DATA = REPO / "examples" / "data" / "digits.csv"
ROWS = 128
TOLS = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]
MAX_STEPS = 100_000

MODEL = """model digits_work
input x[64]
label c in 0..10
net enc = linear(64, 32)
net f = mlp(33, 64, 32; act = tanh)
net dec = linear(32, 10)
state h[32] = enc(x)
dh/dt = f(concat(h, t))
solve tsit5(rtol = {tol}, atol = {tol}{extra}) over [0, 1]
output logits = dec(h(1))
data digits = csv("{data}", features = 0..64, label = 64)
minimize cross_entropy(logits, c)
train adam(lr = 1e-3), epochs = 1, batch = 128
"""

# glassbox settings: (row label, extra solve-clause options).
GLASSBOX = [
    ("glassbox per row, PI (default)", ""),
    # The ×10 growth cap from the first step on: the controller before `first_max_factor`.
    ("glassbox per row, PI, first_max_factor = 10", ", first_max_factor = 10"),
    ("glassbox per row, integral (p 0, i 1)", ", pcoeff = 0, icoeff = 1"),
    ("glassbox joint, PI (default)", ", batch = joint"),
    ("glassbox joint, integral (p 0, i 1)", ", batch = joint, pcoeff = 0, icoeff = 1"),
]


def read_safetensors(path):
    """The weights as jax arrays (the file is read by `classifiers.read_safetensors`)."""
    return {k: jnp.asarray(v) for k, v in cl.read_safetensors(path).items()}


def run(cmd):
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return proc


def model_file(tmp, tol, extra):
    path = pathlib.Path(tmp) / f"digits_{tol:g}_{abs(hash(extra))}.gbx"
    path.write_text(MODEL.format(tol=f"{tol:g}", extra=extra, data=DATA))
    return path


def glassbox_point(exe, tmp, weights, rows_csv, tol, extra):
    """(logits (rows, 10), mean field evaluations per row) of `glassbox predict`."""
    model = model_file(tmp, tol, extra)
    out = pathlib.Path(tmp) / "logits.csv"
    proc = run([str(exe), "predict", str(model), "--weights", str(weights), "--input",
                str(rows_csv), "--threads", "1", "--stats", "-o", str(out)])
    m = re.search(r"nfe\s+(\d+) \(([\d.]+) per row\)", proc.stderr)
    if not m:
        sys.exit(f"no nfe in predict --stats:\n{proc.stderr}")
    lines = out.read_text().splitlines()
    cols = [i for i, h in enumerate(lines[0].split(",")) if h.startswith("logit")]
    z = np.array([[float(r.split(",")[i]) for i in cols] for r in lines[1:]])
    return z, int(m.group(1)) / ROWS


def field(t, h, p):
    tt = jnp.broadcast_to(t, h.shape[:-1] + (1,)).astype(h.dtype)
    z = jnp.tanh(jnp.concatenate([h, tt], axis=-1) @ p["f.W1"].T + p["f.b1"])
    return z @ p["f.W2"].T + p["f.b2"]


def diffrax_logits(p, x, layout, tol, solver):
    def solve(h0):
        sol = dfx.diffeqsolve(dfx.ODETerm(field), solver, 0.0, 1.0, None, h0, args=p,
                              saveat=dfx.SaveAt(t1=True), max_steps=MAX_STEPS,
                              stepsize_controller=dfx.PIDController(rtol=tol, atol=tol))
        return sol.ys[-1], sol.stats["num_steps"]

    h0 = x @ p["enc.W1"].T + p["enc.b1"]
    h1, steps = solve(h0) if layout == "joint" else jax.vmap(solve)(h0)
    return h1 @ p["dec.W1"].T + p["dec.b1"], 6 * jnp.mean(steps) + 3


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    ap.add_argument("--glassbox", default=str(target / "release" / "glassbox"))
    args = ap.parse_args()
    exe = pathlib.Path(args.glassbox)
    raw = np.loadtxt(DATA, delimiter=",")[:ROWS]
    x = jnp.asarray(raw[:, :64])
    points = {}
    with tempfile.TemporaryDirectory() as tmp:
        rows_csv = pathlib.Path(tmp) / "rows.csv"
        rows_csv.write_text("\n".join(DATA.read_text().splitlines()[:ROWS]) + "\n")
        weights = pathlib.Path(tmp) / "run"
        run([str(exe), "train", str(model_file(tmp, 1e-5, "")), "--iterations", "0", "--seed",
             "0", "--threads", "1", "--out", str(weights), "--overwrite"])
        p = read_safetensors(weights / "weights.safetensors")
        ref, _ = jax.jit(lambda p, x: diffrax_logits(p, x, "vmap", 1e-12, dfx.Dopri8()))(p, x)
        ref = np.asarray(ref)
        g_tight, _ = glassbox_point(exe, tmp, weights, rows_csv, 1e-12, "")
        check = float(np.abs(g_tight - ref).max())
        for label, extra in GLASSBOX:
            pts = []
            for tol in TOLS:
                z, nfe = glassbox_point(exe, tmp, weights, rows_csv, tol, extra)
                pts.append({"tol": tol, "nfe": nfe, "error": float(np.abs(z - ref).max())})
            points[label] = pts
        for layout in ["vmap", "joint"]:
            f = jax.jit(lambda p, x, tol, layout=layout: diffrax_logits(p, x, layout, tol,
                                                                          dfx.Tsit5()))
            pts = []
            for tol in TOLS:
                z, nfe = f(p, x, tol)
                pts.append({"tol": tol, "nfe": float(nfe),
                            "error": float(np.abs(np.asarray(z) - ref).max())})
            points[f"diffrax {layout}, PIDController defaults"] = pts
    out = {"rows": ROWS, "reference": "diffrax Dopri8 rtol = atol = 1e-12, per row",
           "glassbox_1e-12_vs_reference": check, "max_abs_logit": float(np.abs(ref).max()),
           "points": points}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "work_accuracy.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"reference check: glassbox at 1e-12 differs from it by {check:.1e}; "
          f"max |logit| {out['max_abs_logit']:.2f}\n")
    print("| rtol = atol | " + " | ".join(points) + " |")
    print("|---|" + "---|" * len(points))
    for i, tol in enumerate(TOLS):
        cells = [f"{pts[i]['nfe']:.1f} / {pts[i]['error']:.1e}" for pts in points.values()]
        print(f"| {tol:g} | " + " | ".join(cells) + " |")
    # Equal accuracy: at each glassbox point, what diffrax (same layout) spends for its error.
    print("\n| glassbox row | error | glassbox NFE | diffrax NFE at that error | ratio |")
    print("|---|---|---|---|---|")
    pairs = [("glassbox per row, PI (default)", "diffrax vmap, PIDController defaults"),
             ("glassbox per row, PI, first_max_factor = 10", "diffrax vmap, PIDController defaults"),
             ("glassbox per row, integral (p 0, i 1)", "diffrax vmap, PIDController defaults"),
             ("glassbox joint, PI (default)", "diffrax joint, PIDController defaults"),
             ("glassbox joint, integral (p 0, i 1)", "diffrax joint, PIDController defaults")]
    out["equal_error"] = []
    for g, d in pairs:
        for q in points[g]:
            n = nfe_at_error(points[d], q["error"])
            out["equal_error"].append({"glassbox": g, "diffrax": d, "error": q["error"],
                                       "glassbox_nfe": q["nfe"], "diffrax_nfe": n})
            if n is not None:
                print(f"| {g} | {q['error']:.1e} | {q['nfe']:.1f} | {n:.1f} | "
                      f"{q['nfe'] / n:.2f} |")
    (HERE / "results" / "work_accuracy.json").write_text(json.dumps(out, indent=1) + "\n")


def nfe_at_error(pts, error):
    """The evaluations `pts` need for `error`, interpolated linearly in log-log between the
    two points around it; None outside their range."""
    pts = sorted(pts, key=lambda q: q["nfe"])
    for a, b in zip(pts, pts[1:]):
        lo, hi = sorted([a["error"], b["error"]])
        if lo <= error <= hi and a["error"] != b["error"]:
            w = (np.log(error) - np.log(a["error"])) / (np.log(b["error"]) - np.log(a["error"]))
            return float(np.exp(np.log(a["nfe"]) + w * (np.log(b["nfe"]) - np.log(a["nfe"]))))
    return None


if __name__ == "__main__":
    main()
