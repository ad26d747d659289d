"""`Model.show` is `glassbox show`'s output, and `_repr_latex_` gives Jupyter the field."""

import pytest

import glassbox
from conftest import EXAMPLES


@pytest.mark.parametrize(
    "example, view, flags",
    [
        ("spiral", "field", []),
        ("spiral", "field", ["--latex"]),
        ("spiral", "vjp", ["--vjp"]),
        ("lorenz", "jacobian", ["--jacobian", "--latex"]),
        ("lorenz", "dt2", ["--dt", "2"]),
        ("spiral_sde", "field", []),  # drift and diffusion, two parts
    ],
)
def test_show_is_the_cli_s_output(cli, example, view, flags):
    path = EXAMPLES / f"{example}.gbx"
    done = cli("show", path, *flags)
    assert done.returncode == 0, done.stderr
    got = glassbox.Model.from_file(str(path)).show(view, latex="--latex" in flags)
    assert got == done.stdout


def test_repr_latex_is_the_field_in_an_aligned_block():
    m = glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx"))
    tex = m._repr_latex_()
    assert tex.startswith("$$\\begin{aligned}") and tex.endswith("\\end{aligned}$$")
    assert "\\tanh" in tex and "%" not in tex


def test_an_unknown_view_raises():
    m = glassbox.Model.from_file(str(EXAMPLES / "spiral.gbx"))
    with pytest.raises(glassbox.GlassboxError) as e:
        m.show("hessian")
    assert e.value.code == "glassbox::bad_argument" and "vjp" in e.value.help
    with pytest.raises(glassbox.GlassboxError):
        m.show("dt9")
