#!/usr/bin/env python3
"""CutLER side by side on the synthetic world (issue 12): pseudo-masks alone, CutLER round 0 with and
without DropLoss, the self-training rounds, and round 0 trained for as many iterations as round 0 + the
rounds together (so that a round's gain can be told from its extra iterations), all scored on the same
validation scenes' ground truth (class-agnostic mask AP / AP50 / AR@100), over seeds.

  /usr/bin/python3 tools/cutler/compare.py --out runs/cutler --world runs/ssl/synth \
      --weights runs/ssl/dino_s0/backbone.safetensors --backbone vit_tiny8 --train-images 400 --seeds 0 1 2

Pseudo-masks come from `lesseg pseudo` on the training scenes only (ground truth is used for scoring
alone); the model is never selected on the scored split: every run is scored at its last iteration.
Finished steps are reused, so the script can be run again after a stop or with more seeds.
"""
import argparse
import json
import os
import shutil
import sys

from common import LESSEG, ROOT, cell, instance_scores, last_evaluation, run, write_results


def link_images(images, names, folder):
    """A folder of links to `names` under `images`."""
    os.makedirs(folder, exist_ok=True)
    for name in names:
        link = os.path.join(folder, name)
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(os.path.join(images, name)), link)
    return names


def image_names(gt):
    with open(gt) as f:
        return [im["file_name"] for im in sorted(json.load(f)["images"], key=lambda im: im["id"])]


def splits(args):
    """(images folder, training names, validation names, the ground truth holding the validation names):
    a synthetic world's own splits, or the last --val-count images of --gt held out for scoring."""
    if args.world:
        train = image_names(os.path.join(args.world, "instances_train.json"))[:args.train_images or None]
        val_gt = os.path.join(args.world, "instances_val.json")
        return os.path.join(args.world, "images"), train, image_names(val_gt)[:args.val_images or None], val_gt
    names = image_names(args.gt)
    if not 0 < args.val_count < len(names):
        sys.exit(f"--val-count must be in 1..{len(names) - 1} for {args.gt}")
    return args.images, names[:-args.val_count][:args.train_images or None], names[-args.val_count:], args.gt


