"""Serving speed on this CPU: the students against the teachers, eager and exported, oneDNN off and on.

    python bench/bench_serve.py [--student_checkpoint DIR ...] [--sentences 300]
    python bench/bench_serve.py --family_students bow-alpha0.5_paddlenlp gru-alpha0.5_h100 \
        --modes exported --batch_sizes 1 --warm_pass --repeats 3  # each model at its best setting, x the teachers
    python bench/bench_serve.py --student_checkpoint DIR --teachers --modes exported --threads 1 \
        --batch_sizes 1 --sentences 0 --warm_pass --stages   # where a student's time goes
    python bench/bench_serve.py --data_dir ../shared/data/lcqmc --student_checkpoint DIR ... --teachers m3e-small \
        --teacher_checkpoint DIR --modes exported --batch_sizes 1 --warm_pass --repeats 3   # a pair task's models

Models: each student checkpoint given (the Bi-LSTM named by its size, e.g. student-h300, others by
type and size, e.g. textcnn-h300); students of random weights (speed does not depend on the
weights) of the recipe's shape (--random_students; without any student, a Bi-LSTM of the
ChnSentiCorp student's shape) or of a bench_robustness.py run's (--family_students: its configuration's
shape over the vocabulary its job builds, named as --random_students name them),
TinyBERT students of tinybert_distill.py's shape (--tinybert 2x256: random weights, m3e-small's
tokenizer), the offline teacher m3e-small, and an ernie-gram-zh-shaped teacher (PaddleNLP's registered
config, random weights, the bert-base-chinese tokenizer, so its
vocabulary is 21,128 rows instead of 18,018). For each: batch 1 and 64, 1 thread and the machine's, eager
Paddle and the exported model through paddle.inference, the latter with oneDNN off and on (Paddle 3.3.1's
eager mode runs its plain CPU kernels whatever FLAGS_use_onednn says), over ChnSentiCorp dev sentences;
tokenization is included in the timings (it is part of serving). Each configuration runs in its
own process, so peak memory is its own. Every row goes to bench/results/serve.json; the summary takes each
exported model at its faster oneDNN setting and gives its multiple of m3e-small (the teacher whose
accuracies the students report), then of the ernie-gram-zh shape (the online recipe's teacher).
"""
import argparse
import json
import os
import resource
import sys
import tempfile

import numpy as np

from common import ROOT, SHARED, cpu_model, write_results  # first: it puts the project on sys.path
from args import default_num_threads  # noqa: E402, I001
from serve_models import TEACHERS, build, family_name, family_run, random_student_name, student_name, tinybert_name
from serve_speeds import print_best, print_rows, speed_cell, time_batches, time_configuration, time_stages
from utils import InputError, is_amd_cpu, run_main


