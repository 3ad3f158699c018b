#!/usr/bin/env python3
"""Pseudo-mask quality: every `lesseg pseudo` method and the two trivial baselines (one whole-image
mask; connected pieces of thresholded CLS attention) on the synthetic world, `fruits` and `horses`,
scored by `lesseg eval --instances` (class-agnostic COCO mask AP / AR and the mAR split).

  /usr/bin/python3 tools/pseudo/quality.py --out runs/pseudo_quality [--weights W] [--backbone vit_small8]
      [--saliency-weights DINO] [--image-size 480] [--images 20] [--methods ...] [--threads 2]

Writes OUT/results.json and OUT/results.md (one row per dataset and method); finished runs
(OUT/<dataset>/<method>/metrics.json) are reused, so an interrupted run continues.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "parity"))
from coco_rle import rle  # noqa: E402
SHARED = os.path.join(ROOT, "..", "shared", "data")
METHODS = ["whole-image", "attention", "maskcut", "multik", "multik+saliency"]


def link_subset(files, src, dst):
    """DST holds a link to each of SRC's `files` and nothing else (links of an earlier, larger subset go)."""
    os.makedirs(dst, exist_ok=True)
    for stale in set(os.listdir(dst)) - set(files):
        if os.path.islink(os.path.join(dst, stale)):
            os.remove(os.path.join(dst, stale))
    for f in files:
        target = os.path.join(dst, f)
        if not os.path.exists(target):
            os.symlink(os.path.abspath(os.path.join(src, f)), target)


def horses_set(out, count):
    """(image folder, ground truth) of the first `count` horses, each horse mask one instance; None if absent."""
    horses = os.path.join(SHARED, "horses")
    if not os.path.isdir(horses):
        return None
    names = sorted(os.listdir(os.path.join(horses, "images")))[:count]
    images, anns = [], []
    for i, name in enumerate(names):
        mask = np.asarray(Image.open(os.path.join(horses, "masks", name[:-4] + ".png"))) > 0
        images.append({"id": i + 1, "file_name": name, "height": mask.shape[0], "width": mask.shape[1]})
        if mask.any():  # the horse (figure) is one instance
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                         "area": float(mask.sum()), "segmentation": rle(mask)})
    folder = os.path.join(out, "data", "horses")
    link_subset(names, os.path.join(horses, "images"), folder)
    json.dump({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "horse"}]},
              open(os.path.join(out, "data", "horses.json"), "w"))
    return folder, os.path.join(out, "data", "horses.json")


def coco_subset(gt_file, images_dir, out, name, count=None, sort=False):
    """(image folder, ground truth) of the first `count` images of a COCO file (sorted by file name when `sort`),
    the images linked into OUT/data/NAME and their annotations written to OUT/data/NAME.json."""
    gt = json.load(open(gt_file))
    images = sorted(gt["images"], key=lambda im: im["file_name"]) if sort else gt["images"]
    keep = images[:count] if count else images
    ids = {im["id"] for im in keep}
    gt = {"images": keep, "annotations": [a for a in gt["annotations"] if a["image_id"] in ids],
          "categories": gt["categories"]}
    folder = os.path.join(out, "data", name)
    link_subset([im["file_name"] for im in keep], images_dir, folder)
    json.dump(gt, open(folder + ".json", "w"))
    return folder, folder + ".json"


def world_val_set(world, out, count=None):
    """The validation scenes of a `lesseg synth` folder (which keeps every split's images together)."""
    return coco_subset(os.path.join(world, "instances_val.json"), os.path.join(world, "images"), out, "synth_val",
                       count)


