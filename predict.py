"""Classify sentences with a model exported by export_model.py, through paddle.inference.

    echo "房间很干净，服务也好" | python predict.py --model_dir export/student
    python predict.py --model_dir export/student --input dev.tsv --text_column text_a --eval

One output line per input line: the label and each class's probability (text), or a JSON object
(--format json). A line that cannot be classified (empty, longer than --max_chars, not UTF-8)
gets an error line instead; the others are still predicted.
"""
import json
import logging
import os
import sys

import numpy as np
from paddle import inference
from paddlenlp.data import Pad

from args import parse_args
from data import segment, vocab_from_words
from export_model import CONFIG, PREFIX
from teacher_train_glue import encode, teacher_classes, teacher_pads
from utils import InputError, convert_example, is_amd_cpu, run_main

logger = logging.getLogger("distill_lstm")


class Predictor:
    """An exported student or teacher, run by a paddle.inference predictor."""

    def __init__(self, model_dir, device="cpu", num_threads=1, enable_mkldnn=False):
        config_path = os.path.join(model_dir, CONFIG)
        if not os.path.isfile(config_path):
            raise InputError(f"{model_dir}: not an exported model (no {CONFIG}; see export_model.py)")
        with open(config_path, encoding="utf-8") as f:
            self.config = json.load(f)
        self.labels, self.max_seq_length = self.config["labels"], self.config["max_seq_length"]
        if self.config["kind"] == "student":
            with open(os.path.join(model_dir, "vocab.txt"), encoding="utf-8") as f:
                self.vocab = vocab_from_words(f.read().rstrip("\n").split("\n"))
        else:
            self.tokenizer = teacher_classes(self.config["model_type"])[1].from_pretrained(model_dir)
        self.predictor = create_predictor(model_dir, device, num_threads, enable_mkldnn)

    def inputs(self, texts):
        if self.config["kind"] == "student":
            ids, lengths = zip(*(convert_example(words or ["[UNK]"], self.vocab, self.max_seq_length)
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
        self.predictor.run()
        return self.predictor.get_output_handle(self.predictor.get_output_names()[0]).copy_to_cpu()

    def probabilities(self, texts):
        """Class probabilities of one batch of texts."""
        logits = self.logits(self.inputs(texts))
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


def create_predictor(model_dir, device, num_threads, enable_mkldnn):
    if device == "cpu" and is_amd_cpu():
        os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")  # see utils.init_runtime
    config = inference.Config(os.path.join(model_dir, f"{PREFIX}.json"),
                              os.path.join(model_dir, f"{PREFIX}.pdiparams"))
    if device == "gpu":
        config.enable_use_gpu(256, 0)
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(num_threads)
        if enable_mkldnn:
            config.enable_mkldnn()
        else:
            config.disable_mkldnn()
    config.disable_glog_info()
    return inference.create_predictor(config)


def read_inputs(args):
    """[(line number, text or None, error or None, gold label or None)] of the input."""
    raw = sys.stdin.buffer.read() if args.input == "-" else read_bytes(args.input)
    rows, column, label_column = [], None, None
    lines = raw.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the file's final newline ends the last line, it does not start an empty one
    for lineno, line in enumerate(lines, start=1):
        if line.endswith(b"\r"):
            line = line[:-1]
        try:
            text = line.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as e:
            rows.append((lineno, None, f"not valid UTF-8 ({e.reason} at byte {e.start})", None))
            continue
        label = None
        if args.text_column:
            fields = text.split("\t")
            if column is None:  # the header
                column, label_column = header_columns(args, fields)
                continue
            if len(fields) <= max(column, label_column or 0):
                rows.append((lineno, None, f"expected at least {max(column, label_column or 0) + 1} fields", None))
                continue
            text, label = fields[column], fields[label_column] if label_column is not None else None
        rows.append((lineno, text.strip(), None, label))
    for i, (lineno, text, error, label) in enumerate(rows):
        if error is None and not text:
            rows[i] = (lineno, None, "empty line", label)
        elif error is None and len(text) > args.max_chars:
            rows[i] = (lineno, None, f"{len(text)} characters, more than --max_chars {args.max_chars}", label)
    return rows


def read_bytes(path):
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    with open(path, "rb") as f:
        return f.read()


def header_columns(args, fields):
    names = [f.strip() for f in fields]
    if args.text_column not in names:
        raise InputError(f"{args.input}:1: no column {args.text_column!r} in the header {names}")
    if args.eval and args.label_column not in names:
        raise InputError(f"{args.input}:1: --eval needs a column {args.label_column!r}")
    label = names.index(args.label_column) if args.label_column in names else None
    return names.index(args.text_column), label


def format_row(lineno, probs, error, labels, fmt):
    if error is not None:
        return json.dumps({"line": lineno, "error": error}) if fmt == "json" else f"ERROR\tline {lineno}: {error}"
    label = labels[int(probs.argmax())]
    if fmt == "json":
        return json.dumps({"line": lineno, "label": label,
                           "probabilities": {lab: round(float(p), 6) for lab, p in zip(labels, probs)}},
                          ensure_ascii=False)
    return label + "\t" + " ".join(f"{lab}:{p:.4f}" for lab, p in zip(labels, probs))


def main(argv=None):
    args = parse_args("predict", argv)
    predictor = Predictor(args.model_dir, args.device, args.num_threads, args.enable_mkldnn)
    rows = read_inputs(args)
    good = [i for i, row in enumerate(rows) if row[2] is None]
    probs = dict(zip(good, predictor.predict([rows[i][1] for i in good], args.batch_size))) if good else {}
    for i, (lineno, _, error, _) in enumerate(rows):
        print(format_row(lineno, probs.get(i), error, predictor.labels, args.format))
    errors = len(rows) - len(good)
    if errors:
        print(f"{errors} of {len(rows)} lines could not be classified", file=sys.stderr)
    if args.eval:
        gold = [(rows[i][3], predictor.labels[int(probs[i].argmax())]) for i in good]
        unknown = {g for g, _ in gold} - set(predictor.labels)
        if unknown:
            raise InputError(f"{args.input}: labels {sorted(unknown)} are not the model's {predictor.labels}")
        accuracy = float(np.mean([g == p for g, p in gold]))
        print(f"accuracy {accuracy:.4f} on {len(gold)} labelled lines", file=sys.stderr)


if __name__ == "__main__":
    run_main(main)
