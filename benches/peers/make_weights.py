"""Writes spiral_weights.json: the fixed weights every tool uses (run once; the file is committed).

Spiral MLP (torchdiffeq ode_demo): f(y) = W2 tanh(W1 y^3 + b1) + b2, W1 50x2, W2 2x50, weights
N(0, 0.1), biases 0. The neural SDE reuses these as its drift and adds a 2x2 linear diffusion
g(u) = Wg u + bg (diagonal noise: component i of dW is scaled by g(u)_i).
"""

import json
import pathlib

import numpy as np

SEED = 20240607


def main() -> None:
    rng = np.random.default_rng(SEED)  # PCG64
    weights = {
        "generator": f"numpy.random.default_rng({SEED}) (PCG64), normal(0, 0.1), draw order W1, W2, Wg",
        "W1": rng.normal(0.0, 0.1, size=(50, 2)).tolist(),
        "b1": [0.0] * 50,
        "W2": rng.normal(0.0, 0.1, size=(2, 50)).tolist(),
        "b2": [0.0] * 2,
        "sde_diffusion": {
            "Wg": rng.normal(0.0, 0.1, size=(2, 2)).tolist(),
            "bg": [0.1, 0.1],
        },
    }
    path = pathlib.Path(__file__).with_name("spiral_weights.json")
    path.write_text(json.dumps(weights, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
