"""The neural-ODE classifiers of issue 14 in diffrax (jax, CPU, f64), on glassbox's own initial
weights and data, and the synthetic data of the MNIST-sized model.

Two models, each a glassbox model file in models/ and its diffrax twin here:

- `digits` (models/digits_train.gbx: examples/digits.gbx without its error-estimate
  regularizer, so both tools minimise the same loss, and with glassbox's default controller): encoder linear 64 -> 32, field
  mlp 33 -> 64 -> 32 tanh on concat(h, t), head linear 32 -> 10, Tsit5 rtol = atol = 1e-5 over
  [0, 1], cross-entropy, Adam lr 1e-3, batch 128, on examples/data/digits.csv.
- `mnist_sized` (models/mnist_sized.gbx): 784 -> latent 100, field mlp 101 -> 100 -> 100 tanh on
  concat(h, t), head 100 -> 10, batch 256, the same solver and optimiser, on a seeded
  synthetic 28x28 image set (`make_mnist_sized`, written to data/mnist_sized.csv, gitignored,
  at bench time).

The diffrax side loads the weights `glassbox train MODEL --iterations 0 --seed 0` writes (its
initial weights, weights.safetensors), reads the same CSV, and solves in two layouts:
`joint` (the batch as one (B, n) state, one step size for the batch, diffrax's and
torchdiffeq's idiom) and `vmap` (one solve per row under jax.vmap, each row its own steps, as
glassbox's per-row default). Gradients by diffrax's default RecursiveCheckpointAdjoint (a
discrete adjoint through the solver's steps, like glassbox's). `python classifiers.py --check`
compares the logits of both tools on the first batch against a tight reference solve.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy's GEMMs on one thread, as jax's

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
# XLA's compiles of these solves take 10-50 s each; kept between runs (gitignored data/).
jax.config.update("jax_compilation_cache_dir",
                  str(pathlib.Path(__file__).resolve().parent / "data" / "jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)

import diffrax as dfx  # noqa: E402
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
MODELS = HERE / "models"
DATA = HERE / "data"  # gitignored: the synthetic CSV is generated here
GLASSBOX_BIN = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release" / "glassbox"

RTOL = ATOL = 1e-5
LR = 1e-3
MAX_STEPS = 4096

# Per model: the glassbox file, the data file, the layer sizes, the batch.
MODEL = {
    "digits": {"file": MODELS / "digits_train.gbx", "data": REPO / "examples" / "data" / "digits.csv",
               "inputs": 64, "latent": 32, "hidden": 64, "classes": 10, "batch": 128},
    "mnist_sized": {"file": MODELS / "mnist_sized.gbx", "data": DATA / "mnist_sized.csv",
                    "inputs": 784, "latent": 100, "hidden": 100, "classes": 10, "batch": 256},
}

MNIST_ROWS = 2048  # 8 batches of 256; ~6 MB of CSV
MNIST_SEED = 0


def make_mnist_sized(path=None, rows=MNIST_ROWS, seed=MNIST_SEED):
    """A seeded synthetic 28x28 image classification set in the layout of the digits data (784
    pixel columns in [0, 1] with three decimals, then the label 0-9, no header): each class is a
    prototype of four Gaussian blobs (centres in the middle 16x16, widths 1.5-3 pixels); a
    sample is its class's prototype shifted by up to 2 pixels each way, scaled by 0.7-1.0, plus
    N(0, 0.15) noise, clipped to [0, 1]. The classes overlap enough that training has work to
    do and are separable enough that the loss falls. Written only when missing or different."""
    path = pathlib.Path(path or MODEL["mnist_sized"]["data"])
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    protos = []
    for _ in range(10):
        img = np.zeros((28, 28))
        for _ in range(4):
            cy, cx = rng.uniform(6, 22, size=2)
            s = rng.uniform(1.5, 3.0)
            img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
        protos.append(img / img.max())
    labels = rng.permutation(np.arange(rows) % 10)
    out = np.empty((rows, 785))
    for i, k in enumerate(labels):
        dy, dx = rng.integers(-2, 3, size=2)
        img = np.roll(protos[k], (dy, dx), axis=(0, 1)) * rng.uniform(0.7, 1.0)
        img = np.clip(img + rng.normal(0.0, 0.15, size=(28, 28)), 0.0, 1.0)
        out[i, :784] = img.ravel()
        out[i, 784] = k
    text = "\n".join(",".join(f"{v:.3f}" for v in r[:784]) + f",{int(r[784])}" for r in out) + "\n"
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".csv.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path


def load_data(name):
    """(x, labels) of a model's CSV: features then the label, no header."""
    cfg = MODEL[name]
    if name == "mnist_sized":
        make_mnist_sized()
    raw = np.loadtxt(cfg["data"], delimiter=",")
    return raw[:, :cfg["inputs"]], raw[:, cfg["inputs"]].astype(np.int64)


