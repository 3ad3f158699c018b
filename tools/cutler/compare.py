#!/usr/bin/env python3
"""CutLER side by side on the synthetic world (issue 12): pseudo-masks alone, CutLER round 0 with and
without DropLoss, and the self-training rounds, all scored on the same validation scenes' ground truth
(class-agnostic mask AP / AP50 / AR@100), over seeds, at the same budget per training run.

  /usr/bin/python3 tools/cutler/compare.py --out runs/cutler --world runs/ssl/synth \
      --weights runs/ssl/dino_s0/backbone.safetensors --backbone vit_tiny8 --train-images 400 --seeds 0 1 2

Pseudo-masks come from `lesseg pseudo` on the training scenes only (ground truth is used for scoring
alone); the model is never selected on the scored split: every run is scored at its last iteration.
Finished steps are reused, so the script can be run again after a stop or with more seeds.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(cmd, log):
    print("  $ " + " ".join(cmd), flush=True)
    with open(log, "w") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    if code != 0:
        sys.exit(f"failed ({code}): see {log}")


def link_images(world, split, count, folder):
    """A folder of links to the split's first `count` scenes (names as in the world's COCO file)."""
    with open(os.path.join(world, f"instances_{split}.json")) as f:
        names = [im["file_name"] for im in json.load(f)["images"]][:count or None]
    os.makedirs(folder, exist_ok=True)
    for name in names:
        link = os.path.join(folder, name)
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(os.path.join(world, "images", name)), link)
    return names


def subset_json(source, names, out):
    """The COCO file restricted to `names` (the scored ground truth of the linked scenes)."""
    with open(source) as f:
        data = json.load(f)
    keep = {im["id"] for im in data["images"] if im["file_name"] in set(names)}
    data["images"] = [im for im in data["images"] if im["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    with open(out, "w") as f:
        json.dump(data, f)


def evaluate(args, predictions, gt):
    out = subprocess.run([args.lesseg, "eval", "--instances", predictions, "--gt", gt], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(out.stdout + out.stderr)
    m = json.loads(out.stdout)["mask"]
    return {"mask_ap": m["AP"], "mask_ap50": m["AP50"], "mask_ar100": m["AR100"]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--world", required=True, help="a `lesseg synth` folder")
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
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE for every training run")
    p.add_argument("--lesseg", default=os.path.join(ROOT, "build", "lesseg"))
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)

    train_names = link_images(args.world, "train", args.train_images, os.path.join(args.out, "train_images"))
    val_names = link_images(args.world, "val", args.val_images, os.path.join(args.out, "val_images"))
    val_gt = os.path.join(args.out, "val_gt.json")
    subset_json(os.path.join(args.world, "instances_val.json"), val_names, val_gt)
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
    results = {"pseudo-masks alone": [evaluate(args, pseudo["val"], val_gt)]}

    config = os.path.join(ROOT, "configs/quick/cutler.yaml")
    common = [f"instances.train_json={pseudo['train']}", f"instances.train_images={args.out}/train_images",
              f"instances.val_json={val_gt}", f"instances.val_images={args.out}/val_images",
              f"data.crop=[{args.crop}, {args.crop}]", f"train.iters={args.iters}", f"train.eval_every={args.iters}",
              f"train.checkpoint_every={max(100, args.iters // 2)}", f"selftrain.rounds={args.rounds}",
              f"threads={args.threads}", "eval.max_images=0"] + args.set
    for seed in args.seeds:
        for name, command, extra in (("without DropLoss", "train", ["cutler.drop_loss=false"]),
                                     ("with DropLoss", "selftrain", [])):
            run_dir = os.path.join(args.out, f"{'nodrop' if extra else 'selftrain'}_s{seed}")
            done = os.path.join(run_dir, "done.json")
            if not os.path.exists(done):
                cmd = [args.lesseg, command, config, "--run-dir", run_dir]
                for s in common + extra + [f"seed={seed}"]:
                    cmd += ["--set", s]
                run(cmd, run_dir + ".log")
                with open(done, "w") as f:
                    json.dump({"seed": seed}, f)
            if extra:
                metrics = [os.path.join(run_dir, "metrics.jsonl")]
                names = ["round 0, without DropLoss"]
            else:
                metrics = [os.path.join(run_dir, f"round{r}", "metrics.jsonl") for r in range(args.rounds + 1)]
                names = ["round 0, with DropLoss"] + [f"self-training round {r}" for r in range(1, args.rounds + 1)]
            for label, path in zip(names, metrics):
                with open(path) as f:
                    evals = [json.loads(line) for line in f if '"mask_ap"' in line]
                last = evals[-1]
                last = last.get("metrics", last)
                results.setdefault(label, []).append({k: last[k] for k in ("mask_ap", "mask_ap50", "mask_ar100")})

    def cell(rows, key):
        values = [r[key] for r in rows]
        if len(values) == 1:
            return f"{values[0]:.3f}"
        return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"

    lines = [f"CutLER on {args.world}: {len(train_names)} training scenes (pseudo-masks: {args.pseudo_method} on "
             f"{args.backbone} {args.weights or 'random init'}), scored on {len(val_names)} validation scenes' ground "
             f"truth; {args.iters} iterations per run; seeds {args.seeds}", "",
             "| masks | mask AP | AP50 | AR@100 | runs |", "|---|---|---|---|---|"]
    for label, rows in results.items():
        lines.append(f"| {label} | {cell(rows, 'mask_ap')} | {cell(rows, 'mask_ap50')} | {cell(rows, 'mask_ar100')} "
                     f"| {len(rows)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
