"""Serving speed on this CPU: the students against the teachers, eager and exported.

    python bench/bench_serve.py [--student_checkpoint DIR ...] [--sentences 300]
    python bench/bench_serve.py --student_checkpoint DIR --teachers ernie-gram-zh-shaped \
        --modes exported --threads 1 --batch_sizes 1 --sentences 0 --warm_pass --repeats 3  # the headline
    python bench/bench_serve.py --student_checkpoint DIR --teachers --modes exported --threads 1 \
        --batch_sizes 1 --sentences 0 --warm_pass --stages   # where a student's time goes

Models: each student checkpoint given (the Bi-LSTM named by its size, e.g. student-h300, others by
type and size, e.g. textcnn-h300; without any, a Bi-LSTM of random weights of the ChnSentiCorp
student's shape: speed does not depend on the weights),
TinyBERT students of tinybert_distill.py's shape (--tinybert 2x256: random weights, m3e-small's
tokenizer), the offline teacher m3e-small, and an ernie-gram-zh-shaped teacher (PaddleNLP's registered
config, random weights, the bert-base-chinese tokenizer, so its
vocabulary is 21,128 rows instead of 18,018). For each: batch 1 and 64, 1 and 2 threads, eager
Paddle and the exported model through paddle.inference, over ChnSentiCorp dev sentences;
tokenization is included in the timings (it is part of serving). Each configuration runs in its
own process, so peak memory is its own. The table goes to bench/results/serve.json.
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_teacher import SHARED, cpu_model, fetch_offline_teacher, write_results  # noqa: E402
from utils import InputError, is_amd_cpu, read_checkpoint_meta, run_main  # noqa: E402

TEACHERS = ["m3e-small", "ernie-gram-zh-shaped"]


def serve_name(student, hidden_size):
    """A student's name in the tables: student-h<size> for the Bi-LSTM, <type>-h<size> for others."""
    return f"{'student' if student == 'bilstm' else student}-h{hidden_size}"


def student_name(checkpoint):
    """serve_name of a student checkpoint; "student" for a Bi-LSTM of random weights (no checkpoint)."""
    if not checkpoint:
        return "student"
    meta = read_checkpoint_meta(checkpoint)
    if "vocab" not in meta:  # as export_model.py tells the two kinds apart
        raise InputError(f"{checkpoint}: a teacher checkpoint, not a student's")
    return serve_name(meta["model"].get("student", "bilstm"), meta["model"]["hidden_size"])


def random_student_name(text):
    """--random_students' KIND or KIND-h<hidden size> -> its name in the tables (serve_name; the hidden size
    defaults to the recipe's 300); "student" stays the Bi-LSTM of the recipe's sizes."""
    from args import STUDENTS

    if text == "student":
        return text
    match = re.fullmatch(rf"({'|'.join(STUDENTS)})(?:-h([1-9][0-9]*))?", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: not a student ({', '.join(STUDENTS)}), with an optional "
                                         "-h<hidden size>, e.g. gru-h128")
    return serve_name(match[1], int(match[2] or 300))


def random_student(name, vocab, num_classes):
    """A student of random weights over `vocab`, by its name in the tables (student: the Bi-LSTM): the
    recipe's sizes, and the name's hidden size."""
    from args import parse_args
    from students import build_student, student_config

    kind, _, hidden = name.partition("-h")
    kind = "bilstm" if kind == "student" else kind
    args = parse_args("student", ["--student", kind] + (["--hidden_size", hidden] if hidden else []))
    return build_student(student_config(args, vocab, num_classes))


def tinybert_name(layers_by_width):
    """tinybert-L<layers>-h<width> of a --tinybert value LxW."""
    layers, width = layers_by_width.lower().split("x")
    return f"tinybert-L{int(layers)}-h{int(width)}"


def tinybert_student(name, teacher, num_classes):
    """A transformer student of tinybert_distill.py (its config rule) from the m3e-small teacher's config."""
    from types import SimpleNamespace

    from tinybert_distill import student_config

    layers, width = (int(part[1:]) for part in name.split("-")[1:])
    sizes = SimpleNamespace(num_layers=layers, hidden_size=width, intermediate_size=None)
    return type(teacher)(student_config(sizes, teacher.config, num_classes))


