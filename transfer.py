"""The transfer set (training sentences, augmented copies, unlabelled sentences), the teacher's logits
over it computed once and cached, and the word student distilled on them."""
import contextlib
import hashlib
import inspect
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Optional

import jieba
import numpy as np
import paddlenlp
from paddlenlp.data import Stack, Tuple
from visualdl import LogWriter

import vectors
from checkpoint import resumable_meta
from data import (MASK, PAD, UNK, Augmenter, augment_corpus, create_dataloader, is_pair, join_words, per_side,
                  positive_class, read_lines, segment, sides, text_line, unseen_rows)
from losses import make_compute_loss
from students import batchify_fn as student_batchify_fn
from students import input_fields, student_dictionary, student_vocab, to_records
from teacher import Teacher, encode
from trainer import confusion_matrix, scores, train_student
from utils import (InputError, approx_bytes, atomic_path, file_sha256, held_lock, is_main, main_view, manifest_key,
                   remove_path, texts_sha256, writable_dir_for)
from vectors import check_header, nearest_neighbours

logger = logging.getLogger("distill_lstm")


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


def stored(words):
    """A transfer sentence as the cache keeps it: its words joined by spaces, a pair's sides by a tab."""
    return "\t".join(" ".join(side) for side in sides(words))


def restored(text):
    """The words stored() kept."""
    parts = [side.split(" ") for side in text.split("\t")]
    return tuple(parts) if len(parts) > 1 else parts[0]


def code_version():
    """SHA-256 of the code that turns texts into the transfer set and the teacher's inputs (and of
    the jieba and PaddleNLP releases it calls): an edit there gives new logits, never stale ones.
    How the logits are batched or spread over processes is left out: it does not change them."""
    sources = [inspect.getsource(code) for code in (segment, sides, per_side, join_words, Augmenter, augment_corpus,
                                                    nearest_neighbours, transfer_set, Teacher.encode, encode)]
    return texts_sha256(sources + [jieba.__version__, paddlenlp.__version__])


def cache_manifest(args, teacher, train_texts, unlabeled_texts, dev_texts):
    """What the cached logits depend on; any change gives another cache entry."""
    # --model_name only where the teacher reads it: a checkpoint's entries then serve any machine and path
    model_name = None if teacher.self_contained else args.model_name
    return {"teacher_weights_sha256": teacher.weights_sha256, "model_name": model_name,
            "model_type": teacher.model_type, "teacher_max_seq_length": teacher.max_seq_length,
            "train_sha256": texts_sha256(map(text_line, train_texts)),
            "dev_sha256": texts_sha256(map(text_line, dev_texts)),
            "unlabeled_sha256": texts_sha256(map(text_line, unlabeled_texts)) if unlabeled_texts else None,
            "augmentation": augmentation_key(args), "code_sha256": code_version()}


def augmentation_key(args):
    """The transfer set's rules, as the logits cache keys them. The neighbour rule's vectors count by their
    content and the code that reads them, not by their path (an entry then serves any machine); a rule that is
    off counts at its defaults, whatever its other flags say."""
    settings = Augmenter.settings(args)
    neighbours = {"nn_vectors_sha256": None}
    if args.p_nn > 0:
        settings["nn_vectors"] = None
        neighbours = {"nn_vectors_sha256": file_sha256(args.nn_vectors),
                      "nn_reader_sha256": texts_sha256([inspect.getsource(vectors)])}
    else:
        defaults = inspect.signature(Augmenter).parameters
        settings.update({name: defaults[name].default for name in ("nn_k", "nn_vectors") if name in settings})
    return {**settings, "n_iter": args.n_iter, "data_seed": args.data_seed,
            "augment_unlabeled": args.augment_unlabeled, **neighbours}


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
        np.savez_compressed(os.path.join(tmp, "outputs.npz"), **outputs)  # its sentences compress about 5x
        with open(os.path.join(tmp, "manifest.json"), "w", encoding="utf-8") as f:
            json.dump(manifest, f, ensure_ascii=False, indent=1)  # written last: marks a complete entry
    logger.info("teacher logits: computed and cached in %s", path)
    return outputs


def unlabeled_sentences(args, pairs):
    """--unlabeled_path's sentences (a pair task's: pairs, text_a and text_b separated by a tab), each once,
    where it first stands, unless --keep_duplicate_unlabeled: a repeated line would be labelled by the teacher
    again and weigh more in the transfer set."""
    if not args.unlabeled_path:
        return []
    texts = read_lines(args.unlabeled_path, pairs)
    if args.keep_duplicate_unlabeled:
        return texts
    unique = list(dict.fromkeys(texts))  # a file without repeats is kept as it is: so is its cache key
    if len(unique) < len(texts):
        logger.info("%s: %d repeated lines dropped, %d kept (--keep_duplicate_unlabeled keeps them)",
                    args.unlabeled_path, len(texts) - len(unique), len(unique))
    return unique


@dataclass
class TransferTargets:
    """What transfer_targets() gives a distillation job."""
    teacher: Teacher
    words: dict  # each split's jieba words
    sentences: list  # the transfer set, word lists
    labels: list  # gold labels of the training sentences, -1 for the others
    logits: Optional[np.ndarray]  # the teacher's, one row per sentence; None with --teacher_logits online
    dev_logits: np.ndarray
    teacher_dev_acc: float
    teacher_dev_unseen_acc: Optional[float]  # None when every dev text is in train
    teacher_dev_f1: Optional[float]  # a task with an F1's (data.positive_class)
    logits_seconds: float  # near 0 when the cache held them


