"""Paired rounds of the issue-14 classifiers against diffrax: the digits model
(models/digits_train.gbx, batch 128) and the MNIST-sized one (models/mnist_sized.gbx, 784 ->
100, batch 256), both Tsit5 rtol = atol = 1e-5, Adam, from glassbox's own initial weights.

Per model, first the check (classifiers.check: both tools' initial logits on the first batch
against a tight reference, within classifiers.LOGIT_TOL), then `--pairs` pairs. One jax process
keeps diffrax's compiled steps; each pair times

- diffrax: training iterations (forward + gradient + Adam) in both layouts, `joint` (one step
  size for the batch) and `vmap` (one solve per row), and the forward pass alone (loss of a
  fixed batch at the initial weights), in this process;
- glassbox: `glassbox train MODEL --iterations N --seed 0 --threads 1` in a fresh process (the
  time per iteration: run.json's per-iteration wall times, the median after the first two),
  and `glassbox predict MODEL --weights INIT --input ROWS --threads 1 --stats` forward only
  (its `solve time` over a file of whole batches, divided by the number of batches), on the
  batched path and, with GLASSBOX_BATCHED=0, on the per-row path training's forward takes
  today; both step controls again with diffrax's controller (`pcoeff = 0, icoeff = 1`, its
  `PIDController` defaults, instead of glassbox's PI gains), so that one row compares the
  same tolerance under the same step-size rule; for digits also `train examples/digits.gbx`
  as the example stands (with its error-estimate regularizer, which the peer does not have);

a fraction of a second apart, the order alternating pair by pair, every process on one CPU
(`--cpu N`, default the first: this VM's vCPUs run at different, changing speeds). A row's
figure is the median over pairs, a ratio's the median of the pairs' ratios.

Also reported: field evaluations per row, the backward pass over the forward ((iteration -
forward) / forward, each tool's own forward), GFLOP/s of the GEMMs each iteration must do
(counted from the NFE and the layer sizes, see `flops`) against this CPU's own dgemm rate on
the same shapes (numpy/OpenBLAS and XLA, one thread; the faster), and the thread scaling of
`glassbox train --threads 1` against `--threads 2` (those processes may use every CPU; pairs
alternate).

glassbox's iteration counts adapt to its speed (a process trains ~`--seconds` s), so the same
command serves today's per-row glassbox and a faster one.

Usage: benches/peers/.venv/bin/python benches/peers/paired_classifiers.py [--pairs N]
    [--only digits mnist_sized] [--thread-pairs N] [--seconds S] [--cpu N | --no-pin] [--print]
Writes results/classifiers.md and results/classifiers.json (not with --print).
"""

import classifiers as cl  # sets XLA_FLAGS, OPENBLAS_NUM_THREADS and x64 before jax/numpy load

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import common as c  # noqa: E402

RESULTS = cl.HERE / "results"
EXAMPLE_DIGITS = cl.REPO / "examples" / "digits.gbx"
WARMUP = 2  # glassbox iterations left out of a process's median (first-touch costs)


def med(xs):
    return statistics.median(xs)


# ---------------------------------------------------------------- glassbox in fresh processes

def glassbox_train(model, iterations, threads=1, cpus=None):
    """Median per-iteration ms of `glassbox train` (after WARMUP iterations), median NFE of
    the batch, first loss. `cpus`: the CPUs the process may use (`taskset`; None: this
    process's)."""
    with tempfile.TemporaryDirectory() as tmp:
        pin = ["taskset", "-c", ",".join(str(c) for c in sorted(cpus))] if cpus else []
        cmd = pin + [str(cl.GLASSBOX_BIN), "train", str(model), "--iterations", str(iterations),
                     "--seed", "0", "--threads", str(threads), "--out", tmp, "--overwrite"]
        proc = subprocess.run(cmd, cwd=cl.REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"glassbox train failed:\n{proc.stderr[-2000:]}")
        metrics = json.loads((pathlib.Path(tmp) / "run.json").read_text())["metrics"]
    timed = metrics[WARMUP:] or metrics
    return {"ms": med([m["time_s"] for m in timed]) * 1e3,
            "nfe": med([m["nfe"] for m in timed]), "loss_first": metrics[0]["loss"]}