def build(model_name, student_checkpoint, data_dir):
    """(eager model, export kwargs) for a model name; everything the exporter needs."""
    import paddlenlp.transformers as T

    from data import lean_vocab, load_local_splits, load_vocab, segment
    from export_model import STUDENT_INPUTS, TEACHER_INPUTS, student_from_checkpoint
    from teacher_train_glue import load_teacher

    labels = ["0", "1"]
    tinybert = model_name.startswith("tinybert-")  # tinybert_name()'s: tinybert_distill.py's student, random weights
    if model_name not in TEACHERS and not tinybert:  # a word student (student_name())
        if student_checkpoint:
            meta = read_checkpoint_meta(student_checkpoint)
            model, specs, config = student_from_checkpoint(student_checkpoint, meta)
            vocab = meta["vocab"]
        else:
            splits, labels = load_local_splits(data_dir)
            vocab = lean_vocab(load_vocab(os.path.join(ROOT, "senta_word_dict.txt")),
                               segment([ex["text"] for ex in splits["train"]]))
            model = random_student(model_name, vocab, len(labels))
            vocab = vocab.to_tokens(list(range(len(vocab))))
            config = {"kind": "student", "labels": labels, "max_seq_length": 256}
            specs = STUDENT_INPUTS

        def save_vocab(directory):
            with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
                f.write("\n".join(vocab) + "\n")
        return model, specs, config, save_vocab
    offline = fetch_offline_teacher()
    model, tokenizer = load_teacher("bert", offline, labels)
    if tinybert:
        model = tinybert_student(model_name, model, len(labels))
    if model_name == "ernie-gram-zh-shaped":
        shape = dict(T.ErnieGramForSequenceClassification.pretrained_init_configuration["ernie-gram-zh"])
        shape["vocab_size"] = tokenizer.vocab_size
        model = T.ErnieGramForSequenceClassification(T.ErnieGramConfig(**shape, num_classes=2))
    specs = TEACHER_INPUTS
    # model_type names the tokenizer predict.py loads: both teachers read text as BERT does
    config = {"kind": "teacher", "model_type": "bert", "labels": labels, "max_seq_length": 256}
    return model, specs, config, tokenizer.save_pretrained


