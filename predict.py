r"""Classify sentences, or sentence pairs, with a model exported by export_model.py, through paddle.inference.

    echo "房间很干净，服务也好" | python predict.py --model_dir export/student
    python predict.py --model_dir export/student --input ../shared/data/chnsenticorp/dev.tsv --text_column text_a --eval

A model of a pair task (text matching: LCQMC) reads two texts a line, separated by a tab, or a tsv's
columns text_a and text_b (its header names both; --text_column names the first), and --eval adds the F1
of the positive class (label 1, as training reports it) to accuracy:

    printf '这款手机怎么样\t这个手机好用吗\n' | python predict.py --model_dir export/lcqmc
    python predict.py --model_dir export/lcqmc --input ../shared/data/lcqmc/dev.tsv --text_column text_a --eval

One output line per input line: the label and each class's probability (text), or a JSON object
(--format json). A line that cannot be classified (empty, longer than --max_chars, not UTF-8; for a
pair model, not two texts or a side empty) gets an error line instead; the others are still predicted.
Lines are read and answered a batch at a time as they arrive, so a line written into a pipe is answered
at once and memory stays flat however long the input.
"""
from args import parse_args

if __name__ == "__main__":
    parse_args("predict")  # before Paddle's import (seconds): --help and bad flags answer at once

import contextlib
import logging
import os
import shutil
import sys
import tempfile

import numpy as np

from data import LAYOUTS, clean_label, positive_class, split_pair, text_line, texts_kind
from inference import Predictor, format_row, line_batches
from trainer import scores
from utils import InputError, run_main

logger = logging.getLogger("distill_lstm")
# Column names of PaddleNLP's task files (pair tasks add text_b): a first line with them is a
# header, not a sentence.
HEADER_NAMES = {name for layout in LAYOUTS for name in layout} | {"text", "text_b"}


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


def input_rows(args, predictor, f):
    """Lists of (line number, text (a pair model's: (text_a, text_b)) or None, error or None, gold label or
    None), one per batch of input lines (line_batches).

    A line that cannot be classified gets an error of its own. What concerns the whole file ends the
    run before anything is printed: a tsv header without --text_column, a column the model was not
    trained on, pairs for a single-text model or the reverse (all on line 1), and under --eval a missing or
    unknown gold label (main reads every label before it classifies)."""
    columns = None
    for batch in line_batches(f, args.batch_size):
        if batch[0][0] == 1 and args.text_column:
            columns = header_columns(args, predictor, batch.pop(0)[1])
        yield [parse_line(args, predictor, lineno, line, columns) for lineno, line in batch]


def parse_line(args, predictor, lineno, line, columns):
    """The row of one input line; `columns` are header_columns' (None: the whole line is the text, or a pair
    model's two texts separated by a tab)."""
    try:
        text = line.removesuffix(b"\r").decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as e:
        return lineno, None, f"not valid UTF-8 ({e.reason} at byte {e.start})", None
    fields = text.split("\t")
    if columns is None:
        if lineno == 1 and len(fields) > 1 and HEADER_NAMES & {f.strip() for f in fields}:
            raise InputError(f"{args.input}:1: a tsv header ({text.strip()!r}): name the text column "
                             f"with --text_column {predictor.text_column}")
        return text_row(args, predictor, lineno, text, None)
    text_at, label_at = columns
    needed = max(*text_at, label_at or 0) + 1
    if len(fields) < needed:
        return lineno, None, f"expected at least {needed} fields", None
    label = gold_label(args, predictor, lineno, fields[label_at]) if label_at is not None else None
    return text_row(args, predictor, lineno, "\t".join(fields[i] for i in text_at), label)


