#!/usr/bin/env bash
# Round 1 of the embedded default model, one device call (<= 10 min), carry .whl:
#   run(command="bash results/train/mast3r_small_synth/train_round1.sh", carry=[".whl"])
# 1) generator throughput; 2) a 40-s probe of the training step rate; 3) the schedule sized to ~7 minutes
# (steps = rate x 420 s), trained with a 7.5-minute safety limit. Brings back the fp16 weights in two byte
# shards (each < 16 MB; `cat model.safetensors.part-* > model.safetensors`), the logs and the config used.
source results/train/gpu_session.sh
CFG=results/train/mast3r_small_synth/config.toml
python3 -m datasets.synthetic.train_pairs --bench --device cuda --batch 64 --steps 8 --workers 8 2>&1 | tail -3 | tee $OUT/generator.txt
sed -e "s/^steps = .*/steps = 100000/; s/^log_every = .*/log_every = 10/; s/^val_every = .*/val_every = 0/" $CFG > /tmp/probe.toml
python3 -m benchmarks train /tmp/probe.toml --out /tmp/probe --time-limit 0.8 --no-progress 2>&1 | tail -2
STEPS=$(python3 - <<'PY'
import csv, os
rows = list(csv.DictReader(open("/tmp/probe/log.csv"))) if os.path.exists("/tmp/probe/log.csv") else []
if len(rows) < 2:
    rows = [{}, {"pairs_per_s": 64 * 3000 / 420}]  # no probe rate: assume 3000 steps
rate = sum(float(r["pairs_per_s"]) for r in rows[1:]) / max(len(rows) - 1, 1)  # first row holds start-up
print(max(200, int(rate / 64 * 420)))
PY
)
echo "probe: $(tail -1 /tmp/probe/log.csv | cut -c1-120); schedule steps=$STEPS"
sed -e "s/^steps = .*/steps = $STEPS/" $CFG > $OUT/config_used.toml
python3 -m benchmarks train $OUT/config_used.toml --out /tmp/run --time-limit 7.5 --no-progress 2>&1 | tail -3
cp /tmp/run/log.csv /tmp/run/val.csv /tmp/run/summary.json $OUT/
split -b 15000000 -d /tmp/run/model.safetensors $OUT/model.safetensors.part-
sha256sum /tmp/run/model.safetensors | tee $OUT/model.sha256
tail -3 /tmp/run/val.csv
