"""`glassbox.jax.odeint`: a glassbox ODE solve inside a JAX computation, differentiable in the
initial state and the parameters by glassbox's discrete adjoint (`Model.vjp`).

The solve runs on the host through `jax.pure_callback`, so `odeint` works under `jax.jit`,
`jax.grad` and `jax.vmap` (a vmapped call is one host call for the batch, whose rows are
solved one after another, each as alone). Under differentiation the forward pass keeps its
solution (`Model.solve(keep=True)`) and the backward pass differentiates that one
(`Model.solve_adjoint`) rather than solving again. The model's
field, its solver, its tolerances and its regularizers are glassbox's; JAX sees one
differentiable function of `y0` and `params`. Enable `jax_enable_x64` for glassbox's f64
results at full precision (without it they are rounded to float32 on the way back).

A glassbox error inside the callback (a bad setting, a failed solve) reaches the caller as
JAX's runtime error, whose message carries the glassbox diagnostic (code, message, help).
"""

import collections
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["odeint"]


def odeint(model, y0, t, params=None, *, method=None, rtol=None, atol=None, dt=None,
           regularizers=False):
    """The states of `model` at the times `t` from `y0`, shape `(len(t), n_states)`, or
    `(rows, len(t), n_states)` for a batch of initial states.

    - `model`: a `glassbox.Model` (ODE); its field, and its solve clause for every setting
      left `None`.
    - `y0`: the initial state, one value per state column; or a batch `(rows, n_states)`,
      every row solved on its own steps with the same parameters, the batch handed to
      glassbox whole: where the model's layers are GEMM-sized (and there are 8 rows or more)
      the rows advance together through glassbox's batched solver and batched adjoint
      (`Model.solve(batched=None)`), much faster than `jax.vmap` over single states, which
      solves row after row. The parameters' gradient is then the batch's sum.
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
    if y0.ndim not in (1, 2):
        raise ValueError(f"y0 must be one initial state or a batch of them (rows, n_states), got shape {y0.shape}")
    solve = _odeint if y0.ndim == 1 else _odeint_rows
    out = solve(model, tuple(float(x) for x in t), tuple(sorted(settings.items())), y0, params)
    return out if regularizers else out[0]


def _flatten(y0, *batched):
    """Under `jax.vmap` (`vmap_method="broadcast_all"`) every argument arrives with the batch's
    leading axes, which `y0`'s extra axes give (`()` outside a vmap): those axes, and every
    argument with them flattened into one leading axis of the batch's rows."""
    y0 = np.asarray(y0, dtype=np.float64)
    lead = y0.shape[:-1]
    n = int(np.prod(lead, dtype=np.int64))
    flat = [y0.reshape(n, y0.shape[-1])]
    for arg in batched:
        flat.append(_tree_map(lambda x: np.asarray(x, dtype=np.float64).reshape((n,) + np.shape(x)[len(lead):]), arg))
    return lead, n, flat


def _shared(params):
    """The parameters when every row has the same values (a vmap over initial states), else
    None."""
    if all(v.shape[0] > 0 and (v == v[:1]).all() for v in params.values()):
        return {k: v[0] for k, v in params.items()}
    return None


def _row(flat, i):
    return tuple(_tree_index(a, i) for a in flat)


def _tree_map(f, x):
    return {k: f(v) for k, v in x.items()} if isinstance(x, dict) else f(x)


def _tree_index(x, i):
    return {k: v[i] for k, v in x.items()} if isinstance(x, dict) else x[i]


# The solutions a forward pass under differentiation kept (`solve(keep=True)`) for its
# backward pass, by token (a residual): the backward pass differentiates them without solving
# again. Bounded: a forward pass whose backward never runs (a dropped `jax.vjp` function) is
# forgotten after `_KEEP_MAX` others, and a backward pass that finds no solution for its token
# solves again (the same computation, so the same gradient).
_kept = collections.OrderedDict()
_KEEP_MAX = 64
_tokens = itertools.count(1)


def _keep(entry):
    token = next(_tokens) % (2**31 - 1)
    _kept[token] = entry
    while len(_kept) > _KEEP_MAX:
        _kept.popitem(last=False)
    return token


