"""What bench_robustness.py reads back: finished runs' checks and analyses (unseen words, lengths, oov), the table."""
import glob
import json
import os
import statistics
import sys

from common import ROOT, SHARED_DATA, portable, write_results  # first: it puts the project on sys.path
from args import STUDENTS  # noqa: E402, I001
from robustness_configs import CONFIGS, OOD, RESULTS, UNLABELED, run_dir, run_name, transfer


def measured_unseen(path):
    """Whether a run's results file exists with its dev-unseen accuracy: runs from before it was measured
    train again (the same seed and recipe) and their file is rewritten from the new run."""
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as f:
        return "dev_unseen_acc" in json.load(f)


def stage1_losses(output_dir):
    """{"stage1_losses": {term: [first, middle, last logged value]}} of a TinyBERT run's stage 1 (its VisualDL
    log: how near the teacher's layers it came), or {} for a run without one. The logs stay in the cache;
    these numbers go to the committed results."""
    from visualdl import LogReader

    logs = sorted(glob.glob(os.path.join(output_dir, "vdl", "stage1", "vdlrecords.*.log")))
    if not logs:
        return {}
    reader = LogReader(file_path=logs[-1])
    terms = {}
    for tag in sorted(t for t in reader.get_tags().get("scalar", []) if t.startswith("train/") and t != "train/lr"):
        values = [r.value for r in reader.get_data("scalar", tag)]
        terms[tag.split("/", 1)[1]] = [values[0], values[len(values) // 2], values[-1]]
    return {"stage1_losses": terms}


def require_finished(name, seeds):
    """Stop, before any work, unless every seed's run of `name` has finished (summary.json beside best/)."""
    missing = [seed for seed in seeds if not os.path.isfile(os.path.join(run_dir(name, seed), "summary.json"))]
    if missing:
        sys.exit(f"{name}: no finished run for seed(s) {', '.join(map(str, missing))} in "
                 f"{os.path.dirname(run_dir(name, missing[0]))}; `bench_robustness.py run` makes them")


def measured(path, seeds, key=None):
    """Whether the diagnostic's results file at `path` already holds these seeds' runs (each with `key`,
    if given: files from before it was measured are measured again): then it is skipped, as finished
    runs are (the checkpoints it reads may be gone with the machine; its results are committed).
    Delete the file to measure again."""
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as f:
        runs = json.load(f)["runs"]
    if sorted(run["seed"] for run in runs) == sorted(seeds) and all(key in run for run in runs if key):
        print(f"{path}: done, skipped")
        return True
    return False


def load_best(name, seed):
    """(model, vocab, checkpoint metadata) of a finished word-student run's best checkpoint."""
    from data import vocab_from_words
    from students import build_student
    from checkpoint import WEIGHTS, load_state_strict, read_checkpoint_meta

    best = os.path.join(run_dir(name, seed), "best")
    meta = read_checkpoint_meta(best)
    model = build_student(meta["model"])
    load_state_strict(model, os.path.join(best, WEIGHTS))
    model.eval()
    return model, vocab_from_words(meta["vocab"]), meta


def unseen(args):
    """The finished runs' best checkpoints read with --unseen_words unk and chars: dev and
    out-of-domain accuracy of the same weights (a paired comparison; nothing is retrained)."""
    import numpy as np

    from data import load_eval_sets, load_local_splits, segment

    name = run_name(args.student, args.config)
    path = os.path.join(RESULTS, name, "unseen_words.json")
    if measured(path, args.seeds):
        return
    require_finished(name, args.seeds)
    splits, labels = load_local_splits(os.path.join(SHARED_DATA, "chnsenticorp"))
    sets = {"dev": splits["dev"], **load_eval_sets([OOD], labels, pairs=False)}
    words = {s: segment([ex["text"] for ex in ds]) for s, ds in sets.items()}
    gold = {s: np.array([ex["label"] for ex in ds]) for s, ds in sets.items()}
    rows = []
    for seed in args.seeds:
        model, vocab, meta = load_best(name, seed)
        row = {"seed": seed}
        for mode in ("unk", "chars"):
            for s in sets:
                logits = student_logits(model, vocab, meta["args"]["max_seq_length"], words[s], mode)
                row[f"{s}_{mode}"] = float(np.mean(logits.argmax(-1) == gold[s]))
        unk_share = {s: float(np.mean([w not in vocab.token_to_idx for ws in words[s] for w in ws])) for s in sets}
        rows.append({**row, "unseen_token_share": unk_share})
        print(row, flush=True)
    write_results(path, {"runs": rows, "config": name})


def student_logits(model, vocab, max_seq_length, sentences, unseen_words="unk"):
    """A student's logits of word lists, in their order (unseen words read as students.convert_example does)."""
    import numpy as np
    import paddle
    from paddlenlp.data import Pad, Stack, Tuple

    from data import PAD, create_dataloader
    from students import convert_example

    records = [(*convert_example(words, vocab, max_seq_length, unseen_words), row)
               for row, words in enumerate(sentences)]
    batchify = Tuple(Pad(axis=0, pad_val=vocab.to_indices(PAD), dtype="int64"), Stack(dtype="int64"),
                     Stack(dtype="int64"))
    out = np.zeros((len(sentences), model.output_layer.weight.shape[1]), dtype="float32")
    with paddle.no_grad():
        for ids, seq_len, rows in create_dataloader(records, batchify, 64):  # batched by length
            out[rows.numpy()] = model(ids, seq_len).numpy()
    return out


LENGTH_BINS = [0, 20, 40, 80, 160, 100000]  # jieba words: [0, 20), [20, 40), ... [160, ...)
TRANSFER_SETS = ("soft_aug", "distilled", "augment_unlabeled")  # the ablation's, beyond the training sentences


def bin_counts(lengths):
    """How many of `lengths` fall in each LENGTH_BINS bin."""
    import numpy as np

    return np.bincount(np.digitize(lengths, LENGTH_BINS[1:-1]), minlength=len(LENGTH_BINS) - 1).tolist()


def by_length(lengths, values):
    """The mean of values per LENGTH_BINS bin (None for an empty bin)."""
    import numpy as np

    bins = np.digitize(lengths, LENGTH_BINS[1:-1])
    return [float(values[bins == b].mean()) if (bins == b).any() else None for b in range(len(LENGTH_BINS) - 1)]


def lengths(args):
    """Dev accuracy by sentence length (jieba words) of the teacher and of a configuration's
    finished runs (best checkpoints, nothing retrained), on all of dev and on its texts train does
    not hold, and the mean squared distance of each student's logits from the teacher's per length,
    on dev and on the training sentences: where a student falls short of its teacher, and whether it
    had fit such sentences in training."""
    import numpy as np

    from data import unseen_rows

    name = run_name(args.student, args.config)
    path = os.path.join(RESULTS, name, "lengths.json")
    if measured(path, args.seeds, key="dev_unseen_acc"):
        return
    require_finished(name, args.seeds)
    splits, t = transfer(args, "soft_train")  # the training sentences' teacher logits: the smallest entry
    gold, train_gold = (np.array([ex["label"] for ex in splits[s]]) for s in ("dev", "train"))
    unseen = np.array(unseen_rows(splits["dev"], splits["train"]))
    sets = {"dev": (t.words["dev"], t.dev_logits), "train": (t.words["train"], t.logits[:len(t.words["train"])])}
    counts = {s: np.array([len(w) for w in words]) for s, (words, _) in sets.items()}
    teacher_right = t.dev_logits.argmax(-1) == gold
    result = {"bins": LENGTH_BINS, "sentences": {s: bin_counts(c) for s, c in counts.items()},
              "dev_unseen_sentences": bin_counts(counts["dev"][unseen]),
              "teacher_dev_acc": by_length(counts["dev"], teacher_right),
              "teacher_dev_unseen_acc": by_length(counts["dev"][unseen], teacher_right[unseen]),
              "teacher_train_acc": by_length(counts["train"], sets["train"][1].argmax(-1) == train_gold), "runs": []}
    for seed in args.seeds:
        model, vocab, meta = load_best(name, seed)
        run = {"seed": seed}
        for s, (words, teacher) in sets.items():
            student = student_logits(model, vocab, meta["args"]["max_seq_length"], words)
            run[f"{s}_mse_to_teacher"] = by_length(counts[s], ((student - teacher) ** 2).mean(-1))
            if s == "dev":
                right = student.argmax(-1) == gold
                run["dev_acc"] = by_length(counts[s], right)
                run["dev_unseen_acc"] = by_length(counts[s][unseen], right[unseen])
        result["runs"].append(run)
        print(json.dumps(run), flush=True)
    write_results(path, {"config": name, **result})


def oov(args):
    """How each set differs from training: the share of tokens never seen in training (and in
    training + the unlabelled reviews), how many of those every character of which was seen, how
    many sentences hold Traditional characters (would OpenCC normalisation matter?), and how long
    the sentences of each set and of the transfer sets are (LENGTH_BINS)."""
    from data import read_lines, read_tsv, segment

    traditional = set("們這個說時會對於來過還與為國買賣質價應該點體發現實頭愛")  # common, unlike their simplified forms
    texts = {name: [ex["text"] for ex in read_tsv(path)] for name, path in
             [("train", os.path.join(SHARED_DATA, "chnsenticorp", "train.tsv")),
              ("dev", os.path.join(SHARED_DATA, "chnsenticorp", "dev.tsv")), OOD]}
    texts["unlabeled"] = read_lines(UNLABELED)
    words = {name: segment(t) for name, t in texts.items()}
    seen = {w for s in words["train"] for w in s}
    seen_all = seen | {w for s in words["unlabeled"] for w in s}
    rows = {}
    for name in ("dev", OOD[0]):
        tokens = [w for s in words[name] for w in s]
        unseen = [w for w in tokens if w not in seen_all]
        rows[name] = {"tokens": len(tokens), "unseen_in_train": sum(w not in seen for w in tokens) / len(tokens),
                      "unseen_in_train_and_unlabeled": len(unseen) / len(tokens),
                      "of_those_spelled_by_seen_characters": sum(all(c in seen_all for c in w) for w in unseen) / len(unseen)}
    rows["sentences_with_traditional_characters"] = {
        name: [sum(any(c in traditional for c in t) for t in ts), len(ts)] for name, ts in texts.items()}
    sets = {**words, **{f"transfer set of {c}": transfer(args, c)[1].sentences for c in TRANSFER_SETS}}
    rows["sentences_by_length"] = {"bins": LENGTH_BINS,
                                   **{name: bin_counts([len(s) for s in ws]) for name, ws in sets.items()}}
    print(json.dumps(rows, indent=1, ensure_ascii=False))
    write_results(os.path.join(RESULTS, "oov.json"), rows)


def parameters(args):
    """Fill "parameters" ({embedding, other}) into word students' result files written before
    summary.json recorded it, from each run's checkpoint config (the counts need no weights)."""
    from students import build_student, parameter_counts
    from checkpoint import read_checkpoint_meta

    for path in sorted(glob.glob(os.path.join(RESULTS, "*-*", "seed*.json"))):
        with open(path, encoding="utf-8") as f:
            result = json.load(f)
        best = os.path.join(run_dir(os.path.basename(os.path.dirname(path)), result["seed"]), "best")
        if result.get("parameters") is None and os.path.isdir(best):
            counts = parameter_counts(build_student(read_checkpoint_meta(best)["model"]))
            write_results(path, {**result, "parameters": counts})


def mean_std(values):
    """(mean, sample standard deviation; 0 for one value)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def table(args):
    """Mean and spread per configuration, the share of the teacher's out-of-domain accuracy kept."""
    what = {"teacher": "m3e-small fine-tuned"}  # by run name: a configuration's may hold "-" (tinybert_s2_lr5e-4)
    for student in STUDENTS:
        for config, (_, _, description) in CONFIGS.items():
            what.setdefault(run_name(student, config), description)
    rows = {}
    for name in what:
        runs = [json.load(open(p, encoding="utf-8")) for p in sorted(glob.glob(os.path.join(RESULTS, name, "seed*.json")))]
        if runs:
            unseen = [r.get("dev_unseen_acc") for r in runs]  # runs before it was measured lack it
            rows[name] = {"seeds": [r["seed"] for r in runs], "parameters": runs[0].get("parameters"),
                          "dev": mean_std([r["dev_acc"] for r in runs]),
                          "dev_unseen": None if None in unseen else mean_std(unseen),
                          "ood": mean_std([r["ood_acc"] for r in runs])}
    teacher_ood = rows["teacher"]["ood"][0] if "teacher" in rows else None
    print("| model | what | seeds | ChnSentiCorp dev | dev, unseen | shopping5 (out of domain) "
          "| of the teacher's out-of-domain accuracy | parameters (embedding + other) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        kept = f"{row['ood'][0] / teacher_ood:.1%}" if teacher_ood else "-"
        row["ood_share_of_teacher"] = row["ood"][0] / teacher_ood if teacher_ood else None
        counts = row["parameters"]
        size = f"{counts['embedding'] / 1e6:.1f}M + {counts['other'] / 1e6:.2f}M" if counts else "-"
        unseen = f"{row['dev_unseen'][0]:.4f} ± {row['dev_unseen'][1]:.4f}" if row["dev_unseen"] else "-"
        print(f"| {name} | {what[name]} | {len(row['seeds'])} | {row['dev'][0]:.4f} ± {row['dev'][1]:.4f} | {unseen} "
              f"| {row['ood'][0]:.4f} ± {row['ood'][1]:.4f} | {kept} | {size} |")
    print("\nmean ± sample standard deviation over training seeds; dev, unseen: dev's texts not in train, from the "
          "same checkpoints (chosen on all of dev); - where the runs predate it")
    write_results(os.path.join(ROOT, "bench", "results", "robustness.json"), portable(rows))
