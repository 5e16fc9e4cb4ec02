"""bench_label_errors.py's steps: noise draws, label_errors.py's flags scored on them, cleaned sets' runs, tables.
Over 350 lines because it is that bench's whole pipeline, each step a short function; nothing else imports it."""
import argparse
import collections
import glob
import json
import os
import re
import statistics
import subprocess
import sys
from typing import NamedTuple

import numpy as np

# common first: it puts the project on sys.path
from common import ROOT, SHARED_DATA, fetch_offline_teacher, python_command, write_results, write_unseen_dev
from args import CACHE_DIR, build_parser, recipe  # noqa: E402, I001

TASK = os.path.join(SHARED_DATA, "chnsenticorp")
WORK = os.path.join(CACHE_DIR, "label_bench")
RESULTS = os.path.join(ROOT, "bench", "results", "label_errors")
# label_errors.py's --probs_cache, committed: a draw's folds (36-70 min each for the teacher) outlast the machine
# that scored them, so a draw spans sessions; a fold's checkpoints (<entry>/fold<k>.run/) are not committed
FOLD_PROBS = os.path.join(RESULTS, "fold_probs")
SEEDS = [1, 7, 2021]
UNSEEN = "task_dev_unseen"  # --eval_sets name of dev's texts the task's clean train does not hold
FOLDS = "grouped by text"  # label_errors.py's folds since issue 38 (the top-level results: stratified by label)


def filter_rules():
    """label_errors.py's --filter_by choices, and its default: the rules `detect` scores."""
    parser = build_parser("label")
    (action,) = [a for a in parser._actions if a.dest == "filter_by"]  # argparse lists choices nowhere public
    return list(action.choices), parser.get_default("filter_by")


RULES, DEFAULT_RULE = filter_rules()


class Draw(NamedTuple):
    """Which training labels a noise draw flips: `share` of all rows (symmetric noise) or of each
    label's rows ({label: share}, class-conditional noise), the rows chosen by `seed`."""
    name: str
    share: float | dict
    seed: int


def draw_name(text):
    """--draw: sym<P>_seed<S> flips P% of all rows, cc<P1>_<P0>_seed<S> P1% of the label-1 rows and
    P0% of the label-0 rows."""
    symmetric = re.fullmatch(r"sym(\d+)_seed(\d+)", text)
    by_label = re.fullmatch(r"cc(\d+)_(\d+)_seed(\d+)", text)
    if symmetric and int(symmetric[1]) <= 100:
        return Draw(text, int(symmetric[1]) / 100, int(symmetric[2]))
    if by_label and max(int(by_label[1]), int(by_label[2])) <= 100:
        return Draw(text, {1: int(by_label[1]) / 100, 0: int(by_label[2]) / 100}, int(by_label[3]))
    raise argparse.ArgumentTypeError(f"expected sym<PERCENT>_seed<N> or cc<PERCENT1>_<PERCENT0>_seed<N>, got {text!r}")


def flipped_rows(labels, draw):
    """Indices of the rows whose label the draw flips."""
    rng = np.random.default_rng(draw.seed)
    if not isinstance(draw.share, dict):  # drawn over all rows, as the first draw (sym10_seed0) was
        return rng.choice(len(labels), size=round(draw.share * len(labels)), replace=False)
    flipped = []
    for label, share in sorted(draw.share.items()):
        rows = np.flatnonzero(np.asarray(labels) == label)
        flipped.append(rng.choice(rows, size=round(share * len(rows)), replace=False))
    return np.concatenate(flipped)