def prepare(out, cli, count, world=""):
    """{name: (image folder, ground-truth json)} with at most `count` images each; the synthetic scenes from
    `world` (e.g. the pretraining world) or rendered here."""
    sets = {}
    if not world:
        world = os.path.join(out, "data", "synth")
        if not os.path.exists(os.path.join(world, "instances_val.json")):
            subprocess.run([cli, "synth", "--out", world, "--domain", "target", "--size", "256", "--train", "0",
                            "--val", str(count), "--crops", "0"], check=True, stdout=subprocess.DEVNULL)
    sets["synth"] = world_val_set(world, out, count)
    fruits = os.path.join(SHARED, "fruits")
    if os.path.isdir(fruits):
        sets["fruits"] = coco_subset(os.path.join(fruits, "trainval.json"), os.path.join(fruits, "images"), out,
                                     "fruits", count, sort=True)
    horses = horses_set(out, count)
    if horses:
        sets["horses"] = horses
    return sets


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="runs/pseudo_quality")
    p.add_argument("--cli", default=os.path.join(ROOT, "build", "lesseg"))
    p.add_argument("--weights", default="")
    p.add_argument("--saliency-weights", default="")
    p.add_argument("--backbone", default="vit_small8")
    p.add_argument("--image-size", type=int, default=480)
    p.add_argument("--natural-image-size", type=int, default=0, help="input side for fruits and horses (0: --image-size)")
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--world", default="", help="a `lesseg synth` folder whose val scenes to use (default: render)")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = []
    for name, (folder, gt) in prepare(a.out, a.cli, a.images, a.world).items():
        size = a.image_size if name == "synth" or not a.natural_image_size else a.natural_image_size
        for method in a.methods.split(","):
            run = os.path.join(a.out, name, method.replace("+", "_"))
            metrics_file = os.path.join(run, "metrics.json")
            if not os.path.exists(metrics_file):
                cmd = [a.cli, "pseudo", folder, "--out", os.path.join(run, "pseudo.json"), "--method", method,
                       "--backbone", a.backbone, "--image-size", str(size), "--threads", str(a.threads)]
                if a.weights:
                    cmd += ["--weights", a.weights]
                if a.saliency_weights and method == "multik+saliency":
                    cmd += ["--saliency-weights", a.saliency_weights]
                print(" ".join(cmd), file=sys.stderr)
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                result = subprocess.run([a.cli, "eval", "--instances", os.path.join(run, "pseudo.json"), "--gt", gt],
                                        check=True, capture_output=True, text=True)
                with open(metrics_file, "w") as f:
                    f.write(result.stdout)
            m = json.load(open(metrics_file))
            rows.append({"dataset": name, "method": method, "images": m["images"],
                         "instances": m["ground_truth_instances"], "masks": m["predictions"],
                         "AP": m["mask"]["AP"], "AP50": m["mask"]["AP50"], "AR100": m["mask"]["AR100"],
                         "mAR_multi": m["mar"]["multi_instance"], "mAR_single": m["mar"]["single"]})
    json.dump({"weights": a.weights or "random init", "backbone": a.backbone, "image_size": a.image_size,
               "natural_image_size": a.natural_image_size or a.image_size,
               "rows": rows}, open(os.path.join(a.out, "results.json"), "w"), indent=1)

    def cell(v):
        return "n/a" if v is None or v < 0 else "%.3f" % v
    lines = ["| dataset | method | images / instances / masks | mask AP | AP50 | AR@100 | mAR multi | mAR single |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| %s | %s | %d / %d / %d | %s | %s | %s | %s | %s |" % (
            r["dataset"], r["method"], r["images"], r["instances"], r["masks"], cell(r["AP"]), cell(r["AP50"]),
            cell(r["AR100"]), cell(r["mAR_multi"]), cell(r["mAR_single"])))
    table = "\n".join(lines)
    open(os.path.join(a.out, "results.md"), "w").write(
        "%s, %s, input %d px (synth) / %d px (fruits, horses)\n\n%s\n" % (
            a.backbone, a.weights or "random init", a.image_size, a.natural_image_size or a.image_size, table))
    print(table)


if __name__ == "__main__":
    main()