# diffrax's `PIDController` defaults as glassbox `solve` options: the integral controller
# (glassbox's default gains are OrdinaryDiffEq's PI, `pcoeff = 0.4, icoeff = 0.3`).
DIFFRAX_CONTROLLER = "pcoeff = 0, icoeff = 1"


def variant(model, work, options, tag):
    """`model` with `options` added to its solve clause, written into `work` as
    `<stem>_<tag>.gbx` with its data paths made absolute."""
    text = model.read_text()
    text = re.sub(r'csv\("([^"]+)"', lambda m: f'csv("{(model.parent / m.group(1)).resolve()}"', text)
    text, n = re.subn(r"^(solve \w+\([^)]*)\)", rf"\1, {options})", text, count=1, flags=re.M)
    if n != 1:
        sys.exit(f"{model}: no `solve METHOD(...)` clause to add `{options}` to")
    out = work / f"{model.stem}_{tag}.gbx"
    out.write_text(text)
    return out


def joint_variant(model, work):
    """`model` with `batch = joint` (one step size for the batch, the layout of diffrax's joint
    solve)."""
    return variant(model, work, "batch = joint", "joint")


def glassbox_forward(model, weights, rows_file, batches, batched=True):
    """Forward-only ms per batch of `glassbox predict --stats` (encoder, solves, head; compile
    apart) over `rows_file` (`batches` whole batches), and its NFE per row."""
    env = dict(os.environ)
    if not batched:
        env["GLASSBOX_BATCHED"] = "0"
    cmd = [str(cl.GLASSBOX_BIN), "predict", str(model), "--weights", str(weights), "--input",
           str(rows_file), "--threads", "1", "--stats", "-o", os.devnull]
    proc = subprocess.run(cmd, cwd=cl.REPO, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"glassbox predict failed:\n{proc.stderr[-2000:]}")
    ms = float(re.search(r"solve time\s+([0-9.eE+-]+) ms", proc.stderr).group(1))
    nfe = float(re.search(r"nfe\s+\d+ \(([0-9.]+) per row\)", proc.stderr).group(1))
    path = re.search(r"forward\s+(.*)", proc.stderr).group(1).strip()
    return {"ms": ms / batches, "nfe": nfe, "path": path}


# ---------------------------------------------------------------- counting and GEMM speed

def layer_flops(cfg):
    """Multiply-add flops (2 per multiply-add) per row of one evaluation of each dense layer:
    the encoder, the field (both layers), the head."""
    i, n, h, k = cfg["inputs"], cfg["latent"], cfg["hidden"], cfg["classes"]
    return {"encoder": 2 * i * n, "field": 2 * ((n + 1) * h + h * n), "head": 2 * n * k}


def flops(cfg, nfe_per_row, train=True):
    """GEMM flops of one batch: forward = encoder + nfe x field + head; training adds the
    backward: two products per field evaluation and for the head (the input's and the
    weights' gradient), one for the encoder (its weights' gradient only). Biases, tanh and the
    solver's vector work are not counted: this is what the GEMMs alone must cost."""
    f = layer_flops(cfg)
    fwd = f["encoder"] + nfe_per_row * f["field"] + f["head"]
    bwd = f["encoder"] + 2 * nfe_per_row * f["field"] + 2 * f["head"]
    return cfg["batch"] * (fwd + (bwd if train else 0))