def noisy_task(draw):
    """(data dir, file lines whose label was flipped): ChnSentiCorp with the draw's training labels flipped."""
    data_dir = os.path.join(WORK, draw.name, "noisy")
    flips_path = os.path.join(data_dir, "flipped_lines.json")
    if os.path.isfile(flips_path):
        with open(flips_path, encoding="utf-8") as f:
            return data_dir, set(json.load(f))
    with open(os.path.join(TASK, "train.tsv"), encoding="utf-8") as f:
        header, *rows = f.read().splitlines()
    labels = [int(row.split("\t", 1)[0]) for row in rows]
    flipped = flipped_rows(labels, draw)
    for i in flipped:
        label, text = rows[i].split("\t", 1)
        rows[i] = f"{1 - int(label)}\t{text}"
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, "train.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join([header, *rows]) + "\n")
    if not os.path.lexists(os.path.join(data_dir, "dev.tsv")):
        os.symlink(os.path.abspath(os.path.join(TASK, "dev.tsv")), os.path.join(data_dir, "dev.tsv"))
    lines = sorted(int(i) + 2 for i in flipped)  # file lines: the header is line 1
    with open(flips_path, "w", encoding="utf-8") as f:
        json.dump(lines, f)
    return data_dir, set(lines)


def label_command(args, data_dir, output_dir, *extra):
    job = "teacher" if args.model == "teacher" else "student"
    cmd = [*python_command(args.processes, os.path.join(WORK, "launch_logs")), "label_errors.py", *recipe(job),
           "--model", args.model, "--data_dir", data_dir, "--output_dir", output_dir, "--device", "cpu",
           "--num_threads", str(args.num_threads), "--probs_cache", FOLD_PROBS, *extra, *args.extra]
    if args.model == "teacher":
        cmd += ["--model_type", "bert", "--model_name_or_path", fetch_offline_teacher()]
    return cmd


CLEAN = ("drop", "relabel")  # label_errors.py's --clean: the bench measures both


def scorer_of(args):
    """A scorer's name: its model, and the tag of a variant (e.g. teacher_3epochs for other ARGS)."""
    return f"{args.model}_{args.tag}" if args.tag else args.model


def data_name(text):
    """train's DATA: noisy, or <clean>-<scorer> (drop-teacher, relabel-student_T, ...)."""
    if text != "noisy" and not re.fullmatch(rf"({'|'.join(CLEAN)})-(teacher|student)(_\w+)?", text):
        raise argparse.ArgumentTypeError(f"expected noisy or <{'|'.join(CLEAN)}>-<teacher|student>[_TAG], got {text!r}")
    return text


def tag_name(text):
    if not re.fullmatch(r"\w+", text):
        raise argparse.ArgumentTypeError(f"letters, digits and _ only, got {text!r}")
    return text


def issues_dir(draw, clean, scorer):
    """label_errors.py's --output_dir for SCORER's flags on DRAW cleaned by CLEAN (the folds' scores are shared)."""
    return os.path.join(WORK, draw.name, f"issues-{scorer}-{clean}")


def detect_result(draw, scorer):
    return os.path.join(RESULTS, draw.name, f"detect_{scorer}.json")


def rows_file(draw, scorer):
    """Every training row of DRAW as SCORER judged it, which each of detect's scores is counted from."""
    return os.path.join(RESULTS, draw.name, f"detect_{scorer}_rows.tsv")


def detect(args):
    data_dir, flips = noisy_task(args.draw)
    scorer = scorer_of(args)
    result = detect_result(args.draw, scorer)
    needed = [clean for clean in CLEAN if not all(os.path.isfile(train_result(args.draw, f"{clean}-{scorer}", seed))
                                                    for seed in SEEDS)]
    # Done, unless runs still to come need cleaned data this machine lacks (the cache does not outlive a machine)
    measured = os.path.isfile(result)
    if measured and all(os.path.isdir(data_dir_of(args.draw, f"{clean}-{scorer}")) for clean in needed):
        print(f"{result}: done, skipped")
        return
    for clean in CLEAN:  # the second reads the folds' cached scores
        subprocess.run(label_command(args, data_dir, issues_dir(args.draw, clean, scorer), "--clean", clean),
                       cwd=ROOT, check=True)
    if measured:  # its wall time was the folds' training, which the cache spared this time
        print(f"{result}: measured before; cleaned data written again")
        return
    output_dir = issues_dir(args.draw, CLEAN[0], scorer)
    rows = judged_rows(data_dir, flips, output_dir)
    write_judged_rows(rows_file(args.draw, scorer), rows)
    with open(os.path.join(output_dir, "label_issues.json"), encoding="utf-8") as f:
        cleaned_by = json.load(f)["filter_by"]
    true_labels = collections.Counter(str(1 - row["label"]) for row in rows if row["flipped"])
    detection = {"draw": args.draw.name, "folds": FOLDS, "scorer": scorer, "model": args.model, "flipped": len(flips),
                 "flipped_by_true_label": dict(sorted(true_labels.items())), "rules": rule_scores(rows),
                 "cleaned_by": cleaned_by, "per_row": os.path.basename(rows_file(args.draw, scorer)),
                 "wall_minutes": scoring_minutes(output_dir), "processes": args.processes,
                 "threads": args.num_threads, "args": args.extra,
                 "teacher": "m3e-small (offline)" if args.model == "teacher" else None,
                 "cleaned_data": {clean: data_dir_of(args.draw, f"{clean}-{scorer}") for clean in CLEAN}}
    print(json.dumps(detection, indent=1))
    write_results(result, detection)