def read_safetensors(path):
    """{name: f64 array} of a safetensors file (the format is an 8-byte little-endian header
    length, a JSON header of dtype/shape/offsets, then the raw bytes; glassbox writes f64)."""
    raw = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for key, t in header.items():
        if key == "__metadata__":
            continue
        assert t["dtype"] == "F64", f"{key}: {t['dtype']}"
        a, b = t["data_offsets"]
        out[key] = np.frombuffer(body[a:b], dtype="<f8").reshape(t["shape"]).copy()
    return out


def glassbox_initial_weights(name, seed=0):
    """glassbox's initial weights of a model under `seed` (`train --iterations 0` writes them
    untrained), as {name: array}: enc.W1, enc.b1, f.W1, f.b1, f.W2, f.b2, dec.W1, dec.b1."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(GLASSBOX_BIN), "train", str(MODEL[name]["file"]), "--iterations", "0",
               "--seed", str(seed), "--threads", "1", "--out", tmp, "--overwrite"]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"glassbox train --iterations 0 failed:\n{proc.stderr[-2000:]}")
        return read_safetensors(pathlib.Path(tmp) / "weights.safetensors")


def params(w):
    return {k: jnp.asarray(v) for k, v in w.items()}


def field(t, h, p):
    """mlp(concat(h, t)): h is (n,) (vmap) or (B, n) (joint, t broadcast to every row)."""
    tt = jnp.broadcast_to(t, h.shape[:-1] + (1,)).astype(h.dtype)
    z = jnp.tanh(jnp.concatenate([h, tt], axis=-1) @ p["f.W1"].T + p["f.b1"])
    return z @ p["f.W2"].T + p["f.b2"]


def solve(p, h0, rtol=RTOL, atol=ATOL, solver=None):
    """h(1) from h(0) over [0, 1]; returns (h(1), steps). Any leading batch shape is one state."""
    sol = dfx.diffeqsolve(dfx.ODETerm(field), solver or dfx.Tsit5(), 0.0, 1.0, None, h0, args=p,
                          saveat=dfx.SaveAt(t1=True), max_steps=MAX_STEPS,
                          stepsize_controller=dfx.PIDController(rtol=rtol, atol=atol))
    return sol.ys[-1], sol.stats["num_steps"]


def logits(p, x, layout, rtol=RTOL, atol=ATOL, solver=None):
    """(logits (B, classes), field evaluations per row, mean over rows) of a batch. Tsit5 is
    FSAL: 6 evaluations per step attempt, plus the first stage and the two of diffrax's
    initial step selection."""
    h0 = x @ p["enc.W1"].T + p["enc.b1"]
    if layout == "joint":
        h1, steps = solve(p, h0, rtol, atol, solver)
    else:
        h1, steps = jax.vmap(lambda h: solve(p, h, rtol, atol, solver))(h0)
    nfe = 6 * jnp.mean(steps) + 3
    return h1 @ p["dec.W1"].T + p["dec.b1"], nfe


def cross_entropy(z, y):
    return jnp.mean(jax.nn.logsumexp(z, axis=-1) - jnp.take_along_axis(z, y[:, None], axis=-1)[:, 0])


def steps(layout, rtol=RTOL, atol=ATOL):
    """(train step, forward, optimiser) of a layout, jitted: a step is the forward, the
    gradient and Adam's update (lr 1e-3, glassbox's defaults: betas 0.9, 0.999, eps 1e-8);
    `forward` the loss alone. Both also return the mean field evaluations per row."""
    opt = optax.adam(LR, b1=0.9, b2=0.999, eps=1e-8)

    def loss(p, x, y):
        z, nfe = logits(p, x, layout, rtol, atol)
        return cross_entropy(z, y), nfe

    @eqx.filter_jit
    def step(p, state, x, y):
        (value, nfe), grads = jax.value_and_grad(loss, has_aux=True)(p, x, y)
        updates, state = opt.update(grads, state, p)
        return optax.apply_updates(p, updates), state, value, nfe

    @eqx.filter_jit
    def forward(p, x, y):
        return loss(p, x, y)

    return step, forward, opt


class Batches:
    """Shuffled minibatches of `batch` rows, epoch after epoch (numpy, seeded). glassbox draws
    its own (ChaCha8) shuffles of the same rows: the tools see the same data, not the same
    order; only timing and the loss's trend compare."""

    def __init__(self, x, y, batch, seed=1):
        self.x, self.y, self.batch = jnp.asarray(x), jnp.asarray(y), batch
        self.rng = np.random.default_rng(seed)
        self.order, self.at = self.rng.permutation(len(y)), 0

    def next(self):
        if self.at + self.batch > len(self.order):
            self.order, self.at = self.rng.permutation(len(self.y)), 0
        idx = self.order[self.at:self.at + self.batch]
        self.at += self.batch
        return self.x[idx], self.y[idx]