def gemm_rate(cfg, seconds=1.0):
    """This CPU's dgemm rate (GFLOP/s, one thread) on the field's shapes at the model's batch:
    the six products of one field evaluation forward and backward (A W1', Z W2'; G W2, G' Z,
    dZ W1, dZ' A), timed in numpy (OpenBLAS) and in XLA (jax, single-threaded Eigen)."""
    b, n, h = cfg["batch"], cfg["latent"], cfg["hidden"]
    rng = np.random.default_rng(0)
    a, w1 = rng.normal(size=(b, n + 1)), rng.normal(size=(h, n + 1))
    z, w2 = rng.normal(size=(b, h)), rng.normal(size=(n, h))
    g, dz = rng.normal(size=(b, n)), rng.normal(size=(b, h))
    work = 3 * b * layer_flops(cfg)["field"]

    def np_set():
        return (a @ w1.T, z @ w2.T, g @ w2, g.T @ z, dz @ w1, dz.T @ a)

    jx = [jnp.asarray(v) for v in (a, w1, z, w2, g, dz)]
    jset = jax.jit(lambda a, w1, z, w2, g, dz: (a @ w1.T, z @ w2.T, g @ w2, g.T @ z, dz @ w1, dz.T @ a))

    def rate(fn):
        fn()
        reps, t_end, times = 0, time.perf_counter() + seconds, []
        while time.perf_counter() < t_end or reps < 20:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
            reps += 1
        return work / med(times) / 1e9

    out = {"numpy": rate(np_set), "xla": rate(lambda: jax.block_until_ready(jset(*jx)))}
    out["best"] = max(out["numpy"], out["xla"])
    return out


# ---------------------------------------------------------------- one model