def judged_rows(data_dir, flips, output_dir):
    """Every training row of a draw as a scorer judged it: file line, given label, whether the draw
    flipped it, suggested label, label quality, and whether each rule flags it (label_errors.py's own
    cleanlab call, on the out-of-sample probabilities its run saved)."""
    from cleaning import PROBS, find_issues

    probs = np.load(os.path.join(output_dir, PROBS))  # columns: labels 0 and 1
    with open(os.path.join(data_dir, "train.tsv"), encoding="utf-8") as f:
        labels = [int(line.split("\t", 1)[0]) for line in f.read().splitlines()[1:]]
    flags = {rule: set(find_issues(labels, probs, rule)[0]) for rule in RULES}
    quality = find_issues(labels, probs, DEFAULT_RULE)[1]  # each rule's call scores the same quality
    return [{"line": i + 2, "label": label, "flipped": int(i + 2 in flips), "suggested_label": int(probs[i].argmax()),
             "label_quality": float(quality[i]), **{rule: int(i in flags[rule]) for rule in RULES}}
            for i, label in enumerate(labels)]


def write_judged_rows(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\t".join(rows[0]) + "\n")
        for row in rows:
            f.write("\t".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()) + "\n")


def detection_scores(flagged, flipped):
    """How the flagged file lines find the flipped ones: precision, recall, F1."""
    hits = len(flagged & flipped)
    precision, recall = hits / max(len(flagged), 1), hits / len(flipped)
    return {"flagged": len(flagged), "correct": hits, "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / max(precision + recall, 1e-12)}


def rule_scores(rows):
    """Each rule's detection scores, counted from the judged rows."""
    flipped = {row["line"] for row in rows if row["flipped"]}
    return {rule: detection_scores({row["line"] for row in rows if row[rule]}, flipped) for rule in RULES}


def scoring_minutes(output_dir):
    """What a scorer's folds cost to train and score, summed over the runs that computed them (a run
    stopped mid-way leaves its folds cached); None for folds cached before their cost was recorded."""
    with open(os.path.join(output_dir, "label_issues.json"), encoding="utf-8") as f:
        seconds = json.load(f)["fold_seconds"]
    return None if None in seconds else sum(seconds) / 60


def data_dir_of(draw, name):
    if name == "noisy":
        return noisy_task(draw)[0]
    return os.path.join(issues_dir(draw, *name.split("-", 1)), "data")  # <clean>-<scorer>


def train_result(draw, data, seed):
    """Where `train` writes the result of the Bi-LSTM trained on DRAW's DATA (noisy, <clean>-<scorer>) with seed."""
    return os.path.join(RESULTS, draw.name, f"train_{data}", f"seed{seed}.json")


def train(args):
    # Every row is scored on the task's dev texts its clean train does not hold: a cleaned set that
    # dropped a row would make the run's own dev_unseen larger, and the rows of the table incomparable.
    unseen_dev = os.path.join(WORK, "dev_unseen.tsv")
    unseen_examples = write_unseen_dev(TASK, unseen_dev)
    for seed in args.seeds:
        path = train_result(args.draw, args.data, seed)
        if os.path.isfile(path):
            print(f"{path}: done, skipped")
            continue
        data_dir = os.path.abspath(data_dir_of(args.draw, args.data))
        if not os.path.isdir(data_dir):
            model, _, tag = args.data.split("-", 1)[1].partition("_")
            sys.exit(f"{data_dir}: no such data; `bench_label_errors.py detect --draw {args.draw.name} --model {model}"
                     f"{' --tag ' + tag if tag else ''}` writes it")
        output_dir = os.path.join(WORK, args.draw.name, "runs", args.data, f"seed{seed}")
        cmd = [sys.executable, "student_lstm_small.py", *recipe("student"), "--data_dir", data_dir,
               "--seed", str(seed), "--device", "cpu", "--num_threads", str(args.num_threads),
               "--eval_sets", f"{UNSEEN}={unseen_dev}", "--output_dir", output_dir, "--overwrite_output_dir"]
        subprocess.run(cmd, cwd=ROOT, check=True)
        with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)
        write_results(path, {"draw": args.draw.name, "data": args.data, "seed": seed, "dev_acc": summary["best_dev_acc"],
                             "dev_unseen_acc": summary["eval_sets"][UNSEEN]["acc"],
                             "dev_unseen_examples": unseen_examples, "command": " ".join(cmd[1:])})


