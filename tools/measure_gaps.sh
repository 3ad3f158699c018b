#!/usr/bin/env bash
# Measures what makes the synthetic world a useful benchmark, with the quick supervised budget:
#   domain gap: trained on source vs trained on target, both scored on target;
#   label gap:  full labels vs 1/16 of the labels, both scored on source.
# Usage: tools/measure_gaps.sh [build] [runs-root]   (about 30 minutes on 2 cores)
set -euo pipefail
build=${1:-build}
root=${2:-runs/gaps}
lesseg=$build/lesseg
cfg=configs/quick/supervised.yaml
miou() { python3 -c 'import json,sys; print(round(json.load(sys.stdin)["miou"], 4))'; }
mkdir -p "$root"
[ -f "$root/source/model.safetensors" ] || $lesseg train $cfg --run-dir "$root/source" >/dev/null
[ -f "$root/target/model.safetensors" ] || $lesseg train $cfg --run-dir "$root/target" --set data.synth.domain=target >/dev/null
[ -f "$root/source_1of16/model.safetensors" ] || $lesseg train $cfg --run-dir "$root/source_1of16" --set data.labeled_fraction=0.0625 >/dev/null
s_on_s=$($lesseg eval "$root/source" | miou)
s_on_t=$($lesseg eval "$root/source" --set data.synth.val_domain=target | miou)
t_on_t=$($lesseg eval "$root/target" | miou)
f16_on_s=$($lesseg eval "$root/source_1of16" | miou)
cat <<TABLE | tee "$root/gaps.md"
| model (quick budget: $(grep -E '^  iters' $cfg | awk '{print $2}') iters, batch 8) | scored on | val mIoU |
| --- | --- | --- |
| source, full labels | source | $s_on_s |
| source, full labels | target | $s_on_t |
| target, full labels | target | $t_on_t |
| source, 1/16 labels | source | $f16_on_s |
TABLE
