#!/usr/bin/python3
"""Self-supervised methods side by side, with learning curves (issues 5 and 10, specs/ssl.md).

Synthetic world: each method pretrains with its quick CPU recipe (configs/quick/<method>.yaml) on the
same multi-object scenes, for several seeds; the kNN accuracy on single-object crops is logged every
--eval-every iterations during pretraining (the learning curve). At the end every backbone, and two
random-init baselines per architecture (BatchNorm statistics at their 0 / 1 init, and calibrated on the
probe's training images), is scored by DINO's kNN and by a linear probe. DINO's CLS attention is scored
against the scenes' foreground, against a random ViT. CamVid: pretraining on the train images, then the
seg-linear probe on val, against both random baselines.

Usage (from the repository root, after `make build`):
  /usr/bin/python3 tools/ssl/compare.py --out runs/ssl_compare [--methods simclr samclr dino mae]
      [--seeds 0 1 2] [--iters N] [--no-camvid] [--no-attention]
Runs that finished are reused and interrupted ones resume from their checkpoints, so the table can be
filled over several invocations (e.g. one method or one seed at a time). Writes OUT/results.json,
OUT/results.md and OUT/curves.png. Numbers are reported as measured, whichever way they fall.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# method -> (label, backbone, extra overrides)
METHODS = {
    "simclr": ("SimCLR", "resnet18", []),
    "samclr": ("SAMCLR, built-in proposer", "resnet18", ["samclr.regions=proposer"]),
    "samclr_gt": ("SAMCLR, ground-truth regions", "resnet18", ["samclr.regions=gt"]),
    "dino": ("DINO", "vit_tiny8", []),
    "mae": ("MAE", "vit_tiny8", []),
}
CALIBRATE_BATCHES = 20
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def config_of(method):
    return os.path.join(ROOT, "configs/quick", ("samclr" if method.startswith("samclr") else method) + ".yaml")


def run(cmd, log):
    start = time.time()
    with open(log, "w") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    if code != 0:
        sys.exit(f"failed ({code}): {' '.join(cmd)}\n  see {log}")
    return time.time() - start


def probe(args, config, mode, out, weights=None, backbone=None, sets=()):
    if not os.path.exists(out):
        cmd = [args.lesseg, "probe", config] + mode + ["--out", out, "--threads", str(args.threads)]
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
    """Pretrains (or resumes, or reuses) one run; returns (backbone file, wall minutes)."""
    backbone = os.path.join(run_dir, "backbone.safetensors")
    timing = os.path.join(run_dir, "wall_seconds.json")
    if os.path.exists(backbone) and os.path.exists(timing):
        with open(timing) as f:
            return backbone, json.load(f)["seconds"] / 60
    before = 0.0
    if os.path.exists(timing + ".partial"):  # an interrupted run resumes: its time adds up
        with open(timing + ".partial") as f:
            before = json.load(f)["seconds"]
    cmd = [args.lesseg, "pretrain", config_of(method), "--run-dir", run_dir, "--set", f"threads={args.threads}"]
    for s in sets:
        cmd += ["--set", s]
    start = time.time()
    os.makedirs(run_dir, exist_ok=True)
    code = 1
    try:
        with open(run_dir + ".log", "a") as f:
            code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    finally:  # also on Ctrl-C: a resumed run adds its time to this one's
        with open(timing + (".partial" if code else ""), "w") as f:
            json.dump({"seconds": before + time.time() - start}, f)
    seconds = before + time.time() - start
    if code != 0:
        sys.exit(f"pretraining failed ({code}): see {run_dir}.log")
    print(f"  pretrained {os.path.basename(run_dir)} in {seconds / 60:.1f} min", flush=True)
    return backbone, seconds / 60


def knn_curve(run_dir):
    """(iteration, kNN top-1) pairs and the last collapse diagnostics logged during pretraining."""
    curve, diagnostics = [], {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if "knn_top1" in r:
                curve.append((r["iter"], r["knn_top1"]))
                diagnostics = {k: r[k] for k in ("feature_std", "teacher_entropy", "teacher_batch_entropy",
                                                 "kl_teacher_student") if k in r}
    return curve, diagnostics


def synth_world(args):
    folder = os.path.join(args.out, "synth")
    if not os.path.exists(os.path.join(folder, "crops", "labels.txt")):
        run([args.lesseg, "synth", "--out", folder, "--size", str(args.size), "--train", str(args.scenes), "--val", "100",
             "--crops", str(args.crops), "--seed", "0"], folder + ".log")
    return folder


def overrides(args, seed, backbone):
    sets = [f"seed={seed}", f"model.backbone={backbone}", f"train.eval_every={args.eval_every}"]
    if args.iters:
        sets.append(f"train.iters={args.iters}")
    return sets + args.set


def feature_scores(args, config, tag, weights, backbone, sets, pool="cls"):
    """kNN and linear-probe top-1 of one backbone (random init when weights is None); a ViT's image
    vector is its CLS token (pool cls) or its mean patch token (pool mean)."""
    if pool != "cls":
        tag, sets = f"{tag}_{pool}", sets + [f"probe.pool={pool}"]
    knn = probe(args, config, ["--knn"], os.path.join(args.out, tag + "_knn.json"), weights, backbone, sets)
    linear = probe(args, config, ["--linear"], os.path.join(args.out, tag + "_linear.json"), weights, backbone, sets)
    return {"knn": knn["knn_top1"], "linear": linear["linear_top1"]}


def pools(backbone):
    """The image vectors probed: a ViT's CLS token and its mean patch token (MAE trains no CLS); a CNN's pool."""
    return ["cls", "mean"] if backbone.startswith("vit") else ["cls"]


def pool_label(label, pool):
    return label if pool == "cls" else f"{label}, mean patch token"


def random_kinds(backbone):
    """The random-init baselines of a backbone: BatchNorm statistics at init, and calibrated (CNNs only)."""
    kinds = [("init statistics", [])]
    if backbone.startswith("resnet"):
        kinds.append(("calibrated statistics", [f"probe.calibrate_bn={CALIBRATE_BATCHES}"]))
    return kinds


def baselines(args, folder, backbones):
    """Random init per backbone and seed: BatchNorm statistics at init, and calibrated (CNNs only)."""
    sets = [f"probe.data={folder}/crops"]
    out = {}
    for backbone in backbones:
        kinds = random_kinds(backbone)
        for (kind, extra), pool in [(k, p) for k in kinds for p in pools(backbone)]:
            # ViTs have no BatchNorm; the random ViT has a learned (random) position table
            label = pool_label(f"random init, {backbone}, {kind}" if len(kinds) > 1 else f"random init, {backbone}",
                               pool)
            rows = []
            for seed in args.seeds:
                tag = f"random_{backbone}_{'calibrated' if extra else 'init'}_s{seed}"
                rows.append(feature_scores(args, config_of("simclr"), tag, None, backbone,
                                           sets + extra + [f"seed={seed}"], pool))
            out[label] = {"backbone": backbone, "pool": pool, "seeds": args.seeds, "knn": [r["knn"] for r in rows],
                          "linear": [r["linear"] for r in rows]}
            print(f"{label:48s} kNN {fmt(out[label]['knn'])}  linear {fmt(out[label]['linear'])}", flush=True)
    return out


def synth_comparison(args, folder):
    data = ["data.format=folder", f"data.root={folder}", "data.train_split=train", "data.val_split=val",
            f"probe.data={folder}/crops"]
    results = {}
    for method in args.methods:
        label, backbone, extra = METHODS[method]
        rows = {pool: {"backbone": backbone, "pool": pool, "seeds": args.seeds, "knn": [], "linear": [],
                       "minutes": [], "curves": [], "diagnostics": []} for pool in pools(backbone)}
        for seed in args.seeds:
            tag = f"{method}_s{seed}"
            sets = data + overrides(args, seed, backbone) + extra
            if method == "samclr_gt":
                sets.append(f"samclr.gt_instances={folder}/instances_train.json")
            weights, minutes = pretrain(args, method, os.path.join(args.out, tag), sets)
            curve, diagnostics = knn_curve(os.path.join(args.out, tag))
            for pool, row in rows.items():
                scores = feature_scores(args, config_of(method), tag, weights, backbone,
                                        [f"probe.data={folder}/crops", f"seed={seed}"], pool)
                for key in ("knn", "linear"):
                    row[key].append(scores[key])
                row["minutes"].append(minutes)
                # the curve is logged on the CLS token; curve and diagnostics are the run's, kept once
                row["curves"].append(curve if pool == "cls" else [])
                row["diagnostics"].append(diagnostics if pool == "cls" else {})
        for pool, row in rows.items():
            results[pool_label(label, pool)] = row
            print(f"{pool_label(label, pool):48s} kNN {fmt(row['knn'])}  linear {fmt(row['linear'])}  "
                  f"{statistics.mean(row['minutes']):.1f} min/run", flush=True)
    return results


def attention_comparison(args, folder):
    data = ["data.format=folder", f"data.root={folder}", f"probe.image_size={args.size}", "probe.attention_images=32"]
    out = {}
    cfg = config_of("dino")
    for seed in args.seeds:
        weights = os.path.join(args.out, f"dino_s{seed}", "backbone.safetensors")
        if not os.path.exists(weights):
            continue
        d = probe(args, cfg, ["--attention", os.path.join(args.out, f"dino_s{seed}_att")],
                  os.path.join(args.out, f"dino_s{seed}_att.json"), weights, "vit_tiny8", data + [f"seed={seed}"])
        r = probe(args, cfg, ["--attention", os.path.join(args.out, f"random_vit_s{seed}_att")],
                  os.path.join(args.out, f"random_vit_s{seed}_att.json"), None, "vit_tiny8", data + [f"seed={seed}"])
        if d["attention_iou"] is not None and r["attention_iou"] is not None:  # null: no foreground scored
            out.setdefault("DINO", []).append(d["attention_iou"])
            out.setdefault("random init", []).append(r["attention_iou"])
    for k, v in out.items():
        print(f"CLS attention foreground IoU, {k:12s} {fmt(v)}", flush=True)
    return out


def camvid_comparison(args):
    root = os.path.join(ROOT, "..", "shared", "data", "camvid")
    data = ["data.format=camvid", f"data.root={root}", "data.resize=[180, 240]", "data.crop=[160, 224]"]
    seg = data + ["probe.seg_iters=300", "eval.max_images=0", "seed=0"]
    results = {}
    for backbone in sorted({METHODS[m][1] for m in args.methods}):
        for kind, extra in random_kinds(backbone):
            tag = f"camvid_random_{backbone}_{'calibrated' if extra else 'init'}"
            r = probe(args, config_of("simclr"), ["--seg-linear"], os.path.join(args.out, tag + "_seg.json"), None,
                      backbone, seg + extra)
            results[f"random init, {backbone}, {kind}"] = r["miou"]
    for method in [m for m in args.methods if m != "samclr_gt"]:
        label, backbone, extra = METHODS[method]
        tag = f"camvid_{method}"
        weights, _ = pretrain(args, method, os.path.join(args.out, tag),
                              data + ["seed=0", f"model.backbone={backbone}", "train.eval_every=0"] + extra +
                              ([f"train.iters={args.camvid_iters}"] if args.camvid_iters else []))
        r = probe(args, config_of(method), ["--seg-linear"], os.path.join(args.out, tag + "_seg.json"), weights,
                  backbone, seg)
        results[label] = r["miou"]
    for k, v in results.items():
        print(f"CamVid {k:48s} seg-linear mIoU {v:.4f}", flush=True)
    return results


def fmt(values):
    if len(values) == 1:
        return f"{values[0]:.3f} (n=1)"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f} (n={len(values)})"


def spread(values):
    return statistics.stdev(values) if len(values) > 1 else 0.0


def verdict(gain, noise, n=2):
    """A gain smaller than the spread is no gain; one seed has no spread to compare with."""
    if n < 2:
        return "one seed: no spread yet"
    return "gain" if gain > noise else ("loss" if gain < -noise else "within noise")


def summary_rows(results):
    """Each method's kNN gain over the better random baseline of its backbone (means over seeds)."""
    rows = []
    for label, row in results["methods"].items():
        randoms = [b for b in results["baselines"].values()
                   if b["backbone"] == row["backbone"] and b.get("pool", "cls") == row.get("pool", "cls")]
        best = max(randoms, key=lambda b: statistics.mean(b["knn"]))
        gain = statistics.mean(row["knn"]) - statistics.mean(best["knn"])
        noise = max(spread(row["knn"]), spread(best["knn"]))
        rows.append((label, gain, noise, verdict(gain, noise, min(len(row["knn"]), len(best["knn"]))), gain >= 0.15))
    return rows


