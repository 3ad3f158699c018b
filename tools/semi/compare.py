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
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DATASETS = {
    # the quick configs' world, with 8 of 2000 scenes labeled
    "synth": {"config_dir": "configs/quick", "settings": []},
    # CamVid at quarter resolution (96x128: sized for 2 CPU cores), 1/8 of the 367 training images labeled
    # (46), 37 held out to choose the weights on, val (101) reported; evaluations every 50 iterations
    "camvid": {"config_dir": "configs/quick", "settings": [
        "data.format=camvid", f"data.root={os.path.join(os.path.dirname(ROOT), 'shared', 'data', 'camvid')}",
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


def train(args, run_dir, config, settings):
    """Runs `lesseg train` unless run_dir already holds its results; returns them."""
    results = os.path.join(run_dir, "results.json")
    if not os.path.exists(results):
        cmd = [args.lesseg, "train", os.path.join(ROOT, DATASETS[args.dataset]["config_dir"], config),
               "--run-dir", run_dir, "--threads", str(args.threads)]
        for s in settings:
            cmd += ["--set", s]
        os.makedirs(run_dir, exist_ok=True)
        print("  $ " + " ".join(cmd), flush=True)
        with open(run_dir + ".log", "w") as log:
            if subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT) != 0:
                sys.exit(f"failed: see {run_dir}.log")
    with open(results) as f:
        return json.load(f)


def cell(values):
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def svg_bars(names, means, spreads, title):
    """A horizontal bar chart of mean mIoU with ± one standard deviation."""
    width, left, bar, gap = 640, 300, 18, 8
    height = 40 + len(names) * (bar + gap)
    scale = (width - left - 40) / max(max(m + s for m, s in zip(means, spreads)), 1e-9)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<text x="10" y="20" font-size="14">{title}</text>']
    for i, (name, m, s) in enumerate(zip(names, means, spreads)):
        y = 34 + i * (bar + gap)
        out.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{name}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{m * scale:.1f}" height="{bar}" fill="#4c78a8"/>')
        out.append(f'<line x1="{left + (m - s) * scale:.1f}" x2="{left + (m + s) * scale:.1f}" y1="{y + bar / 2}" '
                   f'y2="{y + bar / 2}" stroke="black"/>')
        out.append(f'<text x="{left + (m + s) * scale + 6:.1f}" y="{y + 13}">{m:.3f}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


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
            results = train(args, os.path.join(args.out, f"{key}_s{seed}"), config, base + settings)
            table.setdefault(name, []).append(
                {"seed": seed, "miou": results["models"][model]["miou"], "selected_iter": results["selected"]["iter"]})
    lines = [f"Semi-supervised segmentation, {args.dataset}, {args.iters} semi-supervised iterations "
             f"(supervised rows {2 * args.iters}), seeds {args.seeds}; mIoU on the reported split, "
             "weights chosen on held-out training images", "",
             "| method | mIoU (mean ± sd) | per seed |", "| --- | --- | --- |"]
    names, means, spreads = [], [], []
    for name, runs in table.items():
        values = [r["miou"] for r in runs]
        lines.append(f"| {name} | {cell(values)} | {' / '.join(f'{v:.3f}' for v in values)} |")
        names.append(name)
        means.append(statistics.mean(values))
        spreads.append(statistics.stdev(values) if len(values) > 1 else 0.0)
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"dataset": args.dataset, "iters": args.iters, "rows": table}, f, indent=1)
    with open(os.path.join(args.out, "results.svg"), "w") as f:
        f.write(svg_bars(names, means, spreads, f"mIoU, {args.dataset}, seeds {args.seeds}"))


if __name__ == "__main__":
    main()
