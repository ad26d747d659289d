"""Solves through the package equal the CLI's, and agree with analytic solutions."""

import csv
import json

import numpy as np
import pytest

import glassbox
from conftest import EXAMPLES


def read_csv(path):
    """The CLI's CSV as (header, float rows)."""
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], np.array([[float(x) for x in r] for r in rows[1:]])


def test_the_model_clause_solve_equals_the_cli_bit_for_bit(cli, tmp_path):
    # lorenz's own clause: tsit5(rtol = 1e-6, atol = 1e-9) over [0, 100], every accepted
    # step saved. The CSV writes `{:e}` numbers, which round-trip, so equality is exact.
    out = tmp_path / "lorenz.json"
    done = cli("solve", EXAMPLES / "lorenz.gbx", "-o", out)
    assert done.returncode == 0, done.stderr
    want = json.loads(out.read_text())
    sol = glassbox.Model.from_file(str(EXAMPLES / "lorenz.gbx")).solve()
    assert sol.states == want["names"] == ["x", "y", "z"]
    assert sol.method == want["method"]
    np.testing.assert_array_equal(sol.t, np.array(want["t"]))
    np.testing.assert_array_equal(sol.y, np.array(want["u"]))
    assert sol.y.shape == (len(sol.t), 3)
    for key, value in want["stats"].items():
        assert sol.stats[key] == value, key
    # One step record per accepted step; every explicit embedded pair has error estimates.
    steps = sol.steps
    assert len(steps["h"]) == sol.stats["accepted"]
    assert np.all(steps["h"] > 0)
    assert np.all(np.isfinite(steps["error_estimate"]))
    np.testing.assert_allclose(steps["t"][1:], steps["t"][:-1] + steps["h"][:-1], rtol=1e-12)
    assert steps["nfe"].sum() <= sol.stats["nfe"]


def test_given_save_times_equal_the_cli_at_grid(cli, tmp_path):
    out = tmp_path / "vdp.csv"
    done = cli("solve", EXAMPLES / "van_der_pol.gbx", "--at", "0:3:31", "--rtol", "1e-8", "-o", out)
    assert done.returncode == 0, done.stderr
    header, rows = read_csv(out)
    model = glassbox.Model.from_file(str(EXAMPLES / "van_der_pol.gbx"))
    sol = model.solve(t=rows[:, 0], rtol=1e-8)
    assert ["t", *sol.states] == header
    np.testing.assert_array_equal(sol.t, rows[:, 0])
    np.testing.assert_array_equal(sol.y, rows[:, 1:])


def test_sde_paths_equal_the_cli_for_the_same_seed(cli, tmp_path):
    out = tmp_path / "paths.csv"
    done = cli(
        "solve", EXAMPLES / "spiral_sde.gbx", "--paths", "3", "--seed", "7", "--at", "0:1:11", "-o", out
    )
    assert done.returncode == 0, done.stderr
    header, rows = read_csv(out)
    model = glassbox.Model.from_file(str(EXAMPLES / "spiral_sde.gbx"))
    # The CLI's grid and numpy's linspace may differ in the last bit; SDE steps land on the
    # save times, so the CLI's own times give bit equality.
    sol = model.solve(t=rows[rows[:, 0] == 0, 1], paths=3, seed=7)
    assert header == ["path", "t", *sol.states]
    assert sol.y.shape == (3, 11, 2) and (sol.seed, sol.paths) == (7, 3)
    np.testing.assert_array_equal(sol.y.reshape(-1, 2), rows[:, 2:])
    other = model.solve(t=sol.t, paths=3, seed=8)
    assert not np.array_equal(other.y, sol.y), "another seed draws other paths"


DECAY = """model decay
state y = 2
param k = 0.5
dy/dt = -k * y
solve tsit5(rtol = 1e-10, atol = 1e-12) over [0, 4]
"""


