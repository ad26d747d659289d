"""Gradients through the package (`Model.vjp`) and settable parameters: against the analytic
gradient of exponential decay and central differences of `Model.solve` itself.

Tolerances: at rtol = 1e-10 a solve is within ~1e-10 of the exact decay and the adjoint is the
exact derivative of the solve, so 1e-7 against the analytic gradient leaves room. The central
differences of the spiral MLP's loss run at fixed steps (`dt`), so no step size moves under
them: their error is O(eps^2) truncation plus ~1e-16/eps rounding, about 1e-9 at eps = 1e-6.
"""

import numpy as np
import pytest

import glassbox
from conftest import EXAMPLES

DECAY = """model decay
param a = 1.5, k = 0.7
state x = a
dx/dt = -k * x
solve tsit5(rtol = 1e-10, atol = 1e-12) over [0, 1]
"""


def test_vjp_of_decay_is_the_analytic_gradient():
    m = glassbox.Model.from_source(DECAY)
    t = np.array([0.0, 0.5, 1.0])
    g = m.vjp(np.array([[0.0], [1.0], [2.0]]), t=t, y0=[1.5])
    k, y0 = 0.7, 1.5
    want_y0 = np.exp(-k / 2) + 2 * np.exp(-k)
    want_k = -y0 * (np.exp(-k / 2) / 2 + 2 * np.exp(-k))
    assert abs(g["y0"][0] - want_y0) < 1e-7
    assert abs(g["params"]["k"] - want_k) < 1e-7
    # y0 was given, so the initial state's parameter `a` does not enter.
    assert g["params"]["a"] == 0.0
    np.testing.assert_array_equal(g["solution"].t, t)
    # Without y0 the state starts at `a`, and dL/da is dL/dy0.
    g = m.vjp([[0.0], [1.0], [2.0]], t=t)
    assert abs(g["params"]["a"] - want_y0) < 1e-7


def test_vjp_matches_central_differences_of_solve_with_the_regularizers():
    m = glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx"))
    t = np.linspace(0.0, 2.0, 5)
    rng = np.random.default_rng(0)
    cot = rng.normal(size=(len(t), 2))
    settings = dict(t=t, method="tsit5", dt=0.05, rtol=1e-4, atol=1e-6)
    w_e, w_s = 0.3, 0.2
    g = m.vjp(cot, error_weight=w_e, stiffness_weight=w_s, **settings)

    def loss(params):
        # L = <cot, y> + w_E R_E + w_S R_S, the regularizers read from the solve's step records.
        sol = m.solve(params=params, **settings)
        h = sol.steps["h"]
        r_e = np.sum(sol.steps["error_estimate"] * np.abs(h))
        r_s = np.sum(sol.steps["stiffness_estimate"] * np.abs(h))
        return float(np.sum(cot * sol.y) + w_e * r_e + w_s * r_s)

    params = m.params
    name = next(n for n, v in params.items() if v.ndim == 2)  # a weight matrix
    eps = 1e-6
    checked = 0
    for idx in [(0, 0), (1, 1), (-1, -1)]:
        up, down = {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in params.items()}
        up[name][idx] += eps
        down[name][idx] -= eps
        fd = (loss(up) - loss(down)) / (2 * eps)
        assert abs(fd - g["params"][name][idx]) < 1e-6 * (1 + abs(fd)), (name, idx, fd)
        checked += 1
    assert checked == 3
    assert g["error_estimate"] > 0 and g["stiffness"] > 0


