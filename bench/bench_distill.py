"""Benchmark distillation on ChnSentiCorp with the offline teacher fine-tuned by bench_teacher.py.

    python bench/bench_distill.py timing            # cached vs online teacher logits, 6 epochs, same data
    python bench/bench_distill.py run NAME [ARGS]   # the README's distillation command + ARGS, full data

`timing` trains on a random --subset of the training sentences (+ --n_iter 1 copy each) three times:
teacher logits online (the original), cached from an empty cache (computed once, then reused by
every epoch), and cached from the cache the previous run filled. `run` keeps its result in
bench/results/distill/NAME.json. Tables are printed as Markdown; results go to bench/results/.
"""
import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

# common first: it puts the project on sys.path
from common import ROOT, SHARED, TEACHER_OUTPUT, cpu_model, fetch_offline_teacher, teacher_dir, write_results
from args import recipe  # noqa: E402, I001

# The README's distillation command (recipes/distill.txt), offline.
README_COMMAND = ["teacher_student_distill.py", "--task_name", "chnsenticorp", *recipe("distill")]


def distill_command(args, data_dir, output_dir, extra):
    teacher = os.path.join(teacher_dir(args), "model_state.pdparams")
    return [sys.executable, *README_COMMAND, "--model_name", fetch_offline_teacher(), "--teacher_dir", teacher,
            "--data_dir", os.path.abspath(data_dir), "--device", "cpu", "--num_threads", str(args.num_threads),
            "--output_dir", output_dir, "--overwrite_output_dir", *extra]  # a scratch directory of the bench


def timed_run(command):
    """(wall seconds, summary.json) of one distillation run."""
    print("running:", " ".join(command[1:]), flush=True)
    start = time.time()
    subprocess.run(command, cwd=ROOT, check=True)
    wall = time.time() - start
    with open(os.path.join(command[command.index("--output_dir") + 1], "summary.json"), encoding="utf-8") as f:
        return wall, json.load(f)


def subset_data_dir(data_dir, size, seed, into):
    """A copy of the task with `size` random training sentences (the full dev split)."""
    with open(os.path.join(data_dir, "train.tsv"), encoding="utf-8") as f:
        header, *rows = f.readlines()
    os.makedirs(into)
    with open(os.path.join(into, "train.tsv"), "w", encoding="utf-8") as f:
        f.writelines([header, *random.Random(seed).sample(rows, size)])
    shutil.copy(os.path.join(data_dir, "dev.tsv"), into)
    return into


def timing(args):
    work = tempfile.mkdtemp(prefix="distill_timing_")
    data_dir = subset_data_dir(args.data_dir, args.subset, 0, os.path.join(work, "data"))
    runs = [("teacher logits online (the original)", "online", "online"),
            ("cached, empty cache (logits computed once)", "cached", "cached"),
            ("cached, cache filled by the previous run", "cached", "cached")]
    rows = []
    for name, mode, cache in runs:
        extra = ["--n_iter", "1", "--teacher_logits", mode, "--logits_cache", os.path.join(work, cache),
                 "--save_steps", "100000"]
        wall, summary = timed_run(distill_command(args, data_dir, os.path.join(work, f"run{len(rows)}"), extra))
        rows.append({"run": name, "wall_seconds": wall, "epoch_seconds": summary["epoch_seconds"],
                     "dev_acc": summary["best_dev_acc"], "dev_unseen_acc": summary.get("dev_unseen_acc")})
    shutil.rmtree(work)
    online = rows[0]["wall_seconds"]
    print(f"\n{args.subset} training sentences + 1 augmented copy each, 6 epochs, {args.num_threads} threads\n")
    print("| teacher logits | wall | mean s/epoch | speed-up vs online | dev acc |\n|---|---|---|---|---|")
    for r in rows:
        epochs = r["epoch_seconds"]
        print(f"| {r['run']} | {r['wall_seconds']:.0f} s | {sum(epochs) / len(epochs):.1f} "
              f"| {online / r['wall_seconds']:.1f}x | {r['dev_acc']:.4f} |")
    return {"subset": args.subset, "n_iter": 1, "epochs": 6, "threads": args.num_threads, "rows": rows}


def run(args):
    output_dir = os.path.join(tempfile.gettempdir(), "distill_lstm_bench", args.name)
    wall, summary = timed_run(distill_command(args, args.data_dir, output_dir, args.extra))
    epochs = summary["epoch_seconds"]
    row = {"name": args.name, "args": " ".join(args.extra), "dev_acc": summary["best_dev_acc"],
           "dev_unseen_acc": summary["dev_unseen_acc"], "best_step": summary["best_step"],
           "teacher_dev_acc": summary.get("teacher_dev_acc"), "teacher_dev_unseen_acc": summary.get("teacher_dev_unseen_acc"),
           "transfer_set": summary.get("transfer_set"), "wall_minutes": wall / 60,
           "seconds_per_epoch": sum(epochs) / len(epochs), "epochs": len(epochs),
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
    print("\n| run | extra args | dev acc | dev, unseen | best step | transfer set | s/epoch | wall |\n"
          "|---|---|---|---|---|---|---|---|")
    print(f"| {row['name']} | {row['args']} | {row['dev_acc']:.4f} | {row['dev_unseen_acc']:.4f} | {row['best_step']} | {row['transfer_set']['sentences']} "
          f"| {row['seconds_per_epoch']:.0f} | {row['wall_minutes']:.0f} min |")
    return {"result": row, "summary": summary}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["timing", "run"])
    parser.add_argument("name", nargs="?", help="run: the result's name")
    parser.add_argument("--data_dir", default=os.path.join(SHARED, "data", "chnsenticorp"))
    parser.add_argument("--teacher_run", default=TEACHER_OUTPUT, help="bench_teacher.py train's output")
    parser.add_argument("--num_threads", type=int, default=2)
    parser.add_argument("--subset", type=int, default=500, help="timing: training sentences used")
    args, args.extra = parser.parse_known_args()
    if args.what == "run" and not args.name:
        parser.error("run needs a NAME")
    result = timing(args) if args.what == "timing" else run(args)
    result["cpu"] = cpu_model()
    name = "distill_timing.json" if args.what == "timing" else os.path.join("distill", f"{args.name}.json")
    path = os.path.join(ROOT, "bench", "results", name)
    write_results(path, result)


if __name__ == "__main__":
    main()
