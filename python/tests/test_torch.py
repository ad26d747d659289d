"""`glassbox.torch` inside PyTorch: `odeint`'s values are `Model.solve`'s, its gradients
(`backward`) are `Model.vjp`'s and agree with central differences (`torch.autograd.gradcheck`),
a batch's parameter gradient is the sum of its rows', and `ODE` trains the spiral. Skipped, and
said so (`pytest -rs`), where torch is not installed: `.ci/run` does not install it (PyPI's torch
is a 6 GB CUDA build); `benches/peers/setup.sh --with-torch` does, and these tests run there:
`PYTHONPATH=python/pysrc benches/peers/.venv/bin/python -m pytest python/tests/test_torch.py`.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: the glassbox.torch tests need it")

import glassbox  # noqa: E402
import glassbox.torch as gt  # noqa: E402
from conftest import EXAMPLES  # noqa: E402


@pytest.fixture(scope="module")
def spiral():
    return glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx"))


def f64(x, grad=False):
    return torch.tensor(np.asarray(x, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


def test_values_are_model_solve_s_bit_for_bit(spiral):
    t = np.linspace(0.0, 3.0, 7)
    y = gt.odeint(spiral, f64([2.0, 0.0]), t)
    np.testing.assert_array_equal(y.detach().numpy(), spiral.solve(t=t, y0=[2.0, 0.0]).y)
    y0s = f64([[2.0, 0.0], [1.0, 0.5]])
    np.testing.assert_array_equal(gt.odeint(spiral, y0s, t).detach().numpy(),
                                  spiral.solve(t=t, y0=y0s.numpy()).y)
    # float32 in, float32 out: solved in float64, rounded on the way back.
    y32 = gt.odeint(spiral, torch.tensor([2.0, 0.0]), t)
    assert y32.dtype == torch.float32
    np.testing.assert_array_equal(y32.numpy(), spiral.solve(t=t, y0=[2.0, 0.0]).y.astype(np.float32))


def test_backward_equals_vjp_with_the_regularizers(spiral):
    t = np.linspace(0.0, 2.0, 5)
    target = np.cos(np.arange(10.0)).reshape(5, 2)
    params = {k: f64(v, grad=True) for k, v in spiral.params.items()}
    y0 = f64([2.0, 0.0], grad=True)
    y, r_e, r_s = gt.odeint(spiral, y0, t, params, regularizers=True)
    (torch.sum((y - f64(target)) ** 2) + 0.3 * r_e + 0.2 * r_s).backward()
    y_np = spiral.solve(t=t, y0=[2.0, 0.0]).y
    want = spiral.vjp(2 * (y_np - target), t=t, y0=[2.0, 0.0], error_weight=0.3, stiffness_weight=0.2)
    for k, p in params.items():
        np.testing.assert_array_equal(p.grad.numpy(), want["params"][k])
    np.testing.assert_array_equal(y0.grad.numpy(), want["y0"])


def test_gradcheck_against_central_differences(spiral):
    # Fixed steps (dt): no step size moves under the differences, so they converge to the
    # adjoint's gradient. eps = 1e-4, not gradcheck's 1e-6: R_E at these small steps is ~1e-9,
    # the difference of two solutions' combinations, so its central difference at 1e-6 is
    # mostly rounding (20% off; at 1e-4 it agrees to 1e-3 and the states' O(eps^2)
    # truncation is ~1e-8).
    t = np.linspace(0.0, 1.0, 3)
    p = spiral.params
    name = sorted(p)[0]

    def f(y0, w):
        y, r_e, _ = gt.odeint(spiral, y0, t, {name: w}, method="tsit5", dt=0.05, regularizers=True)
        return y, r_e

    args = (f64([2.0, 0.0], grad=True), f64(p[name], grad=True))
    assert torch.autograd.gradcheck(f, args, eps=1e-4, atol=1e-6, rtol=1e-3)


def test_a_batch_s_gradient_is_the_sum_of_its_rows(spiral):
    t = np.linspace(0.0, 1.0, 4)
    y0s = [[2.0, 0.0], [1.0, 0.5], [0.0, -1.0]]
    ode = gt.ODE(spiral, regularizers=True)
    y, r_e, _ = ode(f64(y0s), t)
    (torch.sum(y ** 2) + 0.1 * r_e.sum()).backward()
    batched = {k: v.grad.clone() for k, v in ode.params().items()}
    total = {k: 0.0 for k in batched}
    for y0 in y0s:
        ode.zero_grad()
        y, r_e, _ = ode(f64(y0), t)
        (torch.sum(y ** 2) + 0.1 * r_e).backward()
        for k, v in ode.params().items():
            total[k] = total[k] + v.grad
    for k in batched:
        np.testing.assert_allclose(batched[k].numpy(), total[k].numpy(), rtol=1e-12, atol=1e-14)


def test_ode_trains_the_spiral_and_writes_back():
    """Fifty Adam steps on the first 100 observations of examples/data/spiral.csv from the
    model's initial weights: the mean absolute error falls below 60% of its start (as the jax
    test and the CLI's `tests/suite/train.rs`)."""
    model = glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx"))
    data = np.loadtxt(EXAMPLES / "data" / "spiral.csv", delimiter=",", skiprows=1)[:100]
    t, obs = data[:, 0], f64(data[:, 1:])
    ode = gt.ODE(model, rtol=1e-6, atol=1e-8)
    opt = torch.optim.Adam(ode.parameters(), lr=1e-2)
    losses = []
    for _ in range(50):
        opt.zero_grad()
        loss = torch.mean(torch.abs(ode(obs[0], t) - obs))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        last = float(torch.mean(torch.abs(ode(obs[0], t) - obs)))
    assert last < 0.6 * losses[0], (losses[0], last)
    ode.write_back()
    np.testing.assert_array_equal(model.solve(t=t, y0=obs[0].numpy(), rtol=1e-6, atol=1e-8).y,
                                  ode(obs[0], t).detach().numpy())


def test_mistakes_raise_glassbox_errors(spiral):
    with pytest.raises(glassbox.GlassboxError) as e:
        gt.odeint(spiral, f64([2.0, 0.0]), [0.0, 1.0], method="rodas5p")
    assert "explicit" in str(e.value)
    with pytest.raises(KeyError):
        gt.ODE(spiral, learn=["nope"])


def test_a_wide_batch_is_solved_batched_and_its_gradient_is_the_rows_sum():
    from test_vjp import WIDE

    m = glassbox.Model.from_source(WIDE)
    y0s = f64(np.random.default_rng(0).normal(size=(16, 32)))
    t = [0.0, 1.0]
    ode = gt.ODE(m)
    torch.sum(torch.sin(ode(y0s, t))).backward()
    batched = {k: v.grad.clone() for k, v in ode.params().items()}
    ode.zero_grad()
    for y0 in y0s:
        torch.sum(torch.sin(ode(y0, t))).backward()
    for k, v in ode.params().items():
        np.testing.assert_allclose(batched[k].numpy(), v.grad.numpy(), rtol=1e-9,
                                   atol=1e-9 * float(v.grad.abs().max()))
