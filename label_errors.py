"""Find likely wrong training labels (model_distill's wrong_label_detect and wrong_label_clean).

    python label_errors.py @recipes/teacher.txt --model_type ernie-gram --model_name_or_path ernie-gram-zh \
        --task_name chnsenticorp --output_dir label_issues/chnsenticorp [--clean drop|relabel]
    python label_errors.py @recipes/student.txt --model student ...     # cheaper: a Bi-LSTM per fold

Every training row is scored by a model that never saw it nor a copy of its text: the rows are cut
into --folds folds, rows of identical text always in the same fold, each fold's size and label shares
as even as that allows, and for each fold a model is trained on the others (the teacher fine-tuned
with the teacher flags, or a student trained alone with the student flags; its checkpoint chosen on
dev), exported, and run on the held-out rows by predict.py's Predictor. The folds' probabilities are
cached in --probs_cache, so a stopped run continues where it stopped (a fold from its last
checkpoint) and a second run (--clean, another --filter_by) costs nothing.
cleanlab's confident learning (cleanlab.filter.find_label_issues, by --filter_by's rule) then flags
the rows whose label the out-of-sample probabilities contradict, and <output_dir>/label_issues.tsv
lists them worst first (out_of_sample_probs.npy beside it keeps every training row's probabilities,
in train.tsv's order, for cleanlab's other rules). --clean writes <output_dir>/data/, a --data_dir
every script takes: train.tsv in the input's own layout without the flagged rows (drop) or with the
suggested labels (relabel), and dev.tsv (and test.tsv) linked to the originals, which are never
modified.
"""
from args import parse_args

if __name__ == "__main__":
    parse_args("label")  # before Paddle's import (seconds): --help and bad flags answer at once

import copy
import json
import logging
import os
import time

import numpy as np

from data import TEXT_COLUMN, load_splits, utf8_lines
from utils import (InputError, atomic_path, claimed_output_dir, file_sha256, init_runtime, is_main, main_view,
                   make_writable_dir, manifest_key, read_checkpoint_meta, remove_path, run_main, texts_sha256,
                   wait_for_ranks, world, write_json)

logger = logging.getLogger("distill_lstm")
ISSUES, REPORT, SUMMARY, DATA = "label_issues.tsv", "clean_report.json", "label_issues.json", "data"
PROBS = "out_of_sample_probs.npy"
OUTPUTS = {ISSUES, REPORT, SUMMARY, DATA, PROBS, "vdl"}  # what a run writes in --output_dir, and may replace
# Arguments that do not change what a fold's model learns: left out of the cache key.
NOT_IN_KEY = {"output_dir", "overwrite_output_dir", "logdir", "run_name", "log_freq", "device", "num_threads",
              "clean", "probs_cache", "save_steps", "data_dir", "task_name", "filter_by"}
# Flags added after entries were cached: at these values they change no model, so they stay out of the
# key and the entries stay valid (a new flag goes here with the value that keeps the old behaviour).
KEY_OMITS_AT = {"pooling": "mean", "fc_hidden_size": 0}


def grouped_folds(texts, labels, folds, seed):
    """Fold index of each row. Rows of identical text share a fold: a model that trained on one copy
    would score its twin from memory (2,671 of ChnSentiCorp's 9,600 training rows share their text
    with another). Within that, scikit-learn's StratifiedGroupKFold keeps the folds' sizes and label
    shares as even as it can; the texts are dealt in an order shuffled by seed."""
    from sklearn.model_selection import StratifiedGroupKFold

    first_row = {}
    text_ids = [first_row.setdefault(text, i) for i, text in enumerate(texts)]
    fold_of = np.zeros(len(texts), dtype="int64")
    split = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(texts, labels, text_ids)
    for k, (_, held_out) in enumerate(split):
        fold_of[held_out] = k
    return fold_of