def _take(token):
    """The entry a forward pass kept under `token` (its residual, broadcast over a vmapped
    batch), removed from the table; `(None, None, None)` when forgotten."""
    token = np.asarray(token)
    return _kept.pop(int(token.flat[0]), (None, None, None)) if token.size else (None, None, None)


def _like(dy0, y0, grads, params):
    """The backward pass's results in the shapes and dtypes of the primal arguments."""
    return (np.asarray(dy0).reshape(np.shape(y0)).astype(np.asarray(y0).dtype),
            {k: np.asarray(grads[k]).reshape(np.shape(v)).astype(np.asarray(v).dtype)
             for k, v in params.items()})


def _kept_forward(forward):
    """The custom_vjp's forward pass: `forward` keeping its solution, the token a residual."""
    def fwd(model, t, settings, y0, params):
        y, r_e, r_s, token = forward(model, t, settings, y0, params, keep=True)
        return (y, r_e, r_s), (y0, params, token)
    return fwd


def _cotangent_shapes(y0, params):
    return (jax.ShapeDtypeStruct(y0.shape, y0.dtype),
            {k: jax.ShapeDtypeStruct(jnp.shape(v), jnp.result_type(v)) for k, v in params.items()})


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _odeint(model, t, settings, y0, params):
    return _forward(model, t, settings, y0, params)[:3]


def _forward(model, t, settings, y0, params, keep=False):
    dtype = y0.dtype
    shapes = (jax.ShapeDtypeStruct((len(t), len(model.states)), dtype),
              jax.ShapeDtypeStruct((), dtype), jax.ShapeDtypeStruct((), dtype),
              jax.ShapeDtypeStruct((), jnp.int32))

    def host(y0, params):
        # One host call for a whole vmapped batch (jax's per-call cost is far above glassbox's,
        # python_jax.py measures both); with one set of parameters for every row (the usual
        # vmap over initial states) the rows go to glassbox as one batched solve.
        lead, n, (y0s, ps) = _flatten(y0, params)
        shared = _shared(ps) if n else None
        if shared is not None:
            sol = model.solve(t=np.asarray(t), y0=y0s, params=shared, keep=keep, **dict(settings))
            reg = sol.regularizers
            y, r_e, r_s = sol.y, reg["error_estimate"], reg["stiffness"]
            kept = ("batch", n, sol)
        else:
            sols = [model.solve(t=np.asarray(t), y0=y, params=p, keep=keep, **dict(settings))
                    for y, p in (_row((y0s, ps), i) for i in range(n))]
            y = np.stack([s_.y for s_ in sols]) if sols else np.zeros((0,) + shapes[0].shape)
            r_e = [s_.regularizers["error_estimate"] for s_ in sols]
            r_s = [s_.regularizers["stiffness"] for s_ in sols]
            kept = ("rows", n, sols)
        token = _keep(kept) if keep and n else 0
        return (np.asarray(y).reshape(lead + shapes[0].shape).astype(dtype),
                np.asarray(r_e, dtype).reshape(lead), np.asarray(r_s, dtype).reshape(lead),
                np.full(lead, token, np.int32))

    return jax.pure_callback(host, shapes, y0, params, vmap_method="broadcast_all")


def _bwd(model, t, settings, res, cotangents):
    y0, params, token = res
    dy, de, ds = cotangents
    shapes = _cotangent_shapes(y0, params)

    def host(y0, params, dy, de, ds, token):
        lead, n, (y0s, ps, dys, des, dss) = _flatten(y0, params, dy, de, ds)
        kind, rows, kept = _take(token)
        shared = _shared(ps) if n else None
        if rows != n:
            kind = None  # not this batch's solution (or none): solve again
        if shared is not None:
            if kind == "batch":
                g = model.solve_adjoint(kept, dys, error_weight=des, stiffness_weight=dss)
            else:
                g = model.vjp_rows(dys, t=np.asarray(t), y0=y0s, params=shared, error_weights=des,
                                   stiffness_weights=dss, **dict(settings))
            dy0, grads = g["y0"], g["params"]
        else:
            dy0s, dps = [], []
            for i in range(n):
                y, p, c, e, s_ = _row((y0s, ps, dys, des, dss), i)
                if kind == "rows":
                    g = model.solve_adjoint(kept[i], c, error_weight=float(e), stiffness_weight=float(s_))
                else:
                    g = model.vjp(c, t=np.asarray(t), y0=y, params=p, error_weight=float(e),
                                  stiffness_weight=float(s_), **dict(settings))
                dy0s.append(g["y0"])
                dps.append(g["params"])
            dy0 = np.stack(dy0s)
            grads = {k: np.stack([np.asarray(d[k]) for d in dps]) for k in params}
        return _like(dy0, y0, grads, params)

    dy0, dparams = jax.pure_callback(host, shapes, y0, params, dy, de, ds, token,
                                     vmap_method="broadcast_all")
    return dy0, dparams


