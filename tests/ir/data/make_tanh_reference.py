"""Writes tanh_reference.csv: x and tanh(x) to 200 bits, as the nearest f64 `hi` and the
f64 `lo` nearest to the rest (`tanh x ≈ hi + lo`), for `tests/ir/math.rs`.

Run: python3 tests/ir/data/make_tanh_reference.py (needs mpmath). Deterministic (seeded)."""
import os
import random

import mpmath

mpmath.mp.prec = 200
rng = random.Random(20261128)
xs = [0.0, 5e-324, 1e-300, 1e-20, 1e-8, 0.5, 0.625, 1.0, 19.0, 19.1, 20.0, 22.0, 30.0, 700.0]
xs += [0.625 - k * 2.0**-53 for k in range(1, 20)] + [0.625 + k * 2.0**-52 for k in range(1, 20)]
for lo, hi, n in [(-0.7, 0.7, 1500), (-3.0, 3.0, 1500), (-25.0, 25.0, 800), (0.55, 0.7, 400)]:
    xs += [rng.uniform(lo, hi) for _ in range(n)]
xs += [rng.choice([-1, 1]) * 10.0 ** rng.uniform(-300, -3) for _ in range(300)]
xs += [-x for x in xs[:14]]
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tanh_reference.csv")
with open(out, "w") as f:
    f.write("x,hi,lo\n")
    for x in xs:
        t = mpmath.tanh(mpmath.mpf(x))
        hi = float(t)
        lo = float(t - mpmath.mpf(hi))
        f.write(f"{x!r},{hi!r},{lo!r}\n")
