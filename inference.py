"""Both ends of the export format: a checkpoint exported as a Paddle static inference model with its
vocabulary and predict_config.json, and the Predictor that runs one through paddle.inference; with the
streamed input lines and output rows of serving."""
import json
import logging
import os
import select

import numpy as np
import paddle
from paddle import inference
from paddle.static import InputSpec
from paddlenlp.data import Tuple

from checkpoint import WEIGHTS, checkpoint_kind, load_state_strict, read_checkpoint_meta
from data import PAD, TEXT_COLUMN, UNK, load_vocab, per_side, segment, text_line
from students import build_student, input_fields, student_inputs
from teacher import encode, load_teacher, teacher_classes, teacher_pads
from utils import InputError, atomic_path, file_sha256, is_amd_cpu, make_writable_dir, require_device

logger = logging.getLogger("distill_lstm")


PREFIX, CONFIG = "inference", "predict_config.json"


# The inputs of each kind of model, batch and length left free; a pair student reads a second pair of them.
STUDENT_INPUTS = [InputSpec([None, None], "int64", "input_ids"), InputSpec([None], "int64", "seq_len")]
PAIR_INPUTS = [InputSpec([None, None], "int64", "input_ids_b"), InputSpec([None], "int64", "seq_len_b")]


TEACHER_INPUTS = [InputSpec([None, None], "int64", "input_ids"), InputSpec([None, None], "int64", "token_type_ids")]


def student_from_checkpoint(path, meta):
    model = build_student(meta["model"])
    load_state_strict(model, os.path.join(path, WEIGHTS))
    pairs = meta.get("pairs", False)
    specs = STUDENT_INPUTS + (PAIR_INPUTS if pairs else [])
    config = {"kind": "student", "labels": meta["labels"], "pairs": pairs,
              "max_seq_length": meta["args"]["max_seq_length"], "unseen_words": meta["args"].get("unseen_words", "unk")}
    return model, specs, config


def teacher_from_checkpoint(path, meta):
    model_type = meta["args"]["model_type"]
    model, tokenizer = load_teacher(model_type, path, meta["labels"])
    specs = TEACHER_INPUTS
    config = {"kind": "teacher", "model_type": model_type, "labels": meta["labels"],
              "pairs": meta.get("pairs", False), "max_seq_length": meta["args"]["max_seq_length"]}
    return model, specs, config, tokenizer


def check_replaceable(output_dir):
    """An export replaces only a previous export: a directory holding other files is refused."""
    if not os.path.exists(output_dir):
        return
    if not os.path.isdir(output_dir):
        raise InputError(f"{output_dir}: not a directory")
    entries = set(os.listdir(output_dir))
    if not entries:
        return
    try:
        with open(os.path.join(output_dir, CONFIG), encoding="utf-8") as f:
            exported = set(json.load(f)["files"]) | {CONFIG}
    except (OSError, ValueError, KeyError, TypeError):
        exported = set()
    foreign = sorted(entries - exported)
    if foreign:
        raise InputError(f"{output_dir}: holds {', '.join(foreign[:4])}{' ...' if len(foreign) > 4 else ''}, "
                         "which an export did not write; export into a new or empty directory")


def export(model, specs, config, output_dir, save_vocab):
    """paddle.jit.save the model in eval mode, with its vocabulary and predict config (which adds
    the column every job trains on and lists every other file with its SHA-256)."""
    check_replaceable(output_dir)
    make_writable_dir(os.path.dirname(os.path.abspath(output_dir)))  # where its temporary copy goes
    model.eval()
    with atomic_path(output_dir) as tmp:
        os.makedirs(tmp)
        static = paddle.jit.to_static(model, input_spec=specs, full_graph=True)
        paddle.jit.save(static, os.path.join(tmp, PREFIX))
        save_vocab(tmp)
        config = {**config, "text_column": TEXT_COLUMN,
                  "files": {name: file_sha256(os.path.join(tmp, name)) for name in sorted(os.listdir(tmp))}}
        with open(os.path.join(tmp, CONFIG), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=1)
    logger.info("exported the %s to %s", config["kind"], output_dir)


EXPORT_CONFIG_KEYS = {"kind", "labels", "max_seq_length", "text_column", "files"}


def export_checkpoint(checkpoint, output_dir):
    """Export a student or teacher checkpoint directory (best/, last/) to output_dir."""
    meta = read_checkpoint_meta(checkpoint)
    with paddle.utils.unique_name.guard():
        if checkpoint_kind(meta) == "student":
            model, specs, config = student_from_checkpoint(checkpoint, meta)

            def save_vocab(directory):
                with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
                    f.write("\n".join(meta["vocab"]) + "\n")
        else:
            model, specs, config, tokenizer = teacher_from_checkpoint(checkpoint, meta)
            save_vocab = tokenizer.save_pretrained
        export(model, specs, config, output_dir, save_vocab)



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
        self.pairs = self.config.get("pairs", False)  # exports from before pair tasks read single texts
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
        """The model's input arrays for a batch of texts (pairs (text_a, text_b) for a pair model)."""
        if self.config["kind"] == "student":
            # a text of no words (spaces only) reads as one [UNK]
            records = [student_inputs(per_side(lambda side: side or [UNK], words), self.vocab, self.max_seq_length,
                                      self.config.get("unseen_words", "unk")) for words in segment(texts)]
            return list(Tuple(*input_fields(self.vocab.to_indices(PAD), self.pairs))(records))  # as training batches
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
        order = np.argsort([len(text_line(t)) for t in texts], kind="stable")
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


def format_row(lineno, probs, error, labels, fmt):
    if error is not None:
        return json.dumps({"line": lineno, "error": error}) if fmt == "json" else f"ERROR\tline {lineno}: {error}"
    label = labels[int(probs.argmax())]
    if fmt == "json":
        return json.dumps({"line": lineno, "label": label,
                           "probabilities": {lab: round(float(p), 6) for lab, p in zip(labels, probs)}},
                          ensure_ascii=False, allow_nan=False)
    return label + "\t" + " ".join(f"{lab}:{p:.4f}" for lab, p in zip(labels, probs))
