"""Robustness: in-domain (ChnSentiCorp dev) and out-of-domain accuracy of the teacher and of the
Bi-LSTM alone and distilled, over training seeds, and which part of distillation buys it.

    python bench/bench_robustness.py teacher                          # the fine-tuned teacher, exported
    python bench/bench_robustness.py logits CONFIG                    # its teacher logits, cached (launcher too)
    python bench/bench_robustness.py run CONFIG [--student bilstm] [--seeds 1 7 2021]   # a run per seed
    python bench/bench_robustness.py unseen CONFIG [--student bilstm]  # its checkpoints, unseen words as characters
    python bench/bench_robustness.py lengths CONFIG [--student bilstm] # its checkpoints' accuracy by sentence length
    python bench/bench_robustness.py oov                              # unseen words, script and length, per set
    python bench/bench_robustness.py parameters                       # fill older results' parameter counts
    python bench/bench_robustness.py table                            # the tables, from the results

The out-of-domain set is ../shared/data/ood/shopping5.tsv (2,000 reviews of products ChnSentiCorp
never covers). Runs score it with --eval_sets: the best dev checkpoint, which it never chooses.
The teacher (bench_teacher.py train's) is exported and scored by predict.py --eval, as a user would.
CONFIG is a key of CONFIGS (robustness_configs.py): the recipes of the README and the ablation of
distillation, for any --student of students.py, and TinyBERT's stages with and without augmentation
(tinybert_*). Each run writes bench/results/robustness/<student>-<config>/seed<N>.json (<config>/ for
TinyBERT) when it ends; finished seeds are skipped and an interrupted one continues from its last/
checkpoint (kept in $DISTILL_LSTM_CACHE/robustness), so a series can span sessions. Distillation runs
of every seed share one transfer set (--data_seed) and its cached teacher logits.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

# common first: it puts the project on sys.path
from common import ROOT, SHARED_DATA, TEACHER_OUTPUT, cpu_model, teacher_dir, write_results, write_unseen_dev
from args import STUDENTS  # noqa: E402, I001
from robustness_analyses import lengths, measured_unseen, oov, parameters, stage1_losses, table, unseen
from robustness_configs import CONFIGS, OOD, RESULTS, SEEDS, WORD_JOBS, command, run_dir, run_name, transfer


def run(args):
    for seed in args.seeds:
        name = run_name(args.student, args.config)
        path = os.path.join(RESULTS, name, f"seed{seed}.json")
        if measured_unseen(path):
            print(f"{path}: done, skipped")
            continue
        output_dir = run_dir(name, seed)
        cmd = command(args, args.config, seed, output_dir)
        print("running:", " ".join(cmd[1:]), flush=True)
        if not os.path.isfile(os.path.join(output_dir, "summary.json")):
            subprocess.run(cmd, cwd=ROOT, check=True)
        with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)
        write_results(path, {
            "student": args.student, "config": args.config, "seed": seed, "dev_acc": summary["best_dev_acc"],
            "dev_unseen_acc": summary["dev_unseen_acc"], "ood_acc": summary["eval_sets"][OOD[0]]["acc"],
            "best_step": summary["best_step"], "teacher_dev_acc": summary.get("teacher_dev_acc"),
            "teacher_dev_unseen_acc": summary.get("teacher_dev_unseen_acc"), "transfer_set": summary.get("transfer_set"),
            "parameters": summary.get("parameters"),
            "dev_curve": summary["dev_acc"], **stage1_losses(output_dir),
            # over every session a resumed run spanned (this process may have run only its last part)
            "epoch_seconds": summary["epoch_seconds"], "train_minutes": sum(summary["epoch_seconds"]) / 60,
            "threads": args.num_threads, "cpu": cpu_model(),
            "teacher": "m3e-small (offline), fine-tuned by bench_teacher.py train",
            "command": " ".join(cmd[1:])})


def logits(args):
    """Fill the teacher-logits cache of a distillation configuration's transfer set, training
    nothing: its seeds then train side by side on one thread each (the teacher's pass gains from
    both cores, a Bi-LSTM seed little), instead of seed 1 training alone on two. Runs under
    paddle.distributed.launch too (each process labels its share)."""
    transfer(args, args.config)


def predict_accuracy(model_dir, path, num_threads):
    """predict.py --eval's accuracy on a labelled tsv."""
    done = subprocess.run([sys.executable, "predict.py", "--model_dir", model_dir, "--input", path,
                           "--text_column", "text_a", "--eval", "--device", "cpu", "--num_threads",
                           str(num_threads)], cwd=ROOT, check=True, capture_output=True, text=True)
    return float(re.search(r"accuracy ([0-9.]+) on (\d+) labelled lines", done.stderr)[1])


def teacher(args):
    """The fine-tuned teacher's dev, dev-unseen and out-of-domain accuracy, through export_model.py and predict.py."""
    best = teacher_dir(args)
    with open(os.path.join(best, "checkpoint.json"), encoding="utf-8") as f:
        seed = json.load(f)["args"]["seed"]
    with tempfile.TemporaryDirectory() as tmp:
        export = os.path.join(tmp, "teacher")
        subprocess.run([sys.executable, "export_model.py", "--checkpoint", best, "--output_dir", export],
                       cwd=ROOT, check=True)
        unseen_dev = os.path.join(tmp, "dev_unseen.tsv")
        unseen_rows = write_unseen_dev(os.path.join(SHARED_DATA, "chnsenticorp"), unseen_dev)
        start = time.time()
        dev = predict_accuracy(export, os.path.join(SHARED_DATA, "chnsenticorp", "dev.tsv"), args.num_threads)
        dev_unseen = predict_accuracy(export, unseen_dev, args.num_threads)
        ood = predict_accuracy(export, OOD[1], args.num_threads)
    write_results(os.path.join(RESULTS, "teacher", f"seed{seed}.json"), {
        "config": "teacher", "seed": seed, "dev_acc": dev, "dev_unseen_acc": dev_unseen, "dev_unseen_examples": unseen_rows,
        "ood_acc": ood, "predict_minutes": (time.time() - start) / 60,
        "teacher": "m3e-small (offline), fine-tuned by bench_teacher.py train", "run": best})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["teacher", "logits", "run", "unseen", "lengths", "oov", "parameters",
                                         "table"])
    parser.add_argument("config", nargs="?", choices=list(CONFIGS),
                        help="logits, run, unseen, lengths: the configuration")
    parser.add_argument("--student", choices=STUDENTS, default="bilstm", help="run, unseen, lengths: the student")
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS, help="run, unseen, lengths: training seeds")
    parser.add_argument("--teacher_run", default=TEACHER_OUTPUT, help="bench_teacher.py train's output")
    parser.add_argument("--num_threads", type=int, default=2)
    args = parser.parse_args()
    if args.what in ("logits", "run", "unseen", "lengths") and not args.config:
        parser.error(f"{args.what} needs a CONFIG")
    if args.what in ("unseen", "lengths") and CONFIGS[args.config][0] not in WORD_JOBS:
        parser.error(f"{args.what} reads word students' checkpoints")
    if args.what == "logits" and CONFIGS[args.config][0] != "distill":
        parser.error("logits fills the cache of teacher_student_distill.py's configurations")
    {"teacher": teacher, "logits": logits, "run": run, "unseen": unseen, "lengths": lengths, "oov": oov,
     "parameters": parameters, "table": table}[args.what](args)


if __name__ == "__main__":
    main()
