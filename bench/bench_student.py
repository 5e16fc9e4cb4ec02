"""Benchmark the Bi-LSTM trained alone: runs the README's baseline command on the local
ChnSentiCorp files and prints dev accuracy, seconds per epoch, examples per second and peak memory.

    python bench/bench_student.py [--data_dir ../shared/data/chnsenticorp] [--num_threads 2]

The table is printed as Markdown and saved (with the raw summary) to bench/results/student.json.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

from common import ROOT, SHARED_DATA, cpu_model, write_results  # first: it puts the project's root on sys.path
from args import recipe  # noqa: E402, I001

# The README's baseline command: recipes/student.txt.
README_COMMAND = ["student_lstm_small.py", "--task_name", "chnsenticorp", *recipe("student")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=os.path.join(SHARED_DATA, "chnsenticorp"))
    parser.add_argument("--num_threads", type=int, default=2)
    parser.add_argument("--output_dir", default="/tmp/distill_lstm_bench/student")
    parser.add_argument("--results", default=os.path.join(ROOT, "bench", "results", "student.json"))
    args, extra = parser.parse_known_args()

    command = [sys.executable, *README_COMMAND, "--data_dir", os.path.abspath(args.data_dir),
               "--device", "cpu", "--num_threads", str(args.num_threads),
               "--output_dir", args.output_dir, "--overwrite_output_dir", *extra]  # the bench's scratch directory
    print("running:", " ".join(command), flush=True)
    start = time.time()
    subprocess.run(command, cwd=ROOT, check=True)
    wall = time.time() - start
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with open(os.path.join(args.output_dir, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)

    epochs = summary["epoch_seconds"]
    row = {"dev_acc": summary["best_dev_acc"], "dev_unseen_acc": summary["dev_unseen_acc"],
           "best_step": summary["best_step"], "epochs": len(epochs),
           "seconds_per_epoch": sum(epochs) / len(epochs), "examples_per_second": summary["train_examples_per_second"],
           "peak_rss_mib": peak_mib, "wall_minutes": wall / 60, "threads": args.num_threads,
           "cpu": cpu_model(), "command": " ".join(command[1:])}
    print("\n| model | dev acc | dev, unseen | epochs | s/epoch | train examples/s | peak RSS | wall |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| Bi-LSTM alone | {row['dev_acc']:.4f} | {row['dev_unseen_acc']:.4f} | {row['epochs']} | {row['seconds_per_epoch']:.0f} "
          f"| {row['examples_per_second']:.0f} | {row['peak_rss_mib']:.0f} MiB | {row['wall_minutes']:.1f} min |")
    write_results(args.results, {"result": row, "summary": summary})


if __name__ == "__main__":
    main()
