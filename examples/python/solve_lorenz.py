# %% [markdown]
# # The Lorenz system from Python
#
# A notebook-style script (`# %%` cells run one by one in Jupyter or VS Code, or the whole
# file with `python examples/python/solve_lorenz.py` from the repository root). Build the
# module first: `maturin develop --manifest-path python/Cargo.toml` in a virtual environment
# with maturin and numpy (README, "Python").

# %%
from pathlib import Path

import numpy as np

import glassbox

HERE = Path(__file__).resolve().parent
model = glassbox.Model.from_file(str(HERE.parent / "lorenz.gbx"))
print(model)
print("parameters:", {name: float(v) for name, v in model.params.items()})

# %% [markdown]
# The model file's own solve clause (`tsit5(rtol = 1e-6, atol = 1e-9) over [0, 100]`),
# saved on a grid of our choosing: the same numbers `glassbox solve --at 0:20:2001` writes.

# %%
t = np.linspace(0.0, 20.0, 2001)
sol = model.solve(t=t)
print(sol)
print("final state:", {name: float(v) for name, v in zip(sol.states, sol.y[-1])})
print("statistics:", sol.stats)

# %% [markdown]
# The solver's own records, one per accepted step: step size, error estimate, stiffness
# estimate. Lorenz is chaotic but not stiff: tsit5's steps adapt to the trajectory (the
# smallest at the start, from the solve clause's automatic first step), with no rejections.

# %%
steps = sol.steps
print(
    f"{len(steps['h'])} steps: h from {steps['h'].min():.3g} to {steps['h'].max():.3g}, "
    f"largest error estimate {np.nanmax(steps['error_estimate']):.3g}, "
    f"largest stiffness estimate {np.nanmax(steps['stiffness_estimate']):.3g}"
)

# %% [markdown]
# Parameters by name: below rho ≈ 24.74 the convection settles into a fixed point
# (x = y = ±sqrt(beta (rho - 1)), z = rho - 1) instead of the butterfly.

# %%
calm = model.solve(t=t, params={"rho": 10.0})
fixed = np.sqrt(8 / 3 * (10.0 - 1.0))
print("rho = 10, final state:", calm.y[-1], "fixed point:", [fixed, fixed, 9.0])
assert np.allclose(np.abs(calm.y[-1, :2]), fixed, rtol=1e-3)

# %% [markdown]
# A mistake is a `glassbox.GlassboxError` with the CLI's code, place and help.

# %%
try:
    model.solve(params={"rh0": 10.0})
except glassbox.GlassboxError as e:
    print(e.code, "-", e.message, "-", e.help)

# %% [markdown]
# With matplotlib installed (not needed by glassbox), the butterfly:

# %%
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is not None:
    ax = plt.figure().add_subplot(projection="3d")
    ax.plot(*sol.y.T, lw=0.5)
    ax.set_title("lorenz, glassbox tsit5")
    plt.savefig("lorenz.png", dpi=120)
    print("wrote lorenz.png")