class Peer:
    """One model's diffrax side, compiled once: `train_ms(layout, iters)` times training
    iterations (continuing from where the last call stopped), `forward_ms(layout, runs)` the
    loss of a fixed batch."""

    def __init__(self, name, weights, rtol=RTOL, atol=ATOL):
        self.name, self.cfg = name, MODEL[name]
        x, y = load_data(name)
        self.p0 = params(weights)
        self.batches = Batches(x, y, self.cfg["batch"])
        self.fixed = (jnp.asarray(x[:self.cfg["batch"]]), jnp.asarray(y[:self.cfg["batch"]]))
        self.layouts = {}
        for layout in ["joint", "vmap"]:
            step, forward, opt = steps(layout, rtol, atol)
            self.layouts[layout] = {"step": step, "forward": forward, "p": self.p0,
                                    "state": opt.init(self.p0)}
        self.compile_ms = {}
        for layout in self.layouts:
            t0 = time.perf_counter()
            self.train_ms(layout, 1)
            self.forward_ms(layout, 1)
            self.compile_ms[layout] = (time.perf_counter() - t0) * 1e3

    def train_ms(self, layout, iters):
        """Per-iteration wall times (ms) of `iters` training iterations, their losses and mean
        field evaluations per row."""
        s = self.layouts[layout]
        times, losses, nfes = [], [], []
        for _ in range(iters):
            xb, yb = self.batches.next()
            t0 = time.perf_counter()
            s["p"], s["state"], value, nfe = jax.block_until_ready(
                s["step"](s["p"], s["state"], xb, yb))
            times.append((time.perf_counter() - t0) * 1e3)
            losses.append(float(value))
            nfes.append(float(nfe))
        return times, losses, nfes

    def forward_ms(self, layout, runs):
        """Wall times (ms) of `runs` forward passes (encoder, solve, head, loss) of the first
        batch of the data at the initial weights; and their field evaluations per row."""
        f = self.layouts[layout]["forward"]
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            _, nfe = jax.block_until_ready(f(self.p0, *self.fixed))
            times.append((time.perf_counter() - t0) * 1e3)
        return times, float(nfe)


def glassbox_logits(name, weights_dir, rows, model=None):
    """glassbox's logits for the first `rows` rows of the model's data at the weights in
    `weights_dir` (`glassbox predict --input`; `model`: another file of the same model, by
    default the benchmark's), as a (rows, classes) array."""
    cfg = MODEL[name]
    with tempfile.TemporaryDirectory() as tmp:
        inp = pathlib.Path(tmp) / "rows.csv"
        lines = pathlib.Path(cfg["data"]).read_text().splitlines()[:rows]
        inp.write_text("\n".join(lines) + "\n")
        out = pathlib.Path(tmp) / "logits.csv"
        cmd = [str(GLASSBOX_BIN), "predict", str(model or cfg["file"]), "--weights", str(weights_dir),
               "--input", str(inp), "--threads", "1", "-o", str(out)]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"glassbox predict failed:\n{proc.stderr[-2000:]}")
        text = out.read_text().splitlines()
    head = text[0].split(",")
    cols = [i for i, h in enumerate(head) if h.startswith("logit")]
    return np.array([[float(r.split(",")[i]) for i in cols] for r in text[1:]])