@pytest.mark.parametrize("k", [0.5, 1.5, 3.0])
def test_params_override_follows_the_analytic_decay(k):
    model = glassbox.Model.from_source(DECAY, name="decay.gbx")
    t = np.linspace(0.0, 4.0, 41)
    sol = model.solve(t=t, params={"k": k}) if k != 0.5 else model.solve(t=t)
    exact = 2.0 * np.exp(-k * t)
    # Each accepted step's local error is held below rtol·|y| + atol by the step control, and
    # dy/dt = -k y contracts, so the global error is at most their sum over the accepted
    # steps; a factor 10 covers the controller's safety margin and the dense output between
    # steps (the same order as the local error for tsit5's interpolant).
    bound = 10 * sol.stats["accepted"] * (1e-10 * 2.0 + 1e-12)
    err = np.abs(sol.y[:, 0] - exact)
    assert err.max() <= bound, (err.max(), bound)
    # The override is not a no-op: the default k = 0.5 is far away at t = 4 unless k = 0.5.
    if k != 0.5:
        assert abs(sol.y[-1, 0] - 2.0 * np.exp(-0.5 * 4.0)) > 1e3 * bound


def test_y0_replaces_the_model_initial_state():
    model = glassbox.Model.from_source(DECAY)
    sol = model.solve(t=[0.0, 1.0, 2.0], y0=[5.0])
    np.testing.assert_allclose(sol.y[:, 0], 5.0 * np.exp(-0.5 * np.array([0.0, 1.0, 2.0])), rtol=1e-8)
    assert sol.y[0, 0] == 5.0


def test_over_saves_every_accepted_step_and_method_overrides_the_clause():
    model = glassbox.Model.from_source(DECAY)
    sol = model.solve(over=(0.0, 1.0), method="rk4", dt=0.125)
    assert sol.method == "rk4"
    np.testing.assert_allclose(sol.t, np.arange(0.0, 1.0 + 1e-12, 0.125), rtol=0, atol=1e-15)
    # rk4's global error is O(dt^4); at dt = 1/8 and k = 0.5 it is far below 1e-6.
    np.testing.assert_allclose(sol.y[:, 0], 2.0 * np.exp(-0.5 * sol.t), rtol=1e-6)


def test_params_reads_every_parameter_by_name_with_its_shape():
    model = glassbox.Model.from_file(str(EXAMPLES / "spiral_sde.gbx"))
    p = model.params
    assert p["noise.W1"].shape == (2, 2)
    assert p["drift.W1"].shape == (50, 2)
    model2 = glassbox.Model.from_source(DECAY)
    assert model2.params == {"k": pytest.approx(0.5)}
    assert model2.params["k"].shape == ()
    assert (model2.name, model2.kind, model2.states) == ("decay", "ode", ["y"])
    # The dict is a copy: changing it changes no later solve.
    model2.params["k"][...] = 9.0
    assert model2.params["k"] == 0.5


def test_a_batched_y0_solves_each_row_as_alone():
    m = glassbox.Model.from_file(str(EXAMPLES / "lorenz.gbx"))
    t = np.linspace(0.0, 2.0, 11)
    y0s = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [-2.0, 3.0, 20.0]])
    sol = m.solve(t=t, y0=y0s)
    assert sol.y.shape == (3, len(t), 3) and sol.rows == 3 and sol.steps is None
    nfe = 0
    for row, y0 in zip(sol.y, y0s):
        alone = m.solve(t=t, y0=y0)
        np.testing.assert_array_equal(row, alone.y)
        nfe += alone.stats["nfe"]
    assert sol.stats["nfe"] == nfe
    np.testing.assert_array_equal(sol.t, t)


def test_sde_paths_carry_their_step_records_and_regularizers():
    # Every accepted step of every path, path after path (`path` names it); a path's R_E is
    # the sum of its records' E_j |h_j|, as for an ODE solve.
    model = glassbox.Model.from_file(str(EXAMPLES / "spiral_sde.gbx"))
    sol = model.solve(paths=3, seed=1)
    steps = sol.steps
    assert len(steps["t"]) == sol.stats["accepted"]
    assert list(np.unique(steps["path"])) == [0.0, 1.0, 2.0]
    assert np.all(np.diff(steps["path"]) >= 0)
    for k in range(3):
        mine = steps["path"] == k
        r_e = np.sum(steps["error_estimate"][mine] * np.abs(steps["h"][mine]))
        np.testing.assert_allclose(sol.regularizers["error_estimate"][k], r_e, rtol=1e-12)
        assert np.all(np.diff(steps["t"][mine]) > 0)
