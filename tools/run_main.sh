#!/usr/bin/env bash
# The main job (`make run`): train the quick supervised config on the synthetic world, predict on
# fresh synthetic scenes, write the HTML report, and say where everything is.
set -euo pipefail
build=${1:-build}
run=runs/main
lesseg=$build/lesseg
$lesseg doctor
rm -rf "$run"
$lesseg train configs/quick/supervised.yaml --run-dir "$run" | tee /tmp/lesseg_main_train.txt
# Fresh scenes (another seed) to predict on.
$lesseg synth --out "$run/samples" --train 0 --val 8 --crops 0 --seed 1000 >/dev/null
$lesseg predict --weights "$run/model.safetensors" --out "$run/predictions" "$run"/samples/images/*.png >/dev/null
$lesseg report "$run" >/dev/null
echo
echo "== lesseg main job done =="
grep "validation mIoU" /tmp/lesseg_main_train.txt
echo "predictions: $run/predictions  (class-index PNG + colour overlay per image)"
echo "checkpoint:  $run/checkpoints (latest: $(cat "$run/checkpoints/latest"))"
echo "weights:     $run/model.safetensors"
echo "report:      $run/report.html  (curves, per-class IoU, confusion matrix, overlays; open it in a browser)"
