# %% [markdown]
# # Training the spiral's neural ODE from JAX
#
# A notebook-style script (`# %%` cells; or `python examples/python/train_spiral_jax.py`).
# `glassbox.jax.odeint` puts a glassbox solve inside a JAX loss: the field, the solver and the
# error-estimate regularizer are glassbox's (examples/spiral.gbx), the gradient is glassbox's
# discrete adjoint, and the optimiser is a few lines of JAX. Needs the module
# (`maturin develop --manifest-path python/Cargo.toml`) and `pip install jax`.

# %%
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import glassbox
import glassbox.jax as gj

jax.config.update("jax_enable_x64", True)  # glassbox solves in f64
HERE = Path(__file__).resolve().parent
model = glassbox.Model.from_file(str(HERE.parent / "spiral.gbx"))
data = np.loadtxt(HERE.parent / "data" / "spiral.csv", delimiter=",", skiprows=1)
t, obs = data[:, 0], data[:, 1:]
print(model, f"- {len(t)} observations on [0, {t[-1]:.0f}]")

# %% [markdown]
# Training on short windows, as the model file's own `batch = windows(20, length = 10)` and
# torchdiffeq's spiral demo do: each window starts from an observation and is compared with
# the next ten. The field is autonomous and the observations evenly spaced, so every window
# is solved on the same relative times, and `jax.vmap` runs a batch of windows (one solve a
# row, glassbox's). The loss adds the solver's own error estimate `R_E = Σ E_j |h_j|`
# (ERNODE) with a light weight: `regularizers=True` returns it next to the states,
# differentiable like them.

# %%
LENGTH, BATCH = 10, 20
tw = t[:LENGTH] - t[0]
params = {k: jnp.asarray(v) for k, v in model.params.items()}


def window_loss(params, y0, target):
    y, r_e, _ = gj.odeint(model, y0, tw, params, rtol=1e-6, atol=1e-8, regularizers=True)
    return jnp.mean(jnp.abs(y - target)) + 1e-3 * r_e


def loss(params, starts):
    windows = jnp.asarray(obs)[starts[:, None] + jnp.arange(LENGTH)]
    return jnp.mean(jax.vmap(window_loss, in_axes=(None, 0, 0))(params, windows[:, 0], windows))


step = jax.jit(jax.value_and_grad(loss))

# %% [markdown]
# Adam by hand (no optimiser library needed), 100 batches of windows.

# %%
rng = np.random.default_rng(0)
every = jnp.arange(0, len(t) - LENGTH, LENGTH)  # 99 windows covering the span: the yardstick
start_loss = float(loss(params, every))
m = {k: jnp.zeros_like(v) for k, v in params.items()}
v = {k: jnp.zeros_like(x) for k, x in params.items()}
for i in range(1, 101):
    value, g = step(params, rng.integers(0, len(t) - LENGTH, BATCH))
    for k in params:
        m[k] = 0.9 * m[k] + 0.1 * g[k]
        v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
        params[k] -= 3e-3 * (m[k] / (1 - 0.9**i)) / (jnp.sqrt(v[k] / (1 - 0.999**i)) + 1e-8)
    if i == 1 or i % 25 == 0:
        print(f"batch {i:3d}  window loss {float(value):.4f}")

# %% [markdown]
# The windows' loss over the whole span before and after, and the trained weights back in the
# model (`model.params = ...`) for its own solves. (A fit of the whole trajectory from one
# initial state needs the CLI run's 2 000 iterations: `glassbox train examples/spiral.gbx`.)

# %%
print(f"loss over all {len(every)} windows: {start_loss:.4f} before, {float(loss(params, every)):.4f} after")
model.params = {k: np.asarray(x) for k, x in params.items()}
sol = model.solve(t=tw, y0=obs[500])
print("a window from t = 12.5 after training, max |y - obs|:",
      f"{float(np.max(np.abs(sol.y - obs[500:500 + LENGTH]))):.4f}")
