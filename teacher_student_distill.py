"""Distill a fine-tuned teacher into the Bi-LSTM student (Tang et al., 2019), with the original command:

    python teacher_student_distill.py --task_name chnsenticorp --max_epoch 6 --lr 1.0 --dropout_prob 0.1 \
        --batch_size 64 --model_name ernie-gram-zh --teacher_dir teacher/chnsenticorp/best/model_state.pdparams \
        --vocab_path senta_word_dict.txt --output_dir distilled_models --save_steps 10000

The transfer set is the training sentences, --n_iter augmented copies of each and, with
--unlabeled_path, unlabelled sentences; the teacher's logits over it are computed once and cached.
"""
from args import parse_args

if __name__ == "__main__":
    parse_args("distill")  # before Paddle's import (seconds): --help and bad flags answer at once

import contextlib
import functools
import hashlib
import inspect
import json
import logging
import os
import time
from types import SimpleNamespace

import jieba
import numpy as np
import paddle
import paddlenlp
import paddle.nn.functional as F
from paddlenlp.data import Pad, Stack, Tuple
from tqdm import tqdm
from visualdl import LogWriter

from data import (MASK, PAD, UNK, Augmenter, augment_corpus, create_dataloader, join_words,
                  load_splits, read_lines, segment, unseen_rows)
from losses import distill_loss
from student_lstm_small import batchify_fn as student_batchify_fn
from student_lstm_small import student_dictionary, student_vocab, to_records, train
from teacher_train_glue import encode, load_teacher, teacher_pads
from utils import (META, WEIGHTS, InputError, approx_bytes, atomic_path, check_labels, claimed_output_dir,
                   file_sha256, held_lock, init_runtime, is_main, main_view, manifest_key, read_checkpoint_meta,
                   remove_path, require_kind, run_main, texts_sha256, world, writable_dir_for)

logger = logging.getLogger("distill_lstm")


def teacher_files(teacher_dir):
    """(weights file, its checkpoint metadata or {}) for --teacher_dir, a file or a directory."""
    if not os.path.exists(teacher_dir):
        raise InputError(f"{teacher_dir}: no such file or directory (--teacher_dir)")
    params = os.path.join(teacher_dir, WEIGHTS) if os.path.isdir(teacher_dir) else teacher_dir
    if not os.path.isfile(params):
        raise InputError(f"{teacher_dir}: no {WEIGHTS} in it (--teacher_dir)")
    beside = os.path.dirname(params)
    meta = read_checkpoint_meta(beside) if os.path.isfile(os.path.join(beside, META)) else {}
    if meta:
        require_kind(beside, meta, "teacher")
    return params, meta


class Teacher:
    """The fine-tuned teacher, reading word lists (masks become its tokenizer's mask token).

    A checkpoint of teacher_train_glue.py (best/, last/) is a save_pretrained directory: its own config
    and tokenizer build the teacher, so it reads text through the vocabulary it was fine-tuned with,
    whatever --model_name says. A bare weights file (the original's --teacher_dir) takes them from
    --model_name. Its weights are loaded on first use: a run whose logits are all cached never loads them."""

    def __init__(self, args, label_list):
        self.params, meta = teacher_files(args.teacher_dir)
        fine_tuned = meta.get("args", {})
        self.model_type = args.model_type or fine_tuned.get("model_type", "ernie-gram")
        self.max_seq_length = args.teacher_max_seq_length or fine_tuned.get("max_seq_length", 128)
        if meta:
            check_labels(self.params, meta, label_list)
        self.source = os.path.dirname(os.path.abspath(self.params)) if meta else args.model_name
        self.label_list = label_list

    @functools.cached_property
    def _loaded(self):
        logger.info("teacher %s: architecture and tokenizer from %s", self.params, self.source)
        model, tokenizer = load_teacher(self.model_type, self.source, self.label_list, self.params)
        model.eval()
        return model, tokenizer

    @property
    def model(self):
        return self._loaded[0]

    @property
    def tokenizer(self):
        return self._loaded[1]

    @property
    def pads(self):
        return teacher_pads(self.tokenizer)

    def encode(self, sentences):
        texts = [join_words(words, self.tokenizer.mask_token or self.tokenizer.unk_token) for words in sentences]
        return encode(self.tokenizer, texts, self.max_seq_length)

    @paddle.no_grad()
    def logits(self, sentences, batch_size):
        """Teacher logits of word lists, batched by length. Under the launcher each rank runs every
        ranks-th of the batches one process would, and every rank gets all the logits: the same
        numbers as one process."""
        encoded = self.encode(sentences)
        order = np.argsort([len(ids) for ids, _ in encoded], kind="stable")
        batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
        rank, ranks = world()
        out = np.zeros((len(encoded), len(self.label_list)), dtype="float32")
        for rows in tqdm(batches[rank::ranks], desc="teacher logits", unit="batch", dynamic_ncols=True,
                         disable=rank != 0):
            ids, type_ids = Tuple(*self.pads)([encoded[i] for i in rows])
            out[rows] = self.model(paddle.to_tensor(ids), paddle.to_tensor(type_ids)).numpy()
        if ranks > 1:  # every row was filled by one rank, left 0 by the others: the sum is exact
            total = paddle.to_tensor(out)
            paddle.distributed.all_reduce(total)
            out = total.numpy()
        if not np.isfinite(out).all():  # never cache, nor train on, what a damaged teacher gives
            raise InputError(f"{self.params}: the teacher's logits are not finite numbers (damaged weights?)")
        return out