def real(args):
    scorer = scorer_of(args)
    output_dir = os.path.join(WORK, f"real-{scorer}")
    result = os.path.join(RESULTS, f"real_{scorer}.json")
    if os.path.isfile(result):
        print(f"{result}: done, skipped")
        return
    subprocess.run(label_command(args, TASK, output_dir), cwd=ROOT, check=True)
    with open(os.path.join(output_dir, "label_issues.tsv"), encoding="utf-8") as f:
        header, *rows = f.read().splitlines()
    write_results(result, {
        "scorer": scorer, "model": args.model, "folds": FOLDS, "flagged": len(rows),
        "wall_minutes": scoring_minutes(output_dir), "processes": args.processes, "threads": args.num_threads,
        "args": args.extra, "worst_30": [dict(zip(header.split("\t"), row.split("\t"))) for row in rows[:30]]})


def count_rows(task):
    with open(os.path.join(task, "train.tsv"), encoding="utf-8") as f:
        return sum(1 for _ in f) - 1  # the header


JUDGEMENTS = ("wrong", "ambiguous", "correct")


def read_judgements(path, worst):
    """{file line: (judgement, note)} from a person's reading of the worst rows (`line<TAB>judgement<TAB>note`,
    a header first): every row of `worst` judged once, as one of JUDGEMENTS."""
    judged = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f.read().splitlines()[1:], start=2):
            fields = line.split("\t")
            if len(fields) != 3 or fields[1] not in JUDGEMENTS or not fields[0].isdigit():
                sys.exit(f"error: {path}:{number}: expected line<TAB>{'|'.join(JUDGEMENTS)}<TAB>note, found {line!r}")
            judged[int(fields[0])] = (fields[1], fields[2])
    differ = {int(row["line"]) for row in worst} ^ set(judged)
    if differ:
        sys.exit(f"error: {path}: judge exactly the worst rows: lines {sorted(differ)} differ")
    return judged


