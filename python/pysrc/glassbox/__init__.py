"""glassbox models from Python: check a model file, solve it, differentiate the solve.

The compiled extension (`glassbox._glassbox`, Rust through PyO3) does the work; this package
re-exports it and adds `glassbox.jax` (imported on use, so jax is needed only there).
See docs/python.md in the repository.
"""

from ._glassbox import Diagnostic, GlassboxError, Model, Solution, __version__

__all__ = ["Diagnostic", "GlassboxError", "Model", "Solution", "__version__"]