def test_params_are_settable_all_or_nothing():
    m = glassbox.Model.from_source(DECAY)
    before = m.solve(t=[0.0, 1.0]).y[-1, 0]
    m.params = {"k": 0.0}
    assert m.params["k"] == 0.0 and m.params["a"] == 1.5
    assert m.solve(t=[0.0, 1.0]).y[-1, 0] == 1.5  # no decay at k = 0
    with pytest.raises(glassbox.GlassboxError) as e:
        m.params = {"k": 2.0, "nope": 1.0}
    assert e.value.code == "glassbox::bad_argument"
    assert m.params["k"] == 0.0  # the bad assignment changed nothing
    m.params = {"k": 0.7}
    assert m.solve(t=[0.0, 1.0]).y[-1, 0] == before


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(cotangent=[[1.0]], t=[0.0, 1.0]), "shape"),
        (dict(cotangent=[[1.0], [np.nan]], t=[0.0, 1.0]), "finite"),
        (dict(cotangent=[[0.0], [1.0]], t=[0.0, 1.0], method="rodas5p"), "explicit"),
        (dict(cotangent=[[0.0], [1.0]], t=[0.0, 1.0], error_weight=np.inf), "finite"),
    ],
)
def test_vjp_mistakes_raise(kwargs, words):
    m = glassbox.Model.from_source(DECAY)
    with pytest.raises(glassbox.GlassboxError) as e:
        m.vjp(**kwargs)
    assert e.value.code == "glassbox::bad_argument"
    assert words in str(e.value)


def test_a_model_compiles_once_and_later_calls_equal_a_fresh_model():
    # The first solve (and the first gradient) compile the kernels; later calls with other
    # parameters reuse them and give what a freshly loaded model gives, bit for bit.
    t = [0.0, 1.0, 2.0]
    m = glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx"))
    first = m.solve(t=t)
    assert first.timing["compile_ms"] > 0
    new = {k: v * 0.5 for k, v in m.params.items()}
    again = m.solve(t=t, params=new)
    assert again.timing["compile_ms"] == 0
    fresh = glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx"))
    np.testing.assert_array_equal(again.y, fresh.solve(t=t, params=new).y)
    cot = np.ones((3, 2))
    m.vjp(cot, t=t)
    g = m.vjp(cot, t=t, params=new)
    want = fresh.vjp(cot, t=t, params=new)
    for k in new:
        np.testing.assert_array_equal(g["params"][k], want["params"][k])


def test_vjp_rows_is_vjp_row_by_row_and_solutions_carry_their_regularizers():
    m = glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx"))
    t = np.linspace(0.0, 1.0, 4)
    y0s = np.array([[2.0, 0.0], [1.0, 0.5], [0.0, -1.0]])
    rng = np.random.default_rng(1)
    cots = rng.normal(size=(3, len(t), 2))
    we, ws = np.array([0.0, 0.5, 1.0]), np.array([0.2, 0.0, 0.3])
    g = m.vjp_rows(cots, t=t, y0=y0s, error_weights=we, stiffness_weights=ws)
    batch = m.solve(t=t, y0=y0s)
    for i in range(3):
        one = m.vjp(cots[i], t=t, y0=y0s[i], error_weight=we[i], stiffness_weight=ws[i])
        np.testing.assert_array_equal(g["y0"][i], one["y0"])
        for k in one["params"]:
            np.testing.assert_array_equal(g["params"][k][i], one["params"][k])
        assert g["error_estimate"][i] == one["error_estimate"]
        alone = m.solve(t=t, y0=y0s[i])
        assert batch.regularizers["error_estimate"][i] == alone.regularizers["error_estimate"]
        assert alone.regularizers["stiffness"] == one["stiffness"]
    with pytest.raises(glassbox.GlassboxError):
        m.vjp_rows(cots[:2], t=t, y0=y0s)
    with pytest.raises(glassbox.GlassboxError):
        m.vjp_rows(cots, t=t, y0=y0s, error_weights=[1.0, 2.0])
    # One weight is every row's.
    _assert_gradients_equal(m.vjp_rows(cots, t=t, y0=y0s, error_weights=0.5),
                            m.vjp_rows(cots, t=t, y0=y0s, error_weights=[0.5] * len(y0s)))


def _assert_gradients_equal(got, want):
    np.testing.assert_array_equal(got["y0"], want["y0"])
    assert got["params"].keys() == want["params"].keys()
    for k in want["params"]:
        np.testing.assert_array_equal(got["params"][k], want["params"][k])
    np.testing.assert_array_equal(got["error_estimate"], want["error_estimate"])
    np.testing.assert_array_equal(got["stiffness"], want["stiffness"])