def real_table(path):
    """The worst rows of the real training set beside a person's judgement of each (<result>_judgements.tsv)."""
    with open(path, encoding="utf-8") as f:
        r = json.load(f)
    judgements = path[:-len(".json")] + "_judgements.tsv"
    judged = read_judgements(judgements, r["worst_30"]) if os.path.isfile(judgements) else {}
    counts = {j: sum(v[0] == j for v in judged.values()) for j in JUDGEMENTS}
    scorer = " ".join([r.get("scorer", r["model"]), *r.get("args", [])])
    print(f"\n{scorer} scorer on the real training set: {r['flagged']} of {count_rows(TASK)} rows flagged"
          + (f"; of the {len(r['worst_30'])} worst, " + ", ".join(f"{n} {j}" for j, n in counts.items())
             if judged else ""))
    print("\n| rank | line | label | suggested | quality | text | judgement |\n|---|---|---|---|---|---|---|")
    for rank, row in enumerate(r["worst_30"], start=1):
        text = row["text_a"] if len(row["text_a"]) <= 50 else row["text_a"][:50] + "…"
        judgement, note = judged.get(int(row["line"]), ("", ""))
        print(f"| {rank} | {row['line']} | {row['label']} | {row['suggested_label']} | {row['label_quality']} "
              f"| {cell(text)} | {judgement}{': ' + cell(note) if note else ''} |")


def cell(text):
    return text.replace("|", "\\|")  # a Markdown table's cell


def wall(result):
    return "not recorded" if result["wall_minutes"] is None else f"{result['wall_minutes']:.0f} min"


def scorer_cell(result):
    return " ".join([result.get("scorer", result["model"]), *result["args"]])


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def draw_tables(detections):
    print(f"Each draw, folds grouped by text: every rule from one scoring ({DEFAULT_RULE}: label_errors.py's default)")
    print("\n| draw | scorer | rule | flagged | precision | recall | F1 |\n|---|---|---|---|---|---|---|")
    for r in detections:
        for rule, s in r["rules"].items():
            print(f"| {r['draw']} | {scorer_cell(r)} | {rule} | {s['flagged']} | {s['precision']:.3f} "
                  f"| {s['recall']:.3f} | {s['f1']:.3f} |")
    print("\n| draw | scorer | flipped (true label 0 / 1) | wall (processes x threads) |\n|---|---|---|---|")
    for r in detections:
        by_label = r["flipped_by_true_label"]
        print(f"| {r['draw']} | {scorer_cell(r)} | {r['flipped']} ({by_label.get('0', 0)} / {by_label.get('1', 0)}) "
              f"| {wall(r)} ({r['processes']} x {r['threads']}) |")


def mean_spread(values):
    """"mean ± sample standard deviation" over seeds."""
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.4f}"


def table(args):
    detections = [read_json(p) for p in sorted(glob.glob(os.path.join(RESULTS, "*", "detect_*.json")))]
    if detections:
        draw_tables(detections)
    print("\nsym10_seed0, folds stratified by label (before issue 38), each run one rule:")
    print("\n| scorer | flagged | precision | recall | F1 | wall (processes x threads) |\n|---|---|---|---|---|---|")
    for path in sorted(glob.glob(os.path.join(RESULTS, "detect_*.json"))):
        r = read_json(path)
        print(f"| {scorer_cell(r)} | {r['flagged']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} "
              f"| {wall(r)} ({r.get('processes', 1)} x {r['threads']}) |")
    print("\n| Bi-LSTM alone trained on | draw | seeds | dev accuracy | dev, unseen |\n|---|---|---|---|---|")
    trained = [("clean", "", os.path.join(ROOT, "bench", "results", "robustness", "bilstm-alone")),
               *((os.path.basename(d)[6:], "sym10_seed0, folds by label", d)
                 for d in sorted(glob.glob(os.path.join(RESULTS, "train_*")))),
               *((os.path.basename(d)[6:], os.path.basename(os.path.dirname(d)), d)
                 for d in sorted(glob.glob(os.path.join(RESULTS, "*", "train_*"))))]
    for name, draw, directory in trained:
        runs = [read_json(p) for p in glob.glob(os.path.join(directory, "seed*.json"))]
        if runs:
            unseen = [r.get("dev_unseen_acc") for r in runs]  # runs before it was measured lack it
            print(f"| {name} | {draw} | {len(runs)} | {mean_spread([r['dev_acc'] for r in runs])} "
                  f"| {'-' if None in unseen else mean_spread(unseen)} |")
    for path in sorted(glob.glob(os.path.join(RESULTS, "real_*.json"))):
        real_table(path)
