"""`glassbox.jax.odeint` inside a jax training step against diffrax's own, side by side in one
process on one CPU (issue 20, item 4), on the spiral and the digits classifier, and the Python
overhead of one glassbox call.

The step: the spiral model (examples/spiral.gbx: mlp 2 -> 50 -> 2 tanh on y^3) on a batch of
20 windows of 10 observations of examples/data/spiral.csv (relative times, the field is
autonomous), mean absolute error, `jax.jit(jax.value_and_grad(loss))` over the weights, Tsit5
at rtol 1e-6, atol 1e-8 in both tools, from the model's initial weights (seed 0 of `glassbox
train --iterations 0`, read from the model). glassbox: `jax.vmap` over the windows of
`glassbox.jax.odeint` (one host call per window, forward and backward: the discrete adjoint);
diffrax: `jax.vmap` of `diffeqsolve` (each window its own steps, the same model of the batch)
with `RecursiveCheckpointAdjoint`, its default. Rounds alternate the tools; medians.

The digits step: the classifier of examples/digits.gbx (encoder linear 64 -> 32, field mlp
33 -> 64 -> 32 tanh on concat(h, t) over [0, 1], head linear 32 -> 10, cross-entropy) on one
batch of 128 images, its encoder and head in jax and its ODE in either tool: glassbox's field
is a model of its own (`DIGITS_FIELD`) whose weights come from jax, `glassbox.jax.odeint` on the
batch of encoded states (one host call each way: glassbox's batched solver and sweep; also timed
as `jax.vmap` over single-state calls, the rows one by one); diffrax's is `classifiers.py`'s, in
both of its layouts (`vmap`, each row its own steps as glassbox; `joint`, one step size for the
batch). Tsit5 rtol = atol = 1e-5 with the integral step-size controller (diffrax's default)
in both, glassbox's initial weights (`train --iterations 0 --seed 0`) for both.

Overhead: `Model.solve` on one window from Python against the solve time glassbox reports for
itself (`timing["solve_ms"]`), and `Model.vjp` likewise: the difference is argument
conversion, the call and the result arrays.

Needs the module in this venv: `(cd python && VIRTUAL_ENV=$PWD/../benches/peers/.venv
maturin develop --release)`.

    benches/peers/.venv/bin/python benches/peers/python_jax.py [--rounds N] [--cpu N]

prints a Markdown table and writes results/python_jax.md.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import pathlib  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import diffrax as dfx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import classifiers as cl  # noqa: E402
import common as c  # noqa: E402
import glassbox  # noqa: E402
import glassbox.jax as gj  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
LENGTH, BATCH, RTOL, ATOL = 10, 20, 1e-6, 1e-8


def setup():
    model = glassbox.Model.from_file(str(REPO / "examples" / "spiral.gbx"))
    data = np.loadtxt(REPO / "examples" / "data" / "spiral.csv", delimiter=",", skiprows=1)
    t, obs = data[:, 0], data[:, 1:]
    starts = np.random.default_rng(0).integers(0, len(t) - LENGTH, BATCH)
    windows = jnp.asarray(obs[starts[:, None] + np.arange(LENGTH)])
    tw = t[:LENGTH] - t[0]
    params = {k: jnp.asarray(v) for k, v in model.params.items()}
    return model, tw, windows, params


def glassbox_step(model, tw, windows, layout="vmap"):
    """`vmap`: `jax.vmap` over single-window calls; `batch`: the windows' first states as one
    (20, 2) batch in one call (the spiral's 50-wide layer is below the GEMM size, so glassbox
    solves the rows one by one either way)."""
    def loss(params):
        if layout == "batch":
            y = gj.odeint(model, windows[:, 0], tw, params, rtol=RTOL, atol=ATOL)
        else:
            y = jax.vmap(lambda y0: gj.odeint(model, y0, tw, params, rtol=RTOL, atol=ATOL))(windows[:, 0])
        return jnp.mean(jnp.abs(y - windows))
    return jax.jit(jax.value_and_grad(loss))


def diffrax_step(tw, windows):
    ts = jnp.asarray(tw)

    def field(t, y, p):
        z = jnp.tanh(p["f.W1"] @ y ** 3 + p["f.b1"])
        return p["f.W2"] @ z + p["f.b2"]

    def solve(y0, p):
        return dfx.diffeqsolve(dfx.ODETerm(field), dfx.Tsit5(), ts[0], ts[-1], None, y0, args=p,
                               saveat=dfx.SaveAt(ts=ts), max_steps=100_000,
                               stepsize_controller=dfx.PIDController(rtol=RTOL, atol=ATOL)).ys

    def loss(params):
        y = jax.vmap(solve, in_axes=(0, None))(windows[:, 0], params)
        return jnp.mean(jnp.abs(y - windows))
    return jax.jit(jax.value_and_grad(loss))


# The digits classifier's field alone, for glassbox.jax.odeint (its encoder and head are jax's).
DIGITS_FIELD = """model digits_field
net f = mlp(33, 64, 32; act = tanh)
state h[32] = 0
dh/dt = f(concat(h, t))
solve tsit5(rtol = 1e-5, atol = 1e-5, pcoeff = 0, icoeff = 1) over [0, 1]
"""


def digits_setup():
    x, y = cl.load_data("digits")
    rows = cl.MODEL["digits"]["batch"]
    weights = cl.params(cl.glassbox_initial_weights("digits", seed=0))
    return glassbox.Model.from_source(DIGITS_FIELD), jnp.asarray(x[:rows]), jnp.asarray(y[:rows]), weights


def digits_glassbox_step(field_model, x, y, layout):
    """`batch`: the encoder's (128, 32) states as one `odeint` call (glassbox's batched solver
    and sweep); `vmap`: `jax.vmap` over single-state calls (one host call, rows one by one)."""
    def loss(p):
        h0 = x @ p["enc.W1"].T + p["enc.b1"]
        fp = {k: p[k] for k in ("f.W1", "f.b1", "f.W2", "f.b2")}
        if layout == "batch":
            h1 = gj.odeint(field_model, h0, [0.0, 1.0], fp)[:, -1]
        else:
            h1 = jax.vmap(lambda h: gj.odeint(field_model, h, [0.0, 1.0], fp)[-1])(h0)
        return cl.cross_entropy(h1 @ p["dec.W1"].T + p["dec.b1"], y)
    return jax.jit(jax.value_and_grad(loss))


def digits_diffrax_step(x, y, layout):
    def loss(p):
        return cl.cross_entropy(cl.logits(p, x, layout)[0], y)
    return jax.jit(jax.value_and_grad(loss))


def time_ms(fn, arg, seconds):
    out = fn(arg)
    jax.block_until_ready(out)
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t0 = time.perf_counter()
        jax.block_until_ready(fn(arg))
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--cpu", type=int, default=None)
    args = ap.parse_args()
    cpu = c.pin(args.cpu)
    model, tw, windows, params = setup()
    g_step, d_step = glassbox_step(model, tw, windows), diffrax_step(tw, windows)
    b_step = glassbox_step(model, tw, windows, "batch")
    # The same loss and gradient to the tolerance (both solve at rtol 1e-6).
    (gl, gg), (dl, dg) = g_step(params), d_step(params)
    agree = max(float(jnp.max(jnp.abs(gg[k] - dg[k]))) / (float(jnp.max(jnp.abs(dg[k]))) + 1e-30) for k in gg)
    rounds = []
    for r in range(args.rounds):
        order = [("glassbox", g_step), ("glassbox batch", b_step), ("diffrax", d_step)]
        if r % 2:
            order.reverse()
        rounds.append({name: time_ms(fn, params, args.seconds)[0] for name, fn in order})
    g_ms = statistics.median(x["glassbox"] for x in rounds)
    d_ms = statistics.median(x["diffrax"] for x in rounds)
    ratios = [x["diffrax"] / x["glassbox"] for x in rounds]
    b_ms = statistics.median(x["glassbox batch"] for x in rounds)
    b_ratios = [x["diffrax"] / x["glassbox batch"] for x in rounds]
    # The digits classifier: glassbox's ODE against diffrax's two layouts.
    field_model, dx, dy, dp = digits_setup()
    d_steps = {"glassbox": digits_glassbox_step(field_model, dx, dy, "batch"),
               "glassbox vmap": digits_glassbox_step(field_model, dx, dy, "vmap"),
               "diffrax vmap": digits_diffrax_step(dx, dy, "vmap"),
               "diffrax joint": digits_diffrax_step(dx, dy, "joint")}
    values = {name: fn(dp) for name, fn in d_steps.items()}
    d_agree = max(float(jnp.max(jnp.abs(values["glassbox"][1][k] - values["diffrax vmap"][1][k])))
                  / (float(jnp.max(jnp.abs(values["diffrax vmap"][1][k]))) + 1e-30) for k in dp)
    d_rounds = []
    for r in range(args.rounds):
        order = list(d_steps.items())
        if r % 2:
            order.reverse()
        d_rounds.append({name: time_ms(fn, dp, args.seconds)[0] for name, fn in order})
    d_med = {name: statistics.median(x[name] for x in d_rounds) for name in d_steps}
    d_ratio = {name: [x[name] / x["glassbox"] for x in d_rounds] for name in ("diffrax vmap", "diffrax joint")}
    # The overhead of one call from Python.
    y0 = np.asarray(windows[0, 0])
    p_np = {k: np.asarray(v) for k, v in params.items()}
    model.solve(t=tw, y0=y0, params=p_np)
    calls, inside = [], []
    for _ in range(200):
        t0 = time.perf_counter()
        s = model.solve(t=tw, y0=y0, params=p_np)
        calls.append((time.perf_counter() - t0) * 1e3)
        inside.append(s.timing["solve_ms"])
    cot = np.ones((LENGTH, 2))
    model.vjp(cot, t=tw, y0=y0, params=p_np)
    vcalls, vinside = [], []
    for _ in range(200):
        t0 = time.perf_counter()
        g = model.vjp(cot, t=tw, y0=y0, params=p_np)
        vcalls.append((time.perf_counter() - t0) * 1e3)
        vinside.append(g["solution"].timing["solve_ms"])
    med = statistics.median
    lines = [
        "<!-- generated by benches/peers/python_jax.py; do not edit by hand -->", "",
        f"A jax training step (value and gradient) on 20 spiral windows of 10 points, Tsit5 rtol {RTOL:g} "
        f"atol {ATOL:g}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, CPU {cpu}, {args.rounds} "
        f"alternating rounds, load average {os.getloadavg()[0]:.1f}; jax {jax.__version__}, diffrax "
        f"{dfx.__version__}, glassbox {glassbox.__version__}. The two gradients agree to {agree:.1e} "
        "(relative, largest over the weights: both solve at rtol 1e-6).", "",
        "| step | glassbox.jax.odeint (vmap) | diffrax (vmap) | ratio (diffrax / glassbox, lowest–highest) |",
        "|---|---|---|---|",
        f"| value and gradient | {g_ms:.2f} ms | {d_ms:.2f} ms | **{med(ratios):.2f}x** ({min(ratios):.2f}–{max(ratios):.2f}) |",
        f"| the same, the 20 windows as one batch `y0` (20, 2) | {b_ms:.2f} ms | {d_ms:.2f} ms | **{med(b_ratios):.2f}x** ({min(b_ratios):.2f}–{max(b_ratios):.2f}) |",
        "",
        "The digits classifier, one batch of 128 images: a jitted value-and-gradient step, its encoder "
        "and head in jax, its ODE in glassbox (`glassbox.jax.odeint` on the (128, 32) batch of "
        "initial states: glassbox's batched solver and sweep) or diffrax; Tsit5 rtol = atol = 1e-5, "
        "the integral controller in both. The gradients of glassbox and diffrax's `vmap` agree to "
        f"{d_agree:.1e} (relative, largest over the weights). `jax.vmap` over single-state "
        f"`odeint` calls (glassbox solving the rows one by one) takes {d_med['glassbox vmap']:.1f} ms.", "",
        "| step | glassbox.jax.odeint (batch) | diffrax (vmap) | diffrax (joint) | ratio vs vmap | ratio vs joint |",
        "|---|---|---|---|---|---|",
        f"| value and gradient | {d_med['glassbox']:.1f} ms | {d_med['diffrax vmap']:.1f} ms | "
        f"{d_med['diffrax joint']:.1f} ms | **{med(d_ratio['diffrax vmap']):.2f}x** "
        f"({min(d_ratio['diffrax vmap']):.2f}–{max(d_ratio['diffrax vmap']):.2f}) | "
        f"**{med(d_ratio['diffrax joint']):.2f}x** ({min(d_ratio['diffrax joint']):.2f}–"
        f"{max(d_ratio['diffrax joint']):.2f}) |",
        "",
        "| one call from Python, one window | call | glassbox's own time | overhead |",
        "|---|---|---|---|",
        f"| `Model.solve` | {med(calls) * 1e3:.0f} µs | {med(inside) * 1e3:.0f} µs | {(med(calls) - med(inside)) * 1e3:.0f} µs |",
        f"| `Model.vjp` (solve + adjoint) | {med(vcalls) * 1e3:.0f} µs | {med(vinside) * 1e3:.0f} µs | {(med(vcalls) - med(vinside)) * 1e3:.0f} µs |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "python_jax.md").write_text(text)


if __name__ == "__main__":
    main()
