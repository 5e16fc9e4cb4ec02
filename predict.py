"""Classify sentences with a model exported by export_model.py, through paddle.inference.

    echo "房间很干净，服务也好" | python predict.py --model_dir export/student
    python predict.py --model_dir export/student --input dev.tsv --text_column text_a --eval

One output line per input line: the label and each class's probability (text), or a JSON object
(--format json). A line that cannot be classified (empty, longer than --max_chars, not UTF-8)
gets an error line instead; the others are still predicted. Lines are read and answered a batch at a
time as they arrive, so a line written into a pipe is answered at once and memory stays flat
however long the input.
"""
from args import parse_args

if __name__ == "__main__":
    parse_args("predict")  # before Paddle's import (seconds): --help and bad flags answer at once

import contextlib
import json
import logging
import os
import select
import shutil
import sys
import tempfile

import numpy as np
from paddle import inference
from paddlenlp.data import Pad

from data import LAYOUTS, clean_label, load_vocab, segment
from export_model import CONFIG, PREFIX
from teacher_train_glue import encode, teacher_classes, teacher_pads
from utils import InputError, convert_example, file_sha256, is_amd_cpu, require_device, run_main

logger = logging.getLogger("distill_lstm")
# Column names of PaddleNLP's task files (pair tasks add text_b): a first line with them is a
# header, not a sentence.
HEADER_NAMES = {name for layout in LAYOUTS for name in layout} | {"text", "text_b"}
EXPORT_CONFIG_KEYS = {"kind", "labels", "max_seq_length", "text_column", "files"}


def read_export_config(model_dir):
    """predict_config.json, once every file it lists is there with the content export_model.py
    wrote (a missing, truncated or swapped file is named before anything runs)."""
    path = os.path.join(model_dir, CONFIG)
    if not os.path.isfile(path):
        raise InputError(f"{model_dir}: not an exported model (no {CONFIG}; see export_model.py)")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: unreadable ({e})")
    missing = sorted(EXPORT_CONFIG_KEYS - set(config)) if isinstance(config, dict) else ["entries"]
    if missing:
        raise InputError(f"{path}: no {', '.join(missing)}: written by an older or another program; "
                         "export the model again")
    files, labels, kind = config["files"], config["labels"], config["kind"]
    for name in [f"{PREFIX}.json", f"{PREFIX}.pdiparams"] + (["vocab.txt"] if kind == "student" else []):
        if name not in files:
            raise InputError(f"{path}: lists no {name}; export the model again")
    for name, sha256 in files.items():
        file = os.path.join(model_dir, name)
        if not os.path.isfile(file):
            raise InputError(f"{file}: missing: the export is incomplete; export the model again")
        if file_sha256(file) != sha256:
            raise InputError(f"{file}: not the file this export wrote (truncated, changed, or from another "
                             "export); export the model again")
    if not labels:
        raise InputError(f"{path}: no labels")
    return config


class Predictor:
    """An exported student or teacher, run by a paddle.inference predictor."""

    def __init__(self, model_dir, device="cpu", num_threads=1, onednn=False):
        self.model_dir = model_dir
        self.config = read_export_config(model_dir)
        self.labels, self.max_seq_length = self.config["labels"], self.config["max_seq_length"]
        self.text_column = self.config["text_column"]
        if self.config["kind"] == "student":
            self.vocab = load_vocab(os.path.join(model_dir, "vocab.txt"))
        else:
            try:
                self.tokenizer = teacher_classes(self.config["model_type"])[1].from_pretrained(model_dir)
            except Exception as e:  # PaddleNLP raises many kinds for tokenizer files it cannot use
                raise InputError(f"{model_dir}: cannot load the tokenizer ({type(e).__name__}: {e})")
        self.onednn = onednn
        self.predictor = create_predictor(model_dir, device, num_threads, onednn)

    def inputs(self, texts):
        if self.config["kind"] == "student":
            ids, lengths = zip(*(convert_example(words or ["[UNK]"], self.vocab, self.max_seq_length,
                                                 self.config.get("unseen_words", "unk"))
                                 for words in segment(texts)))
            return [Pad(pad_val=self.vocab.to_indices("[PAD]"), dtype="int64")(ids), np.array(lengths, "int64")]
        encoded = encode(self.tokenizer, texts, self.max_seq_length, progress=False)
        pad_ids, pad_types = teacher_pads(self.tokenizer)
        return [pad_ids([e[0] for e in encoded]), pad_types([e[1] for e in encoded])]

    def logits(self, arrays):
        """The model's logits for the arrays inputs() made."""
        for name, array in zip(self.predictor.get_input_names(), arrays):
            handle = self.predictor.get_input_handle(name)
            handle.reshape(array.shape)
            handle.copy_from_cpu(array)
        try:
            self.predictor.run()
        except RuntimeError as e:
            if not self.onednn:
                raise
            # oneDNN lacks kernels some exports need (TextCNN's, on Paddle 3.3.1): a setting, not a damaged model
            raise InputError(f"{self.model_dir}: paddle.inference cannot run this model with oneDNN ({e}); "
                             "run it without --onednn") from e
        return self.predictor.get_output_handle(self.predictor.get_output_names()[0]).copy_to_cpu()

    def probabilities(self, texts):
        """Class probabilities of one batch of texts."""
        logits = self.logits(self.inputs(texts))
        if not np.isfinite(logits).all():
            raise InputError(f"{self.model_dir}: the model's outputs are not finite numbers (damaged weights?)")
        exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return exp / exp.sum(axis=-1, keepdims=True)

    def predict(self, texts, batch_size=64):
        """Probabilities of every text, batched by length."""
        order = np.argsort([len(t) for t in texts], kind="stable")
        probs = np.zeros((len(texts), len(self.labels)), dtype="float32")
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            probs[rows] = self.probabilities([texts[i] for i in rows])
        return probs