def text_row(args, predictor, lineno, line, label):
    """The row of a line's text (a pair model's: its two texts separated by a tab, by data.split_pair's rule):
    an error if it is empty, not a pair, or longer than --max_chars."""
    if not line.strip():
        return lineno, None, "empty line", label
    text, error = split_pair(line) if predictor.pairs else (line.strip(), None)
    if error:
        return lineno, None, error, label
    chars = len(text_line(text))
    if chars > args.max_chars:
        return lineno, None, f"{chars} characters, more than --max_chars {args.max_chars}", label
    return lineno, text, None, label


def header_columns(args, predictor, line):
    """(text column indices: text_a's, and text_b's for a pair model; gold label column index or None) from
    the header line."""
    try:
        names = [f.strip() for f in line.removesuffix(b"\r").decode("utf-8-sig").split("\t")]
    except UnicodeDecodeError:
        raise InputError(f"{args.input}:1: the header is not valid UTF-8")
    if args.text_column not in names:
        raise InputError(f"{args.input}:1: no column {args.text_column!r} in the header {names}")
    if args.text_column != predictor.text_column:
        raise InputError(f"{args.input}:1: the model was trained on column {predictor.text_column!r}, "
                         f"not {args.text_column!r}")
    if ("text_b" in names) != predictor.pairs:
        raise InputError(f"{args.input}:1: {texts_kind('text_b' in names)}, where the model classifies "
                         f"{texts_kind(predictor.pairs)}")
    if args.eval and args.label_column not in names:
        raise InputError(f"{args.input}:1: --eval needs a column {args.label_column!r}")
    text_at = (names.index(args.text_column), *([names.index("text_b")] if predictor.pairs else []))
    return text_at, names.index(args.label_column) if args.eval else None


def gold_label(args, predictor, lineno, field):
    """The gold label of a line, by the rule training reads labels with (data.clean_label)."""
    label = clean_label(field)
    if label is None:
        raise InputError(f"{args.input}:{lineno}: empty label")
    if label not in predictor.labels:
        raise InputError(f"{args.input}:{lineno}: label {label!r} is not one of the model's {predictor.labels}")
    return label


def classified(predictor, rows, batch_size):
    """Each row's probabilities; None for a row with an error."""
    probs = iter(predictor.predict([text for _, text, error, _ in rows if error is None], batch_size))
    return [None if error is not None else next(probs) for _, _, error, _ in rows]


def main(argv=None):
    args = parse_args("predict", argv)
    if args.eval and not args.text_column:
        raise InputError("--eval needs --text_column: a tsv with a header and a label column")
    predictor = Predictor(args.model_dir, args.device, args.num_threads, args.onednn)
    lines = errors = 0
    confusion = np.zeros((len(predictor.labels),) * 2, dtype=np.int64)  # of the labelled lines, for --eval
    with open_input(args) as f:
        if args.eval:  # every gold label is checked before the first prediction is printed
            for _ in input_rows(args, predictor, f):
                pass
            f.seek(0)
        for rows in input_rows(args, predictor, f):
            for (lineno, _, error, label), probs in zip(rows, classified(predictor, rows, args.batch_size)):
                print(format_row(lineno, probs, error, predictor.labels, args.format))
                errors += error is not None
                if args.eval and error is None:
                    confusion[predictor.labels.index(label), int(probs.argmax())] += 1
            lines += len(rows)
            sys.stdout.flush()  # a pipe's reader gets each batch's answers now
    if errors:
        print(f"{errors} of {lines} lines could not be classified", file=sys.stderr)
    if confusion.any():
        print(eval_line(predictor, confusion), file=sys.stderr)


def eval_line(predictor, confusion):
    """Accuracy, and on a pair task the F1 of its positive class, as training reports them (trainer.evaluate)."""
    positive = positive_class(predictor.labels, predictor.pairs)
    metrics = scores(confusion, positive)
    line = f"accuracy {metrics['acc']:.4f}"
    if positive is not None:
        line += f" F1 {metrics['f1']:.4f} (label {predictor.labels[positive]})"
    return f"{line} on {confusion.sum()} labelled lines"


if __name__ == "__main__":
    run_main(main)
