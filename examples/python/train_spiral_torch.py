# %% [markdown]
# # Training the spiral's neural ODE from PyTorch
#
# A notebook-style script (`# %%` cells; or `python examples/python/train_spiral_torch.py`).
# `glassbox.torch.ODE` is a `torch.nn.Module` whose parameters are the model's
# (examples/spiral.gbx): its forward pass is a glassbox solve, its backward pass glassbox's
# discrete adjoint of that solve, and any torch optimiser trains it. Needs the module
# (`maturin develop --manifest-path python/Cargo.toml`) and torch.

# %%
from pathlib import Path

import numpy as np
import torch

import glassbox
import glassbox.torch as gt

HERE = Path(__file__).resolve().parent
model = glassbox.Model.from_file(str(HERE.parent / "spiral.gbx"))
data = np.loadtxt(HERE.parent / "data" / "spiral.csv", delimiter=",", skiprows=1)
t, obs = data[:, 0], torch.tensor(data[:, 1:], dtype=torch.float64)
print(model, f"- {len(t)} observations on [0, {t[-1]:.0f}]")

# %% [markdown]
# Training on short windows, as the model file's own `batch = windows(20, length = 10)` and
# torchdiffeq's spiral demo do: each window starts from an observation and is compared with
# the next ten. The field is autonomous and the observations evenly spaced, so every window is
# solved on the same relative times, and a batch of windows is one call with a 2-D `y0`
# (each row solved on its own steps, the parameters shared). `regularizers=True` adds the
# solver's own error estimate `R_E = Σ E_j |h_j|` (ERNODE), one per row, with a light weight.

# %%
LENGTH, BATCH = 10, 20
tw = t[:LENGTH] - t[0]
ode = gt.ODE(model, rtol=1e-6, atol=1e-8, regularizers=True)
print("parameters:", {name: tuple(p.shape) for name, p in ode.named_parameters()})


def loss(starts):
    windows = obs[starts[:, None] + np.arange(LENGTH)]
    y, r_e, _ = ode(windows[:, 0], tw)
    return torch.mean(torch.abs(y - windows)) + 1e-3 * r_e.mean()


# %% [markdown]
# Adam, 100 batches of windows.

# %%
rng = np.random.default_rng(0)
every = np.arange(0, len(t) - LENGTH, LENGTH)  # 99 windows covering the span: the yardstick
with torch.no_grad():
    start_loss = loss(every).item()
opt = torch.optim.Adam(ode.parameters(), lr=3e-3)
for i in range(1, 101):
    opt.zero_grad()
    value = loss(rng.integers(0, len(t) - LENGTH, BATCH))
    value.backward()
    opt.step()
    if i == 1 or i % 25 == 0:
        print(f"batch {i:3d}  window loss {value.item():.4f}")

# %% [markdown]
# The windows' loss over the whole span before and after, and the trained weights back in the
# model (`write_back`) for its own solves and `save_weights`. (A fit of the whole trajectory
# from one initial state needs the CLI run's 2 000 iterations: `glassbox train
# examples/spiral.gbx`.)

# %%
with torch.no_grad():
    print(f"loss over all {len(every)} windows: {start_loss:.4f} before, {loss(every).item():.4f} after")
ode.write_back()
sol = model.solve(t=tw, y0=obs[500].numpy())
print("a window from t = 12.5 after training, max |y - obs|:",
      f"{float(np.max(np.abs(sol.y - obs[500:500 + LENGTH].numpy()))):.4f}")
