"""scipy peer: Lorenz with RK45 and DOP853, Robertson with LSODA, BDF and Radau (analytic
Jacobian given to the stiff methods). One JSON row per (problem, method, tolerance)."""

import numpy as np
import scipy
from scipy.integrate import solve_ivp

import common as c


def lorenz(t, y):
    x, yy, z = y
    return [10.0 * (yy - x), x * (28.0 - z) - yy, x * yy - (8.0 / 3.0) * z]


def robertson(t, y):
    y1, y2, y3 = y
    return [-0.04 * y1 + 1e4 * y2 * y3,
            0.04 * y1 - 1e4 * y2 * y3 - 3e7 * y2 * y2,
            3e7 * y2 * y2]


def robertson_jac(t, y):
    y1, y2, y3 = y
    return np.array([[-0.04, 1e4 * y3, 1e4 * y2],
                     [0.04, -1e4 * y3 - 6e7 * y2, -1e4 * y2],
                     [0.0, 6e7 * y2, 0.0]])


def run(args, problem, f, t_end, y0, method, rtol, atol, jac=None):
    kw = {"jac": jac} if jac is not None else {}

    def solve():
        sol = solve_ivp(f, (0.0, t_end), y0, method=method, rtol=rtol, atol=atol, **kw)
        if not sol.success:
            raise RuntimeError(f"{method} {problem} rtol {rtol}: {sol.message}")
        return sol

    median_ms, runs, _, sol = c.time_runs(solve, args)
    c.emit(args, tool="scipy", version=scipy.__version__, method=method, problem=problem,
           t_end=t_end, rtol=rtol, atol=atol, median_ms=median_ms, runs=runs,
           steps=len(sol.t) - 1, nfe=int(sol.nfev), final=sol.y[:, -1].tolist())


def main():
    args = c.parse_args(__doc__)
    if not c.wants(args, "ode"):
        return
    for method in ["RK45", "DOP853"]:
        run(args, "lorenz", lorenz, c.LORENZ_T_END, [1.0, 0.0, 0.0], method, 1e-6, 1e-9)
        for rtol in c.sweep(args):
            run(args, "lorenz_t10", lorenz, c.LORENZ_WP_T_END, [1.0, 0.0, 0.0], method, rtol,
                c.lorenz_atol(rtol))
    for method in ["LSODA", "BDF", "Radau"]:
        for rtol in c.sweep(args):
            run(args, "robertson", robertson, c.ROBERTSON_T_END, [1.0, 0.0, 0.0], method, rtol,
                c.robertson_atol(rtol), jac=robertson_jac)


if __name__ == "__main__":
    main()
