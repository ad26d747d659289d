"""diffrax peer (jax, CPU, f64): Lorenz (Tsit5), Robertson (Kvaerno3, Kvaerno5), spiral forward
(Dopri5 and Tsit5, SaveAt 1 000 points), neural SDE Euler-Maruyama (batch 20, 1 000 steps,
forward and forward + gradient), spiral training (ms / iteration, Tsit5, vanilla L1 loss).

Each solve is jax.jit-compiled once per (problem, method, tolerance); `compile_ms` is the first
call (trace + XLA compile + one run), `median_ms` the median of the later calls.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import diffrax as dfx  # noqa: E402
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import lineax as lx  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import common as c  # noqa: E402

MAX_STEPS = 200_000


def lorenz(t, y, args):
    x, yy, z = y
    return jnp.stack([10.0 * (yy - x), x * (28.0 - z) - yy, x * yy - (8.0 / 3.0) * z])


def robertson(t, y, args):
    y1, y2, y3 = y
    return jnp.stack([-0.04 * y1 + 1e4 * y2 * y3,
                      0.04 * y1 - 1e4 * y2 * y3 - 3e7 * y2 * y2,
                      3e7 * y2 * y2])


def mlp(p, y):
    """Spiral MLP on y**3; y has shape (..., 2)."""
    h = jnp.tanh((y ** 3) @ p["W1"].T + p["b1"])
    return h @ p["W2"].T + p["b2"]


def weights():
    w = c.load_weights()
    p = {k: jnp.asarray(w[k]) for k in ["W1", "b1", "W2", "b2"]}
    g = {k: jnp.asarray(v) for k, v in w["sde_diffusion"].items()}
    return p, g


def timed(args, fn):
    """First call compiles; returns (median_ms, runs, compile_ms, result)."""
    def call():
        return jax.block_until_ready(fn())
    return c.time_runs(call, args)


def ode_solve(f, solver, t_end, rtol, atol, stiff=False):
    """The jitted solve of one ODE row: y(t_end) only (SaveAt(t1=True)), steps, rejections."""
    ctrl = dfx.PIDController(rtol=rtol, atol=atol, pcoeff=0.3 if stiff else 0.0,
                             icoeff=0.4 if stiff else 1.0)

    @jax.jit
    def solve():
        sol = dfx.diffeqsolve(dfx.ODETerm(f), solver, 0.0, t_end, None, jnp.array([1.0, 0.0, 0.0]),
                              stepsize_controller=ctrl, max_steps=MAX_STEPS,
                              saveat=dfx.SaveAt(t1=True))
        return sol.ys[-1], sol.stats["num_steps"], sol.stats["num_rejected_steps"]
    return solve


def ode_rows(args):
    def row(problem, f, name, solver, t_end, rtol, atol, stiff=False):
        median_ms, runs, compile_ms, (y, steps, rej) = timed(
            args, ode_solve(f, solver, t_end, rtol, atol, stiff))
        c.emit(args, tool="diffrax", version=dfx.__version__, method=name, problem=problem,
               t_end=t_end, rtol=rtol, atol=atol, median_ms=median_ms, runs=runs,
               steps=int(steps), rejected=int(rej), compile_ms=compile_ms,
               final=np.asarray(y).tolist())

    row("lorenz", lorenz, "Tsit5", dfx.Tsit5(), c.LORENZ_T_END, 1e-6, 1e-9)
    for rtol in c.sweep(args):
        row("lorenz_t10", lorenz, "Tsit5", dfx.Tsit5(), c.LORENZ_WP_T_END, rtol, c.lorenz_atol(rtol))
    for name, solver in [("Kvaerno3", dfx.Kvaerno3()), ("Kvaerno5", dfx.Kvaerno5())]:
        for rtol in c.sweep(args):
            row("robertson", robertson, name, solver, c.ROBERTSON_T_END, rtol,
                c.robertson_atol(rtol), stiff=True)


def spiral_solve(p, solver):
    """The jitted spiral forward solve with 1 000 save points; returns (ys, steps)."""
    ts = jnp.linspace(0.0, c.SPIRAL_T_END, c.SPIRAL_POINTS)
    y0 = jnp.asarray(c.SPIRAL_Y0)

    @jax.jit
    def solve(p):
        sol = dfx.diffeqsolve(dfx.ODETerm(lambda t, y, p: mlp(p, y)), solver, 0.0, c.SPIRAL_T_END,
                              None, y0, args=p, saveat=dfx.SaveAt(ts=ts), max_steps=MAX_STEPS,
                              stepsize_controller=dfx.PIDController(rtol=c.SPIRAL_RTOL,
                                                                    atol=c.SPIRAL_ATOL))
        return sol.ys, sol.stats["num_steps"]
    return lambda: solve(p)


def spiral_rows(args, p):
    for name, solver in [("Dopri5", dfx.Dopri5()), ("Tsit5", dfx.Tsit5())]:
        median_ms, runs, compile_ms, (ys, steps) = timed(args, spiral_solve(p, solver))
        c.emit(args, tool="diffrax", version=dfx.__version__, method=name, problem="spiral_forward",
               t_end=c.SPIRAL_T_END, rtol=c.SPIRAL_RTOL, atol=c.SPIRAL_ATOL, median_ms=median_ms,
               runs=runs, steps=int(steps), compile_ms=compile_ms, final=np.asarray(ys[-1]).tolist())


def sde_rows(args, p, g):
    """Ito, diagonal noise: du = mlp(u) dt + (Wg u + bg) * dW, u0 = [2, 0], batch of 20 paths.
    VirtualBrownianTree (tol dt/2), diffrax's documented choice: UnsafeBrownianPath would be
    cheaper but diffrax refuses it under reverse-mode differentiation."""
    dt = c.SDE_T_END / c.SDE_STEPS
    y0 = jnp.asarray(c.SPIRAL_Y0)

    def one_path(params, key):
        p, g = params
        drift = dfx.ODETerm(lambda t, u, a: mlp(p, u))
        bm = dfx.VirtualBrownianTree(0.0, c.SDE_T_END, tol=dt / 2, shape=(2,), key=key)
        diffusion = dfx.ControlTerm(lambda t, u, a: lx.DiagonalLinearOperator(g["Wg"] @ u + g["bg"]), bm)
        sol = dfx.diffeqsolve(dfx.MultiTerm(drift, diffusion), dfx.Euler(), 0.0, c.SDE_T_END, dt, y0,
                              saveat=dfx.SaveAt(t1=True), max_steps=c.SDE_STEPS + 1)
        return sol.ys[-1]

    keys = jax.random.split(jax.random.key(0), c.SDE_BATCH)

    @jax.jit
    def forward(params):
        return jax.vmap(one_path, in_axes=(None, 0))(params, keys)

    @jax.jit
    def loss_and_grad(params):
        return jax.value_and_grad(lambda q: jnp.mean(forward(q)))(params)

    for problem, fn in [("sde_forward", lambda: forward((p, g))),
                        ("sde_grad", lambda: loss_and_grad((p, g)))]:
        median_ms, runs, compile_ms, out = timed(args, fn)
        final = np.asarray(out).mean(axis=0).tolist() if problem == "sde_forward" else [float(out[0])]
        c.emit(args, tool="diffrax", version=dfx.__version__, method="Euler (EM), VirtualBrownianTree",
               problem=problem, t_end=c.SDE_T_END, rtol=None, atol=None, median_ms=median_ms,
               runs=runs, steps=c.SDE_STEPS, batch=c.SDE_BATCH, compile_ms=compile_ms, final=final)


def train_steps(p):
    """Spiral training (torchdiffeq ode_demo, the glassbox benchmark model
    models/spiral_train.gbx): the data are examples/data/spiral.csv (what glassbox reads); each
    iteration draws 20 random windows of 10 consecutive points, solves them with Tsit5 (rtol
    1e-7, atol 1e-9) from their first point, L1 loss, gradient by diffrax's default
    RecursiveCheckpointAdjoint (discrete adjoint through the solver's steps, like glassbox),
    RMSprop(lr 1e-3, decay 0.99, eps 1e-8); the whole step is one jit-compiled function.

    Two layouts: `joint`, the 20 windows as one (20, 2) state with one step-size sequence
    (torchdiffeq's and diffrax's idiom), and `vmap`, one solve per window batched by jax.vmap
    (each window its own steps, as glassbox solves them)."""
    data = np.loadtxt(c.HERE.parent.parent / "examples" / "data" / "spiral.csv", delimiter=",",
                      skiprows=1)
    ts = jnp.asarray(data[:, 0])
    true = jnp.asarray(data[:, 1:])
    npts = true.shape[0]
    ctrl = dfx.PIDController(rtol=c.SPIRAL_RTOL, atol=c.SPIRAL_ATOL)
    opt = optax.rmsprop(learning_rate=1e-3, decay=0.99, eps=1e-8)
    term = dfx.ODETerm(lambda t, y, a: mlp(a, y))

    def solve(p, t, y0):
        return dfx.diffeqsolve(term, dfx.Tsit5(), t[0], t[-1], None, y0, args=p,
                               saveat=dfx.SaveAt(ts=t), stepsize_controller=ctrl,
                               max_steps=4096).ys

    def loss_joint(p, starts):
        # Every window starts at a different time; shifted to a common [0, 9 dt] (the field
        # does not depend on t), as torchdiffeq's ode_demo does.
        idx = starts[None, :] + jnp.arange(10)[:, None]
        pred = solve(p, ts[:10] - ts[0], true[starts])
        return jnp.mean(jnp.abs(pred - true[idx]))

    def loss_vmap(p, starts):
        idx = starts[:, None] + jnp.arange(10)[None, :]
        pred = jax.vmap(lambda i: solve(p, ts[i], true[i[0]]))(idx)
        return jnp.mean(jnp.abs(pred - true[idx]))

    steps = {}
    for layout, loss in [("joint", loss_joint), ("vmap", loss_vmap)]:
        @eqx.filter_jit
        def step(p, state, key, loss=loss):
            starts = jax.random.choice(key, npts - 10, (20,), replace=False)
            value, grads = jax.value_and_grad(loss)(p, starts)
            updates, state = opt.update(grads, state, p)
            return optax.apply_updates(p, updates), state, value
        steps[layout] = step
    return steps, opt, float(ts[9] - ts[0])


def train_times(step, opt, p, iters):
    """`iters` iterations from `p` (the first call compiles, untimed); (compile_ms, per-iteration
    ms, last loss)."""
    import time
    state = opt.init(p)
    key = jax.random.key(1)
    t0 = time.perf_counter()
    p1, state, value = jax.block_until_ready(step(p, state, key))
    compile_ms = (time.perf_counter() - t0) * 1e3
    times = []
    for _ in range(iters):
        key, sub = jax.random.split(key)
        t0 = time.perf_counter()
        p1, state, value = jax.block_until_ready(step(p1, state, sub))
        times.append((time.perf_counter() - t0) * 1e3)
    return compile_ms, times, float(value)


def train_rows(args, p):
    import statistics
    steps, opt, t_window = train_steps(p)
    for layout, step in steps.items():
        iters = 60 if not args.quick else 15
        compile_ms, times, value = train_times(step, opt, p, iters)
        # The first 10 timed iterations are warm-up, as for glassbox.
        c.emit(args, tool="diffrax", version=dfx.__version__,
               method=f"Tsit5, RMSprop, {layout}, RecursiveCheckpointAdjoint",
               problem="spiral_train", t_end=t_window, rtol=c.SPIRAL_RTOL,
               atol=c.SPIRAL_ATOL, median_ms=statistics.median(times[10:] or times), runs=iters,
               compile_ms=compile_ms, final=[value])


def main():
    args = c.parse_args(__doc__)
    p, g = weights()
    if c.wants(args, "ode"):
        ode_rows(args)
    if c.wants(args, "spiral"):
        spiral_rows(args, p)
    if c.wants(args, "sde"):
        sde_rows(args, p, g)
    if c.wants(args, "train"):
        train_rows(args, p)


if __name__ == "__main__":
    main()