# A mismatch of the two models (a transposed weight, t left out of the field, a wrong bias)
# moves the logits by a good fraction of their size; each tool's solver error at
# rtol = atol = 1e-5 moves them by about 1e-5 of it (Tsit5's global error over [0, 1] is of
# the order of the tolerance on h, and the head is linear). The check's bound, 1e-3 of the
# largest |logit| (at least 1e-3), lies two decades above the second and two below the first:
# it passes a correct peer and fails a wrong one. The errors measured against the tight
# reference are reported beside it.
LOGIT_TOL = 1e-3


def reference_logits(p, xb):
    """The tight reference of `check`: diffrax Dopri8, rtol = atol = 1e-12, one solve per row."""
    ref, _ = jax.jit(lambda p, x: logits(p, x, "vmap", 1e-12, 1e-12, dfx.Dopri8()))(p, jnp.asarray(xb))
    return np.asarray(ref)


def check(name, seed=0):
    """The initial logits and loss of both tools on the first batch, against a tight
    reference (diffrax Dopri8, rtol 1e-12, atol 1e-12, one solve per row); a dict of errors."""
    cfg = MODEL[name]
    x, y = load_data(name)
    xb, yb = x[:cfg["batch"]], y[:cfg["batch"]]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(GLASSBOX_BIN), "train", str(cfg["file"]), "--iterations", "0", "--seed",
               str(seed), "--threads", "1", "--out", tmp, "--overwrite"]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"glassbox train --iterations 0 failed:\n{proc.stderr[-2000:]}")
        w = read_safetensors(pathlib.Path(tmp) / "weights.safetensors")
        g = glassbox_logits(name, tmp, cfg["batch"])
    p = params(w)
    ref = reference_logits(p, xb)
    out = {"model": name, "rows": int(len(yb)), "max_abs_logit": float(np.abs(ref).max()),
           "tolerance": LOGIT_TOL * max(1.0, float(np.abs(ref).max())),
           "glassbox_vs_reference": float(np.abs(g - ref).max())}
    ce = lambda z: float(cross_entropy(jnp.asarray(z), jnp.asarray(yb)))  # noqa: E731
    out["loss_reference"] = ce(ref)
    out["loss_glassbox"] = ce(g)
    for layout in ["joint", "vmap"]:
        z, _ = jax.jit(lambda p, x, layout=layout: logits(p, x, layout))(p, jnp.asarray(xb))
        z = np.asarray(z)
        out[f"diffrax_{layout}_vs_reference"] = float(np.abs(z - ref).max())
        out[f"glassbox_vs_diffrax_{layout}"] = float(np.abs(g - z).max())
        out[f"loss_diffrax_{layout}"] = ce(z)
    out["ok"] = all(v <= out["tolerance"] for k, v in out.items()
                    if k.endswith(("_reference", "_vmap", "_joint")) and not k.startswith("loss"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare both tools' initial logits")
    ap.add_argument("--data", action="store_true", help="only write data/mnist_sized.csv")
    ap.add_argument("--only", nargs="*", default=list(MODEL), choices=list(MODEL))
    args = ap.parse_args()
    if args.data:
        print(make_mnist_sized())
        return
    for name in args.only:
        if args.check:
            r = check(name)
            print(json.dumps(r))
            if not r["ok"]:
                sys.exit(f"{name}: the tools' logits differ by more than {r['tolerance']:.2e}")
            continue
        peer = Peer(name, glassbox_initial_weights(name))
        for layout in peer.layouts:
            times, losses, nfes = peer.train_ms(layout, 20)
            fwd, fnfe = peer.forward_ms(layout, 20)
            print(json.dumps({"tool": "diffrax", "version": dfx.__version__, "model": name,
                              "layout": layout, "train_ms": float(np.median(times[5:])),
                              "forward_ms": float(np.median(fwd)), "nfe_per_row": float(np.median(nfes)),
                              "forward_nfe_per_row": fnfe, "loss_first": losses[0],
                              "loss_last": losses[-1], "compile_ms": peer.compile_ms[layout]}),
                  flush=True)


if __name__ == "__main__":
    main()