def one(args):
    """Time one (model, mode, threads, oneDNN setting) configuration at each of --batch_sizes; print JSON."""
    import paddle

    from data import load_local_splits
    from inference import Predictor, export

    if is_amd_cpu():  # as the scripts do (utils.init_runtime), for eager and exported alike
        os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    threads, mode = args.threads[0], args.modes[0]
    onednn = mode == "exported" and args.onednn[0] == "on"  # eager Paddle runs its plain kernels either way
    paddle.base.core.set_num_threads(threads)
    texts = [ex["text"] for ex in load_local_splits(args.data_dir)[0]["dev"]][:args.sentences or None]
    with paddle.utils.unique_name.guard():
        model, specs, config, save_vocab = build(args.model, args.student_checkpoint, args.data_dir,
                                                 args.family_students, args.teacher_checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        export_dir = os.path.join(tmp, "export")
        export(model, specs, config, export_dir, save_vocab)
        size_mb = os.path.getsize(os.path.join(export_dir, "inference.pdiparams")) / 2 ** 20
        predictor = Predictor(export_dir, "cpu", threads, onednn)
        rows = []
        for batch_size in args.batch_sizes:
            if mode == "exported":
                run = lambda batch: predictor.probabilities(batch)  # noqa: E731
            else:
                def run(batch):
                    with paddle.no_grad():
                        inputs = [paddle.to_tensor(a) for a in predictor.inputs(batch)]
                        return paddle.nn.functional.softmax(model(*inputs)).numpy()
            rows.append(time_batches(run, texts, batch_size, args.warm_pass, args.repeats))
            if args.stages and mode == "exported" and batch_size == 1:
                rows[-1]["stages"] = time_stages(predictor, texts)
        eager_equal = None
        if mode == "exported":
            with paddle.no_grad():
                eager = paddle.nn.functional.softmax(model(*[paddle.to_tensor(a) for a in predictor.inputs(texts[:64])]))
            exported = predictor.probabilities(texts[:64])
            eager_equal = {"max_abs_diff": float(np.abs(eager.numpy() - exported).max()),
                           "same_labels": bool((eager.numpy().argmax(-1) == exported.argmax(-1)).all())}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for row in rows:
        row.update(model=args.model, mode=mode, threads=threads, onednn=onednn if mode == "exported" else None,
                   size_mb=size_mb, peak_rss_mib=peak, eager_vs_exported=eager_equal)
    print(json.dumps(rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="all", choices=["all", "one"])
    parser.add_argument("--data_dir", default=os.path.join(SHARED, "data", "chnsenticorp"))
    parser.add_argument("--student_checkpoint", action="append", default=None,
                        help="a student checkpoint to time; repeat for several (one: `one` mode)")
    parser.add_argument("--random_students", nargs="+", type=random_student_name, metavar="STUDENT[-hSIZE]",
                        help="students of random weights to time (speed does not depend on the weights), at the "
                             "recipe's sizes or the hidden size given (e.g. gru-h128); without checkpoints or "
                             "these, a Bi-LSTM ('student')")
    parser.add_argument("--family_students", nargs="+", type=family_run, metavar="STUDENT-CONFIGURATION",
                        help="students of random weights of these bench_robustness.py runs (e.g. "
                             "bow-alpha0.5_paddlenlp): the configuration's shape and the vocabulary its job builds; "
                             "named by student and hidden size as --random_students (bow-h128)")
    parser.add_argument("--sentences", type=int, default=300,
                        help="dev sentences timed per configuration, from the first; 0: all 1,200")
    parser.add_argument("--teachers", nargs="*", choices=TEACHERS, default=TEACHERS)
    parser.add_argument("--teacher_checkpoint", help="m3e-small as this fine-tuned checkpoint (e.g. LCQMC's: its task's "
                                                     "input, both texts of a pair), not the random-head offline model")
    parser.add_argument("--tinybert", nargs="*", default=[], metavar="LAYERSxWIDTH",
                        help="tinybert_distill.py students of these sizes (e.g. 2x256), random weights, the "
                             "m3e-small tokenizer; named tinybert-L2-h256")
    parser.add_argument("--modes", nargs="+", choices=["eager", "exported"], default=["eager", "exported"])
    parser.add_argument("--threads", nargs="+", type=int, default=sorted({1, default_num_threads()}),
                        help="CPU threads (default: 1 and the machine's)")
    parser.add_argument("--onednn", nargs="+", choices=["off", "on"], default=["off", "on"],
                        help="exported models: paddle.inference with oneDNN off, on, or each")
    parser.add_argument("--batch_sizes", nargs="+", type=int, default=[1, 64])
    parser.add_argument("--warm_pass", action="store_true",
                        help="time a second pass over the sentences, after an untimed first one")
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed passes per configuration; sentences/s is their median")
    parser.add_argument("--stages", action="store_true",
                        help="exported, batch 1: one more pass timing input making and the model run apart")
    parser.add_argument("--model", help="`one` mode: the model timed")
    parser.add_argument("--results", default=os.path.join(ROOT, "bench", "results", "serve.json"))
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.what == "one":
        args.student_checkpoint = (args.student_checkpoint or [None])[0]
        args.family_students = (args.family_students or [None])[0]
        return one(args)
    students = {student_name(c): c for c in args.student_checkpoint or []}
    family = {family_name(run, args.data_dir): run for run in args.family_students or []}
    if len(students) < len(args.student_checkpoint or []) or len(family) < len(args.family_students or []) \
            or students.keys() & family.keys():
        raise InputError("two --student_checkpoint or --family_students of the same student and size: their rows "
                         "would share one name")
    students.update(dict.fromkeys(family))
    for name in args.random_students or ([] if students else ["student"]):  # speed does not depend on weights
        students.setdefault(name, None)
    models, rows = [*students, *map(tinybert_name, args.tinybert), *args.teachers], []
    for model in models:
        for threads in args.threads:
            for mode in args.modes:
                for onednn in args.onednn if mode == "exported" else [None]:
                    command = [sys.executable, __file__, "one", "--model", model, "--modes", mode, "--threads",
                               str(threads), "--sentences", str(args.sentences), "--data_dir", args.data_dir,
                               "--repeats", str(args.repeats), "--batch_sizes", *map(str, args.batch_sizes)]
                    command += ["--warm_pass"] * args.warm_pass + ["--stages"] * args.stages
                    command += ["--onednn", onednn] if onednn else []
                    if students.get(model):
                        command += ["--student_checkpoint", students[model]]
                    if model in family:
                        command += ["--family_students", family[model]]
                    if model == "m3e-small" and args.teacher_checkpoint:
                        command += ["--teacher_checkpoint", args.teacher_checkpoint]
                    configuration = time_configuration(command, args.batch_sizes, model=model, mode=mode,
                                                       threads=threads, onednn=onednn == "on")
                    rows += configuration
                    print(f"{model} {mode}{f' oneDNN {onednn}' if onednn else ''} {threads} thread(s): "
                          + ", ".join(f"batch {r['batch_size']}: {speed_cell(r)}" for r in configuration), flush=True)
    print_rows(rows)
    print_best(rows, models, args.threads, args.batch_sizes)
    write_results(args.results, {"rows": rows, "sentences": args.sentences, "warm_pass": args.warm_pass,
                                 "repeats": args.repeats, "students": students, "family_students": family,
                                 "teacher_checkpoint": args.teacher_checkpoint, "data_dir": args.data_dir,
                                 "cpu": cpu_model()})


if __name__ == "__main__":
    run_main(main)
