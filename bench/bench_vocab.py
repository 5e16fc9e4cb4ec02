"""What the student's vocabulary rule costs or buys on ChnSentiCorp (issue 13).

Before, the student gave an embedding row only to training words that were also in the
dictionary (--vocab_path); the others became [UNK]. Now every training word gets a row. With this
repository's senta_word_dict.txt, built from the training split, the two rules give the same
table; with a dictionary that was not (jieba's bundled one alone, as the hub's Senta dictionary or
a new task would be), they differ.

    python bench/bench_vocab.py dictionary   # writes jieba's bundled dictionary as a vocabulary file
    python bench/bench_vocab.py coverage     # words and tokens the old rule sent to [UNK]
    python bench/bench_vocab.py table        # dev accuracy of the seed runs (mean, std)

The seed runs are the baseline command on that dictionary, before (commit 89ba612, in a git
worktree) and after the change:

    python bench/bench_student.py --seed S --vocab_path /tmp/distill_lstm_bench/jieba_dict.txt \
        --output_dir /tmp/distill_lstm_bench/vocab_{before,after}_seedS \
        --results bench/results/vocab/jieba_dict_{before,after}_seedS.json
"""
import argparse
import os

from common import ROOT, SHARED_DATA  # first: it puts the project on sys.path
from vocab_rules import JIEBA_DICT, RESULTS, coverage, seed_table, write_jieba_dictionary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["dictionary", "coverage", "table"])
    parser.add_argument("--data_dir", default=os.path.join(SHARED_DATA, "chnsenticorp"))
    parser.add_argument("--jieba_dict", default=JIEBA_DICT)
    parser.add_argument("--unlabeled", default=os.path.join(SHARED_DATA, "unlabeled", "reviews_unlabeled.txt"))
    args = parser.parse_args()
    from utils import write_json

    if args.what == "dictionary":
        write_jieba_dictionary(args.jieba_dict)
        return
    if args.what == "coverage":
        if not os.path.isfile(args.jieba_dict):
            write_jieba_dictionary(args.jieba_dict)
        from data import load_local_splits, read_lines

        senta = os.path.join(ROOT, "senta_word_dict.txt")
        train = [ex["text"] for ex in load_local_splits(args.data_dir)[0]["train"]]
        rows = {"training split": coverage(train, {"senta_word_dict.txt": senta,
                                                   "jieba bundled dictionary": args.jieba_dict}),
                # the distillation's transfer set adds these (its augmented copies bring no new words)
                "unlabelled reviews": coverage(read_lines(args.unlabeled), {"senta_word_dict.txt": senta})}
        print("| sentences | dictionary | word types | of them [UNK] before | share of tokens [UNK] before |")
        print("|---|---|---|---|---|")
        for texts, by_dictionary in rows.items():
            for name, row in by_dictionary.items():
                print(f"| {texts} | {name} | {row['word_types']:,} | {row['types_unk_before']:,} "
                      f"| {row['share_of_tokens_unk_before']:.1%} |")
        write_json(os.path.join(RESULTS, "coverage.json"), rows)
        return
    table = seed_table()
    seeds = sorted({seed for row in table.values() for seed in row["seeds"]})
    print("| rule | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | std |")
    print("|---" * (len(seeds) + 3) + "|")
    for rule, row in sorted(table.items(), reverse=True):  # before, then after
        cells = " | ".join(f"{row['seeds'][s]['dev_acc']:.4f} ({row['seeds'][s]['best_step']})"
                           if s in row["seeds"] else "-" for s in seeds)
        std = f"{row['std']:.4f}" if row["std"] is not None else "-"
        print(f"| {rule} | {cells} | {row['mean']:.4f} | {std} |")
    for rule, row in sorted(table.items(), reverse=True):
        for seed, r in sorted(row["seeds"].items()):
            if "best_bytes" in r:
                print(f"{rule}, seed {seed}: best/ {r['best_bytes'] / 1e6:.1f} MB, last/ {r['last_bytes'] / 1e6:.1f} MB, "
                      f"{r['written_bytes'] / 1e9:.2f} GB written by {r['evaluations']} evaluations")
    write_json(os.path.join(RESULTS, "accuracy.json"), table)


if __name__ == "__main__":
    main()
