"""`glassbox.torch`: a glassbox ODE solve inside a PyTorch computation, differentiable in the
initial state and the parameters by glassbox's discrete adjoint.

`odeint` is a `torch.autograd.Function`: its forward pass is `Model.solve(..., keep=True)`, its
backward pass `Model.solve_adjoint` on that very solve (no second solve). The model's field,
its solver, its tolerances and its regularizers are glassbox's; PyTorch sees one
differentiable function of `y0` and the parameters. `ODE` is the same as a `torch.nn.Module`
whose parameters are the model's, so a glassbox field trains with any torch optimiser.

glassbox solves on the CPU in float64: tensors on another device, or of another floating
dtype, are copied there and the results copied back (to `y0`'s dtype and device). A glassbox
error in either pass raises `glassbox.GlassboxError` (code, message, help) to the caller.
"""

import numpy as np
import torch

__all__ = ["odeint", "ODE"]


def odeint(model, y0, t, params=None, *, method=None, rtol=None, atol=None, dt=None,
           regularizers=False):
    """The states of `model` at the times `t` from `y0`.

    - `model`: a `glassbox.Model` (ODE); its field, and its solve clause for every setting
      left `None`.
    - `y0`: a tensor, one initial state `(n_states,)` → `y` of shape `(len(t), n_states)`; or a
      batch `(rows, n_states)` → `(rows, len(t), n_states)`, each row solved on its own (its
      own steps), the parameters shared by the rows; where the model's layers are GEMM-sized
      (and there are 8 rows or more) the rows advance together through glassbox's batched
      solver and adjoint (`Model.solve(batched=None)`).
    - `t`: the save times (at least two, strictly increasing; a tensor or anything NumPy
      reads; not differentiated).
    - `params`: `{name: tensor}` for the parameters that come from PyTorch (each of the
      parameter's shape, e.g. `f.W1`); the others keep the model's values. Differentiable.
    - `method`, `rtol`, `atol`, `dt`: as `Model.solve` (gradients need an explicit method).
    - `regularizers=True`: also return the solve's `R_E = Σ E_j|h_j|` and `R_S = Σ S_j|h_j|`
      (per row for a batch), differentiable too: `y, r_e, r_s = odeint(...)`; add
      `w * r_e.sum()` to a loss to regularize (ERNODE).
    """
    t = np.asarray(t.detach().cpu() if isinstance(t, torch.Tensor) else t, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"t must be a 1-D array of save times, got shape {t.shape}")
    if not isinstance(y0, torch.Tensor):
        y0 = torch.as_tensor(np.asarray(y0, dtype=np.float64))
    params = {} if params is None else dict(params)
    names = tuple(params)
    settings = dict(method=method, rtol=rtol, atol=atol, dt=dt)
    y, r_e, r_s = _Odeint.apply(model, t, settings, names, y0, *(params[k] for k in names))
    return (y, r_e, r_s) if regularizers else y


def _numpy(x):
    return x.detach().to("cpu", torch.float64).numpy()


class _Odeint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, model, t, settings, names, y0, *values):
        params = {k: _numpy(v) for k, v in zip(names, values)}
        sol = model.solve(t=t, y0=_numpy(y0), params=params, keep=True, **settings)
        ctx.model, ctx.sol, ctx.names = model, sol, names
        ctx.batched = y0.dim() == 2
        ctx.like = [(v.dtype, v.device) for v in values]
        like = dict(dtype=y0.dtype, device=y0.device)
        reg = sol.regularizers
        return (torch.as_tensor(sol.y, **like),
                torch.as_tensor(np.asarray(reg["error_estimate"]), **like),
                torch.as_tensor(np.asarray(reg["stiffness"]), **like))

    @staticmethod
    def backward(ctx, dy, de, ds):
        # A batch's rows share the parameters: their gradients add up (`sum_rows`: in the
        # batched sweep's GEMMs where glassbox solved the rows together).
        g = ctx.model.solve_adjoint(ctx.sol, _numpy(dy), error_weight=_numpy(de),
                                    stiffness_weight=_numpy(ds), sum_rows=ctx.batched)
        dy0 = torch.as_tensor(g["y0"], dtype=dy.dtype, device=dy.device)
        grads = [torch.as_tensor(g["params"][k], dtype=dtype, device=device)
                 for k, (dtype, device) in zip(ctx.names, ctx.like)]
        return (None, None, None, None, dy0, *grads)


class ODE(torch.nn.Module):
    """A glassbox model as a `torch.nn.Module`: its parameters (every one, or those named in
    `learn`) are `torch.nn.Parameter`s starting from the model's values, float64, and
    `forward(y0, t)` is `odeint` with them and the given settings.

    The parameters' torch names are the model's with `.` written `_` (`f.W1` is `f_W1`;
    `torch.nn.Module` forbids dots); `params()` gives them back by the model's names, and
    `write_back()` sets the model's values (`model.params = ...`) to the trained ones, for its
    own solves and `save_weights`.
    """

    def __init__(self, model, learn=None, *, method=None, rtol=None, atol=None, dt=None,
                 regularizers=False):
        super().__init__()
        self.model = model
        values = model.params
        learn = list(values) if learn is None else list(learn)
        unknown = [k for k in learn if k not in values]
        if unknown:
            raise KeyError(f"{unknown} are not parameters of `{model.name}` (it has {list(values)})")
        self._names = {k: k.replace(".", "_") for k in learn}
        for k, attr in self._names.items():
            self.register_parameter(attr, torch.nn.Parameter(torch.as_tensor(values[k], dtype=torch.float64)))
        self.settings = dict(method=method, rtol=rtol, atol=atol, dt=dt, regularizers=regularizers)

    def params(self):
        """`{model name: parameter}` of the learned parameters."""
        return {k: getattr(self, attr) for k, attr in self._names.items()}

    def forward(self, y0, t):
        return odeint(self.model, y0, t, self.params(), **self.settings)

    def write_back(self):
        """Set the model's values of the learned parameters to the module's."""
        self.model.params = {k: _numpy(v) for k, v in self.params().items()}
