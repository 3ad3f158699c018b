#!/usr/bin/env python3
"""Domain adaptation side by side (issue 14): source-only, source-only on FDA-stylized source images, DACS,
CSA, CSA without stylization / CAM prototypes / pixel contrast, and a model trained on the target's own
labels (the ceiling), at the same budget, over seeds, scored on target images no run adapted to.

  /usr/bin/python3 tools/uda/compare.py --dataset synth --out runs/uda_synth --seeds 0 1 2
  /usr/bin/python3 tools/uda/compare.py --dataset camvid --out runs/uda_camvid --seeds 0 1 2

Budget: an adaptation step draws train.batch_size source + as many target images; the supervised rows
(source-only, target-trained) draw only labeled images and run twice the iterations (the same images
drawn). Every run keeps its last weights (train.select last): no target label chooses anything.
Finished runs are reused, unfinished ones resumed.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from study import ROOT, SHARED_DATA, train, write_summary  # noqa: E402

DATASETS = {
    # flat rendered source scenes -> target scenes with coarse, faint textures and object-textured
    # background blobs (configs/uda/synth_base.yaml)
    "synth": {"config": "configs/uda/synth_base.yaml", "settings": []},
    # CamVid daytime sequences (labeled) -> 0001TP at dusk (the last 20 frames reported, the others
    # adapted to), 96x128 (configs/uda/camvid_base.yaml)
    "camvid": {"config": "configs/uda/camvid_base.yaml", "settings": [f"uda.source.root={os.path.join(SHARED_DATA, 'camvid')}",
                                                                      f"uda.target.root={os.path.join(SHARED_DATA, 'camvid')}"]},
}


# (row, key, method, extra settings, iteration factor)
ROWS = [
    ("source-only", "source", "supervised", [], 2),
    ("source-only, FDA-stylized source", "source_fda", "csa", ["dacs.mix=false", "csa.cam=false", "csa.contrast=false"], 1),
    ("DACS", "dacs", "dacs", [], 1),
    ("CSA", "csa", "csa", [], 1),
    ("CSA without stylization", "csa_nostyle", "csa", ["csa.stylizer=none"], 1),
    ("CSA without CAM prototypes", "csa_nocam", "csa", ["csa.cam=false"], 1),
    ("CSA without pixel contrast", "csa_nocontrast", "csa", ["csa.contrast=false"], 1),
    ("target-trained (ceiling)", "oracle", "supervised", ["uda.oracle=true"], 2),
]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=sorted(DATASETS), default="synth")
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--iters", type=int, default=500, help="adaptation iterations (the budget)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--only", nargs="*", default=None, help="run only these row keys (source, dacs, csa, ...)")
    p.add_argument("--lesseg", default=os.path.join(ROOT, "build", "lesseg"))
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    dataset = DATASETS[args.dataset]
    table = {}
    for seed in args.seeds:
        for name, key, method, settings, factor in ROWS:
            if args.only is not None and key not in args.only:
                continue
            iters = factor * args.iters
            base = [f"seed={seed}", f"train.iters={iters}", f"train.eval_every={iters}",
                    f"train.checkpoint_every={max(1, iters // 4)}", "train.select=last"] + dataset["settings"]
            results = train(args.lesseg, os.path.join(ROOT, dataset["config"]), os.path.join(args.out, f"{key}_s{seed}"),
                            base + settings, args.threads, method)
            table.setdefault(name, []).append({"seed": seed, "miou": results["miou"]})
    heading = (f"Domain adaptation, {args.dataset}, {args.iters} adaptation iterations (supervised rows "
               f"{2 * args.iters}), seeds {args.seeds}; mIoU on held-out target images, last weights")
    write_summary(args.out, heading, table, f"target mIoU, {args.dataset}, seeds {args.seeds}",
                  {"dataset": args.dataset, "iters": args.iters})


if __name__ == "__main__":
    main()
