"""`glassbox.jax.odeint` inside a jax training step against diffrax's own, side by side in one
process on one CPU (issue 20, item 4), and the Python overhead of one glassbox call.

The step: the spiral model (examples/spiral.gbx: mlp 2 -> 50 -> 2 tanh on y^3) on a batch of
20 windows of 10 observations of examples/data/spiral.csv (relative times, the field is
autonomous), mean absolute error, `jax.jit(jax.value_and_grad(loss))` over the weights, Tsit5
at rtol 1e-6, atol 1e-8 in both tools, from the model's initial weights (seed 0 of `glassbox
train --iterations 0`, read from the model). glassbox: `jax.vmap` over the windows of
`glassbox.jax.odeint` (one host call per window, forward and backward: the discrete adjoint);
diffrax: `jax.vmap` of `diffeqsolve` (each window its own steps, the same model of the batch)
with `RecursiveCheckpointAdjoint`, its default. Rounds alternate the tools; medians.

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


def glassbox_step(model, tw, windows):
    def loss(params):
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
    # The same loss and gradient to the tolerance (both solve at rtol 1e-6).
    (gl, gg), (dl, dg) = g_step(params), d_step(params)
    agree = max(float(jnp.max(jnp.abs(gg[k] - dg[k]))) / (float(jnp.max(jnp.abs(dg[k]))) + 1e-30) for k in gg)
    rounds = []
    for r in range(args.rounds):
        order = [("glassbox", g_step), ("diffrax", d_step)]
        if r % 2:
            order.reverse()
        rounds.append({name: time_ms(fn, params, args.seconds)[0] for name, fn in order})
    g_ms = statistics.median(x["glassbox"] for x in rounds)
    d_ms = statistics.median(x["diffrax"] for x in rounds)
    ratios = [x["diffrax"] / x["glassbox"] for x in rounds]
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
