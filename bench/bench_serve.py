"""Serving speed on this CPU: the students against the teachers, eager and exported, oneDNN off and on.

    python bench/bench_serve.py [--student_checkpoint DIR ...] [--sentences 300]
    python bench/bench_serve.py --family_students bow-alpha0.5_paddlenlp gru-alpha0.5_h100 \
        --modes exported --batch_sizes 1 --warm_pass --repeats 3  # each model at its best setting, x the teachers
    python bench/bench_serve.py --student_checkpoint DIR --teachers --modes exported --threads 1 \
        --batch_sizes 1 --sentences 0 --warm_pass --stages   # where a student's time goes

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
from args import default_num_threads  # noqa: E402
from utils import InputError, is_amd_cpu, read_checkpoint_meta, run_main  # noqa: E402

TEACHERS = ["m3e-small", "ernie-gram-zh-shaped"]
# What the multiples are of, first to last: the teacher whose accuracies the students report, then the shape of the
# teacher the online recipe fine-tunes (random weights: its accuracy is not measured here)
REFERENCES = {"m3e-small": "m3e-small", "ernie-gram-zh-shaped": "ernie-gram-zh shape (the online recipe's teacher)"}
# An exported model's probabilities further than this from the eager model's are a wrong kernel's (Paddle's issues
# report oneDNN outputs that differ for some models), not fp32 sums added in another order (about 1e-7)
AGREEMENT = 1e-3


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


def family_run(text):
    """--family_students' value: bench_robustness.py's run name of a word student, <student>-<configuration>."""
    from args import STUDENTS
    from bench_robustness import CONFIGS, WORD_JOBS

    student, _, config = text.partition("-")
    if student not in STUDENTS or config not in CONFIGS or CONFIGS[config][0] not in WORD_JOBS:
        raise argparse.ArgumentTypeError(f"{text!r}: not a run of bench_robustness.py's word students "
                                         "(<student>-<configuration>, e.g. bow-alpha0.5_paddlenlp)")
    return text


def family_args(run, data_dir):
    """(job, its flags parsed) of a bench_robustness.py run: its recipe and configuration, as its command gives
    them. The teacher is never read: a student's shape and vocabulary do not depend on it."""
    from args import parse_args, recipe
    from bench_robustness import CONFIGS

    student, _, config = run.partition("-")
    job, flags, _ = CONFIGS[config]
    argv = [*recipe(job), "--student", student, *flags, "--data_dir", data_dir]
    args = parse_args(job, argv + ["--teacher_dir", "unread"] * (job == "distill"))
    args.vocab_path = os.path.join(ROOT, args.vocab_path)  # the recipe's: relative to the repository, where runs start
    return job, args


def family_name(run, data_dir):
    """serve_name of a run's student: bow-h128 for bow-alpha0.5_paddlenlp (the frontier's member of that shape)."""
    _, args = family_args(run, data_dir)
    return serve_name(args.student, args.hidden_size)


def family_student(run, data_dir):
    """(student of random weights, vocabulary, labels, job flags) of a bench_robustness.py run: its configuration's
    shape over the vocabulary its job builds, from the training sentences or, distilling, from the transfer set
    (the unlabelled sentences and augmented copies its flags add): the embedding table its accuracies had."""
    from data import load_local_splits, segment
    from student_lstm_small import student_dictionary, student_vocab
    from students import build_student, student_config
    from teacher_student_distill import transfer_set, unlabeled_sentences

    job, args = family_args(run, data_dir)
    splits, labels = load_local_splits(data_dir)
    sentences = segment([ex["text"] for ex in splits["train"]])
    if job == "distill":
        sentences = transfer_set(args, sentences, segment(unlabeled_sentences(args)))[0]
    vocab = student_vocab(args, student_dictionary(args), sentences)
    return build_student(student_config(args, vocab, len(labels))), vocab, labels, args


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