def transfer_targets(args, splits, label_list, teacher=None):
    """The transfer set and what the student learns from it, the teacher's logits (`teacher`'s, else
    those of the one args name) computed once and cached."""
    texts = {split: [ex["text"] for ex in ds] for split, ds in splits.items()}
    pairs = is_pair(splits["train"])
    unlabeled_texts = unlabeled_sentences(args, pairs)
    if args.p_nn > 0:
        check_header(args.nn_vectors)  # before the teacher loads, and before its logits take minutes
    teacher = teacher or Teacher(args, label_list, pairs)
    words = {split: segment(t) for split, t in texts.items()}
    unlabeled_words = segment(unlabeled_texts)

    def compute():
        sentences, source = transfer_set(args, words["train"], unlabeled_words)
        outputs = {"sentences": np.array([stored(s) for s in sentences], dtype=object),
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
    predicted, dev_gold = outputs["dev_logits"].argmax(-1), np.array([ex["label"] for ex in splits["dev"]])
    positive = positive_class(label_list, pairs)
    dev = scores(confusion_matrix(predicted, dev_gold, len(label_list)), positive)
    teacher_dev_acc, teacher_dev_f1 = dev["acc"], dev.get("f1")
    unseen = unseen_rows(splits["dev"], splits["train"])
    teacher_dev_unseen_acc = float(np.mean(predicted[unseen] == dev_gold[unseen])) if unseen else None
    logger.info("teacher dev accuracy %.4f%s%s", teacher_dev_acc, "" if positive is None else f", F1 {teacher_dev_f1:.4f}",
                f", on dev's texts not in train {teacher_dev_unseen_acc:.4f}" if unseen else "")
    return TransferTargets(teacher=teacher, words=words, sentences=[restored(s) for s in outputs["sentences"]],
                           labels=[gold[i] if i >= 0 else -1 for i in outputs["source"]],
                           logits=outputs.get("logits"), dev_logits=outputs["dev_logits"],
                           teacher_dev_acc=teacher_dev_acc, teacher_dev_unseen_acc=teacher_dev_unseen_acc,
                           teacher_dev_f1=teacher_dev_f1, logits_seconds=logits_seconds)


def distill_student(args, run, splits, label_list):
    """Train args.student in `run` on the teacher's logits over the transfer set (and the gold labels, by --alpha)."""
    # checked before the teacher's logits take minutes
    if run.init_from_ckpt:
        resumable_meta(run.init_from_ckpt, label_list, is_pair(splits["train"]), "student", vars(args))
    dictionary = student_dictionary(args, run.init_from_ckpt)
    if args.init_embeddings and not run.init_from_ckpt:
        check_header(args.init_embeddings, args.emb_dim)  # so is the vectors' dim
    t = transfer_targets(args, splits, label_list)
    sentences, labels, words, teacher = t.sentences, t.labels, t.words, t.teacher
    vocab = student_vocab(args, dictionary, sentences, run.init_from_ckpt)
    pad_id, pairs = vocab.to_indices(PAD), is_pair(splits["train"])
    student = to_records([per_side(lambda side: [UNK if w == MASK else w for w in side], s) for s in sentences],
                         labels, vocab, args)
    if args.teacher_logits == "cached":
        records = [(*inputs, logits, label) for (*inputs, label), logits in zip(student, t.logits)]
        batchify = Tuple(*input_fields(pad_id, pairs), Stack(dtype="float32"), Stack(dtype="int64"))
    else:
        records = [(*inputs, *teacher_inputs, label)
                   for (*inputs, label), teacher_inputs in zip(student, teacher.encode(sentences))]
        batchify = Tuple(*input_fields(pad_id, pairs), *teacher.pads, Stack(dtype="int64"))
    loaders = {"train": create_dataloader(records, batchify, args.batch_size, shuffle=True, seed=args.seed)}
    for split in [s for s in splits if s != "train"]:  # dev, test, --eval_sets
        if splits[split][0]["label"] is not None:
            loaders[split] = create_dataloader(
                to_records(words[split], [ex["label"] for ex in splits[split]], vocab, args),
                student_batchify_fn(pad_id, pairs), args.batch_size)
    online = None if args.teacher_logits == "cached" else teacher
    sizes = {"sentences": len(records), "gold_labelled": sum(label >= 0 for label in labels)}
    summary = {"teacher_dev_acc": t.teacher_dev_acc, "teacher_dev_unseen_acc": t.teacher_dev_unseen_acc,
               **({"teacher_dev_f1": t.teacher_dev_f1} if pairs else {}),
               "transfer_set": sizes, "teacher_logits_seconds": t.logits_seconds}
    compute_loss = make_compute_loss(args, online, student_inputs=len(input_fields(pad_id, pairs)))
    state = train_student(args, run, loaders, vocab, label_list, pairs, compute_loss, summary=summary)
    if is_main():
        log_teacher_reference(run, t.teacher_dev_acc, state["global_step"])


def log_teacher_reference(run, acc, last_step):
    """The teacher's dev accuracy as a second run under the same tag as the student's, drawn from
    step 0 to the student's last step (early stop and --max_steps included), so VisualDL shows
    both in one chart."""
    logdir = os.path.join(run.logdir, "teacher")
    # One file per run, replaced when the run is resumed; other runs' lines in a shared --logdir stay.
    file_name = f"vdlrecords.teacher.{hashlib.sha256(os.path.abspath(run.output_dir).encode()).hexdigest()[:12]}.log"
    remove_path(os.path.join(logdir, file_name))
    name = f"teacher · {os.path.basename(os.path.normpath(run.output_dir))}"
    with LogWriter(logdir=logdir, file_name=file_name, display_name=name) as writer:
        for step in (0, last_step):
            writer.add_scalar("dev/acc", acc, step)
