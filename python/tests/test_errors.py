"""Every failure is a GlassboxError with the CLI's code, span, help and rendering; no input
crashes the interpreter."""

import math

import numpy as np
import pytest

import glassbox
from conftest import EXAMPLES

UNDEFINED = """model m
state y = 1
dy/dt = -kk * y
"""


def test_a_model_that_does_not_check_raises_with_code_span_and_the_cli_rendering(cli, tmp_path):
    path = tmp_path / "m.gbx"
    path.write_text(UNDEFINED)
    with pytest.raises(glassbox.GlassboxError) as info:
        glassbox.Model.from_file(str(path))
    e = info.value
    assert e.code == "glassbox::undefined_name"
    start = UNDEFINED.index("kk")
    assert e.span == (start, start + 2)
    assert (e.line, e.column) == (3, 10)
    assert e.file == str(path)
    assert "kk" in e.message
    assert e.help
    assert isinstance(e, Exception)
    # str(e): code, message, place and help on two lines.
    assert str(e).startswith("glassbox::undefined_name: ")
    assert f"({path}:3:10)" in str(e) and "help: " in str(e)
    # `.rendered` is what `glassbox check` prints without colour, before its count line.
    done = cli("check", path)
    assert done.returncode == 1
    assert done.stderr == e.rendered + "1 error in 1 file\n"
    assert [d.code for d in e.diagnostics] == ["glassbox::undefined_name"]


def test_from_source_names_the_text_and_gives_every_diagnostic():
    text = "model m\nstate y = 1, z = 2\ndy/dt = -a * y\ndz/dt = b\n"
    with pytest.raises(glassbox.GlassboxError) as info:
        glassbox.Model.from_source(text, name="two.gbx")
    e = info.value
    assert len(e.diagnostics) == 2
    first = e.diagnostics[0]
    assert (e.code, e.message, e.span, e.help) == (first.code, first.message, first.span, first.help)
    assert [text[slice(*d.span)] for d in e.diagnostics] == ["a", "b"]
    assert all(d.file == "two.gbx" and "two.gbx" in d.rendered for d in e.diagnostics)
    assert "(and 1 more in .diagnostics)" in str(e)


def test_a_missing_file_is_a_diagnostic_without_a_span(tmp_path):
    with pytest.raises(glassbox.GlassboxError) as info:
        glassbox.Model.from_file(str(tmp_path / "nothing.gbx"))
    assert info.value.code.startswith("glassbox::")
    assert info.value.span is None and info.value.line is None
    assert "nothing.gbx" in info.value.rendered


def test_a_solver_failure_raises_max_steps():
    model = glassbox.Model.from_source(
        "model m\nstate y = 1\ndy/dt = -y\nsolve tsit5(max_steps = 3) over [0, 1000]\n"
    )
    with pytest.raises(glassbox.GlassboxError) as info:
        model.solve()
    assert info.value.code == "glassbox::max_steps"
    assert info.value.help


DECAY = "model decay\nstate y = 1\nparam k = 0.5, w = [1, 2]\ndy/dt = -k * y + 0 * w[0]\nsolve tsit5 over [0, 1]\n"


@pytest.mark.parametrize(
    "kwargs, code, words",
    [
        ({"params": {"kk": 1.0}}, "glassbox::bad_argument", "did you mean `k`"),
        ({"params": {"w": [1.0, 2.0, 3.0]}}, "glassbox::bad_argument", "[2]"),
        ({"params": {"k": [[1.0]]}}, "glassbox::bad_argument", "scalar"),
        ({"params": {"k": math.nan}}, "glassbox::bad_argument", "finite"),
        ({"params": {"k": math.inf}}, "glassbox::bad_argument", "finite"),
        ({"y0": [1.0, 2.0]}, "glassbox::bad_argument", "1 state element"),
        ({"y0": [math.nan]}, "glassbox::bad_argument", "finite"),
        ({"y0": [[[1.0]]]}, "glassbox::bad_argument", "1-D"),
        ({"y0": [[1.0]]}, "glassbox::bad_argument", "save times"),  # batched, no t
        ({"y0": [[1.0], [2.0]], "over": (0.0, 1.0)}, "glassbox::bad_argument", "t="),
        ({"y0": [[1.0, 2.0]], "t": [0.0, 1.0]}, "glassbox::bad_argument", "row 0"),
        ({"t": [0.0, math.nan, 1.0]}, "glassbox::bad_argument", "increasing"),
        ({"t": [1.0, 0.0]}, "glassbox::bad_argument", "increasing"),
        ({"t": [0.5]}, "glassbox::bad_argument", "at least two"),
        ({"t": []}, "glassbox::bad_argument", "empty"),
        ({"t": [0.0, 1.0], "over": (0.0, 1.0)}, "glassbox::bad_argument", "twice"),
        ({"over": (0.0, math.nan)}, "glassbox::bad_argument", "finite"),
        ({"method": "tsit6"}, "glassbox::unknown_method", "tsit5"),
        ({"method": "sosri"}, "glassbox::method_mismatch", "SDE method"),
        ({"rtol": math.nan}, "glassbox::invalid_solve_option", "rtol"),
        ({"rtol": -1.0}, "glassbox::invalid_solve_option", "rtol"),
        ({"paths": 3}, "glassbox::bad_argument", "SDE"),
    ],
)
def test_bad_arguments_raise_glassbox_errors(kwargs, code, words):
    model = glassbox.Model.from_source(DECAY)
    with pytest.raises(glassbox.GlassboxError) as info:
        model.solve(**kwargs)
    assert info.value.code == code, str(info.value)
    assert words in str(info.value), str(info.value)


@pytest.mark.parametrize("y0", [1e308, -1e308, 5e-324])
def test_extreme_initial_states_never_crash(y0):
    # dy/dt = -k y from ±1e308 stays finite; the subnormal decays towards zero.
    model = glassbox.Model.from_source(DECAY)
    try:
        sol = model.solve(y0=[y0], t=[0.0, 1.0])
    except glassbox.GlassboxError as e:  # a refusal is fine; a crash is not
        assert e.code.startswith("glassbox::")
    else:
        assert sol.y[0, 0] == y0
        assert np.isfinite(sol.y).all()


def test_a_field_that_overflows_raises_non_finite_state():
    # y' = y^2 from 1 blows up at t = 1; solving past it must end in a diagnostic.
    model = glassbox.Model.from_source("model blow\nstate y = 1\ndy/dt = y * y\n")
    with pytest.raises(glassbox.GlassboxError) as info:
        model.solve(over=(0.0, 2.0))
    assert info.value.code in {"glassbox::non_finite_state", "glassbox::step_underflow", "glassbox::max_steps"}


def test_warnings_stay_with_the_model_and_the_error_class_is_exported():
    assert issubclass(glassbox.GlassboxError, Exception)
    model = glassbox.Model.from_file(str(EXAMPLES / "lorenz.gbx"))
    assert all(w.severity == "warning" for w in model.warnings)