def transfer_set(args, train_words, unlabeled_words):
    """Word lists the student learns the teacher from, with gold labels for originals:
    (sentences, source) where source[i] indexes the training sentence or is -1."""
    augmenter = Augmenter(train_words + unlabeled_words, **Augmenter.settings(args))
    originals = train_words + unlabeled_words
    to_augment = originals if args.augment_unlabeled else train_words
    augmented = augment_corpus(to_augment, augmenter, args.n_iter, args.data_seed) if args.n_iter > 0 else []
    sentences = originals + [words for _, words in augmented]
    source = list(range(len(train_words))) + [-1] * (len(sentences) - len(train_words))
    logger.info("transfer set: %d training, %d unlabelled, %d augmented sentences",
                len(train_words), len(unlabeled_words), len(augmented))
    return sentences, source


def code_version():
    """SHA-256 of the code that turns texts into the transfer set and the teacher's inputs (and of
    the jieba and PaddleNLP releases it calls): an edit there gives new logits, never stale ones.
    How the logits are batched or spread over processes is left out: it does not change them."""
    sources = [inspect.getsource(code) for code in (segment, join_words, Augmenter, augment_corpus,
                                                    transfer_set, Teacher.encode, encode)]
    return texts_sha256(sources + [jieba.__version__, paddlenlp.__version__])


def cache_manifest(args, teacher, train_texts, unlabeled_texts, dev_texts):
    """What the cached logits depend on; any change gives another cache entry."""
    # --model_name stays in the key although a fine-tuned teacher no longer reads it: the cached entries stay valid
    return {"teacher_weights_sha256": file_sha256(teacher.params), "model_name": args.model_name,
            "model_type": teacher.model_type, "teacher_max_seq_length": teacher.max_seq_length,
            "train_sha256": texts_sha256(train_texts), "dev_sha256": texts_sha256(dev_texts),
            "unlabeled_sha256": texts_sha256(unlabeled_texts) if unlabeled_texts else None,
            "augmentation": {**Augmenter.settings(args), "n_iter": args.n_iter, "data_seed": args.data_seed,
                             "augment_unlabeled": args.augment_unlabeled},
            "code_sha256": code_version()}


def cached_teacher_outputs(args, manifest, compute):
    """compute() -> {name: array} stored under a key of the manifest, reused while it matches. If that
    fails, the cache directories and lock file it made are removed; what was there stays."""
    key = manifest_key(manifest)
    path = os.path.join(args.logits_cache, key)
    # Runs that need the same entry at once (several training seeds) compute it once: the others wait.
    # Under the launcher rank 0 holds the lock and the ranks compute together (each its share).
    lock = os.path.join(args.logits_cache, f".{key}.lock")
    with writable_dir_for(args.logits_cache), held_lock(lock) if is_main() else contextlib.nullcontext():
        return read_or_compute(path, compute, manifest)


