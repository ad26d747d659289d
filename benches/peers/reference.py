"""Reference final values for the error column and the work-precision plots.

Lorenz: DOP853 at rtol 1e-13, atol 1e-15 over t in [0, 10]. The Lorenz system's largest Lyapunov
exponent is ~0.906, so an error made at time s grows like exp(0.906 (t - s)): by t = 10 a
roundoff-level 1e-15 becomes ~1e-11, by t = 100 it is ~1e24 times larger, i.e. no double-precision
solve has a meaningful final value at t = 100. So the work-precision sweep ends at t = 10 (and the
t = 100 headline row is timed, not scored). The reference's own error is estimated against a
second solve at rtol 1e-12 and printed.

Spiral forward: y(25) of the spiral MLP (DOP853, rtol 1e-12), a model-agreement check.

Robertson: Radau at rtol 1e-12, atol 1e-20 with the analytic Jacobian over [0, 1e5]. Radau at
rtol 1e-10, 1e-11, 1e-13 agrees with it to ~1e-14; the printed self-check is an independent method
(BDF, rtol 1e-12), which agrees to ~5e-11, below every error the sweeps measure. It is also checked against the classic
values y(1e5) = [0.0178659, 7.27475e-8, 0.982134] (6 digits: agreement to ~1e-6 is all they allow).
"""

import json
import sys

from scipy.integrate import solve_ivp

import common as c
from scipy_bench import lorenz, robertson, robertson_jac

CLASSIC_ROBERTSON = [0.0178659, 7.27475e-8, 0.982134]


def final(f, t_end, method, rtol, atol, jac=None):
    kw = {"jac": jac} if jac is not None else {}
    sol = solve_ivp(f, (0.0, t_end), [1.0, 0.0, 0.0], method=method, rtol=rtol, atol=atol, **kw)
    if not sol.success:
        raise RuntimeError(sol.message)
    return sol.y[:, -1].tolist()


def compute() -> dict:
    lz = final(lorenz, c.LORENZ_WP_T_END, "DOP853", 1e-13, 1e-15)
    lz_check = final(lorenz, c.LORENZ_WP_T_END, "DOP853", 1e-12, 1e-14)
    rb = final(robertson, c.ROBERTSON_T_END, "Radau", 1e-12, 1e-20, robertson_jac)
    rb_check = final(robertson, c.ROBERTSON_T_END, "BDF", 1e-12, 1e-20, robertson_jac)
    sp = spiral_final()
    info = {
        "lorenz_t10_self_error": c.rel_error(lz_check, lz),
        "robertson_self_error": c.rel_error(rb_check, rb),
        "robertson_vs_classic": c.rel_error(rb, CLASSIC_ROBERTSON),
    }
    c.note(f"reference: {json.dumps(info)}")
    # The classic values have 6 significant digits.
    if info["robertson_vs_classic"] > 1e-5:
        raise RuntimeError(f"Robertson reference disagrees with the classic values: {rb}")
    return {"lorenz_t10": lz, "robertson": rb, "spiral_forward": sp, "_info": info}


def spiral_final():
    """Spiral MLP y(25) with the shared weights, DOP853 rtol 1e-12: catches a tool whose model
    differs (wrong weights layout, wrong contraction), not a precision study."""
    import numpy as np
    w = c.load_weights()
    W1, b1, W2, b2 = (np.array(w[k]) for k in ["W1", "b1", "W2", "b2"])
    sol = solve_ivp(lambda t, y: W2 @ np.tanh(W1 @ y ** 3 + b1) + b2, (0.0, c.SPIRAL_T_END),
                    c.SPIRAL_Y0, method="DOP853", rtol=1e-12, atol=1e-12)
    return sol.y[:, -1].tolist()


if __name__ == "__main__":
    json.dump(compute(), sys.stdout, indent=1)
    print()