_odeint.defvjp(_kept_forward(_forward), _bwd)


# A batch of initial states `(rows, n)` with one set of parameters: one glassbox call each way
# for the whole batch (batched where glassbox batches), the parameters' gradient summed over
# the rows by glassbox (`solve_adjoint(sum_rows=True)`: the batched sweep's GEMMs). Under
# `jax.vmap` of such a call each vmapped element is its own batch.

@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _odeint_rows(model, t, settings, y0, params):
    return _forward_rows(model, t, settings, y0, params)[:3]


def _forward_rows(model, t, settings, y0, params, keep=False):
    dtype, rows = y0.dtype, y0.shape[0]
    shapes = (jax.ShapeDtypeStruct((rows, len(t), len(model.states)), dtype),
              jax.ShapeDtypeStruct((rows,), dtype), jax.ShapeDtypeStruct((rows,), dtype),
              jax.ShapeDtypeStruct((), jnp.int32))

    def host(y0, params):
        y0 = np.asarray(y0, dtype=np.float64)
        lead = y0.shape[:-2]
        sols = []
        for i in np.ndindex(*lead):
            p = {k: np.asarray(v, dtype=np.float64)[i] for k, v in params.items()}
            sols.append(model.solve(t=np.asarray(t), y0=y0[i], params=p, keep=keep, **dict(settings)))
        token = _keep(("batches", len(sols), sols)) if keep and sols else 0
        y = np.stack([s_.y for s_ in sols]) if sols else np.zeros((0,) + shapes[0].shape)
        reg = [s_.regularizers for s_ in sols]
        return (y.reshape(lead + shapes[0].shape).astype(dtype),
                np.asarray([r["error_estimate"] for r in reg], dtype).reshape(lead + (rows,)),
                np.asarray([r["stiffness"] for r in reg], dtype).reshape(lead + (rows,)),
                np.full(lead, token, np.int32))

    return jax.pure_callback(host, shapes, y0, params, vmap_method="broadcast_all")


def _bwd_rows(model, t, settings, res, cotangents):
    y0, params, token = res
    dy, de, ds = cotangents
    shapes = _cotangent_shapes(y0, params)

    def host(y0, params, dy, de, ds, token):
        y0 = np.asarray(y0, dtype=np.float64)
        lead = y0.shape[:-2]
        kind, count, kept = _take(token)
        n = int(np.prod(lead, dtype=np.int64))
        dy0s, grads = [], {k: [] for k in params}
        for j, i in enumerate(np.ndindex(*lead)):
            p = {k: np.asarray(v, dtype=np.float64)[i] for k, v in params.items()}
            if kind == "batches" and count == n:
                sol = kept[j]
            else:  # forgotten: solve again, kept this time
                sol = model.solve(t=np.asarray(t), y0=y0[i], params=p, keep=True, **dict(settings))
            g = model.solve_adjoint(sol, np.asarray(dy, dtype=np.float64)[i],
                                    error_weight=np.asarray(de, dtype=np.float64)[i],
                                    stiffness_weight=np.asarray(ds, dtype=np.float64)[i], sum_rows=True)
            dy0s.append(g["y0"])
            for k in params:
                grads[k].append(g["params"][k])
        return _like(np.stack(dy0s) if dy0s else np.zeros(y0.shape), y0, grads, params)

    dy0, dparams = jax.pure_callback(host, shapes, y0, params, dy, de, ds, token,
                                     vmap_method="broadcast_all")
    return dy0, dparams


_odeint_rows.defvjp(_kept_forward(_forward_rows), _bwd_rows)
