"""`glassbox.jax.odeint`: a glassbox ODE solve inside a JAX computation, differentiable in the
initial state and the parameters by glassbox's discrete adjoint (`Model.vjp`).

The solve runs on the host through `jax.pure_callback`, so `odeint` works under `jax.jit`,
`jax.grad` and `jax.vmap` (a vmapped call solves its rows one after another). The model's
field, its solver, its tolerances and its regularizers are glassbox's; JAX sees one
differentiable function of `y0` and `params`. Enable `jax_enable_x64` for glassbox's f64
results at full precision (without it they are rounded to float32 on the way back).

A glassbox error inside the callback (a bad setting, a failed solve) reaches the caller as
JAX's runtime error, whose message carries the glassbox diagnostic (code, message, help).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["odeint"]


def odeint(model, y0, t, params=None, *, method=None, rtol=None, atol=None, dt=None,
           regularizers=False):
    """The states of `model` at the times `t` from `y0`, shape `(len(t), n_states)`.

    - `model`: a `glassbox.Model` (ODE); its field, and its solve clause for every setting
      left `None`.
    - `y0`: the initial state, one value per state column.
    - `t`: the save times (a concrete array, not traced: it fixes the output's shape).
    - `params`: `{name: array}` for the parameters that come from JAX (each of the
      parameter's shape, e.g. `f.W1`); the others keep the model's values. Differentiable.
    - `method`, `rtol`, `atol`, `dt`: as `Model.solve` (gradients need an explicit method).
    - `regularizers=True`: also return the solve's `R_E = Σ E_j|h_j|` and `R_S = Σ S_j|h_j|`
      (the papers' ERNODE and SRNODE terms), differentiable too: `y, r_e, r_s = odeint(...)`;
      add `w * r_e` to a loss to regularize.
    """
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"t must be a 1-D array of save times, got shape {t.shape}")
    settings = dict(method=method, rtol=rtol, atol=atol, dt=dt)
    params = {} if params is None else dict(params)
    y0 = jnp.asarray(y0)
    out = _odeint(model, tuple(float(x) for x in t), tuple(sorted(settings.items())), y0, params)
    return out if regularizers else out[0]


def _host_solve(model, t, settings, y0, params):
    sol = model.solve(t=np.asarray(t), y0=np.asarray(y0, dtype=np.float64),
                      params={k: np.asarray(v, dtype=np.float64) for k, v in params.items()},
                      **settings)
    h = np.abs(sol.steps["h"])
    r_e = float(np.sum(np.nan_to_num(sol.steps["error_estimate"]) * h))
    r_s = float(np.sum(np.nan_to_num(sol.steps["stiffness_estimate"]) * h))
    return sol.y, r_e, r_s


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _odeint(model, t, settings, y0, params):
    return _forward(model, t, settings, y0, params)


def _forward(model, t, settings, y0, params):
    dtype = y0.dtype
    shapes = (jax.ShapeDtypeStruct((len(t), len(model.states)), dtype),
              jax.ShapeDtypeStruct((), dtype), jax.ShapeDtypeStruct((), dtype))

    def host(y0, params):
        y, r_e, r_s = _host_solve(model, t, dict(settings), y0, params)
        return y.astype(dtype), np.asarray(r_e, dtype), np.asarray(r_s, dtype)

    return jax.pure_callback(host, shapes, y0, params, vmap_method="sequential")


def _fwd(model, t, settings, y0, params):
    return _forward(model, t, settings, y0, params), (y0, params)


def _bwd(model, t, settings, res, cotangents):
    y0, params = res
    dy, de, ds = cotangents
    shapes = (jax.ShapeDtypeStruct(y0.shape, y0.dtype),
              {k: jax.ShapeDtypeStruct(jnp.shape(v), jnp.result_type(v)) for k, v in params.items()})

    def host(y0, params, dy, de, ds):
        g = model.vjp(np.asarray(dy, dtype=np.float64), t=np.asarray(t),
                      y0=np.asarray(y0, dtype=np.float64),
                      params={k: np.asarray(v, dtype=np.float64) for k, v in params.items()},
                      error_weight=float(de), stiffness_weight=float(ds), **dict(settings))
        return (g["y0"].astype(y0.dtype),
                {k: np.asarray(g["params"][k]).reshape(np.shape(v)).astype(np.asarray(v).dtype)
                 for k, v in params.items()})

    dy0, dparams = jax.pure_callback(host, shapes, y0, params, dy, de, ds, vmap_method="sequential")
    return dy0, dparams


_odeint.defvjp(_fwd, _bwd)