def create_predictor(model_dir, device, num_threads, onednn):
    """A paddle.inference predictor of the export. On CPU, oneDNN only when asked: Paddle 3 turns it on
    by default, and it is not the faster setting for every model (bench/bench_serve.py times both)."""
    require_device(device)
    if device == "cpu" and is_amd_cpu():
        os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")  # see utils.init_runtime
    config = inference.Config(os.path.join(model_dir, f"{PREFIX}.json"),
                              os.path.join(model_dir, f"{PREFIX}.pdiparams"))
    if device == "gpu":
        config.enable_use_gpu(256, 0)
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(num_threads)
        if onednn:
            config.enable_onednn()
        else:
            config.disable_onednn()
    config.disable_glog_info()
    try:
        return inference.create_predictor(config)
    except Exception as e:  # the checksums passed, so this is a Paddle that cannot run the export
        raise InputError(f"{model_dir}: Paddle cannot load the exported model ({type(e).__name__}: {e})")


def open_input(args):
    """The input as a binary file: --input, stdin, or under --eval a copy of stdin (--eval reads its
    input twice: every gold label is checked before the first prediction is printed)."""
    if args.input != "-":
        if not os.path.isfile(args.input):
            raise InputError(f"{args.input}: no such file")
        return open(args.input, "rb")
    if not args.eval:
        return contextlib.nullcontext(sys.stdin.buffer)
    copy = tempfile.TemporaryFile()
    shutil.copyfileobj(sys.stdin.buffer, copy)
    copy.seek(0)
    return copy


def line_batches(f, batch_size):
    """[(line number, line's bytes)] of up to batch_size input lines at a time, as they arrive: a batch is cut
    short when no more input is ready, so a line written into a pipe is answered at once (os.read takes
    what a pipe holds instead of waiting to fill a buffer)."""
    fd, batch, lineno, partial = f.fileno(), [], 0, []  # partial: the pieces of a line not yet ended
    while chunk := os.read(fd, 1 << 16):
        *ended, rest = chunk.split(b"\n")
        if ended:
            ended[0], partial = b"".join([*partial, ended[0]]), []
        partial.append(rest)
        for line in ended:
            lineno += 1
            batch.append((lineno, line))
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch and not select.select([fd], [], [], 0)[0]:
            yield batch
            batch = []
    last = b"".join(partial)  # a last line without its newline
    if last:
        batch.append((lineno + 1, last))
    if batch:
        yield batch


def input_rows(args, predictor, f):
    """Lists of (line number, text or None, error or None, gold label or None), one per batch of input
    lines (line_batches).

    A line that cannot be classified gets an error of its own. What concerns the whole file ends the
    run before anything is printed: a tsv header without --text_column, a column the model was not
    trained on, sentence pairs (all on line 1), and under --eval a missing or unknown gold label
    (main reads every label before it classifies)."""
    columns = None
    for batch in line_batches(f, args.batch_size):
        if batch[0][0] == 1 and args.text_column:
            columns = header_columns(args, predictor, batch.pop(0)[1])
        yield [parse_line(args, predictor, lineno, line, columns) for lineno, line in batch]


