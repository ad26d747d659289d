#!/bin/sh
# Run from anywhere: sh benches/windows_ab.sh. Alternating CLI runs of benches/models/spiral_wide.gbx, batched vs GLASSBOX_BATCHED=0, one
# thread pinned to CPU 1; prints each run's median per-iteration ms (run.json metrics).
cd "$(dirname "$0")/.."
G=${G:-target/release/glassbox}
for r in 1 2 3 4 5; do
  for mode in batched per_window; do
    if [ $mode = per_window ]; then export GLASSBOX_BATCHED=0; else unset GLASSBOX_BATCHED; fi
    taskset -c 1 $G train benches/models/spiral_wide.gbx --iterations 40 --threads 1 \
      --out /tmp/ab_windows_$mode --overwrite > /tmp/ab_windows_$mode.txt 2>&1
    python3 -c "
import json,statistics,sys
j=json.load(open('/tmp/ab_windows_$mode/run.json'))
t=[m['time_s']*1e3 for m in j['metrics']]
print('$mode', 'median %.2f ms' % statistics.median(t), 'path', j['report']['training']['batched'], 'loss %.6e' % j['report']['final_loss'])
"
  done
done