def paired(results, a, b):
    """Per-seed differences of kNN top-1, method a minus method b, over the seeds both have."""
    ra, rb = results["methods"].get(a), results["methods"].get(b)
    if not ra or not rb:
        return None
    by_seed = dict(zip(rb["seeds"], rb["knn"]))
    return [(s, x - by_seed[s]) for s, x in zip(ra["seeds"], ra["knn"]) if s in by_seed]


def write_markdown(args, results):
    lines = [f"Synthetic world: {args.scenes} scenes of {args.size} px (3 to 7 objects each); probes on {args.crops} "
             f"single-object crops, half kNN bank / linear-probe training set, half test. Recipes: configs/quick/; "
             f"seeds {args.seeds}. Mean ± standard deviation over seeds.", "",
             "| features | kNN top-1 | linear top-1 | minutes per run |", "|---|---|---|---|"]
    for label, b in results["baselines"].items():
        lines.append(f"| {label} | {fmt(b['knn'])} | {fmt(b['linear'])} | - |")
    for label, row in results["methods"].items():
        lines.append(f"| {label}, {row['backbone']} | {fmt(row['knn'])} | {fmt(row['linear'])} | "
                     f"{statistics.mean(row['minutes']):.1f} |")
    lines += ["", "| method | kNN gain over the better random baseline | spread | verdict | target +0.15 met |",
              "|---|---|---|---|---|"]
    for label, gain, noise, word, met in summary_rows(results):
        lines.append(f"| {label} | {gain:+.3f} | {noise:.3f} | {word} | {'yes' if met else 'no'} |")
    pairs = paired(results, METHODS["samclr"][0], METHODS["simclr"][0])
    if pairs:
        diffs = [d for _, d in pairs]
        lines += ["", "SAMCLR (proposer) minus SimCLR, kNN top-1 paired by seed: " +
                  ", ".join(f"seed {s}: {d:+.3f}" for s, d in pairs) +
                  f"; mean {statistics.mean(diffs):+.3f}, spread {spread(diffs):.3f} "
                  f"({verdict(statistics.mean(diffs), spread(diffs), len(diffs))})."]
    diag = [(label, d) for label, row in results["methods"].items() for d in row["diagnostics"][-1:] if d]
    if diag:
        lines += ["", "Collapse diagnostics at the end of the last seed's run: " +
                  "; ".join(f"{label}: " + ", ".join(f"{k} {v:.3g}" for k, v in d.items()) for label, d in diag) + "."]
    if results.get("attention"):
        lines += ["", "| ViT-Tiny/8 | CLS attention foreground IoU (best head) |", "|---|---|"]
        for k, v in results["attention"].items():
            lines.append(f"| {k} | {fmt(v)} |")
    if results.get("camvid"):
        lines += ["", "| CamVid, pretrained on the train images (seed 0) | seg-linear probe mIoU (val) |", "|---|---|"]
        for k, v in results["camvid"].items():
            lines.append(f"| {k} | {v:.4f} |")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def plot_curves(args, results):
    """kNN top-1 against iterations: one thin line per seed, random baselines dashed (PNG via PIL)."""
    from PIL import Image, ImageDraw
    width, height, left, bottom, top, right = 1000, 520, 70, 60, 30, 340
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    curves = [(label, row["curves"]) for label, row in results["methods"].items() if any(row["curves"])]
    cls_baselines = {k: b for k, b in results["baselines"].items() if b.get("pool", "cls") == "cls"}
    max_iter = max([i for _, cs in curves for c in cs for i, _ in c] + [1])
    values = [v for _, cs in curves for c in cs for _, v in c] + \
             [v for b in cls_baselines.values() for v in b["knn"]]
    lo, hi = min(values + [0.1]) - 0.02, max(values + [0.5]) + 0.02
    px = lambda i: left + (width - left - right) * i / max_iter
    py = lambda v: height - bottom - (height - top - bottom) * (v - lo) / (hi - lo)
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for k in range(6):
        v = lo + (hi - lo) * k / 5
        draw.text((8, py(v) - 6), f"{v:.2f}", fill="black")
        i = max_iter * k / 5
        draw.text((px(i) - 12, height - bottom + 6), f"{int(i)}", fill="black")
    draw.text((left + 150, height - 28), "pretraining iteration", fill="black")
    draw.text((left, 8), "kNN top-1 on single-object crops (synthetic world)", fill="black")
    legend_y = top
    for n, (label, cs) in enumerate(curves):
        colour = COLOURS[n % len(COLOURS)]
        for c in [c for c in cs if c]:
            draw.line([(px(i), py(v)) for i, v in c] if len(c) > 1 else [(px(0), py(c[0][1])), (px(0), py(c[0][1]))],
                      fill=colour, width=2)
        draw.line([(width - right + 10, legend_y + 6), (width - right + 30, legend_y + 6)], fill=colour, width=3)
        draw.text((width - right + 35, legend_y), label, fill="black")
        legend_y += 18
    for n, (label, b) in enumerate(cls_baselines.items()):
        colour = (120, 120, 120) if "calibrated" in label else (0, 0, 0)
        y = py(statistics.mean(b["knn"]))
        for x in range(left, width - right, 12):
            draw.line([(x, y), (min(x + 6, width - right), y)], fill=colour, width=1)
        draw.text((width - right + 10, legend_y), "- - " + label, fill=colour)
        legend_y += 18
    image.save(os.path.join(args.out, "curves.png"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lesseg", default=os.path.join(ROOT, "build", "lesseg"))
    p.add_argument("--out", default="runs/ssl_compare")
    p.add_argument("--methods", nargs="+", default=["simclr", "samclr", "dino", "mae"], choices=sorted(METHODS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--iters", type=int, default=0, help="override every recipe's train.iters (0: the recipe's)")
    p.add_argument("--eval-every", type=int, default=200, help="kNN evaluation interval during pretraining")
    p.add_argument("--size", type=int, default=96, help="synthetic scene side")
    p.add_argument("--scenes", type=int, default=2000)
    p.add_argument("--crops", type=int, default=600)
    p.add_argument("--camvid-iters", type=int, default=0, help="CamVid pretraining iterations (0: the recipe's)")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads per lesseg process (0: all cores)")
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE for every pretraining run (repeatable)")
    p.add_argument("--no-camvid", action="store_true")
    p.add_argument("--no-attention", action="store_true")
    args = p.parse_args()
    args.out = os.path.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)
    folder = synth_world(args)
    backbones = sorted({METHODS[m][1] for m in args.methods})
    results = {"args": vars(args), "baselines": baselines(args, folder, backbones),
               "methods": synth_comparison(args, folder)}
    if not args.no_attention and "dino" in args.methods:
        results["attention"] = attention_comparison(args, folder)
    if not args.no_camvid:
        results["camvid"] = camvid_comparison(args)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    write_markdown(args, results)
    plot_curves(args, results)
    print(open(os.path.join(args.out, "results.md")).read())


if __name__ == "__main__":
    main()