def probs_manifest(args, splits, label_list, fold_of):
    """What the out-of-sample probabilities depend on; any change gives another cache entry."""
    def rows_sha(ds):  # labels included: they are what is judged
        return texts_sha256([f"{ex['label']}\t{ex['text']}" for ex in ds])

    weights = os.path.join(args.model_name_or_path, "model_state.pdparams")
    # the folds themselves, not the rule that drew them: entries of another assignment (the label-stratified
    # folds before grouping by text, or another scikit-learn's) are never read as this one's
    return {"train_sha256": rows_sha(splits["train"]), "dev_sha256": rows_sha(splits["dev"]), "labels": label_list,
            "folds_sha256": texts_sha256([str(k) for k in fold_of]),
            "teacher_weights_sha256": file_sha256(weights) if args.model == "teacher" and os.path.isfile(weights) else None,
            "vocab_sha256": file_sha256(args.vocab_path) if args.model == "student" else None,
            "settings": {k: v for k, v in sorted(vars(args).items())
                         if k not in NOT_IN_KEY and not (k in KEY_OMITS_AT and v == KEY_OMITS_AT[k])}}


def fold_probabilities(args, splits, label_list, fold_of, k, entry):
    """Class probabilities of fold k's rows from a model trained on the other folds (cached)."""
    path = os.path.join(entry, f"fold{k}.npy")
    if main_view(os.path.isfile(path)):  # every rank trains the same folds
        logger.info("fold %d/%d: probabilities cached in %s", k + 1, args.folds, path)
        return np.load(path)
    import export_model
    from predict import Predictor
    from student_lstm_small import train_alone
    from teacher_train_glue import fine_tune

    train_rows = [ex for ex, fold in zip(splits["train"], fold_of) if fold != k]
    held_out = [ex["text"] for ex, fold in zip(splits["train"], fold_of) if fold == k]
    run = copy.copy(args)
    run.output_dir = os.path.join(entry, f"fold{k}.run")
    last = os.path.join(run.output_dir, "last")
    # a stopped fold continues from its last checkpoint (one whose training ended goes straight to scoring)
    before = main_view(read_checkpoint_meta(last)["state"] if is_main() and os.path.isdir(last) else None)
    run.overwrite_output_dir, run.init_from_ckpt = before is None, None if before is None else last
    run.logdir = os.path.join(args.output_dir, "vdl", f"fold{k}")
    run.run_name = f"fold {k + 1}/{args.folds} · {os.path.basename(os.path.normpath(args.output_dir))}"
    run.eval_sets = []
    logger.info("fold %d/%d: training the %s on %d rows, scoring %d", k + 1, args.folds, args.model,
                len(train_rows), len(held_out))
    start = time.time()
    with claimed_output_dir(run):
        train = fine_tune if args.model == "teacher" else train_alone
        train(run, {"train": train_rows, "dev": splits["dev"]}, label_list)  # data-parallel under the launcher
        if is_main():  # one process exports the fold's model and scores its held-out rows
            export_dir = os.path.join(run.output_dir, "export")
            export_model.main(["--checkpoint", os.path.join(run.output_dir, "best"), "--output_dir", export_dir])
            probs = Predictor(export_dir, args.device, args.num_threads).predict(held_out, args.batch_size)
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.save(f, probs)
            # what the fold cost, whichever run computed it (a stopped run's folds are read from here); a
            # resumed fold adds the training seconds its checkpoint carries (not the evaluations before it)
            write_json(os.path.join(entry, f"fold{k}.json"), {
                "seconds": time.time() - start + (before["train_seconds"] if before else 0.0),
                "resumed_from_step": before["global_step"] if before else None,
                "processes": world()[1], "threads": args.num_threads})
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


def write_issues(path, rows, flagged, quality, suggested, label_list):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(f"line\tlabel\tsuggested_label\tlabel_quality\t{TEXT_COLUMN}\n")
        for i in flagged:
            ex = rows[i]
            f.write(f"{ex['line']}\t{label_list[ex['label']]}\t{label_list[suggested[i]]}\t{quality[i]:.4f}\t"
                    f"{ex['text']}\n")