def one(args):
    """Time one (model, mode, threads) configuration at each of --batch_sizes; print JSON."""
    import paddle

    from data import load_local_splits
    from export_model import export
    from predict import Predictor

    if is_amd_cpu():  # as the scripts do (utils.init_runtime), for eager and exported alike
        os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    threads, mode = args.threads[0], args.modes[0]
    paddle.base.core.set_num_threads(threads)
    texts = [ex["text"] for ex in load_local_splits(args.data_dir)[0]["dev"]][:args.sentences or None]
    with paddle.utils.unique_name.guard():
        model, specs, config, save_vocab = build(args.model, args.student_checkpoint, args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        export_dir = os.path.join(tmp, "export")
        export(model, specs, config, export_dir, save_vocab)
        size_mb = os.path.getsize(os.path.join(export_dir, "inference.pdiparams")) / 2 ** 20
        predictor = Predictor(export_dir, "cpu", threads)
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
        row.update(model=args.model, mode=mode, threads=threads, size_mb=size_mb, peak_rss_mib=peak,
                   eager_vs_exported=eager_equal)
    print(json.dumps(rows))


def time_batches(run, texts, batch_size, warm_pass=False, repeats=1):
    """Sentences per second (the median of `repeats` timed passes, and each pass's) and per-batch
    latency percentiles (over all timed passes). Batch 1 takes the sentences in dev order (online
    serving); larger batches group them by length first, as predict.py does. The timed passes follow
    one warm-up batch, or with warm_pass an untimed pass over all the batches (every input shape seen
    once: the steady state of a server that has been running)."""
    if batch_size > 1:
        texts = sorted(texts, key=len)
    for i in range(0, len(texts) if warm_pass else 1, batch_size):
        run(texts[i:i + batch_size])
    latencies, speeds = [], []
    for _ in range(repeats):
        start = time.time()
        for i in range(0, len(texts), batch_size):
            tick = time.perf_counter()
            run(texts[i:i + batch_size])
            latencies.append(time.perf_counter() - tick)
        speeds.append(len(texts) / (time.time() - start))
    return {"batch_size": batch_size, "sentences_per_second": float(np.median(speeds)),
            "sentences_per_second_passes": speeds,
            "p50_ms": 1000 * float(np.percentile(latencies, 50)), "p99_ms": 1000 * float(np.percentile(latencies, 99))}


def time_stages(predictor, texts):
    """Mean milliseconds per sentence, at batch 1, in making the model's inputs (tokenization, ids)
    and in the exported model's run (with copying the inputs in and the logits out)."""
    spent = {"inputs_ms": 0.0, "model_ms": 0.0}
    for text in texts:
        tick = time.perf_counter()
        arrays = predictor.inputs([text])
        tock = time.perf_counter()
        predictor.logits(arrays)
        spent["inputs_ms"] += tock - tick
        spent["model_ms"] += time.perf_counter() - tock
    return {stage: 1000 * seconds / len(texts) for stage, seconds in spent.items()}


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
    parser.add_argument("--sentences", type=int, default=300,
                        help="dev sentences timed per configuration, from the first; 0: all 1,200")
    parser.add_argument("--teachers", nargs="*", choices=TEACHERS, default=TEACHERS)
    parser.add_argument("--tinybert", nargs="*", default=[], metavar="LAYERSxWIDTH",
                        help="tinybert_distill.py students of these sizes (e.g. 2x256), random weights, the "
                             "m3e-small tokenizer; named tinybert-L2-h256")
    parser.add_argument("--modes", nargs="+", choices=["eager", "exported"], default=["eager", "exported"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
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
        return one(args)
    students = {student_name(c): c for c in args.student_checkpoint or []}
    if len(students) < len(args.student_checkpoint or []):
        raise InputError("two --student_checkpoint of the same student and size: their rows would share one name")
    for name in args.random_students or ([] if students else ["student"]):  # speed does not depend on weights
        students.setdefault(name, None)
    rows = []
    for model in [*students, *map(tinybert_name, args.tinybert), *args.teachers]:
        for threads in args.threads:
            for mode in args.modes:
                command = [sys.executable, __file__, "one", "--model", model, "--modes", mode, "--threads",
                           str(threads), "--sentences", str(args.sentences), "--data_dir", args.data_dir,
                           "--repeats", str(args.repeats), "--batch_sizes", *map(str, args.batch_sizes)]
                command += ["--warm_pass"] * args.warm_pass + ["--stages"] * args.stages
                if students.get(model):
                    command += ["--student_checkpoint", students[model]]
                out = subprocess.run(command, check=True, capture_output=True, text=True)
                configuration = json.loads(out.stdout.strip().splitlines()[-1])
                rows += configuration
                print(f"{model} {mode} {threads} thread(s): "
                      + ", ".join(f"batch {r['batch_size']} {r['sentences_per_second']:.1f}/s" for r in configuration),
                      flush=True)
    print("\n| model | mode | threads | batch | sentences/s | p50 ms | p99 ms | size MB | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['mode']} | {r['threads']} | {r['batch_size']} | {r['sentences_per_second']:.1f} "
              f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['size_mb']:.0f} | {r['peak_rss_mib']:.0f} |")
    staged = [r for r in rows if "stages" in r]
    if staged:
        print("\n| model | threads | inputs (tokenization, ids) ms/sentence | model run ms/sentence |\n|---|---|---|---|")
        for r in staged:
            print(f"| {r['model']} | {r['threads']} | {r['stages']['inputs_ms']:.3f} | {r['stages']['model_ms']:.3f} |")
    passes = {(r["model"], r["mode"], r["threads"], r["batch_size"]): r["sentences_per_second_passes"] for r in rows}
    teacher = ("ernie-gram-zh-shaped", "exported")
    if teacher[0] in args.teachers and "exported" in args.modes:
        print("\n| student | threads | batch | exported student / exported ernie-gram-zh-shaped (median; "
              "slowest student pass / fastest teacher pass .. the reverse) |\n|---|---|---|---|")
        for student in [*students, *map(tinybert_name, args.tinybert)]:
            for threads in args.threads:
                for batch in args.batch_sizes:
                    mine, theirs = passes[(student, "exported", threads, batch)], passes[(*teacher, threads, batch)]
                    print(f"| {student} | {threads} | {batch} | {np.median(mine) / np.median(theirs):.0f}x "
                          f"({min(mine) / max(theirs):.0f}x .. {max(mine) / min(theirs):.0f}x) |")
    write_results(args.results, {"rows": rows, "sentences": args.sentences, "warm_pass": args.warm_pass,
                                 "repeats": args.repeats, "students": students,
                                 "cpu": cpu_model()})


if __name__ == "__main__":
    run_main(main)
