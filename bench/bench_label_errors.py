"""Label cleaning, measured: synthetic label noise on ChnSentiCorp, and the real training set.

    python bench/bench_label_errors.py detect --model student|teacher [--tag T] [ARGS]  # on 10% flipped labels
    python bench/bench_label_errors.py train DATA [--seeds 1 7 2021]   # Bi-LSTM alone on noisy|<clean>-<scorer>
    python bench/bench_label_errors.py real --model teacher [--tag T] [ARGS]  # the real ChnSentiCorp training set
    python bench/bench_label_errors.py table

The noisy task is ChnSentiCorp with --noise (10%) of its training labels flipped by a fixed seed
(dev untouched), kept in $DISTILL_LSTM_CACHE/label_bench. `detect` runs label_errors.py on it with
the model's recipe (ARGS are added, e.g. --num_train_epochs 1 to bound the teacher's folds) and
scores the flagged rows against the flips (precision, recall, F1), then writes both cleaned sets
from the cached folds (drop-<model>: the flagged rows removed; relabel-<model>: given the suggested
label). `train` trains the Bi-LSTM alone on the clean, noisy or a cleaned training set (on the
clean one it is bench_robustness.py's bilstm-alone, read from its results: --eval_sets does not
change training). Results go to bench/results/label_errors/; a step whose results have landed is
skipped (detect runs again on a new machine while runs on its cleaned data are still to come).
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys

import numpy as np

from bench_teacher import fetch_offline_teacher, python_command, write_results  # first: puts the project on sys.path
from args import CACHE_DIR, recipe  # noqa: E402, I001

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK = os.path.join(ROOT, "..", "shared", "data", "chnsenticorp")
WORK = os.path.join(CACHE_DIR, "label_bench")
RESULTS = os.path.join(ROOT, "bench", "results", "label_errors")
SEEDS = [1, 7, 2021]


def noisy_task(noise, seed=0):
    """(data dir, file lines whose label was flipped): ChnSentiCorp with `noise` of the training labels flipped."""
    data_dir = os.path.join(WORK, f"noisy{round(noise * 100)}")
    flips_path = os.path.join(data_dir, "flipped_lines.json")
    if os.path.isfile(flips_path):
        with open(flips_path, encoding="utf-8") as f:
            return data_dir, set(json.load(f))
    with open(os.path.join(TASK, "train.tsv"), encoding="utf-8") as f:
        header, *rows = f.read().splitlines()
    flipped = np.random.default_rng(seed).choice(len(rows), size=round(noise * len(rows)), replace=False)
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
           "--num_threads", str(args.num_threads), *extra, *args.extra]
    if args.model == "teacher":
        cmd += ["--model_type", "bert", "--model_name_or_path", fetch_offline_teacher()]
    return cmd


def flagged_lines(output_dir):
    with open(os.path.join(output_dir, "label_issues.tsv"), encoding="utf-8") as f:
        return [int(line.split("\t", 1)[0]) for line in f.read().splitlines()[1:]]


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


def issues_dir(clean, scorer):
    """label_errors.py's --output_dir for SCORER's flags cleaned by CLEAN (the folds' scores are shared)."""
    return os.path.join(WORK, f"issues-{scorer}-{clean}")


def detect(args):
    data_dir, flips = noisy_task(args.noise)
    scorer = scorer_of(args)
    result = os.path.join(RESULTS, f"detect_{scorer}.json")
    needed = [clean for clean in CLEAN if not all(os.path.isfile(train_result(f"{clean}-{scorer}", seed))
                                                    for seed in SEEDS)]
    # Done, unless runs still to come need cleaned data this machine lacks (the cache does not outlive a machine)
    measured = os.path.isfile(result)
    if measured and all(os.path.isdir(data_dir_of(f"{clean}-{scorer}", args.noise)) for clean in needed):
        print(f"{result}: done, skipped")
        return
    for clean in CLEAN:  # the second reads the folds' cached scores
        subprocess.run(label_command(args, data_dir, issues_dir(clean, scorer), "--clean", clean),
                       cwd=ROOT, check=True)
    if measured:  # its wall time was the folds' training, which the cache spared this time
        print(f"{result}: measured before; cleaned data written again")
        return
    found = set(flagged_lines(issues_dir(CLEAN[0], scorer)))
    hits = len(found & flips)
    precision, recall = hits / max(len(found), 1), hits / len(flips)
    row = {"scorer": scorer, "model": args.model, "noise": args.noise, "flipped": len(flips), "flagged": len(found),
           "correct": hits, "precision": precision, "recall": recall,
           "f1": 2 * precision * recall / max(precision + recall, 1e-12),
           "wall_minutes": scoring_minutes(issues_dir(CLEAN[0], scorer)), "processes": args.processes,
           "threads": args.num_threads, "args": args.extra,
           "teacher": "m3e-small (offline)" if args.model == "teacher" else None,
           "cleaned_data": {clean: data_dir_of(f"{clean}-{scorer}", args.noise) for clean in CLEAN}}
    print(json.dumps(row, indent=1))
    write_results(result, row)


def scoring_minutes(output_dir):
    """What a scorer's folds cost to train and score, summed over the runs that computed them (a run
    stopped mid-way leaves its folds cached); None for folds cached before their cost was recorded."""
    with open(os.path.join(output_dir, "label_issues.json"), encoding="utf-8") as f:
        seconds = json.load(f)["fold_seconds"]
    return None if None in seconds else sum(seconds) / 60


def data_dir_of(name, noise):
    if name == "noisy":
        return noisy_task(noise)[0]
    return os.path.join(issues_dir(*name.split("-", 1)), "data")  # <clean>-<scorer>


def train_result(data, seed):
    """Where `train` writes the result of the Bi-LSTM trained on DATA (noisy, <clean>-<scorer>) with seed."""
    return os.path.join(RESULTS, f"train_{data}", f"seed{seed}.json")


def train(args):
    for seed in args.seeds:
        path = train_result(args.data, seed)
        if os.path.isfile(path):
            print(f"{path}: done, skipped")
            continue
        data_dir = os.path.abspath(data_dir_of(args.data, args.noise))
        if not os.path.isdir(data_dir):
            model, _, tag = args.data.split("-", 1)[1].partition("_")
            sys.exit(f"{data_dir}: no such data; `bench_label_errors.py detect --model {model}"
                     f"{' --tag ' + tag if tag else ''}` writes it")
        output_dir = os.path.join(WORK, "runs", args.data, f"seed{seed}")
        cmd = [sys.executable, "student_lstm_small.py", *recipe("student"), "--data_dir", data_dir,
               "--seed", str(seed), "--device", "cpu", "--num_threads", str(args.num_threads),
               "--output_dir", output_dir, "--overwrite_output_dir"]
        subprocess.run(cmd, cwd=ROOT, check=True)
        with open(os.path.join(output_dir, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)
        write_results(path, {"data": args.data, "seed": seed, "dev_acc": summary["best_dev_acc"],
                             "command": " ".join(cmd[1:])})


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
        "scorer": scorer, "model": args.model, "flagged": len(rows), "wall_minutes": scoring_minutes(output_dir),
        "processes": args.processes, "threads": args.num_threads, "args": args.extra,
        "worst_30": [dict(zip(header.split("\t"), row.split("\t"))) for row in rows[:30]]})


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