def test_a_kept_solve_is_the_plain_solve_and_its_adjoint_is_vjp_bit_for_bit():
    m = glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx"))
    t = np.linspace(0.0, 2.0, 5)
    kept = m.solve(t=t, keep=True)
    assert kept.kept and not m.solve(t=t).kept
    np.testing.assert_array_equal(kept.y, m.solve(t=t).y)
    # Two cotangents on one kept solve: each is vjp's gradient (a fresh solve and sweep).
    for c, we, ws in [(np.cos(np.arange(10.0)).reshape(5, 2), 0.3, 0.2), (np.ones((5, 2)), 0.0, 0.0)]:
        got = m.solve_adjoint(kept, c, error_weight=we, stiffness_weight=ws)
        want = m.vjp(c, t=t, error_weight=we, stiffness_weight=ws)
        _assert_gradients_equal(got, want)
    # Parameters set after the solve do not change its adjoint: it is the kept solve's.
    before = m.solve_adjoint(kept, np.ones((5, 2)))
    old = m.params
    m.params = {k: 2 * v for k, v in old.items()}
    _assert_gradients_equal(m.solve_adjoint(kept, np.ones((5, 2))), before)


def test_a_kept_batch_has_each_row_s_adjoint():
    m = glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx"))
    t = np.linspace(0.0, 1.0, 4)
    y0s = np.array([[2.0, 0.0], [1.0, 0.5], [0.0, -1.0]])
    kept = m.solve(t=t, y0=y0s, keep=True)
    np.testing.assert_array_equal(kept.y, m.solve(t=t, y0=y0s).y)
    c = np.sin(np.arange(kept.y.size, dtype=float)).reshape(kept.y.shape)
    w = np.array([0.1, 0.0, 0.5])
    got = m.solve_adjoint(kept, c, error_weight=w, stiffness_weight=0.2)
    want = m.vjp_rows(c, t=t, y0=y0s, error_weights=w, stiffness_weights=[0.2] * 3)
    _assert_gradients_equal(got, want)


@pytest.mark.parametrize(
    "case, words",
    [
        ("not kept", "keep=True"),
        ("other model", "another model"),
        ("shape", "shape"),
        ("weights", "3 values for 1 rows"),
    ],
)
def test_solve_adjoint_mistakes_raise(case, words):
    m = glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx"))
    t = np.linspace(0.0, 1.0, 3)
    sol = m.solve(t=t, keep=case != "not kept")
    other = glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx"))
    args = {
        "not kept": (m, sol, np.ones((3, 2)), {}),
        "other model": (other, sol, np.ones((3, 2)), {}),
        "shape": (m, sol, np.ones((2, 3)), {}),
        "weights": (m, sol, np.ones((3, 2)), {"error_weight": [1.0, 2.0, 3.0]}),
    }[case]
    with pytest.raises(glassbox.GlassboxError) as e:
        args[0].solve_adjoint(args[1], args[2], **args[3])
    assert e.value.code == "glassbox::bad_argument" and words in str(e.value)


def test_keep_refuses_what_has_no_adjoint():
    with pytest.raises(glassbox.GlassboxError) as e:
        glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx")).solve(t=[0.0, 1.0], method="rodas5p", keep=True)
    assert "explicit" in str(e.value)
    with pytest.raises(glassbox.GlassboxError) as e:
        glassbox.Model.from_file(str(EXAMPLES / "ou_fit.gbx")).solve(keep=True)
    assert "SDE" in str(e.value)


# A field with GEMM-sized layers (the digits classifier's), so a batch of 16 rows is solved
# batched by default.
WIDE = """model wide
net f = mlp(33, 64, 32; act = tanh)
state h[32] = 0
dh/dt = f(concat(h, t))
solve tsit5(rtol = 1e-5, atol = 1e-5) over [0, 1]
"""


