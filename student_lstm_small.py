"""The Bi-LSTM student, and its training on gold labels alone (the baseline distillation must beat).

    python student_lstm_small.py --task_name chnsenticorp --vocab_path senta_word_dict.txt \
        --output_dir small_models/chnsenticorp
"""
import logging

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from args import parse_args
from data import (PAD, create_dataloader, lean_vocab, load_splits, load_vocab, segment,
                  vocab_from_words, vocab_words)
from utils import (InputError, convert_example, fit, init_runtime, read_checkpoint_meta,
                   restore_checkpoint, run_main, write_summary)

logger = logging.getLogger("distill_lstm")


class BiLSTM(nn.Layer):
    """Embedding -> one bidirectional LSTM -> [last forward; last backward] -> tanh dense -> logits."""

    def __init__(self, vocab_size, num_classes, emb_dim=300, hidden_size=300, num_layers=1,
                 dropout_prob=0.0, init_scale=0.1, padding_idx=0):
        super().__init__()
        uniform = paddle.ParamAttr(initializer=nn.initializer.Uniform(-init_scale, init_scale))
        self.embedder = nn.Embedding(vocab_size, emb_dim, padding_idx=padding_idx, weight_attr=uniform)
        self.lstm = nn.LSTM(emb_dim, hidden_size, num_layers, direction="bidirect",
                            dropout=dropout_prob if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout_prob)
        self.fc = nn.Linear(hidden_size * 2, hidden_size, weight_attr=uniform)
        self.output_layer = nn.Linear(hidden_size, num_classes, weight_attr=uniform)

    def forward(self, input_ids, seq_len):
        embedded = self.dropout(self.embedder(input_ids))
        # sequence_length stops each direction at the sentence's own end, so padding
        # never reaches the final states and a sentence's logits do not depend on its batch.
        _, (hidden, _) = self.lstm(embedded, sequence_length=seq_len)
        sentence = paddle.concat([hidden[-2], hidden[-1]], axis=-1)
        return self.output_layer(paddle.tanh(self.fc(self.dropout(sentence))))


def model_config(args, vocab_size, num_classes):
    return {"vocab_size": vocab_size, "num_classes": num_classes, "emb_dim": args.emb_dim,
            "hidden_size": args.hidden_size, "num_layers": args.num_layers,
            "dropout_prob": args.dropout_prob, "init_scale": args.init_scale}


def create_optimizer(args, model, total_steps):
    clip = nn.ClipGradByGlobalNorm(args.max_grad_norm) if args.max_grad_norm > 0 else None
    lr = args.lr
    if args.lr_schedule == "linear":
        lr = paddle.optimizer.lr.PolynomialDecay(args.lr, decay_steps=total_steps, end_lr=0.0, power=1.0)
    if args.optimizer == "adam":
        return paddle.optimizer.Adam(lr, parameters=model.parameters(), grad_clip=clip)
    return paddle.optimizer.Adadelta(lr, rho=0.95, epsilon=1e-6, parameters=model.parameters(),
                                     grad_clip=clip)


def student_vocab(args, train_words):
    """The vocabulary the student's embedding rows follow: a resumed run keeps its checkpoint's."""
    if args.init_from_ckpt:
        return vocab_from_words(read_checkpoint_meta(args.init_from_ckpt)["vocab"])
    vocab = load_vocab(args.vocab_path)
    if args.vocab_size is not None:
        logger.warning("--vocab_size is no longer needed: it is read from %s", args.vocab_path)
    return lean_vocab(vocab, train_words, args.min_freq)


def to_records(words, labels, vocab, max_seq_length):
    return [(*convert_example(w, vocab, max_seq_length), label) for w, label in zip(words, labels)]


def ce_loss(model, batch):
    input_ids, seq_len, labels = batch
    loss = F.cross_entropy(model(input_ids, seq_len), labels)
    return loss, {}


def main(argv=None):
    args = parse_args("student", argv)
    init_runtime(args)
    splits, label_list = load_splits(args)
    words = {split: segment([ex["text"] for ex in ds]) for split, ds in splits.items()}
    vocab = student_vocab(args, words["train"])
    pad_id = vocab.to_indices(PAD)
    loaders = {
        split: create_dataloader(to_records(words[split], [ex["label"] for ex in ds], vocab,
                                            args.max_seq_length),
                                 pad_id, args.batch_size, shuffle=split == "train", seed=args.seed)
        for split, ds in splits.items() if ds[0]["label"] is not None
    }
    train(args, loaders, vocab, label_list)


def train(args, loaders, vocab, label_list):
    # Fresh parameter names, so optimizer state saved by one run loads into another.
    with paddle.utils.unique_name.guard():
        config = model_config(args, len(vocab), len(label_list))
        model = BiLSTM(**config)
        optimizer = create_optimizer(args, model, len(loaders["train"]) * args.max_epoch)
        meta = {"args": vars(args), "model": config, "labels": label_list, "vocab": vocab_words(vocab)}
        state = None
        if args.init_from_ckpt:
            resumed = restore_checkpoint(args.init_from_ckpt, model, optimizer)
            if resumed["labels"] != label_list:
                raise InputError(f"{args.init_from_ckpt}: trained on labels {resumed['labels']}, "
                                 f"the data has {label_list}")
            state = resumed["state"]
        logger.info("Bi-LSTM: %d words, %d classes, %d parameters; output in %s", len(vocab),
                    len(label_list), sum(p.size for p in model.parameters()), args.output_dir)
        state = fit(model, optimizer, loaders["train"], loaders["dev"], ce_loss, args, meta, state)
        write_summary(model, loaders, args, state)


if __name__ == "__main__":
    run_main(main)