def build(model_name, student_checkpoint, data_dir, family=None):
    """(eager model, export kwargs) for a model name, of a student checkpoint or of a bench_robustness.py run
    (family) if given; everything the exporter needs."""
    import paddlenlp.transformers as T

    from data import lean_vocab, load_local_splits, load_vocab, segment, vocab_words
    from export_model import STUDENT_INPUTS, TEACHER_INPUTS, student_from_checkpoint
    from teacher_train_glue import load_teacher

    labels = ["0", "1"]
    tinybert = model_name.startswith("tinybert-")  # tinybert_name()'s: tinybert_distill.py's student, random weights
    if model_name not in TEACHERS and not tinybert:  # a word student (student_name(), family_name())
        if student_checkpoint:
            meta = read_checkpoint_meta(student_checkpoint)
            model, specs, config = student_from_checkpoint(student_checkpoint, meta)
            vocab = meta["vocab"]
        elif family:
            model, vocab, labels, job = family_student(family, data_dir)
            vocab = vocab_words(vocab)
            config = {"kind": "student", "labels": labels, "max_seq_length": job.max_seq_length,
                      "unseen_words": job.unseen_words}
            specs = STUDENT_INPUTS
        else:
            splits, labels = load_local_splits(data_dir)
            vocab = lean_vocab(load_vocab(os.path.join(ROOT, "senta_word_dict.txt")),
                               segment([ex["text"] for ex in splits["train"]]))
            model = random_student(model_name, vocab, len(labels))
            vocab = vocab_words(vocab)
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
    """Time one (model, mode, threads, oneDNN setting) configuration at each of --batch_sizes; print JSON."""
    import paddle

    from data import load_local_splits
    from export_model import export
    from predict import Predictor

    if is_amd_cpu():  # as the scripts do (utils.init_runtime), for eager and exported alike
        os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    threads, mode = args.threads[0], args.modes[0]
    onednn = mode == "exported" and args.onednn[0] == "on"  # eager Paddle runs its plain kernels either way
    paddle.base.core.set_num_threads(threads)
    texts = [ex["text"] for ex in load_local_splits(args.data_dir)[0]["dev"]][:args.sentences or None]
    with paddle.utils.unique_name.guard():
        model, specs, config, save_vocab = build(args.model, args.student_checkpoint, args.data_dir,
                                                 args.family_students)
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


def time_configuration(command, batch_sizes, **configuration):
    """The rows `one` prints for a configuration (model, mode, threads, onednn). With oneDNN on, a process that
    fails gives rows saying so: Paddle's oneDNN kernels do not run every model, and that is a result. Any other
    failure stops the bench."""
    out = subprocess.run(command, check=not configuration["onednn"], capture_output=True, text=True)
    if out.returncode:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        return [{**configuration, "batch_size": batch, "error": f"failed (exit status {out.returncode}): {last}"}
                for batch in batch_sizes]
    return json.loads(out.stdout.strip().splitlines()[-1])


def setting(row):
    """oneDNN "on" or "off" of an exported row (off in results from before it was recorded), "" of an eager one."""
    return "" if row["mode"] == "eager" else "on" if row.get("onednn") else "off"


def agrees(row):
    """Whether an exported row ran and gave the eager model's probabilities."""
    return "error" not in row and row["eager_vs_exported"]["max_abs_diff"] <= AGREEMENT


def best_exported(rows):
    """{(model, threads, batch size): the fastest exported row of its oneDNN settings}, of the settings that ran
    and gave the eager model's probabilities."""
    best = {}
    for r in rows:
        key = (r["model"], r["threads"], r["batch_size"])
        if r["mode"] == "exported" and agrees(r) and (
                key not in best or r["sentences_per_second"] > best[key]["sentences_per_second"]):
            best[key] = r
    return best


def times(ratio):
    """A speed multiple as the tables write it: one decimal below 20x."""
    return f"{ratio:.1f}x" if ratio < 20 else f"{ratio:.0f}x"