def parse_line(args, predictor, lineno, line, columns):
    """The row of one input line; `columns` are header_columns' (None: the whole line is the text)."""
    try:
        text = line.removesuffix(b"\r").decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as e:
        return lineno, None, f"not valid UTF-8 ({e.reason} at byte {e.start})", None
    fields = text.split("\t")
    if columns is None:
        if lineno == 1 and len(fields) > 1 and HEADER_NAMES & {f.strip() for f in fields}:
            raise InputError(f"{args.input}:1: a tsv header ({text.strip()!r}): name the text column "
                             f"with --text_column {predictor.text_column}")
        return text_row(args, lineno, text, None)
    text_at, label_at = columns
    if len(fields) <= max(text_at, label_at or 0):
        return lineno, None, f"expected at least {max(text_at, label_at or 0) + 1} fields", None
    label = gold_label(args, predictor, lineno, fields[label_at]) if label_at is not None else None
    return text_row(args, lineno, fields[text_at], label)


def text_row(args, lineno, text, label):
    """The row of a text: an error if it is empty or longer than --max_chars."""
    text = text.strip()
    if not text:
        return lineno, None, "empty line", label
    if len(text) > args.max_chars:
        return lineno, None, f"{len(text)} characters, more than --max_chars {args.max_chars}", label
    return lineno, text, None, label


def header_columns(args, predictor, line):
    """(text column index, gold label column index or None) from the header line."""
    try:
        names = [f.strip() for f in line.removesuffix(b"\r").decode("utf-8-sig").split("\t")]
    except UnicodeDecodeError:
        raise InputError(f"{args.input}:1: the header is not valid UTF-8")
    if args.text_column not in names:
        raise InputError(f"{args.input}:1: no column {args.text_column!r} in the header {names}")
    if args.text_column != predictor.text_column:
        raise InputError(f"{args.input}:1: the model was trained on column {predictor.text_column!r}, "
                         f"not {args.text_column!r}")
    if "text_b" in names:
        raise InputError(f"{args.input}:1: sentence pairs (a text_b column): the model classifies one text")
    if args.eval and args.label_column not in names:
        raise InputError(f"{args.input}:1: --eval needs a column {args.label_column!r}")
    return names.index(args.text_column), names.index(args.label_column) if args.eval else None


def gold_label(args, predictor, lineno, field):
    """The gold label of a line, by the rule training reads labels with (data.clean_label)."""
    label = clean_label(field)
    if label is None:
        raise InputError(f"{args.input}:{lineno}: empty label")
    if label not in predictor.labels:
        raise InputError(f"{args.input}:{lineno}: label {label!r} is not one of the model's {predictor.labels}")
    return label


def format_row(lineno, probs, error, labels, fmt):
    if error is not None:
        return json.dumps({"line": lineno, "error": error}) if fmt == "json" else f"ERROR\tline {lineno}: {error}"
    label = labels[int(probs.argmax())]
    if fmt == "json":
        return json.dumps({"line": lineno, "label": label,
                           "probabilities": {lab: round(float(p), 6) for lab, p in zip(labels, probs)}},
                          ensure_ascii=False, allow_nan=False)
    return label + "\t" + " ".join(f"{lab}:{p:.4f}" for lab, p in zip(labels, probs))


def classified(predictor, rows, batch_size):
    """Each row's probabilities; None for a row with an error."""
    probs = iter(predictor.predict([text for _, text, error, _ in rows if error is None], batch_size))
    return [None if error is not None else next(probs) for _, _, error, _ in rows]


def main(argv=None):
    args = parse_args("predict", argv)
    if args.eval and not args.text_column:
        raise InputError("--eval needs --text_column: a tsv with a header and a label column")
    predictor = Predictor(args.model_dir, args.device, args.num_threads, args.onednn)
    lines = errors = correct = 0
    with open_input(args) as f:
        if args.eval:  # every gold label is checked before the first prediction is printed
            for _ in input_rows(args, predictor, f):
                pass
            f.seek(0)
        for rows in input_rows(args, predictor, f):
            for (lineno, _, error, label), probs in zip(rows, classified(predictor, rows, args.batch_size)):
                print(format_row(lineno, probs, error, predictor.labels, args.format))
                errors += error is not None
                correct += error is None and label == predictor.labels[int(probs.argmax())]
            lines += len(rows)
            sys.stdout.flush()  # a pipe's reader gets each batch's answers now
    if errors:
        print(f"{errors} of {lines} lines could not be classified", file=sys.stderr)
    if args.eval and lines > errors:
        print(f"accuracy {correct / (lines - errors):.4f} on {lines - errors} labelled lines", file=sys.stderr)


if __name__ == "__main__":
    run_main(main)
