"""`Model.build` is `glassbox build`: a standalone binary with the model's current parameters
(or a run's weights) whose numbers are the model's own solve's, the runtime library found
beside the `glassbox` on PATH, and a missing runtime a diagnostic."""

import subprocess

import numpy as np
import pytest

import glassbox
from conftest import EXAMPLES, _binary


@pytest.fixture
def cli_on_path(monkeypatch):
    binary = _binary()
    if binary is None:
        pytest.fail("no glassbox binary: run `cargo build` first or set GLASSBOX_BIN")
    monkeypatch.delenv("GLASSBOX_RUNTIME", raising=False)
    monkeypatch.setenv("PATH", f"{binary.parent}:/usr/bin:/bin")


def read_csv(text):
    return np.loadtxt(text.splitlines()[1:], delimiter=",")


def test_a_built_binary_solves_with_the_model_s_current_parameters(cli_on_path, tmp_path):
    m = glassbox.Model.from_file(str(EXAMPLES / "lorenz.gbx"))
    m.params = {"rho": 20.0}
    out = m.build(str(tmp_path / "lorenz"))
    run = subprocess.run([out, "--at", "0:1:5"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    got = read_csv(run.stdout)
    want = m.solve(t=np.linspace(0.0, 1.0, 5))
    np.testing.assert_array_equal(got[:, 0], want.t)
    np.testing.assert_array_equal(got[:, 1:], want.y)  # bit for bit: the same solver and kernels
    help_text = subprocess.run([out, "--help"], capture_output=True, text=True).stdout
    assert "the parameters of the Python model" in help_text


def test_build_with_a_run_s_weights_equals_the_cli_s_build(cli, cli_on_path, tmp_path):
    model = EXAMPLES / "lotka_volterra_ude.gbx"
    assert cli("train", model, "--iterations", "3", "--out", tmp_path / "run").returncode == 0
    assert cli("build", model, "--weights", tmp_path / "run", "-o", tmp_path / "cli_lv").returncode == 0
    py = glassbox.Model.from_file(str(model)).build(str(tmp_path / "py_lv"), weights=str(tmp_path / "run"))
    a = subprocess.run([str(tmp_path / "cli_lv"), "--at", "0:2:5"], capture_output=True, text=True)
    b = subprocess.run([py, "--at", "0:2:5"], capture_output=True, text=True)
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout


def test_a_missing_runtime_is_a_diagnostic(monkeypatch, tmp_path):
    m = glassbox.Model.from_file(str(EXAMPLES / "lorenz.gbx"))
    monkeypatch.delenv("GLASSBOX_RUNTIME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(glassbox.GlassboxError) as e:
        m.build(str(tmp_path / "x"))
    assert e.value.code == "glassbox::runtime_missing" and "GLASSBOX_RUNTIME" in str(e.value)
    with pytest.raises(glassbox.GlassboxError) as e:
        m.build(str(tmp_path / "x"), runtime=str(tmp_path / "nope.a"))
    assert e.value.code == "glassbox::runtime_missing"
    assert not (tmp_path / "x").exists()
