#!/usr/bin/env bash
# Sets up the peers for benches/peers/run.py. Idempotent: reuses what is already there.
#   .venv/                 Python venv with pinned scipy, jax[cpu], diffrax, equinox, optax,
#                          matplotlib (PyPI)
#   --with-torch           also torch + torchdiffeq + torchsde (PyPI serves only the CUDA build of
#                          torch here: about 6 GB of wheels)
#   diffsol/target/release/diffsol-bench
#                          the diffsol peer, its own Cargo project and target dir (release build,
#                          ~5 min on 2 cores the first time)
#   --no-diffsol           skip the diffsol build
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WITH_TORCH=0
WITH_DIFFSOL=1
for arg in "$@"; do
    case "$arg" in
        --with-torch) WITH_TORCH=1 ;;
        --no-diffsol) WITH_DIFFSOL=0 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

PY_PINS=(
    "numpy==2.4.6" "scipy==1.17.1" "jax[cpu]==0.10.2" "jaxlib==0.10.2" "diffrax==0.7.2"
    "equinox==0.13.8" "lineax==0.1.1" "optax==0.2.8" "matplotlib==3.11.2"
)
TORCH_PINS=("torch==2.15.0" "torchdiffeq==0.2.5" "torchsde==0.2.6")

PYTHON="${PYTHON:-python3}"
VENV="$HERE/.venv"
if [ -x "$VENV/bin/python" ]; then
    echo "setup: venv exists at $VENV"
else
    echo "setup: creating venv at $VENV ($("$PYTHON" --version))"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
fi
echo "setup: pip install ${PY_PINS[*]}"
"$VENV/bin/pip" install --quiet "${PY_PINS[@]}"
if [ "$WITH_TORCH" = 1 ]; then
    echo "setup: pip install ${TORCH_PINS[*]} (large download: CUDA wheels, ~6 GB)"
    "$VENV/bin/pip" install --quiet "${TORCH_PINS[@]}"
else
    echo "setup: torch peers skipped (pass --with-torch to install torch, torchdiffeq, torchsde; ~6 GB)"
fi
"$VENV/bin/pip" list 2>/dev/null | grep -iE '^(numpy|scipy|jax|jaxlib|diffrax|equinox|optax|matplotlib|torch|torchdiffeq|torchsde) ' \
    | sed 's/^/setup:   /'

if [ "$WITH_DIFFSOL" = 1 ]; then
    if ! command -v cargo >/dev/null; then
        echo "setup: cargo not found: diffsol peer skipped" >&2
    else
        echo "setup: building diffsol peer (release, own target dir benches/peers/diffsol/target)"
        (cd "$HERE/diffsol" && CARGO_TARGET_DIR="$HERE/diffsol/target" cargo build --release --quiet)
        echo "setup:   $HERE/diffsol/target/release/diffsol-bench"
    fi
else
    echo "setup: diffsol build skipped (--no-diffsol)"
fi
echo "setup: done. Run: $VENV/bin/python $HERE/run.py"
