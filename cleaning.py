"""Out-of-sample class probabilities of every training row, by folds that keep identical texts together,
and the rows cleanlab flags as likely mislabelled (label_errors.py's library)."""
import json
import logging
import os
import time

import numpy as np

from checkpoint import Run, claimed_output_dir, read_checkpoint_meta
from data import text_key, text_line
from inference import Predictor, export_checkpoint
from teacher import fine_tune
from trainer import train_alone
from utils import (atomic_path, cpu_model, file_sha256, is_main, main_view, make_writable_dir, manifest_key,
                   remove_path, texts_sha256, wait_for_ranks, world, write_json)

logger = logging.getLogger("distill_lstm")


PROBS = "out_of_sample_probs.npy"


# Arguments that do not change what a fold's model learns: left out of the cache key.
NOT_IN_KEY = {"output_dir", "overwrite_output_dir", "logdir", "run_name", "log_freq", "device", "num_threads",
              "clean", "probs_cache", "save_steps", "data_dir", "task_name", "filter_by"}


# Flags added after entries were cached: at these values they change no model, so they stay out of the
# key and the entries stay valid (a new flag goes here with the value that keeps the old behaviour).
KEY_OMITS_AT = {"pooling": "mean", "fc_hidden_size": 0, "pair_op": "mul", "init_embeddings": None,
                "add_vector_words": False}


def grouped_folds(texts, labels, folds, seed):
    """Fold index of each row. Rows of identical text share a fold: a model that trained on one copy
    would score its twin from memory (2,671 of ChnSentiCorp's 9,600 training rows share their text
    with another). Within that, scikit-learn's StratifiedGroupKFold keeps the folds' sizes and label
    shares as even as it can; the texts are dealt in an order shuffled by seed."""
    from sklearn.model_selection import StratifiedGroupKFold

    first_row = {}
    text_ids = [first_row.setdefault(text_key(text), i) for i, text in enumerate(texts)]  # a pair in either order
    fold_of = np.zeros(len(texts), dtype="int64")
    split = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(texts, labels, text_ids)
    for k, (_, held_out) in enumerate(split):
        fold_of[held_out] = k
    return fold_of


def probs_manifest(args, splits, label_list, fold_of):
    """What the out-of-sample probabilities depend on; any change gives another cache entry."""
    def rows_sha(ds):  # labels included: they are what is judged
        return texts_sha256([f"{ex['label']}\t{text_line(ex['text'])}" for ex in ds])

    weights = os.path.join(args.model_name_or_path, "model_state.pdparams")
    # the folds themselves, not the rule that drew them: entries of another assignment (the label-stratified
    # folds before grouping by text, or another scikit-learn's) are never read as this one's
    manifest = {"train_sha256": rows_sha(splits["train"]), "dev_sha256": rows_sha(splits["dev"]), "labels": label_list,
                "folds_sha256": texts_sha256([str(k) for k in fold_of]),
                "teacher_weights_sha256": file_sha256(weights) if args.model == "teacher" and os.path.isfile(weights) else None,
                "vocab_sha256": file_sha256(args.vocab_path) if args.model == "student" else None,
                "settings": {k: v for k, v in sorted(vars(args).items())
                             if k not in NOT_IN_KEY and not (k in KEY_OMITS_AT and v == KEY_OMITS_AT[k])}}
    if args.model == "student" and args.init_embeddings:  # the vectors' content, not only their path (in settings)
        manifest["init_embeddings_sha256"] = file_sha256(args.init_embeddings)
    return manifest


def fold_probabilities(args, splits, label_list, fold_of, k, entry):
    """Class probabilities of fold k's rows from a model trained on the other folds (cached)."""
    path = os.path.join(entry, f"fold{k}.npy")
    if main_view(os.path.isfile(path)):  # every rank trains the same folds
        logger.info("fold %d/%d: probabilities cached in %s", k + 1, args.folds, path)
        return np.load(path)
    train_rows = [ex for ex, fold in zip(splits["train"], fold_of) if fold != k]
    held_out = [ex["text"] for ex, fold in zip(splits["train"], fold_of) if fold == k]
    output_dir = os.path.join(entry, f"fold{k}.run")
    last = os.path.join(output_dir, "last")
    # a stopped fold continues from its last checkpoint (one whose training ended goes straight to scoring)
    before = main_view(read_checkpoint_meta(last)["state"] if is_main() and os.path.isdir(last) else None)
    run = Run(output_dir, os.path.join(args.output_dir, "vdl", f"fold{k}"),
              f"fold {k + 1}/{args.folds} · {os.path.basename(os.path.normpath(args.output_dir))}",
              init_from_ckpt=None if before is None else last, overwrite=before is None)
    logger.info("fold %d/%d: training the %s on %d rows, scoring %d", k + 1, args.folds, args.model,
                len(train_rows), len(held_out))
    start = time.time()
    with claimed_output_dir(run):
        train = fine_tune if args.model == "teacher" else train_alone
        train(args, run, {"train": train_rows, "dev": splits["dev"]}, label_list)  # data-parallel under the launcher
        if is_main():  # one process exports the fold's model and scores its held-out rows
            export_dir = os.path.join(run.output_dir, "export")
            export_checkpoint(os.path.join(run.output_dir, "best"), export_dir)
            probs = Predictor(export_dir, args.device, args.num_threads).predict(held_out, args.batch_size)
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.save(f, probs)
            # what the fold cost, whichever run computed it (a stopped run's folds are read from here); a
            # resumed fold adds the training seconds its checkpoint carries (not the evaluations before it)
            write_json(os.path.join(entry, f"fold{k}.json"), {
                "seconds": time.time() - start + (before["train_seconds"] if before else 0.0),
                "resumed_from_step": before["global_step"] if before else None,
                "processes": world()[1], "threads": args.num_threads, "cpu": cpu_model()})
    wait_for_ranks(f"fold{k}")  # the others read what rank 0 wrote (its export and scoring take minutes)
    if is_main():
        remove_path(run.output_dir)  # the fold's checkpoints: only its probabilities are needed again
    return np.load(path)


def out_of_sample_probabilities(args, splits, label_list):
    """[rows, classes] probabilities, each row's from the fold model that never trained on it (nor on its text)."""
    fold_of = grouped_folds([ex["text"] for ex in splits["train"]], [ex["label"] for ex in splits["train"]],
                            args.folds, args.seed)
    manifest = probs_manifest(args, splits, label_list, fold_of)
    entry = os.path.join(args.probs_cache, manifest_key(manifest))
    if is_main():
        make_writable_dir(entry)
        write_json(os.path.join(entry, "manifest.json"), manifest)
    probs = np.zeros((len(splits["train"]), len(label_list)), dtype="float32")
    for k in range(args.folds):
        probs[fold_of == k] = fold_probabilities(args, splits, label_list, fold_of, k, entry)
    return probs, entry


def fold_seconds(entry, folds):
    """Each fold's training and scoring seconds in a cache entry (None for a fold cached without them)."""
    def seconds(k):
        path = os.path.join(entry, f"fold{k}.json")
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)["seconds"]
    return [seconds(k) for k in range(folds)]


def find_issues(labels, probs, filter_by):
    """(flagged row indices, worst first; every row's label quality) by confident learning."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    flagged = find_label_issues(np.asarray(labels), probs, filter_by=filter_by,
                                return_indices_ranked_by="self_confidence")
    return flagged, get_label_quality_scores(np.asarray(labels), probs)
