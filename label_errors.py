r"""Find likely wrong training labels (model_distill's wrong_label_detect and wrong_label_clean).

    python label_errors.py @recipes/teacher.txt --model_type ernie-gram --model_name_or_path ernie-gram-zh \
        --task_name chnsenticorp --output_dir label_issues/chnsenticorp [--clean drop|relabel]
    python label_errors.py @recipes/student.txt --model student ...     # cheaper: a Bi-LSTM per fold

Every training row is scored by a model that never saw it nor a copy of its text: the rows are cut
into --folds folds, rows of identical text (a pair in either order) always in the same fold, each
fold's size and label shares as even as that allows, and for each fold a model is trained on the
others (the teacher fine-tuned with the teacher flags, or a student trained alone with the student
flags; its checkpoint chosen on dev), exported, and run on the held-out rows by predict.py's
Predictor. The folds' probabilities are cached in --probs_cache, so a stopped run continues where it
stopped (a fold from its last checkpoint) and a second run (--clean, another --filter_by) costs
nothing. cleanlab's confident learning (cleanlab.filter.find_label_issues, by --filter_by's rule)
then flags the rows whose label the out-of-sample probabilities contradict, and
<output_dir>/label_issues.tsv lists them worst first, each with its text columns (text_a, and a
pair's text_b); out_of_sample_probs.npy beside it keeps every training row's probabilities, in
train.tsv's order, for cleanlab's other rules. --clean writes <output_dir>/data/, a --data_dir
every script takes: train.tsv in the input's own layout without the flagged rows (drop) or with the
suggested labels (relabel), and dev.tsv (and test.tsv) linked to the originals, which are never
modified.
"""
from args import parse_args, warn_without_recipe

if __name__ == "__main__":
    parse_args("label")  # before Paddle's import (seconds): --help and bad flags answer at once

import logging
import os
import time

import numpy as np

from cleaning import PROBS, find_issues, fold_seconds, out_of_sample_probabilities
from data import TEXT_COLUMN, is_pair, load_splits, text_key, text_line, utf8_lines
from utils import InputError, atomic_path, init_runtime, is_main, make_writable_dir, run_main, write_json

logger = logging.getLogger("distill_lstm")
ISSUES, REPORT, SUMMARY, DATA = "label_issues.tsv", "clean_report.json", "label_issues.json", "data"
OUTPUTS = {ISSUES, REPORT, SUMMARY, DATA, PROBS, "vdl"}  # what a run writes in --output_dir, and may replace


def write_issues(path, rows, flagged, quality, suggested, label_list):
    """The flagged rows, worst first, with their text (a pair's two columns, as train.tsv has them)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        texts = [TEXT_COLUMN, "text_b"] if is_pair(rows) else [TEXT_COLUMN]
        f.write("\t".join(["line", "label", "suggested_label", "label_quality", *texts]) + "\n")
        for i in flagged:
            ex = rows[i]
            f.write(f"{ex['line']}\t{label_list[ex['label']]}\t{label_list[suggested[i]]}\t{quality[i]:.4f}\t"
                    f"{text_line(ex['text'])}\n")


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
    warn_without_recipe("label", args, argv)
    if not args.data_dir:
        raise InputError("label_errors.py reads local files: give the task's train.tsv and dev.tsv with --data_dir")
    check_output_dir(args.output_dir)
    splits, label_list = load_splits(args)
    distinct = len({text_key(ex["text"]) for ex in splits["train"]})
    if distinct < args.folds:  # a text's copies (a pair's in either order) share a fold
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
