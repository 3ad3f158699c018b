#!/usr/bin/env python3
"""The instance-ness probe (Engstler et al., "Understanding Self-Supervised Features for Learning
Unsupervised Instance Segmentation"): how well do a ViT's patch features separate instances?

For each feature source (a backbone file per pretraining seed, or a random-init ViT per seed), every
mask of multi-k spectral clustering (k = 2..6, every connected piece, no NMS: all masks pooled) is
scored against the ground-truth instances by mean recall over IoU 0.50:0.95 (mAR), split into images
holding >= 2 instances of one class ("multi": touching / repeated objects, where the paper finds MAE
better) and the rest ("single": where it finds DINO better). Mean and spread over seeds.

  /usr/bin/python3 tools/pseudo/instanceness.py --out runs/instanceness --world runs/ssl/synth \
      --source DINO=runs/ssl/dino_s{seed}/backbone.safetensors --source MAE=runs/ssl/mae_s{seed}/backbone.safetensors \
      --source "random init=" --seeds 0 1 2 --backbone vit_tiny8 --image-size 96

`{seed}` in a source path is replaced by each seed; an empty path is a random-init ViT seeded with the
seed. Datasets: the world's validation scenes (`WORLD/instances_val.json` and their images, as `lesseg synth`
writes them), `../shared/data/fruits` (several instances of a class per image) and `horses` (one each). Writes OUT/results.json and OUT/results.md;
finished runs are reused.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

from quality import ROOT, SHARED, horses_set, world_val_set


def datasets(world, out, horses_count):
    """{name: (image folder, ground truth)}: the world's val scenes, fruits (many instances of a class per
    image) and horses (one horse per image: the single-object split)."""
    sets = {}
    if world:
        sets["synth"] = world_val_set(world, out)
    fruits = os.path.join(SHARED, "fruits")
    if os.path.isdir(fruits):
        sets["fruits"] = (os.path.join(fruits, "images"), os.path.join(fruits, "trainval.json"))
    horses = horses_set(out, horses_count)
    if horses:
        sets["horses"] = horses
    return sets


def split_sizes(gt):
    """(images with >= 2 non-crowd instances of one class, the other images), as lesseg eval splits them."""
    data = json.load(open(gt))
    per = {}
    for ann in data["annotations"]:
        if not ann.get("iscrowd", 0):
            key = (ann["image_id"], ann["category_id"])
            per[key] = per.get(key, 0) + 1
    multi = {image for (image, _), n in per.items() if n >= 2}
    return len(multi), len(data["images"]) - len(multi)


def image_size(a, name):
    return a.image_size if name == "synth" else a.natural_image_size


def probe_one(a, folder, gt, weights, seed, run, size):
    """mAR split of one feature source on one dataset (cached in RUN/metrics.json)."""
    metrics_file = os.path.join(run, "metrics.json")
    if not os.path.exists(metrics_file):
        os.makedirs(run, exist_ok=True)
        cmd = [a.cli, "pseudo", folder, "--out", os.path.join(run, "pseudo.json"), "--method", "multik",
               "--nms", "1", "--no-refine", "--features", a.features, "--backbone", a.backbone,
               "--image-size", str(size), "--threads", str(a.threads), "--seed", str(seed)]
        if weights:
            cmd += ["--weights", weights]
        print(" ".join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        result = subprocess.run([a.cli, "eval", "--instances", os.path.join(run, "pseudo.json"), "--gt", gt],
                                check=True, capture_output=True, text=True)
        with open(metrics_file, "w") as f:
            f.write(result.stdout)
    with open(metrics_file) as f:
        m = json.load(f)
    return {"multi": m["mar"]["multi_instance"], "single": m["mar"]["single"], "all": m["mar"]["all"],
            "images": m["images"], "masks": m["predictions"]}


def fmt(values):
    values = [v for v in values if v is not None and v >= 0]
    if not values:
        return "n/a"
    if len(values) == 1:
        return "%.3f (n=1)" % values[0]
    return "%.3f ± %.3f (n=%d)" % (statistics.mean(values), statistics.stdev(values), len(values))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/instanceness")
    p.add_argument("--cli", default=os.path.join(ROOT, "build", "lesseg"))
    p.add_argument("--world", default="", help="a `lesseg synth` folder (its val split is probed)")
    p.add_argument("--source", action="append", required=True, help="LABEL=PATH ({seed} expanded; empty: random)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--backbone", default="vit_tiny8")
    p.add_argument("--features", default="k")
    p.add_argument("--horses", type=int, default=100, help="the first N horse images")
    p.add_argument("--image-size", type=int, default=96, help="network input side for the synthetic scenes")
    p.add_argument("--natural-image-size", type=int, default=192, help="network input side for fruits and horses")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    sources = [s.split("=", 1) for s in a.source]
    results = {}
    for name, (folder, gt) in datasets(a.world, a.out, a.horses).items():
        for label, pattern in sources:
            rows = []
            for seed in a.seeds:
                weights = pattern.replace("{seed}", str(seed))
                run = os.path.join(a.out, name, "%s_s%d" % (label.replace(" ", "_"), seed))
                rows.append(probe_one(a, folder, gt, weights, seed, run, image_size(a, name)))
            results.setdefault(name, {})[label] = rows
            print("%-7s %-12s mAR multi %s  single %s" % (name, label, fmt([r["multi"] for r in rows]),
                                                          fmt([r["single"] for r in rows])), flush=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"args": vars(a), "results": results}, f, indent=1)
    lines = ["%s, %s features, input %d px (synth) / %d px (fruits, horses), multi-k (k 2..6, all masks pooled), seeds %s; "
             "mean ± standard deviation over seeds\n" % (a.backbone, a.features, a.image_size, a.natural_image_size,
                                                          a.seeds),
             "| dataset | features | images (multi / other) | mAR, images with >= 2 instances of a class | "
             "mAR, the other images | mAR, all |",
             "|---|---|---|---|---|---|"]
    for name, by_source in results.items():
        multi, single = split_sizes(datasets(a.world, a.out, a.horses)[name][1])
        for label, rows in by_source.items():
            lines.append("| %s | %s | %d (%d / %d) | %s | %s | %s |" % (
                name, label, rows[0]["images"], multi, single, fmt([r["multi"] for r in rows]),
                fmt([r["single"] for r in rows]), fmt([r["all"] for r in rows])))
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
