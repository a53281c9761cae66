#!/usr/bin/env bash
# End-to-end throughput of `mast3r-bench run` with the mast3r matcher on ONE GPU (issue 9), through
# the device tool:  run(kind="nvidia-h200", carry=[".whl"], command="bash results/perf/end_to_end_1gpu.sh")
# .whl: pycolmap/tabulate/tqdm wheels for the device's Python (the image lacks them).
# The default synthetic suite (all six layouts) is rendered on the device first; the model is the released
# MASt3R ViT-L/B architecture with random weights. Per benchmark: pairs/s from the run manifest
# (processing time, model load excluded) and the time by stage summed over samples.
set -euo pipefail
export PYTHONUNBUFFERED=1
if ! python3 -c "import pycolmap, tabulate, tqdm" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi -L
CKPT=/tmp/mast3r_vitl_random.pth
python3 -m benchmarks weights random-checkpoint "$CKPT" --preset vitl --seed 0 > /dev/null
export MAST3R_BENCH_CHECKPOINT="$CKPT"
start=$(date +%s)
python3 -m benchmarks synth --out /tmp/syn --size default > /dev/null
echo "suite rendered in $(( $(date +%s) - start )) s"
OUT=${OUT:-/tmp/out}
summary() {  # $1 results root, $2 bench, $3 label
  python3 - "$1" "$2" "$3" <<'PY'
import glob, json, sys
root, bench, label = sys.argv[1:]
man = json.load(open(glob.glob(f"{root}/runs/{bench}/mast3r/*/manifest.json")[0]))
tot, n = {}, 0
for f in glob.glob(f"{root}/runs/{bench}/mast3r/*/records.jsonl"):
    for line in open(f):
        n += 1
        for k, v in json.loads(line)["timings"].items():
            tot[k] = tot.get(k, 0.0) + v
t = man["throughput"]
print(f"{label:7s} {bench:8s} samples={n:4d} pairs/s={t['pairs_per_s']:7.2f} s={t['seconds']:6.1f} "
      f"stages(s)={ {k: round(v, 2) for k, v in sorted(tot.items())} }")
PY
}
# untimed warm-up: fills Triton's on-disk kernel cache and cuDNN/cuBLAS heuristics
python3 -m benchmarks run co3dv2 --matcher mast3r --data /tmp/syn --results /tmp/res_warm --no-progress \
  --device cuda --limit 2 > /dev/null
for b in co3dv2 mapfree re10k dtu aachen inloc; do
  python3 -m benchmarks run "$b" --matcher mast3r --data /tmp/syn --results /tmp/res_fp16 --no-progress \
    --device cuda matcher.precision=fp16 matcher.batch_size=8 > /dev/null
  summary /tmp/res_fp16 "$b" fp16-b8
done
python3 -m benchmarks run co3dv2 --matcher mast3r --data /tmp/syn --results /tmp/res_fp32 --no-progress \
  --device cuda > /dev/null
summary /tmp/res_fp32 co3dv2 fp32-b1
cp /tmp/res_fp16/runs/co3dv2/mast3r/*/manifest.json "$OUT/manifest_co3dv2_fp16_b8.json"
