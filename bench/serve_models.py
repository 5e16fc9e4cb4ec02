"""The models bench_serve.py times, built by their names in its tables: students, TinyBERT, the teachers."""
import argparse
import os
import re

from common import ROOT, fetch_offline_teacher  # first: it puts the project on sys.path
from robustness_configs import CONFIGS, WORD_JOBS
from checkpoint import read_checkpoint_meta
from utils import InputError

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
    return build_student(student_config(args, vocab, num_classes, pairs=False))


def family_run(text):
    """--family_students' value: bench_robustness.py's run name of a word student, <student>-<configuration>."""
    from args import STUDENTS

    student, _, config = text.partition("-")
    if student not in STUDENTS or config not in CONFIGS or CONFIGS[config][0] not in WORD_JOBS:
        raise argparse.ArgumentTypeError(f"{text!r}: not a run of bench_robustness.py's word students "
                                         "(<student>-<configuration>, e.g. bow-alpha0.5_paddlenlp)")
    return text


def family_args(run, data_dir):
    """(job, its flags parsed) of a bench_robustness.py run: its recipe and configuration, as its command gives
    them. The teacher is never read: a student's shape and vocabulary do not depend on it."""
    from args import parse_args, recipe

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
    from students import build_student, student_config, student_dictionary, student_vocab
    from transfer import transfer_set, unlabeled_sentences

    job, args = family_args(run, data_dir)
    splits, labels = load_local_splits(data_dir)
    sentences = segment([ex["text"] for ex in splits["train"]])
    if job == "distill":
        sentences = transfer_set(args, sentences, segment(unlabeled_sentences(args, pairs=False)))[0]
    vocab = student_vocab(args, student_dictionary(args), sentences)
    return build_student(student_config(args, vocab, len(labels), pairs=False)), vocab, labels, args


def tinybert_name(layers_by_width):
    """tinybert-L<layers>-h<width> of a --tinybert value LxW."""
    layers, width = layers_by_width.lower().split("x")
    return f"tinybert-L{int(layers)}-h{int(width)}"


def tinybert_student(name, teacher, num_classes):
    """A transformer student of tinybert_distill.py (its config rule) from the m3e-small teacher's config."""
    from types import SimpleNamespace

    from tinybert import student_config

    layers, width = (int(part[1:]) for part in name.split("-")[1:])
    sizes = SimpleNamespace(num_layers=layers, hidden_size=width, intermediate_size=None)
    return type(teacher)(student_config(sizes, teacher.config, num_classes))


def build(model_name, student_checkpoint, data_dir, family=None, teacher_checkpoint=None):
    """(eager model, export kwargs) for a model name, of a student checkpoint or of a bench_robustness.py run
    (family) if given, m3e-small of a fine-tuned teacher checkpoint if given (its task's input: a pair task's
    teacher reads both texts); everything the exporter needs."""
    import paddlenlp.transformers as T

    from data import lean_vocab, load_local_splits, load_vocab, segment, vocab_words
    from inference import STUDENT_INPUTS, TEACHER_INPUTS, student_from_checkpoint, teacher_from_checkpoint
    from teacher import load_teacher

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
    if model_name == "m3e-small" and teacher_checkpoint:
        model, specs, config, tokenizer = teacher_from_checkpoint(teacher_checkpoint,
                                                                  read_checkpoint_meta(teacher_checkpoint))
        return model, specs, config, tokenizer.save_pretrained
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
