"""Shared by the side-by-side studies (tools/semi/compare.py, tools/uda/compare.py): run `lesseg train`
once per row and seed (finished runs reused, unfinished ones resumed from their checkpoints), then a
table of mean ± sd, JSON and a bar chart."""
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")


def train(lesseg, config, run_dir, settings, threads=0, method=None):
    """Runs `lesseg train CONFIG` into run_dir unless it holds results.json; returns the results."""
    results = os.path.join(run_dir, "results.json")
    if not os.path.exists(results):
        cmd = [lesseg, "train", config, "--run-dir", run_dir, "--threads", str(threads)]
        if method:
            cmd += ["--method", method]
        for s in settings:
            cmd += ["--set", s]
        os.makedirs(run_dir, exist_ok=True)
        print("  $ " + " ".join(cmd), flush=True)
        with open(run_dir + ".log", "a") as log:
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


def write_summary(out_dir, heading, table, chart_title, extra_json):
    """table: {row name: [{"seed", "miou", ...}]} in row order. Writes results.{md,json,svg} to out_dir."""
    lines = [heading, "", "| method | mIoU (mean ± sd) | per seed |", "| --- | --- | --- |"]
    names, means, spreads = [], [], []
    for name, runs in table.items():
        values = [r["miou"] for r in runs]
        lines.append(f"| {name} | {cell(values)} | {' / '.join(f'{v:.3f}' for v in values)} |")
        names.append(name)
        means.append(statistics.mean(values))
        spreads.append(statistics.stdev(values) if len(values) > 1 else 0.0)
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(dict(extra_json, rows=table), f, indent=1)
    with open(os.path.join(out_dir, "results.svg"), "w") as f:
        f.write(svg_bars(names, means, spreads, chart_title))
