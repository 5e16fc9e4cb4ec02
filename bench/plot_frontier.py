"""The students' accuracy / speed frontier: the README's table and picture.

    python bench/plot_frontier.py [--serve bench/results/serve_frontier.json] [--output docs/frontier.png]

Accuracy is the mean over training seeds of bench_robustness.py's runs, once 3 have landed (error
bars: the sample standard deviation), on ChnSentiCorp dev (left) and out of domain, shopping5 (right); speed is
bench_serve.py's exported model at batch 1 on one thread, at its faster oneDNN setting, tokenization
included (log scale), and its multiples of m3e-small, then of the ernie-gram-zh shape. The
table (printed, and bench/results/family.json) adds the teacher's hard labels and the gain of
distillation against the seed spread (for TinyBERT: stage 1's, against stage 2 alone).
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt  # noqa: E402

from common import ROOT  # noqa: E402
from family_table import (MEMBERS, RESULTS, TINYBERT, TINYBERT_MEMBER, accuracies, member_label, run_name,  # noqa: E402
                          serving_speeds, table)
from serve_models import serve_name  # noqa: E402

STYLES = {"alone": {"color": "tab:gray", "fillstyle": "none"}, "distilled": {"color": "tab:blue"}}  # the picture's
# Students of about one speed and accuracy (Bi-LSTM and Bi-GRU, the two BOWs) hid one another: each is drawn at
# NUDGE ** k times its speed, k in (-1.5, -0.5, 0.5, 1.5) by recipe and by its place in MEMBERS (odd or even).
NUDGE = 1.15


def plot(speeds, output):
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.5), sharex=True)
    teacher = accuracies("teacher", min_runs=1)
    for ax, key, title in zip(axes, ("dev", "ood"), ("ChnSentiCorp dev", "out of domain: shopping5")):
        for i, ((student, hidden), marker) in enumerate(MEMBERS.items()):
            speed = speeds.get(serve_name(student, hidden))
            for r, (recipe, style) in enumerate(STYLES.items()):
                acc = accuracies(run_name(student, hidden, recipe))
                if acc is None or speed is None:
                    continue
                mean, std, n = acc[key]
                ax.errorbar(speed * NUDGE ** (2 * r + i % 2 - 1.5), mean, yerr=std, marker=marker, markersize=8,
                            capsize=3, linestyle="none", label=f"{member_label(student, hidden)} {recipe}", **style)
        speed = speeds.get(TINYBERT_MEMBER[1])
        for config, (recipe, _, style) in TINYBERT.items():
            acc = accuracies(config)
            if acc is not None and speed is not None:
                mean, std, n = acc[key]
                ax.errorbar(speed, mean, yerr=std, markersize=8, capsize=3, linestyle="none",
                            label=f"{TINYBERT_MEMBER[0]} {recipe}", **style)
        if teacher and "m3e-small" in speeds:
            mean, std, _ = teacher[key]
            ax.errorbar(speeds["m3e-small"], mean, yerr=std, marker="*", markersize=13, color="tab:red",
                        capsize=3, linestyle="none", label="teacher: m3e-small fine-tuned")
        if "ernie-gram-zh-shaped" in speeds:  # the online recipe's teacher's speed (its accuracy is not measured here)
            ax.axvline(speeds["ernie-gram-zh-shaped"], color="tab:red", linestyle=":",
                       label="ernie-gram-zh shape's speed")
            ax.axvline(100 * speeds["ernie-gram-zh-shaped"], color="tab:red", linestyle="--", alpha=0.5,
                       label="100x its speed")
        ax.set_xscale("log")
        ax.set_title(title)
        ax.set_xlabel("sentences/s, exported, batch 1, one CPU thread (log),\nat each model's faster oneDNN setting "
                      "(students nudged apart: up to ±25%)")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("accuracy (mean ± std over seeds)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=11, frameon=False)
    fig.tight_layout(rect=(0, 0.3, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    fig.savefig(output, dpi=120)
    print(f"frontier written to {output}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", default=os.path.join(RESULTS, "serve_frontier.json"),
                        help="bench_serve.py's results: every member (MEMBERS, TINYBERT_MEMBER) and the teachers, "
                             "batch 1, 1 thread")
    parser.add_argument("--output", default=os.path.join(ROOT, "docs", "frontier.png"))
    parser.add_argument("--table", default=os.path.join(RESULTS, "family.json"))
    args = parser.parse_args()
    speeds = serving_speeds(args.serve)
    table(speeds, args.table)
    plot(speeds, args.output)


if __name__ == "__main__":
    main()
