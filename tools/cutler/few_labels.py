#!/usr/bin/env python3
"""Few labels on top of an unsupervised instance segmenter (issue 12; CutLER's "as pretraining" result,
the seed paper's hybrid strategy): fine-tune with a small labeled fraction of the ground-truth instances
starting from (a) random init, (b) a self-supervised backbone alone, (c) a CutLER model, at the same
budget, over seeds; class-agnostic mask AP on held-out ground truth.

  /usr/bin/python3 tools/cutler/few_labels.py --out runs/cutler_few \
      --train-json runs/ssl/synth/instances_train.json --train-images runs/ssl/synth/images \
      --val-json runs/cutler/val_gt.json --val-images runs/cutler/val_images \
      --cutler-model 'runs/cutler/selftrain_s{seed}/round2/model.safetensors' --fractions 0.01 0.05 0.1 --seeds 0 1 2

The labeled images are a seeded fraction of the training JSON (data.labeled_fraction, a different draw per
seed, listed in each run's labeled.txt); every start sees the same images in the same order for a seed.
Every run is scored at its last iteration (no selection on the scored split). Finished runs are reused.
With --val-count N and no --val-json, the training JSON's last N images are held out for scoring.
"""
import argparse
import json
import os
import sys

from common import LESSEG, ROOT, cell, last_evaluation, run, write_results


def hold_out(train_json, count, out):
    """Splits the JSON into its first images (training) and its last `count` (scoring)."""
    with open(train_json) as f:
        data = json.load(f)
    images = sorted(data["images"], key=lambda im: im["id"])
    if count <= 0 or count >= len(images):
        sys.exit(f"--val-count must be in 1..{len(images) - 1} for {train_json}")
    paths = []
    for name, part in (("train", images[:-count]), ("val", images[-count:])):
        ids = {im["id"] for im in part}
        subset = dict(data, images=part, annotations=[a for a in data["annotations"] if a["image_id"] in ids])
        paths.append(os.path.join(out, f"{name}.json"))
        with open(paths[-1], "w") as f:
            json.dump(subset, f)
    return paths


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--train-json", required=True, help="ground-truth instances the labeled fraction is drawn from")
    p.add_argument("--train-images", required=True)
    p.add_argument("--val-json", default="", help="ground truth scored (default: --val-count images held out)")
    p.add_argument("--val-images", default="", help="default: --train-images")
    p.add_argument("--val-count", type=int, default=0)
    p.add_argument("--cutler-model", default="", help="a CutLER model.safetensors (lesseg train / selftrain); "
                   "{seed} is replaced by the run's seed (one CutLER model per seed)")
    p.add_argument("--ssl-weights", default="", help="a self-supervised backbone (backbone.safetensors or .pth)")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.05, 0.1])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--config", default=os.path.join(ROOT, "configs/quick/cutler.yaml"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE for every run")
    p.add_argument("--lesseg", default=LESSEG)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    train_json, val_json = args.train_json, args.val_json
    if not val_json:
        train_json, val_json = hold_out(args.train_json, args.val_count, args.out)
    starts = [("random init", "")]
    if args.ssl_weights:
        starts.append(("self-supervised backbone", args.ssl_weights))
    if args.cutler_model:
        starts.append(("CutLER model", args.cutler_model))

    common = [f"instances.train_json={train_json}", f"instances.train_images={args.train_images}",
              f"instances.val_json={val_json}", f"instances.val_images={args.val_images or args.train_images}",
              "cutler.drop_loss=false", f"train.iters={args.iters}", f"train.eval_every={args.iters}",
              f"train.checkpoint_every={max(100, args.iters // 2)}", f"threads={args.threads}",
              "eval.max_images=0"] + args.set
    results = {}
    for fraction in args.fractions:
        for seed in args.seeds:
            for index, (name, weights) in enumerate(starts):
                run_dir = os.path.join(args.out, f"f{fraction:g}_start{index}_s{seed}")
                if not os.path.exists(os.path.join(run_dir, "done.json")):
                    cmd = [args.lesseg, "train", args.config, "--run-dir", run_dir]
                    settings = common + [f"data.labeled_fraction={fraction}", f"seed={seed}",
                                         f"model.weights={weights.format(seed=seed)}"]
                    for s in settings:
                        cmd += ["--set", s]
                    run(cmd, run_dir + ".log")
                    with open(os.path.join(run_dir, "done.json"), "w") as f:
                        json.dump({"seed": seed}, f)
                with open(os.path.join(run_dir, "labeled.txt")) as f:
                    labeled = sum(1 for line in f if line.strip())
                row = results.setdefault(name, {}).setdefault(f"{fraction:g}", [])
                row.append(dict(last_evaluation(os.path.join(run_dir, "metrics.jsonl")), labeled_images=labeled))

    fractions = [f"{f:g}" for f in args.fractions]
    counts = [results["random init"][f][0]["labeled_images"] for f in fractions]
    lines = [f"Few labels on top: {args.iters} iterations per run from each start, seeds {args.seeds}; labeled images "
             f"drawn from {args.train_json}; scored on {val_json} (class-agnostic mask AP / AP50)", "",
             "| start | " + " | ".join(f"{f} ({n} images) AP | AP50" for f, n in zip(fractions, counts)) + " |",
             "|---|" + "---|---|" * len(fractions)]
    for name, by_fraction in results.items():
        cells = []
        for f in fractions:
            cells += [cell(by_fraction[f], "mask_ap"), cell(by_fraction[f], "mask_ap50")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    write_results(args.out, lines, {"args": vars(args), "results": results})


if __name__ == "__main__":
    main()
