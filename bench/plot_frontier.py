"""The accuracy / speed frontier: each student alone and distilled, and the teacher, as a picture.

    python bench/plot_frontier.py [--serve bench/results/serve_family.json] [--output docs/frontier.png]

Accuracy is the mean over training seeds of bench_robustness.py's runs (error bars: the sample
standard deviation), on ChnSentiCorp dev (left) and out of domain, shopping5 (right); speed is
bench_serve.py's exported model at batch 1 on one thread, tokenization included (log scale).
"""
import argparse
import glob
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from args import STUDENTS  # noqa: E402
from bench_serve import serve_name  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results")
MARKERS = {"bilstm": "o", "gru": "s", "textcnn": "^", "bow": "D"}
LABELS = {"bilstm": "Bi-LSTM", "gru": "Bi-GRU", "textcnn": "TextCNN", "bow": "BOW"}
STYLES = {"alone": {"color": "tab:gray", "fillstyle": "none"}, "distilled": {"color": "tab:blue"}}


def accuracies(name):
    """{"dev"|"ood": (mean, std, n)} of bench/results/robustness/<name>/seed*.json, or None."""
    runs = [json.load(open(p, encoding="utf-8"))
            for p in sorted(glob.glob(os.path.join(RESULTS, "robustness", name, "seed*.json")))]
    if not runs:
        return None
    out = {}
    for key in ("dev", "ood"):
        values = [r[f"{key}_acc"] for r in runs]
        out[key] = (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))
    return out


def serving_speeds(path):
    """{model name: sentences/s} of the exported models at batch 1 on one thread."""
    with open(path, encoding="utf-8") as f:
        rows = json.load(f)["rows"]
    return {r["model"]: r["sentences_per_second"] for r in rows
            if r["mode"] == "exported" and r["threads"] == 1 and r["batch_size"] == 1}


def plot(speeds, output):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    teacher = accuracies("teacher")
    for ax, key, title in zip(axes, ("dev", "ood"), ("ChnSentiCorp dev", "out of domain: shopping5")):
        for student in STUDENTS:
            speed = speeds.get(serve_name(student, 300))
            for recipe, style in STYLES.items():
                acc = accuracies(f"{student}-{recipe}")
                if acc is None or speed is None:
                    continue
                mean, std, n = acc[key]
                ax.errorbar(speed, mean, yerr=std, marker=MARKERS[student], markersize=8, capsize=3,
                            linestyle="none", label=f"{LABELS[student]} {recipe}", **style)
        if teacher and "m3e-small" in speeds:
            mean, std, _ = teacher[key]
            ax.errorbar(speeds["m3e-small"], mean, yerr=std, marker="*", markersize=13, color="tab:red",
                        capsize=3, linestyle="none", label="teacher: m3e-small fine-tuned")
        if "ernie-gram-zh-shaped" in speeds:  # the published teacher's speed (its accuracy is not measured here)
            ax.axvline(speeds["ernie-gram-zh-shaped"], color="tab:red", linestyle=":", label="ernie-gram-zh's speed")
            ax.axvline(100 * speeds["ernie-gram-zh-shaped"], color="tab:red", linestyle="--", alpha=0.5,
                       label="100x ernie-gram-zh's speed")
        ax.set_xscale("log")
        ax.set_title(title)
        ax.set_xlabel("sentences/s, exported, batch 1, one CPU thread (log)")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("accuracy (mean ± std over seeds)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    fig.savefig(output, dpi=120)
    print(f"frontier written to {output}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", default=os.path.join(RESULTS, "serve_family.json"),
                        help="bench_serve.py's results with every student's checkpoint and the teachers")
    parser.add_argument("--output", default=os.path.join(ROOT, "docs", "frontier.png"))
    args = parser.parse_args()
    plot(serving_speeds(args.serve), args.output)


if __name__ == "__main__":
    main()