def test_batched_rows_are_the_rows_solved_alone_to_rounding():
    # The batched solver does each row's arithmetic but for the GEMMs' summation order, so the
    # states agree to rounding through a few adaptive steps (1e-10 relative leaves 10^5 ulps),
    # and so do the gradients without the error-estimate term. With it, R_E's gradient divides
    # by the error norm (~1e-6 here): rounding is amplified by ~1e5 (6.9e-9 measured), so 1e-6.
    m = glassbox.Model.from_source(WIDE)
    rng = np.random.default_rng(0)
    y0 = rng.normal(size=(16, 32))
    t = [0.0, 0.5, 1.0]
    together, alone = m.solve(t=t, y0=y0), m.solve(t=t, y0=y0, batched=False)
    assert together.batched and not alone.batched and not m.solve(t=t, y0=y0[:3]).batched
    np.testing.assert_allclose(together.y, alone.y, rtol=1e-10, atol=1e-12)
    c = rng.normal(size=together.y.shape)
    for w, tol in [(0.0, 1e-9), (0.1, 1e-6)]:
        g = m.vjp_rows(c, t=t, y0=y0, error_weights=w, sum_rows=True)
        h = m.vjp_rows(c, t=t, y0=y0, error_weights=w, batched=False)
        np.testing.assert_allclose(g["y0"], h["y0"], rtol=tol, atol=tol * np.abs(h["y0"]).max())
        for k, v in h["params"].items():
            total = v.sum(axis=0)
            np.testing.assert_allclose(g["params"][k], total, rtol=tol, atol=tol * np.abs(total).max())
        np.testing.assert_array_equal(g["error_estimate"], m.solve(t=t, y0=y0).regularizers["error_estimate"])
    # The per-row gradients of a batched solve: each row's sweep on its batched solution.
    per_row = m.vjp_rows(c, t=t, y0=y0)
    for k, v in per_row["params"].items():
        np.testing.assert_allclose(v.sum(axis=0), m.vjp_rows(c, t=t, y0=y0, sum_rows=True)["params"][k],
                                   rtol=1e-12, atol=1e-14 * np.abs(v).max())


def test_a_kept_batch_s_summed_adjoint_is_vjp_rows_bit_for_bit():
    m = glassbox.Model.from_source(WIDE)
    rng = np.random.default_rng(1)
    y0 = rng.normal(size=(12, 32))
    t = [0.0, 1.0]
    kept = m.solve(t=t, y0=y0, keep=True)
    assert kept.batched and kept.kept
    c = rng.normal(size=kept.y.shape)
    _assert_gradients_equal(m.solve_adjoint(kept, c, error_weight=0.2, sum_rows=True),
                            m.vjp_rows(c, t=t, y0=y0, error_weights=0.2, sum_rows=True))
    with pytest.raises(glassbox.GlassboxError) as e:
        m.solve(t=t, y0=y0, method="rodas5p", batched=True)
    assert "explicit" in str(e.value)


def test_an_sde_s_vjp_is_over_the_solve_s_paths_and_matches_central_differences():
    # examples/ou_fit.gbx: Euler–Maruyama at a fixed dt, so the same seed gives the same
    # Brownian increments at any parameters and L = Σ ⟨c, y⟩ over 4 paths is smooth in them:
    # central differences (eps 1e-6: O(eps^2) truncation, ~1e-10 rounding) agree to 1e-7.
    m = glassbox.Model.from_file(str(EXAMPLES / "ou_fit.gbx"))
    t = np.linspace(0.0, 1.0, 5)
    paths = m.solve(t=t, paths=4, seed=3)
    c = np.cos(np.arange(paths.y.size, dtype=float)).reshape(paths.y.shape)
    g = m.vjp(c, t=t, paths=4, seed=3)
    np.testing.assert_array_equal(g["solution"].y, paths.y)  # the solve's own paths
    assert g["error_estimate"].shape == (4,)
    p0, eps = m.params, 1e-6

    def loss(**over):
        params = {k: v for k, v in p0.items()}
        y0 = over.pop("y0", None)
        params.update(over)
        return float(np.sum(c * m.solve(t=t, paths=4, seed=3, params=params, y0=y0).y))

    for k, v in p0.items():
        fd = (loss(**{k: v + eps}) - loss(**{k: v - eps})) / (2 * eps)
        assert abs(fd - float(g["params"][k])) < 1e-7 * (1 + abs(fd)), (k, fd, g["params"][k])
    fd = (loss(y0=[2.0 + eps]) - loss(y0=[2.0 - eps])) / (2 * eps)
    assert abs(fd - float(g["y0"][0])) < 1e-7 * (1 + abs(fd))
    with pytest.raises(glassbox.GlassboxError) as e:
        m.vjp(c[:2], t=t, paths=4, seed=3)
    assert "shape" in str(e.value)