def read_or_compute(path, compute, manifest):
    """The outputs stored in cache entry `path`, or compute() stored there atomically (by rank 0)."""
    if main_view(os.path.isfile(os.path.join(path, "manifest.json"))):  # rank 0 holds the lock
        logger.info("teacher logits: reusing %s", path)
        try:
            with np.load(os.path.join(path, "outputs.npz"), allow_pickle=True) as stored:
                return {name: stored[name] for name in stored.files}
        except Exception as e:  # numpy raises several kinds for a damaged archive
            raise InputError(f"{path}: damaged cache entry ({type(e).__name__}: {e}); delete it and the "
                             "logits are computed again")
    outputs = compute()
    if not is_main():
        return outputs
    with atomic_path(path, "the teacher's logits", approx_bytes(outputs)) as tmp:
        os.makedirs(tmp)
        np.savez(os.path.join(tmp, "outputs.npz"), **outputs)
        with open(os.path.join(tmp, "manifest.json"), "w", encoding="utf-8") as f:
            json.dump(manifest, f, ensure_ascii=False, indent=1)  # written last: marks a complete entry
    logger.info("teacher logits: computed and cached in %s", path)
    return outputs


def make_compute_loss(args, teacher=None):
    """compute_loss(model, batch) for fit(): batch = (ids, lengths, teacher logits | teacher
    inputs, gold labels with -1 for sentences without one)."""

    def compute_loss(model, batch):
        input_ids, seq_len, *targets, labels = batch
        if teacher is None:
            (teacher_logits,) = targets
        else:
            with paddle.no_grad():
                teacher_logits = teacher.model(*targets)
        logits = model(input_ids, seq_len)
        soft = distill_loss(logits, teacher_logits, args.distill_loss, args.temperature)
        terms = {args.distill_loss: soft}
        loss = (1 - args.alpha) * soft
        if args.alpha > 0:
            gold = labels >= 0
            if bool(gold.any()):
                terms["ce"] = F.cross_entropy(logits[gold], labels[gold])
                loss = loss + args.alpha * terms["ce"]
        return loss, terms

    return compute_loss


def main(argv=None):
    args = parse_args("distill", argv)
    init_runtime(args)
    with claimed_output_dir(args):
        run(args)


def unlabeled_sentences(args):
    """--unlabeled_path's sentences, each once, where it first stands, unless --keep_duplicate_unlabeled:
    a repeated line would be labelled by the teacher again and weigh more in the transfer set."""
    if not args.unlabeled_path:
        return []
    texts = read_lines(args.unlabeled_path)
    if args.keep_duplicate_unlabeled:
        return texts
    unique = list(dict.fromkeys(texts))  # a file without repeats is kept as it is: so is its cache key
    if len(unique) < len(texts):
        logger.info("%s: %d repeated lines dropped, %d kept (--keep_duplicate_unlabeled keeps them)",
                    args.unlabeled_path, len(texts) - len(unique), len(unique))
    return unique


def transfer_targets(args, splits, label_list, teacher=None):
    """The transfer set and what the student learns from it, the teacher's logits (`teacher`'s, else
    those of the one args name) computed once and cached: a namespace of teacher, words (each split's
    jieba words), sentences (word lists), labels (gold, -1 for sentences without one), logits (None
    with --teacher_logits online), dev_logits, teacher_dev_acc, teacher_dev_unseen_acc (None when
    every dev text is in train) and logits_seconds."""
    texts = {split: [ex["text"] for ex in ds] for split, ds in splits.items()}
    unlabeled_texts = unlabeled_sentences(args)
    teacher = teacher or Teacher(args, label_list)
    words = {split: segment(t) for split, t in texts.items()}
    unlabeled_words = segment(unlabeled_texts)

    def compute():
        sentences, source = transfer_set(args, words["train"], unlabeled_words)
        outputs = {"sentences": np.array([" ".join(s) for s in sentences], dtype=object),
                   "source": np.array(source), "dev_logits": teacher.logits(words["dev"], args.batch_size)}
        if args.teacher_logits == "cached":
            outputs["logits"] = teacher.logits(sentences, args.batch_size)
        return outputs

    manifest = cache_manifest(args, teacher, texts["train"], unlabeled_texts, texts["dev"])
    manifest["contents"] = "logits" if args.teacher_logits == "cached" else "transfer set"
    start = time.time()
    outputs = cached_teacher_outputs(args, manifest, compute)
    logits_seconds = time.time() - start  # near 0 when the cache already held them
    gold = [ex["label"] for ex in splits["train"]]
    correct = outputs["dev_logits"].argmax(-1) == np.array([ex["label"] for ex in splits["dev"]])
    teacher_dev_acc = float(np.mean(correct))
    unseen = unseen_rows(splits["dev"], splits["train"])
    teacher_dev_unseen_acc = float(np.mean(correct[unseen])) if unseen else None
    logger.info("teacher dev accuracy %.4f%s", teacher_dev_acc,
                f", on dev's texts not in train {teacher_dev_unseen_acc:.4f}" if unseen else "")
    return SimpleNamespace(teacher=teacher, words=words, sentences=[s.split(" ") for s in outputs["sentences"]],
                           labels=[gold[i] if i >= 0 else -1 for i in outputs["source"]],
                           logits=outputs.get("logits"), dev_logits=outputs["dev_logits"],
                           teacher_dev_acc=teacher_dev_acc, teacher_dev_unseen_acc=teacher_dev_unseen_acc,
                           logits_seconds=logits_seconds)