def model_rows(name, args):
    cfg = cl.MODEL[name]
    gb_model = cfg["file"]
    print(f"[classifiers] {name}: check", file=sys.stderr, flush=True)
    chk = cl.check(name)
    print(f"[classifiers] {name}: {json.dumps(chk)}", file=sys.stderr, flush=True)
    if not chk["ok"]:
        sys.exit(f"{name}: glassbox and diffrax disagree beyond {chk['tolerance']:.2e}: not the same model")

    work = pathlib.Path(tempfile.mkdtemp(prefix=f"classifiers-{name}-"))
    try:
        init = work / "init"
        subprocess.run([str(cl.GLASSBOX_BIN), "train", str(gb_model), "--iterations", "0", "--seed", "0",
                        "--threads", "1", "--out", str(init)], cwd=cl.REPO, check=True,
                       capture_output=True)
        # Whole batches of the data's first rows for the forward timing (all of a small set).
        rows = cl.load_data(name)[1].size
        batches = max(1, min(10, rows // cfg["batch"]))
        rows_file = work / "rows.csv"
        lines = pathlib.Path(cfg["data"]).read_text().splitlines()[:batches * cfg["batch"]]
        rows_file.write_text("\n".join(lines) + "\n")

        gb_joint = joint_variant(gb_model, work)
        # The same tolerance and the same controller as the peer: diffrax's defaults.
        gb_joint_i = variant(gb_model, work, f"batch = joint, {DIFFRAX_CONTROLLER}", "joint_integral")
        gb_i = variant(gb_model, work, DIFFRAX_CONTROLLER, "integral")
        peer = cl.Peer(name, cl.read_safetensors(init / "weights.safetensors"))
        # Iteration counts from one untimed run of each: a process or a diffrax measurement
        # takes ~args.seconds.
        probe = glassbox_train(gb_model, WARMUP + 2)
        g_iters = WARMUP + max(4, min(40, int(args.seconds * 1e3 / probe["ms"])))
        d_probe = med(peer.train_ms("joint", 3)[0] + peer.train_ms("vmap", 3)[0])
        d_iters = max(5, min(60, int(args.seconds * 1e3 / d_probe / 2)))
        f_probe = med(peer.forward_ms("vmap", 3)[0])
        f_runs = max(5, min(100, int(args.seconds * 1e3 / f_probe / 4)))
        print(f"[classifiers] {name}: glassbox {g_iters} iterations a process "
              f"(probe {probe['ms']:.1f} ms), diffrax {d_iters} iterations, {f_runs} forwards",
              file=sys.stderr, flush=True)

        def diffrax_side():
            out = {}
            for layout in ["joint", "vmap"]:
                times, losses, nfes = peer.train_ms(layout, d_iters)
                fwd, fnfe = peer.forward_ms(layout, f_runs)
                out[layout] = {"ms": med(times), "nfe": med(nfes), "forward_ms": med(fwd),
                               "forward_nfe": fnfe, "loss": losses[-1]}
            return out

        def glassbox_side():
            out = {"train": glassbox_train(gb_model, g_iters),
                   "train_joint": glassbox_train(gb_joint, g_iters),
                   "train_joint_integral": glassbox_train(gb_joint_i, g_iters),
                   "train_integral": glassbox_train(gb_i, g_iters),
                   "forward": glassbox_forward(gb_model, init, rows_file, batches, batched=True),
                   "forward_per_row": glassbox_forward(gb_model, init, rows_file, batches, batched=False)}
            if name == "digits":
                out["example"] = glassbox_train(EXAMPLE_DIGITS, g_iters)
            return out

        pairs = []
        for i in range(args.pairs):
            if i % 2 == 0:
                d, g = diffrax_side(), glassbox_side()
            else:
                g, d = glassbox_side(), diffrax_side()
            pairs.append({"glassbox": g, "diffrax": d})
            print(f"[classifiers] {name} pair {i + 1}/{args.pairs}: glassbox {g['train']['ms']:.2f} ms "
                  f"(joint {g['train_joint']['ms']:.2f}), "
                  f"diffrax joint {d['joint']['ms']:.2f}, vmap {d['vmap']['ms']:.2f}",
                  file=sys.stderr, flush=True)

        threads = thread_pairs(gb_model, g_iters, args) if args.thread_pairs else None
        rate = gemm_rate(cfg)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summarise(name, cfg, chk, pairs, threads, rate, g_iters, d_iters, f_runs, peer.compile_ms)


def thread_pairs(model, iters, args):
    """`--threads 1` against `--threads 2` (or every CPU this machine has), alternating, each
    process free to use every CPU."""
    cpus = set(range(os.cpu_count() or 1))
    n = max(2, min(len(cpus), args.max_threads))
    out = []
    for i in range(args.thread_pairs):
        order = [1, n] if i % 2 == 0 else [n, 1]
        got = {t: glassbox_train(model, iters, threads=t, cpus=cpus)["ms"] for t in order}
        out.append(got)
    return {"threads": n, "pairs": [{"one": p[1], "many": p[n]} for p in out],
            "load_average": os.getloadavg()}


def ratio_stats(xs):
    return {"median": med(xs), "lowest": min(xs), "highest": max(xs)}


def summarise(name, cfg, chk, pairs, threads, rate, g_iters, d_iters, f_runs, compile_ms):
    g = lambda *k: [_dig(p["glassbox"], k) for p in pairs]  # noqa: E731
    d = lambda *k: [_dig(p["diffrax"], k) for p in pairs]  # noqa: E731
    s = {"model": name, "batch": cfg["batch"], "check": chk, "glassbox_iterations": g_iters,
         "diffrax_iterations": d_iters, "diffrax_forward_runs": f_runs,
         "diffrax_compile_ms": compile_ms, "pairs": pairs, "gemm_gflops": rate}
    gt, gf, gfr = med(g("train", "ms")), med(g("forward", "ms")), med(g("forward_per_row", "ms"))
    g_nfe = med(g("train", "nfe")) / cfg["batch"]
    s["glassbox"] = {"train_ms": gt, "train_joint_ms": med(g("train_joint", "ms")),
                     "train_joint_nfe_per_row": med(g("train_joint", "nfe")) / cfg["batch"],
                     "forward_ms": gf, "forward_path": pairs[0]["glassbox"]["forward"]["path"],
                     "forward_per_row_ms": gfr, "nfe_per_row": g_nfe,
                     "forward_nfe_per_row": med(g("forward", "nfe")),
                     "backward_over_forward": (gt - gfr) / gfr,
                     "backward_over_batched_forward": (gt - gf) / gf}
    for k in ["train_joint_integral", "train_integral"]:
        s["glassbox"][f"{k}_ms"] = med(g(k, "ms"))
        s["glassbox"][f"{k}_nfe_per_row"] = med(g(k, "nfe")) / cfg["batch"]
    if name == "digits":
        s["glassbox"]["example_train_ms"] = med(g("example", "ms"))
    s["glassbox"]["gflops"] = flops(cfg, g_nfe) / (gt * 1e-3) / 1e9
    s["glassbox"]["gemm_floor_ms"] = flops(cfg, g_nfe) / (rate["best"] * 1e9) * 1e3
    for layout in ["joint", "vmap"]:
        dt, df = med(d(layout, "ms")), med(d(layout, "forward_ms"))
        nfe = med(d(layout, "nfe"))
        s[f"diffrax_{layout}"] = {
            "train_ms": dt, "forward_ms": df, "nfe_per_row": nfe,
            "forward_nfe_per_row": med(d(layout, "forward_nfe")),
            "backward_over_forward": (dt - df) / df,
            "gflops": flops(cfg, nfe) / (dt * 1e-3) / 1e9,
            "gemm_floor_ms": flops(cfg, nfe) / (rate["best"] * 1e9) * 1e3,
            # glassbox's speed relative to diffrax, pair by pair (above 1: glassbox ahead)
            "train_ratio": ratio_stats([p["diffrax"][layout]["ms"] / p["glassbox"]["train"]["ms"] for p in pairs]),
            # against glassbox's own `batch = joint`: the same model of the batch as diffrax joint
            "train_ratio_joint": ratio_stats([p["diffrax"][layout]["ms"] / p["glassbox"]["train_joint"]["ms"]
                                              for p in pairs]),
            # glassbox with diffrax's controller: the same tolerance and the same step control
            "train_ratio_integral": ratio_stats([p["diffrax"][layout]["ms"] / p["glassbox"][
                "train_joint_integral" if layout == "joint" else "train_integral"]["ms"] for p in pairs]),
            "forward_ratio": ratio_stats([p["diffrax"][layout]["forward_ms"] / p["glassbox"]["forward"]["ms"]
                                          for p in pairs]),
        }
    if threads:
        sp = [p["one"] / p["many"] for p in threads["pairs"]]
        threads["speedup"] = ratio_stats(sp)
        threads["one_ms"] = med([p["one"] for p in threads["pairs"]])
        threads["many_ms"] = med([p["many"] for p in threads["pairs"]])
        s["threads"] = threads
    return s


def _dig(d, keys):
    for k in keys:
        d = d[k]
    return d


# ---------------------------------------------------------------- report

TITLE = {"digits": "digits, batch 128", "mnist_sized": "784 → 100, batch 256"}


def markdown(meta, models):
    f = lambda x: f"{x:.0f}" if x >= 100 else f"{x:.3g}"  # noqa: E731
    out = ["<!-- generated by benches/peers/paired_classifiers.py; do not edit by hand -->", "",
           f"Paired rounds of the issue-14 classifiers, {meta['date']}, glassbox {meta['glassbox']}, "
           f"on {meta['cpu_model']}; load average at start "
           f"{', '.join(f'{x:.1f}' for x in meta['load_average_at_start'])}; "
           + (f"every timed process on CPU {meta['cpu']} " if meta["cpu"] is not None else "not pinned ")
           + f"(the thread rows: every CPU); {meta['pairs']} pair(s) per model, order alternating. "
           "Times are medians over pairs (each pair: glassbox's median iteration in a fresh "
           "process, diffrax's median of its iterations in the persistent jax process); ratios "
           "are diffrax ms / glassbox ms, median of the pairs' ratios (lowest–highest): above 1 "
           "glassbox is ahead.", "",
           "Like is compared with like: glassbox's `batch = joint` (one step size for the batch, "
           "the error norm over all rows) with diffrax's joint solve, glassbox's default per-row "
           "control with diffrax's `vmap`; the last column is glassbox per row against diffrax "
           "joint, the cheaper model of the batch.", "",
           "| per training iteration (`--threads 1`) | glassbox `batch = joint` | diffrax joint | joint vs joint | glassbox per row (default) | diffrax `vmap` | per row vs `vmap` | per row vs diffrax joint |",
           "|---|---|---|---|---|---|---|---|"]
    r = lambda x: f"**{x['median']:.2f}x** ({x['lowest']:.2f}–{x['highest']:.2f})"  # noqa: E731
    for m in models:
        j, v, g = m["diffrax_joint"], m["diffrax_vmap"], m["glassbox"]
        out.append(f"| {TITLE[m['model']]} | {f(g['train_joint_ms'])} ms | {f(j['train_ms'])} ms | "
                   f"{r(j['train_ratio_joint'])} | {f(g['train_ms'])} ms | {f(v['train_ms'])} ms | "
                   f"{r(v['train_ratio'])} | {j['train_ratio']['median']:.2f}x |")
    for m in models:
        j, v, g = m["diffrax_joint"], m["diffrax_vmap"], m["glassbox"]
        out.append(f"| forward only (`predict`), {TITLE[m['model']]} | — | {f(j['forward_ms'])} ms | — | "
                   f"{f(g['forward_ms'])} ms ({f(g['forward_per_row_ms'])} with `GLASSBOX_BATCHED=0`) | "
                   f"{f(v['forward_ms'])} ms | {v['forward_ratio']['median']:.2f}x | {j['forward_ratio']['median']:.2f}x |")
    out.append("")
    out.append("The same tolerance and the same controller: glassbox with diffrax's `PIDController` "
               f"defaults (`{DIFFRAX_CONTROLLER}`, the integral controller; glassbox's own default "
               "gains are OrdinaryDiffEq's PI, `pcoeff = 0.4, icoeff = 0.3`, above). Both tools then "
               "run Tsit5 at rtol = atol = 1e-5 under the same step-size rule; the NFE and the "
               "logit errors of both controllers are in `work_accuracy.md`:")
    out.append("")
    out.append("| per training iteration (`--threads 1`) | glassbox joint (NFE/row) | diffrax joint (NFE/row) | joint vs joint | glassbox per row (NFE/row) | diffrax `vmap` (NFE/row) | per row vs `vmap` |")
    out.append("|---|---|---|---|---|---|---|")
    for m in models:
        j, v, g = m["diffrax_joint"], m["diffrax_vmap"], m["glassbox"]
        out.append(f"| {TITLE[m['model']]} | {f(g['train_joint_integral_ms'])} ms ({g['train_joint_integral_nfe_per_row']:.1f}) | "
                   f"{f(j['train_ms'])} ms ({j['nfe_per_row']:.1f}) | {r(j['train_ratio_integral'])} | "
                   f"{f(g['train_integral_ms'])} ms ({g['train_integral_nfe_per_row']:.1f}) | "
                   f"{f(v['train_ms'])} ms ({v['nfe_per_row']:.1f}) | {r(v['train_ratio_integral'])} |")
    out.append("")
    out.append("| model | tool | NFE per row (training / forward) | backward ÷ forward | GEMM GFLOP/s | GEMM floor ms | × floor |")
    out.append("|---|---|---|---|---|---|---|")
    for m in models:
        g = m["glassbox"]
        out.append(f"| {TITLE[m['model']]} | glassbox | {g['nfe_per_row']:.1f} / {g['forward_nfe_per_row']:.1f} | "
                   f"{g['backward_over_batched_forward']:.1f} (over `predict`'s batched forward) | {g['gflops']:.2f} | "
                   f"{f(g['gemm_floor_ms'])} | {g['train_ms'] / g['gemm_floor_ms']:.1f} |")
        for layout in ["joint", "vmap"]:
            x = m[f"diffrax_{layout}"]
            out.append(f"| | diffrax {layout} | {x['nfe_per_row']:.1f} / {x['forward_nfe_per_row']:.1f} | "
                       f"{x['backward_over_forward']:.1f} | {x['gflops']:.2f} | {f(x['gemm_floor_ms'])} | "
                       f"{x['train_ms'] / x['gemm_floor_ms']:.1f} |")
    out.append("")
    for m in models:
        r = m["gemm_gflops"]
        out.append(f"- {TITLE[m['model']]}: this CPU's dgemm on the field's shapes (one thread): "
                   f"numpy {r['numpy']:.2f}, XLA {r['xla']:.2f} GFLOP/s; the GEMM floor is the "
                   "iteration's GEMM flops at the faster of the two.")
        if m["model"] == "digits":
            out.append(f"- `glassbox train examples/digits.gbx` as it stands (with "
                       f"`{_objective(EXAMPLE_DIGITS)}`, whose regularizer the peer does not compute): "
                       f"{f(m['glassbox']['example_train_ms'])} ms per iteration.")
        ch = m["check"]
        out.append(f"- Check, {TITLE[m['model']]} (initial weights, first {ch['rows']} rows, max |logit| "
                   f"{ch['max_abs_logit']:.2f}): max logit error against Dopri8 at rtol 1e-12 — glassbox "
                   f"{ch['glassbox_vs_reference']:.1e}, diffrax joint {ch['diffrax_joint_vs_reference']:.1e}, "
                   f"vmap {ch['diffrax_vmap_vs_reference']:.1e}; glassbox vs diffrax joint "
                   f"{ch['glassbox_vs_diffrax_joint']:.1e}, vmap {ch['glassbox_vs_diffrax_vmap']:.1e} "
                   f"(bound {ch['tolerance']:.1e}); initial cross-entropy glassbox "
                   f"{ch['loss_glassbox']:.10f}, diffrax joint {ch['loss_diffrax_joint']:.10f}, "
                   f"reference {ch['loss_reference']:.10f}.")
    out.append("")
    th = [m for m in models if m.get("threads")]
    if th:
        out.append("Threads (`glassbox train --threads 1` against `--threads N`, every CPU, "
                   "alternating; throughput ratio = one thread's ms / N threads' ms):")
        out.append("")
        out.append("| model | N | 1 thread ms | N threads ms | throughput ratio (median, lowest–highest) | load average after |")
        out.append("|---|---|---|---|---|---|")
        for m in th:
            t = m["threads"]
            out.append(f"| {TITLE[m['model']]} | {t['threads']} | {f(t['one_ms'])} | {f(t['many_ms'])} | "
                       f"{t['speedup']['median']:.2f} ({t['speedup']['lowest']:.2f}–{t['speedup']['highest']:.2f}) | "
                       f"{', '.join(f'{x:.1f}' for x in t['load_average'])} |")
        out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=5, help="pairs per model (default 5)")
    ap.add_argument("--only", nargs="*", default=list(cl.MODEL), choices=list(cl.MODEL))
    ap.add_argument("--seconds", type=float, default=1.5,
                    help="about how long one timed measurement runs (sets the iteration counts)")
    ap.add_argument("--thread-pairs", type=int, default=3, help="pairs of thread counts (0: none)")
    ap.add_argument("--max-threads", type=int, default=2, help="the thread count compared with 1")
    ap.add_argument("--cpu", type=int, default=None, help="the CPU to run on (default: the first)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    ap.add_argument("--print", action="store_true", help="print only; do not write results/")
    args = ap.parse_args()
    if not cl.GLASSBOX_BIN.exists():
        sys.exit(f"{cl.GLASSBOX_BIN} missing: cargo build --release")
    cpu = None if args.no_pin else c.pin(args.cpu)
    version = subprocess.run([str(cl.GLASSBOX_BIN), "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", str(cl.REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu,
            "glassbox": f"{version.removeprefix('glassbox ')} ({commit})", "load_average_at_start": os.getloadavg(),
            "pairs": args.pairs, "cpu_model": _cpu_model(), "jax": jax.__version__,
            "diffrax": cl.dfx.__version__}
    models = [model_rows(name, args) for name in args.only]
    text = markdown(meta, models)
    print(text)
    if not args.print:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "classifiers.md").write_text(text)
        (RESULTS / "classifiers.json").write_text(json.dumps({"meta": meta, "models": models}, indent=1) + "\n")


def _objective(model):
    """The `minimize` line of a model file, as written."""
    for line in pathlib.Path(model).read_text().splitlines():
        if line.startswith("minimize "):
            return line.split("#", 1)[0].strip()
    return "?"


def _cpu_model():
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
