"""Export a student, distilled student or teacher checkpoint as a Paddle static inference model.

    python export_model.py --checkpoint distilled_models/chnsenticorp/best --output_dir export/student
    python export_model.py --checkpoint teacher/chnsenticorp/best --output_dir export/teacher

The output directory holds inference.json + inference.pdiparams (paddle.jit.save), and what
prediction needs beside them: the vocabulary (vocab.txt for the student, the tokenizer's files for
the teacher) and predict_config.json (kind, labels, max length, and the SHA-256 of every other
file, which predict.py checks). An existing --output_dir is replaced only if it holds a previous
export and nothing else; any other non-empty directory is refused.
"""
from args import parse_args

if __name__ == "__main__":
    parse_args("export")  # before Paddle's import (seconds): --help and bad flags answer at once

import json
import logging
import os

import paddle
from paddle.static import InputSpec

from data import TEXT_COLUMN
from students import build_student
from teacher_train_glue import load_teacher
from utils import (WEIGHTS, InputError, atomic_path, checkpoint_kind, file_sha256, load_state_strict,
                   make_writable_dir, read_checkpoint_meta, run_main)

logger = logging.getLogger("distill_lstm")
PREFIX, CONFIG = "inference", "predict_config.json"


# The inputs of each kind of model, batch and length left free.
STUDENT_INPUTS = [InputSpec([None, None], "int64", "input_ids"), InputSpec([None], "int64", "seq_len")]
TEACHER_INPUTS = [InputSpec([None, None], "int64", "input_ids"), InputSpec([None, None], "int64", "token_type_ids")]


def student_from_checkpoint(path, meta):
    model = build_student(meta["model"])
    load_state_strict(model, os.path.join(path, WEIGHTS))
    specs = STUDENT_INPUTS
    config = {"kind": "student", "labels": meta["labels"], "max_seq_length": meta["args"]["max_seq_length"],
              "unseen_words": meta["args"].get("unseen_words", "unk")}
    return model, specs, config


def teacher_from_checkpoint(path, meta):
    model_type = meta["args"]["model_type"]
    model, tokenizer = load_teacher(model_type, path, meta["labels"])
    specs = TEACHER_INPUTS
    config = {"kind": "teacher", "model_type": model_type, "labels": meta["labels"],
              "max_seq_length": meta["args"]["max_seq_length"]}
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


def main(argv=None):
    args = parse_args("export", argv)
    logger.setLevel(logging.INFO)
    meta = read_checkpoint_meta(args.checkpoint)
    with paddle.utils.unique_name.guard():
        if checkpoint_kind(meta) == "student":
            model, specs, config = student_from_checkpoint(args.checkpoint, meta)

            def save_vocab(directory):
                with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
                    f.write("\n".join(meta["vocab"]) + "\n")
        else:
            model, specs, config, tokenizer = teacher_from_checkpoint(args.checkpoint, meta)
            save_vocab = tokenizer.save_pretrained
        export(model, specs, config, args.output_dir, save_vocab)


if __name__ == "__main__":
    run_main(main)
