"""Shared by the CutLER measurement scripts (compare.py, few_labels.py, zero_shot.py): running lesseg,
reading its scores and writing one table."""
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LESSEG = os.path.join(ROOT, "build", "lesseg")
KEYS = ("mask_ap", "mask_ap50", "mask_ar100")


def run(cmd, log):
    """Runs a command with its output in `log`; stops the script (naming the log) when it fails."""
    print("  $ " + " ".join(cmd), flush=True)
    with open(log, "w") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    if code != 0:
        sys.exit(f"failed ({code}): see {log}")


def instance_scores(lesseg, predictions, gt):
    """`lesseg eval --instances`: class-agnostic mask AP / AP50 / AR@100 of a COCO predictions file."""
    out = subprocess.run([lesseg, "eval", "--instances", predictions, "--gt", gt], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(out.stdout + out.stderr)
    m = json.loads(out.stdout)["mask"]
    return {"mask_ap": m["AP"], "mask_ap50": m["AP50"], "mask_ar100": m["AR100"]}


def last_evaluation(metrics_file):
    """The scores of a training run's last evaluation (its metrics.jsonl): no checkpoint is picked."""
    with open(metrics_file) as f:
        evals = [json.loads(line) for line in f if '"mask_ap"' in line]
    last = evals[-1].get("metrics", evals[-1])
    return {k: last[k] for k in KEYS}


def cell(rows, key):
    """Mean ± sample standard deviation over runs (the value alone for one run)."""
    values = [r[key] for r in rows]
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def write_results(out, lines, data):
    """Prints the table and writes OUT/results.md and OUT/results.json."""
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(data, f, indent=1)
