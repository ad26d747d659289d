#!/usr/bin/env bash
# The step-size controller's defaults against the controller as it was (issue 14, item 6):
# every ODE example and peer model solved with the model's own clause, then with
# `first_max_factor = 10` (the ×10 cap from the first step on, the earlier behaviour; the
# initial step differs only for fields negligible at t0, which none of these is), and with
# diffrax's default integral controller (`pcoeff = 0, icoeff = 1`). Prints NFE, accepted and
# rejected steps. No timing: the counts do not depend on the build.
#
#   bash benches/control_defaults.sh [path/to/glassbox]
set -euo pipefail
cd "$(dirname "$0")/.."
exe=${1:-target/release/glassbox}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '| model | clause | default: nfe (acc/rej) | first_max_factor = 10 | pcoeff = 0, icoeff = 1 |\n|---|---|---|---|---|\n'
for f in examples/lorenz.gbx examples/reaction_diffusion.gbx examples/robertson.gbx \
    examples/van_der_pol.gbx benches/peers/models/robertson.gbx benches/peers/models/spiral_fixed.gbx; do
    clause=$(grep -m1 '^solve' "$f" | sed 's/ *#.*//')
    row="| $f | \`$clause\` |"
    for extra in "" ", first_max_factor = 10" ", pcoeff = 0, icoeff = 1"; do
        m="$tmp/$(basename "$f")"
        # The extra options go before the clause's closing parenthesis; relative data paths
        # resolve from the model's own directory, so the copy sits beside it.
        m="$(dirname "$f")/.control_$(basename "$f")"
        sed "s/^\(solve [a-z0-9_]*([^)]*\))/\1$extra)/" "$f" > "$m"
        stats=$("$exe" solve "$m" --stats -o "$tmp/out.csv" 2>&1) || { echo "$stats"; rm -f "$m"; exit 1; }
        rm -f "$m"
        nfe=$(awk '$1 == "nfe" {print $2}' <<< "$stats")
        steps=$(awk '$1 == "steps" {print $2 "/" $4}' <<< "$stats")
        row="$row $nfe ($steps) |"
    done
    echo "$row"
done
