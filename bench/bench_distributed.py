"""Two CPU processes under paddle.distributed.launch against one: the teacher labelling ~20k
sentences and a Bi-LSTM epoch (the README's "More than one device").

    python bench/bench_distributed.py speed      # on an idle machine -> bench/results/distributed_speed.json
    python bench/bench_distributed.py identity   # -> bench/results/distributed_identity.json

speed runs each job as a user would: one process with --num_threads 2, then 2 processes (gloo) with
one thread each, so both use this machine's 2 cores.
- Labelling: teacher_student_distill.py on ChnSentiCorp with --n_iter 1 (9,600 training sentences,
  their augmented copies and the 1,200 dev sentences through the fine-tuned teacher, batches of 64),
  a fresh logits cache each and --max_steps 1; the summary's teacher_logits_seconds (building the
  transfer set included: what a user waits for), and how the two cache entries compare.
- Student epoch: student_lstm_small.py's recipe for one epoch with one dev evaluation at its end, the
  same global batch (64, or 2 x 32), so both take the same steps; the summary's seconds and accuracy.
identity labels the training and dev sentences (--n_iter 0) in one process and in two, one thread
each (thread counts change the last bits of a float sum), and compares the cache entries byte for byte.
"""
import argparse
import filecmp
import json
import os
import subprocess
import tempfile

# common first: it puts the project on sys.path
from common import (ROOT, SHARED_DATA, TEACHER_OUTPUT, cpu_model, fetch_offline_teacher, python_command, teacher_dir,
                    write_results)
from args import recipe  # noqa: E402, I001

DATA = os.path.join(SHARED_DATA, "chnsenticorp")
SETUPS = [(1, 2), (2, 1)]  # (processes, threads each)


def launch(script, flags, processes, threads, output_dir, log_dir):
    """Run a script in `processes` processes (the launcher for more than one) and read its summary."""
    cmd = [*python_command(processes, log_dir), script, *flags, "--data_dir", DATA, "--device", "cpu",
           "--num_threads", str(threads), "--output_dir", output_dir]
    print("running:", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)
    with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
        return json.load(f), " ".join(cmd[1:])


def dev_size():
    with open(os.path.join(DATA, "dev.tsv"), encoding="utf-8") as f:
        return sum(1 for _ in f) - 1  # its header


def label(args, tmp, setups, n_iter):
    """The teacher's logits over the transfer set (--n_iter n_iter) and dev, once per (processes,
    threads) setup, each into a fresh cache: (rows, cache entry directories)."""
    teacher = ["--model_name", fetch_offline_teacher(),
               "--teacher_dir", os.path.join(teacher_dir(args), "model_state.pdparams")]
    rows, entries = [], []
    for processes, threads in setups:
        name = f"label{processes}x{threads}"
        cache = os.path.join(tmp, name, "cache")
        flags = ["--task_name", "chnsenticorp", *recipe("distill"), "--n_iter", str(n_iter), "--max_steps", "1",
                 *teacher, "--logits_cache", cache]
        summary, cmd = launch("teacher_student_distill.py", flags, processes, threads,
                              os.path.join(tmp, name, "run"), os.path.join(tmp, name, "log"))
        sentences = summary["transfer_set"]["sentences"] + dev_size()
        rows.append({"processes": processes, "threads_each": threads, "sentences": sentences,
                     "seconds": summary["teacher_logits_seconds"],
                     "sentences_per_second": sentences / summary["teacher_logits_seconds"],
                     "teacher_dev_acc": summary["teacher_dev_acc"], "command": cmd})
        print(rows[-1], flush=True)
        # the cache's one entry: the directory named by its key (beside the hidden lock file)
        entries += [os.path.join(cache, key) for key in os.listdir(cache) if not key.startswith(".")]
    return rows, entries


def compare_entries(first, second):
    """Whether two cache entries are the same bytes, and how far apart their logits are if not."""
    import numpy as np

    same_bytes = all(filecmp.cmp(os.path.join(first, f), os.path.join(second, f), shallow=False)
                     for f in ("outputs.npz", "manifest.json"))
    a, b = (np.load(os.path.join(e, "outputs.npz"), allow_pickle=True) for e in (first, second))
    diff = {"same_key": os.path.basename(first) == os.path.basename(second), "identical_bytes": same_bytes,
            "same_sentences": bool((a["sentences"] == b["sentences"]).all())}
    for name in ("logits", "dev_logits"):
        diff[f"{name}_max_abs_diff"] = float(np.abs(a[name] - b[name]).max())
        diff[f"{name}_same_argmax"] = float((a[name].argmax(-1) == b[name].argmax(-1)).mean())
    return diff


def speed(args, tmp):
    """Timings on an idle machine: labelling ~20k sentences and a student epoch, 1 process vs 2."""
    rows, entries = label(args, tmp, SETUPS, n_iter=1)
    # 2 threads in one process and 1 in each of two sum in other orders: the last bits may differ
    return {"labelling": {"runs": rows, "entries_compared": compare_entries(*entries)},
            "student_epoch": student_epoch(tmp)}


def identity(args, tmp):
    """The sharded cache entry against one process's at the same threads per process (untimed)."""
    rows, entries = label(args, tmp, [(1, 1), (2, 1)], n_iter=0)
    return {"identity": {"runs": rows, "entries_compared": compare_entries(*entries)}}


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
    parser.add_argument("what", choices=["speed", "identity"])
    parser.add_argument("--teacher_run", default=TEACHER_OUTPUT, help="bench_teacher.py train's output")
    parser.add_argument("--results", default=None, help="default: bench/results/distributed_WHAT.json")
    args = parser.parse_args()
    teacher_dir(args)  # a finished teacher, before any work
    with tempfile.TemporaryDirectory() as tmp:
        result = {"speed": speed, "identity": identity}[args.what](args, tmp)
    write_results(args.results or os.path.join(ROOT, "bench", "results", f"distributed_{args.what}.json"),
                  {**result, "cpu": cpu_model(),
                   "teacher": "m3e-small (offline), fine-tuned by bench_teacher.py train"})


if __name__ == "__main__":
    main()