def run(args):
    splits, label_list = load_splits(args)
    dictionary = student_dictionary(args)  # checked before the teacher's logits take minutes
    t = transfer_targets(args, splits, label_list)
    sentences, labels, words, teacher = t.sentences, t.labels, t.words, t.teacher
    vocab = student_vocab(args, dictionary, sentences)
    pad_id = vocab.to_indices(PAD)
    student = to_records([[UNK if w == MASK else w for w in s] for s in sentences], labels, vocab, args)
    if args.teacher_logits == "cached":
        records = [(ids, n, logits, label) for (ids, n, label), logits in zip(student, t.logits)]
        batchify = Tuple(Pad(axis=0, pad_val=pad_id, dtype="int64"), Stack(dtype="int64"),
                         Stack(dtype="float32"), Stack(dtype="int64"))
    else:
        records = [(ids, n, *inputs, label) for (ids, n, label), inputs in zip(student, teacher.encode(sentences))]
        batchify = Tuple(Pad(axis=0, pad_val=pad_id, dtype="int64"), Stack(dtype="int64"),
                         *teacher.pads, Stack(dtype="int64"))
    loaders = {"train": create_dataloader(records, batchify, args.batch_size, shuffle=True, seed=args.seed)}
    for split in [s for s in splits if s != "train"]:  # dev, test, --eval_sets
        if splits[split][0]["label"] is not None:
            loaders[split] = create_dataloader(
                to_records(words[split], [ex["label"] for ex in splits[split]], vocab, args),
                student_batchify_fn(pad_id), args.batch_size)
    online = None if args.teacher_logits == "cached" else teacher
    sizes = {"sentences": len(records), "gold_labelled": sum(label >= 0 for label in labels)}
    state = train(args, loaders, vocab, label_list, make_compute_loss(args, online),
                  summary={"teacher_dev_acc": t.teacher_dev_acc, "teacher_dev_unseen_acc": t.teacher_dev_unseen_acc,
                           "transfer_set": sizes,
                           "teacher_logits_seconds": t.logits_seconds})
    if is_main():
        log_teacher_reference(args, t.teacher_dev_acc, state["global_step"])


def log_teacher_reference(args, acc, last_step):
    """The teacher's dev accuracy as a second run under the same tag as the student's, drawn from
    step 0 to the student's last step (early stop and --max_steps included), so VisualDL shows
    both in one chart."""
    logdir = os.path.join(args.logdir, "teacher")
    # One file per run, replaced when the run is resumed; other runs' lines in a shared --logdir stay.
    file_name = f"vdlrecords.teacher.{hashlib.sha256(os.path.abspath(args.output_dir).encode()).hexdigest()[:12]}.log"
    remove_path(os.path.join(logdir, file_name))
    name = f"teacher · {os.path.basename(os.path.normpath(args.output_dir))}"
    with LogWriter(logdir=logdir, file_name=file_name, display_name=name) as writer:
        for step in (0, last_step):
            writer.add_scalar("dev/acc", acc, step)


if __name__ == "__main__":
    run_main(main)
