#!/usr/bin/env python3
"""Zero-shot transfer (issue 12): CutLER models trained on one image collection (e.g. the synthetic
world's pseudo-masks) predict on another collection they never saw and are scored on its ground truth
(class-agnostic mask AP / AP50 / AR@100), one model per seed, at each test-time image size given.

  /usr/bin/python3 tools/cutler/zero_shot.py --out runs/cutler_zero_shot \
      --models 'runs/cutler/selftrain_s{seed}/round2/model.safetensors' --seeds 0 1 2 --max-sizes 256 1333

Datasets: `../shared/data/fruits` (18 images, 165 instances) and the first --horses images of
`../shared/data/horses` (one instance per horse mask). The sizes are fixed before looking at any score
(--max-sizes caps the longer side; the model's own default is 1333) and every size is reported.
"""
import argparse
import os
import sys

from common import LESSEG, ROOT, cell, instance_scores, run, write_results
sys.path.insert(0, os.path.join(ROOT, "tools", "pseudo"))
from quality import SHARED, horses_set  # noqa: E402


def score(args, model, images, gt, out):
    if not os.path.exists(os.path.join(out, "instances.json")):
        cmd = [args.lesseg, "predict", "--weights", model, "--out", out, "--no-overlays", "--threads",
               str(args.threads), "--max-size", str(args.max_size), images]
        os.makedirs(out, exist_ok=True)
        run(cmd, out + ".log")
    return instance_scores(args.lesseg, os.path.join(out, "instances.json"), gt)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--models", required=True, help="model.safetensors path; {seed} is replaced by each seed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--max-sizes", type=int, nargs="+", default=[1333])
    p.add_argument("--horses", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lesseg", default=LESSEG)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    datasets = {"fruits": (os.path.join(SHARED, "fruits", "images"), os.path.join(SHARED, "fruits", "trainval.json"))}
    horses = horses_set(args.out, args.horses)
    if horses:
        datasets[f"horses ({args.horses})"] = horses
    results = {}
    for name, (images, gt) in datasets.items():
        for size in args.max_sizes:
            args.max_size = size
            for seed in args.seeds:
                out = os.path.join(args.out, name.split()[0], f"size{size}_s{seed}")
                row = results.setdefault(f"{name}, longer side {size}", [])
                row.append(score(args, args.models.format(seed=seed), images, gt, out))

    lines = [f"Zero-shot: {args.models}, seeds {args.seeds}", "", "| data, test size | mask AP | AP50 | AR@100 | models |",
             "|---|---|---|---|---|"]
    for label, rows in results.items():
        lines.append(f"| {label} | {cell(rows, 'mask_ap')} | {cell(rows, 'mask_ap50')} | {cell(rows, 'mask_ar100')} | "
                     f"{len(rows)} |")
    write_results(args.out, lines, {"args": vars(args), "results": results})


if __name__ == "__main__":
    main()
