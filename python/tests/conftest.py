"""Shared fixtures: the repository's paths and the `glassbox` binary that cargo built, so the
tests can compare the package with the CLI it must equal."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _binary():
    given = os.environ.get("GLASSBOX_BIN")
    candidates = [Path(given)] if given else []
    candidates += [ROOT / "target" / "debug" / "glassbox", ROOT / "target" / "release" / "glassbox"]
    for c in candidates:
        if c.is_file():
            return c
    return None


@pytest.fixture(scope="session")
def cli():
    """Run the CLI; returns the completed process (no colour, output captured)."""
    binary = _binary()
    if binary is None:
        pytest.fail("no glassbox binary: run `cargo build` first or set GLASSBOX_BIN")

    def run(*args, cwd=ROOT):
        env = dict(os.environ, NO_COLOR="1")
        return subprocess.run(
            [str(binary), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True
        )

    return run
