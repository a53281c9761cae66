#!/usr/bin/env bash
# End-to-end throughput of `mast3r-bench run` with the mast3r matcher on ONE GPU (issue 9), through
# the device tool:  run(kind="nvidia-h200", carry=[".whl"], command="bash results/perf/end_to_end_1gpu.sh")
# Options (environment): E2E_VARIANTS="fp32-b1 fp16-b8 fast-graph-b8 fast-compile-b8" (labels below),
# E2E_BENCHES="co3dv2 ...", E2E_PROFILE=<label> (cProfile of co3dv2 with that variant).
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
# variants: label, then matcher overrides; E2E_VARIANTS / E2E_BENCHES pick a subset (space-separated labels)
declare -A VARIANT=(
  [fp32-b1]=""
  [fp16-b8]="matcher.precision=fp16 matcher.batch_size=8"
  [fast-graph-b8]="matcher.precision=fp16 matcher.batch_size=8 matcher.fast=on matcher.cuda_graph=on"
  [fast-compile-b8]="matcher.precision=fp16 matcher.batch_size=8 matcher.fast=on matcher.cuda_graph=on matcher.compile=blocks+heads matcher.gelu=tanh-fused"
)
for label in ${E2E_VARIANTS:-fp32-b1 fp16-b8 fast-graph-b8}; do
  for b in ${E2E_BENCHES:-co3dv2 mapfree re10k dtu aachen inloc}; do
    # shellcheck disable=SC2086
    python3 -m benchmarks run "$b" --matcher mast3r --data /tmp/syn --results "/tmp/res_$label" --no-progress \
      --device cuda ${VARIANT[$label]} > /dev/null
    summary "/tmp/res_$label" "$b" "$label"
    cp /tmp/res_"$label"/runs/"$b"/mast3r/*/manifest.json "$OUT/manifest_${b}_${label}.json"
  done
done
if [ -n "${E2E_PROFILE:-}" ]; then  # cProfile of one run: where the host time goes
  # shellcheck disable=SC2086
  python3 -m cProfile -o "$OUT/profile_${E2E_PROFILE}.prof" -m benchmarks run co3dv2 --matcher mast3r \
    --data /tmp/syn --results /tmp/res_prof --no-progress --device cuda ${VARIANT[$E2E_PROFILE]} > /dev/null
  python3 -c "import pstats,sys; pstats.Stats(sys.argv[1]).sort_stats('cumulative').print_stats(45)" \
    "$OUT/profile_${E2E_PROFILE}.prof" | grep -v '^$' | cut -c1-150 | head -70
fi