def subset_json(source, names, out):
    """The COCO file restricted to `names` (the scored ground truth of the linked scenes)."""
    with open(source) as f:
        data = json.load(f)
    keep = {im["id"] for im in data["images"] if im["file_name"] in set(names)}
    data["images"] = [im for im in data["images"] if im["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    with open(out, "w") as f:
        json.dump(data, f)


def changed_masks(before, after):
    """How many masks of `after` are not in `before` (the predictions a self-training round kept)."""
    def keys(path):
        with open(path) as f:
            data = json.load(f)
        names = {im["id"]: im["file_name"] for im in data["images"]}
        return [(names[a["image_id"]], json.dumps(a["segmentation"], sort_keys=True)) for a in data["annotations"]]
    old = set(keys(before))
    return sum(1 for k in keys(after) if k not in old)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--world", help="a `lesseg synth` folder (its train / val splits)")
    data.add_argument("--gt", help="ground-truth instances JSON of --images; its last --val-count images are scored")
    p.add_argument("--images", help="with --gt: the image folder")
    p.add_argument("--val-count", type=int, default=0)
    p.add_argument("--weights", default="", help="the ViT for pseudo-masks (lesseg backbone.safetensors)")
    p.add_argument("--backbone", default="vit_tiny8")
    p.add_argument("--pseudo-method", default="multik")
    p.add_argument("--image-size", type=int, default=96, help="pseudo-mask input side")
    p.add_argument("--train-images", type=int, default=400)
    p.add_argument("--val-images", type=int, default=100)
    p.add_argument("--iters", type=int, default=600, help="iterations of every training run (each round)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--crop", type=int, default=96)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--threshold-modes", nargs="+", default=["absolute"], choices=["absolute", "relative"],
                   help="selftrain.threshold_mode of the self-training runs (relative: x the round's top score)")
    p.add_argument("--no-same-budget", action="store_true",
                   help="skip round 0 trained for as many iterations as round 0 + the self-training rounds")
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE for every training run")
    p.add_argument("--lesseg", default=LESSEG)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)

    images, train_names, val_names, val_source = splits(args)
    link_images(images, train_names, os.path.join(args.out, "train_images"))
    link_images(images, val_names, os.path.join(args.out, "val_images"))
    val_gt = os.path.join(args.out, "val_gt.json")
    subset_json(val_source, val_names, val_gt)
    pseudo = {}
    for split in ("train", "val"):
        pseudo[split] = os.path.join(args.out, f"pseudo_{split}.json")
        if not os.path.exists(pseudo[split]):
            cmd = [args.lesseg, "pseudo", os.path.join(args.out, f"{split}_images"), "--out", pseudo[split], "--method",
                   args.pseudo_method, "--backbone", args.backbone, "--image-size", str(args.image_size),
                   "--threads", str(args.threads)]
            if args.weights:
                cmd += ["--weights", args.weights]
            run(cmd, pseudo[split] + ".log")
    results = {"pseudo-masks alone": [instance_scores(args.lesseg, pseudo["val"], val_gt)]}
    diagnostics = {}

    config = os.path.join(ROOT, "configs/quick/cutler.yaml")
    common = [f"instances.train_json={pseudo['train']}", f"instances.train_images={args.out}/train_images",
              f"instances.val_json={val_gt}", f"instances.val_images={args.out}/val_images",
              f"data.crop=[{args.crop}, {args.crop}]", f"train.iters={args.iters}", f"train.eval_every={args.iters}",
              f"train.checkpoint_every={max(100, args.iters // 2)}", f"selftrain.rounds={args.rounds}",
              f"threads={args.threads}", "eval.max_images=0"] + args.set
    budget = (args.rounds + 1) * args.iters
    for seed in args.seeds:
        runs = [("nodrop", "train", ["cutler.drop_loss=false"], ["round 0, without DropLoss"])]
        for mode in args.threshold_modes:
            suffix = "" if mode == "absolute" else f" ({mode} thresholds)"
            names = [f"self-training round {r}{suffix}" for r in range(1, args.rounds + 1)]
            runs.append(("selftrain" if mode == "absolute" else f"selftrain_{mode}", "selftrain",
                         [f"selftrain.threshold_mode={mode}"], ["round 0, with DropLoss"] + names))
        if not args.no_same_budget and args.rounds > 0:
            runs.append(("budget", "train", [f"train.iters={budget}", f"train.eval_every={budget}",
                                             f"train.checkpoint_every={max(100, budget // 2)}"],
                         [f"round 0, with DropLoss, {budget} iterations (the rounds' budget)"]))
        first_selftrain = None
        for tag, command, extra, names in runs:
            run_dir = os.path.join(args.out, f"{tag}_s{seed}")
            done = os.path.join(run_dir, "done.json")
            if command == "selftrain":
                if first_selftrain is None:
                    first_selftrain = run_dir
                elif not os.path.exists(os.path.join(run_dir, "round0")):  # round 0 does not depend on the mode
                    shutil.copytree(os.path.join(first_selftrain, "round0"), os.path.join(run_dir, "round0"))
            if not os.path.exists(done):
                cmd = [args.lesseg, command, config, "--run-dir", run_dir]
                for s in common + extra + [f"seed={seed}"]:
                    cmd += ["--set", s]
                run(cmd, run_dir + ".log")
                with open(done, "w") as f:
                    json.dump({"seed": seed}, f)
            if command == "train":
                metrics = [os.path.join(run_dir, "metrics.jsonl")]
            else:
                metrics = [os.path.join(run_dir, f"round{r}", "metrics.jsonl") for r in range(args.rounds + 1)]
                kept = [changed_masks(os.path.join(run_dir, f"round{r - 1}", "pseudo_train.json") if r > 1 else
                                      pseudo["train"], os.path.join(run_dir, f"round{r}", "pseudo_train.json"))
                        for r in range(1, args.rounds + 1)]
                diagnostics.setdefault(tag, []).append({"seed": seed, "new_masks_per_round": kept})
            for label, path in zip(names, metrics):
                if label in results and len(results[label]) > args.seeds.index(seed):
                    continue  # round 0 shared by the threshold modes: counted once
                results.setdefault(label, []).append(last_evaluation(path))

    lines = [f"CutLER on {args.world or args.gt}: {len(train_names)} training scenes (pseudo-masks: {args.pseudo_method} on "
             f"{args.backbone} {args.weights or 'random init'}), scored on {len(val_names)} validation scenes' ground "
             f"truth; {args.iters} iterations per run (round 0 and each self-training round); seeds {args.seeds}", "",
             "| masks | mask AP | AP50 | AR@100 | runs |", "|---|---|---|---|---|"]
    for label, rows in results.items():
        lines.append(f"| {label} | {cell(rows, 'mask_ap')} | {cell(rows, 'mask_ap50')} | {cell(rows, 'mask_ar100')} "
                     f"| {len(rows)} |")
    for tag, rows in diagnostics.items():
        lines.append(f"\n{tag}: self-training masks not in the previous round's training set (kept predictions), "
                     "per round: " + "; ".join(f"seed {r['seed']}: {r['new_masks_per_round']}" for r in rows))
    write_results(args.out, lines, {"args": vars(args), "results": results, "diagnostics": diagnostics})


if __name__ == "__main__":
    main()
