#!/usr/bin/env bash
# GPU smoke + throughput probe of the training path (device tool, carry .whl):
#   generator pairs/s, then 75 s of training at batch 64 and 128 (pairs/s, TFLOP/s from log.csv/summary.json).
source results/train/gpu_session.sh
CFG=results/train/mast3r_small_synth/config.toml
python3 -m datasets.synthetic.train_pairs --bench --device cuda --batch 64 --steps 10 --workers 8 2>&1 | tail -3
python3 -m datasets.synthetic.train_pairs --bench --device cuda --batch 64 --steps 10 2>&1 | tail -3
for B in 64 128; do
  sed -e "s/batch_size = 64/batch_size = $B/; s/log_every = 25/log_every = 10/" $CFG > /tmp/cfg$B.toml
  python3 -m benchmarks train /tmp/cfg$B.toml --out /tmp/s$B --time-limit 1.25 --no-progress 2>&1 | tail -3
  cp /tmp/s$B/log.csv $OUT/log_b$B.csv; cp /tmp/s$B/summary.json $OUT/summary_b$B.json
  tail -2 /tmp/s$B/log.csv | cut -c1-200; python3 -c "import json;d=json.load(open('/tmp/s$B/summary.json'))[-1];print({k:d[k] for k in ('pairs_per_s','train_flop_per_pair','train_tflops','end_step')})"
done
python3 -m pytest -q -x tests/benchmarks/adapters/test_pose_solvers.py -p no:cacheprovider 2>&1 | tail -2
