"""A student (the Bi-LSTM by default; --student picks another of students.py) trained on gold
labels alone: the baseline distillation must beat.

    python student_lstm_small.py --task_name chnsenticorp --vocab_path senta_word_dict.txt \
        --output_dir small_models/chnsenticorp
"""
from args import parse_args

if __name__ == "__main__":
    parse_args("student")  # before Paddle's import (seconds): --help and bad flags answer at once

import logging

import paddle
from paddlenlp.data import Pad, Stack, Tuple

from data import (PAD, create_dataloader, lean_vocab, load_splits, load_vocab, segment, vocab_from_words,
                  vocab_words)
from students import build_student, parameter_counts, student_config
from utils import (InputError, ce_loss, claimed_output_dir, convert_example, create_optimizer, fit, init_runtime,
                   read_checkpoint_meta, require_kind, restore_checkpoint, run_main, total_train_steps,
                   write_summary)

logger = logging.getLogger("distill_lstm")


def student_dictionary(args):
    """The words the student may have rows for, read and checked: a resumed run's checkpoint
    vocabulary, else --vocab_path's dictionary."""
    if args.init_from_ckpt:
        meta = read_checkpoint_meta(args.init_from_ckpt)
        require_kind(args.init_from_ckpt, meta, "student")
        trained = meta["model"].get("student", "bilstm")
        if trained != args.student:
            raise InputError(f"{args.init_from_ckpt}: a {trained} checkpoint; resume it with --student {trained}")
        return vocab_from_words(meta["vocab"])
    vocab = load_vocab(args.vocab_path)
    if args.vocab_size is not None:
        logger.warning("--vocab_size is no longer needed: it is read from %s", args.vocab_path)
    return vocab


def student_vocab(args, dictionary, train_words):
    """The vocabulary the student's embedding rows follow: a resumed run keeps its checkpoint's, a new
    one takes the dictionary's words the training sentences use."""
    return dictionary if args.init_from_ckpt else lean_vocab(dictionary, train_words, args.min_freq)


def to_records(words, labels, vocab, args):
    """(ids, length, label) of each segmented sentence, as args.max_seq_length and args.unseen_words say."""
    return [(*convert_example(w, vocab, args.max_seq_length, args.unseen_words), label)
            for w, label in zip(words, labels)]


def batchify_fn(pad_id):
    """(word ids padded per batch, lengths, targets) from (ids, length, target) records."""
    return Tuple(Pad(axis=0, pad_val=pad_id, dtype="int64"), Stack(dtype="int64"), Stack())


def main(argv=None):
    args = parse_args("student", argv)
    init_runtime(args)
    with claimed_output_dir(args):
        run(args)


def run(args):
    splits, label_list = load_splits(args)
    train_alone(args, splits, label_list)


def train_alone(args, splits, label_list):
    """Train args.student on splits["train"]'s gold labels, checkpointing on splits["dev"]."""
    words = {split: segment([ex["text"] for ex in ds]) for split, ds in splits.items()}
    vocab = student_vocab(args, student_dictionary(args), words["train"])
    pad_id = vocab.to_indices(PAD)
    loaders = {
        split: create_dataloader(to_records(words[split], [ex["label"] for ex in ds], vocab, args),
                                 batchify_fn(pad_id), args.batch_size, shuffle=split == "train", seed=args.seed)
        for split, ds in splits.items() if ds[0]["label"] is not None
    }
    train(args, loaders, vocab, label_list)


def train(args, loaders, vocab, label_list, compute_loss=ce_loss, summary=None):
    """Train args.student on loaders["train"] with compute_loss, checkpointing on dev accuracy;
    `summary` joins summary.json. Returns the train state."""
    # Fresh parameter names, so optimizer state saved by one run loads into another.
    # Seeded here too, so the initialisation does not depend on what ran before (a loaded teacher).
    paddle.seed(args.seed)
    with paddle.utils.unique_name.guard():
        config = student_config(args, vocab, len(label_list))
        model = build_student(config)
        optimizer = create_optimizer(args, model, total_train_steps(args, len(loaders["train"])))
        meta = {"args": vars(args), "model": config, "labels": label_list, "vocab": vocab_words(vocab)}
        state = None
        if args.init_from_ckpt:
            state = restore_checkpoint(args.init_from_ckpt, model, optimizer, label_list, "student")["state"]
        parameters = parameter_counts(model)
        logger.info("%s: %d words, %d classes, %d parameters (%d in the embedding); output in %s", args.student,
                    len(vocab), len(label_list), sum(parameters.values()), parameters["embedding"], args.output_dir)
        state = fit(model, optimizer, loaders["train"], loaders["dev"], compute_loss, args, meta, state)
        write_summary(model, loaders, args, state, {**(summary or {}), "parameters": parameters})
    return state


if __name__ == "__main__":
    run_main(main)