def table(args):
    print("| scorer | flagged | precision | recall | F1 | wall (processes x threads) |\n|---|---|---|---|---|---|")
    for path in sorted(glob.glob(os.path.join(RESULTS, "detect_*.json"))):
        with open(path, encoding="utf-8") as f:
            r = json.load(f)
        scorer = " ".join([r.get("scorer", r["model"]), *r["args"]])
        print(f"| {scorer} | {r['flagged']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} "
              f"| {wall(r)} ({r.get('processes', 1)} x {r['threads']}) |")
    print("\n| Bi-LSTM alone trained on | seeds | dev accuracy |\n|---|---|---|")
    clean = os.path.join(ROOT, "bench", "results", "robustness", "bilstm-alone")
    for name, directory in [("clean", clean), *((os.path.basename(d)[6:], d)
                                                for d in sorted(glob.glob(os.path.join(RESULTS, "train_*"))))]:
        accs = [json.load(open(p, encoding="utf-8"))["dev_acc"] for p in glob.glob(os.path.join(directory, "seed*.json"))]
        if accs:
            spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
            print(f"| {name} | {len(accs)} | {statistics.mean(accs):.4f} ± {spread:.4f} |")
    for path in sorted(glob.glob(os.path.join(RESULTS, "real_*.json"))):
        real_table(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["detect", "train", "real", "table"])
    parser.add_argument("data", nargs="?", type=data_name,
                        help="train: noisy, or a cleaned set (<drop|relabel>-<scorer>)")
    parser.add_argument("--model", choices=["teacher", "student"], default="teacher")
    parser.add_argument("--tag", type=tag_name, default=None,
                        help="detect, real: names a scorer variant (<model>_<tag>) run with other ARGS")
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--num_threads", type=int, default=2, help="Each process's.")
    parser.add_argument("--processes", type=int, default=1,
                        help="detect, real: label_errors.py's processes under paddle.distributed.launch (each "
                             "fold's model trains data-parallel; 2 one-thread processes beat one two-thread one)")
    args, args.extra = parser.parse_known_args()
    if args.what == "train" and not args.data:
        parser.error("train needs DATA")
    {"detect": detect, "train": train, "real": real, "table": table}[args.what](args)


if __name__ == "__main__":
    main()