def write_clean_data(args, train_path, rows, flagged, suggested, label_list):
    """<output_dir>/data: train.tsv cleaned in the input's layout (its header and columns kept),
    dev.tsv and test.tsv linked to the task's; and the report of every change."""
    changes = {rows[i]["line"]: label_list[suggested[i]] for i in flagged}
    lines = list(utf8_lines(train_path))
    label_column = lines[0][1].split("\t").index("label")
    kept, report = [], []
    for lineno, line in lines:
        if lineno not in changes:
            kept.append(line)
            continue
        fields = line.split("\t")
        report.append({"line": lineno, "label": fields[label_column].strip(), "to": changes[lineno]})
        if args.clean == "relabel":
            fields[label_column] = changes[lineno]
            kept.append("\t".join(fields))
    data_dir = os.path.join(args.output_dir, DATA)
    with atomic_path(data_dir) as tmp:
        os.makedirs(tmp)
        with open(os.path.join(tmp, "train.tsv"), "w", encoding="utf-8") as f:
            f.write("\n".join(kept) + "\n")
        for split in ("dev", "test"):
            original = os.path.join(os.path.dirname(train_path), f"{split}.tsv")
            if os.path.isfile(original):
                os.symlink(os.path.abspath(original), os.path.join(tmp, f"{split}.tsv"))
    write_json(os.path.join(args.output_dir, REPORT), {
        "clean": args.clean, "input": train_path, "rows_before": len(rows),
        "rows_after": len(rows) - (len(report) if args.clean == "drop" else 0),
        "dropped" if args.clean == "drop" else "relabelled": report})
    logger.info("cleaned training data (%s %d rows) in %s; report %s", args.clean, len(report), data_dir,
                os.path.join(args.output_dir, REPORT))


def check_output_dir(output_dir):
    """--output_dir holds nothing, or only what a previous run of this script wrote (replaced)."""
    foreign = sorted(set(os.listdir(output_dir)) - OUTPUTS) if os.path.isdir(output_dir) else []
    if foreign:
        raise InputError(f"{output_dir}: holds {', '.join(foreign[:4])}{' ...' if len(foreign) > 4 else ''}, "
                         "which label_errors.py did not write; choose another --output_dir")


def main(argv=None):
    args = parse_args("label", argv)
    init_runtime(args)
    if not args.data_dir:
        raise InputError("label_errors.py reads local files: give the task's train.tsv and dev.tsv with --data_dir")
    check_output_dir(args.output_dir)
    splits, label_list = load_splits(args)
    distinct = len({ex["text"] for ex in splits["train"]})
    if distinct < args.folds:  # a text's copies share a fold
        raise InputError(f"{args.data_dir}/train.tsv: {distinct} distinct texts for {args.folds} folds")
    if is_main():
        make_writable_dir(args.output_dir)
    start = time.time()
    probs, entry = out_of_sample_probabilities(args, splits, label_list)
    if not is_main():
        return  # under the launcher the others only trained
    rows = list(splits["train"])
    labels = [ex["label"] for ex in rows]
    flagged, quality = find_issues(labels, probs, args.filter_by)
    suggested = probs.argmax(axis=-1)
    with atomic_path(os.path.join(args.output_dir, PROBS)) as tmp, open(tmp, "wb") as f:
        np.save(f, probs)
    write_issues(os.path.join(args.output_dir, ISSUES), rows, flagged, quality, suggested, label_list)
    write_json(os.path.join(args.output_dir, SUMMARY), {
        "rows": len(rows), "flagged": len(flagged), "filter_by": args.filter_by,
        "flagged_by_label": {label_list[c]: int(sum(labels[i] == c for i in flagged)) for c in range(len(label_list))},
        "out_of_sample_accuracy": float(np.mean(suggested == np.asarray(labels))),
        "model": args.model, "folds": args.folds, "probs_cache_entry": entry, "seconds": time.time() - start,
        "fold_seconds": fold_seconds(entry, args.folds)})
    logger.info("%d of %d training rows flagged; worst first in %s", len(flagged), len(rows),
                os.path.join(args.output_dir, ISSUES))
    if args.clean:
        write_clean_data(args, os.path.join(args.data_dir, "train.tsv"), rows, flagged, suggested, label_list)


if __name__ == "__main__":
    run_main(main)