def multiple(mine, theirs):
    """Median speed over median speed of two rows, and its range over pass pairings (my slowest pass with
    their fastest .. the reverse)."""
    mine, theirs = mine["sentences_per_second_passes"], theirs["sentences_per_second_passes"]
    return (f"{times(np.median(mine) / np.median(theirs))} "
            f"({times(min(mine) / max(theirs))} .. {times(max(mine) / min(theirs))})")


def speed_cell(row):
    """A row's sentences/s in the tables, or why it has none."""
    if row is None:
        return "-"
    if "error" in row:
        return row["error"]
    return f"{row['sentences_per_second']:.1f}" + ("" if row["mode"] == "eager" or agrees(row) else
                                                   " (not the eager model's outputs)")


def print_rows(rows):
    print("\n| model | mode | oneDNN | threads | batch | sentences/s | p50 ms | p99 ms | size MB | peak RSS MiB "
          "| max probability difference from eager |")
    print("|---" * 11 + "|")
    for r in rows:
        cells = [r["model"], r["mode"], setting(r), r["threads"], r["batch_size"], speed_cell(r)]
        if "error" not in r:
            diff = r["eager_vs_exported"] and f"{r['eager_vs_exported']['max_abs_diff']:.1e}"
            cells += [f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['size_mb']:.0f}", f"{r['peak_rss_mib']:.0f}",
                      diff or ""]
        print("| " + " | ".join(map(str, cells)) + " |" + " |" * (11 - len(cells)))
    staged = [r for r in rows if "stages" in r]
    if staged:
        print("\n| model | oneDNN | threads | inputs (tokenization, ids) ms/sentence | model run ms/sentence |\n"
              "|---|---|---|---|---|")
        for r in staged:
            print(f"| {r['model']} | {setting(r)} | {r['threads']} | {r['stages']['inputs_ms']:.3f} "
                  f"| {r['stages']['model_ms']:.3f} |")


def print_best(rows, models, threads, batch_sizes):
    """Each exported model at its faster oneDNN setting (both settings' speeds beside it), and its multiples of
    the teachers timed (REFERENCES' order) at the same threads and batch: median (pass pairings)."""
    best = best_exported(rows)
    if not best:
        return
    exported = {(r["model"], r["threads"], r["batch_size"], setting(r)): r for r in rows if r["mode"] == "exported"}
    references = [name for name in REFERENCES if any(key[0] == name for key in best)]
    columns = ["model", "threads", "batch", "sentences/s at the faster setting", "oneDNN off / on",
               *(f"x {REFERENCES[name]}" for name in references)]
    print("\n| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
    for key in [(model, n, batch) for model in models for n in threads for batch in batch_sizes]:
        if key in best:
            mine = best[key]
            cells = [*key, f"{mine['sentences_per_second']:.1f} (oneDNN {setting(mine)})",
                     " / ".join(speed_cell(exported.get((*key, on))) for on in ("off", "on"))]
            cells += [multiple(mine, best[(name, *key[1:])]) if (name, *key[1:]) in best else "-"
                      for name in references]
            print("| " + " | ".join(map(str, cells)) + " |")


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
                    configuration = time_configuration(command, args.batch_sizes, model=model, mode=mode,
                                                       threads=threads, onednn=onednn == "on")
                    rows += configuration
                    print(f"{model} {mode}{f' oneDNN {onednn}' if onednn else ''} {threads} thread(s): "
                          + ", ".join(f"batch {r['batch_size']}: {speed_cell(r)}" for r in configuration), flush=True)
    print_rows(rows)
    print_best(rows, models, args.threads, args.batch_sizes)
    write_results(args.results, {"rows": rows, "sentences": args.sentences, "warm_pass": args.warm_pass,
                                 "repeats": args.repeats, "students": students, "family_students": family,
                                 "cpu": cpu_model()})


if __name__ == "__main__":
    run_main(main)
