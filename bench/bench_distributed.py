"""Two CPU processes under paddle.distributed.launch against one: the teacher labelling ~20k
sentences and a Bi-LSTM epoch (the README's "More than one device").

    python bench/bench_distributed.py [--results bench/results/distributed.json]

Each job runs as a user would: one process with --num_threads 2, then 2 processes (gloo) with one
thread each, so both use this machine's 2 cores.
- Labelling: teacher_student_distill.py on ChnSentiCorp with --n_iter 1 (9,600 training sentences,
  9,600 augmented copies and the 1,200 dev sentences through the fine-tuned teacher, batches of 64),
  a fresh logits cache each and --max_steps 1; the summary's teacher_logits_seconds (building the
  transfer set included: what a user waits for), and whether the two cache entries are the same bytes.
- Student epoch: student_lstm_small.py's recipe for one epoch with one dev evaluation at its end, the
  same global batch (64, or 2 x 32), so both train the same steps; the summary's seconds and accuracy.
"""
import argparse
import filecmp
import json
import os
import platform
import subprocess
import sys
import tempfile

from bench_teacher import TEACHER_OUTPUT, fetch_offline_teacher, write_results  # first: sets sys.path
from args import recipe  # noqa: E402, I001

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data", "chnsenticorp")
SETUPS = [(1, 2), (2, 1)]  # (processes, threads each)


def launch(script, flags, processes, threads, output_dir, log_dir):
    """Run a script in `processes` processes (the launcher for more than one) and read its summary."""
    prefix = [sys.executable]
    if processes > 1:
        prefix += ["-m", "paddle.distributed.launch", "--nproc_per_node", str(processes), "--log_dir", log_dir]
    cmd = [*prefix, script, *flags, "--data_dir", DATA, "--device", "cpu", "--num_threads", str(threads),
           "--output_dir", output_dir]
    print("running:", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)
    with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
        return json.load(f), " ".join(cmd[1:])


def dev_size():
    with open(os.path.join(DATA, "dev.tsv"), encoding="utf-8") as f:
        return sum(1 for _ in f) - 1  # its header


def labelling(args, tmp):
    teacher = ["--model_name", fetch_offline_teacher(),
               "--teacher_dir", os.path.join(args.teacher_run, "best", "model_state.pdparams")]
    rows, caches = [], []
    for processes, threads in SETUPS:
        name = f"label{processes}"
        caches.append(os.path.join(tmp, name, "cache"))
        flags = ["--task_name", "chnsenticorp", *recipe("distill"), "--n_iter", "1", "--max_steps", "1",
                 *teacher, "--logits_cache", caches[-1]]
        summary, cmd = launch("teacher_student_distill.py", flags, processes, threads,
                              os.path.join(tmp, name, "run"), os.path.join(tmp, name, "log"))
        sentences = summary["transfer_set"]["sentences"] + dev_size()
        rows.append({"processes": processes, "threads_each": threads, "sentences": sentences,
                     "seconds": summary["teacher_logits_seconds"],
                     "sentences_per_second": sentences / summary["teacher_logits_seconds"],
                     "teacher_dev_acc": summary["teacher_dev_acc"], "command": cmd})
        print(rows[-1], flush=True)
    # each cache holds one entry, a directory named by its key (beside the hidden lock file)
    entries = [os.path.join(c, key) for c in caches for key in os.listdir(c) if not key.startswith(".")]
    same = len(entries) == 2 and os.path.basename(entries[0]) == os.path.basename(entries[1]) and all(
        filecmp.cmp(os.path.join(entries[0], f), os.path.join(entries[1], f), shallow=False)
        for f in ("outputs.npz", "manifest.json"))
    return {"runs": rows, "cache_entries_identical": same}


def student_epoch(tmp):
    rows = []
    for processes, threads in SETUPS:
        name = f"student{processes}"
        flags = ["--task_name", "chnsenticorp", *recipe("student"), "--max_epoch", "1", "--save_steps", "100000",
                 "--batch_size", str(64 // processes)]
        summary, cmd = launch("student_lstm_small.py", flags, processes, threads,
                              os.path.join(tmp, name, "run"), os.path.join(tmp, name, "log"))
        rows.append({"processes": processes, "threads_each": threads, "global_batch": 64,
                     "epoch_seconds": summary["epoch_seconds"][0], "dev_acc": summary["best_dev_acc"],
                     "command": cmd})
        print(rows[-1], flush=True)
    return {"runs": rows}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher_run", default=TEACHER_OUTPUT, help="bench_teacher.py train's output")
    parser.add_argument("--results", default=os.path.join(ROOT, "bench", "results", "distributed.json"))
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(args.teacher_run, "summary.json")):
        sys.exit(f"{args.teacher_run}: no finished teacher; run `python bench/bench_teacher.py train` first")
    with tempfile.TemporaryDirectory() as tmp:
        result = {"labelling": labelling(args, tmp), "student_epoch": student_epoch(tmp)}
    write_results(args.results, {**result, "cpu": platform.processor() or platform.machine(),
                                 "cores": os.cpu_count(),
                                 "teacher": "m3e-small (offline), fine-tuned by bench_teacher.py train"})


if __name__ == "__main__":
    main()
