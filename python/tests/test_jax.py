"""`glassbox.jax.odeint` inside JAX: its values are `Model.solve`'s, its gradients (jax.grad,
under jit and vmap) are `Model.vjp`'s and agree with central differences of the solve, and it
trains the spiral. Skipped, and said so, where jax is not installed (CI installs it)."""

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="jax is not installed: the glassbox.jax tests need it")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

import glassbox  # noqa: E402
import glassbox.jax as gj  # noqa: E402
from conftest import EXAMPLES  # noqa: E402


@pytest.fixture(scope="module")
def spiral():
    return glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx"))


def test_values_are_model_solve_s_bit_for_bit(spiral):
    t = np.linspace(0.0, 3.0, 7)
    y = jax.jit(lambda y0: gj.odeint(spiral, y0, t))(jnp.array([2.0, 0.0]))
    np.testing.assert_array_equal(np.asarray(y), spiral.solve(t=t, y0=[2.0, 0.0]).y)


def test_grad_equals_vjp_and_central_differences(spiral):
    t = np.linspace(0.0, 2.0, 5)
    settings = dict(method="tsit5", dt=0.05)  # fixed steps: the differences move no step
    target = np.cos(np.arange(10.0)).reshape(5, 2)
    p0 = {k: jnp.asarray(v) for k, v in spiral.params.items()}

    def loss(params, y0):
        y, r_e, r_s = gj.odeint(spiral, y0, t, params, regularizers=True, **settings)
        return jnp.sum((y - target) ** 2) + 0.3 * r_e + 0.2 * r_s

    y0 = jnp.array([2.0, 0.0])
    g_params, g_y0 = jax.jit(jax.grad(loss, argnums=(0, 1)))(p0, y0)
    # Model.vjp with the same cotangent and weights.
    y = spiral.solve(t=t, y0=np.asarray(y0), **settings).y
    want = spiral.vjp(2 * (y - target), t=t, y0=np.asarray(y0), error_weight=0.3,
                      stiffness_weight=0.2, **settings)
    for k in p0:
        np.testing.assert_allclose(np.asarray(g_params[k]), want["params"][k], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(g_y0), want["y0"], rtol=1e-12)
    # Central differences of the jax loss in the initial state (eps = 1e-6: truncation
    # O(eps^2), rounding ~1e-16/eps; 1e-6 relative is a wrong gradient).
    eps = 1e-6
    for i in range(2):
        e = jnp.zeros(2).at[i].set(eps)
        fd = (loss(p0, y0 + e) - loss(p0, y0 - e)) / (2 * eps)
        assert abs(float(fd) - float(g_y0[i])) < 1e-6 * (1 + abs(float(fd)))


def test_vmap_solves_each_row(spiral):
    t = np.linspace(0.0, 1.0, 3)
    y0s = jnp.array([[2.0, 0.0], [1.0, 0.5], [0.0, -1.0]])
    ys = jax.vmap(lambda y0: gj.odeint(spiral, y0, t))(y0s)
    for row, y0 in zip(ys, y0s):
        np.testing.assert_array_equal(np.asarray(row), spiral.solve(t=t, y0=np.asarray(y0)).y)


def test_trains_the_spiral():
    """Fifty Adam steps on the first 100 observations of examples/data/spiral.csv from the
    model's initial weights: the mean absolute error falls to below 60% of its start (the
    glassbox CLI's own training does the same in `tests/suite/train.rs`)."""
    model = glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx"))
    data = np.loadtxt(EXAMPLES / "data" / "spiral.csv", delimiter=",", skiprows=1)[:100]
    t, obs = data[:, 0], data[:, 1:]
    params = {k: jnp.asarray(v) for k, v in model.params.items()}
    y0 = jnp.asarray(obs[0])

    @jax.jit
    def loss(params):
        return jnp.mean(jnp.abs(gj.odeint(model, y0, t, params, rtol=1e-6, atol=1e-8) - obs))

    grad = jax.jit(jax.value_and_grad(loss))
    m = {k: jnp.zeros_like(v) for k, v in params.items()}
    v = {k: jnp.zeros_like(x) for k, x in params.items()}
    first = None
    for i in range(1, 51):
        value, g = grad(params)
        first = float(value) if first is None else first
        for k in params:
            m[k] = 0.9 * m[k] + 0.1 * g[k]
            v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
            params[k] = params[k] - 1e-2 * (m[k] / (1 - 0.9 ** i)) / (jnp.sqrt(v[k] / (1 - 0.999 ** i)) + 1e-8)
    last = float(loss(params))
    assert last < 0.6 * first, (first, last)


def test_a_bad_setting_raises_with_the_glassbox_diagnostic(spiral):
    # The error is raised inside jax's host callback, and jax re-raises it as its own runtime
    # error with the diagnostic in the message.
    with pytest.raises(Exception) as e:
        jax.grad(lambda y0: jnp.sum(gj.odeint(spiral, y0, [0.0, 1.0], method="rodas5p")))(jnp.array([2.0, 0.0]))
    assert "glassbox::bad_argument" in str(e.value) and "explicit" in str(e.value)


