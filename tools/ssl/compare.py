#!/usr/bin/python3
"""Side-by-side comparison of the self-supervised methods (issue 5, specs/ssl.md), one command.

Synthetic world: every method pretrains on the same multi-object scenes with the same budget
(iterations, batch, image size), for several seeds; features are scored by DINO's kNN on
single-object crops. Random-init backbones are the baseline. DINO's CLS attention is scored against
the foreground of validation scenes, against a random-init ViT. CamVid: pretraining on the train
images, then a linear segmentation probe (mIoU on val).

Usage (from the repository root, after `make build`):
  /usr/bin/python3 tools/ssl/compare.py --out runs/ssl_compare [--iters 200] [--seeds 0 1 2] [--no-camvid]
Writes OUT/results.json and OUT/results.md. Numbers are reported as measured, whichever way they fall.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# name, config, backbone, extra overrides
SYNTH_METHODS = [
    ("SimCLR", "simclr", "resnet18", []),
    ("SAMCLR proposer", "samclr", "resnet18", ["samclr.regions=proposer"]),
    ("SAMCLR GT regions", "samclr", "resnet18", ["samclr.regions=gt"]),
    ("DINO", "dino", "vit_tiny8", []),
    ("MAE", "mae", "vit_tiny8", []),
]


def run(cmd, log):
    start = time.time()
    with open(log, "w") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    if code != 0:
        sys.exit(f"failed ({code}): {' '.join(cmd)}\n  see {log}")
    return time.time() - start


def probe(args, config, mode, out, weights=None, backbone=None, sets=()):
    cmd = [args.lesseg, "probe", config] + mode + ["--out", out]
    if weights:
        cmd += ["--weights", weights]
    if backbone:
        cmd += ["--backbone", backbone]
    for s in sets:
        cmd += ["--set", s]
    run(cmd, out + ".log")
    with open(out) as f:
        return json.load(f)


def pretrain(args, method, run_dir, sets):
    if os.path.exists(os.path.join(run_dir, "backbone.safetensors")):
        return os.path.join(run_dir, "backbone.safetensors")  # already done (the script resumes)
    cmd = [args.lesseg, "pretrain", os.path.join(ROOT, "configs/quick", method + ".yaml"), "--run-dir", run_dir]
    for s in sets:
        cmd += ["--set", s]
    seconds = run(cmd, run_dir + ".log")
    print(f"  pretrained {os.path.basename(run_dir)} in {seconds:.0f} s", flush=True)
    return os.path.join(run_dir, "backbone.safetensors")


def synth_world(args):
    folder = os.path.join(args.out, "synth")
    if not os.path.exists(os.path.join(folder, "crops", "labels.txt")):
        run([args.lesseg, "synth", "--out", folder, "--size", str(args.size), "--train", str(args.scenes), "--val", "100",
             "--crops", str(args.crops), "--seed", "0"], folder + ".log")
    return folder


def budget(args):
    return [f"train.iters={args.iters}", f"train.batch_size={args.batch}", f"views.global_size={args.view}",
            f"views.local_size={args.view // 2}", "train.checkpoint_every=0", "train.eval_every=0", "train.log_every=20"]


def synth_comparison(args, folder):
    data = ["data.format=folder", f"data.root={folder}", "data.train_split=train", "data.val_split=val"]
    knn_sets = [f"probe.data={folder}/crops", f"probe.image_size={args.view}"]
    results = {}
    for name, method, backbone, extra in [("random init", None, "resnet18", []), ("random init", None, "vit_tiny8", [])] + SYNTH_METHODS:
        label = f"{name} ({backbone})"
        scores = []
        for seed in args.seeds:
            tag = f"{label.replace(' ', '_').replace('(', '').replace(')', '')}_s{seed}"
            weights = None
            if method:
                sets = data + budget(args) + extra + [f"seed={seed}", f"model.backbone={backbone}"]
                if "samclr.regions=gt" in extra:
                    sets.append(f"samclr.gt_instances={folder}/instances_train.json")
                weights = pretrain(args, method, os.path.join(args.out, tag), sets)
            config = os.path.join(ROOT, "configs/quick", (method or "simclr") + ".yaml")
            r = probe(args, config, ["--knn"], os.path.join(args.out, tag + "_knn.json"), weights, backbone,
                      knn_sets + [f"seed={seed}"])
            scores.append(r["knn_top1"])
        results[label] = scores
        print(f"{label:32s} kNN top-1 {fmt(scores)}", flush=True)
    return results


def attention_comparison(args, folder):
    data = ["data.format=folder", f"data.root={folder}", f"probe.image_size={args.size}", "probe.attention_images=32"]
    out = {}
    for seed in args.seeds:
        tag = f"DINO_vit_tiny8_s{seed}"
        weights = os.path.join(args.out, tag, "backbone.safetensors")
        cfg = os.path.join(ROOT, "configs/quick/dino.yaml")
        d = probe(args, cfg, ["--attention", os.path.join(args.out, tag + "_att")], os.path.join(args.out, tag + "_att.json"),
                  weights, "vit_tiny8", data + [f"seed={seed}"])
        r = probe(args, cfg, ["--attention", os.path.join(args.out, f"random_vit_s{seed}_att")],
                  os.path.join(args.out, f"random_vit_s{seed}_att.json"), None, "vit_tiny8", data + [f"seed={seed}"])
        out.setdefault("DINO", []).append(d["attention_iou"])
        out.setdefault("random init", []).append(r["attention_iou"])
    for k, v in out.items():
        print(f"CLS attention foreground IoU, {k:12s} {fmt(v)}", flush=True)
    return out


def camvid_comparison(args):
    root = os.path.join(ROOT, "..", "shared", "data", "camvid")
    data = ["data.format=camvid", f"data.root={root}", "data.resize=[180, 240]", "data.crop=[160, 224]"]
    seg = data + ["probe.seg_iters=300", "eval.max_images=0"]
    results = {}
    for name, method, backbone, extra in [("random init", None, "resnet18", []), ("random init", None, "vit_tiny8", [])] + \
            [m for m in SYNTH_METHODS if "gt" not in " ".join(m[3])]:
        label = f"{name} ({backbone})"
        tag = "camvid_" + label.replace(" ", "_").replace("(", "").replace(")", "")
        weights = None
        if method:
            sets = data + budget(args) + extra + ["seed=0", f"model.backbone={backbone}"]
            weights = pretrain(args, method, os.path.join(args.out, tag), sets)
        config = os.path.join(ROOT, "configs/quick", (method or "simclr") + ".yaml")
        r = probe(args, config, ["--seg-linear"], os.path.join(args.out, tag + "_seg.json"), weights, backbone, seg)
        results[label] = r["miou"]
        print(f"CamVid {label:32s} seg-linear mIoU {r['miou']:.4f}", flush=True)
    return results


def fmt(values):
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f} (n={len(values)})"


def write_markdown(args, results):
    lines = [f"Budget per method: {args.iters} iterations, batch {args.batch}, {args.view} px global views; "
             f"synthetic world {args.scenes} scenes of {args.size} px; seeds {args.seeds}.", "",
             "| backbone features | kNN top-1 on single-object crops (mean ± std over seeds) |", "|---|---|"]
    for k, v in results["synth_knn"].items():
        lines.append(f"| {k} | {fmt(v)} |")
    if "attention" in results:
        lines += ["", "| ViT-Tiny/8 | CLS attention foreground IoU (best head) |", "|---|---|"]
        for k, v in results["attention"].items():
            lines.append(f"| {k} | {fmt(v)} |")
    if "camvid" in results:
        lines += ["", "| CamVid, pretrained on train images (seed 0) | seg-linear probe mIoU (val) |", "|---|---|"]
        for k, v in results["camvid"].items():
            lines.append(f"| {k} | {v:.4f} |")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lesseg", default=os.path.join(ROOT, "build", "lesseg"))
    p.add_argument("--out", default="runs/ssl_compare")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--view", type=int, default=48, help="global view side; local views are half")
    p.add_argument("--size", type=int, default=96, help="synthetic scene side")
    p.add_argument("--scenes", type=int, default=1000)
    p.add_argument("--crops", type=int, default=600)
    p.add_argument("--no-camvid", action="store_true")
    p.add_argument("--no-attention", action="store_true")
    args = p.parse_args()
    args.out = os.path.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)
    folder = synth_world(args)
    results = {"args": vars(args), "synth_knn": synth_comparison(args, folder)}
    if not args.no_attention:
        results["attention"] = attention_comparison(args, folder)
    if not args.no_camvid:
        results["camvid"] = camvid_comparison(args)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    write_markdown(args, results)
    print(open(os.path.join(args.out, "results.md")).read())


if __name__ == "__main__":
    main()
