"""The Bi-LSTM student, and its training on gold labels alone (the baseline distillation must beat).

    python student_lstm_small.py --task_name chnsenticorp --vocab_path senta_word_dict.txt \
        --output_dir small_models/chnsenticorp
"""
from args import parse_args

if __name__ == "__main__":
    parse_args("student")  # before Paddle's import (seconds): --help and bad flags answer at once

import logging

import paddle
import paddle.nn as nn
from paddlenlp.data import Pad, Stack, Tuple

from data import (PAD, UNK, create_dataloader, lean_vocab, load_splits, load_vocab, segment,
                  vocab_from_words, vocab_words)
from utils import (ce_loss, claimed_output_dir, convert_example, create_optimizer, fit, init_runtime,
                   read_checkpoint_meta, require_kind, restore_checkpoint, run_main, total_train_steps,
                   write_summary)

logger = logging.getLogger("distill_lstm")


class BiLSTM(nn.Layer):
    """Embedding -> one bidirectional LSTM -> [last forward; last backward] -> tanh dense -> logits."""

    def __init__(self, vocab_size, num_classes, emb_dim=300, hidden_size=300, num_layers=1,
                 dropout_prob=0.0, init_scale=0.1, padding_idx=0, word_dropout=0.0, unk_id=1):
        super().__init__()
        self.padding_idx, self.word_dropout, self.unk_id = padding_idx, word_dropout, unk_id
        uniform = paddle.ParamAttr(initializer=nn.initializer.Uniform(-init_scale, init_scale))
        self.embedder = nn.Embedding(vocab_size, emb_dim, padding_idx=padding_idx, weight_attr=uniform)
        self.lstm = nn.LSTM(emb_dim, hidden_size, num_layers, direction="bidirect",
                            dropout=dropout_prob if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout_prob)
        self.fc = nn.Linear(hidden_size * 2, hidden_size, weight_attr=uniform)
        self.output_layer = nn.Linear(hidden_size, num_classes, weight_attr=uniform)

    def forward(self, input_ids, seq_len):
        if self.training and self.word_dropout > 0:
            input_ids = self.drop_words(input_ids)
        embedded = self.dropout(self.embedder(input_ids))
        # sequence_length stops each direction at the sentence's own end, so padding
        # never reaches the final states and a sentence's logits do not depend on its batch.
        _, (hidden, _) = self.lstm(embedded, sequence_length=seq_len)
        sentence = paddle.concat([hidden[-2], hidden[-1]], axis=-1)
        return self.output_layer(paddle.tanh(self.fc(self.dropout(sentence))))

    def drop_words(self, input_ids):
        """Replace words by [UNK] at rate word_dropout: regularises, and trains the [UNK] row
        that unseen dev and test words map to (every training word has its own row)."""
        drop = (paddle.rand(input_ids.shape) < self.word_dropout) & (input_ids != self.padding_idx)
        return paddle.where(drop, paddle.full_like(input_ids, self.unk_id), input_ids)


def model_config(args, vocab, num_classes):
    return {"vocab_size": len(vocab), "num_classes": num_classes, "emb_dim": args.emb_dim,
            "hidden_size": args.hidden_size, "num_layers": args.num_layers,
            "dropout_prob": args.dropout_prob, "init_scale": args.init_scale,
            "padding_idx": vocab.to_indices(PAD), "word_dropout": args.word_dropout,
            "unk_id": vocab.to_indices(UNK)}


def student_vocab(args, train_words):
    """The vocabulary the student's embedding rows follow: a resumed run keeps its checkpoint's."""
    if args.init_from_ckpt:
        meta = read_checkpoint_meta(args.init_from_ckpt)
        require_kind(args.init_from_ckpt, meta, "student")
        return vocab_from_words(meta["vocab"])
    vocab = load_vocab(args.vocab_path)
    if args.vocab_size is not None:
        logger.warning("--vocab_size is no longer needed: it is read from %s", args.vocab_path)
    return lean_vocab(vocab, train_words, args.min_freq)


def to_records(words, labels, vocab, max_seq_length):
    return [(*convert_example(w, vocab, max_seq_length), label) for w, label in zip(words, labels)]


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
    words = {split: segment([ex["text"] for ex in ds]) for split, ds in splits.items()}
    vocab = student_vocab(args, words["train"])
    pad_id = vocab.to_indices(PAD)
    loaders = {
        split: create_dataloader(to_records(words[split], [ex["label"] for ex in ds], vocab,
                                            args.max_seq_length),
                                 batchify_fn(pad_id), args.batch_size, shuffle=split == "train", seed=args.seed)
        for split, ds in splits.items() if ds[0]["label"] is not None
    }
    train(args, loaders, vocab, label_list)


def train(args, loaders, vocab, label_list, compute_loss=ce_loss, summary=None):
    """Train a Bi-LSTM on loaders["train"] with compute_loss, checkpointing on dev accuracy;
    `summary` joins summary.json. Returns the train state."""
    # Fresh parameter names, so optimizer state saved by one run loads into another.
    # Seeded here too, so the initialisation does not depend on what ran before (a loaded teacher).
    paddle.seed(args.seed)
    with paddle.utils.unique_name.guard():
        config = model_config(args, vocab, len(label_list))
        model = BiLSTM(**config)
        optimizer = create_optimizer(args, model, total_train_steps(args, len(loaders["train"])))
        meta = {"args": vars(args), "model": config, "labels": label_list, "vocab": vocab_words(vocab)}
        state = None
        if args.init_from_ckpt:
            state = restore_checkpoint(args.init_from_ckpt, model, optimizer, label_list, "student")["state"]
        logger.info("Bi-LSTM: %d words, %d classes, %d parameters; output in %s", len(vocab),
                    len(label_list), sum(p.size for p in model.parameters()), args.output_dir)
        state = fit(model, optimizer, loaders["train"], loaders["dev"], compute_loss, args, meta, state)
        write_summary(model, loaders, args, state, summary)
    return state


if __name__ == "__main__":
    run_main(main)
