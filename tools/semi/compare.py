#!/usr/bin/env python3
"""Semi-supervised segmentation side by side (issue 13): supervised-only on the labeled images, CPS (each
teacher), UniMatch, the IGL-DT student and IGL-DT without each of its three terms, and full supervision
as the ceiling, on the same labeled images per seed, at the same budget of images seen, over seeds.

  /usr/bin/python3 tools/semi/compare.py --dataset synth --out runs/semi_synth --seeds 0 1 2
  /usr/bin/python3 tools/semi/compare.py --dataset camvid --out runs/semi_camvid --seeds 0 1 2 --iters 100 \
      --only full sup cps unimatch igldt

Budget: a semi-supervised step sees train.batch_size labeled + semi.unlabeled_batch_size unlabeled
images; the supervised rows run twice the iterations (the same images seen). IGL-DT's two stages
share the budget (stage 1 = half the iterations, stage 2 the other half); its ablations reuse its own
stage-1 teachers. "IGL-DT, CPS teachers" trains a student on the CPS row's teachers (twice the
budget, marked). Every run chooses its weights on images held out of the training split
(data.holdout, train.select best) and is scored once on the reported split. Finished runs are reused.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from study import ROOT, SHARED_DATA, train, write_summary  # noqa: E402

DATASETS = {
    # the quick configs' world, with 8 of 2000 scenes labeled
    "synth": {"config_dir": "configs/quick", "settings": []},
    # CamVid at quarter resolution (96x128: sized for 2 CPU cores), 1/8 of the 367 training images labeled
    # (46), 37 held out to choose the weights on, val (101) reported; evaluations every 50 iterations
    "camvid": {"config_dir": "configs/quick", "settings": [
        "data.format=camvid", f"data.root={os.path.join(SHARED_DATA, 'camvid')}",
        "data.resize=[96, 128]", "data.crop=[80, 112]", "data.scale=[0.75, 1.5]", "data.labeled=46",
        "data.holdout=37", "eval.batch_size=8", "train.eval_every=50", "train.checkpoint_every=50"]},
}

# (row, config, extra settings, budget share, what to read from results.json)
def rows(iters, runs_dir, seed):
    half = max(1, iters // 2)
    igldt_dir = os.path.join(runs_dir, f"igldt_s{seed}")
    cps_dir = os.path.join(runs_dir, f"cps_s{seed}")
    student = [f"train.iters={half}", f"igldt.teachers={os.path.join(igldt_dir, 'stage1')}"]
    return [
        ("full supervision (ceiling)", "full", "semi_supervised.yaml", ["data.labeled=\"\"", f"train.iters={2 * iters}"], "model"),
        ("supervised-only", "sup", "semi_supervised.yaml", [f"train.iters={2 * iters}"], "model"),
        ("CPS teacher a (SwinUnet)", "cps", "cps.yaml", [f"train.iters={iters}"], "a"),
        ("CPS teacher b (ResUnet)", "cps", "cps.yaml", [f"train.iters={iters}"], "b"),
        ("UniMatch", "unimatch", "unimatch.yaml", [f"train.iters={iters}"], "model"),
        ("IGL-DT student", "igldt", "igldt.yaml", [f"train.iters={half}", f"igldt.stage1_iters={half}"], "student"),
        ("IGL-DT without global", "igldt_noglobal", "igldt.yaml", student + ["igldt.global=false"], "student"),
        ("IGL-DT without local", "igldt_nolocal", "igldt.yaml", student + ["igldt.local=false"], "student"),
        ("IGL-DT without discrepancy", "igldt_nodisc", "igldt.yaml", student + ["igldt.discrepancy=false"], "student"),
        ("IGL-DT student, CPS-row teachers (2x budget)", "igldt_cpsteachers", "igldt.yaml",
         [f"train.iters={iters}", f"igldt.teachers={cps_dir}"], "student"),
    ]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=sorted(DATASETS), default="synth")
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--iters", type=int, default=600, help="semi-supervised iterations (the budget)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--only", nargs="*", default=None, help="run only these row keys (full, sup, cps, unimatch, igldt, ...)")
    p.add_argument("--lesseg", default=os.path.join(ROOT, "build", "lesseg"))
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    table = {}
    for seed in args.seeds:
        for name, key, config, settings, model in rows(args.iters, args.out, seed):
            if args.only is not None and key not in args.only:
                continue
            base = [f"seed={seed}"] + DATASETS[args.dataset]["settings"]
            results = train(args.lesseg, os.path.join(ROOT, DATASETS[args.dataset]["config_dir"], config),
                            os.path.join(args.out, f"{key}_s{seed}"), base + settings, args.threads)
            table.setdefault(name, []).append(
                {"seed": seed, "miou": results["models"][model]["miou"], "selected_iter": results["selected"]["iter"]})
    heading = (f"Semi-supervised segmentation, {args.dataset}, {args.iters} semi-supervised iterations "
               f"(supervised rows {2 * args.iters}), seeds {args.seeds}; mIoU on the reported split, "
               "weights chosen on held-out training images")
    write_summary(args.out, heading, table, f"mIoU, {args.dataset}, seeds {args.seeds}",
                  {"dataset": args.dataset, "iters": args.iters})


if __name__ == "__main__":
    main()