def test_a_vmapped_gradient_is_the_sum_of_the_rows_gradients(spiral):
    t = np.linspace(0.0, 1.0, 4)
    y0s = jnp.array([[2.0, 0.0], [1.0, 0.5], [0.0, -1.0]])
    p0 = {k: jnp.asarray(v) for k, v in spiral.params.items()}

    def row_loss(params, y0):
        y, r_e, _ = gj.odeint(spiral, y0, t, params, regularizers=True)
        return jnp.sum(y ** 2) + 0.1 * r_e

    batched = jax.jit(jax.grad(lambda p: jnp.sum(jax.vmap(row_loss, in_axes=(None, 0))(p, y0s))))(p0)
    rows = [jax.grad(row_loss)(p0, y0) for y0 in y0s]
    for k in p0:
        np.testing.assert_allclose(np.asarray(batched[k]), sum(np.asarray(r[k]) for r in rows), rtol=1e-12, atol=1e-14)


def test_vmap_over_parameters_solves_each_row_with_its_own(spiral):
    # Rows with different parameters take the row-by-row path of the host callback.
    t = np.linspace(0.0, 1.0, 3)
    p0 = {k: jnp.asarray(v) for k, v in spiral.params.items()}
    ps = {k: jnp.stack([v, 0.5 * v]) for k, v in p0.items()}
    y0 = jnp.array([2.0, 0.0])
    ys = jax.vmap(lambda p: gj.odeint(spiral, y0, t, p))(ps)
    for i in range(2):
        row = {k: np.asarray(v[i]) for k, v in ps.items()}
        np.testing.assert_array_equal(np.asarray(ys[i]), spiral.solve(t=t, y0=np.asarray(y0), params=row).y)
    g = jax.grad(lambda ps: jnp.sum(jax.vmap(lambda p: gj.odeint(spiral, y0, t, p))(ps) ** 2))(ps)
    for i in range(2):
        gi = jax.grad(lambda p: jnp.sum(gj.odeint(spiral, y0, t, p) ** 2))({k: v[i] for k, v in ps.items()})
        for k in p0:
            np.testing.assert_allclose(np.asarray(g[k][i]), np.asarray(gi[k]), rtol=1e-12, atol=1e-14)


def test_the_backward_pass_uses_the_kept_solve_else_solves_again(spiral):
    import glassbox.jax as module

    t = np.linspace(0.0, 1.0, 4)
    y0 = jnp.array([2.0, 0.0])
    ct = jnp.asarray(np.cos(np.arange(8.0)).reshape(4, 2))
    want = spiral.vjp(np.asarray(ct), t=t, y0=np.asarray(y0))["y0"]
    module._kept.clear()
    y, back = jax.vjp(lambda y0: gj.odeint(spiral, y0, t), y0)
    assert len(module._kept) == 1  # the forward pass kept its solution
    np.testing.assert_array_equal(np.asarray(back(ct)[0]), want)
    assert len(module._kept) == 0  # ... and the backward pass used it
    y, back = jax.vjp(lambda y0: gj.odeint(spiral, y0, t), y0)
    module._kept.clear()  # forgotten (as after _KEEP_MAX other forward passes): solved again
    np.testing.assert_array_equal(np.asarray(back(ct)[0]), want)


def test_a_batch_of_initial_states_is_one_call_and_sums_the_parameters_gradient():
    # The digits classifier's field (GEMM-sized layers): 16 rows go to glassbox's batched
    # solver and sweep. Values: Model.solve of the batch bit for bit. Gradients: the sum of
    # the single-state calls' (vmap) to the batched solver's rounding (test_vjp.py says why
    # 1e-9 without the error-estimate term).
    from test_vjp import WIDE

    m = glassbox.Model.from_source(WIDE)
    rng = np.random.default_rng(0)
    y0s = jnp.asarray(rng.normal(size=(16, 32)))
    t = np.array([0.0, 0.5, 1.0])
    p0 = {k: jnp.asarray(v) for k, v in m.params.items()}
    y = jax.jit(lambda y0s: gj.odeint(m, y0s, t, p0))(y0s)
    np.testing.assert_array_equal(np.asarray(y), m.solve(t=t, y0=np.asarray(y0s)).y)

    def batch_loss(p):
        return jnp.sum(jnp.sin(gj.odeint(m, y0s, t, p)))

    def vmap_loss(p):
        return jnp.sum(jnp.sin(jax.vmap(lambda y0: gj.odeint(m, y0, t, p))(y0s)))

    g, h = jax.jit(jax.grad(batch_loss))(p0), jax.jit(jax.grad(vmap_loss))(p0)
    for k in p0:
        np.testing.assert_allclose(np.asarray(g[k]), np.asarray(h[k]), rtol=1e-9,
                                   atol=1e-9 * float(jnp.max(jnp.abs(h[k]))))
    dy0 = jax.grad(lambda y: jnp.sum(gj.odeint(m, y, t, p0) ** 2))(y0s)
    want = jax.vmap(jax.grad(lambda y: jnp.sum(gj.odeint(m, y, t, p0) ** 2)))(y0s)
    np.testing.assert_allclose(np.asarray(dy0), np.asarray(want), rtol=1e-9, atol=1e-12)
