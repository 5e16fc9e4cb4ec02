"""bench_vocab.py's measurements: jieba's bundled dictionary as a vocabulary, the words the old rule sent to
[UNK], and the seed runs' accuracy and checkpoint sizes."""
import collections
import glob
import json
import os
import re
import statistics

from common import ROOT  # first: it puts the project on sys.path

RESULTS = os.path.join(ROOT, "bench", "results", "vocab")
JIEBA_DICT = "/tmp/distill_lstm_bench/jieba_dict.txt"


def write_jieba_dictionary(path):
    from data import build_word_dict

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(build_word_dict([])) + "\n")  # [PAD], [UNK], jieba's words by frequency
    print(f"wrote {path}")


def coverage(texts, dictionaries):
    """For each dictionary: word types and tokens of `texts` that get no row under the old rule."""
    from data import load_vocab, segment

    counts = collections.Counter(w for words in segment(texts) for w in words)
    tokens = sum(counts.values())
    rows = {}
    for name, path in dictionaries.items():
        known = load_vocab(path).token_to_idx
        lost = [w for w in counts if w not in known]
        rows[name] = {"dictionary": os.path.relpath(path, ROOT) if path.startswith(ROOT) else path,
                      "word_types": len(counts), "tokens": tokens,
                      "types_unk_before": len(lost), "tokens_unk_before": sum(counts[w] for w in lost),
                      "share_of_tokens_unk_before": sum(counts[w] for w in lost) / tokens,
                      "types_unk_after": 0, "most_frequent_lost": sorted(lost, key=lambda w: -counts[w])[:20]}
    return rows


def directory_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def checkpoint_bytes(run_dir, dev_acc):
    """Sizes of a run's best/ and last/, and the bytes its checkpoints wrote: last/ at every
    evaluation, best/ at every improvement."""
    best, last = directory_bytes(os.path.join(run_dir, "best")), directory_bytes(os.path.join(run_dir, "last"))
    improvements = sum(acc > max([a for _, a in dev_acc[:i]], default=-1) for i, (_, acc) in enumerate(dev_acc))
    return {"best_bytes": best, "last_bytes": last, "evaluations": len(dev_acc),
            "written_bytes": len(dev_acc) * last + improvements * best}


def seed_table():
    """{rule: {"seeds": {seed: dev acc, checkpoint sizes}, "mean", "std"}} from the seed results and their
    checkpoints' sizes: measured where the runs' directories are still there, else as accuracy.json recorded them."""
    recorded = {}
    if os.path.isfile(os.path.join(RESULTS, "accuracy.json")):
        with open(os.path.join(RESULTS, "accuracy.json"), encoding="utf-8") as f:
            recorded = json.load(f)
    table = collections.defaultdict(dict)
    for path in sorted(glob.glob(os.path.join(RESULTS, "jieba_dict_*_seed*.json"))):
        rule, seed = re.fullmatch(r"jieba_dict_(\w+)_seed(\d+)\.json", os.path.basename(path)).groups()
        with open(path, encoding="utf-8") as f:
            result = json.load(f)
        row = {"dev_acc": result["result"]["dev_acc"], "best_step": result["result"]["best_step"]}
        run_dir = result["result"]["command"].split("--output_dir ")[1].split()[0]
        if os.path.isdir(os.path.join(run_dir, "last")):
            row.update(checkpoint_bytes(run_dir, result["summary"]["dev_acc"]))
        else:  # the run's directory went with its machine: the sizes it was measured at stay
            row.update({k: v for k, v in recorded.get(rule, {}).get("seeds", {}).get(seed, {}).items() if k not in row})
        table[rule][int(seed)] = row
    return {rule: {"seeds": seeds, "mean": statistics.mean(r["dev_acc"] for r in seeds.values()),
                   "std": statistics.stdev(r["dev_acc"] for r in seeds.values()) if len(seeds) > 1 else None}
            for rule, seeds in table.items()}
